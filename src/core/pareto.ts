import { AutopruneError, ErrorCodes, quote } from './errors.js';

/**
 * Two-objective Pareto utilities: `cost` is minimised (MACs), `value` is maximised (accuracy).
 *
 * Dominance: `a` dominates `b` when a.cost <= b.cost and a.value >= b.value with at least one
 * strict. Ties and duplicates (decided here, tested in test/pareto.test.ts):
 * - Points equal in both objectives do NOT dominate each other: all copies are kept, they share a
 *   front and a rank (the NSGA-II / pymoo convention; ids stay visible, nothing silently vanishes).
 * - Equal cost, different value: the higher value dominates. Equal value, different cost: the lower
 *   cost dominates.
 * - Non-finite objectives (NaN) are rejected with INVALID_ARGUMENT; callers filter failed trials.
 * Functions return the caller's point objects (never copies) and never reorder the input array.
 */
export interface ParetoPoint<Id = string | number> {
  /** Minimised, e.g. MACs. */
  readonly cost: number;
  /** Maximised, e.g. accuracy. */
  readonly value: number;
  readonly id: Id;
}

export function dominates(a: { cost: number; value: number }, b: { cost: number; value: number }): boolean {
  return a.cost <= b.cost && a.value >= b.value && (a.cost < b.cost || a.value > b.value);
}

function check(points: readonly { cost: number; value: number }[]): void {
  for (const p of points) {
    if (Number.isNaN(p.cost) || Number.isNaN(p.value)) {
      throw new AutopruneError(
        ErrorCodes.INVALID_ARGUMENT,
        `Expected Pareto point cost and value to be numbers, got ${quote({ cost: p.cost, value: p.value })}`,
      );
    }
  }
}

/** Indices sorted by cost ascending, then value descending, then input order (stable). */
function sweepOrder(points: readonly { cost: number; value: number }[]): number[] {
  return points.map((_, i) => i).sort((i, j) => points[i].cost - points[j].cost || points[j].value - points[i].value || i - j);
}

/**
 * Ranks in the NSGA-II sense (0 = non-dominated, 1 = non-dominated once rank 0 is removed, ...),
 * in O(n log n): sweep by cost ascending / value descending; every earlier point has cost <= the
 * current one, and along a front value rises with cost, so front k dominates the current point iff
 * its most recently added (highest-value) member does; that predicate holds for a prefix of ranks
 * (dominance is transitive), so the rank is found by binary search.
 * `fronts[k]` lists input indices of rank k in sweep order (cost ascending).
 */
export function nonDominatedSort(points: readonly { cost: number; value: number }[]): {
  ranks: number[];
  fronts: number[][];
} {
  check(points);
  const ranks = new Array<number>(points.length);
  const fronts: number[][] = [];
  for (const i of sweepOrder(points)) {
    const p = points[i];
    let lo = 0;
    let hi = fronts.length; // first front that does not dominate p is in [lo, hi]
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const f = fronts[mid];
      if (dominates(points[f[f.length - 1]], p)) lo = mid + 1;
      else hi = mid;
    }
    if (lo === fronts.length) fronts.push([]);
    fronts[lo].push(i);
    ranks[i] = lo;
  }
  return { ranks, fronts };
}

/** The non-dominated points, in input order. Duplicates of a non-dominated point are all kept. */
export function nonDominated<P extends { cost: number; value: number }>(points: readonly P[]): P[] {
  const { ranks } = nonDominatedSort(points);
  return points.filter((_, i) => ranks[i] === 0);
}

/** The non-dominated points sorted by cost ascending (value is then non-decreasing along it). */
export function paretoFront<P extends { cost: number; value: number }>(points: readonly P[]): P[] {
  const { fronts } = nonDominatedSort(points);
  return (fronts[0] ?? []).map((i) => points[i]);
}

/**
 * Area dominated by `points` inside the reference box (cost <= ref.cost, value >= ref.value): the
 * 2-D hypervolume indicator (as in pymoo's `HV`, with the value axis flipped to maximise). Points
 * outside the box contribute nothing; points on its edge contribute zero area. Units are
 * cost-units x value-units; callers normalise cost (e.g. to a fraction of the base MACs) to compare
 * studies.
 */
export function hypervolume2d(points: readonly { cost: number; value: number }[], ref: { readonly cost: number; readonly value: number }): number {
  check(points);
  if (Number.isNaN(ref.cost) || Number.isNaN(ref.value)) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected a numeric reference point, got ${quote(ref)}`);
  }
  const inside = points.filter((p) => p.cost <= ref.cost && p.value >= ref.value);
  const front = paretoFront(inside);
  let area = 0;
  for (let k = 0; k < front.length; k++) {
    const nextCost = k + 1 < front.length ? front[k + 1].cost : ref.cost;
    area += (nextCost - front[k].cost) * (front[k].value - ref.value);
  }
  return area;
}

/** `a` dominates `b` when all objectives (minimised) are <= and one is <. */
export function dominatesN(a: readonly number[], b: readonly number[]): boolean {
  let strict = false;
  for (let k = 0; k < a.length; k++) {
    if (a[k] > b[k]) return false;
    if (a[k] < b[k]) strict = true;
  }
  return strict;
}

/**
 * Fronts of points with any number of minimised objectives: Deb's fast non-dominated sort
 * (NSGA-II, O(M N^2)), for the 3-objective case the 2-D sweep above does not cover. Same tie
 * rules: equal points share a front. `fronts[k]` lists input indices in input order.
 */
export function nonDominatedSortN(objectives: readonly (readonly number[])[]): number[][] {
  for (const o of objectives) {
    if (o.some((v) => Number.isNaN(v))) {
      throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected objectives to be numbers, got ${quote(o)}`);
    }
  }
  const n = objectives.length;
  const dominated: number[][] = objectives.map(() => []);
  const count = new Array<number>(n).fill(0);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      if (dominatesN(objectives[i], objectives[j])) {
        dominated[i].push(j);
        count[j]++;
      } else if (dominatesN(objectives[j], objectives[i])) {
        dominated[j].push(i);
        count[i]++;
      }
    }
  }
  const fronts: number[][] = [];
  let current = objectives.map((_, i) => i).filter((i) => count[i] === 0);
  while (current.length) {
    fronts.push(current);
    const next: number[] = [];
    for (const i of current) for (const j of dominated[i]) if (--count[j] === 0) next.push(j);
    current = next.sort((a, b) => a - b);
  }
  return fronts;
}

/**
 * NSGA-II crowding distance of each point of ONE front (Deb et al. 2002, §III-B): per objective,
 * the boundary points get Infinity and every other point the gap between its two neighbours in
 * sorted order, divided by the objective's range; summed over objectives. An objective with zero
 * range adds nothing. Ties in sorting keep input order. Returned in input order.
 */
export function crowdingDistance(objectives: readonly (readonly number[])[]): number[] {
  const n = objectives.length;
  const d = new Array<number>(n).fill(0);
  if (n === 0) return d;
  const m = objectives[0].length;
  for (let k = 0; k < m; k++) {
    const order = objectives.map((_, i) => i).sort((i, j) => objectives[i][k] - objectives[j][k] || i - j);
    const lo = objectives[order[0]][k];
    const hi = objectives[order[n - 1]][k];
    d[order[0]] = Infinity;
    d[order[n - 1]] = Infinity;
    if (hi === lo) continue;
    for (let r = 1; r < n - 1; r++) d[order[r]] += (objectives[order[r + 1]][k] - objectives[order[r - 1]][k]) / (hi - lo);
  }
  return d;
}
