/**
 * Per-layer latency tables and the prediction built on them, after NetAdapt (Yang et al., ECCV 2018)
 * and HALP (Shen et al., NeurIPS 2022): a candidate's latency is the sum of its layers' entries
 * plus a per-model overhead (everything the table does not time: the call itself, transposes,
 * pooling, adds), measured once on the base model as end-to-end minus the sum of its entries.
 *
 * Tables are keyed by engine, engine version, host, thread count and batch (a table from another
 * build or machine is not reused) and kept in the store, so every study and worker on a host
 * shares them; they are built lazily, only for the shapes a study needs that are still missing.
 */
import { cpus, hostname } from 'node:os';
import { AutopruneError, ErrorCodes } from '../core/errors.js';
import { latencyShapeKey } from '../store/latency.js';
import type { LatencyEntry, LatencyShape, LatencyTableId, LatencyTables, NewLatencyEntry } from '../store/types.js';
import type { LayerShape } from './shapes.js';

/** `<hostname>/<cpu model name>`: two machines, or one machine's two CPUs, never share a table. */
export function latencyHost(): string {
  return `${hostname()}/${(cpus()[0]?.model ?? 'unknown').trim().replace(/\s+/g, ' ')}`;
}

/** Short human-readable id of a table (stored with each trial that used it). */
export function tableLabel(t: LatencyTableId): string {
  return `${t.engine}@${t.engineVersion} ${t.host} threads=${t.threads} batch=${t.batch}`;
}

/** Everything of a shape except the channel counts: entries of one family differ only in cin/cout. */
function familyKey(s: LatencyShape): string {
  const depthwise = s.groups > 1 && s.groups === s.cin && s.cin === s.cout;
  return latencyShapeKey({ ...s, cin: 0, cout: 0, groups: depthwise ? 0 : s.groups });
}

/**
 * Which kernel an input width `cin` runs on onnxruntime's CPU convs, for interpolation: widths of
 * one kind are interpolated only from grid widths of the same kind. onnxruntime's NCHWc transformer
 * blocks a conv when its input channels are a multiple of the block (`align`) or fewer than it (read
 * in NCHW directly); any other input width runs the plain NCHW conv, which measured here (3x3, 21
 * output channels, 14x14) about 2x slower for widths that are not a multiple of 4 (21, 23, 27: 1.2-1.3
 * ms per call) than for multiples of 4 (20, 24, 28: 0.57-0.69 ms). Kinds: 0 blocked, 1 NCHW and a
 * multiple of 4, 2 NCHW and even, 3 NCHW and odd. With `align` <= 1 there is one kind.
 */
export function inputKind(cin: number, align: number): number {
  if (align <= 1 || cin % align === 0 || cin < align) return 0;
  return cin % 4 === 0 ? 1 : cin % 2 === 0 ? 2 : 3;
}

/** The kind of an output width: a multiple of the block or not (NCHWc pads the rest to the next multiple). */
export function outputKind(cout: number, align: number): number {
  return align <= 1 || cout % align === 0 ? 0 : 1;
}

type Kind = (x: number) => number;

/** Grid points of the same kind as `x`; all of them when its kind does not bracket it. */
function sameKind(xs: readonly number[], x: number, kind: Kind): number[] {
  const k = kind(x);
  const same = xs.filter((v) => kind(v) === k);
  return bracketOf(same, x) ? same : [...xs];
}

function bracket(xs: readonly number[], x: number, kind: Kind): [number, number] | null {
  return bracketOf(sameKind(xs, x, kind), x);
}

function bracketOf(xs: readonly number[], x: number): [number, number] | null {
  if (xs.length === 0 || x < xs[0] || x > xs[xs.length - 1]) return null;
  for (let i = 0; i < xs.length; i++) {
    if (xs[i] === x) return [x, x];
    if (xs[i] > x) return [xs[i - 1], xs[i]];
  }
  return null;
}

const lerp = (x: number, x0: number, x1: number, y0: number, y1: number): number => (x1 === x0 ? y0 : y0 + ((x - x0) / (x1 - x0)) * (y1 - y0));

export class LatencyTable {
  private readonly exact = new Map<string, number>();
  private readonly families = new Map<string, { cins: number[]; couts: number[]; ms: Map<string, number> }>();

