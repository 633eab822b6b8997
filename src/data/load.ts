import { join, resolve } from 'node:path';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { CIFAR_CLASSES, CIFAR_SHAPE, concatSplits, parseCifarBatch } from './cifar.js';
import { findPlainOrGz, readMaybeGzip } from './files.js';
import { idxToSplit, parseIdx } from './idx.js';
import { head } from './split.js';
import { makeSynthetic, resolveSynthetic } from './synthetic.js';
import { DATASET_NAMES, type Dataset, type DatasetName, type DatasetSpec, type Split } from './types.js';

/** Where the Debian package `dataset-fashion-mnist` installs the idx files. */
export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

const IDX_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

const CIFAR_TRAIN_FILES = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'] as const;
const CIFAR_TEST_FILE = 'test_batch.bin';

/** Files on disk per dataset. Relative folders are resolved against the working directory. */
export const DATASET_SOURCES = {
  'fashion-mnist': {
    format: 'idx',
    title: 'Fashion-MNIST',
    defaultDirs: ['data/fashion-mnist', DEBIAN_FASHION_MNIST_DIR],
    hint: 'run `sudo apt-get install dataset-fashion-mnist` or pass --data-dir with the idx files',
  },
  mnist: {
    format: 'idx',
    title: 'MNIST',
    defaultDirs: ['data/mnist'],
    hint: 'put the four idx files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, optionally .gz) there or pass --data-dir',
  },
  cifar10: {
    format: 'cifar',
    title: 'CIFAR-10',
    defaultDirs: ['data/cifar10', 'data/cifar-10-batches-bin'],
    hint: 'extract the CIFAR-10 binary version (data_batch_1.bin..data_batch_5.bin, test_batch.bin) there or pass --data-dir',
  },
  synthetic: { format: 'synthetic', title: 'Synthetic', defaultDirs: [], hint: 'built in, nothing to install' },
} as const satisfies Record<DatasetName, { format: 'idx' | 'cifar' | 'synthetic'; title: string; defaultDirs: readonly string[]; hint: string }>;

/** Folders searched for a dataset, in order: `dir` alone when given, else the defaults. */
export function searchDirs(name: DatasetName, dir?: string): string[] {
  const source = DATASET_SOURCES[name];
  const base = dir !== undefined ? [dir] : [...source.defaultDirs];
  // The CIFAR-10 archive extracts into cifar-10-batches-bin/; accept the folder above it too.
  return source.format === 'cifar' && dir !== undefined ? [...base, join(dir, 'cifar-10-batches-bin')] : base;
}

type Located =
  | { readonly found: true; readonly dir: string; readonly files: Readonly<Record<string, string>> }
  | { readonly found: false; readonly searched: readonly string[]; readonly partial?: { readonly dir: string; readonly missing: readonly string[] } };

async function locate(name: Exclude<DatasetName, 'synthetic'>, dir?: string): Promise<Located> {
  const searched = searchDirs(name, dir);
  const wanted: Record<string, string> =
    DATASET_SOURCES[name].format === 'idx' ? { ...IDX_FILES } : Object.fromEntries([...CIFAR_TRAIN_FILES, CIFAR_TEST_FILE].map((f) => [f, f]));
  let partial: { dir: string; missing: string[] } | undefined;
  for (const d of searched) {
    const files: Record<string, string> = {};
    const missing: string[] = [];
    for (const [role, base] of Object.entries(wanted)) {
      const found = await findPlainOrGz(resolve(d, base));
      if (found) files[role] = found;
      else missing.push(base);
    }
    if (missing.length === 0) return { found: true, dir: d, files };
    if (!partial && missing.length < Object.keys(wanted).length) partial = { dir: d, missing };
  }
  return { found: false, searched, partial };
}

function missingError(name: DatasetName, located: Extract<Located, { found: false }>): AutopruneError {
  const source = DATASET_SOURCES[name];
  const where = located.searched.map((d) => quote(d)).join(', ');
  const partial = located.partial ? ` (${quote(located.partial.dir)} lacks ${located.partial.missing.map((m) => quote(m)).join(', ')})` : '';
  return new AutopruneError(ErrorCodes.DATASET_MISSING, `${source.title} not found in ${where}${partial}: ${source.hint}`);
}

interface ParsedPair {
  readonly train: Split;
  readonly test: Split;
}

/** Parsed datasets by resolved file paths, so loading the same files twice parses once. */
const cache = new Map<string, Promise<ParsedPair>>();

/** Drop every cached dataset (frees memory; the next load parses again). */
export function clearDatasetCache(): void {
  cache.clear();
}

function cached(key: string, parse: () => Promise<ParsedPair>): Promise<ParsedPair> {
  let entry = cache.get(key);
  if (!entry) {
    entry = parse();
    cache.set(key, entry);
    entry.catch(() => cache.delete(key));
  }
  return entry;
}

