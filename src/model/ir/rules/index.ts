/**
 * The rule table: one rule object per node `op` (Torch-Pruning's per-layer pruner table, Fang et
 * al., "DepGraph", CVPR 2023). Analysis (../analyze.ts), costs (../cost.ts), cutting (../cut.ts),
 * importance (../importance.ts) and ONNX export (../to-onnx.ts) are loops over a graph that ask
 * each node's rule; none of them switches on `op`.
 *
 * Adding a node kind:
 * 1. add its node interface to the `Node` union in ../graph.ts (weights in the canonical layouts);
 * 2. write `rules/<op>.ts` exporting a `Rule<ThatNode>` (contract in ./types.ts: shape, channel
 *    coupling, cost per docs/flops.md, cut, ONNX nodes, and optionally filters/channelScale for
 *    importance);
 * 3. list it in `RULES` below (the `satisfies` clause fails to compile until every op has a rule);
 * 4. teach an importer to produce it, and add a fixture that uses it to test/ir.test.ts, whose
 *    oracles (same logits after export, keep-all and zero-filter cuts) then cover it.
 * Engine builders (libtorch, tfjs) live beside these in their own files, keyed by the same ops.
 */
import type { Node, NodeOf, Op } from '../graph.js';
import { activation } from './activation.js';
import { add } from './add.js';
import { batchNorm } from './batch-norm.js';
import { concat } from './concat.js';
import { conv } from './conv.js';
import { dense } from './dense.js';
import { flatten } from './flatten.js';
import { globalPool } from './global-pool.js';
import { identity } from './identity.js';
import { input } from './input.js';
import { mul } from './mul.js';
import { pad } from './pad.js';
import { pool } from './pool.js';
import type { Rule } from './types.js';

export const RULES = {
  Input: input,
  Conv: conv,
  BatchNormalization: batchNorm,
  Activation: activation,
  Add: add,
  Mul: mul,
  Concat: concat,
  Pool: pool,
  GlobalPool: globalPool,
  Pad: pad,
  Flatten: flatten,
  Dense: dense,
  Identity: identity,
} as const satisfies { readonly [O in Op]: Rule<NodeOf<O>> };

/** The rule of a node, typed for a node of any kind. */
export function ruleOf(node: Node): Rule<Node> {
  return RULES[node.op] as unknown as Rule<Node>;
}

export type { Channels, CostInput, Coupling, CutInput, OnnxInput, Rule, Seg, Shape } from './types.js';
