import type { CommandModule } from 'yargs';
import { describeHost } from '../../app/models.js';
import { handler, info } from '../output.js';
import { type BackendArg, backendOption } from './common.js';

export const doctorCommand: CommandModule<object, BackendArg & { dataDir?: string }> = {
  command: 'doctor',
  describe: 'Print the tfjs backend, onnxruntime and its execution providers, whether libtorch loaded, versions, threads and which datasets are found',
  builder: (y) => y.option(...backendOption).option('data-dir', { type: 'string', describe: 'Also look for datasets here' }),
  handler: handler(async (args) => {
    const h = await describeHost({ backend: args.backend, dataDir: args.dataDir });
    info(`requested backend: ${h.backend.requested}`);
    for (const [k, v] of Object.entries(h.backend.details)) info(`${k}: ${v}`);
    const ort = h.onnxruntime;
    info(
      ort.available
        ? `onnxruntime: ${ort.version} (onnxruntime-node), execution providers: ${ort.providers.join(', ')}`
        : `onnxruntime: not available (${ort.reason}); the proxy runs on tfjs`,
    );
    info(`proxy engine (run.engine auto): ${ort.available ? 'onnxruntime' : 'tfjs'}`);
    const t = h.torch;
    info(
      t.loaded
        ? `libtorch: loaded (${t.version}, ${t.cuda ? 'CUDA device visible' : 'CPU'}, ${t.threads} threads for one worker); trains \`train\` and finalists`
        : `libtorch: not loaded (${t.reason}); training runs on tfjs`,
    );
    for (const d of h.datasets) {
      info(
        `dataset ${d.name}: ${d.found ? (d.dir ? `found in ${d.dir}` : 'built in (generated from the seed)') : `not found (searched ${d.searched.join(', ')}); ${d.hint}`}`,
      );
    }
  }),
};
