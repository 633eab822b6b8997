/**
 * What a model's input pixels are, so it travels with an exported model (the model card): image
 * size, channels, layout and the formula from stored pixel values to the floats the model takes.
 */

/** The `data` keys preprocessing depends on (a structural subset of the resolved config's data section). */
export interface PreprocessingSource {
  readonly dataset?: string;
  readonly format?: 'imagefolder' | 'npy';
  readonly imageSize?: readonly [number, number];
  readonly channels?: 1 | 3;
  readonly layout?: 'NHWC' | 'NCHW';
  readonly normalize?: { readonly mean: readonly number[]; readonly std: readonly number[] };
}

export interface Preprocessing {
  /** Where the training images came from: a named dataset, `imagefolder` or `npy`. */
  readonly source: string;
  /** [height, width] the model takes. */
  readonly imageSize: readonly [number, number];
  /** 1 = grayscale, 3 = RGB. */
  readonly channels: number;
  /** The exported model's input layout: NHWC [batch, height, width, channels] (tfjs models), or NCHW (a model that came in as NCHW ONNX). */
  readonly layout: 'NHWC' | 'NCHW';
  /** How an image file becomes imageSize (imagefolder), or null (the data had that size). */
  readonly resize: string | null;
  /** How a colour image becomes `channels` and back (imagefolder), or null. */
  readonly colour: string | null;
  /** Per-channel (x - mean) / std after scaling, or null (none). */
  readonly normalize: { readonly mean: readonly number[]; readonly std: readonly number[] } | null;
  /** From a stored value v to the model's input x, in words. */
  readonly formula: string;
}

/** The preprocessing of a model whose input is `inputShape` [h, w, c] in `layout`, trained on `data`. */
export function preprocessingOf(data: PreprocessingSource, inputShape: readonly [number, number, number], layout: 'NHWC' | 'NCHW' = 'NHWC'): Preprocessing {
  const [h, w, c] = inputShape;
  const n = data.normalize;
  const scaled = n ? '(v / 255 - mean[c]) / std[c]' : 'v / 255';
  const formula =
    data.format === 'npy'
      ? `x = ${scaled} for uint8 arrays; x = ${n ? '(v - mean[c]) / std[c]' : 'v'} for float32 arrays (v as stored)`
      : `x = ${scaled}, v the 8-bit pixel value (0..255)`;
  const folder = data.format === 'imagefolder';
  return {
    source: data.format ?? data.dataset ?? 'fashion-mnist',
    imageSize: [h, w],
    channels: c,
    layout,
    resize:
      folder && data.imageSize
        ? `scale the shorter side to cover ${h}x${w} (bilinear), then crop the centre (torchvision Resize + CenterCrop)`
        : folder
          ? `none: every image is ${h}x${w}`
          : null,
    colour: folder
      ? c === 1
        ? 'RGB to gray: L = (19595 R + 38470 G + 7471 B + 32768) >> 16 (ITU-R 601-2, as PIL convert("L")); alpha dropped'
        : 'gray to RGB: the value repeated in R, G and B; alpha dropped'
      : null,
    normalize: n ? { mean: [...n.mean], std: [...n.std] } : null,
    formula: data.format === 'npy' && data.layout === 'NCHW' ? `${formula}; NCHW arrays transposed to NHWC` : formula,
  };
}
