import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { bytesToUnitFloats } from './pixels.js';
import type { ImageShape, Split } from './types.js';

/** CIFAR-10 binary version: records of 1 label byte + 3072 pixel bytes (1024 R, 1024 G, 1024 B; row-major 32x32). */
export const CIFAR_SHAPE: ImageShape = [32, 32, 3];
export const CIFAR_CLASSES = 10;
const PLANE = 32 * 32;
const RECORD = 1 + 3 * PLANE;

/** Parse one CIFAR-10 `.bin` batch into HWC floats. `file` names it in error messages. */
export function parseCifarBatch(bytes: Uint8Array, file: string): Split {
  if (bytes.length === 0 || bytes.length % RECORD !== 0) {
    throw new AutopruneError(
      ErrorCodes.DATASET_INVALID,
      `Dataset file ${quote(file)} has ${bytes.length} bytes; expected a non-zero multiple of ${RECORD} (1 label byte + 3072 pixel bytes per record)`,
    );
  }
  const count = bytes.length / RECORD;
  const labels = new Uint8Array(count);
  const hwc = new Uint8Array(count * 3 * PLANE);
  for (let r = 0; r < count; r++) {
    const rec = r * RECORD;
    const label = bytes[rec];
    if (label >= CIFAR_CLASSES) {
      throw new AutopruneError(
        ErrorCodes.DATASET_INVALID,
        `Dataset file ${quote(file)} has label ${label} in record ${r}; expected labels in [0, ${CIFAR_CLASSES})`,
      );
    }
    labels[r] = label;
    const src = rec + 1;
    const dst = r * 3 * PLANE;
    for (let p = 0; p < PLANE; p++) {
      hwc[dst + 3 * p] = bytes[src + p];
      hwc[dst + 3 * p + 1] = bytes[src + PLANE + p];
      hwc[dst + 3 * p + 2] = bytes[src + 2 * PLANE + p];
    }
  }
  return { images: bytesToUnitFloats(hwc), labels, count, shape: CIFAR_SHAPE };
}

/** Concatenate splits of the same shape (the five CIFAR training batches). */
export function concatSplits(parts: readonly Split[]): Split {
  const count = parts.reduce((n, p) => n + p.count, 0);
  const images = new Float32Array(parts.reduce((n, p) => n + p.images.length, 0));
  const labels = new Uint8Array(count);
  let io = 0;
  let lo = 0;
  for (const p of parts) {
    images.set(p.images, io);
    labels.set(p.labels, lo);
    io += p.images.length;
    lo += p.count;
  }
  return { images, labels, count, shape: parts[0]?.shape ?? CIFAR_SHAPE };
}
