/**
 * The contract of a rule: everything autoprune knows about one node kind (`op`), so that analysis,
 * costs, cutting and export are generic loops over the graph that ask the node's rule.
 */
import type { Cost } from '../../../core/types.js';
import type { OnnxBuilder } from '../../onnx.js';
import type { ModelGraph, Node } from '../graph.js';

/** Shape of one image's tensor: [C, H, W] for feature maps, [F] for features (after Flatten, global pooling, Dense). */
export type Shape = readonly number[];

/** A run of `size` consecutive channels that all come from channel set `set`. */
export interface Seg {
  readonly set: number;
  readonly size: number;
}

/** Channel structure of a tensor's axis 1 (channels, or features of a flattened feature map). */
export interface Channels {
  readonly segs: readonly Seg[];
  /**
   * Non-null when the axis holds the features of a flattened [C, H, W] map: `spatial` = H·W
   * positions per channel, written in `order` (`hwc`: feature = s·C + c; `chw`: feature = c·H·W + s).
   */
  readonly flat: { readonly spatial: number; readonly order: 'chw' | 'hwc' } | null;
}

/** What a rule's `channels` member may do to the analysis' channel sets. */
export interface Coupling {
  /** A new channel set of `size` channels produced by this node (the group id is its first producer's name). */
  newSet(size: number): Seg;
  /** These channels are never pruned (e.g. read by a mixing the cut cannot follow). */
  fix(segs: readonly Seg[]): void;
  /** Channel i of set a and channel i of set b are one channel (element-wise joins). */
  union(a: number, b: number): void;
  /** A one-line error naming the node, for inputs the rule cannot follow. */
  fail(what: string): never;
}

export interface CostInput {
  /** Base (unpruned) shapes. */
  readonly inShapes: readonly Shape[];
  readonly outShape: Shape;
  /** Kept size of axis 1 of each input (features when flattened) and of the output. */
  readonly cin: readonly number[];
  readonly cout: number;
}

export interface CutInput {
  readonly inShapes: readonly Shape[];
  readonly outShape: Shape;
  /** Kept indices (ascending, base numbering) of axis 1 of each input (features when flattened) and of the output. */
  readonly inKeep: readonly (readonly number[])[];
  readonly outKeep: readonly number[];
}

export interface OnnxInput {
  readonly b: OnnxBuilder;
  readonly graph: ModelGraph;
  /** ONNX value names of the node's inputs (NCHW feature maps or [N, F]). */
  readonly ins: readonly string[];
  readonly inShapes: readonly Shape[];
  readonly outShape: Shape;
}

export interface Rule<N extends Node> {
  readonly op: N['op'];
  /** Output shape from the input shapes; throws an AutopruneError on inputs the op cannot take. */
  shape(node: N, ins: readonly Shape[]): Shape;
  /** Channel structure of the output from the inputs' (DepGraph-style coupling). */
  channels(node: N, ins: readonly Channels[], c: Coupling, shapes: { readonly ins: readonly Shape[]; readonly out: Shape }): Channels;
  /** Cuts its weights along the output channels it carries: listed in a group's `layers`. */
  readonly owns: boolean;
  /** MACs and params of the node at the kept widths (docs/flops.md). */
  cost(node: N, io: CostInput): Cost;
  /** The node at the kept widths, owning fresh arrays (never the input node's). */
  cut(node: N, k: CutInput): N;
  /** Writes the node as ONNX nodes; returns the ONNX value holding its output. */
  onnx(node: N, x: OnnxInput): string;
  /** Output-major weights ([out, rest]) whose per-filter norms rank a producer's channels (l1/l2 importance). */
  filters?(node: N): Float32Array | null;
  /** Per-channel scale whose magnitude ranks channels (bn-gamma importance), when the node learns one. */
  channelScale?(node: N): Float32Array | null;
}
