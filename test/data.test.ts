import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { AutopruneError, ErrorCodes } from '../src/core/errors.js';
import { Rng } from '../src/core/rng.js';
import {
  batches,
  clearDatasetCache,
  DEBIAN_FASHION_MNIST_DIR,
  describeDatasets,
  loadDataset,
  makeSynthetic,
  parseCifarBatch,
  parseIdx,
  type Split,
  splitIndices,
  splitTrainValidation,
} from '../src/data/index.js';
import { toTensors } from '../src/data/tensors.js';

/** An idx file of unsigned bytes: magic 00 00 08 ndims, big-endian dims, data. */
function idx(dims: number[], data: number[]): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}

// 3 train images 2x2, 2 test images 2x2.
const TRAIN_PIXELS = [0, 255, 51, 102, 1, 2, 3, 4, 200, 100, 50, 25];
const TRAIN_LABELS = [3, 0, 9];
const TEST_PIXELS = [10, 20, 30, 40, 255, 0, 255, 0];
const TEST_LABELS = [1, 2];

async function writeIdxSet(dir: string, gz: boolean): Promise<void> {
  await mkdir(dir, { recursive: true });
  const files: [string, Buffer][] = [
    ['train-images-idx3-ubyte', idx([3, 2, 2], TRAIN_PIXELS)],
    ['train-labels-idx1-ubyte', idx([3], TRAIN_LABELS)],
    ['t10k-images-idx3-ubyte', idx([2, 2, 2], TEST_PIXELS)],
    ['t10k-labels-idx1-ubyte', idx([2], TEST_LABELS)],
  ];
  for (const [name, bytes] of files) {
    await writeFile(join(dir, gz ? `${name}.gz` : name), gz ? gzipSync(bytes) : bytes);
  }
}

const f32 = (values: number[]): number[] => values.map((v) => Math.fround(v / 255));

function assertCode(code: string, pattern?: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof AutopruneError, `expected AutopruneError, got ${String(e)}`);
    assert.equal(e.code, code);
    if (pattern) assert.match(e.message, pattern);
    assert.ok(!e.message.includes('\n'), 'message is one line');
    return true;
  };
}

function toSplit(labels: number[], size = 2): Split {
  const count = labels.length;
  const images = new Float32Array(count * size);
  for (let i = 0; i < count; i++) images.fill(i, i * size, (i + 1) * size);
  return { images, labels: Uint8Array.from(labels), count, shape: [1, size, 1] };
}

let tmp: string;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'autoprune-data-'));
});
after(async () => {
  clearDatasetCache();
  await rm(tmp, { recursive: true, force: true });
});

