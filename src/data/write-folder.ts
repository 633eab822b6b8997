/**
 * A split written out as an image folder (`dir/<class>/<index>.png`): for demos, and as the test
 * oracle that an image folder loads to the same arrays as the original files. Pixels are the split's
 * floats * 255, rounded (exact for splits loaded from 8-bit data without normalisation).
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import pLimit from 'p-limit';
import sharp from 'sharp';
import type { Split } from './types.js';

export interface WriteFolderOptions {
  /** Class folder names by label. Default: the label as a number padded to 3 digits (`000`, `001`, ...). */
  readonly classes?: readonly string[];
  /** Only these examples, in this order. Default: all. */
  readonly indices?: ArrayLike<number>;
  /** Write 3 channels: gray images repeated in R, G and B, tinted per class when `tint` (so the colour carries information). Default false. */
  readonly rgb?: boolean;
  readonly tint?: boolean;
  /** Image format. Default png (lossless). */
  readonly format?: 'png' | 'webp' | 'jpeg';
  readonly onProgress?: (done: number) => void;
}

/** File names sort in example order: the index zero-padded to the split's width. */
export async function writeImageFolder(split: Split, dir: string, o: WriteFolderOptions = {}): Promise<number> {
  const [h, w, c] = split.shape;
  const size = h * w * c;
  const indices = o.indices ?? Array.from({ length: split.count }, (_, i) => i);
  const pad = String(split.count).length;
  const className = (l: number): string => o.classes?.[l] ?? String(l).padStart(3, '0');
  const labels = new Set(Array.from({ length: indices.length }, (_, k) => split.labels[indices[k]]));
  for (const l of labels) await mkdir(join(dir, className(l)), { recursive: true });
  const outC = o.rgb ? 3 : c;
  const limit = pLimit(8);
  let done = 0;
  await Promise.all(
    Array.from({ length: indices.length }, (_, k) =>
      limit(async () => {
        const i = indices[k];
        const label = split.labels[i];
        const px = Buffer.alloc(h * w * outC);
        for (let p = 0; p < h * w; p++) {
          for (let ch = 0; ch < outC; ch++) {
            const v = Math.round(split.images[i * size + p * c + (c === 1 ? 0 : ch)] * 255);
            // A per-class tint: channel ch scaled by one of three levels, so colour alone hints at the class.
            px[p * outC + ch] = o.tint ? Math.round(v * (0.4 + 0.3 * ((label + ch) % 3))) : v;
          }
        }
        const img = sharp(px, { raw: { width: w, height: h, channels: outC as 1 | 3 } });
        const ext = o.format ?? 'png';
        const file = join(dir, className(label), `${String(i).padStart(pad, '0')}.${ext}`);
        await (ext === 'png' ? img.png() : ext === 'webp' ? img.webp({ lossless: true }) : img.jpeg({ quality: 95 })).toFile(file);
        o.onProgress?.(++done);
      }),
    ),
  );
  return indices.length;
}
