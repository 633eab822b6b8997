/** The `run` section: where and how the study runs (store, engines, workers, leases). */
import { z } from 'zod';
import { int, pathString, positiveInt } from './leaves.js';

export const BACKENDS = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export const WORKER_MODES = ['threads', 'inline', 'none'] as const;
/** Engines per stage: `auto` = the fastest that loads (onnxruntime for the proxy, else tfjs). */
export const PROXY_ENGINES = ['auto', 'onnxruntime', 'tfjs'] as const;
/** `auto` trains on libtorch when its binding loaded, else on tfjs. */
export const TRAIN_ENGINES = ['auto', 'libtorch', 'tfjs'] as const;
const ENGINE_EXPECTATION = `one of ${PROXY_ENGINES.join(', ')}, or a mapping { proxy, train } naming an engine per stage`;

export const runSchema = z.strictObject({
  /** Candidates evaluated at once, 1..16. Default 1. */
  concurrency: int('an integer in [1, 16]', (v) => v >= 1 && v <= 16).default(1),
  /** tfjs backend: `auto` = tensorflow (tfjs-node) when installed, else wasm, else cpu. Default `auto`. */
  backend: z.enum(BACKENDS).default('auto'),
  /** Seed of every random choice (controller, data order, synthetic data). Default 0. */
  seed: int('an integer in [0, 4294967295]', (v) => v >= 0 && v <= 0xffffffff).default(0),
  /** SQLite file holding all studies, or a postgres:// URL (studies shared by several hosts). Default `experiments/autoprune.db`. */
  store: pathString().default('experiments/autoprune.db'),
  /**
   * Which engine runs each stage: `proxy` (BN re-calibration, validation accuracy, latency) and
   * `train` (base model, finalists). One name sets every stage that engine can run (onnxruntime does
   * not train, so `onnxruntime` leaves `train` on `auto`). Default `auto` for both.
   */
  engine: z
    .union(
      [
        z.enum(PROXY_ENGINES),
        z.strictObject({
          proxy: z.enum(PROXY_ENGINES, { error: `one of ${PROXY_ENGINES.join(', ')}` }).default('auto'),
          train: z.enum(TRAIN_ENGINES, { error: `one of ${TRAIN_ENGINES.join(', ')}` }).default('auto'),
        }),
      ],
      { error: ENGINE_EXPECTATION },
    )
    .default('auto'),
  /**
   * Evaluate in worker threads, in the main thread (debugging, tests), or `none`: this process only
   * drives, `autoprune worker` processes evaluate. Default `threads`.
   */
  workers: z.enum(WORKER_MODES).default('threads'),
  /**
   * `autoprune worker` processes (any host) expected to work for this study: the driver keeps this
   * many more trials queued than its own workers take. Default 0.
   */
  remoteWorkers: int('an integer in [0, 1024]', (v) => v >= 0 && v <= 1024).default(0),
  /** Stop the study when this many trials in a row failed (the last error is shown). Default 5. */
  maxConsecutiveFailures: positiveInt().default(5),
  /**
   * A worker holds a trial by a lease it renews every third of this; a worker silent this long
   * (dead, hung, partitioned) loses the trial, which is re-queued. Seconds, >= 1. Default 60.
   */
  leaseSeconds: int('an integer number of seconds >= 1', (v) => v >= 1).default(60),
  /** Claims per trial before a trial whose lease keeps expiring is failed. Default 3. */
  maxAttempts: positiveInt().default(3),
});
