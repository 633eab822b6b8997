import type { CommandModule } from 'yargs';
import { pickTrials } from '../../app/reports.js';
import { rungLabel } from '../../report/data.js';
import { bad, pickConstraints } from '../../report/pick.js';
import { handler, info, mmacs, pct, table } from '../output.js';
import { type StoreArg, storeOption } from './store-args.js';

interface Args extends StoreArg {
  study: string;
  maxFlops?: string;
  maxParams?: string;
  maxLatency?: string;
  latencyEngine?: string;
  latencyHost?: string;
  latencyDevice?: string;
  minAcc?: string;
  top: number;
  json: boolean;
}

export const pickCommand: CommandModule<object, Args> = {
  command: 'pick <study>',
  describe:
    'Rank the completed trials of a study that meet constraints: by accuracy (fine-tuned test accuracy for finalists, else proxy), then fewer MACs, then trial number',
  builder: (y) =>
    y
      .positional('study', { type: 'string', demandOption: true, describe: 'Study name (see `autoprune list`)' })
      .option('max-flops', { type: 'string', describe: 'Max MACs as a fraction of the base model: 50% or 0.5' })
      .option('max-params', { type: 'string', describe: 'Max parameters: 120000, 120k or 1.2M' })
      .option('max-latency', { type: 'string', describe: 'Max measured latency, ms per image (trials without one are dropped)' })
      .option('latency-engine', {
        type: 'string',
        describe:
          "With --max-latency: the engine whose latencies count (default: the study's `evaluation.latency.engine` when it measured any trial, else the one that measured most trials)",
      })
      .option('latency-host', {
        type: 'string',
        describe: 'With --max-latency: the host whose latencies count, for studies evaluated on several hosts (default: the one that measured most trials)',
      })
      .option('latency-device', {
        type: 'string',
        describe: 'With --max-latency: the device whose latencies count, e.g. `cuda:0` or `cpu:<model name>` (default: the one that measured most trials)',
      })
      .option('min-acc', { type: 'string', describe: 'Min accuracy: 0.9 or 90%' })
      .option('top', { type: 'number', default: 10, describe: 'Show at most this many' })
      .option('json', { type: 'boolean', default: false, describe: 'Print a JSON array (for scripts)' })
      .option(...storeOption),
  handler: handler(async (args) => {
    const constraints = pickConstraints(args);
    if (!(Number.isInteger(args.top) && args.top >= 1)) throw bad('top', String(args.top), 'an integer >= 1');
    const {
      study,
      report: r,
      rows,
      matched,
      latency: one,
    } = await pickTrials(args.store, args.study, {
      constraints,
      top: args.top,
      latencyEngine: args.latencyEngine,
      latencyHost: args.latencyHost,
      latencyDevice: args.latencyDevice,
    });
    let latencyNote = '';
    if (one !== null) {
      const where = `${one.engine ?? 'no engine'}${one.host === null ? '' : ` on host ${one.host}`}${one.device === null ? '' : ` (${one.device})`}`;
      latencyNote = ` (latencies measured by ${where}${one.dropped ? `; ${one.dropped} trial(s) measured by another engine, host or device left out` : ''})`;
    }
    if (args.json) {
      info(JSON.stringify(rows, null, 2));
      return;
    }
    info(
      `${matched} of ${r.counts.complete} complete trials of ${study} meet the constraints${latencyNote}${matched > rows.length ? ` (showing the top ${rows.length})` : ''}`,
    );
    if (rows.length === 0) return;
    info(
      table(
        ['rank', 'trial', 'FLOPs', 'MMACs', 'params', 'accuracy', 'measured on', 'latency'],
        rows.map((c) => [
          c.rank,
          c.trial,
          pct(c.flopsFraction, 1),
          mmacs(c.macs),
          c.params,
          pct(c.accuracy),
          c.accuracySource === 'final' ? `test, ${c.rung === null ? 'fine-tuned' : rungLabel(r, c.rung)}` : `validation, ${rungLabel(r, 0)}`,
          c.latencyMs === null ? '-' : `${c.latencyMs.toFixed(3)} ms`,
        ]),
      ),
    );
  }),
};
