/**
 * The `data` section: which images the search reads and how they are split. Either a named dataset
 * (`dataset`, the original binary files) or the user's own files (`format: imagefolder | npy`); see
 * docs/data.md.
 */
import { z } from 'zod';
import { int, num, pathString, positiveInt, unitOpen } from './leaves.js';

export const DATASETS = ['fashion-mnist', 'mnist', 'cifar10', 'synthetic'] as const;
export const DATA_FORMATS = ['imagefolder', 'npy'] as const;
export const NPY_LAYOUTS = ['NHWC', 'NCHW'] as const;
export const ON_CORRUPT = ['fail', 'skip'] as const;

/** Training-set sizes of the real datasets, to check `data.validationSize` against. */
const TRAIN_SIZES = { 'fashion-mnist': 60_000, mnist: 60_000, cifar10: 50_000 } as const;

export const syntheticSchema = z.strictObject({
  /** Image shape [height, width, channels]. Default [28, 28, 1]. */
  shape: z.tuple([positiveInt(), positiveInt(), positiveInt()], { error: 'three positive integers [h, w, c]' }).default([28, 28, 1]),
  /** Number of classes, 2..256. Default 10. */
  classes: int('an integer in [2, 256]', (v) => v >= 2 && v <= 256).default(10),
  /** Training images (the validation split is carved from these). Default 1000. */
  train: positiveInt().default(1000),
  /** Test images. Default 200. */
  test: positiveInt().default(200),
});

/** One split of `format: npy`: two .npy files with the same first dimension. */
const npyPairSchema = z.strictObject(
  {
    /** [count, h, w, c] (layout NHWC) or [count, c, h, w] (NCHW), uint8 (0..255) or float32. Required. */
    images: pathString(),
    /** [count] class indices, any integer dtype, in [0, classes). Required. */
    labels: pathString(),
  },
  { error: (iss) => (iss.code === 'invalid_type' ? 'a mapping { images: <file.npy>, labels: <file.npy> }' : undefined) },
);

const sizeOrFraction = () => z.union([positiveInt(), unitOpen()], { error: 'an integer >= 1 or a fraction in (0, 1)' }) as z.ZodType<number, number>;

const dataObject = z.strictObject({
  /** A named dataset in its original files. Default `fashion-mnist` when `format` is absent; not allowed with `format`. */
  dataset: z.enum(DATASETS).optional(),
  /** The user's own files: `imagefolder` (one sub-folder per class) or `npy` (NumPy arrays). Default: absent (a named `dataset`). */
  format: z.enum(DATA_FORMATS).optional(),
  /** Folder with a named dataset's files. Default: chosen by the data module (e.g. /usr/share/datasets/<name>). Named datasets only. */
  dir: pathString().optional(),
  /**
   * Training images. imagefolder: a folder with one sub-folder per class (class ids = the folder
   * names in byte order, as torchvision's ImageFolder); npy: { images, labels }. Required with `format`.
   */
  train: z.union([pathString(), npyPairSchema], { error: 'a folder (imagefolder) or { images, labels } (npy)' }).optional(),
  /** Test images, like `train`. Default: a stratified `testSize` share carved out of `train` (fixed seed 0, the same for every study). */
  test: z.union([pathString(), npyPairSchema], { error: 'a folder (imagefolder) or { images, labels } (npy)' }).optional(),
  /** Carved from `train` when `test` is absent: a count or a fraction. Default 0.1. Only with `format` and without `test`. */
  testSize: sizeOrFraction().optional(),
  /**
   * imagefolder: [height, width] the images become: the shorter side is scaled to cover it, then the
   * centre is cropped (torchvision Resize + CenterCrop), bilinear. Default: no resizing; every image
   * must then have the first image's size.
   */
  imageSize: z.tuple([positiveInt(), positiveInt()], { error: 'two positive integers [height, width]' }).optional(),
  /** imagefolder: 1 = grayscale, 3 = RGB; a file that differs is converted. Default 3 (as torchvision's loader). */
  channels: z.union([z.literal(1), z.literal(3)], { error: '1 (grayscale) or 3 (RGB)' }).optional(),
  /** npy: the images' axis order, NHWC [count, h, w, c] or NCHW [count, c, h, w]. Default NHWC. */
  layout: z.enum(NPY_LAYOUTS).optional(),
  /**
   * Per-channel normalisation of the pixels v/255 (uint8) or v (float32): (x - mean) / std.
   * Default: none (x = v/255, as for the named datasets).
   */
  normalize: z
    .strictObject({
      /** One number per channel. Required. */
      mean: z.array(num('a number'), { error: 'a list of numbers, one per channel' }).min(1, { error: 'a list of numbers, one per channel' }),
      /** One number > 0 per channel. Required. */
      std: z
        .array(
          num('a number > 0', (v) => v > 0),
          { error: 'a list of numbers > 0, one per channel' },
        )
        .min(1, { error: 'a list of numbers > 0, one per channel' }),
    })
    .optional(),
  /** imagefolder: `fail` stops at the first unreadable or corrupt image; `skip` leaves it out and counts it in the log. Default `fail`. */
  onCorrupt: z.enum(ON_CORRUPT).optional(),
  /** imagefolder: folder of the decoded-pixel cache (one file per dataset and settings). Default `experiments/.cache/data`. */
  cache: pathString().optional(),
  /** Images carved from the training split for validation (the search sees only these). Default 5000. */
  validationSize: positiveInt().default(5000),
  /** Use only the first N images of the (remaining) training split, for quick runs. Default: all. */
  trainLimit: positiveInt().optional(),
  /** Synthetic data settings; only with `dataset: synthetic` (then every field has a default). */
  synthetic: syntheticSchema.optional(),
});

