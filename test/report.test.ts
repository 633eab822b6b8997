import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isAutopruneError } from '../src/core/errors.js';
import type { TrialState } from '../src/core/types.js';
import {
  buildCompareInfo,
  buildReportInfo,
  escapeHtml,
  escapeMarkdownCell,
  paretoDatasets,
  pickCandidates,
  renderCompareChart,
  renderCompareHtml,
  renderCompareMarkdown,
  renderHtml,
  renderMarkdown,
  renderParetoChart,
  renderProgressChart,
  targetLabel,
  withinTarget,
  writeReport,
} from '../src/report/index.js';
import type { FinalRecord, Json, StudyRecord, TrialRecord } from '../src/store/types.js';

// ---- hand-built records ------------------------------------------------------------------------------

const M = 1e6;
const NASTY_GROUP = `blk|1&"'`;

function study(over: Partial<StudyRecord> = {}): StudyRecord {
  return {
    name: 'cnn-a',
    configHash: 'abc123',
    config: { search: { targets: [0.25, 0.5], window: 0.05 } },
    space: {
      groups: [
        { id: 'stem', channels: 32, layers: ['stem'] },
        { id: NASTY_GROUP, channels: 64, layers: ['b1'] },
      ],
      options: { minKeepRatio: 0.25, channelStep: 1, skip: [] },
    },
    baseCost: { macs: 100 * M, params: 1 * M },
    baseProxyAccuracy: 0.9,
    baseTestAccuracy: 0.91,
    inputs: null,
    state: 'complete',
    createdAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T01:00:00.000Z',
    ...over,
  };
}

interface T {
  n: number;
  controller: string;
  macs: number;
  params?: number;
  proxy?: number;
  state?: TrialState;
  target?: number;
  latencyMs?: number;
  error?: string;
  /** minutes after 00:00 when it finished */
  done?: number;
  channels?: [number, number];
}

function trial(t: T, studyName = 'cnn-a'): TrialRecord {
  const state = t.state ?? 'complete';
  const meta: Json = t.target === undefined ? {} : { target: t.target };
  const channels = t.channels ?? [32, 64];
  return {
    study: studyName,
    number: t.n,
    candidate: { channels },
    key: channels.join(','),
    cost: { macs: t.macs, params: t.params ?? 0.5 * M },
    controller: t.controller,
    meta,
    state,
    stage: 'proxy',
    parent: null,
    attempts: 1,
    metrics: state === 'complete' ? { proxyAccuracy: t.proxy, ...(t.latencyMs === undefined ? {} : { latencyMs: t.latencyMs }) } : {},
    error: t.error ?? null,
    worker: null,
    createdAt: `2024-01-01T00:${String(t.n).padStart(2, '0')}:00.000Z`,
    startedAt: null,
    finishedAt: t.done === undefined ? null : `2024-01-01T00:${String(t.done).padStart(2, '0')}:30.000Z`,
    finishSeq: t.done ?? null,
  };
}

const TRIALS: TrialRecord[] = [
  trial({ n: 0, controller: 'uniform', macs: 75 * M, params: 0.8 * M, proxy: 0.88, target: 0.75, latencyMs: 2.0, done: 1, channels: [24, 48] }),
  trial({ n: 1, controller: 'uniform', macs: 50 * M, params: 0.6 * M, proxy: 0.85, target: 0.5, done: 2, channels: [16, 32] }),
  trial({ n: 2, controller: 'uniform', macs: 25 * M, params: 0.3 * M, proxy: 0.7, target: 0.25, done: 9, channels: [8, 16] }),
  trial({ n: 3, controller: 'random', macs: 50 * M, params: 0.55 * M, proxy: 0.87, done: 4, channels: [32, 16] }),
  trial({ n: 4, controller: 'random', macs: 40 * M, params: 0.5 * M, proxy: 0.8, done: 5, channels: [16, 24] }),
  trial({ n: 5, controller: 'random', macs: 25 * M, params: 0.3 * M, proxy: 0.72, target: 0.25, done: 6, channels: [8, 24] }),
  trial({ n: 6, controller: 'random', macs: 30 * M, state: 'failed', error: '<oops> | bad', done: 7 }),
  trial({ n: 7, controller: 'evolutionary', macs: 60 * M, params: 0.7 * M, proxy: 0.85, done: 8 }),
  trial({ n: 8, controller: 'evolutionary', macs: 45 * M, state: 'running' }),
];

