/**
 * Typed view of a serialized tfjs-layers topology (what `model.toJSON(null, false)` returns), the
 * only format the model module reads. Functional (`Model`/`Functional`) and `Sequential` models are
 * normalised into one list of nodes with named inputs.
 */
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';

export type JsonDict = { [k: string]: unknown };

export interface SerializedLayer {
  name: string;
  class_name: string;
  config: JsonDict;
  inbound_nodes?: unknown[];
}

export interface SerializedModel {
  class_name: string;
  config: {
    name?: string;
    layers: SerializedLayer[];
    input_layers?: unknown[];
    output_layers?: unknown[];
  };
  [k: string]: unknown;
}

/** One layer application in topological order. */
export interface GraphNode {
  readonly name: string;
  readonly className: string;
  readonly config: JsonDict;
  /** Names of the layers whose outputs feed this one (in argument order). */
  readonly inputs: readonly string[];
}

export interface Graph {
  readonly kind: 'functional' | 'sequential';
  readonly nodes: readonly GraphNode[];
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
}

export function parseTopology(topology: SerializedModel): Graph {
  const cls = topology.class_name;
  const layers = topology.config?.layers;
  if (!Array.isArray(layers)) {
    throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Expected a tfjs LayersModel topology with config.layers, got class ${quote(cls)}`);
  }
  if (cls === 'Sequential') return parseSequential(layers);
  if (cls === 'Model' || cls === 'Functional') return parseFunctional(topology);
  throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Expected a Sequential or functional (Model) topology, got class ${quote(cls)}`);
}

function parseSequential(layers: SerializedLayer[]): Graph {
  const nodes: GraphNode[] = [];
  const first = layers[0];
  if (!first) throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, 'Expected a Sequential model with at least one layer, got none');
  let prev = '__input__';
  if (first.class_name !== 'InputLayer') {
    nodes.push({ name: prev, className: 'InputLayer', config: { batch_input_shape: first.config.batch_input_shape }, inputs: [] });
  }
  for (const l of layers) {
    const name = String(l.config.name ?? l.name);
    nodes.push({ name, className: l.class_name, config: l.config, inputs: l.class_name === 'InputLayer' ? [] : [prev] });
    prev = name;
  }
  return { kind: 'sequential', nodes, inputNames: [nodes[0].name], outputNames: [prev] };
}

function parseFunctional(topology: SerializedModel): Graph {
  const nodes: GraphNode[] = topology.config.layers.map((l) => {
    const inbound = l.inbound_nodes ?? [];
    if (inbound.length > 1) {
      throw new AutopruneError(
        ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY,
        `Layer \`${l.name}\` is applied ${inbound.length} times (shared layer); shared layers cannot be pruned, expected each layer applied once`,
      );
    }
    const args = (inbound[0] ?? []) as unknown[];
    const inputs = args.map((a) => {
      if (!Array.isArray(a) || typeof a[0] !== 'string' || (a[1] ?? 0) !== 0 || (a[2] ?? 0) !== 0) {
        throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Layer \`${l.name}\` has an inbound node ${quote(a)}; expected [layerName, 0, 0, {}]`);
      }
      return a[0] as string;
    });
    return { name: l.name, className: l.class_name, config: l.config, inputs };
  });
  const names = (v: unknown[] | undefined) => (v ?? []).map((x) => (Array.isArray(x) ? String(x[0]) : String(x)));
  return { kind: 'functional', nodes, inputNames: names(topology.config.input_layers), outputNames: names(topology.config.output_layers) };
}

/** `[3, 3]` or `3` -> [3, 3]. */
export function pair(v: unknown, fallback: number): [number, number] {
  if (Array.isArray(v)) return [Number(v[0] ?? fallback), Number(v[1] ?? v[0] ?? fallback)];
  if (typeof v === 'number') return [v, v];
  return [fallback, fallback];
}

/**
 * The model's serialized topology, completed where tfjs-layers 4.22 drops a field: its
 * SeparableConv2D.getConfig() omits `depth_multiplier` (a model rebuilt from that JSON would get
 * multiplier 1 and no longer fit its weights), so it is restored from the live layer.
 */
export function modelTopology(model: { toJSON(a?: undefined, b?: boolean): unknown; layers: { name: string; getClassName(): string }[] }): SerializedModel {
  const topology = structuredClone(model.toJSON(undefined, false)) as SerializedModel;
  const live = new Map(model.layers.map((l) => [l.name, l]));
  for (const l of topology.config.layers) {
    if (l.class_name !== 'SeparableConv2D' || l.config.depth_multiplier !== undefined) continue;
    const layer = live.get(String(l.config.name ?? l.name)) as unknown as { depthMultiplier?: number } | undefined;
    if (layer?.depthMultiplier !== undefined) l.config.depth_multiplier = layer.depthMultiplier;
  }
  return topology;
}
