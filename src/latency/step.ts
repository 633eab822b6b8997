/**
 * `space.channelStep: auto`: the width step at which the engine's latency steps.
 *
 * Kernels that pack channels into blocks (onnxruntime's NCHWc convs: 8 or 16 floats per block)
 * take about as long for a width that is not a multiple of the block as for the next multiple, and
 * some widths between multiples are even slower (here a 3x3 conv at 24 channels ran 1.4x slower
 * than at 32). A search step finer than the block proposes widths that cost channels without
 * saving time. The rule, on the model's widest prunable conv (the most MACs among equals; its
 * input channels kept full, its output channels swept from the group's minimum to full, one
 * channel apart):
 *
 *   the latency each further channel costs, d(n) = (L(n) - L(m)) / (n - m) between consecutive
 *   allowed widths m < n, should be flat: the step is the smallest s in 1, 2, 4, 8, 16, 32 for
 *   which, over the multiples of s (at least three of them), every d is > 0 and max d / min d is
 *   at most 1 + `tolerance`.
 *
 * A flat d means every allowed width buys latency in proportion to its channels; on a staircase
 * (a block of b channels costs the same whether 1 or b of them are kept) d is 0 inside a block and
 * large at its edge for any step finer than b. The per-channel cost is taken between widths, not
 * as L(n) / n, because a layer's fixed cost (its call, its input read) would make L(n) / n fall
 * with n for any step. When no step is flat (a host too noisy to tell), the largest step with
 * three multiples is taken and the log says so. The sweep's shapes go into the latency table like
 * any other entries.
 */
import type { Analysis } from '../model/analysis.js';
import { layerCosts } from '../model/flops.js';
import type { LatencyShape, LatencyTableId, LatencyTables } from '../store/types.js';
import { layerShapes } from './shapes.js';
import { ensureTable, type ShapeTimer } from './table.js';

export const STEP_CHOICES = [1, 2, 4, 8, 16, 32] as const;

export interface StepChoice {
  readonly step: number;
  /** The layer swept and its latency, ms per call, by width. */
  readonly layer: string;
  readonly latency: ReadonlyMap<number, number>;
  /** max/min of the per-channel increments at the chosen step's multiples. */
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
    if (ns.length < 3) break;
    const d = ns.slice(1).map((n, i) => (latency.get(n)! - latency.get(ns[i])!) / (n - ns[i]));
    const spread = Math.min(...d) > 0 ? Math.max(...d) / Math.min(...d) : Number.POSITIVE_INFINITY;
    if (spread <= 1 + tolerance) return { step: s, spread, flat: true };
    last = { step: s, spread };
  }
  return last ? { ...last, flat: false } : { step: 1, spread: 1, flat: false };
}

/** The model's widest conv whose output channels a search prunes (the most MACs among equals), or null. */
function probeLayer(a: Analysis): { name: string; shape: LatencyShape } | null {
  const costs = layerCosts(a, null);
  const units = layerShapes(a, null);
  let best: { name: string; shape: LatencyShape; macs: number } | null = null;
  for (const l of a.layers) {
    if (l.kind !== 'conv' || !l.output.segs.every((s) => a.setGroup[s.set] >= 0)) continue;
    const macs = costs.find((c) => c.name === l.name)!.macs;
    const unit = units.find((u) => u.layer === l.name);
    if (!unit) continue;
    if (!best || unit.shape.cout > best.shape.cout || (unit.shape.cout === best.shape.cout && macs > best.macs))
      best = { name: l.name, shape: unit.shape, macs };
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
  const { step, spread, flat } = stepFromSweep(sweep, o.tolerance ?? 0.5);
  return { step, layer: probe.name, latency: sweep, spread, flat };
}
