/**
 * The user's own data: image folders (decoded once into the pixel cache) and NumPy arrays. Every
 * check runs before anything is returned, so a caller that loads the data before opening its store
 * writes nothing for bad data; the pixel cache itself is written only once every file decoded.
 */
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { readNpyImages, readNpyLabels } from './npy.js';
import { type CacheEntry, cacheFile, cacheKey, readCache, writeCache } from './pixel-cache.js';
import { bytesToUnitFloats } from './pixels.js';
import { progressBar } from './progress.js';
import { gather, splitIndices } from './split.js';
import type { ImageShape, Split } from './types.js';

export interface Normalize {
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

interface OwnCommon {
  /** Carve the test split from `train` when `test` is absent: a count or a fraction. Default 0.1. */
  readonly testSize?: number;
  readonly normalize?: Normalize;
  /** Progress lines (decode speed, cache, skipped files). */
  readonly log?: (line: string) => void;
  /** Draw a progress bar on stderr while decoding images (only when it is a terminal). Default false. */
  readonly progress?: boolean;
}

export interface ImageFolderSpec extends OwnCommon {
  readonly format: 'imagefolder';
  readonly train: string;
  readonly test?: string;
  readonly imageSize?: readonly [number, number];
  readonly channels: 1 | 3;
  readonly onCorrupt: 'fail' | 'skip';
  /** Folder of the pixel cache; never inside the data folder (it may be read-only). */
  readonly cache: string;
}

export interface NpySpec extends OwnCommon {
  readonly format: 'npy';
  readonly train: { readonly images: string; readonly labels: string };
  readonly test?: { readonly images: string; readonly labels: string };
  readonly layout: 'NHWC' | 'NCHW';
}

export type OwnDataSpec = ImageFolderSpec | NpySpec;

export interface OwnDataset {
  /** What messages call the data: the training folder or images file. */
  readonly name: string;
  readonly shape: ImageShape;
  readonly numClasses: number;
  /** Class names (imagefolder: the folder names) by id. */
  readonly classes: readonly string[];
  readonly train: Split;
  readonly test: Split;
  /** Files left out by `onCorrupt: skip`, with the decoder's reason. */
  readonly skipped: readonly { readonly file: string; readonly reason: string }[];
  /** How the pixels were obtained: decoded now, read from the pixel cache, or read from arrays. */
  readonly source: { readonly kind: 'decoded' | 'cache' | 'arrays'; readonly images: number; readonly seconds: number; readonly cacheFile?: string };
}

/** The seed of the test split carved from `train` when `test` is absent: fixed, so every study shares it. */
export const TEST_CARVE_SEED = 0;

/** Bumped when the decoding changes in a way that makes old cache files wrong. */
const DECODER_VERSION = 1;

/** uint8 or float32 HWC -> float32: v/255 (uint8) or v (float32), then (x - mean) / std per channel. */
export function toFloats(data: Uint8Array | Float32Array, channels: number, normalize?: Normalize): Float32Array {
  const out = data instanceof Uint8Array ? bytesToUnitFloats(data) : Float32Array.from(data);
  if (!normalize) return out;
  const inv = normalize.std.map((s) => 1 / s);
  for (let i = 0; i < out.length; i++) {
    const c = i % channels;
    out[i] = (out[i] - normalize.mean[c]) * inv[c];
  }
  return out;
}

function carveTest(train: Split, testSize: number): { train: Split; test: Split } {
  if (testSize >= 1 && testSize >= train.count) {
    throw new AutopruneError(
      ErrorCodes.DATASET_INVALID,
      `\`data.testSize\` ${testSize} is not below the ${train.count} training images; expected a smaller count or a fraction`,
    );
  }
  const idx = splitIndices(train.labels, testSize, TEST_CARVE_SEED);
  if (idx.validation.length === 0) {
    throw new AutopruneError(
      ErrorCodes.DATASET_INVALID,
      `\`data.testSize\` ${testSize} of ${train.count} training images holds out no test image; expected a larger share, or a \`test\` folder`,
    );
  }
  return { train: gather(train, idx.train), test: gather(train, idx.validation) };
}

/** Load (and check) the user's own data; see OwnDataSpec. Errors are DATASET_MISSING / DATASET_INVALID naming the file. */
export async function loadOwnDataset(spec: OwnDataSpec): Promise<OwnDataset> {
  return spec.format === 'imagefolder' ? loadImageFolder(spec) : loadNpy(spec);
}

async function loadImageFolder(spec: ImageFolderSpec): Promise<OwnDataset> {
  const started = performance.now();
  // sharp (libvips) is loaded only by processes that read image folders, not by every worker thread.
  const { decodeListing, firstImageSize, listFolder, relativeName } = await import('./folder.js');
  const train = await listFolder(spec.train);
  const test = spec.test !== undefined ? await listFolder(spec.test, train.classes) : undefined;
  const settings = { imageSize: spec.imageSize, channels: spec.channels };
  const key = cacheKey(
    { v: DECODER_VERSION, train: spec.train, test: spec.test ?? null, imageSize: spec.imageSize ?? null, channels: spec.channels, onCorrupt: spec.onCorrupt },
    {
      classes: train.classes,
      sets: [train.listing, test?.listing].map((l) =>
        l === undefined ? null : l.files.map((f) => [relativeName(l.root, f.path), f.label, f.size, f.mtimeMs]),
      ),
    },
  );
  let entry = await readCache(spec.cache, key);
  const kind = entry ? 'cache' : 'decoded';
  if (!entry) {
    const [h, w] = spec.imageSize ?? (await firstImageSize(train.listing, settings, spec.onCorrupt));
    const shape: ImageShape = [h, w, spec.channels];
    const total = train.listing.files.length + (test?.listing.files.length ?? 0);
    const bar = spec.progress ? progressBar('decoding images', total) : undefined;
    let before = 0;
    try {
      const decode = async (l: typeof train.listing) => {
        const base = before;
        const set = await decodeListing(l, { settings, shape, onCorrupt: spec.onCorrupt, onProgress: (d) => bar?.update(base + d) });
        before += l.files.length;
        return set;
      };
      const tr = await decode(train.listing);
      const te = test ? await decode(test.listing) : null;
      entry = {
        header: {
          key,
          shape,
          classes: train.classes,
          train: { count: tr.count },
          test: te ? { count: te.count } : null,
          skipped: [...tr.skipped, ...(te?.skipped ?? [])],
        },
        train: tr,
        test: te,
      } satisfies CacheEntry;
    } finally {
      bar?.done();
    }
    checkClassesLeft(spec, entry);
    const why = await writeCache(spec.cache, entry);
    if (why !== null) spec.log?.(`data: the pixel cache could not be written (${why}); the next start decodes again`);
  }
  const seconds = (performance.now() - started) / 1000;
  const images = entry.train.count + (entry.test?.count ?? 0);
  const [h, w, c] = entry.header.shape;
  const split = (s: { pixels: Uint8Array; labels: Uint8Array; count: number }): Split => ({
    images: toFloats(s.pixels, c, spec.normalize),
    labels: s.labels.slice(),
    count: s.count,
    shape: entry.header.shape,
  });
  let trainSplit = split(entry.train);
  let testSplit: Split;
  if (entry.test) testSplit = split(entry.test);
  else ({ train: trainSplit, test: testSplit } = carveTest(trainSplit, spec.testSize ?? 0.1));
  const file = cacheFile(spec.cache, key);
  spec.log?.(
    kind === 'decoded'
      ? `data: decoded ${images} images (${h}x${w}x${c}) in ${seconds.toFixed(1)} s (${Math.round(images / seconds)} images/s), cached in ${file}`
      : `data: ${images} images (${h}x${w}x${c}) read from the pixel cache ${file} in ${seconds.toFixed(2)} s`,
  );
  const skipped = entry.header.skipped;
  if (skipped.length > 0) {
    spec.log?.(`data: skipped ${skipped.length} unreadable image(s) (onCorrupt: skip), e.g. ${quote(skipped[0].file)}: ${skipped[0].reason}`);
  }
  return {
    name: spec.train,
    shape: entry.header.shape,
    numClasses: entry.header.classes.length,
    classes: entry.header.classes,
    train: trainSplit,
    test: testSplit,
    skipped,
    source: { kind, images, seconds, cacheFile: file },
  };
}

/** With `skip`, a class can lose all its files: that is an empty class (an error), as with no files at all. */
function checkClassesLeft(spec: ImageFolderSpec, entry: CacheEntry): void {
  const seen = new Uint8Array(entry.header.classes.length);
  for (const l of entry.train.labels) seen[l] = 1;
  const empty = seen.indexOf(0);
  if (empty >= 0) {
    throw new AutopruneError(
      ErrorCodes.DATASET_INVALID,
      `Class folder ${quote(`${spec.train}/${entry.header.classes[empty]}`)} has no decodable image (all were skipped); expected at least one per class`,
    );
  }
}

async function loadNpy(spec: NpySpec): Promise<OwnDataset> {
  const started = performance.now();
  const pair = async (p: { images: string; labels: string }, classes?: number) => {
    const [images, labels] = await Promise.all([readNpyImages(p.images, spec.layout), readNpyLabels(p.labels, classes)]);
    if (labels.length !== images.count) {
      throw new AutopruneError(
        ErrorCodes.DATASET_INVALID,
        `Array ${quote(p.labels)} has ${labels.length} labels but ${quote(p.images)} has ${images.count} images; expected equal counts`,
      );
    }
    if (images.count === 0) throw new AutopruneError(ErrorCodes.DATASET_INVALID, `Array ${quote(p.images)} has no images; expected at least one`);
    return { images, labels };
  };
  const tr = await pair(spec.train);
  let numClasses = 0;
  for (const l of tr.labels) numClasses = Math.max(numClasses, l + 1);
  if (numClasses < 2) throw new AutopruneError(ErrorCodes.DATASET_INVALID, `Array ${quote(spec.train.labels)} has only class 0; expected at least 2 classes`);
  const te = spec.test ? await pair(spec.test, numClasses) : undefined;
  const shape = tr.images.shape;
  if (te && te.images.shape.join() !== shape.join()) {
    throw new AutopruneError(
      ErrorCodes.DATASET_INVALID,
      `Array ${quote(spec.test!.images)} has images of ${te.images.shape.join('x')} but ${quote(spec.train.images)} has ${shape.join('x')} (h x w x c); expected the same`,
    );
  }
  if (spec.normalize && spec.normalize.mean.length !== shape[2]) {
    throw new AutopruneError(
      ErrorCodes.DATASET_INVALID,
      `Array ${quote(spec.train.images)} has ${shape[2]} channels but \`data.normalize\` gives ${spec.normalize.mean.length}; expected one mean and std per channel`,
    );
  }
  const split = (p: typeof tr): Split => ({ images: toFloats(p.images.data, shape[2], spec.normalize), labels: p.labels, count: p.images.count, shape });
  let train = split(tr);
  let test: Split;
  if (te) test = split(te);
  else ({ train, test } = carveTest(train, spec.testSize ?? 0.1));
  const images = tr.images.count + (te?.images.count ?? 0);
  const seconds = (performance.now() - started) / 1000;
  spec.log?.(`data: ${images} images (${shape.join('x')}) read from .npy arrays in ${seconds.toFixed(2)} s`);
  return {
    name: spec.train.images,
    shape,
    numClasses,
    classes: Array.from({ length: numClasses }, (_, i) => String(i)),
    train,
    test,
    skipped: [],
    source: { kind: 'arrays', images, seconds },
  };
}
