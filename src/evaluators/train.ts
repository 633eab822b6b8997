/**
 * Training, fine-tuning, adaptive BN re-calibration, accuracy and latency on whichever tfjs backend
 * is active. A hand-written loop over `optimizer.minimize` rather than `model.fit`, so that the
 * recipe (recipe.ts: schedule, batches, augmentation, weight decay) is the one libtorch follows.
 */

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { Rng } from '../core/rng.js';
import { batches } from '../data/batch.js';
import { toTensors } from '../data/tensors.js';
import type { Split } from '../data/types.js';
import { distillNeedsTorch } from './distill.js';
import { isDecayed, runEpochs, type TrainOptions, type TrainResult, validateTrainOptions } from './recipe.js';

export type { TrainOptions, TrainProgress, TrainResult } from './recipe.js';

function makeOptimizer(o: TrainOptions): tf.Optimizer {
  switch (o.optimizer) {
    case 'adam':
      return tf.train.adam(o.learningRate, 0.9, 0.999, ADAM_EPSILON);
    case 'sgd':
      return tf.train.momentum(o.learningRate, o.momentum);
  }
}

/** Adam's epsilon on every engine (tfjs's default; libtorch's would be 1e-8). */
export const ADAM_EPSILON = 1e-7;

/** Logits-based cross entropy (the zoo models output logits). */
export function lossFn(model: tf.LayersModel, xs: tf.Tensor, ys: tf.Tensor, training: boolean): tf.Scalar {
  const logits = model.apply(xs, { training }) as tf.Tensor;
  return tf.losses.softmaxCrossEntropy(ys, logits) as tf.Scalar;
}

/** Coupled L2: (decay / 2) * sum of squared kernels, whose gradient is decay * kernel (libtorch's weight_decay). */
function l2Penalty(vars: readonly tf.Variable[], decay: number): tf.Scalar {
  return tf.tidy(() => tf.addN(vars.map((v) => tf.sum(tf.square(v)))).mul(decay / 2) as tf.Scalar);
}

/** Trains on the active tfjs backend, following the shared recipe (recipe.ts). */
export async function train(model: tf.LayersModel, data: Split, o: TrainOptions): Promise<TrainResult> {
  validateTrainOptions(o);
  // The teacher's logits and the distillation loss are libtorch's (distill.ts).
  if (o.distill) throw distillNeedsTorch();
  const optimizer = makeOptimizer(o);
  const weights = model.trainableWeights;
  const vars = weights.map((w) => (w as unknown as { val: tf.Variable }).val);
  const decayed = weights.filter((w) => isDecayed(w.originalName)).map((w) => (w as unknown as { val: tf.Variable }).val);
  const decay = o.weightDecay ?? 0;
  if (o.resumeFrom) await loadTfjsOptimizer(optimizer, o.resumeFrom);
  try {
    const step = (batch: Split, learningRate: number): number => {
      // tfjs optimizers read the field on every step.
      (optimizer as unknown as { learningRate: number }).learningRate = learningRate;
      return tf.tidy(() => {
        const { xs, ys } = toTensors(batch, o.numClasses);
        const l = optimizer.minimize(
          () => {
            const ce = lossFn(model, xs, ys, true);
            return decay > 0 && decayed.length > 0 ? (ce.add(l2Penalty(decayed, decay)) as tf.Scalar) : ce;
          },
          true,
          vars,
        );
        return l!.dataSync()[0];
      });
    };
    const r = await runEpochs(data, o, step, async (epoch) => o.onEpochEnd?.(epoch, (dir) => saveTfjsOptimizer(optimizer, dir)));
    return { ...r, engine: tf.getBackend() };
  } finally {
    optimizer.dispose();
  }
}

/** Optimizer slots (momentum, Adam moments) as tfjs weights files in `dir`, for resume. */
async function saveTfjsOptimizer(optimizer: tf.Optimizer, dir: string): Promise<void> {
  const named = await optimizer.getWeights();
  const specs = named.map((n) => ({ name: n.name, shape: n.tensor.shape }));
  const parts = await Promise.all(named.map(async (n) => new Float32Array(await n.tensor.data())));
  const total = parts.reduce((a, p) => a + p.length, 0);
  const all = new Float32Array(total);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  await writeFile(join(dir, 'optimizer.json'), JSON.stringify(specs));
  await writeFile(join(dir, 'optimizer.bin'), new Uint8Array(all.buffer));
}

async function loadTfjsOptimizer(optimizer: tf.Optimizer, dir: string): Promise<void> {
  const specs = JSON.parse(await readFile(join(dir, 'optimizer.json'), 'utf8')) as { name: string; shape: number[] }[];
  const buf = await readFile(join(dir, 'optimizer.bin'));
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
  let at = 0;
  const named = specs.map((s) => {
    const n = s.shape.reduce((a, d) => a * d, 1);
    const tensor = tf.tensor(all.subarray(at, at + n), s.shape, 'float32');
    at += n;
    return { name: s.name, tensor };
  });
  await optimizer.setWeights(named);
}

/** Top-1 accuracy on (the first `limit` examples of) a split. */
export function accuracy(model: tf.LayersModel, split: Split, options: { batchSize?: number; limit?: number } = {}): number {
  let correct = 0;
  let total = 0;
  for (const batch of batches(split, options.batchSize ?? 256, { maxExamples: options.limit })) {
    const pred = tf.tidy(() => {
      const [h, w, c] = batch.shape;
      const xs = tf.tensor4d(batch.images, [batch.count, h, w, c]);
      return (model.predict(xs) as tf.Tensor).argMax(-1).dataSync();
    });
    for (let i = 0; i < batch.count; i++) if (pred[i] === batch.labels[i]) correct++;
    total += batch.count;
  }
  return total === 0 ? NaN : correct / total;
}

/**
 * Adaptive BN (EagleEye, Li et al. 2020): after pruning, the BN running statistics no longer
 * match the features; recompute them on `batches` training batches. Each BN's momentum is set to
 * k/(k+1) for batch k, so the moving statistics become the plain average of the batch statistics
 * (PyTorch's `momentum=None` cumulative average); weights are not trained.
 */
export function recalibrateBatchNorm(model: tf.LayersModel, data: Split, o: { batches: number; batchSize: number; seed: number }): number {
  const bns = model.layers.filter((l) => l.getClassName() === 'BatchNormalization') as unknown as { momentum: number }[];
  if (bns.length === 0 || o.batches <= 0) return 0;
  const saved = bns.map((l) => l.momentum);
  let k = 0;
  try {
    for (const batch of batches(data, o.batchSize, { shuffle: new Rng(o.seed), maxBatches: o.batches })) {
      for (const l of bns) l.momentum = k / (k + 1);
      tf.tidy(() => {
        const [h, w, c] = batch.shape;
        model.apply(tf.tensor4d(batch.images, [batch.count, h, w, c]), { training: true });
      });
      k++;
    }
  } finally {
    bns.forEach((l, i) => (l.momentum = saved[i]));
  }
  return k;
}

/** Milliseconds per image for batched inference (median of `runs` after one warm-up). */
export function latencyMs(model: tf.LayersModel, shape: readonly [number, number, number], o: { batchSize: number; runs: number }): number {
  const x = tf.zeros([o.batchSize, ...shape]);
  const run = () => tf.tidy(() => (model.predict(x) as tf.Tensor).dataSync());
  try {
    run();
    const times: number[] = [];
    for (let i = 0; i < Math.max(1, o.runs); i++) {
      const t0 = performance.now();
      run();
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(times.length / 2)] / o.batchSize;
  } finally {
    x.dispose();
  }
}
