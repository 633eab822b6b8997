/**
 * Writes Fashion-MNIST (the idx files) as image folders, one sub-folder per class, for trying
 * `data.format: imagefolder` (configs/imagefolder.yaml) and for measuring decode speed:
 *
 *   <out>/train/<class>/<index>.png, <out>/test/<class>/<index>.png       28x28 grayscale (the idx pixels)
 *   with --rgb: 28x28 RGB, each class tinted differently, so the colour carries information too
 *
 * Class folders are `0_t-shirt-top`, `1_trouser`, ...: their byte order is the label order, so class
 * ids equal the idx labels and the pixels load back identical (test/data-folders.test.ts checks it).
 *
 *   node --import tsx scripts/make-imagefolder.ts [--out data/fashion-mnist-png] [--rgb] [--train N] [--test N] [--format png|webp|jpeg]
 *
 * `--measure [--cache DIR]` writes nothing: it loads an existing <out> as `search` would (channels 1,
 * or 3 with --rgb) and prints whether the pixels were decoded or read from the pixel cache, and how
 * fast. Run it twice: the first run decodes and fills the cache, the second is a cached start.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { loadDataset } from '../src/data/index.js';
import { loadOwnDataset } from '../src/data/own.js';
import { progressBar } from '../src/data/progress.js';
import { writeImageFolder } from '../src/data/write-folder.js';

const FASHION_CLASSES = ['t-shirt-top', 'trouser', 'pullover', 'dress', 'coat', 'sandal', 'shirt', 'sneaker', 'bag', 'ankle-boot'];

const { values: o } = parseArgs({
  options: {
    out: { type: 'string' },
    rgb: { type: 'boolean', default: false },
    train: { type: 'string' },
    test: { type: 'string' },
    format: { type: 'string', default: 'png' },
    dir: { type: 'string' },
    measure: { type: 'boolean', default: false },
    cache: { type: 'string', default: 'experiments/.cache/data' },
  },
});
const format = o.format as 'png' | 'webp' | 'jpeg';
if (!['png', 'webp', 'jpeg'].includes(format)) throw new Error(`--format expected png, webp or jpeg, got ${o.format}`);
const out = o.out ?? (o.rgb ? 'data/fashion-mnist-rgb' : 'data/fashion-mnist-png');
if (o.measure) {
  const ds = await loadOwnDataset({
    format: 'imagefolder',
    train: resolve(out, 'train'),
    test: resolve(out, 'test'),
    channels: o.rgb ? 3 : 1,
    onCorrupt: 'fail',
    cache: resolve(o.cache),
    progress: true,
  });
  const { kind, images, seconds } = ds.source;
  console.log(
    `${kind === 'cache' ? 'read from the pixel cache' : 'decoded'}: ${images} images (${ds.shape.join('x')}) in ${seconds.toFixed(2)} s = ${Math.round(images / seconds)} images/s, ${availableParallelism()} cores, ${ds.source.cacheFile}`,
  );
  process.exit(0);
}
if (existsSync(out)) {
  process.stderr.write(`${out} exists; remove it first to write it again\n`);
  process.exit(1);
}
const ds = await loadDataset({
  name: 'fashion-mnist',
  dir: o.dir,
  limit: { train: o.train ? Number(o.train) : undefined, test: o.test ? Number(o.test) : undefined },
});
const classes = FASHION_CLASSES.map((c, i) => `${i}_${c}`);
const started = performance.now();
for (const [name, split] of [
  ['train', ds.train],
  ['test', ds.test],
] as const) {
  const bar = progressBar(`writing ${name}`, split.count);
  await writeImageFolder(split, join(out, name), { classes, rgb: o.rgb, tint: o.rgb, format, onProgress: (d) => bar.update(d) });
  bar.done();
}
const n = ds.train.count + ds.test.count;
const s = (performance.now() - started) / 1000;
console.log(
  `wrote ${n} ${o.rgb ? 'RGB' : 'grayscale'} ${format.toUpperCase()} images (${ds.train.count} train, ${ds.test.count} test) to ${out}/{train,test} in ${s.toFixed(1)} s`,
);
