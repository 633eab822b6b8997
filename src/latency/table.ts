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
 * Grid points on the same kernel path as `x`: onnxruntime's blocked (NCHWc) convs take only widths
 * that are multiples of the block, other widths run another, slower kernel, so a width is
 * interpolated from grid widths of its own kind; from all of them when its kind has no bracket.
 */
function sameKind(xs: readonly number[], x: number, align: number): number[] {
  if (align <= 1) return [...xs];
  const kind = x % align === 0;
  const same = xs.filter((v) => (v % align === 0) === kind);
  return bracketOf(same, x) ? same : [...xs];
}

function bracket(xs: readonly number[], x: number, align = 1): [number, number] | null {
  return bracketOf(sameKind(xs, x, align), x);
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
   * are interpolated only from grid widths on the same side of it (see `sameKind`).
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
    const xi = bracket(f.cins, s.cin, this.align);
    if (!xi) return undefined;
    if (depthwise) {
      const [a, b] = [at(xi[0], xi[0]), at(xi[1], xi[1])];
      return a === undefined || b === undefined ? undefined : lerp(s.cin, xi[0], xi[1], a, b);
    }
    // Output widths measured at both bracketing input widths (tables grown by several studies are not full grids).
    const ys = f.couts.filter((y) => at(xi[0], y) !== undefined && at(xi[1], y) !== undefined);
    const yi = bracket(ys, s.cout, this.align);
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

/** What a prediction needs: the table and the overhead measured on the base model. */
export interface LatencyModel {
  readonly table: LatencyTable;
  /** Milliseconds per call that no entry accounts for: base end-to-end minus the base's entries. */
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
  return { table, overheadMs: Math.max(0, overheadMs), batch, clamped: overheadMs < 0 };
}

/** Predicted milliseconds per image of a model with these units: (sum of entries + overhead) / batch. */
export function predictMs(m: LatencyModel, units: readonly LayerShape[]): number {
  return (m.table.sum(units) + m.overheadMs) / m.batch;
}

export type { LatencyEntry };
