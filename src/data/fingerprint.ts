/**
 * The identity of the data a study searched on, as a sha256 (hex): each split's shape, count,
 * image bytes (float32) and labels, in a fixed order. The splits are what a host derived from its
 * dataset files, the validation size and the run seed, so two hosts agree only when all of those do.
 */
import { createHash } from 'node:crypto';
import type { Split } from './types.js';

export function splitsHash(splits: Readonly<Record<'train' | 'validation' | 'test', Split>>): string {
  const h = createHash('sha256');
  for (const name of ['train', 'validation', 'test'] as const) {
    const s = splits[name];
    h.update(`\u0000${name} ${s.count} ${s.shape.join('x')}\u0000`);
    h.update(new Uint8Array(s.images.buffer, s.images.byteOffset, s.images.byteLength));
    h.update(s.labels);
  }
  return h.digest('hex');
}
