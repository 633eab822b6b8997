/**
 * Training throughput of the reference 22-MMAC CNN (c32-c32-pool-c64-c64-pool-c128-GAP-dense on
 * 28x28x1) on the active tfjs backend. Run directly: `node --import tsx bench/kernels.ts [backend]`.
 */
import * as tf from '@tensorflow/tfjs';
import { type BackendName, initBackend } from '../src/engine/backend.js';

export interface TrainingBenchOptions {
  /** Backend to initialise first; default 'wasm'. */
  backend?: BackendName;
  /** Default 128. */
  batchSize?: number;
  /** Timed steps; default 5. */
  steps?: number;
  /** Untimed steps first; default 1. */
  warmup?: number;
}

export interface TrainingBenchResult {
  backend: string;
  batchSize: number;
  steps: number;
  /** Mean over the timed steps. */
  msPerStep: number;
  imgPerSec: number;
  /** Fastest single step: the steadier number on a shared, noisy machine. */
  bestMsPerStep: number;
  bestImgPerSec: number;
}

export function referenceCnn(): tf.LayersModel {
  const conv = (filters: number) => tf.layers.conv2d({ filters, kernelSize: 3, padding: 'same', activation: 'relu' });
  return tf.sequential({
    layers: [
      tf.layers.conv2d({ inputShape: [28, 28, 1], filters: 32, kernelSize: 3, padding: 'same', activation: 'relu' }),
      conv(32),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      conv(64),
      conv(64),
      tf.layers.maxPooling2d({ poolSize: 2 }),
      conv(128),
      tf.layers.globalAveragePooling2d({}),
      tf.layers.dense({ units: 10, activation: 'softmax' }),
    ],
  });
}

export async function benchTraining(options: TrainingBenchOptions = {}): Promise<TrainingBenchResult> {
  const { backend = 'wasm', batchSize = 128, steps = 5, warmup = 1 } = options;
  const info = await initBackend(backend);
  const model = referenceCnn();
  const optimizer = tf.train.adam(1e-3);
  // Inputs need not be random for a throughput measure: a fixed ramp keeps the bench deterministic.
  const x = tf.tidy(() => tf.linspace(0, 1, batchSize * 28 * 28).reshape([batchSize, 28, 28, 1]));
  const y = tf.tidy(() =>
    tf.oneHot(
      tf.tensor1d(
        Int32Array.from({ length: batchSize }, (_, i) => i % 10),
        'int32',
      ),
      10,
    ),
  );
  const step = async (): Promise<void> => {
    const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, true);
    await loss?.data();
    loss?.dispose();
  };
  for (let i = 0; i < warmup; i++) await step();
  const t0 = performance.now();
  let bestMsPerStep = Number.POSITIVE_INFINITY;
  for (let i = 0; i < steps; i++) {
    const s0 = performance.now();
    await step();
    bestMsPerStep = Math.min(bestMsPerStep, performance.now() - s0);
  }
  const msPerStep = (performance.now() - t0) / steps;
  tf.dispose([x, y]);
  optimizer.dispose();
  model.dispose();
  return {
    backend: info.name,
    batchSize,
    steps,
    msPerStep,
    imgPerSec: (batchSize * 1000) / msPerStep,
    bestMsPerStep,
    bestImgPerSec: (batchSize * 1000) / bestMsPerStep,
  };
}

/** Milliseconds spent per kernel over one training step (for finding the next bottleneck). */
export async function profileTrainingStep(batchSize = 128): Promise<Array<[string, number]>> {
  const model = referenceCnn();
  const optimizer = tf.train.sgd(1e-3);
  const x = tf.zeros([batchSize, 28, 28, 1]);
  const y = tf.tidy(() =>
    tf.oneHot(
      tf.tensor1d(
        Int32Array.from({ length: batchSize }, (_, i) => i % 10),
        'int32',
      ),
      10,
    ),
  );
  const run = () => optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.apply(x, { training: true }) as tf.Tensor) as tf.Scalar, true);
  tf.dispose(run() ?? []);
  const prof = await tf.profile(() => run() as tf.Tensor);
  const byName = new Map<string, number>();
  for (const k of prof.kernels) byName.set(k.name, (byName.get(k.name) ?? 0) + Number(k.kernelTimeMs));
  tf.dispose([x, y]);
  optimizer.dispose();
  model.dispose();
  return [...byName.entries()].sort((a, b) => b[1] - a[1]);
}

const isMain = process.argv[1] != null && import.meta.url.endsWith(process.argv[1].replace(/\\/g, '/'));
if (isMain) {
  const backend = (process.argv[2] ?? 'wasm') as BackendName;
  const r = await benchTraining({ backend });
  console.log(
    `training ${r.backend}: batch ${r.batchSize}, mean ${r.msPerStep.toFixed(0)} ms/step (${r.imgPerSec.toFixed(1)} img/s), ` +
      `best ${r.bestMsPerStep.toFixed(0)} ms (${r.bestImgPerSec.toFixed(1)} img/s)`,
  );
  if (process.argv.includes('--profile')) {
    for (const [name, ms] of await profileTrainingStep()) console.log(`  ${name.padEnd(36)} ${ms.toFixed(1)} ms`);
  }
}
