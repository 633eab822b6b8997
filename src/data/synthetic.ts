import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { imageSize } from './pixels.js';
import type { Dataset, ImageShape, Split, SyntheticSpec } from './types.js';

export type ResolvedSyntheticSpec = Required<SyntheticSpec>;

export function resolveSynthetic(spec: SyntheticSpec = {}): ResolvedSyntheticSpec {
  const r: ResolvedSyntheticSpec = {
    shape: spec.shape ?? [28, 28, 1],
    numClasses: spec.numClasses ?? 10,
    trainCount: spec.trainCount ?? 1000,
    testCount: spec.testCount ?? 200,
    seed: spec.seed ?? 0,
    noise: spec.noise ?? 0.25,
  };
  const positiveInt = (v: number): boolean => Number.isInteger(v) && v > 0;
  if (r.shape.length !== 3 || !r.shape.every(positiveInt)) {
    throw bad('shape', r.shape, 'three positive integers [h, w, c]');
  }
  if (!Number.isInteger(r.numClasses) || r.numClasses < 2 || r.numClasses > 256) {
    throw bad('numClasses', r.numClasses, 'an integer in [2, 256]');
  }
  if (!Number.isInteger(r.trainCount) || r.trainCount < 0) throw bad('trainCount', r.trainCount, 'an integer >= 0');
  if (!Number.isInteger(r.testCount) || r.testCount < 0) throw bad('testCount', r.testCount, 'an integer >= 0');
  if (!Number.isFinite(r.seed)) throw bad('seed', r.seed, 'a finite number');
  if (!(r.noise >= 0 && r.noise <= 1)) throw bad('noise', r.noise, 'a number in [0, 1]');
  return r;
}

function bad(field: string, value: unknown, expected: string): AutopruneError {
  return new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected synthetic \`${field}\` to be ${expected}, got ${quote(value)}`);
}

/** Side of the coarse grid a class prototype is drawn on before it is upsampled to the image. */
const GRID = 4;

/**
 * A learnable dataset made from a seed. Each class has a prototype: a coarse GRID x GRID x c
 * pattern (blocky, so convolutions and pooling see it) upsampled to h x w. An image is its class
 * prototype with a random brightness shift plus Gaussian pixel noise, clamped to [0, 1].
 * Train and test draw from independent streams, so changing `testCount` leaves `train` unchanged.
 */
export function makeSynthetic(spec: SyntheticSpec = {}): Dataset {
  const r = resolveSynthetic(spec);
  const root = new Rng(r.seed);
  const prototypes = makePrototypes(r.shape, r.numClasses, root.fork('prototypes'));
  return {
    name: 'synthetic',
    shape: r.shape,
    numClasses: r.numClasses,
    train: sampleSplit(prototypes, r, r.trainCount, root.fork('train')),
    test: sampleSplit(prototypes, r, r.testCount, root.fork('test')),
  };
}

function makePrototypes(shape: ImageShape, numClasses: number, rng: Rng): Float32Array[] {
  const [h, w, c] = shape;
  const out: Float32Array[] = [];
  for (let k = 0; k < numClasses; k++) {
    const grid = new Float32Array(GRID * GRID * c);
    for (let i = 0; i < grid.length; i++) grid[i] = 0.15 + 0.7 * rng.next();
    const proto = new Float32Array(h * w * c);
    for (let y = 0; y < h; y++) {
      const gy = Math.min(GRID - 1, Math.floor((y * GRID) / h));
      for (let x = 0; x < w; x++) {
        const gx = Math.min(GRID - 1, Math.floor((x * GRID) / w));
        for (let ch = 0; ch < c; ch++) proto[(y * w + x) * c + ch] = grid[(gy * GRID + gx) * c + ch];
      }
    }
    out.push(proto);
  }
  return out;
}

function sampleSplit(prototypes: Float32Array[], r: ResolvedSyntheticSpec, count: number, rng: Rng): Split {
  const size = imageSize(r.shape);
  // Balanced classes (i mod numClasses) in a seeded order.
  const order = rng.shuffle(Array.from({ length: count }, (_, i) => i % r.numClasses));
  const labels = Uint8Array.from(order);
  const images = new Float32Array(count * size);
  for (let n = 0; n < count; n++) {
    const proto = prototypes[labels[n]];
    const shift = 0.1 * (rng.next() - 0.5);
    const base = n * size;
    for (let i = 0; i < size; i++) {
      const v = proto[i] + shift + r.noise * rng.normal();
      images[base + i] = v < 0 ? 0 : Math.min(v, 1);
    }
  }
  return { images, labels, count, shape: r.shape };
}
