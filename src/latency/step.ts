/**
 * `space.channelStep: auto`: the width step at which the engine's latency steps.
 *
 * Kernels that pack channels into blocks (onnxruntime's NCHWc convs: 8 or 16 floats per block)
 * take about as long for a width that is not a multiple of the block as for the next multiple, and
 * some widths between multiples are even slower (here a 3x3 conv at 24 channels ran 1.4x slower
 * than at 32). A search step finer than the block proposes widths that cost channels without
 * saving time. The rule, on the model's most expensive prunable conv (its input channels kept
 * full, its output channels swept from the group's minimum to full, one channel apart):
 *
 *   latency per output channel r(n) = L(n) / n should be flat over the widths a step allows,
 *   so the step is the smallest s in 1, 2, 4, 8, 16, 32 for which max r / min r over the
 *   multiples of s (at least two of them) is at most 1 + `tolerance`.
 *
 * A flat r means every allowed width buys latency in proportion to its channels. When no step is
 * flat (a machine too noisy to tell), the largest step with two multiples is taken and the log
 * says so. The sweep's shapes go into the latency table like any other entries.
 */
import type { Analysis } from '../model/analysis.js';
import { layerCosts } from '../model/flops.js';
import type { LatencyShape, LatencyTableId, LatencyTables } from '../store/types.js';
import { layerShapes } from './shapes.js';
import { ensureTable, type ShapeTimer } from './table.js';

export const STEP_CHOICES = [1, 2, 4, 8, 16, 32] as const;

export interface StepChoice {
  readonly step: number;
  /** The layer swept and its per-channel latencies, ms per call per channel, by width. */
  readonly layer: string;
  readonly perChannel: ReadonlyMap<number, number>;
  /** max/min of the per-channel latency at the chosen step's multiples. */
  readonly spread: number;
  /** False when no step was flat within the tolerance. */
  readonly flat: boolean;
}

/** The step rule on a measured sweep: width -> ms per call (see the module comment). */
export function stepFromSweep(latency: ReadonlyMap<number, number>, tolerance: number): { step: number; spread: number; flat: boolean } {
  const widths = [...latency.keys()].sort((a, b) => a - b);
  let last: { step: number; spread: number } | null = null;
  for (const s of STEP_CHOICES) {
    const ns = widths.filter((n) => n % s === 0);
    if (ns.length < 2) break;
    const r = ns.map((n) => latency.get(n)! / n);
    const spread = Math.max(...r) / Math.max(Math.min(...r), Number.MIN_VALUE);
    if (spread <= 1 + tolerance) return { step: s, spread, flat: true };
    last = { step: s, spread };
  }
  return last ? { ...last, flat: false } : { step: 1, spread: 1, flat: false };
}

/** The model's most expensive conv whose output channels a search prunes, or null. */
function probeLayer(a: Analysis): { name: string; shape: LatencyShape } | null {
  const costs = layerCosts(a, null);
  const units = layerShapes(a, null);
  let best: { name: string; shape: LatencyShape; macs: number } | null = null;
  for (const l of a.layers) {
    if (l.kind !== 'conv' || !l.output.segs.every((s) => a.setGroup[s.set] >= 0)) continue;
    const macs = costs.find((c) => c.name === l.name)!.macs;
    const unit = units.find((u) => u.layer === l.name);
    if (unit && (!best || macs > best.macs)) best = { name: l.name, shape: unit.shape, macs };
  }
  return best ? { name: best.name, shape: best.shape } : null;
}

export async function autoChannelStep(o: {
  store: LatencyTables;
  analysis: Analysis;
  tableId: LatencyTableId;
  timer: ShapeTimer;
  minKeepRatio: number;
  tolerance?: number;
  onProgress?: (done: number, missing: number) => void;
}): Promise<StepChoice | null> {
  const probe = probeLayer(o.analysis);
  if (!probe) return null;
  const full = probe.shape.cout;
  const lowest = Math.max(1, Math.round(o.minKeepRatio * full));
  const shapes: LatencyShape[] = [];
  for (let n = lowest; n <= full; n++) shapes.push({ ...probe.shape, cout: n });
  const { table } = await ensureTable(o.store, o.tableId, shapes, o.timer, { onProgress: o.onProgress });
  const sweep = new Map(shapes.map((s) => [s.cout, table.lookup(s)!] as const));
  const { step, spread, flat } = stepFromSweep(sweep, o.tolerance ?? 0.25);
  return { step, layer: probe.name, perChannel: new Map([...sweep].map(([n, ms]) => [n, ms / n])), spread, flat };
}
