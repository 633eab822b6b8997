/**
 * Image folders (torchvision's ImageFolder layout): `root/<class>/**\/<image>`. Class ids are the
 * class folders' names in byte order; inside a class, files are taken in byte order of their path
 * (sub-folders included, as torchvision walks them). Files whose extension is not an image's are
 * ignored. Decoding is sharp (libvips); the pixels of a whole dataset are kept in one uint8 cache
 * file (./pixel-cache.ts) keyed by the files' paths, sizes and mtimes and the decode settings.
 */
import { statSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { extname, join, relative, sep } from 'node:path';
import pLimit from 'p-limit';
import sharp from 'sharp';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import type { ImageShape } from './types.js';

// libvips' operation cache is keyed by file name: a file rewritten in place would decode stale.
// One thread per image: many small images decoded side by side use the cores better than one at a time.
sharp.cache(false);
sharp.concurrency(1);

/** Extensions decoded (lower-cased): what sharp's prebuilt libvips reads. */
export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.tif', '.tiff'] as const;
/** Image formats torchvision reads that libvips does not: named in an error instead of silently ignored. */
const UNSUPPORTED_EXTENSIONS = ['.bmp', '.ppm', '.pgm', '.pbm'] as const;

export interface FolderFile {
  /** Absolute path. */
  readonly path: string;
  readonly label: number;
  readonly size: number;
  readonly mtimeMs: number;
}

export interface FolderListing {
  readonly root: string;
  readonly files: readonly FolderFile[];
}

const missing = (what: string, e: unknown): AutopruneError =>
  new AutopruneError(ErrorCodes.DATASET_MISSING, `${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });

/** Byte order of UTF-8 names (Python's sort of str, which torchvision uses), not UTF-16 order. */
export function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

/** The class folder names of `root`, in byte order. */
export async function classFolders(root: string): Promise<string[]> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (e) {
    throw missing(`Image folder ${quote(root)} cannot be read`, e);
  }
  const names: string[] = [];
  for (const e of entries) {
    if (e.isDirectory() || (e.isSymbolicLink() && (await isDir(join(root, e.name))))) names.push(e.name);
  }
  if (names.length === 0) {
    throw new AutopruneError(ErrorCodes.DATASET_INVALID, `Image folder ${quote(root)} has no sub-folders; expected one sub-folder of images per class`);
  }
  return names.sort(byteOrder);
}

/** Every image file under `dir` (recursively, symlinks followed), as paths relative to `dir`. */
async function imagesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      const r = rel === '' ? e.name : join(rel, e.name);
      if (e.isDirectory() || (e.isSymbolicLink() && (await isDir(join(dir, r))))) {
        await walk(r);
        continue;
      }
      const ext = extname(e.name).toLowerCase();
      if ((IMAGE_EXTENSIONS as readonly string[]).includes(ext)) out.push(r);
      else if ((UNSUPPORTED_EXTENSIONS as readonly string[]).includes(ext)) {
        throw new AutopruneError(
          ErrorCodes.DATASET_INVALID,
          `Image ${quote(join(dir, r))} is ${ext.slice(1).toUpperCase()}, which cannot be decoded; expected ${IMAGE_EXTENSIONS.join(', ')} (convert it, e.g. to PNG)`,
        );
      }
    }
  };
  await walk('');
  // torchvision's sorted os.walk: folders by their path, and within a folder its files by name, all
  // in byte order. The UTF-8 bytes are computed once per file, not once per comparison.
  const keyed = out.map((rel) => {
    const cut = rel.lastIndexOf(sep);
    return { rel, dir: Buffer.from(cut < 0 ? '' : rel.slice(0, cut)), name: Buffer.from(rel.slice(cut + 1)) };
  });
  keyed.sort((a, b) => Buffer.compare(a.dir, b.dir) || Buffer.compare(a.name, b.name));
  return keyed.map((k) => k.rel);
}

/**
 * The files of an image folder with their labels, sizes and mtimes. `classes` (from the training
 * folder) fixes the ids: a class folder not among them is a DATASET_INVALID error naming it. An
 * empty class folder is an error too (as torchvision's "Found no valid file for the classes").
 */
export async function listFolder(root: string, classes?: readonly string[]): Promise<{ classes: string[]; listing: FolderListing }> {
  const names = await classFolders(root);
  const ids = classes ?? names;
  if (classes === undefined && names.length > 256) {
    throw new AutopruneError(ErrorCodes.DATASET_INVALID, `Image folder ${quote(root)} has ${names.length} class folders; expected at most 256`);
  }
  if (classes === undefined && names.length < 2) {
    throw new AutopruneError(
      ErrorCodes.DATASET_INVALID,
      `Image folder ${quote(root)} has ${names.length} class folder (${quote(names[0])}); expected at least 2 classes, one sub-folder each`,
    );
  }
  const files: FolderFile[] = [];
  for (const name of names) {
    const label = ids.indexOf(name);
    const dir = join(root, name);
    if (label < 0) {
      throw new AutopruneError(
        ErrorCodes.DATASET_INVALID,
        `Class folder ${quote(dir)} is not a class of the training folder; expected one of ${ids.map((c) => quote(c)).join(', ')}`,
      );
    }
    const rels = await imagesUnder(dir);
    if (rels.length === 0) {
      throw new AutopruneError(
        ErrorCodes.DATASET_INVALID,
        `Class folder ${quote(dir)} has no images; expected at least one ${IMAGE_EXTENSIONS.join(', ')} file per class (or remove the folder)`,
      );
    }
    // Synchronous: tens of thousands of stat calls run ~10x faster than through libuv's pool, and
    // nothing else waits on the event loop while the data loads.
    for (const r of rels) {
      const path = join(dir, r);
      const st = statSync(path);
      files.push({ path, label, size: st.size, mtimeMs: st.mtimeMs });
    }
  }
  return { classes: [...ids], listing: { root, files } };
}

/** What a file is decoded into. */
export interface DecodeSettings {
  /** [h, w]: cover-resize + centre crop to it; undefined = keep each image's size. */
  readonly imageSize?: readonly [number, number];
  readonly channels: 1 | 3;
}

export interface Decoded {
  readonly pixels: Uint8Array;
  readonly h: number;
  readonly w: number;
}

/**
 * Decode one file to HWC uint8 with `channels` channels. Alpha is dropped (as PIL's convert('RGB'));
 * RGB -> gray uses ITU-R 601-2 luma in PIL's integer form; gray -> RGB repeats the value. EXIF
 * orientation is not applied (torchvision's loader does not either). Throws the decoder's error.
 */
export async function decodeImage(path: string, s: DecodeSettings): Promise<Decoded> {
  // 'truncated': a cut-off file is corrupt (as PIL's "image file is truncated"), while benign decoder
  // warnings (an sRGB profile libpng dislikes, common in real PNG sets) are not.
  let img = sharp(path, { failOn: 'truncated' }).removeAlpha();
  if (s.imageSize) {
    const meta = await img.metadata();
    const [h, w] = s.imageSize;
    // Cover + centre crop = torchvision Resize(shorter side) + CenterCrop; untouched when it already fits.
    if (meta.height !== h || meta.width !== w) img = img.resize(w, h, { fit: 'cover', position: 'centre', kernel: 'linear' });
  }
  // 8 bits per sample: 16-bit files are scaled down by libvips (v / 257).
  const { data, info } = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  const n = info.width * info.height;
  if (data.length !== n * info.channels) throw new Error(`${data.length} bytes of pixels for ${info.width}x${info.height}x${info.channels}`);
  const src = new Uint8Array(data.buffer, data.byteOffset, data.length);
  if (info.channels === s.channels) return { pixels: src, h: info.height, w: info.width };
  const out = new Uint8Array(n * s.channels);
  if (info.channels === 1 && s.channels === 3) {
    for (let i = 0; i < n; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = src[i];
  } else if (info.channels === 3 && s.channels === 1) {
    for (let i = 0; i < n; i++) out[i] = (src[3 * i] * 19595 + src[3 * i + 1] * 38470 + src[3 * i + 2] * 7471 + 0x8000) >>> 16;
  } else {
    throw new Error(`${info.channels} channels after dropping alpha (expected 1 or 3)`);
  }
  return { pixels: out, h: info.height, w: info.width };
}

export interface DecodedSet {
  /** count * h * w * c bytes, HWC per image, in listing order minus the skipped files. */
  readonly pixels: Uint8Array;
  readonly labels: Uint8Array;
  readonly count: number;
  readonly skipped: readonly { readonly file: string; readonly reason: string }[];
}

export interface DecodeOptions {
  readonly settings: DecodeSettings;
  /** [h, w] every image must have (the first image's size when `settings.imageSize` is absent). */
  readonly shape: ImageShape;
  readonly onCorrupt: 'fail' | 'skip';
  /** Called after each file (done, total). */
  readonly onProgress?: (done: number) => void;
  /** Files decoded at once. Default: 2 per core (libvips work runs on libuv's pool). */
  readonly concurrency?: number;
}

/** The first line of a decoder message (libvips appends details on further lines). */
const firstLine = (e: unknown): string => ((e as Error).message ?? String(e)).split('\n')[0].trim();

/** Decode a listing into one buffer; a bad file fails the whole set or is skipped (`onCorrupt`). */
export async function decodeListing(listing: FolderListing, o: DecodeOptions): Promise<DecodedSet> {
  const [h, w, c] = o.shape;
  const size = h * w * c;
  const n = listing.files.length;
  const pixels = new Uint8Array(n * size);
  const ok = new Uint8Array(n);
  const skipped: { file: string; reason: string }[] = [];
  const limit = pLimit(o.concurrency ?? 2 * availableParallelism());
  let done = 0;
  let failure: AutopruneError | undefined;
  await Promise.all(
    listing.files.map((f, i) =>
      limit(async () => {
        if (failure) return;
        let reason: string | undefined;
        try {
          const d = await decodeImage(f.path, o.settings);
          if (d.h !== h || d.w !== w) {
            // A size mismatch is not corruption: never skipped, the user must choose `imageSize`.
            failure ??= new AutopruneError(
              ErrorCodes.DATASET_INVALID,
              `Image ${quote(f.path)} is ${d.h}x${d.w} (height x width); expected ${h}x${w} like the first image: set \`data.imageSize\` to resize every image`,
            );
            return;
          }
          pixels.set(d.pixels, i * size);
          ok[i] = 1;
        } catch (e) {
          if (e instanceof AutopruneError) throw e;
          reason = firstLine(e);
        }
        if (reason !== undefined) {
          if (o.onCorrupt === 'fail') {
            failure ??= new AutopruneError(
              ErrorCodes.DATASET_INVALID,
              `Image ${quote(f.path)} cannot be decoded (${reason}); expected a readable ${IMAGE_EXTENSIONS.join('/')} file (or set \`data.onCorrupt: skip\`)`,
            );
            return;
          }
          skipped.push({ file: f.path, reason });
        }
        o.onProgress?.(++done);
      }),
    ),
  );
  if (failure) throw failure;
  // Compact out the skipped files, keeping listing order.
  const count = n - skipped.length;
  const labels = new Uint8Array(count);
  let k = 0;
  for (let i = 0; i < n; i++) {
    if (!ok[i]) continue;
    if (k !== i) pixels.copyWithin(k * size, i * size, (i + 1) * size);
    labels[k++] = listing.files[i].label;
  }
  skipped.sort((a, b) => byteOrder(a.file, b.file));
  return { pixels: pixels.subarray(0, count * size), labels, count, skipped };
}

/** [h, w] of the first decodable file, for datasets without `imageSize`. */
export async function firstImageSize(listing: FolderListing, s: DecodeSettings, onCorrupt: 'fail' | 'skip'): Promise<[number, number]> {
  for (const f of listing.files) {
    try {
      const d = await decodeImage(f.path, s);
      return [d.h, d.w];
    } catch (e) {
      if (onCorrupt === 'fail') {
        throw new AutopruneError(
          ErrorCodes.DATASET_INVALID,
          `Image ${quote(f.path)} cannot be decoded (${firstLine(e)}); expected a readable ${IMAGE_EXTENSIONS.join('/')} file (or set \`data.onCorrupt: skip\`)`,
        );
      }
    }
  }
  throw new AutopruneError(ErrorCodes.DATASET_INVALID, `Image folder ${quote(listing.root)} has no decodable image`);
}

/** `file` relative to the dataset root, with forward slashes (stable cache keys across hosts' mount points). */
export function relativeName(root: string, file: string): string {
  return relative(root, file).split(sep).join('/');
}
