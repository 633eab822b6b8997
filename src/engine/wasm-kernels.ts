/**
 * Training kernels the tfjs wasm backend (4.22.0) lacks or runs slowly.
 *
 * Registered for backend `wasm` only. They read and write the wasm heap directly
 * (`makeOutput` + `typedArrayFromHeap`) and call the backend's own XNNPACK kernels
 * (`BatchMatMul`, `Conv2D`) for the heavy part, so they depend on wasm-backend internals:
 * that is why the tfjs versions are pinned exactly in package.json.
 *
 * Layout contract: NHWC tensors, filters [KH, KW, Cin, Cout] (depthwise: [KH, KW, Cin, mult]),
 * dilation 1 only, padding 'same' | 'valid' | number | explicit [[0,0],[t,b],[l,r],[0,0]].
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { AutopruneError, ErrorCodes } from '../core/errors.js';

type TensorInfo = tf.TensorInfo;
type Conv2DInfo = tf.backend_util.Conv2DInfo;
type PadAttr = 'same' | 'valid' | number | tf.backend_util.ExplicitPadding;
type RoundingMode = 'floor' | 'round' | 'ceil' | undefined;

/** Tunables (mutable for tests and benchmarks). */
export const wasmKernelTuning = {
  /** Largest im2col buffer one Conv2DBackpropFilter chunk allocates on the wasm heap, in floats (64 MiB). */
  im2colChunkFloats: 1 << 24,
};

interface KernelArgs {
  inputs: Record<string, TensorInfo>;
  backend: BackendWasm;
  attrs: Record<string, unknown>;
}

/** A Float32 view of a tensor on the wasm heap. Re-take views after any allocation: the heap may grow. */
function f32(backend: BackendWasm, t: TensorInfo): Float32Array {
  return backend.typedArrayFromHeap(t) as Float32Array;
}

function requireFloat32(kernel: string, ...ts: TensorInfo[]): void {
  for (const t of ts) {
    if (t.dtype !== 'float32') {
      throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected float32 inputs for wasm kernel \`${kernel}\`, got ${t.dtype}`);
    }
  }
}

function requireNHWC(kernel: string, dataFormat: unknown): void {
  if (dataFormat != null && dataFormat !== 'NHWC' && dataFormat !== 'channelsLast') {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected dataFormat \`NHWC\` for wasm kernel \`${kernel}\`, got \`${String(dataFormat)}\``);
  }
}

function requireUnitDilation(kernel: string, dilations: unknown): void {
  if (dilations == null) return;
  const d = typeof dilations === 'number' ? [dilations, dilations] : (dilations as number[]);
  if (d.some((v) => v !== 1)) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected dilations 1 for wasm training kernel \`${kernel}\`, got ${JSON.stringify(dilations)}`);
  }
}

function runWasmKernel(name: string, args: KernelArgs): TensorInfo {
  const kernel = tf.getKernel(name, 'wasm');
  if (kernel == null) throw new Error(`wasm kernel ${name} is not registered`);
  return kernel.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]) as TensorInfo;
}

function convInfoOf(xShape: number[], filterShape: number[], attrs: Record<string, unknown>, depthwise: boolean): Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as number | [number, number],
    1,
    attrs.pad as PadAttr,
    attrs.dimRoundingMode as RoundingMode,
    depthwise,
    'channelsLast',
  );
}

// ---------------------------------------------------------------------------------------------
// Conv2DBackpropFilter: transposed im2col [KH*KW*Cin, N*Ho*Wo] x dy [N*Ho*Wo, Cout] on XNNPACK.
// (BatchMatMul without transpose flags: its transposeA path is ~11x slower.)

/** The whole wasm heap as floats, plus a tensor's float offset in it. Re-take after any allocation. */
function heapF32(backend: BackendWasm): Float32Array {
  return new Float32Array((backend.wasm as unknown as { HEAPU8: Uint8Array }).HEAPU8.buffer);
}
function offsetOf(backend: BackendWasm, t: TensorInfo): number {
  return backend.dataIdMap.get(t.dataId)!.memoryOffset / 4;
}

