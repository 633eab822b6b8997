import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { bytesToUnitFloats } from './pixels.js';
import type { ImageShape, Split } from './types.js';

/**
 * The idx format (MNIST, Fashion-MNIST): bytes 0-1 are zero, byte 2 the element type (0x08 =
 * unsigned byte, the only one these datasets use), byte 3 the number of dimensions; then one
 * big-endian uint32 per dimension; then the elements, row-major.
 */
export interface IdxArray {
  readonly dims: readonly number[];
  readonly data: Uint8Array;
}

const IDX_UBYTE = 0x08;

/** Parse an (already gunzipped) idx file. `file` names it in error messages. */
export function parseIdx(bytes: Uint8Array, file: string): IdxArray {
  const invalid = (what: string): AutopruneError =>
    new AutopruneError(ErrorCodes.DATASET_INVALID, `Dataset file ${quote(file)} is not a valid idx file: ${what}`);
  if (bytes.length < 4) throw invalid(`expected at least a 4-byte header, got ${bytes.length} bytes`);
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const magic = [...bytes.subarray(0, 4)].map((b) => b.toString(16).padStart(2, '0')).join('');
    throw invalid(`expected magic 0x0000 08 0N, got 0x${magic}`);
  }
  if (bytes[2] !== IDX_UBYTE) throw invalid(`expected element type 0x08 (unsigned byte), got 0x${bytes[2].toString(16).padStart(2, '0')}`);
  const ndims = bytes[3];
  if (ndims < 1) throw invalid('expected at least one dimension, got 0');
  const headerSize = 4 + 4 * ndims;
  if (bytes.length < headerSize) throw invalid(`expected a ${headerSize}-byte header for ${ndims} dimensions, got ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const dims: number[] = [];
  let elements = 1;
  for (let d = 0; d < ndims; d++) {
    const size = view.getUint32(4 + 4 * d, false);
    dims.push(size);
    elements *= size;
  }
  const expected = headerSize + elements;
  if (bytes.length !== expected) {
    throw invalid(`header dims [${dims.join(', ')}] need ${expected} bytes, got ${bytes.length} (truncated or corrupt)`);
  }
  return { dims, data: bytes.subarray(headerSize) };
}

/**
 * Combine an idx3 image file and an idx1 label file into a Split. Checks ranks, that the counts
 * match and that labels are below `numClasses`.
 */
export function idxToSplit(images: IdxArray, labels: IdxArray, files: { readonly images: string; readonly labels: string }, numClasses: number): Split {
  if (images.dims.length !== 3) {
    throw new AutopruneError(
      ErrorCodes.DATASET_INVALID,
      `Dataset file ${quote(files.images)} has dims [${images.dims.join(', ')}]; expected 3 dims [count, rows, cols]`,
    );
  }
  if (labels.dims.length !== 1) {
    throw new AutopruneError(ErrorCodes.DATASET_INVALID, `Dataset file ${quote(files.labels)} has dims [${labels.dims.join(', ')}]; expected 1 dim [count]`);
  }
  const [count, h, w] = images.dims;
  if (labels.dims[0] !== count) {
    throw new AutopruneError(
      ErrorCodes.DATASET_INVALID,
      `Dataset file ${quote(files.labels)} has ${labels.dims[0]} labels but ${quote(files.images)} has ${count} images; expected equal counts`,
    );
  }
  for (let i = 0; i < count; i++) {
    if (labels.data[i] >= numClasses) {
      throw new AutopruneError(
        ErrorCodes.DATASET_INVALID,
        `Dataset file ${quote(files.labels)} has label ${labels.data[i]} at index ${i}; expected labels in [0, ${numClasses})`,
      );
    }
  }
  const shape: ImageShape = [h, w, 1];
  return { images: bytesToUnitFloats(images.data), labels: labels.data.slice(), count, shape };
}
