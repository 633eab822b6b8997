import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import { exampleSize } from './split.js';
import type { Split } from './types.js';

/** A batch of plain arrays; turn it into tensors with `toTensors` (src/data/tensors.ts). */
export type Batch = Split;

export interface BatchOptions {
  /** Shuffle the epoch's order with this RNG (advances it). Default: split order, no copies. */
  readonly shuffle?: Rng;
  /** Visit at most this many examples of the epoch (the last batch may be cut short). Default: all. */
  readonly maxExamples?: number;
  /** Yield at most this many batches. Default: all. */
  readonly maxBatches?: number;
}

/**
 * One epoch over `split` in batches of `batchSize` (the last one may be smaller). Every example is
 * visited exactly once when no limit is given. Unshuffled batches are views into the split;
 * shuffled ones are fresh copies. Batches are never reused, so they may be handed to tfjs as-is.
 */
export function* batches(split: Split, batchSize: number, options: BatchOptions = {}): Generator<Batch> {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected \`batchSize\` to be an integer >= 1, got ${quote(batchSize)}`);
  }
  for (const [name, v] of [
    ['maxExamples', options.maxExamples],
    ['maxBatches', options.maxBatches],
  ] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 0)) {
      throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected \`${name}\` to be an integer >= 0, got ${quote(v)}`);
    }
  }
  let total = Math.min(split.count, options.maxExamples ?? Infinity);
  if (options.maxBatches !== undefined) total = Math.min(total, options.maxBatches * batchSize);
  const size = exampleSize(split);
  const order = options.shuffle ? options.shuffle.shuffle(Array.from({ length: split.count }, (_, i) => i)) : undefined;

  for (let start = 0; start < total; start += batchSize) {
    const count = Math.min(batchSize, total - start);
    if (!order) {
      yield {
        images: split.images.subarray(start * size, (start + count) * size),
        labels: split.labels.subarray(start, start + count),
        count,
        shape: split.shape,
      };
      continue;
    }
    const images = new Float32Array(count * size);
    const labels = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const j = order[start + i];
      images.set(split.images.subarray(j * size, (j + 1) * size), i * size);
      labels[i] = split.labels[j];
    }
    yield { images, labels, count, shape: split.shape };
  }
}

/** One-hot float32 labels, [count, numClasses] row-major. */
export function oneHot(labels: Uint8Array, numClasses: number): Float32Array {
  const out = new Float32Array(labels.length * numClasses);
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= numClasses) {
      throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected labels in [0, ${numClasses}), got ${labels[i]} at index ${i}`);
    }
    out[i * numClasses + labels[i]] = 1;
  }
  return out;
}
