/**
 * NumPy `.npy` arrays (images [count, h, w, c] or [count, c, h, w], labels [count]). The header is
 * parsed by npyjs (maintained, no native code); what it leaves to the caller is checked here: the
 * byte count against the shape (npyjs does not check it), C order, little-endian, and the dtypes
 * a dataset may use.
 */
import { readFile } from 'node:fs/promises';
import { parse } from 'npyjs';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';

export type NpyLayout = 'NHWC' | 'NCHW';

export interface NpyImages {
  readonly count: number;
  /** [h, w, c] after any transpose. */
  readonly shape: readonly [number, number, number];
  /** HWC per image. uint8 pixels (scale 1/255) or float32 values (taken as they are). */
  readonly data: Uint8Array | Float32Array;
}

const invalid = (file: string, what: string): AutopruneError => new AutopruneError(ErrorCodes.DATASET_INVALID, `Array ${quote(file)} ${what}`);

async function readNpy(file: string): Promise<{ data: ArrayBufferView; shape: number[]; dtype: string }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (e) {
    throw new AutopruneError(ErrorCodes.DATASET_MISSING, `Array ${quote(file)} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      cause: e,
    });
  }
  // A fresh, aligned ArrayBuffer: typed views of float32 data need 4-byte alignment.
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
  let arr: ReturnType<typeof parse>;
  try {
    if (bytes.length < 10) throw new Error(`${bytes.length} bytes`);
    arr = parse(buf);
  } catch (e) {
    throw invalid(file, `is not a valid .npy file (${(e as Error).message.split('\n')[0]}); expected a file written by numpy.save`);
  }
  if (arr.fortranOrder) throw invalid(file, 'is in Fortran order; expected C order (save np.ascontiguousarray(x))');
  const elements = arr.shape.reduce((a, b) => a * b, 1);
  const length = (arr.data as unknown as { length: number }).length;
  if (length !== elements) {
    throw invalid(file, `has ${length} elements for shape [${arr.shape.join(', ')}] (${elements}); the file is truncated or corrupt`);
  }
  return { data: arr.data, shape: arr.shape, dtype: arr.dtype };
}

/** Images as HWC, checking rank, dtype (uint8 or float32) and the layout's channel axis. */
export async function readNpyImages(file: string, layout: NpyLayout): Promise<NpyImages> {
  const a = await readNpy(file);
  if (a.shape.length !== 4) {
    throw invalid(
      file,
      `has shape [${a.shape.join(', ')}]; expected 4 dimensions, ${layout === 'NHWC' ? '[count, height, width, channels]' : '[count, channels, height, width]'}`,
    );
  }
  if (a.dtype !== 'u1' && a.dtype !== 'f4') throw invalid(file, `has dtype ${quote(a.dtype)}; expected uint8 (u1) or float32 (f4)`);
  const [n, d1, d2, d3] = a.shape;
  const [h, w, c] = layout === 'NHWC' ? [d1, d2, d3] : [d2, d3, d1];
  if (c !== 1 && c !== 3) {
    throw invalid(file, `has ${c} channels on the ${layout} channel axis (shape [${a.shape.join(', ')}]); expected 1 or 3 (is \`data.layout\` right?)`);
  }
  const src = a.data as Uint8Array | Float32Array;
  if (layout === 'NHWC') return { count: n, shape: [h, w, c], data: src };
  const out = a.dtype === 'u1' ? new Uint8Array(src.length) : new Float32Array(src.length);
  const plane = h * w;
  for (let i = 0; i < n; i++) {
    const base = i * c * plane;
    for (let ch = 0; ch < c; ch++) {
      for (let p = 0; p < plane; p++) out[base + p * c + ch] = src[base + ch * plane + p];
    }
  }
  return { count: n, shape: [h, w, c], data: out };
}

/** Labels [count] of any integer dtype, each in [0, 256) and (when given) below `classes`. */
export async function readNpyLabels(file: string, classes?: number): Promise<Uint8Array> {
  const a = await readNpy(file);
  if (a.shape.length !== 1) throw invalid(file, `has shape [${a.shape.join(', ')}]; expected 1 dimension [count] of class indices`);
  if (!/^[iu][1248]$/.test(a.dtype)) throw invalid(file, `has dtype ${quote(a.dtype)}; expected integer class indices (e.g. int64, uint8)`);
  const src = a.data as unknown as ArrayLike<number | bigint>;
  const out = new Uint8Array(src.length);
  const max = classes ?? 256;
  for (let i = 0; i < src.length; i++) {
    const v = Number(src[i]);
    if (!(v >= 0 && v < max)) {
      throw invalid(
        file,
        `has label ${v} at index ${i}; expected class indices in [0, ${max})${classes !== undefined ? ' (the classes of the training labels)' : ''}`,
      );
    }
    out[i] = v;
  }
  return out;
}
