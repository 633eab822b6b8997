/**
 * Datasets, splits and batching as plain typed arrays. Tensors live only in ./tensors.js
 * (import it directly), so importing this module does not load tfjs.
 */

export type { Batch, BatchOptions } from './batch.js';
export { batches, oneHot } from './batch.js';
export { CIFAR_CLASSES, CIFAR_SHAPE, concatSplits, parseCifarBatch } from './cifar.js';
export type { IdxArray } from './idx.js';
export { idxToSplit, parseIdx } from './idx.js';
export type { DatasetAvailability } from './load.js';
export { clearDatasetCache, DATASET_SOURCES, DEBIAN_FASHION_MNIST_DIR, describeDatasets, loadDataset, searchDirs } from './load.js';
export { exampleSize, gather, head, shareSplit, splitIndices, splitTrainValidation } from './split.js';
export { makeSynthetic, resolveSynthetic } from './synthetic.js';
export type { Dataset, DatasetName, DatasetSpec, ImageShape, Split, SyntheticSpec } from './types.js';
export { DATASET_NAMES } from './types.js';