/**
 * Channel-major copy of images [n0, n0+nImg): xT[c][p] = x[(n0*H*W + p)*C + c], p over nImg*H*W.
 * Makes every im2col row a strided copy of one contiguous plane.
 */
function transposeToChannelMajor(heap: Float32Array, xOff: number, xtOff: number, pixels: number, C: number): void {
  const B = 32;
  for (let p0 = 0; p0 < pixels; p0 += B) {
    const p1 = Math.min(pixels, p0 + B);
    for (let c = 0; c < C; c++) {
      let o = xtOff + c * pixels + p0;
      let i = xOff + p0 * C + c;
      for (let p = p0; p < p1; p++) {
        heap[o++] = heap[i];
        i += C;
      }
    }
  }
}

/**
 * Transposed im2col, row (kh, kw, c), column (n, oh, ow): cols[r][m] = x[n, oh*sh-pt+kh, ow*sw-pl+kw, c]
 * or 0 outside the image. Reads the channel-major copy `xT` ([C, nImg*H*W]).
 */
function fillIm2colT(heap: Float32Array, xtOff: number, colsOff: number, info: Conv2DInfo, nImg: number): void {
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const P = nImg * H * W;
  const M = nImg * Ho * Wo;
  // Stride 1 with output size == input size: each row is the plane shifted by one constant, so one
  // block copy per row, then zero the positions whose source fell outside the image.
  const shiftable = sh === 1 && sw === 1 && Ho === H && Wo === W;
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const owLo = Math.min(Wo, Math.max(0, Math.ceil((pl - kw) / sw)));
      const owHi = Math.max(owLo, Math.min(Wo, Math.floor((W - 1 + pl - kw) / sw) + 1));
      const dh = kh - pt;
      const dw = kw - pl;
      for (let c = 0; c < C; c++) {
        const r0 = colsOff + ((kh * KW + kw) * C + c) * M;
        const plane = xtOff + c * P;
        if (shiftable) {
          const shift = dh * W + dw;
          const lo = Math.max(0, -shift);
          const hi = Math.min(M, P - shift);
          if (hi > lo) heap.copyWithin(r0 + lo, plane + lo + shift, plane + hi + shift);
          if (lo > 0) heap.fill(0, r0, r0 + Math.min(lo, M));
          if (hi < M) heap.fill(0, r0 + Math.max(hi, 0), r0 + M);
          for (let n = 0; n < nImg; n++) {
            const img = r0 + n * Ho * Wo;
            if (dh < 0) heap.fill(0, img, img + Math.min(Ho, -dh) * Wo);
            else if (dh > 0) heap.fill(0, img + Math.max(0, Ho - dh) * Wo, img + Ho * Wo);
            if (owLo > 0 || owHi < Wo) {
              for (let oh = 0; oh < Ho; oh++) {
                const row = img + oh * Wo;
                for (let ow = 0; ow < owLo; ow++) heap[row + ow] = 0;
                for (let ow = owHi; ow < Wo; ow++) heap[row + ow] = 0;
              }
            }
          }
          continue;
        }
        for (let n = 0; n < nImg; n++) {
          for (let oh = 0; oh < Ho; oh++) {
            const ih = oh * sh + dh;
            const r = r0 + (n * Ho + oh) * Wo;
            if (ih < 0 || ih >= H) {
              heap.fill(0, r, r + Wo);
              continue;
            }
            for (let ow = 0; ow < owLo; ow++) heap[r + ow] = 0;
            let xi = plane + (n * H + ih) * W + owLo * sw + dw;
            for (let ow = owLo; ow < owHi; ow++) {
              heap[r + ow] = heap[xi];
              xi += sw;
            }
            for (let ow = owHi; ow < Wo; ow++) heap[r + ow] = 0;
          }
        }
      }
    }
  }
}

