/**
 * Channel-group analysis: which output channels of which layers must be cut together.
 *
 * Idea from Torch-Pruning's dependency graph (Fang et al., "DepGraph", CVPR 2023), rebuilt for
 * tfjs-layers topologies: every producer (Conv2D, Dense, the pointwise half of SeparableConv2D)
 * creates a *channel set*; each tensor's channel axis is described as a list of segments of sets;
 * layers that keep channels (BN, depthwise with multiplier 1, pooling, activations) pass segments
 * through; Concatenate joins segment lists; Add unions its inputs' sets index by index (union-find).
 * A *group* is a union of sets none of which is fixed. Sets are fixed when they are the model
 * input, reach a model output (the classifier is never pruned), or feed a layer that mixes channels
 * in a way we do not cut (a depthwise multiplier > 1).
 */
import type * as tf from '@tensorflow/tfjs';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import type { GroupSpec } from '../core/space.js';
import { numberGroups } from './ir/analyze.js';
import { type Graph, type GraphNode, modelTopology, pair, parseTopology, type SerializedModel } from './topology.js';

export interface Seg {
  /** Channel-set id. */
  readonly set: number;
  readonly size: number;
}

/** Channel structure of a layer's output tensor. */
export interface TensorChannels {
  readonly segs: readonly Seg[];
  /** Non-null when the tensor is a Flatten of [H*W, C] (channels last): feature = s * C + c. */
  readonly spatial: number | null;
}

export type LayerKind = 'input' | 'conv' | 'depthwise' | 'separable' | 'dense' | 'bn' | 'add' | 'concat' | 'passthrough' | 'flatten' | 'gap';

/** What cost counting and weight slicing need to know of one layer. */
export interface LayerInfo {
  readonly name: string;
  readonly className: string;
  readonly kind: LayerKind;
  /** Channel structure of the (first) input and of the output. */
  readonly input: TensorChannels | null;
  readonly output: TensorChannels;
  readonly kernel: [number, number];
  readonly depthMultiplier: number;
  readonly useBias: boolean;
  /** Positions the layer is applied at: Ho*Wo for convs, product of middle dims for Dense. */
  readonly positions: number;
  /** BN weights per channel: moving mean/var plus gamma/beta when enabled. */
  readonly bnPerChannel: number;
}

export interface ChannelSet {
  readonly id: number;
  readonly size: number;
  readonly producer: string;
}

export interface Analysis {
  readonly graph: Graph;
  readonly layers: readonly LayerInfo[];
  readonly sets: readonly ChannelSet[];
  /** Group index of each set's channels, or -1 when the set is fixed (never pruned). */
  readonly setGroup: readonly number[];
  readonly groups: readonly GroupSpec[];
}

export const SUPPORTED_LAYERS = {
  InputLayer: 'input',
  Conv2D: 'conv',
  DepthwiseConv2D: 'depthwise',
  SeparableConv2D: 'separable',
  Dense: 'dense',
  BatchNormalization: 'bn',
  Add: 'add',
  Concatenate: 'concat',
  Flatten: 'flatten',
  GlobalAveragePooling2D: 'gap',
  GlobalMaxPooling2D: 'gap',
  MaxPooling2D: 'passthrough',
  AveragePooling2D: 'passthrough',
  Activation: 'passthrough',
  ReLU: 'passthrough',
  LeakyReLU: 'passthrough',
  ELU: 'passthrough',
  Softmax: 'passthrough',
  Dropout: 'passthrough',
  ZeroPadding2D: 'passthrough',
} as const satisfies Record<string, LayerKind>;

type OutputShape = (number | null)[];

/** Analyse a built model. Shapes come from the model; channels from its topology. */
export function analyzeModel(model: tf.LayersModel): Analysis {
  const topology = modelTopology(model);
  const shapes = new Map<string, OutputShape>();
  for (const l of model.layers) shapes.set(l.name, l.outputShape as OutputShape);
  return analyzeTopology(topology, (name) => {
    const s = shapes.get(name);
    if (!s) throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `No output shape for layer \`${name}\``);
    return s;
  });
}

