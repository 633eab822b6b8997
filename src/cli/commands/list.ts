import type { CommandModule } from 'yargs';
import { studySummaries } from '../../app/reports.js';
import { handler, info, pct, table } from '../output.js';
import { type StoreArg, storeOption } from './store-args.js';

interface Args extends StoreArg {
  json: boolean;
}

export const listCommand: CommandModule<object, Args> = {
  command: 'list',
  describe: 'List the studies of a store: state, trials, best proxy accuracy per FLOPs target, last update',
  builder: (y) => y.option(...storeOption).option('json', { type: 'boolean', default: false, describe: 'Machine-readable output' }),
  handler: handler(async (args) => {
    const summaries = await studySummaries(args.store);
    if (summaries === null) {
      // Nothing searched yet is not an error: there are simply no studies.
      info(args.json ? '[]' : `no studies yet (no store at ${args.store}; \`autoprune search <config>\` creates it)`);
      return;
    }
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
        ['study', 'state', 'trials (ok/failed/all)', 'best proxy acc (rung 0)', 'base proxy acc', 'last update'],
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