function final(trialNo: number, acc: number, latencyMs: number | null, studyName = 'cnn-a'): FinalRecord {
  return {
    study: studyName,
    trial: trialNo,
    finalAccuracy: acc,
    latencyMs,
    epochs: 2,
    modelPath: null,
    seconds: 10,
    createdAt: '2024-01-01T02:00:00.000Z',
  };
}

const FINALS: FinalRecord[] = [final(3, 0.895, 1.5), final(5, 0.8, 0.9), final(4, 0.79, 1.2)];

const close = (a: number | null, b: number): void => {
  assert.ok(a !== null && Math.abs(a - b) < 1e-12, `${a} !== ${b}`);
};
const trialsOf = (ps: readonly { trial: number }[]): number[] => ps.map((p) => p.trial);

// ---- report data --------------------------------------------------------------------------------------

test('fronts, baseline, infeasible, failed and candidates', () => {
  const info = buildReportInfo(study(), TRIALS, FINALS);
  assert.deepEqual(trialsOf(info.proxyFront), [5, 4, 3, 0]);
  assert.deepEqual(trialsOf(info.finalFront), [5, 3]); // (25M, .80) dominates (40M, .79)
  assert.deepEqual(trialsOf(info.baseline), [2, 1, 0]);
  assert.deepEqual(trialsOf(info.infeasible), [4, 7]); // 40%: 0.10 from 50%; 60%: 0.10 from 50%
  assert.deepEqual(trialsOf(info.failed), [6]);
  assert.deepEqual(trialsOf(info.candidates), [5, 4, 3, 0]);
  assert.deepEqual(trialsOf(info.rows), [2, 5, 4, 1, 3, 7, 0]);
  assert.deepEqual(trialsOf(info.points), [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(info.counts, { total: 9, complete: 7, failed: 1, pending: 1, finalists: 3 });
  // Finalists 3, 4, 5: proxy ranks 3 > 4 > 5, fine-tuned 3 > 5 > 4: two concordant pairs, one discordant.
  close(info.proxyFinalTau, 1 / 3);
  assert.equal(buildReportInfo(study(), TRIALS, FINALS.slice(0, 2)).proxyFinalTau, null);
  assert.deepEqual(info.targets, [0.5, 0.25]);
  assert.equal(info.targetsFromConfig, true);
  assert.equal(info.window, 0.05);
  assert.equal(info.points[7].feasible, false); // 60%: no target in meta, no configured target within 5%
  assert.equal(info.points[0].feasible, true); // own target 0.75 even though the config lists only 0.5, 0.25
  assert.deepEqual(
    info.groups.map((g) => g.id),
    ['stem', NASTY_GROUP],
  );
  assert.deepEqual(info.points[3].keepRatios, [1, 0.25]);
  assert.equal(info.wallSeconds, 9 * 60 + 30); // 00:00:00 -> 00:09:30
});

test('the summary says which engine fine-tuned the finalists, when the store recorded it', () => {
  const md = (finals: FinalRecord[]) => renderMarkdown(buildReportInfo(study(), TRIALS, finals), { pareto: 'p.png', progress: 'q.png' });
  assert.match(md(FINALS), /, 3 fine-tuned\)/, 'finals from before the engine was recorded: nothing claimed');
  const mixed = FINALS.map((f, i) => ({ ...f, trainEngine: i === 0 ? 'wasm' : 'libtorch' }));
  assert.match(md(mixed), /, 3 fine-tuned on libtorch and wasm\)/);
  const html = renderHtml(buildReportInfo(study(), TRIALS, mixed.slice(1)), { pareto: Buffer.alloc(0), progress: Buffer.alloc(0) });
  assert.match(html, / fine-tuned on libtorch\)/);
});

