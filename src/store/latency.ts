/**
 * Validation and keys of latency-table entries, shared by the backends (the rules live in one place,
 * like shared.ts for trials). See src/latency/ for what the entries mean.
 */
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import type { LatencyShape, LatencyTableId, NewLatencyEntry } from './types.js';

const posInt = (v: unknown): boolean => Number.isInteger(v) && (v as number) >= 1;

export function checkLatencyTable(t: LatencyTableId): void {
  for (const k of ['engine', 'engineVersion', 'host'] as const) {
    if (typeof t[k] !== 'string' || t[k] === '') throw bad(`latency table ${k}`, t[k], 'a non-empty string');
  }
  if (!posInt(t.threads)) throw bad('latency table threads', t.threads, 'an integer >= 1');
  if (!posInt(t.batch)) throw bad('latency table batch', t.batch, 'an integer >= 1');
}

export function checkLatencyEntry(e: NewLatencyEntry): void {
  if (e.op !== 'conv' && e.op !== 'dense') throw bad('latency entry op', e.op, '`conv` or `dense`');
  for (const k of ['cin', 'cout', 'h', 'w', 'kh', 'kw', 'sh', 'sw', 'groups'] as const) {
    if (!posInt(e[k])) throw bad(`latency entry ${k}`, e[k], 'an integer >= 1');
  }
  if (e.pad !== 'same' && e.pad !== 'valid') throw bad('latency entry pad', e.pad, '`same` or `valid`');
  if (typeof e.ms !== 'number' || !Number.isFinite(e.ms) || e.ms < 0) throw bad('latency entry ms', e.ms, 'a finite number >= 0');
}

function bad(what: string, v: unknown, expected: string): AutopruneError {
  return new AutopruneError(ErrorCodes.STORE_ERROR, `Invalid ${what} ${quote(v)}; expected ${expected}`);
}

/** One string per table (memory backend keys, messages). */
export function latencyTableKey(t: LatencyTableId): string {
  return `${t.engine}@${t.engineVersion}|${t.host}|t${t.threads}|b${t.batch}`;
}

/** One string per shape within a table. */
export function latencyShapeKey(s: LatencyShape): string {
  return `${s.op}:${s.cin}>${s.cout}:${s.h}x${s.w}:k${s.kh}x${s.kw}:s${s.sh}x${s.sw}:${s.pad}:g${s.groups}`;
}

/** The columns of a table's key and of a shape, in the order both SQL backends write them. */
export const LATENCY_KEY_COLUMNS = [
  'engine',
  'engine_version',
  'host',
  'threads',
  'batch',
  'op',
  'cin',
  'cout',
  'h',
  'w',
  'kh',
  'kw',
  'sh',
  'sw',
  'pad',
  'conv_groups',
] as const;

export function latencyRowValues(t: LatencyTableId, e: NewLatencyEntry): unknown[] {
  return [t.engine, t.engineVersion, t.host, t.threads, t.batch, e.op, e.cin, e.cout, e.h, e.w, e.kh, e.kw, e.sh, e.sw, e.pad, e.groups];
}

export interface LatencyRow {
  op: 'conv' | 'dense';
  cin: number;
  cout: number;
  h: number;
  w: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  pad: 'same' | 'valid';
  conv_groups: number;
  ms: number;
  measured_at: string;
}

export function latencyFromRow(r: LatencyRow) {
  return {
    op: r.op,
    cin: Number(r.cin),
    cout: Number(r.cout),
    h: Number(r.h),
    w: Number(r.w),
    kh: Number(r.kh),
    kw: Number(r.kw),
    sh: Number(r.sh),
    sw: Number(r.sw),
    pad: r.pad,
    groups: Number(r.conv_groups),
    ms: Number(r.ms),
    measuredAt: r.measured_at,
  };
}
