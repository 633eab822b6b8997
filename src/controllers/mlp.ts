/**
 * Small dense networks in plain TypeScript for the rl controller. Parameters and Adam moments are
 * stored as float32 (PyTorch's default, as AMC ran) and computed on in float64; one flat array per
 * network, so a snapshot is the arrays' bytes (half of float64's) and a restore is bit-exact.
 * ReLU hidden layers; the output is a sigmoid (actor) or linear (critic). Adam (Kingma & Ba 2015).
 */
import type { Rng } from '../core/rng.js';

export class Mlp {
  readonly params: Float32Array;
  /** Accumulated between Adam steps only (cleared by each), so never part of a snapshot. */
  readonly grad: Float64Array;
  /** Adam moments and step count. */
  readonly m: Float32Array;
  readonly v: Float32Array;
  step = 0;
  private readonly offsets: number[] = [];

  constructor(
    readonly sizes: readonly number[],
    readonly sigmoidOut: boolean,
  ) {
    let n = 0;
    for (let l = 0; l + 1 < sizes.length; l++) {
      this.offsets.push(n);
      n += sizes[l] * sizes[l + 1] + sizes[l + 1];
    }
    this.params = new Float32Array(n);
    this.grad = new Float64Array(n);
    this.m = new Float32Array(n);
    this.v = new Float32Array(n);
  }

  /** DDPG's init (Lillicrap et al. 2016, as in AMC): U(±1/sqrt(fan-in)) for hidden layers, U(±initW) for the last. */
  init(rng: Rng, initW: number): void {
    for (let l = 0; l + 1 < this.sizes.length; l++) {
      const bound = l + 2 === this.sizes.length ? initW : 1 / Math.sqrt(this.sizes[l]);
      const end = this.offsets[l] + this.sizes[l] * this.sizes[l + 1] + this.sizes[l + 1];
      for (let i = this.offsets[l]; i < end; i++) this.params[i] = rng.uniform(-bound, bound);
    }
  }

  /** Forward pass of one input; returns every layer's activations (the last is the output). */
  forward(x: ArrayLike<number>): Float64Array[] {
    const acts = [Float64Array.from(x)];
    for (let l = 0; l + 1 < this.sizes.length; l++) {
      const [nin, nout, off] = [this.sizes[l], this.sizes[l + 1], this.offsets[l]];
      const a = acts[l];
      const out = new Float64Array(nout);
      const last = l + 2 === this.sizes.length;
      for (let j = 0; j < nout; j++) {
        let z = this.params[off + nin * nout + j];
        const w = off + j * nin;
        for (let i = 0; i < nin; i++) z += this.params[w + i] * a[i];
        out[j] = last ? (this.sigmoidOut ? 1 / (1 + Math.exp(-z)) : z) : Math.max(z, 0);
      }
      acts.push(out);
    }
    return acts;
  }

  /** Accumulate d(loss)/d(params) into `grad` given d(loss)/d(output); returns d(loss)/d(input). */
  backward(acts: readonly Float64Array[], dOut: ArrayLike<number>): Float64Array {
    const L = this.sizes.length - 1;
    let delta = Float64Array.from(dOut);
    if (this.sigmoidOut) for (let j = 0; j < delta.length; j++) delta[j] *= acts[L][j] * (1 - acts[L][j]);
    for (let l = L - 1; l >= 0; l--) {
      const [nin, nout, off] = [this.sizes[l], this.sizes[l + 1], this.offsets[l]];
      const a = acts[l];
      const dIn = new Float64Array(nin);
      for (let j = 0; j < nout; j++) {
        const d = delta[j];
        if (d === 0) continue;
        this.grad[off + nin * nout + j] += d;
        const w = off + j * nin;
        for (let i = 0; i < nin; i++) {
          this.grad[w + i] += d * a[i];
          dIn[i] += d * this.params[w + i];
        }
      }
      if (l > 0) for (let i = 0; i < nin; i++) if (a[i] <= 0) dIn[i] = 0;
      delta = dIn;
    }
    return delta;
  }

  /** One Adam step on the accumulated gradient (scaled by `scale`), then clears it. */
  adam(lr: number, scale: number, beta1 = 0.9, beta2 = 0.999, eps = 1e-8): void {
    this.step++;
    const c1 = 1 - beta1 ** this.step;
    const c2 = 1 - beta2 ** this.step;
    for (let i = 0; i < this.params.length; i++) {
      const g = this.grad[i] * scale;
      this.m[i] = beta1 * this.m[i] + (1 - beta1) * g;
      this.v[i] = beta2 * this.v[i] + (1 - beta2) * g * g;
      this.params[i] -= (lr * (this.m[i] / c1)) / (Math.sqrt(this.v[i] / c2) + eps);
    }
    this.grad.fill(0);
  }

  /** Polyak averaging toward `source`: this = (1 - tau) * this + tau * source. */
  softUpdate(source: Mlp, tau: number): void {
    for (let i = 0; i < this.params.length; i++) this.params[i] = (1 - tau) * this.params[i] + tau * source.params[i];
  }
}