function conv2DBackpropFilter(args: KernelArgs): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x, dy } = inputs;
  requireFloat32('Conv2DBackpropFilter', x, dy);
  requireNHWC('Conv2DBackpropFilter', attrs.dataFormat);
  const filterShape = attrs.filterShape as number[];
  const info = convInfoOf(x.shape, filterShape, attrs, false);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo, outChannels: Cout } = info;
  const K = info.filterHeight * info.filterWidth * C;
  const perImage = Ho * Wo;
  const imgsPerChunk = Math.max(1, Math.min(N, Math.floor(wasmKernelTuning.im2colChunkFloats / Math.max(1, K * perImage))));

  let acc: TensorInfo | null = null;
  for (let n0 = 0; n0 < N; n0 += imgsPerChunk) {
    const nImg = Math.min(imgsPerChunk, N - n0);
    const M = nImg * perImage;
    const pixels = nImg * H * W;
    const xT = backend.makeOutput([C, pixels], 'float32');
    const cols = backend.makeOutput([1, K, M], 'float32');
    let dyChunk: TensorInfo;
    let ownsDyChunk = false;
    if (nImg === N) {
      dyChunk = { dataId: dy.dataId, shape: [1, M, Cout], dtype: 'float32' };
    } else {
      dyChunk = backend.makeOutput([1, M, Cout], 'float32');
      ownsDyChunk = true;
    }
    const heap = heapF32(backend);
    if (ownsDyChunk) {
      const start = offsetOf(backend, dy) + n0 * perImage * Cout;
      heap.copyWithin(offsetOf(backend, dyChunk), start, start + M * Cout);
    }
    const xtOff = offsetOf(backend, xT);
    transposeToChannelMajor(heap, offsetOf(backend, x) + n0 * H * W * C, xtOff, pixels, C);
    fillIm2colT(heap, xtOff, offsetOf(backend, cols), info, nImg);
    backend.disposeData(xT.dataId);
    const part = runWasmKernel('BatchMatMul', {
      inputs: { a: cols, b: dyChunk },
      backend,
      attrs: { transposeA: false, transposeB: false },
    });
    backend.disposeData(cols.dataId);
    if (ownsDyChunk) backend.disposeData(dyChunk.dataId);
    if (acc == null) {
      acc = part;
    } else {
      const a = f32(backend, acc);
      const p = f32(backend, part);
      for (let i = 0; i < a.length; i++) a[i] += p[i];
      backend.disposeData(part.dataId);
    }
  }
  const out = acc as TensorInfo;
  out.shape = filterShape.slice();
  return out;
}

// ---------------------------------------------------------------------------------------------
// Conv2DBackpropInput, stride 1: dx = conv2d(dy, rot180(W) with in/out swapped), run on XNNPACK
// (~4x faster than the built-in wasm kernel). Other strides fall back to the built-in kernel.

function conv2DBackpropInputFast(args: KernelArgs, fallback: tf.KernelFunc): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { dy, filter } = inputs;
  requireNHWC('Conv2DBackpropInput', attrs.dataFormat);
  const inputShape = attrs.inputShape as number[];
  const info = convInfoOf(inputShape, filter.shape, attrs, false);
  const { filterHeight: KH, filterWidth: KW, inHeight: H, inWidth: W, outHeight: Ho, outWidth: Wo } = info;
  const top = KH - 1 - info.padInfo.top;
  const left = KW - 1 - info.padInfo.left;
  const bottom = H - Ho + info.padInfo.top;
  const right = W - Wo + info.padInfo.left;
  const usable =
    info.strideHeight === 1 &&
    info.strideWidth === 1 &&
    dy.dtype === 'float32' &&
    filter.dtype === 'float32' &&
    top >= 0 &&
    left >= 0 &&
    bottom >= 0 &&
    right >= 0;
  if (!usable) return fallback(args as unknown as Parameters<tf.KernelFunc>[0]) as TensorInfo;

  const { inChannels: Cin, outChannels: Cout } = info;
  const rotated = backend.makeOutput([KH, KW, Cout, Cin], 'float32');
  const src = f32(backend, filter);
  const dst = f32(backend, rotated);
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const s0 = ((KH - 1 - kh) * KW + (KW - 1 - kw)) * Cin * Cout;
      const d0 = (kh * KW + kw) * Cout * Cin;
      for (let ci = 0; ci < Cin; ci++) {
        for (let co = 0; co < Cout; co++) dst[d0 + co * Cin + ci] = src[s0 + ci * Cout + co];
      }
    }
  }
  const out = runWasmKernel('Conv2D', {
    inputs: { x: dy, filter: rotated },
    backend,
    attrs: {
      strides: [1, 1],
      pad: [
        [0, 0],
        [top, bottom],
        [left, right],
        [0, 0],
      ],
      dataFormat: 'NHWC',
      dilations: [1, 1],
      dimRoundingMode: undefined,
    },
  });
  backend.disposeData(rotated.dataId);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Depthwise backprops: plain loops over heap views (their cost is small next to the dense convs).