describe('idx', () => {
  for (const gz of [false, true]) {
    it(`loads a hand-built idx set (${gz ? 'gzipped' : 'plain'}) with exact pixels and labels`, async () => {
      const dir = join(tmp, gz ? 'idx-gz' : 'idx-plain');
      await writeIdxSet(dir, gz);
      const ds = await loadDataset({ name: 'mnist', dir });
      assert.deepEqual(ds.shape, [2, 2, 1]);
      assert.equal(ds.numClasses, 10);
      assert.equal(ds.train.count, 3);
      assert.equal(ds.test.count, 2);
      assert.deepEqual([...ds.train.images], f32(TRAIN_PIXELS));
      assert.deepEqual([...ds.train.labels], TRAIN_LABELS);
      assert.deepEqual([...ds.test.images], f32(TEST_PIXELS));
      assert.deepEqual([...ds.test.labels], TEST_LABELS);
      assert.equal(ds.train.images[1], 1);
      assert.equal(ds.train.images[0], 0);
    });
  }

  it('applies limits as a prefix of each split', async () => {
    const dir = join(tmp, 'idx-limit');
    await writeIdxSet(dir, false);
    const ds = await loadDataset({ name: 'fashion-mnist', dir, limit: { train: 2, test: 5 } });
    assert.equal(ds.train.count, 2);
    assert.deepEqual([...ds.train.labels], [3, 0]);
    assert.equal(ds.train.images.length, 8);
    assert.equal(ds.test.count, 2);
  });

  it('caches parsed arrays by path', async () => {
    const dir = join(tmp, 'idx-cache');
    await writeIdxSet(dir, true);
    const a = await loadDataset({ name: 'mnist', dir });
    const b = await loadDataset({ name: 'mnist', dir });
    assert.equal(a.train.images, b.train.images);
  });

  it('rejects a bad magic with DATASET_INVALID naming the file', async () => {
    const bytes = idx([2], [1, 2]);
    bytes[2] = 0x0d;
    assert.throws(() => parseIdx(bytes, 'labels.idx'), assertCode(ErrorCodes.DATASET_INVALID, /`labels\.idx`.*0x0d/));
    const notIdx = Buffer.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0]);
    assert.throws(() => parseIdx(notIdx, 'x.idx'), assertCode(ErrorCodes.DATASET_INVALID, /magic/));

    const dir = join(tmp, 'idx-badmagic');
    await writeIdxSet(dir, false);
    const bad = idx([3], TRAIN_LABELS);
    bad[0] = 0xff;
    await writeFile(join(dir, 'train-labels-idx1-ubyte'), bad);
    await assert.rejects(loadDataset({ name: 'mnist', dir }), assertCode(ErrorCodes.DATASET_INVALID, /train-labels-idx1-ubyte/));
  });

  it('rejects truncated data, mismatched counts and corrupt gzip', async () => {
    const truncated = idx([3, 2, 2], TRAIN_PIXELS).subarray(0, 20);
    assert.throws(() => parseIdx(truncated, 'imgs'), assertCode(ErrorCodes.DATASET_INVALID, /truncated/));

    const dir = join(tmp, 'idx-mismatch');
    await writeIdxSet(dir, false);
    await writeFile(join(dir, 'train-labels-idx1-ubyte'), idx([2], [1, 2]));
    await assert.rejects(loadDataset({ name: 'mnist', dir }), assertCode(ErrorCodes.DATASET_INVALID, /2 labels but .* 3 images/));

    const dir2 = join(tmp, 'idx-badgz');
    await writeIdxSet(dir2, true);
    await writeFile(join(dir2, 't10k-images-idx3-ubyte.gz'), gzipSync(idx([2, 2, 2], TEST_PIXELS)).subarray(0, 15));
    await assert.rejects(loadDataset({ name: 'mnist', dir: dir2 }), assertCode(ErrorCodes.DATASET_INVALID, /t10k-images-idx3-ubyte\.gz/));
  });

  it('missing dataset -> one-line DATASET_MISSING naming the folder and how to get it', async () => {
    const dir = join(tmp, 'nothing-here');
    await assert.rejects(
      loadDataset({ name: 'fashion-mnist', dir }),
      assertCode(ErrorCodes.DATASET_MISSING, new RegExp(`Fashion-MNIST not found in \`${dir}\`.*apt-get install dataset-fashion-mnist`)),
    );
    await assert.rejects(loadDataset({ name: 'cifar10', dir }), assertCode(ErrorCodes.DATASET_MISSING, /CIFAR-10 not found in .*nothing-here/));
  });

  it('a folder with only some files says which are missing', async () => {
    const dir = join(tmp, 'idx-partial');
    await writeIdxSet(dir, false);
    await rm(join(dir, 't10k-labels-idx1-ubyte'));
    await assert.rejects(loadDataset({ name: 'mnist', dir }), assertCode(ErrorCodes.DATASET_MISSING, /lacks `t10k-labels-idx1-ubyte`/));
  });
});

describe('cifar10', () => {
  /** A record whose pixel at plane p, position i is (p * 7 + i * 3 + seed) mod 256. */
  function record(label: number, seed: number): Buffer {
    const b = Buffer.alloc(3073);
    b[0] = label;
    for (let p = 0; p < 3; p++) for (let i = 0; i < 1024; i++) b[1 + p * 1024 + i] = (p * 7 + i * 3 + seed) % 256;
    return b;
  }

  it('converts CHW records to HWC with exact values', () => {
    const split = parseCifarBatch(Buffer.concat([record(6, 0), record(9, 100)]), 'x.bin');
    assert.equal(split.count, 2);
    assert.deepEqual([...split.labels], [6, 9]);
    assert.deepEqual(split.shape, [32, 32, 3]);
    assert.equal(split.images.length, 2 * 3072);
    for (const [r, seed] of [
      [0, 0],
      [1, 100],
    ]) {
      for (const [y, x] of [
        [0, 0],
        [0, 1],
        [5, 17],
        [31, 31],
      ]) {
        for (let c = 0; c < 3; c++) {
          const i = y * 32 + x;
          const want = Math.fround(((c * 7 + i * 3 + seed) % 256) / 255);
          assert.equal(split.images[r * 3072 + (y * 32 + x) * 3 + c], want, `record ${r} y${y} x${x} c${c}`);
        }
      }
    }
    // First pixel of record 0 is (R, G, B) = (0, 7, 14).
    assert.deepEqual([...split.images.subarray(0, 3)], f32([0, 7, 14]));
  });

  it('rejects a size that is not whole records, and labels >= 10', () => {
    assert.throws(() => parseCifarBatch(Buffer.alloc(3074), 'a.bin'), assertCode(ErrorCodes.DATASET_INVALID, /`a\.bin`.*3074 bytes/));
    assert.throws(() => parseCifarBatch(record(10, 0), 'b.bin'), assertCode(ErrorCodes.DATASET_INVALID, /label 10/));
  });

  it('loads the six batch files from the extracted folder', async () => {
    const dir = join(tmp, 'cifar', 'cifar-10-batches-bin');
    await mkdir(dir, { recursive: true });
    for (let k = 1; k <= 5; k++) await writeFile(join(dir, `data_batch_${k}.bin`), Buffer.concat([record(k, k), record(0, 0)]));
    await writeFile(join(dir, 'test_batch.bin'), record(7, 1));
    const ds = await loadDataset({ name: 'cifar10', dir: join(tmp, 'cifar') });
    assert.equal(ds.train.count, 10);
    assert.deepEqual([...ds.train.labels], [1, 0, 2, 0, 3, 0, 4, 0, 5, 0]);
    assert.equal(ds.test.count, 1);
    assert.deepEqual(ds.shape, [32, 32, 3]);
  });
});

