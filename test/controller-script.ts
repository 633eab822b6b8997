/**
 * A scripted ask/tell session on the synthetic problem, shared by test/controllers-search.test.ts
 * and its child process (test/controller-child.ts): ops ask for n proposals or tell the k oldest
 * outstanding ones, so proposals stay in flight across a snapshot.
 */
import { makeProblem, type Problem, type ProblemOptions } from '../bench/synthetic-problem.js';
import type { ControllerInput as ControllerSpec } from '../src/config/index.js';
import { createController } from '../src/controllers/registry.js';
import type { Controller, ControllerContext, Proposal } from '../src/controllers/types.js';
import { Rng } from '../src/core/rng.js';
import type { Json } from '../src/store/types.js';

export type Op = { readonly ask: number } | { readonly tell: number };

export interface Scenario {
  readonly spec: ControllerSpec;
  readonly problem: ProblemOptions;
  readonly targets: readonly number[];
  readonly window: number;
  readonly seed: number;
  readonly ops: readonly Op[];
}

export interface Session {
  readonly controller: Controller;
  readonly ctx: ControllerContext;
  readonly problem: Problem;
}

/** Synthetic importance for `global`: channel i of a group scores (i + 1) * sensitivity-free weight. */
function importance(p: Problem): number[][] {
  return p.space.groups.map((g, k) => Array.from({ length: g.channels }, (_, i) => ((i * 7 + k * 3) % g.channels) + 1 + k));
}

export function session(s: Scenario, seed = s.seed): Session {
  const problem = makeProblem(s.problem);
  const ctx: ControllerContext = { ...problem, importance: importance(problem), targets: s.targets, window: s.window, rng: new Rng(seed) };
  return { controller: createController(s.spec, ctx), ctx, problem };
}

export interface Played {
  readonly proposals: Proposal[];
  readonly outstanding: Proposal[];
}

/** Play ops [from, to) on `c`; `outstanding` are proposals asked earlier and not yet told. */
export function playScript(s: Scenario, sess: Session, from = 0, to = s.ops.length, outstanding: Proposal[] = []): Played {
  const proposals: Proposal[] = [];
  const queue = [...outstanding];
  for (const op of s.ops.slice(from, to)) {
    if ('ask' in op) {
      const ps = sess.controller.ask(op.ask);
      proposals.push(...ps);
      queue.push(...ps);
    } else {
      const told = queue.splice(0, op.tell);
      sess.controller.tell(
        told.map((p) => ({
          candidate: p.candidate,
          cost: sess.problem.costOf(p.candidate),
          meta: p.meta as Json,
          proxyAccuracy: sess.problem.accuracy(p.candidate),
        })),
      );
    }
  }
  return { proposals, outstanding: queue };
}
