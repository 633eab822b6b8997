/** Bookkeeping shared by the built-in controllers (pure: no IO, no clock). */
import { AutopruneError, ErrorCodes } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { type Candidate, candidateFromRatios, candidateKey, isSkipped, minChannels, type SearchSpace } from '../core/space.js';
import type { Json } from '../core/types.js';
import type { ControllerContext, Observation } from './types.js';

/** MACs of a candidate as a fraction of the base model's. */
export function macsFraction(ctx: ControllerContext, c: Candidate): number {
  return ctx.costOf(c).macs / ctx.baseCost.macs;
}

/** Proxy accuracy of an observation; a failed evaluation ranks below every real result. */
export function accuracyOf(o: Observation): number {
  return o.proxyAccuracy ?? -1;
}

/** Best proxy accuracy seen per target (for logging). */
export interface BestOfTarget {
  readonly target: number;
  readonly key: string;
  readonly proxyAccuracy: number;
  readonly macsFraction: number;
}

/** The best result per target and how many observations were told: small, whatever the study's length. */
export class ResultLog {
  best: BestOfTarget[] = [];
  told = 0;

  record(observations: readonly Observation[], baseMacs: number): void {
    for (const o of observations) {
      this.told++;
      const target = metaTarget(o.meta);
      if (target === undefined || o.proxyAccuracy === null) continue;
      const i = this.best.findIndex((b) => b.target === target);
      if (i >= 0 && this.best[i].proxyAccuracy >= o.proxyAccuracy) continue;
      const entry = { target, key: candidateKey(o.candidate), proxyAccuracy: o.proxyAccuracy, macsFraction: o.cost.macs / baseMacs };
      if (i >= 0) this.best[i] = entry;
      else this.best.push(entry);
    }
  }

  toJson(): { best: Json; told: Json } {
    return { best: this.best.map((b) => ({ ...b })), told: this.told };
  }

  load(state: { best?: unknown; told?: unknown }, controller: string): void {
    if (!Array.isArray(state.best) || typeof state.told !== 'number') throw badSnapshot(controller, 'missing `best` or `told`');
    this.best = state.best.map((b) => ({ ...(b as BestOfTarget) }));
    this.told = state.told;
  }
}

function metaTarget(meta: Json | undefined): number | undefined {
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) return undefined;
  return typeof meta.target === 'number' ? meta.target : undefined;
}

export function badSnapshot(controller: string, why: string): AutopruneError {
  return new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Cannot restore the \`${controller}\` controller: ${why}`);
}

/** The snapshot as an object of the expected version, or a coded error naming the controller. */
export function snapshotObject(state: Json, controller: string, version: number): { readonly [k: string]: Json } {
  if (state === null || typeof state !== 'object' || Array.isArray(state) || state.version !== version) {
    throw badSnapshot(controller, `expected a version ${version} snapshot object`);
  }
  return state;
}

export function sameTargets(state: { readonly [k: string]: Json }, ctx: ControllerContext, controller: string): void {
  if (JSON.stringify(state.targets) !== JSON.stringify(ctx.targets)) {
    throw badSnapshot(controller, `its targets ${JSON.stringify(state.targets)} differ from the config's ${JSON.stringify(ctx.targets)}`);
  }
}

export function rngJson(rng: Rng): Json {
  return [...rng.snapshot().s];
}

export function rngFromJson(v: Json | undefined, controller: string): Rng {
  if (!Array.isArray(v) || v.length !== 4 || !v.every((x) => typeof x === 'number')) throw badSnapshot(controller, 'malformed `rng`');
  return new Rng({ s: [v[0] as number, v[1] as number, v[2] as number, v[3] as number] });
}

/** Float values as base64 of their bytes: compact, and bit-exact where JSON decimals are costly. */
export function encodeFloats(values: Float32Array | Float64Array): string {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');
}