describe('splitTrainValidation', () => {
  const labels = Array.from({ length: 103 }, (_, i) => (i * 7) % 5);
  const split = toSplit(labels);

  it('same seed -> same indices, different seed -> different', () => {
    const a = splitIndices(split.labels, 20, 1);
    const b = splitIndices(split.labels, 20, 1);
    const c = splitIndices(split.labels, 20, 2);
    assert.deepEqual([...a.validation], [...b.validation]);
    assert.notDeepEqual([...a.validation], [...c.validation]);
  });

  it('is disjoint, covers the original and is stratified', () => {
    const { train, validation } = splitTrainValidation(split, 0.2, 7);
    assert.equal(validation.count, 21);
    assert.equal(train.count + validation.count, 103);
    // Each example's image holds its original index.
    const ids = (s: Split): number[] => Array.from({ length: s.count }, (_, i) => s.images[i * 2]);
    const all = [...ids(train), ...ids(validation)].sort((x, y) => x - y);
    assert.deepEqual(
      all,
      labels.map((_, i) => i),
    );
    assert.equal(new Set([...ids(train), ...ids(validation)]).size, 103);
    for (const s of [train, validation]) {
      ids(s).forEach((orig, i) => assert.equal(s.labels[i], labels[orig]));
    }
    const perClass = (s: Split): number[] => [0, 1, 2, 3, 4].map((k) => s.labels.filter((l) => l === k).length);
    for (const n of perClass(validation)) assert.ok(n === 4 || n === 5, `class share ${n}`);
  });

  it('rejects an impossible size', () => {
    assert.throws(() => splitTrainValidation(split, 104, 0), assertCode(ErrorCodes.INVALID_ARGUMENT, /104/));
    assert.throws(() => splitTrainValidation(split, -1, 0), assertCode(ErrorCodes.INVALID_ARGUMENT));
  });
});

describe('batches', () => {
  const split = toSplit(Array.from({ length: 23 }, (_, i) => i % 3));

  for (const shuffled of [false, true]) {
    it(`cover every example exactly once per epoch (${shuffled ? 'shuffled' : 'in order'})`, () => {
      const seen: number[] = [];
      const sizes: number[] = [];
      const rng = shuffled ? new Rng(3) : undefined;
      for (const b of batches(split, 5, { shuffle: rng })) {
        sizes.push(b.count);
        assert.equal(b.images.length, b.count * 2);
        for (let i = 0; i < b.count; i++) {
          const id = b.images[i * 2];
          seen.push(id);
          assert.equal(b.labels[i], id % 3);
        }
      }
      assert.deepEqual(sizes, [5, 5, 5, 5, 3]);
      assert.deepEqual(
        [...seen].sort((a, b) => a - b),
        Array.from({ length: 23 }, (_, i) => i),
      );
      if (shuffled)
        assert.notDeepEqual(
          seen,
          Array.from({ length: 23 }, (_, i) => i),
        );
    });
  }

  it('respects maxBatches and maxExamples', () => {
    assert.deepEqual(
      [...batches(split, 5, { maxBatches: 2 })].map((b) => b.count),
      [5, 5],
    );
    assert.deepEqual(
      [...batches(split, 5, { maxExamples: 7 })].map((b) => b.count),
      [5, 2],
    );
    assert.throws(() => [...batches(split, 0)], assertCode(ErrorCodes.INVALID_ARGUMENT, /batchSize/));
  });

  it('toTensors gives NHWC images and one-hot labels', () => {
    const [b] = batches(split, 4);
    const { xs, ys } = toTensors(b, 3);
    try {
      assert.deepEqual(xs.shape, [4, 1, 2, 1]);
      assert.deepEqual(ys.shape, [4, 3]);
      assert.deepEqual(Array.from(ys.dataSync()), [1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0]);
      assert.deepEqual(Array.from(xs.dataSync()), [0, 0, 1, 1, 2, 2, 3, 3]);
    } finally {
      xs.dispose();
      ys.dispose();
    }
  });
});

