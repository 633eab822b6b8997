import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { EXPORT_FORMATS, type ExportFormat, exportTrial } from '../../app/export.js';
import { handler, info, mmacs, pct } from '../output.js';
import { type BackendArg, backendOption } from './common.js';
import { type StoreArg, shortPath, storeOption } from './store-args.js';

interface Args extends StoreArg, BackendArg {
  study: string;
  trial: number;
  out?: string;
  format?: ExportFormat[];
}

export const exportCommand: CommandModule<object, Args> = {
  command: 'export <study>',
  describe: "Write a complete trial's pruned model (ONNX model.onnx and/or tfjs LayersModel model.json + weights.bin) and its model card",
  builder: (y) =>
    y
      .positional('study', { type: 'string', demandOption: true, describe: 'Study name (see `autoprune list`)' })
      .option('trial', { type: 'number', demandOption: true, describe: 'Trial number (see `autoprune show` / `pick`)' })
      .option('out', { type: 'string', describe: 'Output folder (default exports/<study>/trial-<N>)' })
      .option('format', {
        type: 'array',
        choices: EXPORT_FORMATS,
        string: true,
        describe: 'Formats to write (default: both): onnx = model.onnx, tfjs = model.json + weights.bin',
      })
      .option(...storeOption)
      .option(...backendOption),
  handler: handler(async (args) => {
    const { out, card } = await exportTrial({ ...args, onNote: info });
    const { files, weights } = card;
    info(
      `wrote ${files.map((f) => shortPath(join(out, f))).join(', ')} (${weights === 'fine-tuned' ? 'fine-tuned finalist' : 'pruned + BN re-calibrated'}), card.json, card.md`,
    );
    info(
      `trial ${card.trial}: ${mmacs(card.macs)} MMACs (${pct(card.flopsFraction, 1)} of base, ${card.speedup.toFixed(2)}x), ${card.params} params, proxy acc ${pct(card.proxyAccuracy)}${card.finalAccuracy !== null ? `, fine-tuned test acc ${pct(card.finalAccuracy)} (rung ${card.finalRung})` : ''}`,
    );
  }),
};
