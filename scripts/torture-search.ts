/**
 * The search process of the crash tortures (scripts/torture.ts, scripts/torture-pg.ts): exactly
 * what `autoprune search` runs (src/app: the same config loading, inputs, store, evaluators and
 * driver), with one addition when `--adapt-mix` is given: a decorator turns some proposals into
 * stage-`adapt` trials, and some of those into children of an earlier adapt trial, so the torture
 * also kills while fine-tunes and parent/child lineage are in flight.
 *   node --import tsx scripts/torture-search.ts <config.json> [--adapt-mix]
 */
import { loadSearchConfig, runSearch, type SearchOutcome } from '../src/app/index.js';
import type { Controller, Observation, Proposal } from '../src/controllers/types.js';
import type { Json } from '../src/core/types.js';

/**
 * Proposal i (counted over the study, kept in the snapshot): i % 4 == 1 -> `adapt` from the base
 * model; i % 4 == 3 -> `adapt` child of proposal i - 2 (named by its candidate key, as NetAdapt's
 * controller does), its channels capped at the parent's.
 */
export class AdaptMix implements Controller {
  readonly name: string;
  private i = 0;
  private readonly proposed: number[][] = [];

  constructor(private readonly inner: Controller) {
    this.name = inner.name;
  }

  ask(n: number): Proposal[] {
    return this.inner.ask(n).map((p) => this.mix(p));
  }

  private mix(p: Proposal): Proposal {
    const i = this.i++;
    const channels = i % 4 === 3 ? p.candidate.channels.map((c, g) => Math.min(c, this.proposed[i - 2][g])) : [...p.candidate.channels];
    this.proposed.push(channels);
    if (i % 4 === 1) return { ...p, meta: { ...p.meta, stage: 'adapt' } };
    if (i % 4 === 3) return { ...p, candidate: { channels }, meta: { ...p.meta, stage: 'adapt', parent: this.proposed[i - 2].join(',') } };
    return p;
  }

  tell(o: readonly Observation[]): void {
    this.inner.tell(o);
  }
  done(): boolean {
    return this.inner.done();
  }
  snapshot(): Json {
    return { inner: this.inner.snapshot(), i: this.i, proposed: this.proposed };
  }
  restore(s: Json): void {
    const st = s as { inner: Json; i: number; proposed: number[][] };
    this.inner.restore(st.inner);
    this.i = st.i;
    this.proposed.splice(0, this.proposed.length, ...st.proposed);
  }
}

/** The search of the config at `path`, through the product's composition root; the stage mix when `adaptMix`. */
export async function tortureSearch(path: string, o: { adaptMix: boolean; log?: (line: string) => void }): Promise<SearchOutcome> {
  return runSearch({
    loaded: await loadSearchConfig(path),
    log: o.log ?? ((l) => console.log(l)),
    wrapController: o.adaptMix ? (c) => new AdaptMix(c) : undefined,
    pollMs: 200,
  });
}

if (process.argv[1]?.endsWith('torture-search.ts')) {
  const [path, ...flags] = process.argv.slice(2);
  const { summary: s } = await tortureSearch(path, { adaptMix: flags.includes('--adapt-mix') });
  // `autoprune search`'s closing line, which both tortures wait for.
  console.log(`study \`${s.study.name}\` ${s.study.state} (${s.reason}), finalists: ${s.finalists.join(', ') || 'none'}`);
}
