/**
 * Cutting: a pruning plan (kept channel indices per group, pure data that can be stored, replayed
 * and exported) applied to a model gives a *physically smaller* LayersModel with sliced weights.
 * One slicing rule per layer kind, in a table (Torch-Pruning's pruner-per-layer-type idea).
 */
import * as tf from '@tensorflow/tfjs';
import { AutopruneError, ErrorCodes } from '../core/errors.js';
import type { Rng } from '../core/rng.js';
import { type Candidate, validateCandidate } from '../core/space.js';
import type { Analysis, LayerInfo, LayerKind, TensorChannels } from './analysis.js';
import { groupScores, type ImportanceName, topChannels } from './importance.js';
import { modelTopology } from './topology.js';

export interface PruningPlan {
  /** Per group (same order as analysis.groups): the kept channel indices, ascending. */
  readonly groups: readonly { readonly id: string; readonly keep: readonly number[] }[];
}

/** Choose which channels each group keeps: the top-`n` by the importance criterion. */
export function makePlan(model: tf.LayersModel, a: Analysis, c: Candidate, criterion: ImportanceName, rng?: Rng): PruningPlan {
  validateCandidate({ groups: a.groups, options: { minKeepRatio: 0, channelStep: 1, skip: [] } }, c);
  const scores = groupScores(model, a, criterion, rng);
  return { groups: a.groups.map((g, i) => ({ id: g.id, keep: topChannels(scores[i], c.channels[i]) })) };
}

/** Channel indices of a tensor that survive the plan (in base-model numbering). */
function keptIndices(a: Analysis, plan: PruningPlan, t: TensorChannels): number[] {
  const out: number[] = [];
  let offset = 0;
  for (const seg of t.segs) {
    const g = a.setGroup[seg.set];
    if (g < 0) for (let i = 0; i < seg.size; i++) out.push(offset + i);
    else for (const i of plan.groups[g].keep) out.push(offset + i);
    offset += seg.size;
  }
  return out;
}

/** Rows of a Dense kernel that read a flattened [spatial, C] tensor. */
function flattenedRows(t: TensorChannels, kept: number[]): number[] {
  const c = t.segs.reduce((n, s) => n + s.size, 0);
  const rows: number[] = [];
  for (let s = 0; s < (t.spatial ?? 1); s++) for (const k of kept) rows.push(s * c + k);
  return rows;
}

interface SliceContext {
  readonly inIdx: number[];
  readonly outIdx: number[];
  readonly layer: LayerInfo;
}
type Slicer = (weights: tf.Tensor[], ctx: SliceContext) => tf.Tensor[];

const gather = (w: tf.Tensor, idx: number[], axis: number): tf.Tensor =>
  idx.length === w.shape[axis] && idx.every((v, i) => v === i) ? w.clone() : tf.gather(w, idx, axis);

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

const keepAll: Slicer = (ws) => ws.map((w) => w.clone());

const SLICERS: Record<LayerKind, Slicer> = {
  conv: ([kernel, bias], { inIdx, outIdx }) => [gather(gather(kernel, inIdx, 2), outIdx, 3), ...(bias ? [gather(bias, outIdx, 0)] : [])],
  depthwise: ([kernel, bias], { inIdx, layer }) =>
    layer.depthMultiplier === 1
      ? [gather(kernel, inIdx, 2), ...(bias ? [gather(bias, inIdx, 0)] : [])]
      : keepAll([kernel, ...(bias ? [bias] : [])], { inIdx, outIdx: [], layer }),
  separable: ([dw, pw, bias], { inIdx, outIdx, layer }) => {
    const dwIdx = layer.depthMultiplier === 1 ? inIdx : range(dw.shape[2] as number);
    const pwIn = layer.depthMultiplier === 1 ? inIdx : range(pw.shape[2] as number);
    return [gather(dw, dwIdx, 2), gather(gather(pw, pwIn, 2), outIdx, 3), ...(bias ? [gather(bias, outIdx, 0)] : [])];
  },
  dense: ([kernel, bias], { inIdx, outIdx, layer }) => {
    const rows = layer.input?.spatial ? flattenedRows(layer.input, inIdx) : inIdx;
    return [gather(gather(kernel, rows, 0), outIdx, 1), ...(bias ? [gather(bias, outIdx, 0)] : [])];
  },
  bn: (ws, { outIdx }) => ws.map((w) => gather(w, outIdx, 0)),
  input: keepAll,
  add: keepAll,
  concat: keepAll,
  passthrough: keepAll,
  flatten: keepAll,
  gap: keepAll,
};

/** Config field holding each producer's output width. */
const WIDTH_FIELD: Partial<Record<LayerKind, string>> = { conv: 'filters', separable: 'filters', dense: 'units' };

/** Build the smaller model. The base model is not modified; the caller owns (and disposes) the result. */
export async function applyPlan(model: tf.LayersModel, a: Analysis, plan: PruningPlan): Promise<tf.LayersModel> {
  if (plan.groups.length !== a.groups.length || plan.groups.some((g, i) => g.id !== a.groups[i].id)) {
    throw new AutopruneError(
      ErrorCodes.CANDIDATE_INVALID,
      `Pruning plan groups (${plan.groups.map((g) => g.id).join(', ')}) do not match the model's groups (${a.groups.map((g) => g.id).join(', ')})`,
    );
  }
  const topology = modelTopology(model);
  const byName = new Map(a.layers.map((l) => [l.name, l]));
  const indices = new Map<string, SliceContext>();
  for (const l of a.layers) {
    indices.set(l.name, { layer: l, inIdx: l.input ? keptIndices(a, plan, l.input) : [], outIdx: keptIndices(a, plan, l.output) });
  }
  for (const sl of topology.config.layers) {
    const name = String(sl.config.name ?? sl.name);
    const info = byName.get(name);
    const field = info && WIDTH_FIELD[info.kind];
    if (info && field) sl.config[field] = indices.get(name)!.outIdx.length;
  }
  const pruned = (await tf.models.modelFromJSON(topology as unknown as tf.io.ModelJSON)) as tf.LayersModel;
  for (const layer of model.layers) {
    if (layer.weights.length === 0) continue;
    const ctx = indices.get(layer.name)!;
    const sliced = tf.tidy(() => SLICERS[ctx.layer.kind](layer.getWeights(), ctx));
    pruned.getLayer(layer.name).setWeights(sliced);
    tf.dispose(sliced);
  }
  return pruned;
}

export async function pruneModel(
  model: tf.LayersModel,
  a: Analysis,
  c: Candidate,
  criterion: ImportanceName,
  rng?: Rng,
): Promise<{ model: tf.LayersModel; plan: PruningPlan }> {
  const plan = makePlan(model, a, c, criterion, rng);
  return { model: await applyPlan(model, a, plan), plan };
}
