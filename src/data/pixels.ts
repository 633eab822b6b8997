/** uint8 -> float in [0, 1], exactly `v / 255` rounded to float32, through a 256-entry table. */
const TABLE = (() => {
  const t = new Float32Array(256);
  for (let v = 0; v < 256; v++) t[v] = v / 255;
  return t;
})();

export function bytesToUnitFloats(bytes: Uint8Array, out = new Float32Array(bytes.length), outOffset = 0): Float32Array {
  for (let i = 0; i < bytes.length; i++) out[outOffset + i] = TABLE[bytes[i]];
  return out;
}

/** Number of floats per image. */
export function imageSize(shape: readonly [number, number, number]): number {
  return shape[0] * shape[1] * shape[2];
}
