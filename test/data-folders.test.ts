import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { dump } from 'npyjs';
import sharp from 'sharp';
import { resolveConfig } from '../src/config/index.js';
import { AutopruneError, ErrorCodes } from '../src/core/errors.js';
import { candidateFromRatios } from '../src/core/space.js';
import { splitsHash } from '../src/data/fingerprint.js';
import { DEBIAN_FASHION_MNIST_DIR, gather, loadDataset, splitTrainValidation } from '../src/data/index.js';
import { type ImageFolderSpec, loadOwnDataset, type NpySpec } from '../src/data/own.js';
import { preprocessingOf } from '../src/data/preprocessing.js';
import { writeImageFolder } from '../src/data/write-folder.js';
import { onnxProxy } from '../src/evaluators/onnx-proxy.js';
import { loadSplits } from '../src/evaluators/setup.js';
import { accuracy } from '../src/evaluators/train.js';
import { saveModel } from '../src/model/io.js';
import { analyzeGraph } from '../src/model/ir/analyze.js';
import { pruneGraph } from '../src/model/ir/cut.js';
import { graphFromLayersModel } from '../src/model/ir/from-tfjs.js';
import type { ModelGraph } from '../src/model/ir/graph.js';
import { graphToOnnx } from '../src/model/ir/to-onnx.js';
import { buildZooModel } from '../src/model/zoo.js';
import { openStore } from '../src/store/index.js';
import { cli, oneLine } from './helpers.js';

let tmp: string;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'autoprune-folders-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const rawImage = (w: number, h: number, c: 1 | 3, fill: (p: number, ch: number) => number) => {
  const px = Buffer.alloc(w * h * c);
  for (let p = 0; p < w * h; p++) for (let ch = 0; ch < c; ch++) px[p * c + ch] = fill(p, ch);
  return sharp(px, { raw: { width: w, height: h, channels: c } });
};