export function analyzeTopology(topology: SerializedModel, shapeOf: (layer: string) => OutputShape): Analysis {
  const graph = parseTopology(topology);
  const sets: ChannelSet[] = [];
  const parent: number[] = [];
  const fixed = new Set<number>();
  const find = (a: number): number => {
    while (parent[a] !== a) {
      parent[a] = parent[parent[a]];
      a = parent[a];
    }
    return a;
  };
  const union = (a: number, b: number): void => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) parent[Math.max(ra, rb)] = Math.min(ra, rb);
  };
  const newSet = (size: number, producer: string): Seg => {
    const id = sets.length;
    sets.push({ id, size, producer });
    parent.push(id);
    return { set: id, size };
  };

  const tensors = new Map<string, TensorChannels>();
  const layers: LayerInfo[] = [];

  for (const node of graph.nodes) {
    const kind = (SUPPORTED_LAYERS as Record<string, LayerKind | undefined>)[node.className];
    if (!kind) {
      throw new AutopruneError(
        ErrorCodes.MODEL_UNSUPPORTED_LAYER,
        `Layer \`${node.name}\` of class \`${node.className}\` is not supported for channel pruning; supported classes: ${Object.keys(SUPPORTED_LAYERS).join(', ')}`,
      );
    }
    const shape = node.name === '__input__' ? batchInputShape(node) : shapeOf(node.name);
    const ins = node.inputs.map((n) => {
      const t = tensors.get(n);
      if (!t) throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Layer \`${node.name}\` reads \`${n}\`, which is not defined before it`);
      return t;
    });
    const input = ins[0] ?? null;
    const lastDim = Number(shape[shape.length - 1]);
    let output: TensorChannels;
    const cfg = node.config;
    let kernel: [number, number] = [1, 1];
    let depthMultiplier = 1;
    let positions = 1;
    const useBias = cfg.use_bias !== false && (kind === 'conv' || kind === 'depthwise' || kind === 'separable' || kind === 'dense');

    switch (kind) {
      case 'input': {
        const seg = newSet(lastDim, node.name);
        fixed.add(seg.set);
        output = { segs: [seg], spatial: null };
        break;
      }
      case 'conv':
      case 'separable': {
        ({ kernel, positions } = convGeometry(node, input, shape));
        if (kind === 'separable') {
          depthMultiplier = Number(cfg.depth_multiplier ?? 1);
          if (depthMultiplier !== 1) input!.segs.forEach((s) => fixed.add(s.set));
        }
        output = { segs: [newSet(lastDim, node.name)], spatial: null };
        break;
      }
      case 'depthwise': {
        ({ kernel, positions } = convGeometry(node, input, shape));
        depthMultiplier = Number(cfg.depth_multiplier ?? 1);
        if (depthMultiplier === 1) {
          output = input!;
        } else {
          input!.segs.forEach((s) => fixed.add(s.set));
          const seg = newSet(lastDim, node.name);
          fixed.add(seg.set);
          output = { segs: [seg], spatial: null };
        }
        break;
      }
      case 'dense': {
        positions = shape.slice(1, -1).reduce<number>((a, d) => a * Number(d), 1);
        output = { segs: [newSet(lastDim, node.name)], spatial: null };
        break;
      }
      case 'bn': {
        const axis = Number(cfg.axis ?? -1);
        if (axis !== -1 && axis !== shape.length - 1) {
          throw new AutopruneError(
            ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY,
            `BatchNormalization \`${node.name}\` normalises axis ${axis}; expected the channel axis (-1)`,
          );
        }
        requireUnflattened(node, input);
        output = input!;
        break;
      }
      case 'add': {
        const [first, ...rest] = ins;
        for (const other of rest) {
          if (!sameStructure(first, other)) {
            throw new AutopruneError(
              ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY,
              `Add \`${node.name}\` joins tensors whose channels come from differently split sources (${describe(first)} vs ${describe(other)}); expected inputs with aligned channel segments`,
            );
          }
          first.segs.forEach((s, i) => union(s.set, other.segs[i].set));
        }
        output = first;
        break;
      }
      case 'concat': {
        const axis = Number(cfg.axis ?? -1);
        if (axis !== -1 && axis !== shape.length - 1) {
          throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Concatenate \`${node.name}\` joins on axis ${axis}; expected the channel axis (-1)`);
        }
        ins.forEach((t) => requireUnflattened(node, t));
        output = { segs: ins.flatMap((t) => t.segs), spatial: null };
        break;
      }
      case 'flatten': {
        requireUnflattened(node, input);
        const inShape = shapeOf(node.inputs[0]);
        const spatial = inShape.slice(1, -1).reduce<number>((a, d) => a * Number(d), 1);
        output = { segs: input!.segs, spatial };
        break;
      }
      case 'gap':
        requireUnflattened(node, input);
        output = { segs: input!.segs, spatial: null };
        break;
      case 'passthrough':
        output = input!;
        break;
    }
    const bnPerChannel = kind === 'bn' ? 2 + (cfg.center === false ? 0 : 1) + (cfg.scale === false ? 0 : 1) : 0;
    tensors.set(node.name, output);
    layers.push({ name: node.name, className: node.className, kind, input, output, kernel, depthMultiplier, useBias, positions, bnPerChannel });
  }

  for (const out of graph.outputNames) {
    for (const s of tensors.get(out)?.segs ?? []) fixed.add(s.set);
  }

  // Groups: one per union-find root with no fixed member; id = first producer's name.
  const { setGroup, groupSets } = numberGroups(sets, find, fixed);
  const groups: GroupSpec[] = groupSets.map((ids, g) => {
    const members = layers.filter((l) => ownsGroupChannels(l, g, setGroup)).map((l) => l.name);
    return { id: sets[ids[0]].producer, channels: sets[ids[0]].size, layers: members };
  });
  return { graph, layers, sets, setGroup, groups };
}

