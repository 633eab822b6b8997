import type { CommandModule } from 'yargs';
import { describeDatasets } from '../../data/index.js';
import { describeBackend, initBackend } from '../../engine/backend.js';
import { describeOnnxRuntime } from '../../engine/onnxruntime.js';
import { torchStatus, torchThreads } from '../../engine/torch.js';
import { handler, info } from '../output.js';
import { type BackendArg, backendOption } from './common.js';

export const doctorCommand: CommandModule<object, BackendArg & { dataDir?: string }> = {
  command: 'doctor',
  describe: 'Print the tfjs backend, onnxruntime and its execution providers, whether libtorch loaded, versions, threads and which datasets are found',
  builder: (y) => y.option(...backendOption).option('data-dir', { type: 'string', describe: 'Also look for datasets here' }),
  handler: handler(async (args) => {
    const b = await initBackend(args.backend ?? 'auto');
    info(`requested backend: ${b.requested}`);
    for (const [k, v] of Object.entries(await describeBackend())) info(`${k}: ${v}`);
    const ort = await describeOnnxRuntime();
    info(
      ort.available
        ? `onnxruntime: ${ort.version} (onnxruntime-node), execution providers: ${ort.providers.join(', ')}`
        : `onnxruntime: not available (${ort.reason}); the proxy runs on tfjs`,
    );
    info(`proxy engine (run.engine auto): ${ort.available ? 'onnxruntime' : 'tfjs'}`);
    const t = torchStatus();
    info(
      t.loaded
        ? `libtorch: loaded (${t.binding.version}, ${t.binding.cudaAvailable ? 'CUDA device visible' : 'CPU'}, ${torchThreads(1)} threads for one worker); trains \`train\` and finalists`
        : `libtorch: not loaded (${t.reason}); training runs on tfjs`,
    );
    for (const d of await describeDatasets({ dataDir: args.dataDir })) {
      info(
        `dataset ${d.name}: ${d.found ? (d.dir ? `found in ${d.dir}` : 'built in (generated from the seed)') : `not found (searched ${d.searched.join(', ')}); ${d.hint}`}`,
      );
    }
  }),
};
