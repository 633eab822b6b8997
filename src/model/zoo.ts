/**
 * The model zoo. Layer names are stable and dotted (`stage2.block0.conv1`) because group ids,
 * reports and pruning plans refer to them. Every conv is followed by BN (momentum 0.9: Keras' 0.99
 * makes short trainings look bad in eval, measured here) and outputs are logits (no softmax).
 */
import * as tf from '@tensorflow/tfjs';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';

export interface ZooOptions {
  /** Input [height, width, channels], e.g. [28, 28, 1] or [32, 32, 3]. */
  readonly inputShape: readonly [number, number, number];
  readonly numClasses: number;
  /** Width multiplier applied to every hidden layer's channels (min 4). Default 1. */
  readonly width?: number;
  /**
   * Seed for the kernel initialisers, so a zoo model is reproducible: the k-th initialiser gets
   * seed * 1000 + k. Default 0.
   */
  readonly seed?: number;
  /** BatchNorm moving-average momentum. Default 0.9. */
  readonly bnMomentum?: number;
}

export const ZOO = {
  'plain-cnn': plainCnn,
  'resnet-20': resnet20,
  'mobilenet-v2-tiny': mobilenetV2Tiny,
} as const;
export type ZooName = keyof typeof ZOO;
export const ZOO_NAMES = Object.keys(ZOO) as ZooName[];

export function isZooName(name: string): name is ZooName {
  return Object.hasOwn(ZOO, name);
}

export function buildZooModel(name: string, options: ZooOptions): tf.LayersModel {
  if (!isZooName(name)) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Unknown zoo model ${quote(name)}; expected one of: ${ZOO_NAMES.join(', ')}`);
  }
  const w = options.width ?? 1;
  if (!(w > 0)) throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected width multiplier > 0, got ${quote(w)}`);
  return ZOO[name](new Builder(options));
}

class Builder {
  private seed: number;
  readonly input: tf.SymbolicTensor;
  constructor(readonly options: ZooOptions) {
    this.seed = (options.seed ?? 0) * 1000;
    this.input = tf.input({ shape: [...options.inputShape], name: 'input' });
  }
  ch(c: number): number {
    return Math.max(4, Math.round(c * (this.options.width ?? 1)));
  }
  /**
   * The next initialiser seed. tfjs draws from Math.random when a seed is falsy, so 0 (the first
   * seed of run.seed 0) becomes -1, which no non-negative run.seed produces; every other seed is
   * kept, so models built with seeds >= 1 stay what they were.
   */
  private nextSeed(): number {
    const s = this.seed++;
    return s === 0 ? -1 : s;
  }
  private init(): ReturnType<typeof tf.initializers.heNormal> {
    return tf.initializers.heNormal({ seed: this.nextSeed() });
  }
  conv(x: tf.SymbolicTensor, name: string, filters: number, kernel: number, stride = 1): tf.SymbolicTensor {
    return tf.layers
      .conv2d({ name, filters, kernelSize: kernel, strides: stride, padding: 'same', useBias: false, kernelInitializer: this.init() })
      .apply(x) as tf.SymbolicTensor;
  }
  depthwise(x: tf.SymbolicTensor, name: string, stride: number): tf.SymbolicTensor {
    return tf.layers
      .depthwiseConv2d({ name, kernelSize: 3, strides: stride, padding: 'same', useBias: false, depthwiseInitializer: this.init() })
      .apply(x) as tf.SymbolicTensor;
  }
  bn(x: tf.SymbolicTensor, name: string): tf.SymbolicTensor {
    return tf.layers.batchNormalization({ name, momentum: this.options.bnMomentum ?? 0.9, epsilon: 1e-3 }).apply(x) as tf.SymbolicTensor;
  }
  relu(x: tf.SymbolicTensor, name: string, max?: number): tf.SymbolicTensor {
    return tf.layers.reLU({ name, maxValue: max }).apply(x) as tf.SymbolicTensor;
  }
  /** conv -> BN -> ReLU */
  cbr(x: tf.SymbolicTensor, prefix: string, filters: number, kernel: number, stride = 1, relu6 = false): tf.SymbolicTensor {
    const y = this.bn(this.conv(x, `${prefix}.conv`, filters, kernel, stride), `${prefix}.bn`);
    return this.relu(y, `${prefix}.relu`, relu6 ? 6 : undefined);
  }
  head(x: tf.SymbolicTensor): tf.LayersModel {
    const pooled = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(x) as tf.SymbolicTensor;
    const logits = tf.layers
      .dense({ name: 'classifier', units: this.options.numClasses, kernelInitializer: tf.initializers.glorotUniform({ seed: this.nextSeed() }) })
      .apply(pooled) as tf.SymbolicTensor;
    return tf.model({ inputs: this.input, outputs: logits });
  }
}

