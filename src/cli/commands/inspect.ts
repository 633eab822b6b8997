import type { CommandModule } from 'yargs';
import { AutopruneError, ErrorCodes, quote } from '../../core/errors.js';
import { initBackend } from '../../engine/backend.js';
import { analyzeModel } from '../../model/analysis.js';
import { costOf, layerCosts } from '../../model/flops.js';
import { loadModel } from '../../model/io.js';
import { buildZooModel, isZooName, ZOO_NAMES } from '../../model/zoo.js';
import { handler, info, mmacs, table } from '../output.js';

interface Args {
  model: string;
  json: boolean;
  input: string;
  classes: number;
  width: number;
}

export const inspectCommand: CommandModule<object, Args> = {
  command: 'inspect <model>',
  describe: 'Print the prunable channel groups, MACs and params of a zoo model or a model.json',
  builder: (y) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: `zoo name (${ZOO_NAMES.join(', ')}) or path to a tfjs model.json` })
      .option('json', { type: 'boolean', default: false, describe: 'Machine-readable output' })
      .option('input', { type: 'string', default: '28x28x1', describe: 'Zoo input shape HxWxC' })
      .option('classes', { type: 'number', default: 10, describe: 'Zoo classifier outputs' })
      .option('width', { type: 'number', default: 1, describe: 'Zoo width multiplier' }),
  handler: handler(async (args) => {
    await initBackend('cpu');
    const shape = args.input.split('x').map(Number);
    if (shape.length !== 3 || shape.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected --input as HxWxC (e.g. 28x28x1), got ${quote(args.input)}`);
    }
    const model = isZooName(args.model)
      ? buildZooModel(args.model, { inputShape: shape as [number, number, number], numClasses: args.classes, width: args.width })
      : await loadModel(args.model);
    const a = analyzeModel(model);
    const total = costOf(a, null);
    const layers = layerCosts(a, null);
    if (args.json) {
      info(JSON.stringify({ groups: a.groups, layers, total }, null, 2));
      return;
    }
    info(`${args.model}: ${a.groups.length} prunable groups, ${mmacs(total.macs)} MMACs, ${total.params} params\n`);
    info(
      table(
        ['group', 'channels', 'layers'],
        a.groups.map((g) => [g.id, g.channels, g.layers.join(' ')]),
      ),
    );
    info('');
    info(
      table(
        ['layer', 'class', 'in', 'out', 'MMACs', 'params'],
        layers.filter((l) => l.macs > 0 || l.params > 0).map((l) => [l.name, l.className, l.inChannels, l.outChannels, mmacs(l.macs), l.params]),
      ),
    );
    info(`\ntotal: ${mmacs(total.macs)} MMACs (${total.macs} multiply-accumulates per image), ${total.params} params`);
  }),
};
