import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isAutopruneError } from '../src/core/errors.js';
import { dominates, hypervolume2d, nonDominated, nonDominatedSort, paretoFront } from '../src/core/pareto.js';
import { Rng } from '../src/core/rng.js';

interface P {
  cost: number;
  value: number;
  id: number;
}

// ---- naive references (O(n^2) dominance, O(n^3) rectangle union) ---------------------------------

function naiveDominates(a: P, b: P): boolean {
  const noWorse = a.cost <= b.cost && a.value >= b.value;
  const better = a.cost < b.cost || a.value > b.value;
  return noWorse && better;
}

function naiveNonDominatedIds(points: P[]): number[] {
  return points.filter((p) => !points.some((q) => naiveDominates(q, p))).map((p) => p.id);
}

/** Peel fronts one at a time with the O(n^2) check. */
function naiveRanks(points: P[]): Map<number, number> {
  const ranks = new Map<number, number>();
  let rest = points.slice();
  let rank = 0;
  while (rest.length > 0) {
    const front = rest.filter((p) => !rest.some((q) => naiveDominates(q, p)));
    for (const p of front) ranks.set(p.id, rank);
    rest = rest.filter((p) => !front.includes(p));
    rank++;
  }
  return ranks;
}

/** Exact area of the union of rectangles [p.cost, ref.cost] x [ref.value, p.value], cell by cell. */
function naiveHypervolume(points: P[], ref: { cost: number; value: number }): number {
  const boxes = points.filter((p) => p.cost <= ref.cost && p.value >= ref.value).map((p) => ({ x0: p.cost, x1: ref.cost, y0: ref.value, y1: p.value }));
  const xs = [...new Set(boxes.flatMap((b) => [b.x0, b.x1]))].sort((a, b) => a - b);
  const ys = [...new Set(boxes.flatMap((b) => [b.y0, b.y1]))].sort((a, b) => a - b);
  let area = 0;
  for (let i = 0; i + 1 < xs.length; i++) {
    for (let j = 0; j + 1 < ys.length; j++) {
      const cx = (xs[i] + xs[i + 1]) / 2;
      const cy = (ys[j] + ys[j + 1]) / 2;
      if (boxes.some((b) => b.x0 <= cx && cx <= b.x1 && b.y0 <= cy && cy <= b.y1)) {
        area += (xs[i + 1] - xs[i]) * (ys[j + 1] - ys[j]);
      }
    }
  }
  return area;
}

function randomPoints(rng: Rng, n: number, grid: number | null): P[] {
  // With a coarse grid, ties and duplicates are frequent, which is where sweeps go wrong.
  const draw = (): number => (grid === null ? rng.next() : rng.int(grid) / grid);
  return Array.from({ length: n }, (_, id) => ({ cost: draw(), value: draw(), id }));
}

const sortedIds = (ps: { id: number }[]): number[] => ps.map((p) => p.id).sort((a, b) => a - b);

// ---- randomised comparison with the references -------------------------------------------------

test('nonDominated / paretoFront / nonDominatedSort / hypervolume2d match naive references on seeded sets', () => {
  const rng = new Rng('pareto-oracle');
  for (let round = 0; round < 300; round++) {
    const n = rng.int(40);
    const grid = round % 3 === 0 ? null : 2 + rng.int(8);
    const pts = randomPoints(rng, n, grid);

    const nd = nonDominated(pts);
    assert.deepEqual(
      sortedIds(nd),
      naiveNonDominatedIds(pts).sort((a, b) => a - b),
      `round ${round}`,
    );
    // input order is preserved
    assert.deepEqual(
      nd.map((p) => p.id),
      pts.filter((p) => nd.includes(p)).map((p) => p.id),
    );

    const front = paretoFront(pts);
    assert.deepEqual(sortedIds(front), sortedIds(nd));
    for (let k = 1; k < front.length; k++) {
      assert.ok(front[k - 1].cost <= front[k].cost, 'front sorted by cost');
      assert.ok(front[k - 1].value <= front[k].value, 'value non-decreasing along the front');
    }

    const { ranks, fronts } = nonDominatedSort(pts);
    const ref = naiveRanks(pts);
    pts.forEach((p, i) => assert.equal(ranks[i], ref.get(p.id), `rank of ${p.id} in round ${round}`));
    assert.equal(fronts.flat().length, n);
    fronts.forEach((f, k) => f.forEach((i) => assert.equal(ranks[i], k)));

    const r = { cost: rng.uniform(0.5, 1.2), value: rng.uniform(-0.2, 0.5) };
    const hv = hypervolume2d(pts, r);
    assert.ok(Math.abs(hv - naiveHypervolume(pts, r)) < 1e-12, `hypervolume in round ${round}`);
  }
});