test('percent, speed-up and deltas are exact', () => {
  const info = buildReportInfo(study(), TRIALS, FINALS);
  const p = (n: number) => info.points[n];
  assert.equal(p(0).flopsFraction, 0.75);
  assert.equal(p(0).speedup, 100 / 75);
  assert.equal(p(2).speedup, 4);
  assert.equal(p(4).speedup, 2.5);
  assert.equal(p(4).flopsFraction, 0.4);
  assert.equal(p(1).paramsFraction, 0.6);
  close(p(0).deltaProxy, 0.88 - 0.9);
  assert.equal(p(0).deltaFinal, null);
  assert.equal(p(0).finalAccuracy, null);
  close(p(3).deltaFinal, 0.895 - 0.91);
  close(p(5).deltaFinal, 0.8 - 0.91);
  assert.equal(p(3).finalist, true);
  assert.equal(p(3).latencyMs, 1.5); // the fine-tuned model's latency wins (both on tfjs)
  // A trial whose latency onnxruntime measured keeps it beside a finalist's tfjs latency.
  const ort = TRIALS.map((t) => (t.number === 3 ? { ...t, metrics: { ...t.metrics, latencyMs: 0.2, timings: { 'latency@onnxruntime': 0.01 } } } : t));
  assert.equal(buildReportInfo(study(), ort, FINALS).rows.find((r) => r.trial === 3)!.latencyMs, 0.2);
  assert.equal(p(0).latencyMs, 2.0);
  assert.equal(p(1).latencyMs, null);
  // no base accuracies -> no deltas
  const bare = buildReportInfo(study({ baseProxyAccuracy: null, baseTestAccuracy: null }), TRIALS, FINALS);
  assert.equal(bare.points[3].deltaFinal, null);
  assert.equal(bare.points[3].deltaProxy, null);
});

test('progress: hypervolume non-decreasing, exact final value, best at targets', () => {
  const info = buildReportInfo(study(), TRIALS, FINALS);
  const steps = info.progress.byNumber;
  assert.deepEqual(trialsOf(steps), [0, 1, 2, 3, 4, 5, 7]);
  assert.deepEqual(
    steps.map((s) => s.completed),
    [1, 2, 3, 4, 5, 6, 7],
  );
  for (let i = 1; i < steps.length; i++) assert.ok(steps[i].hypervolume >= steps[i - 1].hypervolume);
  // front (0.25,.72) (0.4,.80) (0.5,.87) (0.75,.88), ref (1, 0)
  const hv = 0.15 * 0.72 + 0.1 * 0.8 + 0.25 * 0.87 + 0.25 * 0.88;
  close(steps[steps.length - 1].hypervolume, hv);
  close(info.hypervolume, hv);
  close(steps[0].hypervolume, 0.25 * 0.88);
  // targets [0.5, 0.25]
  assert.deepEqual(steps[0].bestAtTarget, [null, null]);
  assert.deepEqual(steps[1].bestAtTarget, [0.85, null]);
  assert.deepEqual(steps[2].bestAtTarget, [0.85, 0.7]);
  assert.deepEqual(steps[steps.length - 1].bestAtTarget, [0.87, 0.72]);
  assert.equal(steps[steps.length - 1].bestProxyAccuracy, 0.88);
  // by finish time trial 2 (finished at :09) comes last
  assert.deepEqual(trialsOf(info.progress.byTime), [0, 1, 3, 4, 5, 7, 2]);
  assert.equal(info.progress.byTime[0].seconds, 90);
  const t = info.progress.byTime;
  for (let i = 1; i < t.length; i++) assert.ok(t[i].hypervolume >= t[i - 1].hypervolume);
  close(t[t.length - 1].hypervolume, hv);
});

test('config without targets uses the default targets and reports no feasibility', () => {
  const info = buildReportInfo(study({ config: { search: 'nonsense' } }), TRIALS, FINALS);
  assert.deepEqual(info.targets, [0.75, 0.5, 0.25]);
  assert.equal(info.targetsFromConfig, false);
  assert.equal(info.window, null);
  assert.ok(info.points.every((p) => p.feasible === null));
  assert.deepEqual(info.infeasible, []);
});

test('pick: ranking by final-else-proxy accuracy, ties by fewer MACs', () => {
  const info = buildReportInfo(study(), TRIALS, FINALS);
  const all = pickCandidates(info, {});
  assert.deepEqual(trialsOf(all.map((r) => r.point)), [3, 0, 1, 7, 5, 4, 2]); // 1 and 7 tie at .85: 50M < 60M
  assert.deepEqual(
    all.map((r) => r.rank),
    [1, 2, 3, 4, 5, 6, 7],
  );
  assert.equal(all[0].accuracySource, 'final');
  assert.equal(all[0].accuracy, 0.895);
  assert.equal(all[1].accuracySource, 'proxy');
});

