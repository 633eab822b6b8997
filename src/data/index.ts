/**
 * Datasets, splits and batching as plain typed arrays. Tensors live only in ./tensors.js
 * (import it directly), so importing this module does not load tfjs.
 */
export type { Dataset, DatasetName, DatasetSpec, ImageShape, Split, SyntheticSpec } from './types.js';
export { DATASET_NAMES } from './types.js';
export { loadDataset, describeDatasets, clearDatasetCache, searchDirs, DATASET_SOURCES, DEBIAN_FASHION_MNIST_DIR } from './load.js';
export type { DatasetAvailability } from './load.js';
export { splitTrainValidation, splitIndices, gather, head, exampleSize, shareSplit } from './split.js';
export { batches, oneHot } from './batch.js';
export type { Batch, BatchOptions } from './batch.js';
export { makeSynthetic, resolveSynthetic } from './synthetic.js';
export { parseIdx, idxToSplit } from './idx.js';
export type { IdxArray } from './idx.js';
export { parseCifarBatch, concatSplits, CIFAR_SHAPE, CIFAR_CLASSES } from './cifar.js';