type DataObject = z.output<typeof dataObject>;
type NpyPair = z.output<typeof npyPairSchema>;
type Common = Pick<DataObject, 'validationSize' | 'trainLimit'>;

/** A named dataset (the original files). */
export type NamedData = Common & Pick<DataObject, 'dir' | 'synthetic'> & { dataset: (typeof DATASETS)[number]; format?: undefined };
/** The named-dataset keys, absent in a format's config (so `data.dir` reads as undefined there). */
type NoNamedKeys = { dataset?: undefined; dir?: undefined; synthetic?: undefined };
/** `format: imagefolder`, defaults filled (paths made absolute by resolveConfig). */
export type ImageFolderData = Common &
  NoNamedKeys &
  Pick<DataObject, 'imageSize' | 'normalize' | 'testSize'> & {
    format: 'imagefolder';
    train: string;
    test?: string;
    channels: 1 | 3;
    onCorrupt: (typeof ON_CORRUPT)[number];
    cache: string;
  };
/** `format: npy`, defaults filled. */
export type NpyData = Common &
  NoNamedKeys &
  Pick<DataObject, 'normalize' | 'testSize'> & { format: 'npy'; train: NpyPair; test?: NpyPair; layout: (typeof NPY_LAYOUTS)[number] };
export type DataConfig = NamedData | ImageFolderData | NpyData;

const NAMED_ONLY = ['dir', 'synthetic'] as const;
const FORMAT_ONLY = ['train', 'test', 'testSize', 'normalize'] as const;
const IMAGEFOLDER_ONLY = ['imageSize', 'channels', 'onCorrupt', 'cache'] as const;
const NPY_ONLY = ['layout'] as const;

