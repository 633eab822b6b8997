import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import type { Split } from './types.js';

/** Floats per example of a split. */
export function exampleSize(split: Split): number {
  return split.shape[0] * split.shape[1] * split.shape[2];
}

/** A new split holding copies of the given examples, in the given order. */
export function gather(split: Split, indices: ArrayLike<number>): Split {
  const size = exampleSize(split);
  const images = new Float32Array(indices.length * size);
  const labels = new Uint8Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    images.set(split.images.subarray(j * size, (j + 1) * size), i * size);
    labels[i] = split.labels[j];
  }
  return { images, labels, count: indices.length, shape: split.shape };
}

/** The first `n` examples as views (no copy); `n` is clamped to the split's count. */
export function head(split: Split, n: number): Split {
  if (!Number.isInteger(n) || n < 0) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected a limit that is an integer >= 0, got ${quote(n)}`);
  }
  const count = Math.min(n, split.count);
  if (count === split.count) return split;
  return {
    images: split.images.subarray(0, count * exampleSize(split)),
    labels: split.labels.subarray(0, count),
    count,
    shape: split.shape,
  };
}

/**
 * Which examples go to validation. `validationSize` is a count (integer >= 0) or a fraction in
 * (0, 1). Stratified: each class gives its share (largest remainder, so the total is exact),
 * chosen by one seeded shuffle. Both index lists are ascending; they are disjoint and together
 * cover 0..count-1. Same labels + size + seed -> same indices.
 */
export function splitIndices(labels: Uint8Array, validationSize: number, seed: number): { train: Int32Array; validation: Int32Array } {
  const count = labels.length;
  const nVal = resolveValidationSize(validationSize, count);
  const classCounts = new Map<number, number>();
  for (const l of labels) classCounts.set(l, (classCounts.get(l) ?? 0) + 1);
  const classes = [...classCounts.keys()].sort((a, b) => a - b);
  const quota = new Map<number, number>();
  const remainders: { cls: number; frac: number }[] = [];
  let assigned = 0;
  for (const cls of classes) {
    const exact = (classCounts.get(cls)! * nVal) / count;
    const q = Math.floor(exact);
    quota.set(cls, q);
    assigned += q;
    remainders.push({ cls, frac: exact - q });
  }
  remainders.sort((a, b) => b.frac - a.frac || a.cls - b.cls);
  for (let i = 0; assigned < nVal; i++, assigned++) {
    const cls = remainders[i].cls;
    quota.set(cls, quota.get(cls)! + 1);
  }

  const order = new Rng(seed).shuffle(Array.from({ length: count }, (_, i) => i));
  const inValidation = new Uint8Array(count);
  for (const i of order) {
    const q = quota.get(labels[i])!;
    if (q > 0) {
      inValidation[i] = 1;
      quota.set(labels[i], q - 1);
    }
  }
  const train = new Int32Array(count - nVal);
  const validation = new Int32Array(nVal);
  let t = 0;
  let v = 0;
  for (let i = 0; i < count; i++) {
    if (inValidation[i]) validation[v++] = i;
    else train[t++] = i;
  }
  return { train, validation };
}

function resolveValidationSize(size: number, count: number): number {
  if (size > 0 && size < 1) return Math.round(size * count);
  if (Number.isInteger(size) && size >= 0 && size <= count) return size;
  throw new AutopruneError(
    ErrorCodes.INVALID_ARGUMENT,
    `Expected \`validationSize\` to be an integer in [0, ${count}] or a fraction in (0, 1), got ${quote(size)}`,
  );
}

/**
 * Carve a validation split out of the training split (stratified by label, seeded; see
 * `splitIndices`). The search scores candidates on `validation` only; the dataset's test split
 * stays held out for the finalists.
 */
export function splitTrainValidation(train: Split, validationSize: number, seed: number): { train: Split; validation: Split } {
  const idx = splitIndices(train.labels.subarray(0, train.count), validationSize, seed);
  return { train: gather(train, idx.train), validation: gather(train, idx.validation) };
}

/**
 * A copy of a split whose arrays live in SharedArrayBuffers, so worker threads receive it through
 * `workerData` without copying (structured clone shares SharedArrayBuffer memory).
 */
export function shareSplit(split: Split): Split {
  if (split.images.buffer instanceof SharedArrayBuffer && split.labels.buffer instanceof SharedArrayBuffer) return split;
  const images = new Float32Array(new SharedArrayBuffer(split.images.byteLength));
  images.set(split.images);
  const labels = new Uint8Array(new SharedArrayBuffer(split.labels.byteLength));
  labels.set(split.labels);
  return { images, labels, count: split.count, shape: split.shape };
}
