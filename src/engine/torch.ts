/**
 * The libtorch engine: the N-API binding in native/torch (built by `npm run build:torch`, which
 * scripts/setup.sh runs after installing Debian's libtorch-dev). Optional like tfjs-node: detected
 * at run time, and a missing or broken build is never fatal; `doctor` prints why it did not load.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { AutopruneError, ErrorCodes } from '../core/errors.js';

/** float32 is the engine's dtype; float64 is for reference computations (the gradient tests' oracle). */
export type TorchFloatDtype = 'float32' | 'float64';

/** An opaque libtorch tensor. Free it with `dispose()` (the GC would too, but late). */
export interface TorchTensor {
  readonly shape: number[];
  readonly dtype: string;
  readonly disposed: boolean;
  /** The accumulated gradient (a view owned by libtorch), or null before any backward. */
  readonly grad: TorchTensor | null;
  /** A copy on the CPU: Float64Array for float64 tensors, Float32Array for float32, Int32Array for integer ones. */
  data(): Float32Array | Float64Array | Int32Array;
  item(): number;
  dispose(): void;
  backward(): void;
  requiresGrad(on: boolean): TorchTensor;
  zeroGrad(): void;
  /** In-place copy of `src`'s values (same shape), outside autograd. */
  assign(src: TorchTensor): TorchTensor;
}

export interface TorchParamGroup {
  readonly params: readonly TorchTensor[];
  /** Coupled L2 (added to the gradient). */
  readonly weightDecay: number;
}

export interface TorchOptimizerOptions {
  readonly lr: number;
  readonly momentum?: number;
  readonly nesterov?: boolean;
  readonly beta1?: number;
  readonly beta2?: number;
  readonly epsilon?: number;
}

/** libtorch's own torch::optim::SGD / Adam. */
export interface TorchOptimizer {
  /** One update with this step's learning rate. */
  step(lr: number): void;
  zeroGrad(): void;
  save(path: string): void;
  load(path: string): void;
}

export type TorchAttrs = Record<string, number | boolean | string | readonly number[] | undefined>;

export interface TorchBinding {
  /** Runs the op `name` (see native/torch/binding.cc for the table) on `inputs` (null = absent optional). */
  op(name: string, inputs: readonly (TorchTensor | null)[], attrs?: TorchAttrs): TorchTensor;
  /**
   * A copy of `data` as a tensor; Int32Array becomes int64 (class labels). Float data keeps its
   * array's dtype (Float64Array: float64) unless `dtype` names the other. The op `to` converts.
   */
  fromData(data: Float32Array | Float64Array | Int32Array, shape: readonly number[], dtype?: TorchFloatDtype): TorchTensor;
  Optimizer: new (kind: 'sgd' | 'adam', groups: readonly TorchParamGroup[], options: TorchOptimizerOptions) => TorchOptimizer;
  setThreads(n: number): void;
  getThreads(): number;
  setGradEnabled(on: boolean): void;
  /** Tensor handles currently holding memory, in every thread. */
  liveTensors(): number;
  manualSeed(seed: number): void;
  useDevice(device: 'cpu' | 'cuda'): string;
  readonly version: string;
  readonly cudaAvailable: boolean;
}

export const TORCH_ADDON_PATH = fileURLToPath(new URL('../../native/torch/build/Release/autoprune_torch.node', import.meta.url));

export type TorchStatus =
  | { readonly loaded: true; readonly binding: TorchBinding; readonly path: string }
  | { readonly loaded: false; readonly reason: string };

let status: TorchStatus | undefined;

/** Loads the binding once; never throws. */
export function torchStatus(): TorchStatus {
  if (status) return status;
  if (process.env.AUTOPRUNE_NO_TORCH === '1') return (status = { loaded: false, reason: 'disabled by AUTOPRUNE_NO_TORCH=1' });
  if (!existsSync(TORCH_ADDON_PATH)) {
    return (status = { loaded: false, reason: `not built (no ${TORCH_ADDON_PATH}); apt-get install libtorch-dev, then npm run build:torch` });
  }
  // libtorch parallelises with OpenMP, whose threads spin while waiting: on a machine whose cores
  // are shared (other workers, other processes) that spinning collapses throughput (measured here:
  // 2 threads 16 img/s vs 245 with 1 thread under load; 120 with PASSIVE). Read by libgomp when
  // it loads, so it must be set before the addon is; a user's own setting wins.
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
  try {
    const binding = createRequire(import.meta.url)(TORCH_ADDON_PATH) as TorchBinding;
    return (status = { loaded: true, binding, path: TORCH_ADDON_PATH });
  } catch (e) {
    return (status = { loaded: false, reason: `built but failed to load: ${(e as Error).message.split('\n')[0]}` });
  }
}

/** libtorch threads per worker so that workers x threads <= cores. */
export function torchThreads(workers: number, cores = availableParallelism()): number {
  return Math.max(1, Math.floor(cores / Math.max(1, workers)));
}

/**
 * The binding, set up for `workers` concurrent users of this machine's cores; CUDA when libtorch
 * has it and sees a device. Throws when it is not available.
 */
export function initTorch(options: { workers?: number } = {}): TorchBinding {
  const s = torchStatus();
  if (!s.loaded) throw new AutopruneError(ErrorCodes.BACKEND_UNAVAILABLE, `Engine \`libtorch\` is not available: ${s.reason}`);
  s.binding.setThreads(torchThreads(options.workers ?? 1));
  if (s.binding.cudaAvailable) s.binding.useDevice('cuda');
  return s.binding;
}
