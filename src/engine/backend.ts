/**
 * Backend choice for training and inference: `tensorflow` (tfjs-node-gpu / tfjs-node, when the user
 * has installed one) > `wasm` (XNNPACK + the project's training kernels) > `cpu` (pure JS, slow).
 */
import * as tf from '@tensorflow/tfjs';
import { AutopruneError, ErrorCodes } from '../core/errors.js';
import { registerWasmTrainingKernels } from './wasm-kernels.js';

export const BACKEND_NAMES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export type NodeBinding = '@tensorflow/tfjs-node-gpu' | '@tensorflow/tfjs-node';
/** Tried in this order; the GPU build first. */
const NODE_BINDINGS: readonly NodeBinding[] = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

export interface BackendInfo {
  /** The tfjs backend actually active: 'tensorflow' | 'wasm' | 'cpu'. */
  name: string;
  requested: BackendName;
  tfjsVersion: string;
  /** wasm only: whether the SIMD build was loaded. */
  wasmSimd?: boolean;
  /** wasm only: XNNPACK threads (tfjs runs wasm single-threaded under Node). */
  threads?: number;
  /** Which native binding provides `tensorflow`, or null when none is installed. */
  nodeBinding?: NodeBinding | null;
}

export const TENSORFLOW_UNAVAILABLE_MESSAGE =
  'Backend `tensorflow` needs @tensorflow/tfjs-node or @tensorflow/tfjs-node-gpu; install one ' + '(npm i @tensorflow/tfjs-node) or use --backend wasm';

/** Imports a native binding package (which registers backend `tensorflow`); rejects when it is missing or broken. */
export type BindingLoader = (pkg: NodeBinding) => Promise<unknown>;

// A variable specifier keeps bundlers and tsc from resolving an optional package.
const importBinding: BindingLoader = (pkg) => import(pkg as string);

/** What the real loader found, once per process (importing twice would register the backend twice). */
let loadedBinding: NodeBinding | null | undefined;
/** Why an installed binding failed to load (its native library, usually), for the error message. */
let bindingFailure: string | null = null;

interface BindingFound {
  readonly binding: NodeBinding | null;
  readonly failure: string | null;
}

/** The first binding `load` can import, and why an installed one failed, if one did. */
async function findBinding(load: BindingLoader): Promise<BindingFound> {
  let failure: string | null = null;
  for (const pkg of NODE_BINDINGS) {
    try {
      await load(pkg);
      return { binding: pkg, failure };
    } catch (e) {
      // Not installed: try the next one. Installed but broken: remember why, then try the next one.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND')
        failure ??= `${pkg} is installed but failed to load: ${(e as Error).message.split('\n')[0]}`;
    }
  }
  return { binding: null, failure };
}

/** The real loader's result is cached; an injected one (tests) is asked every time. */
async function loadNodeBinding(load: BindingLoader = importBinding): Promise<BindingFound> {
  if (load !== importBinding) return findBinding(load);
  if (loadedBinding === undefined) ({ binding: loadedBinding, failure: bindingFailure } = await findBinding(load));
  return { binding: loadedBinding, failure: bindingFailure };
}

async function activate(name: string): Promise<boolean> {
  try {
    const ok = await tf.setBackend(name);
    if (ok) await tf.ready();
    return ok && tf.getBackend() === name;
  } catch {
    return false;
  }
}

async function initTensorflow(load?: BindingLoader): Promise<BindingFound> {
  const found = await loadNodeBinding(load);
  if (found.binding == null) return found;
  return (await activate('tensorflow')) ? found : { ...found, binding: null };
}

async function initWasm(): Promise<boolean> {
  await import('@tensorflow/tfjs-backend-wasm');
  if (!(await activate('wasm'))) return false;
  registerWasmTrainingKernels();
  return true;
}

async function wasmDetails(): Promise<Pick<BackendInfo, 'wasmSimd' | 'threads'>> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  let wasmSimd: boolean | undefined;
  try {
    wasmSimd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  } catch {
    wasmSimd = undefined;
  }
  let threads: number | undefined;
  try {
    threads = wasm.getThreadsCount();
  } catch {
    threads = undefined;
  }
  return { wasmSimd, threads };
}

export interface BackendOptions {
  /**
   * How the native bindings are imported (default: `import()`, once per process). Tests inject a
   * loader so that what they assert does not depend on whether this host has tfjs-node installed.
   */
  readonly loadBinding?: BindingLoader;
}

/**
 * Activates a tfjs backend. `auto` tries tensorflow, then wasm, then cpu. An explicit
 * `tensorflow` without a native binding installed throws BACKEND_UNAVAILABLE.
 */
export async function initBackend(name: BackendName, o: BackendOptions = {}): Promise<BackendInfo> {
  // Production mode: no per-op NaN checks, and no 'install tfjs-node' banner on every run.
  tf.enableProdMode();
  const base = { requested: name, tfjsVersion: tf.version.tfjs };
  // wasm and cpu report a binding only when one was loaded already (they never import one).
  const known = o.loadBinding ? null : (loadedBinding ?? null);
  switch (name) {
    case 'tensorflow': {
      const { binding, failure } = await initTensorflow(o.loadBinding);
      if (binding == null)
        throw new AutopruneError(ErrorCodes.BACKEND_UNAVAILABLE, failure ? `${failure}; use --backend wasm` : TENSORFLOW_UNAVAILABLE_MESSAGE);
      return { ...base, name: 'tensorflow', nodeBinding: binding };
    }
    case 'wasm': {
      if (!(await initWasm())) {
        throw new AutopruneError(ErrorCodes.BACKEND_UNAVAILABLE, 'Backend `wasm` failed to initialise; use --backend cpu');
      }
      return { ...base, name: 'wasm', nodeBinding: known, ...(await wasmDetails()) };
    }
    case 'cpu': {
      if (!(await activate('cpu'))) {
        throw new AutopruneError(ErrorCodes.BACKEND_UNAVAILABLE, 'Backend `cpu` failed to initialise');
      }
      return { ...base, name: 'cpu', nodeBinding: known };
    }
    case 'auto': {
      const { binding } = await initTensorflow(o.loadBinding);
      if (binding != null) return { ...base, name: 'tensorflow', nodeBinding: binding };
      if (await initWasm()) return { ...base, name: 'wasm', nodeBinding: null, ...(await wasmDetails()) };
      if (await activate('cpu')) return { ...base, name: 'cpu', nodeBinding: null };
      throw new AutopruneError(ErrorCodes.BACKEND_UNAVAILABLE, 'No tfjs backend could be initialised (tried tensorflow, wasm, cpu)');
    }
    default: {
      const never: never = name;
      throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected backend to be one of ${BACKEND_NAMES.join(', ')}, got \`${String(never)}\``);
    }
  }
}

/** Facts for `autoprune doctor`: active backend, versions, native binding, wasm SIMD/threads. */
export async function describeBackend(): Promise<Record<string, string>> {
  const active = tf.getBackend() ?? 'none';
  const { binding } = await loadNodeBinding();
  const out: Record<string, string> = {
    backend: active,
    tfjs: tf.version.tfjs,
    'tfjs-node binding': binding ?? 'not installed',
    node: process.version,
  };
  try {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    out['tfjs-backend-wasm'] = wasm.version_wasm;
    if (active === 'wasm') {
      const d = await wasmDetails();
      out['wasm simd'] = d.wasmSimd == null ? 'unknown' : String(d.wasmSimd);
      out['wasm threads'] = d.threads == null ? 'unknown' : String(d.threads);
    }
  } catch {
    out['tfjs-backend-wasm'] = 'not installed';
  }
  return out;
}