describe('synthetic', () => {
  it('is deterministic from its seed and shaped as asked', () => {
    const spec = { shape: [8, 6, 3] as const, numClasses: 4, trainCount: 40, testCount: 12, seed: 5 };
    const a = makeSynthetic(spec);
    const b = makeSynthetic(spec);
    const c = makeSynthetic({ ...spec, seed: 6 });
    assert.deepEqual(a.shape, [8, 6, 3]);
    assert.equal(a.train.images.length, 40 * 8 * 6 * 3);
    assert.equal(a.test.count, 12);
    assert.deepEqual(a.train.images, b.train.images);
    assert.deepEqual(a.train.labels, b.train.labels);
    assert.notDeepEqual(a.train.images, c.train.images);
    assert.ok(a.train.images.every((v) => v >= 0 && v <= 1));
    // Balanced classes.
    for (let k = 0; k < 4; k++) assert.equal(a.train.labels.filter((l) => l === k).length, 10);
    // Changing the test count leaves train unchanged.
    assert.deepEqual(makeSynthetic({ ...spec, testCount: 3 }).train.images, a.train.images);
  });

  it('is learnable: nearest class mean beats chance by far', () => {
    const ds = makeSynthetic({ numClasses: 10, trainCount: 300, testCount: 100, seed: 1 });
    const size = 28 * 28;
    const means = Array.from({ length: 10 }, () => new Float64Array(size));
    const counts = new Array(10).fill(0);
    for (let n = 0; n < ds.train.count; n++) {
      const k = ds.train.labels[n];
      counts[k]++;
      for (let i = 0; i < size; i++) means[k][i] += ds.train.images[n * size + i];
    }
    means.forEach((m, k) => m.forEach((_, i) => (m[i] /= counts[k])));
    let correct = 0;
    for (let n = 0; n < ds.test.count; n++) {
      let best = -1;
      let bestD = Infinity;
      for (let k = 0; k < 10; k++) {
        let d = 0;
        for (let i = 0; i < size; i++) d += (ds.test.images[n * size + i] - means[k][i]) ** 2;
        if (d < bestD) [bestD, best] = [d, k];
      }
      if (best === ds.test.labels[n]) correct++;
    }
    assert.ok(correct / ds.test.count > 0.5, `accuracy ${correct / ds.test.count}`);
  });

  it('loads through loadDataset with limits', async () => {
    const ds = await loadDataset({ name: 'synthetic', synthetic: { trainCount: 30, testCount: 10 }, limit: { train: 12 } });
    assert.equal(ds.train.count, 12);
    assert.equal(ds.test.count, 10);
    assert.equal(ds.numClasses, 10);
  });
});

describe('describeDatasets', () => {
  it('reports where each dataset is found', async () => {
    const dir = join(tmp, 'idx-describe');
    await writeIdxSet(dir, true);
    const all = await describeDatasets({ dataDir: dir });
    const byName = Object.fromEntries(all.map((d) => [d.name, d]));
    assert.equal(byName.mnist.found, true);
    assert.equal(byName.mnist.dir, dir);
    assert.equal(byName.cifar10.found, false);
    assert.ok(byName.cifar10.searched.includes(dir));
    assert.equal(byName.synthetic.found, true);
  });
});

describe('Fashion-MNIST from the Debian package', () => {
  const present = existsSync(join(DEBIAN_FASHION_MNIST_DIR, 'train-images-idx3-ubyte.gz'));
  it('loads 60000 train / 10000 test 28x28x1 with 10 classes', {
    skip: present ? false : `${DEBIAN_FASHION_MNIST_DIR} absent (apt-get install dataset-fashion-mnist)`,
  }, async () => {
    const ds = await loadDataset({ name: 'fashion-mnist', dir: DEBIAN_FASHION_MNIST_DIR });
    assert.equal(ds.train.count, 60000);
    assert.equal(ds.test.count, 10000);
    assert.deepEqual(ds.shape, [28, 28, 1]);
    assert.equal(ds.numClasses, 10);
    assert.equal(new Set(ds.train.labels).size, 10);
    assert.equal(ds.train.images.length, 60000 * 784);
    clearDatasetCache();
  });
});

it('shareSplit: same contents in SharedArrayBuffers; sharing a shared split is free', async () => {
  const { shareSplit } = await import('../src/data/index.js');
  const split = { images: Float32Array.from([0, 0.5, 1, 0.25]), labels: Uint8Array.from([3, 7]), count: 2, shape: [1, 2, 1] as const };
  const shared = shareSplit(split);
  assert.ok(shared.images.buffer instanceof SharedArrayBuffer && shared.labels.buffer instanceof SharedArrayBuffer);
  assert.deepEqual([...shared.images], [...split.images]);
  assert.deepEqual([...shared.labels], [...split.labels]);
  assert.equal(shareSplit(shared), shared);
});