test('pick: each constraint excludes what it should', () => {
  const info = buildReportInfo(study(), TRIALS, FINALS);
  const pick = (c: Parameters<typeof pickCandidates>[1]) => trialsOf(pickCandidates(info, c).map((r) => r.point));
  assert.deepEqual(pick({ maxFlops: 0.5 }), [3, 1, 5, 4, 2]); // drops 0 (75%) and 7 (60%)
  assert.deepEqual(pick({ maxParams: 0.5 * M }), [5, 4, 2]);
  assert.deepEqual(pick({ maxLatencyMs: 1.3 }), [5, 4]); // unmeasured latency is excluded
  assert.deepEqual(pick({ minAccuracy: 0.85 }), [3, 0, 1, 7]);
  assert.deepEqual(pick({ maxFlops: 0.5, minAccuracy: 0.8 }), [3, 1, 5]);
  assert.deepEqual(pick({ maxFlops: 0.1 }), []);
  for (const bad of [{ minAccuracy: 85 }, { maxFlops: -1 }, { maxParams: NaN }]) {
    assert.throws(
      () => pickCandidates(info, bad),
      (e: unknown) => isAutopruneError(e) && e.code === 'INVALID_ARGUMENT',
    );
  }
});

test('compare: hypervolume, best at targets, counts, wall time, same base', () => {
  const b = study({ name: 'cnn-b', config: {} });
  const bTrials = [
    trial({ n: 0, controller: 'uniform', macs: 50 * M, proxy: 0.8, done: 3 }, 'cnn-b'),
    trial({ n: 1, controller: 'uniform', macs: 25 * M, proxy: 0.6, done: 20 }, 'cnn-b'),
  ];
  const info = buildCompareInfo([
    { study: study(), trials: TRIALS, finals: FINALS },
    { study: b, trials: bTrials, finals: [] },
  ]);
  assert.deepEqual(info.targets, [0.75, 0.5, 0.25]);
  assert.equal(info.sameBase, true);
  const [a, bb] = info.studies;
  assert.equal(a.name, 'cnn-a');
  assert.equal(a.trials, 9);
  assert.equal(a.complete, 7);
  close(a.hypervolume, 0.15 * 0.72 + 0.1 * 0.8 + 0.25 * 0.87 + 0.25 * 0.88);
  close(bb.hypervolume, 0.25 * 0.6 + 0.5 * 0.8);
  assert.deepEqual(a.bestAtTarget, [0.88, 0.87, 0.72]);
  assert.deepEqual(bb.bestAtTarget, [0.8, 0.8, 0.6]);
  assert.equal(a.wallSeconds, 570);
  assert.equal(bb.wallSeconds, 20 * 60 + 30);
  assert.deepEqual(
    bb.front.map((p) => p.trial),
    [1, 0],
  );

  const other = buildCompareInfo([
    { study: study(), trials: TRIALS, finals: FINALS },
    { study: study({ name: 'c', baseCost: { macs: 200 * M, params: M } }), trials: [], finals: [] },
  ]);
  assert.equal(other.sameBase, false);
  assert.equal(other.studies[1].hypervolume, 0);
  assert.deepEqual(other.studies[1].bestAtTarget, [null, null]);
});

test('empty study builds and renders', () => {
  const info = buildReportInfo(study(), [], []);
  assert.equal(info.hypervolume, 0);
  assert.deepEqual(info.progress.byNumber, []);
  assert.equal(info.wallSeconds, null);
  assert.ok(renderHtml(info, { pareto: renderParetoChart(info), progress: renderProgressChart(info) }).includes('</html>'));
  assert.ok(renderMarkdown(info, { pareto: 'p.png', progress: 'q.png' }).includes('No completed trials yet.'));
});

test('base MACs of zero is rejected', () => {
  assert.throws(
    () => buildReportInfo(study({ baseCost: { macs: 0, params: 0 } }), [], []),
    (e: unknown) => isAutopruneError(e) && e.code === 'INVALID_ARGUMENT',
  );
});

