/**
 * `autoprune worker --store URL [--study NAME]`: evaluate a study's trials on this host, for a
 * driver (`autoprune search`) that runs elsewhere (src/app/worker.ts does the work).
 */
import type { CommandModule } from 'yargs';
import { runWorkerHost } from '../../app/worker.js';
import { handler, info, note } from '../output.js';
import { type BackendArg, backendOption } from './common.js';
import { storeOption } from './store-args.js';

interface Args extends BackendArg {
  store: string;
  study?: string;
  concurrency: number;
  model?: string;
  data?: string;
  'give-up': number;
}

export const workerCommand: CommandModule<object, Args> = {
  command: 'worker',
  describe: "Evaluate a study's trials on this host, for a search driven elsewhere (shared PostgreSQL store)",
  builder: (y) =>
    y
      .option(...storeOption)
      .option('study', { type: 'string', describe: 'Study to work for (default: the only running one)' })
      .option('concurrency', { type: 'number', default: 1, describe: 'Trials evaluated at once on this host (worker threads)' })
      .option('model', {
        type: 'string',
        describe: "This host's copy of the study's base model (model.json or .onnx), when its path differs from the driver's",
      })
      .option('data', { type: 'string', describe: "This host's dataset folder, when its path differs from the driver's" })
      .option('give-up', { type: 'number', default: 600, describe: 'Seconds of continuous database outage after which the worker exits' })
      .option(...backendOption),
  handler: handler(async (args) => {
    const stop = new AbortController();
    const onSignal = () => {
      if (stop.signal.aborted) process.exit(130);
      note('\nstopping: no new trials; the ones in hand finish and are stored (Ctrl-C again to stop now)');
      stop.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let name = '';
    try {
      const n = await runWorkerHost({
        store: args.store,
        study: args.study,
        concurrency: args.concurrency,
        model: args.model,
        data: args.data,
        giveUpSeconds: args['give-up'],
        backend: args.backend,
        stop: stop.signal,
        log: info,
        onReady: (r) => {
          name = r.name;
          info(
            `worker ${r.name}: study \`${r.study}\`, ${args.concurrency} at once, proxy engine ${r.engine}, tfjs backend ${r.backend.name}; base model (sha256 ${r.inputs.baseModel.slice(0, 16)}…) and data (${r.inputs.data.slice(0, 16)}…) match the study`,
          );
        },
      });
      info(`worker ${name}: ${n} trial(s) evaluated`);
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }),
};
