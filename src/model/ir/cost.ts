/**
 * MACs and parameters of a graph pruned to a candidate, without cutting anything: each node's rule
 * counts itself at the kept widths (conventions in docs/flops.md, the same numbers as ../flops.ts).
 */
import type { Candidate } from '../../core/space.js';
import type { Cost } from '../../core/types.js';
import { type GraphAnalysis, keptCount } from './analyze.js';
import { ruleOf } from './rules/index.js';

export interface NodeCost extends Cost {
  readonly name: string;
  readonly op: string;
  /** Kept size of axis 1 of the first input (features when flattened) and of the output. */
  readonly inChannels: number;
  readonly outChannels: number;
}

export function nodeCosts(a: GraphAnalysis, c: Candidate | null): NodeCost[] {
  const kept = c?.channels ?? null;
  return a.graph.nodes.map((node, i) => {
    const cin = a.inputs[i].map((j) => keptCount(a, a.channels[j], kept));
    const cout = keptCount(a, a.channels[i], kept);
    const cost = ruleOf(node).cost(node, { inShapes: a.inputs[i].map((j) => a.shapes[j]), outShape: a.shapes[i], cin, cout });
    return { name: node.name, op: node.op, inChannels: cin[0] ?? 0, outChannels: cout, ...cost };
  });
}

/** Total cost of the graph pruned to `c` (null = unpruned). */
export function graphCost(a: GraphAnalysis, c: Candidate | null): Cost {
  let macs = 0;
  let params = 0;
  for (const n of nodeCosts(a, c)) {
    macs += n.macs;
    params += n.params;
  }
  return { macs, params };
}
