/**
 * A synthetic pruning problem with a known optimum, needing no model.
 *
 * Topology: ResNet-20 for 32x32x3 inputs (He et al. 2016): a 3x3 stem, three stages of three
 * basic blocks (widths w1, w2, w3 at 32x32, 16x16, 8x8), 1x1 projection shortcuts where the width or
 * resolution changes, global pooling and a 10-way dense layer. Channel groups as the analysis makes
 * them: one per stage (the stem / projection and every block's second conv, coupled by the residual
 * adds) and one per block's first conv — 12 groups. MACs and params are counted as src/model/flops.ts
 * does (convs and dense only; BN counts 4 params per channel).
 *
 * Accuracy surrogate, separable and fixed: acc = BASE - sum_g s_g * ((1 - r_g) / (1 - r_min))^2,
 * r_g the kept fraction of group g, with sensitivities s_g spanning two orders of magnitude (the
 * stage groups and the first block of each stage matter; late inner convs barely do).
 *
 * Exact Pareto front: given the three stage widths, MACs are linear in each block's inner width and
 * the surrogate is additive, so each stage's (MACs, accuracy) options are independent; the front is
 * the non-dominated union over stage-width combinations of per-stage fronts combined exhaustively
 * (dominated per-stage options cannot be part of a non-dominated total). test/synthetic.test.ts checks
 * this against brute force on a smaller instance.
 */

import { channelLevels } from '../src/controllers/common.js';
import type { GroupDescriptor } from '../src/controllers/types.js';
import { paretoFront } from '../src/core/pareto.js';
import { type Candidate, fullCandidate, type SearchSpace } from '../src/core/space.js';
import type { Cost } from '../src/core/types.js';

export interface ProblemOptions {
  readonly widths: readonly [number, number, number];
  readonly minKeepRatio: number;
  readonly channelStep: number;
  /** Group ids never pruned. Default none. */
  readonly skip?: readonly string[];
}

export const DEFAULT_PROBLEM: ProblemOptions = { widths: [16, 32, 64], minKeepRatio: 0.25, channelStep: 4 };
export const BASE_ACCURACY = 0.92;

/** Sensitivity per group, in group order (see GROUP_IDS). */
const SENSITIVITY = [0.1, 0.08, 0.01, 0.005, 0.05, 0.06, 0.004, 0.002, 0.03, 0.04, 0.001, 0.001];
export const GROUP_IDS = ['stage1', 'b1.1', 'b1.2', 'b1.3', 'b2.1', 'stage2', 'b2.2', 'b2.3', 'b3.1', 'stage3', 'b3.2', 'b3.3'];
/** Group index of stage k's shared width and of block (k, i)'s inner width. */
const STAGE = [0, 5, 9];
const BLOCK = [
  [1, 2, 3],
  [4, 6, 7],
  [8, 10, 11],
];
const SPATIAL = [32, 16, 8];

interface Conv {
  readonly cin: number | 'rgb';
  readonly cout: number;
  readonly k: number;
  readonly hw: number;
}

export interface Problem {
  readonly space: SearchSpace;
  readonly costOf: (c: Candidate) => Cost;
  readonly baseCost: Cost;
  readonly accuracy: (c: Candidate) => number;
  readonly groups: readonly GroupDescriptor[];
}

function convs(): Conv[] {
  const out: Conv[] = [{ cin: 'rgb', cout: STAGE[0], k: 3, hw: 32 }];
  for (let s = 0; s < 3; s++) {
    for (let b = 0; b < 3; b++) {
      const cin = b === 0 && s > 0 ? STAGE[s - 1] : STAGE[s];
      out.push({ cin, cout: BLOCK[s][b], k: 3, hw: SPATIAL[s] }, { cin: BLOCK[s][b], cout: STAGE[s], k: 3, hw: SPATIAL[s] });
      if (b === 0 && s > 0) out.push({ cin: STAGE[s - 1], cout: STAGE[s], k: 1, hw: SPATIAL[s] });
    }
  }
  return out;
}