  /**
   * `align`: the engine's channel block (onnxruntime's NCHWc block on this CPU, 1 for none); widths
   * are interpolated only from grid widths of the same kind (`inputKind`, `outputKind`).
   */
  constructor(
    readonly id: LatencyTableId,
    entries: readonly NewLatencyEntry[],
    readonly align = 1,
  ) {
    for (const e of entries) {
      this.exact.set(latencyShapeKey(e), e.ms);
      const k = familyKey(e);
      let f = this.families.get(k);
      if (!f) this.families.set(k, (f = { cins: [], couts: [], ms: new Map() }));
      if (!f.cins.includes(e.cin)) f.cins.push(e.cin);
      if (!f.couts.includes(e.cout)) f.couts.push(e.cout);
      f.ms.set(`${e.cin}>${e.cout}`, e.ms);
    }
    for (const f of this.families.values()) {
      f.cins.sort((a, b) => a - b);
      f.couts.sort((a, b) => a - b);
    }
  }

  get size(): number {
    return this.exact.size;
  }

  has(s: LatencyShape): boolean {
    return this.exact.has(latencyShapeKey(s));
  }

  /**
   * Milliseconds per call of `s`: the entry itself, or, between grid points, bilinear in (cin, cout)
   * over the four surrounding entries of the same family (linear along the diagonal for depthwise
   * convs and for layers whose input and output are one group);
   * undefined when the shape lies outside the measured grid.
   */
  lookup(s: LatencyShape): number | undefined {
    const hit = this.exact.get(latencyShapeKey(s));
    if (hit !== undefined) return hit;
    const f = this.families.get(familyKey(s));
    if (!f) return undefined;
    const depthwise = s.groups > 1 && s.groups === s.cin && s.cin === s.cout;
    const at = (ci: number, co: number) => f.ms.get(`${ci}>${co}`);
    // Only convs with one group run on the kernels the kinds describe.
    const align = s.op === 'conv' && s.groups === 1 ? this.align : 1;
    const inKind: Kind = (x) => inputKind(x, align);
    const xi = bracket(f.cins, s.cin, inKind);
    if (!xi) return undefined;
    if (depthwise) {
      const [a, b] = [at(xi[0], xi[0]), at(xi[1], xi[1])];
      return a === undefined || b === undefined ? undefined : lerp(s.cin, xi[0], xi[1], a, b);
    }
    // Output widths measured at both bracketing input widths (tables grown by several studies are not full grids).
    const ys = f.couts.filter((y) => at(xi[0], y) !== undefined && at(xi[1], y) !== undefined);
    const yi = bracket(ys, s.cout, (x) => outputKind(x, align));
    const c = yi ? [at(xi[0], yi[0]), at(xi[0], yi[1]), at(xi[1], yi[0]), at(xi[1], yi[1])] : [undefined];
    if (!yi || c.some((v) => v === undefined)) {
      // A layer whose input and output channels are one group (a residual conv) has only diagonal entries.
      const [a, b] = [at(xi[0], xi[0]), at(xi[1], xi[1])];
      return s.cin !== s.cout || a === undefined || b === undefined ? undefined : lerp(s.cin, xi[0], xi[1], a, b);
    }
    const [c00, c01, c10, c11] = c as number[];
    return lerp(s.cin, xi[0], xi[1], lerp(s.cout, yi![0], yi![1], c00, c01), lerp(s.cout, yi![0], yi![1], c10, c11));
  }

  /** Sum of the entries of a model's timed units, ms per call; a coded error names a unit off the grid. */
  sum(units: readonly LayerShape[]): number {
    let total = 0;
    for (const u of units) {
      const ms = this.lookup(u.shape);
      if (ms === undefined) {
        throw new AutopruneError(
          ErrorCodes.INVALID_ARGUMENT,
          `Latency table ${tableLabel(this.id)} has no entry near layer \`${u.layer}\` (${latencyShapeKey(u.shape)}); rebuild it for this study's space`,
        );
      }
      total += ms;
    }
    return total;
  }
}

/** Measures shapes, one at a time (the real one is measure.ts's; tests inject a synthetic timer). */
export type ShapeTimer = (s: LatencyShape) => Promise<number>;

export interface BuildOptions {
  /** The engine's channel block (LatencyTable's `align`). Default 1. */
  readonly align?: number;
  /** Called after each measured shape: (done, missing). */
  readonly onProgress?: (done: number, missing: number) => void;
  /** Entries written to the store per transaction (an interrupted build keeps what it measured). Default 16. */
  readonly flushEvery?: number;
}

