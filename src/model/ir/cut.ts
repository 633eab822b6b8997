/**
 * Cutting a graph: kept channel indices per group (a pruning plan: pure data, stored and replayed)
 * applied node by node through the rules, giving a physically smaller graph. Every node of the
 * result owns its arrays, also where the source shared one initializer between nodes.
 */
import { AutopruneError, ErrorCodes, quote } from '../../core/errors.js';
import type { Rng } from '../../core/rng.js';
import { type Candidate, validateCandidate } from '../../core/space.js';
import type { PruningPlan } from '../prune.js';
import { type GraphAnalysis, keptIndices } from './analyze.js';
import type { ModelGraph } from './graph.js';
import { graphGroupScores, type ImportanceName, topChannels } from './importance.js';
import { ruleOf } from './rules/index.js';

/** Each group keeps its top-`n` channels by the criterion (the plan ../prune.ts makes for a LayersModel). */
export function makeGraphPlan(a: GraphAnalysis, c: Candidate, criterion: ImportanceName, rng?: Rng): PruningPlan {
  validateCandidate({ groups: a.groups, options: { minKeepRatio: 0, channelStep: 1, skip: [] } }, c);
  const scores = graphGroupScores(a, criterion, rng);
  return { groups: a.groups.map((g, i) => ({ id: g.id, keep: topChannels(scores[i], c.channels[i]) })) };
}

/** The graph cut to `keep` (per group, in `a.groups` order: kept channel indices, ascending). */
export function cutGraph(graph: ModelGraph, a: GraphAnalysis, keep: readonly (readonly number[])[]): ModelGraph {
  if (a.graph !== graph) throw new Error('cutGraph: the analysis is of another graph');
  if (keep.length !== a.groups.length) {
    throw new AutopruneError(ErrorCodes.CANDIDATE_INVALID, `Expected kept channels for ${a.groups.length} groups, got ${keep.length}`);
  }
  keep.forEach((k, g) => {
    const n = a.groups[g].channels;
    if (k.length === 0 || k.some((v, i) => !Number.isInteger(v) || v < 0 || v >= n || (i > 0 && v <= k[i - 1]))) {
      throw new AutopruneError(
        ErrorCodes.CANDIDATE_INVALID,
        `Kept channels of group \`${a.groups[g].id}\` are ${quote(k)}; expected ascending distinct indices in [0, ${n})`,
      );
    }
  });
  const nodes = graph.nodes.map((node, i) => {
    const ins = a.inputs[i];
    return ruleOf(node).cut(node, {
      inShapes: ins.map((j) => a.shapes[j]),
      outShape: a.shapes[i],
      inKeep: ins.map((j) => keptIndices(a, a.channels[j], keep)),
      outKeep: keptIndices(a, a.channels[i], keep),
    });
  });
  return { ...graph, nodes };
}

/** Cut by a plan, checking that it is a plan for these groups. */
export function applyGraphPlan(graph: ModelGraph, a: GraphAnalysis, plan: PruningPlan): ModelGraph {
  if (plan.groups.length !== a.groups.length || plan.groups.some((g, i) => g.id !== a.groups[i].id)) {
    throw new AutopruneError(
      ErrorCodes.CANDIDATE_INVALID,
      `Pruning plan groups (${plan.groups.map((g) => g.id).join(', ')}) do not match the model's groups (${a.groups.map((g) => g.id).join(', ')})`,
    );
  }
  return cutGraph(
    graph,
    a,
    plan.groups.map((g) => g.keep),
  );
}

/** Plan and cut in one step: the graph counterpart of ../prune.ts' pruneModel. */
export function pruneGraph(a: GraphAnalysis, c: Candidate, criterion: ImportanceName, rng?: Rng): { graph: ModelGraph; plan: PruningPlan } {
  const plan = makeGraphPlan(a, c, criterion, rng);
  return { graph: applyGraphPlan(a.graph, a, plan), plan };
}
