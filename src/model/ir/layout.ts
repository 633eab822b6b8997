/**
 * Images in the data pipeline are HWC (`data` shapes in configs are H x W x C, tfjs' layout); a graph
 * whose `inputLayout` is NCHW (an ONNX model from PyTorch) takes CHW images. An engine that feeds a
 * graph's exported ONNX model converts a batch here, at the edge, once per batch.
 */
import type { Layout } from './graph.js';

/** [n, H, W, C] or [n, C, H, W]: the dims of a batch of `n` images of HWC `shape` in `layout`. */
export function batchDims(n: number, [h, w, c]: readonly [number, number, number], layout: Layout): [number, number, number, number] {
  return layout === 'NHWC' ? [n, h, w, c] : [n, c, h, w];
}

/**
 * A batch of HWC images (`images.length` = n·H·W·C) in the model's input layout: the same array for
 * NHWC, a transposed copy for NCHW.
 */
export function toInputLayout(images: Float32Array, [h, w, c]: readonly [number, number, number], layout: Layout): Float32Array {
  if (layout === 'NHWC') return images;
  const plane = h * w;
  const size = plane * c;
  if (images.length % size !== 0) throw new Error(`toInputLayout: ${images.length} values are not whole ${h}x${w}x${c} images`);
  const out = new Float32Array(images.length);
  for (let base = 0; base < images.length; base += size) {
    for (let p = 0; p < plane; p++) for (let ch = 0; ch < c; ch++) out[base + ch * plane + p] = images[base + p * c + ch];
  }
  return out;
}

/** A batch of `count` HWC images as the data and dims of the model's input tensor in `layout`. */
export function modelInput(
  images: Float32Array,
  count: number,
  shape: readonly [number, number, number],
  layout: Layout,
): { data: Float32Array; dims: [number, number, number, number] } {
  return { data: toInputLayout(images, shape, layout), dims: batchDims(count, shape, layout) };
}