/** A layer "owns" a group's channels when its weights are cut along them on the output side. */
function ownsGroupChannels(l: LayerInfo, g: number, setGroup: readonly number[]): boolean {
  if (l.kind === 'conv' || l.kind === 'separable' || l.kind === 'dense' || l.kind === 'bn' || l.kind === 'depthwise') {
    return l.output.segs.some((s) => setGroup[s.set] === g);
  }
  return false;
}

function sameStructure(a: TensorChannels, b: TensorChannels): boolean {
  return a.spatial === b.spatial && a.segs.length === b.segs.length && a.segs.every((s, i) => s.size === b.segs[i].size);
}

function describe(t: TensorChannels): string {
  return `[${t.segs.map((s) => s.size).join('+')}]`;
}

function batchInputShape(node: GraphNode): OutputShape {
  const s = node.config.batch_input_shape;
  if (!Array.isArray(s)) throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Sequential model has no batch_input_shape on its first layer`);
  return s as OutputShape;
}

/** Checks shared by every convolution kind, then its kernel size and output positions (Ho*Wo). */
function convGeometry(node: GraphNode, input: TensorChannels | null, shape: OutputShape): { kernel: [number, number]; positions: number } {
  requireChannelsLast(node);
  requireUnflattened(node, input);
  requireNoDilation(node);
  return { kernel: pair(node.config.kernel_size, 1), positions: Number(shape[1]) * Number(shape[2]) };
}

function requireChannelsLast(node: GraphNode): void {
  const f = node.config.data_format;
  if (f !== undefined && f !== null && f !== 'channels_last') {
    throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Layer \`${node.name}\` uses data_format ${quote(f)}; expected channels_last`);
  }
}

function requireNoDilation(node: GraphNode): void {
  const d = pair(node.config.dilation_rate, 1);
  if (d[0] !== 1 || d[1] !== 1) {
    throw new AutopruneError(
      ErrorCodes.MODEL_UNSUPPORTED_LAYER,
      `Layer \`${node.name}\` of class \`${node.className}\` has dilation_rate ${quote(d)}; expected [1, 1]`,
    );
  }
}

function requireUnflattened(node: GraphNode, t: TensorChannels | null): void {
  if (!t) throw new AutopruneError(ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY, `Layer \`${node.name}\` has no input`);
  if (t.spatial !== null) {
    throw new AutopruneError(
      ErrorCodes.MODEL_UNSUPPORTED_TOPOLOGY,
      `Layer \`${node.name}\` of class \`${node.className}\` follows a Flatten; expected only Dense, Dropout or activations after Flatten`,
    );
  }
}