function depthwiseBackpropInput(args: KernelArgs): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { dy, filter } = inputs;
  requireFloat32('DepthwiseConv2dNativeBackpropInput', dy, filter);
  requireUnitDilation('DepthwiseConv2dNativeBackpropInput', attrs.dilations);
  const inputShape = attrs.inputShape as number[];
  const info = convInfoOf(inputShape, filter.shape, attrs, true);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const mult = info.outChannels / C;
  const Cout = info.outChannels;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;

  const out = backend.makeOutput(inputShape.slice(), 'float32');
  const dx = f32(backend, out);
  const g = f32(backend, dy);
  const w = f32(backend, filter);
  dx.fill(0);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < Ho; oh++) {
      for (let ow = 0; ow < Wo; ow++) {
        const gBase = ((n * Ho + oh) * Wo + ow) * Cout;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh - pt + kh;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sw - pl + kw;
            if (iw < 0 || iw >= W) continue;
            const xBase = ((n * H + ih) * W + iw) * C;
            const wBase = (kh * KW + kw) * Cout;
            if (mult === 1) {
              for (let c = 0; c < C; c++) dx[xBase + c] += g[gBase + c] * w[wBase + c];
            } else {
              for (let c = 0; c < C; c++) {
                let s = 0;
                for (let q = 0; q < mult; q++) s += g[gBase + c * mult + q] * w[wBase + c * mult + q];
                dx[xBase + c] += s;
              }
            }
          }
        }
      }
    }
  }
  return out;
}

function depthwiseBackpropFilter(args: KernelArgs): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x, dy } = inputs;
  requireFloat32('DepthwiseConv2dNativeBackpropFilter', x, dy);
  requireUnitDilation('DepthwiseConv2dNativeBackpropFilter', attrs.dilations);
  const filterShape = attrs.filterShape as number[];
  const info = convInfoOf(x.shape, filterShape, attrs, true);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const Cout = info.outChannels;
  const mult = Cout / C;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;

  // Float64 accumulators: each weight sums N*Ho*Wo products.
  const acc = new Float64Array(KH * KW * Cout);
  const xs = f32(backend, x);
  const g = f32(backend, dy);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < Ho; oh++) {
      for (let ow = 0; ow < Wo; ow++) {
        const gBase = ((n * Ho + oh) * Wo + ow) * Cout;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh - pt + kh;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sw - pl + kw;
            if (iw < 0 || iw >= W) continue;
            const xBase = ((n * H + ih) * W + iw) * C;
            const wBase = (kh * KW + kw) * Cout;
            if (mult === 1) {
              for (let c = 0; c < C; c++) acc[wBase + c] += xs[xBase + c] * g[gBase + c];
            } else {
              for (let c = 0; c < C; c++) {
                const xv = xs[xBase + c];
                for (let q = 0; q < mult; q++) acc[wBase + c * mult + q] += xv * g[gBase + c * mult + q];
              }
            }
          }
        }
      }
    }
  }
  const out = backend.makeOutput(filterShape.slice(), 'float32');
  f32(backend, out).set(acc);
  return out;
}

// ---------------------------------------------------------------------------------------------
// MaxPoolGrad: route dy to the first maximum of each window (row-major, strict '>', as tfjs cpu
// does). The built-in wasm kernel takes ~150 ms on a [128,28,28,32] input; this one a fraction.

