/** The `data` section: which images the search reads and how they are split. */
import { z } from 'zod';
import { int, pathString, positiveInt } from './leaves.js';

export const DATASETS = ['fashion-mnist', 'mnist', 'cifar10', 'synthetic'] as const;

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

export const dataSchema = z
  .strictObject({
    /** Which dataset. Default `fashion-mnist`. */
    dataset: z.enum(DATASETS).default('fashion-mnist'),
    /** Folder with the dataset files. Default: chosen by the data module (e.g. /usr/share/datasets/<name>). */
    dir: pathString().optional(),
    /** Images carved from the training split for validation (the search sees only these). Default 5000. */
    validationSize: positiveInt().default(5000),
    /** Use only the first N images of the (remaining) training split, for quick runs. Default: all. */
    trainLimit: positiveInt().optional(),
    /** Synthetic data settings; only with `dataset: synthetic` (then every field has a default). */
    synthetic: syntheticSchema.optional(),
  })
  .superRefine((d, ctx) => {
    if (d.synthetic !== undefined && d.dataset !== 'synthetic') {
      ctx.addIssue({ code: 'custom', path: ['synthetic'], message: 'only with `dataset: synthetic` (remove it)' });
    }
    const trainSize = d.dataset === 'synthetic' ? (d.synthetic?.train ?? 1000) : TRAIN_SIZES[d.dataset];
    if (d.validationSize >= trainSize) {
      ctx.addIssue({
        code: 'custom',
        path: ['validationSize'],
        params: { resolvedValue: d.validationSize },
        message: `an integer below the ${trainSize} training images of \`${d.dataset}\``,
      });
    }
  });