test('hypervolume2d is monotone when points are added', () => {
  const rng = new Rng(7);
  const pts: P[] = [];
  let last = 0;
  for (let i = 0; i < 200; i++) {
    pts.push({ cost: rng.next(), value: rng.next(), id: i });
    const hv = hypervolume2d(pts, { cost: 1, value: 0 });
    assert.ok(hv >= last);
    last = hv;
  }
});

// ---- named edge cases ----------------------------------------------------------------------------

const p = (id: number, cost: number, value: number): P => ({ id, cost, value });
const REF = { cost: 10, value: 0 };

const cases: {
  name: string;
  points: P[];
  front: number[]; // ids, cost-ascending order
  ranks: number[]; // per input point
  hv: number; // with REF
}[] = [
  { name: 'empty', points: [], front: [], ranks: [], hv: 0 },
  { name: 'single point', points: [p(0, 4, 0.5)], front: [0], ranks: [0], hv: 6 * 0.5 },
  {
    name: 'duplicates are all kept, same rank',
    points: [p(0, 4, 0.5), p(1, 4, 0.5), p(2, 6, 0.4)],
    front: [0, 1],
    ranks: [0, 0, 1],
    hv: 6 * 0.5,
  },
  {
    name: 'duplicates of a dominated point share a lower rank',
    points: [p(0, 6, 0.4), p(1, 2, 0.9), p(2, 6, 0.4)],
    front: [1],
    ranks: [1, 0, 1],
    hv: 8 * 0.9,
  },
  {
    name: 'all dominated except one',
    points: [p(0, 5, 0.5), p(1, 1, 0.9), p(2, 3, 0.8), p(3, 9, 0.1)],
    front: [1],
    ranks: [2, 0, 1, 3],
    hv: 9 * 0.9,
  },
  {
    name: 'collinear trade-off: all non-dominated',
    points: [p(0, 2, 0.2), p(1, 4, 0.4), p(2, 6, 0.6), p(3, 8, 0.8)],
    front: [0, 1, 2, 3],
    ranks: [0, 0, 0, 0],
    hv: 2 * 0.2 + 2 * 0.4 + 2 * 0.6 + 2 * 0.8,
  },
  {
    name: 'collinear chain: each dominates the next',
    points: [p(0, 2, 0.8), p(1, 4, 0.6), p(2, 6, 0.4)],
    front: [0],
    ranks: [0, 1, 2],
    hv: 8 * 0.8,
  },
  {
    name: 'points outside the reference box contribute nothing (but are still on the front)',
    points: [p(0, 12, 0.99), p(1, 5, -0.5), p(2, 5, 0.5)],
    front: [2, 0],
    ranks: [0, 1, 0],
    hv: 5 * 0.5,
  },
  {
    name: 'equal cost, different value: higher value wins',
    points: [p(0, 3, 0.4), p(1, 3, 0.7)],
    front: [1],
    ranks: [1, 0],
    hv: 7 * 0.7,
  },
  {
    name: 'equal value, different cost: lower cost wins',
    points: [p(0, 7, 0.6), p(1, 3, 0.6)],
    front: [1],
    ranks: [1, 0],
    hv: 7 * 0.6,
  },
  {
    name: 'point on the reference edge adds zero area',
    points: [p(0, 10, 0.9), p(1, 4, 0)],
    front: [1, 0],
    ranks: [0, 0],
    hv: 0,
  },
];

for (const c of cases) {
  test(`edge case: ${c.name}`, () => {
    assert.deepEqual(
      paretoFront(c.points).map((q) => q.id),
      c.front,
    );
    assert.deepEqual(
      sortedIds(nonDominated(c.points)),
      [...c.front].sort((a, b) => a - b),
    );
    assert.deepEqual(nonDominatedSort(c.points).ranks, c.ranks);
    assert.ok(Math.abs(hypervolume2d(c.points, REF) - c.hv) < 1e-12, `hv ${hypervolume2d(c.points, REF)} vs ${c.hv}`);
    assert.ok(Math.abs(naiveHypervolume(c.points, REF) - c.hv) < 1e-12, 'table agrees with the naive reference');
  });
}

test('dominates: equal points do not dominate each other', () => {
  assert.equal(dominates({ cost: 1, value: 1 }, { cost: 1, value: 1 }), false);
  assert.equal(dominates({ cost: 1, value: 1 }, { cost: 2, value: 1 }), true);
  assert.equal(dominates({ cost: 2, value: 1 }, { cost: 1, value: 1 }), false);
});

test('NaN objectives are rejected with INVALID_ARGUMENT', () => {
  assert.throws(
    () => paretoFront([{ cost: NaN, value: 1 }]),
    (e: unknown) => isAutopruneError(e) && e.code === 'INVALID_ARGUMENT',
  );
  assert.throws(
    () => hypervolume2d([], { cost: 1, value: NaN }),
    (e: unknown) => isAutopruneError(e),
  );
});