function dataError(code: string, pattern: RegExp): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof AutopruneError, `expected AutopruneError, got ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes('\n'), 'message is one line');
    return true;
  };
}

const folderSpec = (train: string, more: Partial<ImageFolderSpec> = {}): ImageFolderSpec => ({
  format: 'imagefolder',
  train,
  channels: 3,
  onCorrupt: 'fail',
  cache: join(tmp, 'cache', train.replace(/\W/g, '_')),
  ...more,
});

const f32 = (bytes: number[]): number[] => bytes.map((v) => Math.fround(v / 255));

/**
 * Two classes in byte order (`B_dog` before `a_cat`), 4x4 images: a PNG, a lossless WebP and a
 * JPEG per class, a grayscale PNG among the RGB ones, notes and a nested non-image file ignored.
 */
async function writeMixedFolder(root: string): Promise<void> {
  for (const cls of ['a_cat', 'B_dog']) {
    await mkdir(join(root, cls, 'nested'), { recursive: true });
    const base = cls === 'a_cat' ? 10 : 100;
    await rawImage(4, 4, 3, (p, ch) => base + p + ch)
      .png()
      .toFile(join(root, cls, '1.png'));
    await rawImage(4, 4, 3, (p, ch) => base + 2 * p + ch)
      .webp({ lossless: true })
      .toFile(join(root, cls, '2.webp'));
    await rawImage(4, 4, 3, () => base)
      .jpeg({ quality: 100 })
      .toFile(join(root, cls, 'nested', '3.JPG'));
    await writeFile(join(root, cls, 'notes.txt'), 'not an image');
    await writeFile(join(root, cls, 'nested', 'labels.csv'), 'a,b');
  }
  await rawImage(4, 4, 1, (p) => 7 * p)
    .png()
    .toFile(join(root, 'a_cat', '0-gray.png'));
  await writeFile(join(root, 'README.md'), 'top-level files are not classes');
}

describe('image folders', () => {
  it('decodes PNG, WebP, JPEG and a grayscale file into RGB, classes in byte order, non-images ignored', async () => {
    const root = join(tmp, 'mixed');
    await writeMixedFolder(root);
    const ds = await loadOwnDataset(folderSpec(root, { test: root }));
    assert.deepEqual(ds.classes, ['B_dog', 'a_cat'], 'byte order: uppercase first');
    assert.deepEqual(ds.shape, [4, 4, 3]);
    assert.equal(ds.numClasses, 2);
    assert.equal(ds.train.count, 7);
    // Per class: the folder's own files in byte order, then the nested folder's.
    assert.deepEqual([...ds.train.labels], [0, 0, 0, 1, 1, 1, 1]);
    const img = (k: number): number[] => [...ds.train.images.subarray(k * 48, (k + 1) * 48)];
    const expect = (fill: (p: number, ch: number) => number): number[] => f32(Array.from({ length: 48 }, (_, i) => fill(Math.floor(i / 3), i % 3)));
    assert.deepEqual(
      img(0),
      expect((p, ch) => 100 + p + ch),
      'B_dog/1.png exact',
    );
    assert.deepEqual(
      img(1),
      expect((p, ch) => 100 + 2 * p + ch),
      'B_dog/2.webp (lossless) exact',
    );
    assert.deepEqual(
      img(3),
      expect((p) => 7 * p),
      'a_cat/0-gray.png repeated into R, G, B',
    );
    // JPEG is lossy: a flat image comes back within a grey level or two.
    for (const v of img(2)) assert.ok(Math.abs(v * 255 - 100) <= 2, `B_dog/nested/3.JPG pixel ${v * 255}`);
    assert.deepEqual(ds.skipped, []);
    assert.equal(ds.test.count, 7);
  });

  it("converts RGB to gray with PIL's integer luma when channels is 1", async () => {
    const root = join(tmp, 'gray');
    for (const cls of ['x', 'y']) {
      await mkdir(join(root, cls), { recursive: true });
      await rawImage(2, 1, 3, (p, ch) => [200, 10, 60][ch] + p)
        .png()
        .toFile(join(root, cls, 'rgb.png'));
    }
    const ds = await loadOwnDataset(folderSpec(root, { channels: 1, test: root }));
    assert.deepEqual(ds.shape, [1, 2, 1]);
    const luma = (r: number, g: number, b: number): number => (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
    assert.deepEqual([...ds.train.images.subarray(0, 2)], f32([luma(200, 10, 60), luma(201, 11, 61)]));
  });

  it('reduces 16-bit PNGs to 8 bits', async () => {
    const root = join(tmp, 'deep');
    for (const cls of ['x', 'y']) {
      await mkdir(join(root, cls), { recursive: true });
      await rawImage(2, 2, 3, (p, ch) => 60 * p + ch)
        .toColourspace('rgb16')
        .png()
        .toFile(join(root, cls, 'deep.png'));
    }
    assert.equal((await sharp(join(root, 'x', 'deep.png')).metadata()).depth, 'ushort', 'the file is 16-bit');
    const ds = await loadOwnDataset(folderSpec(root, { test: root }));
    assert.deepEqual([...ds.train.images.subarray(0, 12)], f32(Array.from({ length: 12 }, (_, i) => 60 * Math.floor(i / 3) + (i % 3))));
  });

  it('resizes to cover imageSize and crops the centre (Resize + CenterCrop)', async () => {
    const root = join(tmp, 'resize');
    for (const cls of ['x', 'y']) {
      await mkdir(join(root, cls), { recursive: true });
      // 8 wide, 4 high, columns 0..7 = 0, 30, ..., 210: covering 4x4 needs no scaling, the crop keeps columns 2..5.
      await rawImage(8, 4, 1, (p) => 30 * (p % 8))
        .png()
        .toFile(join(root, cls, 'wide.png'));
    }
    const ds = await loadOwnDataset(folderSpec(root, { channels: 1, imageSize: [4, 4], test: root }));
    assert.deepEqual(ds.shape, [4, 4, 1]);
    assert.deepEqual([...ds.train.images.subarray(0, 4)], f32([60, 90, 120, 150]));
  });

  it('carves a stratified test split when `test` is absent, and normalises per channel', async () => {
    const root = join(tmp, 'carve');
    for (const cls of ['x', 'y']) {
      await mkdir(join(root, cls), { recursive: true });
      for (let i = 0; i < 5; i++)
        await rawImage(1, 1, 3, () => 51 * (i + 1))
          .png()
          .toFile(join(root, cls, `${i}.png`));
    }
    const ds = await loadOwnDataset(folderSpec(root, { testSize: 4, normalize: { mean: [0.5, 0.5, 0.5], std: [0.25, 0.5, 1] } }));
    assert.equal(ds.train.count, 6);
    assert.equal(ds.test.count, 4);
    assert.deepEqual([...ds.test.labels].sort(), [0, 0, 1, 1], 'two of each class');
    // A white pixel (v = 255): (1 - 0.5) / std per channel.
    const all = [...ds.train.images, ...ds.test.images];
    for (const want of [2, 1, 0.5]) assert.ok(all.includes(want), `(1 - 0.5) / std = ${want} present`);
  });

  it('reads the pixel cache on the second load and decodes again after a file changes', async () => {
    const root = join(tmp, 'cached');
    await writeMixedFolder(root);
    const spec = folderSpec(root, { test: root });
    const first = await loadOwnDataset(spec);
    assert.equal(first.source.kind, 'decoded');
    assert.ok(first.source.cacheFile && existsSync(first.source.cacheFile));
    assert.ok(!first.source.cacheFile.startsWith(root), 'the cache is not inside the data folder');
    const second = await loadOwnDataset(spec);
    assert.equal(second.source.kind, 'cache');
    assert.equal(second.source.cacheFile, first.source.cacheFile);
    assert.deepEqual(second.train.images, first.train.images);
    assert.deepEqual(second.train.labels, first.train.labels);

    // Same size, new content and mtime: noticed.
    const file = join(root, 'B_dog', '1.png');
    const size = (await stat(file)).size;
    await rawImage(4, 4, 3, (p, ch) => 200 - p - ch)
      .png()
      .toFile(file);
    const later = new Date(Date.now() + 5000);
    await utimes(file, later, later);
    const third = await loadOwnDataset(spec);
    assert.equal(third.source.kind, 'decoded');
    assert.notEqual(third.source.cacheFile, first.source.cacheFile);
    assert.ok(!existsSync(first.source.cacheFile), 'the stale entry of the same folder is deleted');
    assert.deepEqual(await readdir(spec.cache), [third.source.cacheFile!.split('/').at(-1)]);
    assert.equal(third.train.images[0], Math.fround(200 / 255), `the new pixels (file was ${size} bytes)`);
    // The identity a study records of its data changes with the file.
    const identity = (d: typeof first): string => splitsHash({ train: d.train, validation: d.test, test: d.test });
    assert.equal(identity(second), identity(first));
    assert.notEqual(identity(third), identity(first));

    // Only the mtime changes: still a miss (the content may have changed in place).
    const later2 = new Date(Date.now() + 10_000);
    await utimes(file, later2, later2);
    assert.equal((await loadOwnDataset(spec)).source.kind, 'decoded');
    assert.equal((await loadOwnDataset(spec)).source.kind, 'cache');
  });

  it('skips a corrupt file with onCorrupt: skip and reports it; fails naming it otherwise, writing no cache', async () => {
    const root = join(tmp, 'corrupt');
    await writeMixedFolder(root);
    await writeFile(join(root, 'a_cat', 'broken.png'), Buffer.from('\x89PNG\r\n\x1a\n truncated'));
    const cache = join(tmp, 'cache-corrupt');
    await assert.rejects(
      loadOwnDataset(folderSpec(root, { cache, test: root })),
      dataError(ErrorCodes.DATASET_INVALID, /^Image `.*a_cat\/broken\.png` cannot be decoded \(.+\); expected a readable .*onCorrupt: skip/),
    );
    assert.ok(!existsSync(cache) || (await readdir(cache)).length === 0, 'no cache written for failing data');
    const lines: string[] = [];
    const ds = await loadOwnDataset(folderSpec(root, { cache, test: root, onCorrupt: 'skip', log: (l) => lines.push(l) }));
    assert.equal(ds.train.count, 7);
    assert.equal(ds.skipped.length, 2, 'once in train, once in test (same folder)');
    assert.match(ds.skipped[0].file, /broken\.png$/);
    assert.ok(
      lines.some((l) => /^data: skipped 2 unreadable image\(s\) \(onCorrupt: skip\), e\.g\. `.*broken\.png`/.test(l)),
      lines.join('\n'),
    );
    // The cached entry remembers what was skipped.
    const again = await loadOwnDataset(folderSpec(root, { cache, test: root, onCorrupt: 'skip' }));
    assert.equal(again.source.kind, 'cache');
    assert.equal(again.skipped.length, 2);
  });

  it('refuses bad folders with one line naming the file or folder', async () => {
    const empty = join(tmp, 'bad-empty');
    await writeMixedFolder(empty);
    await mkdir(join(empty, 'c_empty', 'sub'), { recursive: true });
    await writeFile(join(empty, 'c_empty', 'sub', 'x.txt'), '');
    await assert.rejects(
      loadOwnDataset(folderSpec(empty)),
      dataError(ErrorCodes.DATASET_INVALID, /^Class folder `.*c_empty` has no images; expected at least one/),
    );

    const good = join(tmp, 'bad-test-class');
    await writeMixedFolder(good);
    const test = join(tmp, 'bad-test-class-test');
    await mkdir(join(test, 'zebra'), { recursive: true });
    await rawImage(4, 4, 3, () => 0)
      .png()
      .toFile(join(test, 'zebra', 'z.png'));
    await assert.rejects(
      loadOwnDataset(folderSpec(good, { test })),
      dataError(ErrorCodes.DATASET_INVALID, /^Class folder `.*zebra` is not a class of the training folder; expected one of `B_dog`, `a_cat`$/),
    );

    const sizes = join(tmp, 'bad-sizes');
    await writeMixedFolder(sizes);
    await rawImage(5, 4, 3, () => 0)
      .png()
      .toFile(join(sizes, 'a_cat', 'wide.png'));
    await assert.rejects(
      loadOwnDataset(folderSpec(sizes)),
      dataError(ErrorCodes.DATASET_INVALID, /^Image `.*a_cat\/wide\.png` is 4x5 \(height x width\); expected 4x4 like the first image: set `data\.imageSize`/),
    );

    const cut = join(tmp, 'bad-truncated');
    await writeMixedFolder(cut);
    const jpeg = await rawImage(64, 64, 3, (p, ch) => (p * 7 + ch) % 256)
      .jpeg()
      .toBuffer();
    await writeFile(join(cut, 'a_cat', 'cut.jpg'), jpeg.subarray(0, jpeg.length >> 1));
    await assert.rejects(loadOwnDataset(folderSpec(cut)), dataError(ErrorCodes.DATASET_INVALID, /^Image `.*a_cat\/cut\.jpg` cannot be decoded \(/));

    const few = join(tmp, 'bad-few');
    for (const cls of ['x', 'y']) {
      await mkdir(join(few, cls), { recursive: true });
      await rawImage(1, 1, 1, () => 9)
        .png()
        .toFile(join(few, cls, 'only.png'));
    }
    await assert.rejects(
      loadOwnDataset(folderSpec(few, { channels: 1, testSize: 0.1 })),
      dataError(ErrorCodes.DATASET_INVALID, /^`data\.testSize` 0\.1 of 2 training images holds out no test image/),
    );

    await assert.rejects(
      loadOwnDataset(folderSpec(join(tmp, 'nowhere'))),
      dataError(ErrorCodes.DATASET_MISSING, /^Image folder `.*nowhere` cannot be read: ENOENT$/),
    );
    const bmp = join(tmp, 'bad-bmp');
    await writeMixedFolder(bmp);
    await writeFile(join(bmp, 'a_cat', 'old.bmp'), 'BM');
    await assert.rejects(loadOwnDataset(folderSpec(bmp)), dataError(ErrorCodes.DATASET_INVALID, /^Image `.*old\.bmp` is BMP, which cannot be decoded/));
  });
});

/** An .npy file from a typed array (npyjs writes the header). */
async function npy(file: string, data: Uint8Array | Float32Array | BigInt64Array, shape: number[]): Promise<string> {
  await writeFile(file, new Uint8Array(dump(data, shape)));
  return file;
}

describe('npy arrays', () => {
  // 3 images 2x2 RGB; pixel value = 10 * image + 3 * position + channel (NHWC order).
  const nhwc = Uint8Array.from({ length: 36 }, (_, i) => 10 * Math.floor(i / 12) + 3 * Math.floor((i % 12) / 3) + (i % 3));
  const nchw = new Uint8Array(36);
  for (let n = 0; n < 3; n++) for (let p = 0; p < 4; p++) for (let c = 0; c < 3; c++) nchw[n * 12 + c * 4 + p] = nhwc[n * 12 + p * 3 + c];
  const labels = BigInt64Array.from([0n, 1n, 1n]);

  it('reads uint8 and float32, NHWC and NCHW, int64 labels, to the same HWC floats', async () => {
    const dir = join(tmp, 'npy');
    await mkdir(dir, { recursive: true });
    const y = await npy(join(dir, 'y.npy'), labels, [3]);
    const cases: [string, Uint8Array | Float32Array, number[], 'NHWC' | 'NCHW'][] = [
      ['u8-nhwc', nhwc, [3, 2, 2, 3], 'NHWC'],
      ['u8-nchw', nchw, [3, 3, 2, 2], 'NCHW'],
      ['f32-nhwc', Float32Array.from(nhwc, (v) => v / 255), [3, 2, 2, 3], 'NHWC'],
      ['f32-nchw', Float32Array.from(nchw, (v) => v / 255), [3, 3, 2, 2], 'NCHW'],
    ];
    for (const [name, data, shape, layout] of cases) {
      const x = await npy(join(dir, `${name}.npy`), data, shape);
      const spec: NpySpec = { format: 'npy', train: { images: x, labels: y }, test: { images: x, labels: y }, layout };
      const ds = await loadOwnDataset(spec);
      assert.deepEqual(ds.shape, [2, 2, 3], name);
      assert.equal(ds.numClasses, 2);
      assert.deepEqual([...ds.train.labels], [0, 1, 1]);
      const want = data instanceof Uint8Array ? f32([...nhwc]) : [...Float32Array.from(nhwc, (v) => v / 255)];
      assert.deepEqual([...ds.train.images], want, name);
    }
  });

  it('refuses arrays that disagree, with one line naming the file', async () => {
    const dir = join(tmp, 'npy-bad');
    await mkdir(dir, { recursive: true });
    const x = await npy(join(dir, 'x.npy'), nhwc, [3, 2, 2, 3]);
    const y = await npy(join(dir, 'y.npy'), labels, [3]);
    const y2 = await npy(join(dir, 'y2.npy'), BigInt64Array.from([0n, 1n]), [2]);
    const yOut = await npy(join(dir, 'y-out.npy'), BigInt64Array.from([0n, 1n, 2n]), [3]);
    const x3 = await npy(join(dir, 'x3.npy'), nhwc, [3, 12]);
    const x4 = await npy(join(dir, 'x4.npy'), new Uint8Array(48), [3, 2, 2, 4]);
    const yf = await npy(join(dir, 'yf.npy'), new Float32Array(3), [3]);
    const truncated = join(dir, 'trunc.npy');
    await writeFile(truncated, new Uint8Array(dump(nhwc, [3, 2, 2, 3])).subarray(0, 100));
    const spec = (train: [string, string], test?: [string, string], layout: 'NHWC' | 'NCHW' = 'NHWC'): NpySpec => ({
      format: 'npy',
      train: { images: train[0], labels: train[1] },
      ...(test ? { test: { images: test[0], labels: test[1] } } : {}),
      layout,
    });
    const cases: [NpySpec, RegExp][] = [
      [spec([x, y2]), /^Array `.*y2\.npy` has 2 labels but `.*x\.npy` has 3 images; expected equal counts$/],
      [spec([x, y], [x, yOut]), /^Array `.*y-out\.npy` has label 2 at index 2; expected class indices in \[0, 2\) \(the classes of the training labels\)$/],
      [spec([x3, y]), /^Array `.*x3\.npy` has shape \[3, 12\]; expected 4 dimensions, \[count, height, width, channels\]$/],
      [spec([x4, y]), /^Array `.*x4\.npy` has 4 channels on the NHWC channel axis .*; expected 1 or 3/],
      [spec([x, yf]), /^Array `.*yf\.npy` has dtype `f4`; expected integer class indices/],
      [spec([truncated, y]), /^Array `.*trunc\.npy` has \d+ elements for shape \[3, 2, 2, 3\] \(36\); the file is truncated or corrupt$/],
      [spec([x, y], undefined, 'NCHW'), /^Array `.*x\.npy` has 2 channels on the NCHW channel axis/],
    ];
    for (const [s, pattern] of cases) await assert.rejects(loadOwnDataset(s), dataError(ErrorCodes.DATASET_INVALID, pattern));
  });
});

describe('the data check comes before the store', () => {
  it('search exits 3 with one line naming the bad file and leaves no store or cache behind', async () => {
    const dir = join(tmp, 'cli');
    await mkdir(dir, { recursive: true });
    const root = join(dir, 'images');
    await writeMixedFolder(root);
    await writeFile(join(root, 'B_dog', 'corrupt.jpg'), 'not a jpeg');
    await tf.setBackend('cpu');
    const model = buildZooModel('plain-cnn', { inputShape: [28, 28, 1], numClasses: 2, width: 0.25 });
    await saveModel(model, join(dir, 'model'));
    model.dispose();
    const store = join(dir, 'study.db');
    const cache = join(dir, 'cache');
    const write = async (name: string, data: Record<string, unknown>): Promise<string> => {
      const file = join(dir, `${name}.json`);
      const cfg = {
        name,
        data: { validationSize: 2, ...(data.format === 'imagefolder' ? { cache } : {}), ...data },
        model: { checkpoint: join(dir, 'model', 'model.json') },
        run: { store, backend: 'cpu' },
      };
      await writeFile(file, JSON.stringify(cfg));
      return file;
    };
    const good = join(dir, 'good');
    await writeMixedFolder(good);
    const cases: [string, Record<string, unknown>, RegExp][] = [
      ['corrupt', { format: 'imagefolder', train: root }, /^autoprune: Image `.*B_dog\/corrupt\.jpg` cannot be decoded/],
      ['empty', { format: 'imagefolder', train: join(tmp, 'bad-empty') }, /^autoprune: Class folder `.*c_empty` has no images/],
      [
        'labels',
        { format: 'npy', train: { images: join(tmp, 'npy-bad', 'x.npy'), labels: join(tmp, 'npy-bad', 'y2.npy') } },
        /^autoprune: Array `.*y2\.npy` has 2 labels/,
      ],
      // Decodes fine, but a 4x4 RGB image is not what a 28x28x1 model takes.
      [
        'shape',
        { format: 'imagefolder', train: good, test: good },
        /^autoprune: Images of `.*good` are 4x4x3 \(h x w x c\) in 2 classes, but `model\.checkpoint` takes 28x28x1/,
      ],
    ];
    for (const [name, data, pattern] of cases) {
      const r = await cli('search', await write(name, data));
      assert.equal(r.code, 3, `${name}: ${r.stderr}`);
      assert.match(oneLine(r), pattern);
      assert.ok(!existsSync(store), `${name}: no store file`);
      assert.ok(!existsSync(`${store}-journal`) && !existsSync(`${store}-wal`), `${name}: no store journal`);
    }
  });
});

describe('skipped files are part of the study record', () => {
  it('search with onCorrupt: skip records the count; report and show print it; the data hash is the decoded splits only', async () => {
    const dir = join(tmp, 'skip-cli');
    await mkdir(dir, { recursive: true });
    const root = join(dir, 'images');
    await writeMixedFolder(root);
    await writeFile(join(root, 'B_dog', 'corrupt.jpg'), 'not a jpeg');
    await writeFile(join(root, 'a_cat', 'broken.png'), 'not a png');
    await tf.setBackend('cpu');
    const model = buildZooModel('plain-cnn', { inputShape: [28, 28, 1], numClasses: 2, width: 0.25, seed: 1 });
    await saveModel(model, join(dir, 'model'));
    model.dispose();
    const store = join(dir, 'study.db');
    const cfgFile = join(dir, 'skip.json');
    const config = {
      name: 'skip',
      // The test folder is the training folder: its two bad files are skipped once in each.
      data: {
        format: 'imagefolder',
        train: root,
        test: root,
        channels: 1,
        imageSize: [28, 28],
        onCorrupt: 'skip',
        validationSize: 2,
        cache: join(dir, 'cache'),
      },
      model: { checkpoint: join(dir, 'model', 'model.json') },
      search: { targets: [0.5], budget: { trials: 2 } },
      evaluation: { calibration: { batches: 1, batchSize: 2 }, finalists: { count: 0 }, latency: { batchSize: 1, runs: 1 } },
      run: { store, workers: 'inline', engine: 'tfjs', backend: 'cpu' },
    };
    await writeFile(cfgFile, JSON.stringify(config));
    const r = await cli('search', cfgFile);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr + r.stdout, /data: skipped 4 unreadable image\(s\) \(onCorrupt: skip\)/);

    const line = 'data: 4 unreadable file(s) skipped (onCorrupt: skip)';
    const show = await cli('show', 'skip', '--store', store);
    assert.equal(show.code, 0, show.stderr);
    assert.ok(show.stdout.split('\n').includes(line), `show prints the count:\n${show.stdout}`);
    const json = await cli('show', 'skip', '--store', store, '--json');
    assert.equal(json.code, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout).data, { skippedFiles: 4, onCorrupt: 'skip' });
    const out = join(dir, 'report');
    const rep = await cli('report', 'skip', '--store', store, '--out', out);
    assert.equal(rep.code, 0, rep.stderr);
    assert.ok((await readFile(join(out, 'report.md'), 'utf8')).includes(`- ${line}`), 'the Markdown header says it');
    assert.ok((await readFile(join(out, 'index.html'), 'utf8')).includes('<dt>data</dt><dd>4 unreadable file(s) skipped (onCorrupt: skip)</dd>'));

    // The record of the data is still the hash of the decoded splits: the count is beside it, not in it.
    const s = await openStore(store);
    try {
      const study = await s.getStudy('skip');
      const splits = await loadSplits(resolveConfig(config));
      assert.equal(splits.skippedFiles, 4);
      assert.equal(study?.inputs?.data, splitsHash(splits));
    } finally {
      await s.close();
    }

    // A study whose data had nothing to skip says nothing about it.
    const clean = join(dir, 'clean');
    await writeMixedFolder(clean);
    await writeFile(cfgFile, JSON.stringify({ ...config, name: 'clean', data: { ...config.data, train: clean, test: clean } }));
    assert.equal((await cli('search', cfgFile)).code, 0);
    const quiet = await cli('show', 'clean', '--store', store, '--json');
    assert.equal(JSON.parse(quiet.stdout).data, null);
  });
});

describe('resolved config and model card', () => {
  it('resolves paths against cwd, fills defaults and re-validates its own output', () => {
    const r = resolveConfig(
      { name: 'f', data: { format: 'imagefolder', train: 'data/train', imageSize: [32, 32] }, model: { checkpoint: '/m.json' } },
      { cwd: '/work/p' },
    );
    assert.deepEqual(r.data, {
      format: 'imagefolder',
      train: '/work/p/data/train',
      testSize: 0.1,
      imageSize: [32, 32],
      channels: 3,
      onCorrupt: 'fail',
      cache: '/work/p/experiments/.cache/data',
      validationSize: 5000,
    });
    assert.deepEqual(resolveConfig(JSON.parse(JSON.stringify(r))).data, r.data, 'a stored config resolves to itself');
    const named = resolveConfig({ name: 'n', model: { checkpoint: '/m.json' } });
    assert.deepEqual(named.data, { dataset: 'fashion-mnist', validationSize: 5000 }, 'named datasets resolve as before');
  });

  it('refuses keys of the other kind of data with one line', () => {
    const bad = (data: unknown, pattern: RegExp) =>
      assert.throws(
        () => resolveConfig({ name: 'x', data, model: { checkpoint: '/m.json' } }, { source: 'x.yaml' }),
        (e: unknown) => {
          assert.ok(e instanceof AutopruneError && e.code === ErrorCodes.CONFIG_INVALID);
          assert.match(e.message, pattern);
          return true;
        },
      );
    bad({ format: 'imagefolder' }, /^x\.yaml: missing `data\.train` \(expected a folder with one sub-folder per class\)$/);
    bad({ format: 'imagefolder', train: 'a', dataset: 'mnist' }, /`data\.dataset` expected no `dataset` with `format`/);
    bad({ format: 'npy', train: 'a' }, /`data\.train` expected \{ images: <file\.npy>, labels: <file\.npy> \}/);
    bad({ format: 'npy', train: { images: 'a', labels: 'b' }, channels: 3 }, /`data\.channels` expected only with `format: imagefolder`/);
    bad({ imageSize: [3, 3] }, /`data\.imageSize` expected only with `format: imagefolder`/);
    bad({ format: 'imagefolder', train: 'a', normalize: { mean: [0.5], std: [0.5] } }, /`data\.normalize\.mean` expected one number per channel \(3/);
    bad({ format: 'imagefolder', train: 'a', channels: 2 }, /`data\.channels` expected 1 \(grayscale\) or 3 \(RGB\), got 2/);
  });

  it('describes the preprocessing a model card records', () => {
    const p = preprocessingOf(
      { format: 'imagefolder', imageSize: [32, 32], channels: 3, normalize: { mean: [0.5, 0.4, 0.3], std: [0.2, 0.2, 0.2] } },
      [32, 32, 3],
    );
    assert.deepEqual([p.source, p.imageSize, p.channels, p.layout], ['imagefolder', [32, 32], 3, 'NHWC']);
    assert.equal(p.formula, 'x = (v / 255 - mean[c]) / std[c], v the 8-bit pixel value (0..255)');
    assert.deepEqual(p.normalize, { mean: [0.5, 0.4, 0.3], std: [0.2, 0.2, 0.2] });
    assert.match(p.resize ?? '', /Resize \+ CenterCrop/);
    const named = preprocessingOf({ dataset: 'fashion-mnist' }, [28, 28, 1]);
    assert.deepEqual(
      [named.source, named.formula, named.resize, named.normalize],
      ['fashion-mnist', 'x = v / 255, v the 8-bit pixel value (0..255)', null, null],
    );
  });
});

describe('Fashion-MNIST as PNG folders (oracle: the idx loader)', () => {
  const present = existsSync(DEBIAN_FASHION_MNIST_DIR);
  it('gives the idx arrays pixel for pixel, the same splits, the same accuracy and the same proxy accuracy for a pruned candidate', {
    skip: !present && !process.env.CI ? `Fashion-MNIST not installed at ${DEBIAN_FASHION_MNIST_DIR}` : false,
  }, async () => {
    const idx = await loadDataset({ name: 'fashion-mnist', dir: DEBIAN_FASHION_MNIST_DIR, limit: { train: 2000, test: 500 } });
    const root = join(tmp, 'fmnist');
    await writeImageFolder(idx.train, join(root, 'train'));
    await writeImageFolder(idx.test, join(root, 'test'));
    // An image folder lists class by class, each in file-name (= example) order: the idx examples stably sorted by label.
    const byLabel = (labels: Uint8Array): number[] => Array.from(labels.keys()).sort((a, b) => labels[a] - labels[b] || a - b);
    const want = { train: gather(idx.train, byLabel(idx.train.labels)), test: gather(idx.test, byLabel(idx.test.labels)) };

    const run = { seed: 7 };
    const cfg = resolveConfig({
      name: 'fm',
      data: { format: 'imagefolder', train: join(root, 'train'), test: join(root, 'test'), channels: 1, validationSize: 300, cache: join(tmp, 'fm-cache') },
      model: { checkpoint: '/unused/model.json' },
      run,
    });
    const splits = await loadSplits(cfg);
    assert.deepEqual(splits.shape, [28, 28, 1]);
    assert.equal(splits.numClasses, 10);
    const ref = splitTrainValidation(want.train, 300, run.seed);
    for (const [name, got, exp] of [
      ['train', splits.train, ref.train],
      ['validation', splits.validation, ref.validation],
      ['test', splits.test, want.test],
    ] as const) {
      assert.equal(got.count, exp.count, name);
      assert.deepEqual(got.labels, exp.labels, `${name} labels`);
      assert.ok(
        Buffer.from(got.images.buffer, got.images.byteOffset, got.images.byteLength).equals(
          Buffer.from(exp.images.buffer, exp.images.byteOffset, exp.images.byteLength),
        ),
        `${name} pixels`,
      );
    }
    await tf.setBackend('cpu');
    const model = buildZooModel('plain-cnn', { inputShape: [28, 28, 1], numClasses: 10, width: 0.25, seed: 3 });
    let graph: ModelGraph;
    try {
      assert.equal(accuracy(model, splits.validation), accuracy(model, ref.validation));
      graph = graphFromLayersModel(model);
    } finally {
      model.dispose();
    }

    // The proxy a search scores trials with (adaptive BN on onnxruntime, then validation accuracy):
    // one pruned candidate, the same calibration seed, both datasets -> the same accuracy, exactly.
    const analysis = analyzeGraph(graph);
    const space = { groups: analysis.groups.map((g) => ({ ...g, layers: [] })), options: { minKeepRatio: 0.1, channelStep: 1, skip: [] } };
    const c = candidateFromRatios(
      space,
      analysis.groups.map((_, i) => (i % 2 === 0 ? 0.5 : 0.75)),
    );
    assert.ok(
      c.channels.some((n, i) => n < analysis.groups[i].channels),
      'the candidate prunes something',
    );
    const onnx = graphToOnnx(pruneGraph(analysis, c, 'l1').graph);
    const proxy = { calibration: { batches: 4, batchSize: 64, seed: run.seed }, latency: { batchSize: 1, runs: 0 }, threads: 1 };
    const fromFolders = await onnxProxy(onnx, { train: splits.train, validation: splits.validation }, proxy);
    const fromIdx = await onnxProxy(onnx, { train: ref.train, validation: ref.validation }, proxy);
    assert.ok(fromFolders.statistics.size > 0, 'BN statistics were re-calibrated');
    assert.equal(fromFolders.accuracy, fromIdx.accuracy);
    assert.deepEqual(fromFolders.statistics, fromIdx.statistics);
  });
});
