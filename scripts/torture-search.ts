/**
 * The search process of the crash torture (scripts/torture.ts): what `autoprune search` does, on
 * worker threads, with one addition when `--adapt-mix` is given: a decorator turns some proposals
 * into stage-`adapt` trials, and some of those into children of an earlier adapt trial, so the
 * torture also kills while fine-tunes and parent/child lineage are in flight.
 *   node --import tsx scripts/torture-search.ts <config.json> [--adapt-mix]
 */
import { loadConfig } from '../src/config/index.js';
import type { Controller, Observation, Proposal } from '../src/controllers/types.js';
import type { Json } from '../src/core/types.js';
import { initBackend } from '../src/engine/backend.js';
import { WorkerPool } from '../src/evaluators/pool.js';
import { loadBaseModel, loadSplits } from '../src/evaluators/setup.js';
import { accuracy } from '../src/evaluators/train.js';
import { analyzeModel } from '../src/model/analysis.js';
import { openStore } from '../src/store/index.js';
import { runStudy } from '../src/study/run.js';

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

async function main(): Promise<void> {
  const [path, flag] = process.argv.slice(2);
  const { resolved: cfg, hash } = await loadConfig(path);
  await initBackend(cfg.run.backend);
  const splits = await loadSplits(cfg);
  const base = await loadBaseModel(cfg, splits);
  const analysis = analyzeModel(base);
  const store = await openStore(cfg.run.store);
  try {
    const s = await runStudy({
      cfg,
      configHash: hash,
      store,
      analysis,
      baseAccuracy: async () => ({ proxy: accuracy(base, splits.validation), test: accuracy(base, splits.test) }),
      evaluator: () => WorkerPool.create(cfg, cfg.run.concurrency, { splits }),
      budget: { trials: cfg.search.budget.trials, deadline: null },
      fresh: false,
      signal: new AbortController().signal,
      log: (l) => console.log(l),
      wrapController: flag === '--adapt-mix' ? (c) => new AdaptMix(c) : undefined,
      pollMs: 200,
    });
    console.log(`done: ${s.study.state} (${s.reason}), finalists ${s.finalists.join(',')}`);
  } finally {
    await store.close();
  }
}

if (process.argv[1]?.endsWith('torture-search.ts')) await main();
