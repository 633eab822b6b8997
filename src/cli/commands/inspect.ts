import type { CommandModule } from 'yargs';
import { AutopruneError, ErrorCodes, quote } from '../../core/errors.js';
import type { GroupSpec } from '../../core/space.js';
import type { Cost } from '../../core/types.js';
import { initBackend } from '../../engine/backend.js';
import { analyzeModel } from '../../model/analysis.js';
import { costOf, layerCosts } from '../../model/flops.js';
import { loadModel } from '../../model/io.js';
import { analyzeGraph } from '../../model/ir/analyze.js';
import { graphCost, nodeCosts } from '../../model/ir/cost.js';
import { isOnnxPath, loadOnnxGraph } from '../../model/ir/onnx-import.js';
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
    await initBackend('cpu');
    const shape = args.input.split('x').map(Number);
    if (shape.length !== 3 || shape.some((n) => !Number.isInteger(n) || n < 1)) {
      throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected --input as HxWxC (e.g. 28x28x1), got ${quote(args.input)}`);
    }
    if (isOnnxPath(args.model)) return inspectOnnx(args);
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
    printTables(
      a.groups,
      ['layer', 'class'],
      layers.map((l) => ({ ...l, kind: l.className })),
      total,
    );
  }),
};

/** An ONNX model through the graph: the same tables, nodes named by their ONNX node names. */
async function inspectOnnx(args: Args): Promise<void> {
  const graph = await loadOnnxGraph(args.model);
  const a = analyzeGraph(graph);
  const total = graphCost(a, null);
  const layers = nodeCosts(a, null);
  const input = graph.nodes.find((n) => n.name === graph.input);
  const [c, h, w] = input?.op === 'Input' ? input.shape : [0, 0, 0];
  if (args.json) {
    info(JSON.stringify({ input: { name: graph.source.inputName, layout: graph.inputLayout, shape: [c, h, w] }, groups: a.groups, layers, total }, null, 2));
    return;
  }
  info(`${args.model}: ${a.groups.length} prunable groups, ${mmacs(total.macs)} MMACs, ${total.params} params`);
  info(`input \`${graph.source.inputName}\`: ${graph.inputLayout} images of ${c} channels, ${h}x${w} (as \`data\` shape: ${h}x${w}x${c})\n`);
  printTables(
    a.groups,
    ['node', 'op'],
    layers.map((l) => ({ ...l, kind: l.op })),
    total,
  );
}

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