async function parseIdxPair(images: string, labels: string, numClasses: number): Promise<Split> {
  const [imageBytes, labelBytes] = await Promise.all([readMaybeGzip(images), readMaybeGzip(labels)]);
  return idxToSplit(parseIdx(imageBytes, images), parseIdx(labelBytes, labels), { images, labels }, numClasses);
}

async function parseCifarFile(file: string): Promise<Split> {
  return parseCifarBatch(await readMaybeGzip(file), file);
}

/**
 * Load a dataset (see DatasetSpec). Missing files -> DATASET_MISSING naming the folders searched;
 * corrupt files -> DATASET_INVALID naming the file. `limit` keeps the first N examples of a split
 * as views into the cached arrays.
 */
export async function loadDataset(spec: DatasetSpec): Promise<Dataset> {
  if (!(DATASET_NAMES as readonly string[]).includes(spec.name)) {
    throw new AutopruneError(
      ErrorCodes.INVALID_ARGUMENT,
      `Expected a dataset name in ${DATASET_NAMES.map((n) => quote(n)).join(', ')}, got ${quote(spec.name)}`,
    );
  }
  const full = await loadFull(spec);
  return {
    ...full,
    train: spec.limit?.train !== undefined ? head(full.train, spec.limit.train) : full.train,
    test: spec.limit?.test !== undefined ? head(full.test, spec.limit.test) : full.test,
  };
}

async function loadFull(spec: DatasetSpec): Promise<Dataset> {
  const name = spec.name;
  switch (name) {
    case 'synthetic': {
      const resolved = resolveSynthetic(spec.synthetic);
      const pair = await cached(`synthetic:${JSON.stringify(resolved)}`, async () => makeSynthetic(resolved));
      return { name, shape: resolved.shape, numClasses: resolved.numClasses, ...pair };
    }
    case 'fashion-mnist':
    case 'mnist': {
      const located = await locate(name, spec.dir);
      if (!located.found) throw missingError(name, located);
      const f = located.files;
      const pair = await cached(`idx:${f.trainImages}|${f.trainLabels}|${f.testImages}|${f.testLabels}`, async () => {
        const [train, test] = await Promise.all([parseIdxPair(f.trainImages, f.trainLabels, 10), parseIdxPair(f.testImages, f.testLabels, 10)]);
        if (train.shape.join() !== test.shape.join()) {
          throw new AutopruneError(
            ErrorCodes.DATASET_INVALID,
            `Dataset file ${quote(f.testImages)} has images of ${test.shape.join('x')} but ${quote(f.trainImages)} has ${train.shape.join('x')}; expected the same size`,
          );
        }
        return { train, test };
      });
      return { name, shape: pair.train.shape, numClasses: 10, ...pair };
    }
    case 'cifar10': {
      const located = await locate(name, spec.dir);
      if (!located.found) throw missingError(name, located);
      const f = located.files;
      const trainFiles = CIFAR_TRAIN_FILES.map((b) => f[b]);
      const pair = await cached(`cifar:${[...trainFiles, f[CIFAR_TEST_FILE]].join('|')}`, async () => {
        const parts = await Promise.all(trainFiles.map(parseCifarFile));
        return { train: concatSplits(parts), test: await parseCifarFile(f[CIFAR_TEST_FILE]) };
      });
      return { name, shape: CIFAR_SHAPE, numClasses: CIFAR_CLASSES, ...pair };
    }
    default: {
      const never: never = name;
      throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Unknown dataset ${quote(never)}`);
    }
  }
}

export interface DatasetAvailability {
  readonly name: DatasetName;
  readonly title: string;
  readonly found: boolean;
  /** The folder the files were found in (absent for synthetic and when not found). */
  readonly dir?: string;
  /** The folders searched, in order. */
  readonly searched: readonly string[];
  /** How to get it, or why it is always there. */
  readonly hint: string;
}

/** For `autoprune doctor`: which datasets are found where. Checks files exist; parses nothing. */
export async function describeDatasets(options: { readonly dataDir?: string } = {}): Promise<DatasetAvailability[]> {
  const out: DatasetAvailability[] = [];
  for (const name of DATASET_NAMES) {
    const { title, hint } = DATASET_SOURCES[name];
    if (name === 'synthetic') {
      out.push({ name, title, found: true, searched: [], hint });
      continue;
    }
    const located = await locate(name, options.dataDir);
    out.push(
      located.found
        ? { name, title, found: true, dir: located.dir, searched: searchDirs(name, options.dataDir), hint }
        : { name, title, found: false, searched: located.searched, hint },
    );
  }
  return out;
}
