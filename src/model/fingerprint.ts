/**
 * The identity of a model as a sha256 (hex): its topology and, layer by layer, the shape, dtype and
 * bytes of every weight. Two copies of one model folder hash the same on any host; a retrained or
 * differently pruned model does not. Variable names are left out (tfjs makes them unique per
 * process, so one model loaded twice would hash differently).
 */
import { createHash } from 'node:crypto';
import type * as tf from '@tensorflow/tfjs';
import { modelTopology } from './topology.js';

/** JSON with object keys sorted, so that key order never changes a hash. */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );
}

export function modelHash(model: tf.LayersModel): string {
  const h = createHash('sha256');
  h.update(canonicalJson(modelTopology(model).config));
  for (const layer of model.layers) {
    h.update(`\u0000layer ${layer.name}`);
    for (const w of layer.weights) {
      const v = w.read();
      h.update(`\u0000${v.dtype} ${v.shape.join('x')}\u0000`);
      const data = v.dataSync();
      h.update(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    }
  }
  return h.digest('hex');
}