function maxPoolGrad(args: KernelArgs): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { dy, input } = inputs;
  requireFloat32('MaxPoolGrad', dy, input);
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize as number | [number, number],
    attrs.strides as number | [number, number],
    1,
    attrs.pad as PadAttr,
    attrs.dimRoundingMode as RoundingMode,
  );
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: Ho, outWidth: Wo } = info;
  const { effectiveFilterHeight: KH, effectiveFilterWidth: KW, strideHeight: sh, strideWidth: sw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const out = backend.makeOutput(input.shape.slice(), 'float32');
  const dx = f32(backend, out);
  const xs = f32(backend, input);
  const g = f32(backend, dy);
  dx.fill(0);
  const best = new Float32Array(C);
  const where = new Int32Array(C);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < Ho; oh++) {
      const r0 = Math.max(0, oh * sh - pt);
      const r1 = Math.min(H, oh * sh - pt + KH);
      for (let ow = 0; ow < Wo; ow++) {
        const c0 = Math.max(0, ow * sw - pl);
        const c1 = Math.min(W, ow * sw - pl + KW);
        best.fill(Number.NEGATIVE_INFINITY);
        where.fill(-1);
        for (let ih = r0; ih < r1; ih++) {
          for (let iw = c0; iw < c1; iw++) {
            const base = ((n * H + ih) * W + iw) * C;
            for (let c = 0; c < C; c++) {
              const v = xs[base + c];
              if (v > best[c]) {
                best[c] = v;
                where[c] = base + c;
              }
            }
          }
        }
        const gBase = ((n * Ho + oh) * Wo + ow) * C;
        for (let c = 0; c < C; c++) {
          if (where[c] >= 0) dx[where[c]] += g[gBase + c];
        }
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Tile fast path for BatchNorm's gradient: a [1,..,1,C] vector repeated over all leading dims.

function tileFast(args: KernelArgs, fallback: tf.KernelFunc): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x } = inputs;
  const reps = attrs.reps as number[];
  const rank = x.shape.length;
  const isRowRepeat =
    rank > 0 && reps.length === rank && reps[rank - 1] === 1 && x.shape.slice(0, -1).every((d) => d === 1) && x.dtype !== 'string' && x.dtype !== 'complex64';
  if (!isRowRepeat) return fallback(args as unknown as Parameters<tf.KernelFunc>[0]) as TensorInfo;
  const outShape = reps.map((r, i) => r * x.shape[i]);
  const out = backend.makeOutput(outShape, x.dtype);
  const dst = backend.typedArrayFromHeap(out);
  const src = backend.typedArrayFromHeap(x);
  const n = src.length;
  if (dst.length === 0) return out;
  dst.set(src as never, 0);
  let filled = n;
  while (filled < dst.length) {
    const len = Math.min(filled, dst.length - filled);
    dst.copyWithin(filled, 0, len);
    filled += len;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sum over all leading axes (bias and BatchNorm gradients): per-channel accumulation in one pass,
// instead of the built-in transpose-then-reduce.

function sumFast(args: KernelArgs, fallback: tf.KernelFunc): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { x } = inputs;
  const rank = x.shape.length;
  const axes = tf.util.parseAxisParam(attrs.axis as number | number[], x.shape).sort((a, b) => a - b);
  const leading = rank >= 2 && axes.length === rank - 1 && axes.every((a, i) => a === i);
  if (!leading || x.dtype !== 'float32') return fallback(args as unknown as Parameters<tf.KernelFunc>[0]) as TensorInfo;
  const C = x.shape[rank - 1];
  const outShape = attrs.keepDims ? [...new Array<number>(rank - 1).fill(1), C] : [C];
  const acc = new Float64Array(C);
  const xs = f32(backend, x);
  for (let base = 0; base < xs.length; base += C) {
    for (let c = 0; c < C; c++) acc[c] += xs[base + c];
  }
  const out = backend.makeOutput(outShape, 'float32');
  f32(backend, out).set(acc);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Fused ops with a bias: tfjs-backend-wasm 4.22 validates the bias against the shape stored with
// its *data* (`dataIdMap`), not the shape of the tensor handed in. Reshape and Gather on wasm share
// the data of a differently shaped tensor (Gather builds a rank-4 result, then reshapes it), so a
// bias sliced by the pruner, or any reshaped bias, fails with "only supports rank-1 bias but got
// rank 4". Such an input gets its own rank-correct copy (a bias is C floats) before the built-in runs.

const FUSED_SIDE_INPUTS = ['bias', 'preluActivationWeights'] as const;

function withOwnSideInputs(args: KernelArgs, fallback: tf.KernelFunc): TensorInfo {
  const { backend } = args;
  const copies: TensorInfo[] = [];
  const inputs = { ...args.inputs };
  for (const key of FUSED_SIDE_INPUTS) {
    const t = inputs[key];
    if (t == null) continue;
    const stored = backend.dataIdMap.get(t.dataId)?.shape;
    if (stored && stored.length === t.shape.length && stored.every((d, i) => d === t.shape[i])) continue;
    const copy = backend.makeOutput(t.shape, t.dtype);
    (backend.typedArrayFromHeap(copy) as Float32Array).set(backend.typedArrayFromHeap(t) as Float32Array);
    copies.push(copy);
    inputs[key] = copy;
  }
  try {
    return fallback({ ...args, inputs } as unknown as Parameters<tf.KernelFunc>[0]) as TensorInfo;
  } finally {
    for (const c of copies) backend.disposeData(c.dataId);
  }
}

// ---------------------------------------------------------------------------------------------

/** Names of the kernels this module registers or wraps on `wasm`. */
export const WASM_TRAINING_KERNELS = [
  'Conv2DBackpropFilter',
  'Conv2DBackpropInput',
  'DepthwiseConv2dNativeBackpropFilter',
  'DepthwiseConv2dNativeBackpropInput',
  'MaxPoolGrad',
  'Sum',
  'Tile',
  'FusedConv2D',
  'FusedDepthwiseConv2D',
  '_FusedMatMul',
] as const;

let registered = false;

function register(kernelName: string, kernelFunc: (args: KernelArgs) => TensorInfo): void {
  const existing = tf.getKernel(kernelName, 'wasm');
  if (existing != null) tf.unregisterKernel(kernelName, 'wasm');
  tf.registerKernel({
    kernelName,
    backendName: 'wasm',
    setupFunc: existing?.setupFunc,
    disposeFunc: existing?.disposeFunc,
    kernelFunc: kernelFunc as unknown as tf.KernelFunc,
  });
}

function wrap(kernelName: string, make: (fallback: tf.KernelFunc) => (args: KernelArgs) => TensorInfo): void {
  const existing = tf.getKernel(kernelName, 'wasm');
  if (existing == null) {
    throw new Error(`Expected the wasm backend to provide kernel ${kernelName} (tfjs version mismatch?)`);
  }
  register(kernelName, make(existing.kernelFunc));
}

/**
 * Registers the training kernels on backend `wasm`. Idempotent. Call after the wasm backend has
 * been initialised (`await tf.setBackend('wasm')`): the wrapped built-in kernels must have run
 * their setup already.
 */
export function registerWasmTrainingKernels(): void {
  if (registered) return;
  register('Conv2DBackpropFilter', conv2DBackpropFilter);
  register('DepthwiseConv2dNativeBackpropFilter', depthwiseBackpropFilter);
  register('DepthwiseConv2dNativeBackpropInput', depthwiseBackpropInput);
  register('MaxPoolGrad', maxPoolGrad);
  wrap('Conv2DBackpropInput', (fb) => (args) => conv2DBackpropInputFast(args, fb));
  wrap('Tile', (fb) => (args) => tileFast(args, fb));
  wrap('Sum', (fb) => (args) => sumFast(args, fb));
  for (const fused of ['FusedConv2D', 'FusedDepthwiseConv2D', '_FusedMatMul']) wrap(fused, (fb) => (args) => withOwnSideInputs(args, fb));
  registered = true;
}