// ---- PNGs: header only, never pixels ------------------------------------------------------------------

function pngSize(buf: Buffer): { width: number; height: number } {
  assert.deepEqual([...buf.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
  assert.equal(buf.readUInt32BE(8), 13, 'IHDR length');
  assert.equal(buf.subarray(12, 16).toString('ascii'), 'IHDR');
  return { width: buf.readUInt32BE(16), height: buf.readUInt32BE(20) };
}

test('charts are PNGs of the requested size', () => {
  const info = buildReportInfo(study(), TRIALS, FINALS);
  const cmp = buildCompareInfo([
    { study: study(), trials: TRIALS, finals: FINALS },
    { study: study({ name: 'b' }), trials: TRIALS.slice(0, 3), finals: [] },
  ]);
  assert.deepEqual(pngSize(renderParetoChart(info)), { width: 1000, height: 600 });
  assert.deepEqual(pngSize(renderProgressChart(info)), { width: 1000, height: 600 });
  assert.deepEqual(pngSize(renderCompareChart(cmp)), { width: 1000, height: 600 });
  const size = { width: 640, height: 480 };
  assert.deepEqual(pngSize(renderParetoChart(info, size)), size);
  assert.deepEqual(pngSize(renderProgressChart(info, size)), size);
  assert.deepEqual(pngSize(renderCompareChart(cmp, size)), size);
  assert.throws(
    () => renderParetoChart(info, { width: 0 }),
    (e: unknown) => isAutopruneError(e),
  );
});

// ---- HTML / Markdown escaping ---------------------------------------------------------------------------

test('escapeHtml escapes the five specials', () => {
  assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
});

test('HTML escapes study name, group ids, controller and error text', () => {
  const name = '<script>alert(1)</script>';
  const s = study({ name, config: { search: { targets: [0.5], window: 0.05 }, note: '<img src=x onerror=alert(2)>' } });
  const trials = [...TRIALS.slice(0, 7), trial({ n: 7, controller: '<b>evo</b>', macs: 60 * M, proxy: 0.85, done: 8 })];
  const info = buildReportInfo(s, trials, FINALS);
  const png = renderParetoChart(info, { width: 200, height: 120 });
  const html = renderHtml(info, { pareto: png, progress: png });
  assert.ok(!html.includes(name));
  assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  assert.ok(!html.includes(NASTY_GROUP));
  assert.ok(html.includes('blk|1&amp;&quot;&#39;'));
  assert.ok(!html.includes('<oops>'));
  assert.ok(html.includes('&lt;oops&gt; | bad'));
  assert.ok(!html.includes('<b>evo</b>'));
  assert.ok(!html.includes('<img src=x'));
  assert.ok(html.includes(`data:image/png;base64,${png.toString('base64')}`));
  assert.equal(html.match(/<script>/g)?.length, 1, 'only the sort script');

  const cmpHtml = renderCompareHtml(buildCompareInfo([{ study: s, trials, finals: FINALS }]), png);
  assert.ok(!cmpHtml.includes(name));
  assert.ok(cmpHtml.includes('&lt;script&gt;'));
});

test('Markdown escapes | in cells and keeps the table shape', () => {
  assert.equal(escapeMarkdownCell('a|b'), 'a\\|b');
  const info = buildReportInfo(study({ name: 'x|y' }), TRIALS, FINALS);
  const md = renderMarkdown(info, { pareto: 'pareto.png', progress: 'progress.png' });
  assert.ok(md.includes('blk\\|1&amp;"\''));
  assert.ok(md.includes('&lt;oops&gt; \\| bad'));
  assert.ok(md.includes('![accuracy vs FLOPs](pareto.png)'));
  // every line of the trial table has the same number of unescaped pipes
  const lines = md.split('\n').filter((l) => l.startsWith('| '));
  const pipes = (l: string) => l.replace(/\\\|/g, '').split('|').length;
  const trialHeader = lines.find((l) => l.startsWith('| trial | FLOPs |'))!;
  const table = lines.filter((l) => pipes(l) === pipes(trialHeader));
  assert.ok(table.length >= info.rows.length + 2);
  const failedHeader = lines.findIndex((l) => l.startsWith('| trial | controller | FLOPs | error'));
  assert.ok(failedHeader >= 0);
  assert.equal(pipes(lines[failedHeader + 2]), pipes(lines[failedHeader]));
  const cmp = renderCompareMarkdown(buildCompareInfo([{ study: study({ name: 'x|y' }), trials: TRIALS, finals: FINALS }]), 'c.png');
  assert.ok(cmp.includes('x\\|y'));
});

test('writeReport writes the four files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'autoprune-report-'));
  try {
    const info = buildReportInfo(study(), TRIALS, FINALS);
    const paths = await writeReport(info, join(dir, 'out'));
    assert.deepEqual(
      Object.values(paths).map((p) => p.slice(dir.length + 5)),
      ['index.html', 'report.md', 'pareto.png', 'progress.png'],
    );
    for (const p of Object.values(paths)) assert.ok((await stat(p)).size > 0);
    assert.deepEqual(pngSize(await readFile(paths.pareto)), { width: 1000, height: 600 });
    assert.ok((await readFile(paths.markdown, 'utf8')).includes('](pareto.png)'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a trial counts for a FLOPs target up to target + window, as the search accepts it', () => {
  const cases: [string, number, number, number | null, boolean][] = [
    ['under the target', 0.45, 0.5, 0.03, true],
    ['inside the window above the target', 0.53, 0.5, 0.03, true],
    ['just past the window', 0.5301, 0.5, 0.03, false],
    ['no window: only at or under the target', 0.53, 0.5, null, false],
    ['exactly at the limit despite float rounding', 0.7 + 0.03, 0.7, 0.03, true],
  ];
  for (const [name, f, t, w, want] of cases) assert.equal(withinTarget(f, t, w), want, name);
  assert.equal(targetLabel(0.7, 0.03), '70% target (<= 73% FLOPs)');
  assert.equal(targetLabel(0.5, null), '<= 50% FLOPs');
  // In a study: a 53% trial is the best for the 50% target (window 0.05).
  const extra = trial({ n: 9, controller: 'random', macs: 53 * M, params: 0.6 * M, proxy: 0.95, done: 10, channels: [16, 32] });
  const info = buildReportInfo(study(), [...TRIALS, extra], FINALS);
  assert.equal(info.progress.byNumber.at(-1)!.bestAtTarget[0], 0.95);
});

test('the global threshold baseline is shown beside uniform: its own series, and both baselines at each target', () => {
  const global = [
    trial({ n: 9, controller: 'global', macs: 52 * M, proxy: 0.86, target: 0.5, done: 10, channels: [20, 30] }),
    trial({ n: 10, controller: 'global', macs: 26 * M, proxy: 0.74, target: 0.25, done: 11, channels: [10, 14] }),
  ];
  const info = buildReportInfo(study(), [...TRIALS, ...global], FINALS);
  assert.deepEqual(trialsOf(info.globalBaseline), [10, 9]);
  assert.deepEqual(trialsOf(info.baseline), [2, 1, 0]);
  // Targets 0.5 and 0.25, window 0.05: uniform's 50% (0.85) and 25% (0.70) trials; global's 52% and 26%.
  assert.deepEqual(info.baselineBest, { uniform: [0.85, 0.7], global: [0.86, 0.74] });
  const series = paretoDatasets(info);
  const byLabel = (label: string) => series.find((d) => d.label === label)!.data.map((q) => [q.x, q.y]);
  assert.deepEqual(byLabel('uniform baseline'), [
    [25, 70],
    [50, 85],
    [75, 88],
  ]);
  assert.deepEqual(byLabel('global threshold baseline'), [
    [26, 74],
    [52, 86],
  ]);
  const md = renderMarkdown(info, { pareto: 'p.png', progress: 'q.png' });
  assert.match(md, /best proxy accuracy, 50% target \(<= 55% FLOPs\): [0-9.]+% \(baselines: uniform 85\.00%, global 86\.00%\)/);
  assert.match(renderHtml(info, { pareto: Buffer.from('p'), progress: Buffer.from('q') }), /baselines: uniform 70\.00%, global 74\.00%/);
  // A study without global trials names only uniform.
  assert.match(renderMarkdown(buildReportInfo(study(), TRIALS, FINALS), { pareto: 'p.png', progress: 'q.png' }), /\(baselines: uniform 85\.00%\)\n/);
});