export const dataSchema = dataObject
  .superRefine((d, ctx) => {
    const only = (keys: readonly (keyof DataObject)[], when: string): void => {
      for (const k of keys) {
        if (d[k] !== undefined) ctx.addIssue({ code: 'custom', path: [k], message: `only with ${when} (remove it)` });
      }
    };
    if (d.format === undefined) {
      only(FORMAT_ONLY, '`format: imagefolder` or `format: npy`');
      only(IMAGEFOLDER_ONLY, '`format: imagefolder`');
      only(NPY_ONLY, '`format: npy`');
      const dataset = d.dataset ?? 'fashion-mnist';
      if (d.synthetic !== undefined && dataset !== 'synthetic') {
        ctx.addIssue({ code: 'custom', path: ['synthetic'], message: 'only with `dataset: synthetic` (remove it)' });
      }
      const trainSize = dataset === 'synthetic' ? (d.synthetic?.train ?? 1000) : TRAIN_SIZES[dataset];
      if (d.validationSize >= trainSize) {
        ctx.addIssue({
          code: 'custom',
          path: ['validationSize'],
          params: { resolvedValue: d.validationSize },
          message: `an integer below the ${trainSize} training images of \`${dataset}\``,
        });
      }
      return;
    }
    if (d.dataset !== undefined) ctx.addIssue({ code: 'custom', path: ['dataset'], message: 'no `dataset` with `format` (remove one of them)' });
    only(NAMED_ONLY, 'a named `dataset`');
    if (d.format === 'imagefolder') only(NPY_ONLY, '`format: npy`');
    else only(IMAGEFOLDER_ONLY, '`format: imagefolder`');
    const wantFolder = d.format === 'imagefolder';
    for (const k of ['train', 'test'] as const) {
      const v = d[k];
      if (v === undefined) {
        if (k === 'train')
          ctx.addIssue({ code: 'custom', path: [k], message: wantFolder ? 'a folder with one sub-folder per class' : '{ images, labels } (.npy files)' });
        continue;
      }
      if (wantFolder && typeof v !== 'string')
        ctx.addIssue({ code: 'custom', path: [k], message: 'a folder with one sub-folder per class (format: imagefolder)' });
      if (!wantFolder && typeof v === 'string')
        ctx.addIssue({ code: 'custom', path: [k], message: '{ images: <file.npy>, labels: <file.npy> } (format: npy)' });
    }
    if (d.test !== undefined && d.testSize !== undefined)
      ctx.addIssue({ code: 'custom', path: ['testSize'], message: 'only without `test` (remove one of them)' });
    const n = d.normalize;
    if (n !== undefined && n.mean.length !== n.std.length) {
      ctx.addIssue({ code: 'custom', path: ['normalize', 'std'], message: `as many numbers as \`normalize.mean\` (${n.mean.length})` });
    }
    if (n !== undefined && wantFolder && n.mean.length !== (d.channels ?? 3)) {
      ctx.addIssue({ code: 'custom', path: ['normalize', 'mean'], message: `one number per channel (${d.channels ?? 3}, see \`channels\`)` });
    }
  })
  .transform((d): DataConfig => {
    const common = { validationSize: d.validationSize, ...(d.trainLimit !== undefined ? { trainLimit: d.trainLimit } : {}) };
    const opt = <K extends keyof DataObject>(k: K): Partial<Pick<DataObject, K>> => (d[k] === undefined ? {} : ({ [k]: d[k] } as Pick<DataObject, K>));
    if (d.format === undefined) {
      // Same keys as before `format` existed, so a named dataset's resolved config (and its hash) is unchanged.
      return { dataset: d.dataset ?? 'fashion-mnist', ...opt('dir'), ...common, ...opt('synthetic') };
    }
    if (d.format === 'imagefolder') {
      return {
        format: 'imagefolder',
        train: d.train as string,
        ...(d.test !== undefined ? { test: d.test as string } : { testSize: d.testSize ?? 0.1 }),
        ...opt('imageSize'),
        channels: d.channels ?? 3,
        ...opt('normalize'),
        onCorrupt: d.onCorrupt ?? 'fail',
        cache: d.cache ?? 'experiments/.cache/data',
        ...common,
      };
    }
    return {
      format: 'npy',
      train: d.train as NpyPair,
      ...(d.test !== undefined ? { test: d.test as NpyPair } : { testSize: d.testSize ?? 0.1 }),
      layout: d.layout ?? 'NHWC',
      ...opt('normalize'),
      ...common,
    };
  });