/** VGG-style: c32-c32-pool-c64-c64-pool-c128-GAP-dense (22 MMACs on 28x28x1 at width 1). */
function plainCnn(b: Builder): tf.LayersModel {
  let x = b.cbr(b.input, 'block1.0', b.ch(32), 3);
  x = b.cbr(x, 'block1.1', b.ch(32), 3);
  x = tf.layers.maxPooling2d({ name: 'pool1', poolSize: 2 }).apply(x) as tf.SymbolicTensor;
  x = b.cbr(x, 'block2.0', b.ch(64), 3);
  x = b.cbr(x, 'block2.1', b.ch(64), 3);
  x = tf.layers.maxPooling2d({ name: 'pool2', poolSize: 2 }).apply(x) as tf.SymbolicTensor;
  x = b.cbr(x, 'block3.0', b.ch(128), 3);
  return b.head(x);
}

/**
 * CIFAR-style ResNet-20 (He et al. 2016): 3x3 stem, 3 stages of 3 basic blocks (16/32/64 channels),
 * stride 2 at stages 2 and 3 with 1x1 projection shortcuts (option B), GAP, dense.
 */
function resnet20(b: Builder): tf.LayersModel {
  let x = b.cbr(b.input, 'stem', b.ch(16), 3);
  let channels = b.ch(16);
  [16, 32, 64].forEach((base, s) => {
    const filters = b.ch(base);
    for (let i = 0; i < 3; i++) {
      const p = `stage${s + 1}.block${i}`;
      const stride = s > 0 && i === 0 ? 2 : 1;
      let y = b.cbr(x, `${p}.1`, filters, 3, stride);
      y = b.bn(b.conv(y, `${p}.2.conv`, filters, 3), `${p}.2.bn`);
      let shortcut = x;
      if (stride !== 1 || channels !== filters) {
        shortcut = b.bn(b.conv(x, `${p}.shortcut.conv`, filters, 1, stride), `${p}.shortcut.bn`);
      }
      const sum = tf.layers.add({ name: `${p}.add` }).apply([y, shortcut]) as tf.SymbolicTensor;
      x = b.relu(sum, `${p}.relu`);
      channels = filters;
    }
  });
  return b.head(x);
}

/**
 * A small MobileNetV2 (Sandler et al. 2018): inverted residual blocks (1x1 expand -> 3x3 depthwise
 * -> 1x1 linear projection), residual add when stride 1 and widths match, ReLU6.
 */
function mobilenetV2Tiny(b: Builder): tf.LayersModel {
  // [expansion, channels, repeats, first stride]
  const settings: [number, number, number, number][] = [
    [1, 16, 1, 1],
    [4, 24, 2, 2],
    [4, 32, 2, 2],
    [4, 64, 2, 2],
  ];
  let x = b.cbr(b.input, 'stem', b.ch(16), 3, 1, true);
  let inCh = b.ch(16);
  settings.forEach(([t, c, n, s], si) => {
    const outCh = b.ch(c);
    for (let i = 0; i < n; i++) {
      const p = `ir${si + 1}.${i}`;
      const stride = i === 0 ? s : 1;
      let y = x;
      if (t !== 1) y = b.cbr(y, `${p}.expand`, inCh * t, 1, 1, true);
      y = b.relu(b.bn(b.depthwise(y, `${p}.dw`, stride), `${p}.dw.bn`), `${p}.dw.relu`, 6);
      y = b.bn(b.conv(y, `${p}.project.conv`, outCh, 1), `${p}.project.bn`);
      if (stride === 1 && inCh === outCh) y = tf.layers.add({ name: `${p}.add` }).apply([y, x]) as tf.SymbolicTensor;
      x = y;
      inCh = outCh;
    }
  });
  x = b.cbr(x, 'head', b.ch(128), 1, 1, true);
  return b.head(x);
}
