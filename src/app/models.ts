/**
 * What `autoprune inspect` and `autoprune doctor` look at: a model's prunable groups and costs, and
 * this host's engines and datasets. They return data; the CLI prints it.
 */
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import type { GroupSpec } from '../core/space.js';
import type { Cost } from '../core/types.js';
import { describeDatasets } from '../data/index.js';
import { BACKEND_NAMES, type BackendName, describeBackend, initBackend } from '../engine/backend.js';
import { describeOnnxRuntime, type OnnxRuntimeInfo } from '../engine/onnxruntime.js';
import { torchStatus, torchThreads } from '../engine/torch.js';
import { analyzeModel } from '../model/analysis.js';
import { costOf, layerCosts } from '../model/flops.js';
import { loadModel } from '../model/io.js';
import { analyzeGraph } from '../model/ir/analyze.js';
import { graphCost, nodeCosts } from '../model/ir/cost.js';
import { isOnnxPath, loadOnnxGraph } from '../model/ir/onnx-import.js';
import { buildZooModel, isZooName, ZOO_NAMES } from '../model/zoo.js';

export { BACKEND_NAMES, type BackendName, ZOO_NAMES };

// ---- inspect -------------------------------------------------------------------------------------

export interface InspectOptions {
  /** A zoo name, a tfjs model.json or a .onnx file. */
  readonly model: string;
  /** Zoo input shape as `HxWxC`. */
  readonly input: string;
  /** Zoo classifier outputs. */
  readonly classes: number;
  /** Zoo width multiplier. */
  readonly width: number;
}

export type Inspection =
  | {
      readonly format: 'tfjs';
      readonly groups: readonly GroupSpec[];
      readonly layers: ReturnType<typeof layerCosts>;
      readonly total: Cost;
    }
  | {
      readonly format: 'onnx';
      /** The graph's input: its ONNX name, layout and [C, H, W]. */
      readonly input: { readonly name: string; readonly layout: string; readonly shape: readonly [number, number, number] };
      readonly groups: readonly GroupSpec[];
      readonly layers: ReturnType<typeof nodeCosts>;
      readonly total: Cost;
    };

/** The prunable groups, per-layer costs and total of a zoo model, a tfjs model.json or an ONNX model. */
export async function inspectModel(o: InspectOptions): Promise<Inspection> {
  await initBackend('cpu');
  const shape = o.input.split('x').map(Number);
  if (shape.length !== 3 || shape.some((n) => !Number.isInteger(n) || n < 1)) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected --input as HxWxC (e.g. 28x28x1), got ${quote(o.input)}`);
  }
  if (isOnnxPath(o.model)) {
    const graph = await loadOnnxGraph(o.model);
    const a = analyzeGraph(graph);
    const input = graph.nodes.find((n) => n.name === graph.input);
    const [c, h, w] = input?.op === 'Input' ? input.shape : [0, 0, 0];
    return {
      format: 'onnx',
      input: { name: graph.source.inputName, layout: graph.inputLayout, shape: [c, h, w] },
      groups: a.groups,
      layers: nodeCosts(a, null),
      total: graphCost(a, null),
    };
  }
  const model = isZooName(o.model)
    ? buildZooModel(o.model, { inputShape: shape as [number, number, number], numClasses: o.classes, width: o.width })
    : await loadModel(o.model);
  const a = analyzeModel(model);
  return { format: 'tfjs', groups: a.groups, layers: layerCosts(a, null), total: costOf(a, null) };
}

// ---- doctor --------------------------------------------------------------------------------------

export interface HostReport {
  /** The tfjs backend asked for, and what the running one says of itself (name, version, threads...). */
  readonly backend: { readonly requested: string; readonly details: Readonly<Record<string, string>> };
  readonly onnxruntime: OnnxRuntimeInfo;
  readonly torch:
    | { readonly loaded: true; readonly version: string; readonly cuda: boolean; readonly threads: number }
    | { readonly loaded: false; readonly reason: string };
  readonly datasets: Awaited<ReturnType<typeof describeDatasets>>;
}

/** The tfjs backend, onnxruntime, libtorch and the datasets found on this host (`autoprune doctor`). */
export async function describeHost(o: { backend?: BackendName; dataDir?: string }): Promise<HostReport> {
  const b = await initBackend(o.backend ?? 'auto');
  const details = Object.fromEntries(Object.entries(await describeBackend()).map(([k, v]) => [k, String(v)]));
  const onnxruntime = await describeOnnxRuntime();
  const t = torchStatus();
  return {
    backend: { requested: b.requested, details },
    onnxruntime,
    // One worker's threads: what `train` and the fine-tune rungs get on this host.
    torch: t.loaded
      ? { loaded: true, version: t.binding.version, cuda: t.binding.cudaAvailable, threads: torchThreads(1) }
      : { loaded: false, reason: t.reason },
    datasets: await describeDatasets({ dataDir: o.dataDir }),
  };
}