/**
 * The table `id` with at least `shapes`: entries already in the store are reused (whoever measured
 * them), missing ones are measured with `time` and stored.
 */
export async function ensureTable(
  store: LatencyTables,
  id: LatencyTableId,
  shapes: readonly LatencyShape[],
  time: ShapeTimer,
  o: BuildOptions = {},
): Promise<{ table: LatencyTable; measured: number }> {
  const have = await store.getLatencyEntries(id);
  const known = new Set(have.map(latencyShapeKey));
  const missing = [...new Map(shapes.map((s) => [latencyShapeKey(s), s])).entries()].filter(([k]) => !known.has(k)).map(([, s]) => s);
  const flushEvery = Math.max(1, o.flushEvery ?? 16);
  let pending: NewLatencyEntry[] = [];
  const all: NewLatencyEntry[] = [...have];
  for (let i = 0; i < missing.length; i++) {
    const e = { ...missing[i], ms: await time(missing[i]) };
    pending.push(e);
    all.push(e);
    o.onProgress?.(i + 1, missing.length);
    if (pending.length >= flushEvery || i === missing.length - 1) {
      await store.putLatencyEntries(id, pending);
      pending = [];
    }
  }
  return { table: new LatencyTable(id, all, o.align ?? 1), measured: missing.length };
}

/** What a prediction needs: the table, and the correction fitted on the base (and on calibration candidates). */
export interface LatencyModel {
  readonly table: LatencyTable;
  /** Multiplies the sum of entries: 1 with the overhead alone, fitted by `fitCalibration` otherwise. */
  readonly scale: number;
  /** Milliseconds per call that no entry accounts for: base end-to-end minus the base's (scaled) entries. */
  readonly overheadMs: number;
  readonly batch: number;
}

/**
 * The base model's overhead from its measured end-to-end latency (ms per image) and its units. A
 * negative difference (the entries sum to more than the whole model: the host's load changed
 * between the measurements) is clamped to 0, so no prediction goes negative; `clamped` says so.
 */
export function fitOverhead(table: LatencyTable, baseUnits: readonly LayerShape[], baseMsPerImage: number, batch: number): LatencyModel & { clamped: boolean } {
  const overheadMs = baseMsPerImage * batch - table.sum(baseUnits);
  return { table, scale: 1, overheadMs: Math.max(0, overheadMs), batch, clamped: overheadMs < 0 };
}

/** One calibration candidate: its sum of entries (ms per call) and its measured latency as a fraction of the base timed beside it. */
export interface CalibrationPoint {
  readonly sum: number;
  readonly ratio: number;
}

/**
 * A per-table correction fitted on calibration candidates (the base's fit alone assumes the entries
 * account for every millisecond that changes with the widths): with x = a candidate's sum of entries
 * over the base's and r its measured fraction of the base,
 *
 *   r = a (x - 1) + 1     (least squares through the base's point x = 1, r = 1)
 *
 * so a is how much of the base's end-to-end latency moves with the entries, and 1 - a is the fixed
 * overhead. The model predicts `baseMsPerImage` for the base and `a` times the entries' change
 * otherwise: scale = a * base / baseSum, overhead = (1 - a) * base, both per call. Returns null when
 * the points cannot fit a (fewer than two, or no spread in x), or a is not in (0, 3] (a correction
 * that large says the table or the measurements are broken, not the overhead).
 */
export function fitCalibration(
  table: LatencyTable,
  baseUnits: readonly LayerShape[],
  baseMsPerImage: number,
  batch: number,
  points: readonly CalibrationPoint[],
): (LatencyModel & { a: number }) | null {
  const baseSum = table.sum(baseUnits);
  let sxy = 0;
  let sxx = 0;
  for (const p of points) {
    const x = p.sum / baseSum - 1;
    sxy += x * (p.ratio - 1);
    sxx += x * x;
  }
  if (points.length < 2 || sxx < 1e-6) return null;
  const a = sxy / sxx;
  if (!(a > 0 && a <= 3)) return null;
  const base = baseMsPerImage * batch;
  return { table, scale: (a * base) / baseSum, overheadMs: (1 - a) * base, batch, a };
}

/** Predicted milliseconds per image of a model with these units: (scale x sum of entries + overhead) / batch, at least 0. */
export function predictMs(m: LatencyModel, units: readonly LayerShape[]): number {
  return Math.max(0, (m.scale * m.table.sum(units) + m.overheadMs) / m.batch);
}

export type { LatencyEntry };
