/**
 * Training, fine-tuning, adaptive BN re-calibration, accuracy and latency on whichever tfjs backend
 * is active. A hand-written loop over `optimizer.minimize` rather than `model.fit`, so that the
 * learning-rate schedule, progress reporting and batch order (seeded) are ours.
 */
import * as tf from '@tensorflow/tfjs';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { batches } from '../data/batch.js';
import { toTensors } from '../data/tensors.js';
import type { Split } from '../data/types.js';

export interface TrainOptions {
  readonly epochs: number;
  readonly batchSize: number;
  /** Peak learning rate; decays to 0 on a cosine over all steps (SGDR without restarts). */
  readonly learningRate: number;
  readonly optimizer: 'adam' | 'sgd';
  /** SGD momentum (ignored by adam). */
  readonly momentum: number;
  readonly numClasses: number;
  /** Seeds the batch order (and augmentation). */
  readonly seed: number;
  /** Random horizontal flips (sensible for clothing and CIFAR, not for digits). Default false. */
  readonly augment?: boolean;
  /** Stop an epoch after this many batches (fine-tuning on a budget). Default: whole epoch. */
  readonly maxBatchesPerEpoch?: number;
  readonly onProgress?: (p: TrainProgress) => void;
}

export interface TrainProgress {
  readonly epoch: number;
  readonly step: number;
  readonly steps: number;
  /** Mean loss over the epoch so far. */
  readonly loss: number;
  readonly imagesPerSecond: number;
}

export interface TrainResult {
  readonly epochs: number;
  readonly steps: number;
  readonly seconds: number;
  readonly finalLoss: number;
  readonly imagesPerSecond: number;
}

function makeOptimizer(o: TrainOptions): tf.Optimizer {
  switch (o.optimizer) {
    case 'adam':
      return tf.train.adam(o.learningRate);
    case 'sgd':
      return tf.train.momentum(o.learningRate, o.momentum);
  }
}

/** Logits-based cross entropy (the zoo models output logits). */
export function lossFn(model: tf.LayersModel, xs: tf.Tensor, ys: tf.Tensor, training: boolean): tf.Scalar {
  const logits = model.apply(xs, { training }) as tf.Tensor;
  return tf.losses.softmaxCrossEntropy(ys, logits) as tf.Scalar;
}

function flipHalf(xs: tf.Tensor4D, rng: Rng): tf.Tensor4D {
  return tf.tidy(() => {
    const n = xs.shape[0];
    const mask = tf.tensor1d(Array.from({ length: n }, () => (rng.next() < 0.5 ? 1 : 0)), 'bool');
    return tf.where(mask.reshape([n, 1, 1, 1]).tile([1, xs.shape[1], xs.shape[2], xs.shape[3]]), tf.image.flipLeftRight(xs), xs) as tf.Tensor4D;
  });
}

export async function train(model: tf.LayersModel, data: Split, o: TrainOptions): Promise<TrainResult> {
  if (!(o.epochs >= 0) || !(o.batchSize >= 1) || !(o.learningRate > 0)) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected epochs >= 0, batchSize >= 1, learningRate > 0; got ${quote({ epochs: o.epochs, batchSize: o.batchSize, learningRate: o.learningRate })}`);
  }
  const optimizer = makeOptimizer(o);
  const rng = new Rng(o.seed);
  const perEpoch = Math.min(Math.ceil(data.count / o.batchSize), o.maxBatchesPerEpoch ?? Infinity);
  const steps = perEpoch * o.epochs;
  const started = performance.now();
  let step = 0;
  let images = 0;
  let finalLoss = NaN;
  const vars = model.trainableWeights.map((w) => (w as unknown as { val: tf.Variable }).val);
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    let lossSum = 0;
    let seen = 0;
    for (const batch of batches(data, o.batchSize, { shuffle: rng, maxBatches: perEpoch })) {
      // Cosine decay: lr_t = lr * 0.5 * (1 + cos(pi * t / T)). tfjs optimizers read the field per step.
      (optimizer as unknown as { learningRate: number }).learningRate = 0.5 * o.learningRate * (1 + Math.cos((Math.PI * step) / steps));
      const loss = tf.tidy(() => {
        const { xs, ys } = toTensors(batch, o.numClasses);
        const input = o.augment ? flipHalf(xs, rng) : xs;
        const l = optimizer.minimize(() => lossFn(model, input, ys, true), true, vars);
        return l!.dataSync()[0];
      });
      step++;
      images += batch.count;
      lossSum += loss * batch.count;
      seen += batch.count;
      finalLoss = lossSum / seen;
      o.onProgress?.({ epoch, step, steps, loss: finalLoss, imagesPerSecond: images / ((performance.now() - started) / 1000) });
      if (!Number.isFinite(loss)) {
        optimizer.dispose();
        throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Training diverged at step ${step} (loss ${loss}); lower the learning rate (got ${o.learningRate})`);
      }
      await new Promise<void>((r) => setImmediate(r)); // a macrotask: signal handlers and output run between steps
    }
  }
  optimizer.dispose();
  const seconds = (performance.now() - started) / 1000;
  return { epochs: o.epochs, steps: step, seconds, finalLoss, imagesPerSecond: images / Math.max(seconds, 1e-9) };
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