export function makeProblem(o: ProblemOptions = DEFAULT_PROBLEM): Problem {
  const widthOf = (g: number): number => o.widths[STAGE.includes(g) ? STAGE.indexOf(g) : BLOCK.findIndex((b) => b.includes(g))];
  const space: SearchSpace = {
    groups: GROUP_IDS.map((id, g) => ({ id, channels: widthOf(g), layers: [id] })),
    options: { minKeepRatio: o.minKeepRatio, channelStep: o.channelStep, skip: [...(o.skip ?? [])] },
  };
  const layers = convs();
  const costOf = (c: Candidate): Cost => {
    let macs = 0;
    let params = 0;
    for (const l of layers) {
      const cin = l.cin === 'rgb' ? 3 : c.channels[l.cin];
      const w = l.k * l.k * cin * c.channels[l.cout];
      macs += w * l.hw * l.hw;
      params += w + 4 * c.channels[l.cout];
    }
    const last = c.channels[STAGE[2]];
    return { macs: macs + last * 10, params: params + last * 10 + 10 };
  };
  const full = fullCandidate(space);
  const accuracy = (c: Candidate): number =>
    BASE_ACCURACY - c.channels.reduce((a, n, g) => a + SENSITIVITY[g] * ((1 - n / space.groups[g].channels) / (1 - o.minKeepRatio)) ** 2, 0);
  const groups = space.groups.map((_, g): GroupDescriptor => {
    const own = layers.filter((l) => l.cout === g);
    const first = own[0];
    return {
      kind: 'conv',
      inChannels: first.cin === 'rgb' ? 3 : full.channels[first.cin],
      outChannels: full.channels[g],
      stride: g === BLOCK[1][0] || g === BLOCK[2][0] ? 2 : 1,
      kernel: first.k * first.k,
      params: own.reduce((a, l) => a + l.k * l.k * (l.cin === 'rgb' ? 3 : full.channels[l.cin]) * full.channels[g], 0),
      macs: own.reduce((a, l) => a + l.k * l.k * (l.cin === 'rgb' ? 3 : full.channels[l.cin]) * full.channels[g] * l.hw * l.hw, 0),
    };
  });
  return { space, costOf, baseCost: costOf(full), accuracy, groups };
}

export interface FrontPoint {
  readonly cost: number;
  readonly value: number;
}

/** The exact (MACs fraction, accuracy) Pareto front of the problem (see the header). */
export function exactFront(p: Problem): FrontPoint[] {
  const { space } = p;
  const lv = (g: number): number[] => channelLevels(space, g);
  const points: FrontPoint[] = [];
  const full = fullCandidate(space).channels;
  // A stage's options depend only on its own width and the previous stage's (its first block's input).
  const memo = new Map<string, FrontPoint[]>();
  const stage = (base: number[], k: number): FrontPoint[] => {
    const key = `${k}:${base[STAGE[k]]}:${k > 0 ? base[STAGE[k - 1]] : 0}`;
    if (!memo.has(key)) memo.set(key, stageFront(p, base, BLOCK[k]));
    return memo.get(key)!;
  };
  for (const s1 of lv(STAGE[0]))
    for (const s2 of lv(STAGE[1]))
      for (const s3 of lv(STAGE[2])) {
        const widths = [s1, s2, s3];
        const base = [...full];
        STAGE.forEach((g, k) => (base[g] = widths[k]));
        BLOCK.flat().forEach((g) => (base[g] = 0));
        // With every inner width 0 only the stem, projections, dense layer and stage penalties remain.
        const fixedCost = p.costOf({ channels: base }).macs;
        const fixedAcc = p.accuracy({ channels: base.map((n, g) => (BLOCK.flat().includes(g) ? space.groups[g].channels : n)) });
        const [f1, f2, f3] = [0, 1, 2].map((k) => stage(base, k));
        for (const q of combine(combine(f1, f2), f3)) points.push({ cost: (fixedCost + q.cost) / p.baseCost.macs, value: fixedAcc + q.value });
      }
  return paretoFront(points).map((q) => ({ cost: q.cost, value: q.value }));
}

/** Non-dominated sums of one option from each front (exact: a dominated part cannot make a non-dominated sum). */
function combine(a: readonly FrontPoint[], b: readonly FrontPoint[]): FrontPoint[] {
  const sums: FrontPoint[] = [];
  for (const x of a) for (const y of b) sums.push({ cost: x.cost + y.cost, value: x.value + y.value });
  return paretoFront(sums);
}

/** Non-dominated (extra MACs, accuracy change) options of one stage's inner widths, the stage widths fixed in `base`. */
function stageFront(p: Problem, base: readonly number[], blocks: readonly number[]): FrontPoint[] {
  const zero = p.costOf({ channels: [...base] }).macs;
  const options: FrontPoint[] = [];
  const rec = (i: number, c: number[]): void => {
    if (i === blocks.length) {
      const full = p.space.groups.map((g) => g.channels);
      blocks.forEach((g) => (full[g] = c[g]));
      options.push({ cost: p.costOf({ channels: c }).macs - zero, value: p.accuracy({ channels: full }) - BASE_ACCURACY });
      return;
    }
    for (const n of channelLevels(p.space, blocks[i])) {
      const next = [...c];
      next[blocks[i]] = n;
      rec(i + 1, next);
    }
  };
  rec(0, [...base]);
  return paretoFront(options).map((q) => ({ cost: q.cost, value: q.value }));
}
