/**
 * Dataset shapes shared by every loader. Images are NHWC Float32Array in [0, 1] (uint8 / 255);
 * labels are class indices in [0, numClasses) as Uint8Array (every supported dataset has <= 256
 * classes).
 */

/** Image shape as [height, width, channels]. */
export type ImageShape = readonly [h: number, w: number, c: number];

/** One split of a dataset: `count` images, each `h * w * c` floats, NHWC, back to back. */
export interface Split {
  readonly images: Float32Array;
  readonly labels: Uint8Array;
  readonly count: number;
  readonly shape: ImageShape;
}

/**
 * A loaded dataset. `train` feeds fine-tuning and BN calibration, and the validation split the
 * search scores candidates on is carved out of it (`splitTrainValidation`). `test` is held out:
 * it is never used for the search, only for the final numbers of the finalists.
 */
export interface Dataset {
  readonly name: DatasetName;
  readonly shape: ImageShape;
  readonly numClasses: number;
  readonly train: Split;
  /** Held out: never used by the search (see the interface comment). */
  readonly test: Split;
}

export const DATASET_NAMES = ['fashion-mnist', 'mnist', 'cifar10', 'synthetic'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/** Options of the synthetic dataset; every field has a default (see `resolveSynthetic`). */
export interface SyntheticSpec {
  /** Default [28, 28, 1]. */
  readonly shape?: ImageShape;
  /** Default 10. */
  readonly numClasses?: number;
  /** Default 1000. */
  readonly trainCount?: number;
  /** Default 200. */
  readonly testCount?: number;
  /** Default 0. Same seed and options -> identical arrays. */
  readonly seed?: number;
  /** Standard deviation of the per-pixel Gaussian noise, in [0, 1] pixel units. Default 0.25. */
  readonly noise?: number;
}

export interface DatasetSpec {
  readonly name: DatasetName;
  /**
   * Folder with the dataset's files. When given, only this folder (and, for CIFAR-10, its
   * `cifar-10-batches-bin/` subfolder) is searched; otherwise the defaults of `defaultDirs(name)`.
   */
  readonly dir?: string;
  readonly synthetic?: SyntheticSpec;
  /** Keep only the first N examples of each split (clamped to what the split has). */
  readonly limit?: { readonly train?: number; readonly test?: number };
}
