/**
 * autoprune's own model representation: a small dataflow graph of typed nodes whose weights are
 * Float32Arrays in one canonical layout. Every importer (tfjs LayersModel, ONNX) produces it, every
 * engine (onnxruntime, libtorch, tfjs) builds from it, and analysis, pruning and costs are array
 * work over it. Per-kind knowledge lives in one rule object per `op` (rules/*.ts, looked up in a
 * table), in the manner of Torch-Pruning's per-layer pruner table.
 *
 * Conventions (whatever the format the model came in):
 * - Feature maps are logically [N, C, H, W]; `inputLayout` says how the model's own input is laid
 *   out, so an engine or exporter transposes at the edge and a pruned model leaves in the layout it
 *   came in.
 * - Conv weights are OIHW ([out, in / groups, kh, kw]); depthwise is a Conv with groups = channels.
 * - Dense weights are [out, in] (ONNX Gemm with transB = 1, PyTorch's nn.Linear).
 * - Every node has exactly one output tensor, named by the node's `name`; `inputs` name the nodes
 *   (or the graph input) they read.
 */

export type Layout = 'NCHW' | 'NHWC';

/** Padding as [top, left, bottom, right] pixels (ONNX's pads order is [t, l, b, r] for 2-D). */
export type Pads4 = readonly [number, number, number, number];
export type Pair = readonly [number, number];

export type Activation =
  | { readonly kind: 'relu' }
  | { readonly kind: 'clip'; readonly min: number; readonly max: number } // ReLU6 = clip(0, 6)
  | { readonly kind: 'leakyRelu'; readonly alpha: number }
  | { readonly kind: 'elu'; readonly alpha: number }
  | { readonly kind: 'sigmoid' }
  | { readonly kind: 'hardSigmoid'; readonly alpha: number; readonly beta: number }
  | { readonly kind: 'hardSwish' }
  | { readonly kind: 'silu' }
  | { readonly kind: 'tanh' }
  | { readonly kind: 'selu' }
  | { readonly kind: 'softplus' }
  | { readonly kind: 'softsign' }
  | { readonly kind: 'softmax' }; // over the channel (feature) axis

interface Base {
  readonly name: string;
  readonly inputs: readonly string[];
}

export interface InputNode extends Base {
  readonly op: 'Input';
  /** [C, H, W] of one image. */
  readonly shape: readonly [number, number, number];
}

export interface ConvNode extends Base {
  readonly op: 'Conv';
  readonly kernel: Pair;
  readonly strides: Pair;
  readonly pads: Pads4;
  readonly dilations: Pair;
  readonly groups: number;
  /** OIHW: [out, in / groups, kh, kw]. */
  readonly weight: Float32Array;
  readonly bias: Float32Array | null;
}

export interface BatchNormNode extends Base {
  readonly op: 'BatchNormalization';
  readonly epsilon: number;
  /** Per channel. `scale`/`bias` are ones/zeros when the source had none (Keras center/scale false). */
  readonly scale: Float32Array;
  readonly bias: Float32Array;
  readonly mean: Float32Array;
  readonly variance: Float32Array;
  /**
   * Which of scale/bias the source model learns (Keras `scale`/`center`); absent = both. Only the
   * parameter count reads it (a Keras BN without gamma has 3 weights per channel).
   */
  readonly affine?: { readonly scale: boolean; readonly bias: boolean };
}

export interface ActivationNode extends Base {
  readonly op: 'Activation';
  readonly fn: Activation;
}

/** Element-wise sum of two or more tensors of the same shape. */
export interface AddNode extends Base {
  readonly op: 'Add';
}

/** Element-wise product; one side may be a per-channel gate [N, C, 1, 1] (squeeze-and-excitation). */
export interface MulNode extends Base {
  readonly op: 'Mul';
}

/** Concatenation along the channel axis. */
export interface ConcatNode extends Base {
  readonly op: 'Concat';
}

export interface PoolNode extends Base {
  readonly op: 'Pool';
  readonly mode: 'max' | 'avg';
  readonly kernel: Pair;
  readonly strides: Pair;
  readonly pads: Pads4;
  readonly ceilMode: boolean;
  /** Average pooling: divide by the full window (true, PyTorch's default) or by the valid pixels. */
  readonly countIncludePad: boolean;
}

/** Global average or max over H and W; the output is [N, C, 1, 1] when `keepDims`, else [N, C]. */
export interface GlobalPoolNode extends Base {
  readonly op: 'GlobalPool';
  readonly mode: 'max' | 'avg';
  readonly keepDims: boolean;
}

/** Constant zero padding of H and W. */
export interface PadNode extends Base {
  readonly op: 'Pad';
  readonly pads: Pads4;
  readonly value: number;
}

/**
 * [N, C, H, W] -> [N, C*H*W]. `order` is the order the features are written in: `chw` (ONNX/PyTorch
 * flatten of NCHW) or `hwc` (Keras' Flatten of NHWC), so a following Dense's input columns map back
 * to channels.
 */
export interface FlattenNode extends Base {
  readonly op: 'Flatten';
  readonly order: 'chw' | 'hwc';
}

export interface DenseNode extends Base {
  readonly op: 'Dense';
  /** [out, in]. */
  readonly weight: Float32Array;
  readonly bias: Float32Array | null;
  readonly units: number;
}

/** Dropout at inference, Identity: passes its input through. */
export interface IdentityNode extends Base {
  readonly op: 'Identity';
}

export type Node =
  | InputNode
  | ConvNode
  | BatchNormNode
  | ActivationNode
  | AddNode
  | MulNode
  | ConcatNode
  | PoolNode
  | GlobalPoolNode
  | PadNode
  | FlattenNode
  | DenseNode
  | IdentityNode;

export type Op = Node['op'];
export type NodeOf<O extends Op> = Extract<Node, { op: O }>;

/**
 * A model: nodes in topological order (every input named before it is read), one image input, one
 * [N, classes] output.
 */
export interface ModelGraph {
  readonly nodes: readonly Node[];
  /** Name of the Input node. */
  readonly input: string;
  /** Name of the node whose output is the model's output (logits or probabilities). */
  readonly output: string;
  /** Layout of the model's own input tensor, kept for export. */
  readonly inputLayout: Layout;
  /** Where the graph came from, for messages and export: `tfjs` or `onnx`, and the source's names. */
  readonly source: GraphSource;
}

export interface GraphSource {
  readonly format: 'tfjs' | 'onnx';
  /** The input tensor's name in the source (kept on ONNX export). */
  readonly inputName: string;
  readonly outputName: string;
  /** Source-specific names per node (e.g. an ONNX node's name, a PyTorch module path), for plan.json. */
  readonly origin?: Readonly<Record<string, string>>;
}
