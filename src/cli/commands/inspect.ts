import type { CommandModule } from 'yargs';
import { inspectModel, ZOO_NAMES } from '../../app/models.js';
import type { GroupSpec } from '../../core/space.js';
import type { Cost } from '../../core/types.js';
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
  describe: 'Print the prunable channel groups, MACs and params of a zoo model, a tfjs model.json or an ONNX model',
  builder: (y) =>
    y
      .positional('model', {
        type: 'string',
        demandOption: true,
        describe: `zoo name (${ZOO_NAMES.join(', ')}), path to a tfjs model.json or to a .onnx model`,
      })
      .option('json', { type: 'boolean', default: false, describe: 'Machine-readable output' })
      .option('input', { type: 'string', default: '28x28x1', describe: 'Zoo input shape HxWxC' })
      .option('classes', { type: 'number', default: 10, describe: 'Zoo classifier outputs' })
      .option('width', { type: 'number', default: 1, describe: 'Zoo width multiplier' }),
  handler: handler(async (args) => {
    const r = await inspectModel(args);
    if (r.format === 'onnx') {
      const [c, h, w] = r.input.shape;
      if (args.json) {
        info(JSON.stringify({ input: r.input, groups: r.groups, layers: r.layers, total: r.total }, null, 2));
        return;
      }
      info(`${args.model}: ${r.groups.length} prunable groups, ${mmacs(r.total.macs)} MMACs, ${r.total.params} params`);
      info(`input \`${r.input.name}\`: ${r.input.layout} images of ${c} channels, ${h}x${w} (as \`data\` shape: ${h}x${w}x${c})\n`);
      printTables(
        r.groups,
        ['node', 'op'],
        r.layers.map((l) => ({ ...l, kind: l.op })),
        r.total,
      );
      return;
    }
    if (args.json) {
      info(JSON.stringify({ groups: r.groups, layers: r.layers, total: r.total }, null, 2));
      return;
    }
    info(`${args.model}: ${r.groups.length} prunable groups, ${mmacs(r.total.macs)} MMACs, ${r.total.params} params\n`);
    printTables(
      r.groups,
      ['layer', 'class'],
      r.layers.map((l) => ({ ...l, kind: l.className })),
      r.total,
    );
  }),
};

/** The groups table, the per-layer (or per-node) costs of those that cost anything, and the total. */
function printTables(
  groups: readonly GroupSpec[],
  [nameHead, kindHead]: readonly [string, string],
  rows: readonly { name: string; kind: string; inChannels: number; outChannels: number; macs: number; params: number }[],
  total: Cost,
): void {
  info(
    table(
      ['group', 'channels', 'layers'],
      groups.map((g) => [g.id, g.channels, g.layers.join(' ')]),
    ),
  );
  info('');
  info(
    table(
      [nameHead, kindHead, 'in', 'out', 'MMACs', 'params'],
      rows.filter((l) => l.macs > 0 || l.params > 0).map((l) => [l.name, l.kind, l.inChannels, l.outChannels, mmacs(l.macs), l.params]),
    ),
  );
  info(`\ntotal: ${mmacs(total.macs)} MMACs (${total.macs} multiply-accumulates per image), ${total.params} params`);
}
