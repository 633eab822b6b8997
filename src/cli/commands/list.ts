import type { CommandModule } from 'yargs';
import { buildReportInfo } from '../../report/data.js';
import { studyFinals } from '../../study/finals.js';
import { handler, info, pct, table } from '../output.js';
import { lastUpdate, type StoreArg, storeExists, storeOption, withStore } from './store-args.js';

interface Args extends StoreArg {
  json: boolean;
}

export interface StudySummary {
  readonly name: string;
  readonly state: string;
  readonly trials: { readonly complete: number; readonly failed: number; readonly pending: number; readonly total: number };
  /** Best proxy accuracy over all completed trials (null when none completed). */
  readonly bestProxyAccuracy: number | null;
  /** Best proxy accuracy among trials with MACs <= target * base MACs, per FLOPs target (descending). */
  readonly bestAtTarget: readonly { readonly target: number; readonly accuracy: number | null }[];
  readonly baseProxyAccuracy: number | null;
  readonly createdAt: string;
  /** Latest of the study's own update and its trials' created/started/finished times. */
  readonly lastUpdate: string;
  readonly configHash: string;
}

export const listCommand: CommandModule<object, Args> = {
  command: 'list',
  describe: 'List the studies of a store: state, trials, best proxy accuracy per FLOPs target, last update',
  builder: (y) => y.option(...storeOption).option('json', { type: 'boolean', default: false, describe: 'Machine-readable output' }),
  handler: handler(async (args) => {
    if (!storeExists(args.store)) {
      // Nothing searched yet is not an error: there are simply no studies.
      info(args.json ? '[]' : `no studies yet (no store at ${args.store}; \`autoprune search <config>\` creates it)`);
      return;
    }
    const summaries = await withStore(args.store, async (store) => {
      const out: StudySummary[] = [];
      for (const study of await store.listStudies()) {
        const trials = await store.listTrials(study.name);
        const finals = await studyFinals(store, study.name, trials);
        const r = buildReportInfo(study, trials, finals);
        const last = r.progress.byNumber.at(-1);
        out.push({
          name: study.name,
          state: study.state,
          trials: { complete: r.counts.complete, failed: r.counts.failed, pending: r.counts.pending, total: r.counts.total },
          bestProxyAccuracy: last?.bestProxyAccuracy ?? null,
          bestAtTarget: r.targets.map((target, k) => ({ target, accuracy: last?.bestAtTarget[k] ?? null })),
          baseProxyAccuracy: study.baseProxyAccuracy,
          createdAt: study.createdAt,
          lastUpdate: lastUpdate(study, trials),
          configHash: study.configHash,
        });
      }
      return out;
    });
    if (args.json) {
      info(JSON.stringify(summaries, null, 2));
      return;
    }
    if (summaries.length === 0) {
      info(`no studies in ${args.store}`);
      return;
    }
    info(
      table(
        ['study', 'state', 'trials (ok/failed/all)', 'best proxy acc', 'base proxy acc', 'last update'],
        summaries.map((s) => [
          s.name,
          s.state,
          `${s.trials.complete}/${s.trials.failed}/${s.trials.total}`,
          [`all ${pct(s.bestProxyAccuracy)}`, ...s.bestAtTarget.map((b) => `${pct(b.target, 0)} target ${pct(b.accuracy)}`)].join(', '),
          pct(s.baseProxyAccuracy),
          s.lastUpdate.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
        ]),
      ),
    );
  }),
};
