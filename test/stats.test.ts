import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kendallTau, kendallTauB, spearman } from '../src/core/stats.js';

// Named cases with hand-counted concordant (C) and discordant (D) pairs: tau = (C - D) / pairs.
const CASES: [string, number[], number[], number][] = [
  ['same order', [1, 2, 3, 4], [10, 20, 30, 40], 1],
  ['reversed', [1, 2, 3, 4], [4, 3, 2, 1], -1],
  ['one swap of neighbours (C=5, D=1)', [1, 2, 3, 4], [1, 3, 2, 4], 4 / 6],
  ['a tie counts as neither (C=2, D=0 of 3)', [1, 2, 3], [1, 1, 2], 2 / 3],
  ['two items', [0.2, 0.1], [0.9, 0.8], 1],
];

for (const [name, a, b, want] of CASES) {
  test(`kendallTau: ${name}`, () => {
    assert.ok(Math.abs(kendallTau(a, b) - want) < 1e-12, `${kendallTau(a, b)} != ${want}`);
  });
}

test('kendallTau: fewer than two items is NaN; unequal lengths throw', () => {
  assert.ok(Number.isNaN(kendallTau([1], [2])));
  assert.throws(() => kendallTau([1, 2], [1]), RangeError);
});

test('spearman and kendallTauB: perfect, reversed, ties, and a hand-computed case', () => {
  assert.equal(spearman([1, 2, 3, 4], [10, 20, 30, 40]), 1);
  assert.equal(spearman([1, 2, 3, 4], [4, 3, 2, 1]), -1);
  assert.equal(kendallTauB([1, 2, 3], [3, 2, 1]), -1);
  // a = [1, 2, 3, 4], b = [1, 3, 2, 4]: ranks differ by d = [0, 1, -1, 0], rho = 1 - 6·2/(4·15) = 0.8;
  // 5 concordant and 1 discordant pairs: tau = 4/6.
  assert.ok(Math.abs(spearman([1, 2, 3, 4], [1, 3, 2, 4]) - 0.8) < 1e-12);
  assert.ok(Math.abs(kendallTauB([1, 2, 3, 4], [1, 3, 2, 4]) - 4 / 6) < 1e-12);
  // One tie in a: pairs (c, d, tiedA) = (5, 0, 1): tau-b = 5/sqrt(6·5) (tau-a would say 5/6).
  assert.ok(Math.abs(kendallTauB([1, 1, 2, 3], [1, 2, 3, 4]) - 5 / Math.sqrt(30)) < 1e-12);
  assert.throws(() => spearman([1], [1, 2]), RangeError);
});