/** `length` floats of the given array type (Float64Array unless told) from `encodeFloats` text. */
export function decodeFloats<T extends Float32Array | Float64Array = Float64Array>(
  text: Json | undefined,
  length: number,
  controller: string,
  type: { new (n: number): T; readonly BYTES_PER_ELEMENT: number } = Float64Array as unknown as { new (n: number): T; readonly BYTES_PER_ELEMENT: number },
): T {
  if (typeof text !== 'string') throw badSnapshot(controller, 'expected base64 float data');
  const bytes = Buffer.from(text, 'base64');
  const size = type.BYTES_PER_ELEMENT;
  if (bytes.byteLength !== length * size) throw badSnapshot(controller, `expected ${length} floats, got ${bytes.byteLength / size}`);
  const out = new type(length);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** Several float32 arrays as one base64 text (a snapshot's learned state), and back into the same arrays. */
export function packFloat32(parts: readonly Float32Array[]): string {
  const all = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  parts.reduce((off, p) => (all.set(p, off), off + p.length), 0);
  return encodeFloats(all);
}

export function unpackFloat32(text: Json | undefined, parts: readonly Float32Array[], controller: string): void {
  const all = decodeFloats(
    text,
    parts.reduce((a, p) => a + p.length, 0),
    controller,
    Float32Array,
  );
  parts.reduce((off, p) => (p.set(all.subarray(off, off + p.length)), off + p.length), 0);
}

/** Channel counts group `g` may keep, ascending: multiples of channelStep from its minimum, and the full count. */
export function channelLevels(space: SearchSpace, g: number): number[] {
  const full = space.groups[g].channels;
  if (isSkipped(space, g)) return [full];
  const step = Math.max(1, Math.floor(space.options.channelStep));
  const out: number[] = [];
  for (let n = minChannels(space, g); n < full; n += step) out.push(n);
  out.push(full);
  return out;
}

/** Whether a candidate is one the space allows (the oracle every proposal is tested against). */
export function inSpace(space: SearchSpace, c: Candidate): boolean {
  return c.channels.length === space.groups.length && c.channels.every((n, g) => channelLevels(space, g).includes(n));
}

/** The all-minimum candidate: the cheapest the space allows. */
export function cheapest(space: SearchSpace): Candidate {
  return candidateFromRatios(
    space,
    space.groups.map(() => space.options.minKeepRatio),
  );
}

/** Can any candidate land in the window of `target`? The cheapest one is all groups at their minimum. */
export function targetFeasible(ctx: ControllerContext, target: number): boolean {
  return macsFraction(ctx, cheapest(ctx.space)) <= target + ctx.window;
}

/** Bisection steps on the common scale factor; 2^-40 of the range is far below one channel. */
const SCALE_STEPS = 40;

/**
 * Scale a keep-ratio *shape* into a FLOPs window (EagleEye's random pattern, MetaPruning's window):
 * bisect a common factor s in [0, 1/minKeepRatio] on ratios clamp(s * shape_i, minKeepRatio, 1) —
 * MACs grow monotonically with s — and of the rounded candidates met on the way return the one
 * nearest `aim` that lies in `target ± window` and passes `accept`, or undefined.
 */
export function steerToWindow(
  ctx: ControllerContext,
  shape: readonly number[],
  target: number,
  aim: number,
  accept: (c: Candidate) => boolean = () => true,
): Candidate | undefined {
  const minKeep = ctx.space.options.minKeepRatio;
  let lo = 0;
  let hi = 1 / minKeep;
  let best: { c: Candidate; miss: number } | undefined;
  for (let step = 0; step < SCALE_STEPS; step++) {
    const s = (lo + hi) / 2;
    const c = candidateFromRatios(
      ctx.space,
      shape.map((u) => Math.min(1, Math.max(minKeep, s * u))),
    );
    const f = macsFraction(ctx, c);
    if (Math.abs(f - target) <= ctx.window && accept(c)) {
      const miss = Math.abs(f - aim);
      if (best === undefined || miss < best.miss) best = { c, miss };
    }
    if (f < aim) lo = s;
    else hi = s;
  }
  return best?.c;
}

/** Whether a MACs fraction lies in `target ± window` (the window a windowed proposal must respect). */
export function inWindow(ctx: ControllerContext, fraction: number, target: number): boolean {
  return Math.abs(fraction - target) <= ctx.window + 1e-12;
}
