/**
 * plan.json: the cut of a graph as data a user applies in their own framework. For every
 * convolution, dense layer and batch norm the cut changes, it names the source node (an ONNX node
 * name, a tfjs layer), the PyTorch module path where the ONNX node name gives it, and the kept
 * output and input indices in the base model's numbering. apply_plan.py (beside this file, copied
 * next to plan.json by `autoprune export`) applies it to an nn.Module and its state_dict.
 */
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type GraphAnalysis, keptIndices } from './analyze.js';
import type { Layout, ModelGraph } from './graph.js';

export interface PlanNode {
  /** Graph node name. */
  readonly node: string;
  readonly op: 'Conv' | 'Dense' | 'BatchNormalization';
  /** The node's name in the source model (ONNX node name, tfjs layer name). */
  readonly source: string;
  /** PyTorch module path, e.g. `layer1.0.conv1`, when the source is an ONNX node named by torch.onnx.export; else null. */
  readonly module: string | null;
  /** Base sizes: output channels (Dense: units) and input channels (Dense: input features). */
  readonly outChannels: number;
  readonly inChannels: number;
  /** Kept output and input indices, ascending, in the base model's numbering. */
  readonly keepOut: readonly number[];
  readonly keepIn: readonly number[];
}

export interface PlanFile {
  readonly format: 'autoprune-plan';
  readonly version: 1;
  readonly source: { readonly format: 'tfjs' | 'onnx'; readonly inputName: string; readonly outputName: string };
  /** The model input: its layout and one image's [C, H, W]. */
  readonly input: { readonly layout: Layout; readonly shape: readonly [number, number, number] };
  /** Per prunable group: base channels and kept channel indices. */
  readonly groups: readonly { readonly id: string; readonly channels: number; readonly keep: readonly number[] }[];
  /** Only the nodes whose weights the cut changes. */
  readonly nodes: readonly PlanNode[];
}

/**
 * The module path in a node name written by torch.onnx.export (>= 1.13): `/layer1/layer1.0/conv1/Conv`
 * -> `layer1.0.conv1`. Each scope segment is a module's name relative to the previous segment's
 * (`block.1` inside `block`); the last segment is the op. Null for other names.
 */
export function torchModulePath(onnxName: string): string | null {
  if (!onnxName.startsWith('/')) return null;
  const segs = onnxName.slice(1).split('/');
  if (segs.length < 2 || segs.some((s) => s === '')) return null;
  let path = '';
  let prev = '';
  for (const s of segs.slice(0, -1)) {
    path = prev && s.startsWith(`${prev}.`) ? path + s.slice(prev.length) : path ? `${path}.${s}` : s;
    prev = s;
  }
  return path;
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** The plan of cutting `a.graph` to `keep` (per group, ascending kept channel indices, in `a.groups` order). */
export function buildPlan(a: GraphAnalysis, keep: readonly (readonly number[])[]): PlanFile {
  const graph: ModelGraph = a.graph;
  const all = a.groups.map((g) => range(g.channels));
  const nodes: PlanNode[] = [];
  graph.nodes.forEach((node, i) => {
    if (node.op !== 'Conv' && node.op !== 'Dense' && node.op !== 'BatchNormalization') return;
    const input = a.inputs[i][0];
    const keepOut = keptIndices(a, a.channels[i], keep);
    const keepIn = keptIndices(a, a.channels[input], keep);
    const outChannels = keptIndices(a, a.channels[i], all).length;
    const inChannels = keptIndices(a, a.channels[input], all).length;
    if (keepOut.length === outChannels && keepIn.length === inChannels) return;
    const source = graph.source.origin?.[node.name] ?? node.name;
    nodes.push({
      node: node.name,
      op: node.op,
      source,
      module: graph.source.format === 'onnx' ? torchModulePath(source) : null,
      outChannels,
      inChannels,
      keepOut,
      keepIn,
    });
  });
  const inputNode = graph.nodes.find((n) => n.name === graph.input);
  if (inputNode?.op !== 'Input') throw new Error(`buildPlan: graph input \`${graph.input}\` is not an Input node`);
  return {
    format: 'autoprune-plan',
    version: 1,
    source: { format: graph.source.format, inputName: graph.source.inputName, outputName: graph.source.outputName },
    input: { layout: graph.inputLayout, shape: inputNode.shape },
    groups: a.groups.map((g, i) => ({ id: g.id, channels: g.channels, keep: keep[i] })),
    nodes,
  };
}

/** The apply_plan.py template shipped beside this module. */
export const APPLY_PLAN_SCRIPT = new URL('./apply_plan.py', import.meta.url);

/** Writes `plan.json` into `dir`, and `apply_plan.py` when the source is ONNX; returns the file names written. */
export async function writePlan(dir: string, plan: PlanFile): Promise<string[]> {
  await writeFile(join(dir, 'plan.json'), `${JSON.stringify(plan)}\n`);
  if (plan.source.format !== 'onnx') return ['plan.json'];
  await copyFile(APPLY_PLAN_SCRIPT, join(dir, 'apply_plan.py'));
  return ['plan.json', 'apply_plan.py'];
}
