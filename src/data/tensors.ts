/**
 * The only file of src/data that touches tfjs: plain batches/splits in, tensors out. The caller
 * owns the returned tensors (wrap in tf.tidy or dispose them). Not re-exported from index.ts, so
 * importing the data module does not load tfjs.
 */
import * as tf from '@tensorflow/tfjs';
import { oneHot } from './batch.js';
import type { Split } from './types.js';

export interface TensorBatch {
  /** [n, h, w, c] float32 in [0, 1]. */
  readonly xs: tf.Tensor4D;
  /** [n, numClasses] float32 one-hot. */
  readonly ys: tf.Tensor2D;
}

/** Tensors of a batch (or of a whole split: `model.fit(x, y)` / `model.evaluate` friendly). */
export function toTensors(batch: Split, numClasses: number): TensorBatch {
  const [h, w, c] = batch.shape;
  const n = batch.count;
  const xs = tf.tensor4d(batch.images.subarray(0, n * h * w * c), [n, h, w, c], 'float32');
  const ys = tf.tensor2d(oneHot(batch.labels.subarray(0, n), numClasses), [n, numClasses], 'float32');
  return { xs, ys };
}
