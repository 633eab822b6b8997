/**
 * Every accuracy says its rung (fidelity): report data, the HTML/Markdown report, `show`, `pick`,
 * `compare`. A study with rung trials is built by hand (pure part) and through the Store API in a
 * SQLite file (the commands, run as the user runs them). Oracles are hand-computed: fronts per rung
 * and Kendall's tau between consecutive rungs.
 *
 * The study: four proxy trials 0..3 (20, 40, 60, 80 MMACs of a 100 MMACs base; proxy 0.60, 0.70,
 * 0.80, 0.90); rung 1 (200 steps) of all four with test accuracies 0.95, 0.90, 0.85, 0.80 (the
 * proxy order reversed: tau(0 → 1) = -1, n = 4); rung 2 (1 epoch) of origins 1, 2, 3 with test
 * 0.92, 0.93, 0.91, recorded as their finals. Rung 1 → 2 pairs: (1, 2) discordant, (1, 3) and
 * (2, 3) concordant, so tau = (2 - 1) / 3 = 1/3, n = 3.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TrialStage } from '../src/core/types.js';
import { buildCompareInfo, buildReportInfo, compareTable, paretoDatasets, pickCandidates, renderHtml, renderMarkdown, rungLabel } from '../src/report/index.js';
import { picked } from '../src/report/pick.js';
import { startServer } from '../src/serve/server.js';
import { type FinalRecord, type Json, openStore, type StudyRecord, type TrialRecord } from '../src/store/index.js';
import { cli } from './helpers.js';
import { addTrial } from './store-contract.js';

const M = 1e6;
const RUNGS = [
  { keep: 1, finetune: { steps: 200 } },
  { keep: 0.75, finetune: { epochs: 1 } },
];
const CONFIG = { search: { targets: [0.5], window: 0.5 }, evaluation: { rungs: RUNGS } } as unknown as Json;

const PROXY = [0.6, 0.7, 0.8, 0.9];
const RUNG1_TEST = [0.95, 0.9, 0.85, 0.8];
/** Rung 2 test accuracy by origin (origin 0 was not promoted). */
const RUNG2_TEST = new Map([
  [1, 0.92],
  [2, 0.93],
  [3, 0.91],
]);

function study(): StudyRecord {
  return {
    name: 'ladder',
    configHash: 'h',
    config: CONFIG,
    space: { groups: [{ id: 'g', channels: 8, layers: ['c'] }], options: { minKeepRatio: 0.25, channelStep: 1, skip: [] } },
    baseCost: { macs: 100 * M, params: 1000 },
    baseProxyAccuracy: 0.9,
    baseTestAccuracy: 0.94,
    inputs: null,
    state: 'complete',
    createdAt: '2024-01-01T00:00:00.000Z',
    updatedAt: '2024-01-01T01:00:00.000Z',
  };
}

interface Planned {
  n: number;
  origin: number;
  rung: number;
  parent: number | null;
  validation: number;
  test?: number;
}

/** Trials 0..3 proxy, 4..7 rung 1 of origins 0..3, 8..10 rung 2 of origins 1..3. */
const PLAN: Planned[] = [
  ...PROXY.map((v, i) => ({ n: i, origin: i, rung: 0, parent: null, validation: v })),
  ...RUNG1_TEST.map((t, i) => ({ n: 4 + i, origin: i, rung: 1, parent: i, validation: 0.5 + i / 100, test: t })),
  ...[...RUNG2_TEST].map(([o, t], i) => ({ n: 8 + i, origin: o, rung: 2, parent: 4 + o, validation: 0.5, test: t })),
];

const macsOf = (origin: number) => (origin + 1) * 20 * M;
const stageOf = (p: Planned): TrialStage => (p.rung === 0 ? 'proxy' : 'finetune');
const metaOf = (p: Planned): Json =>
  p.rung === 0
    ? { target: 0.5 }
    : ({
        rung: p.rung,
        origin: p.origin,
        target: 0.5,
        weights: p.rung === 1 ? null : p.parent,
        finetune: RUNGS[p.rung - 1].finetune,
        last: p.rung === RUNGS.length,
      } as unknown as Json);

function record(p: Planned): TrialRecord {
  const ts = `2024-01-01T00:${String(p.n).padStart(2, '0')}:00.000Z`;
  return {
    study: 'ladder',
    number: p.n,
    candidate: { channels: [p.origin + 2] },
    key: `${p.origin}:${p.rung}`,
    cost: { macs: macsOf(p.origin), params: 100 * (p.origin + 1) },
    controller: 'random',
    meta: metaOf(p),
    state: 'complete',
    stage: stageOf(p),
    parent: p.parent,
    attempts: 1,
    metrics: { proxyAccuracy: p.validation, ...(p.test === undefined ? {} : { finalAccuracy: p.test }) },
    error: null,
    worker: null,
    createdAt: ts,
    startedAt: ts,
    finishedAt: ts.replace(':00.000Z', ':30.000Z'),
    // The store's finish sequence, for stores that record one (trials finish in number order here).
    finishSeq: p.n,
  } as TrialRecord;
}

const TRIALS = PLAN.map(record);
const FINALS: FinalRecord[] = [...RUNG2_TEST].map(([o, t]) => ({
  study: 'ladder',
  trial: o,
  finalAccuracy: t,
  latencyMs: null,
  epochs: 1,
  modelPath: null,
  seconds: 1,
  createdAt: '2024-01-01T02:00:00.000Z',
}));

const close = (a: number | null, b: number) => assert.ok(a !== null && Math.abs(a - b) < 1e-12, `${a} !== ${b}`);

describe('report data: rungs', () => {
  const info = buildReportInfo(study(), TRIALS, FINALS);

  test('rung trials are not search points; each candidate carries its results per rung', () => {
    assert.deepEqual(
      info.points.map((p) => p.trial),
      [0, 1, 2, 3],
    );
    assert.deepEqual(
      info.points.map((p) => [p.topRung, p.finalRung]),
      [
        [1, null],
        [2, 2],
        [2, 2],
        [2, 2],
      ],
    );
    assert.deepEqual(info.points[2].rungResults, [
      { rung: 1, trial: 6, validationAccuracy: 0.52, testAccuracy: 0.85 },
      { rung: 2, trial: 9, validationAccuracy: 0.5, testAccuracy: 0.93 },
    ]);
  });

  test('one front per rung, on validation at rung 0 and test above', () => {
    assert.deepEqual(
      info.rungs.map((r) => [r.rung, r.split, r.training, r.points.length, r.front.map((p) => p.trial)]),
      [
        [0, 'validation', null, 4, [0, 1, 2, 3]],
        [1, 'test', '200 steps', 4, [0]],
        [2, 'test', '1 epoch', 3, [1, 2]],
      ],
    );
    assert.deepEqual(
      info.rungs[2].front.map((p) => p.resultTrial),
      [8, 9],
    );
    // The last rung's front is the fine-tuned (final) front.
    assert.deepEqual(
      info.finalFront.map((p) => p.trial),
      [1, 2],
    );
  });

  test('Kendall tau between consecutive rungs: a reversed order is -1, the rest by hand', () => {
    assert.equal(info.rungAgreement.length, 2);
    assert.deepEqual(
      info.rungAgreement.map((a) => [a.from, a.to, a.n]),
      [
        [0, 1, 4],
        [1, 2, 3],
      ],
    );
    close(info.rungAgreement[0].tau, -1);
    close(info.rungAgreement[1].tau, 1 / 3);
  });

  test('fewer than 3 candidates at both rungs: no tau, n still given', () => {
    const fewer = buildReportInfo(
      study(),
      TRIALS.filter((t) => t.number !== 10),
      FINALS.filter((f) => f.trial !== 3),
    );
    assert.deepEqual(fewer.rungAgreement[1], { from: 1, to: 2, n: 2, tau: null });
  });

  test('a store with finals and no rung trials: one rung, whose tau is the proxy-vs-final tau', () => {
    const proxyOnly = TRIALS.filter((t) => t.stage === 'proxy');
    const plain = { ...study(), config: { search: { targets: [0.5], window: 0.5 } } as Json };
    const r = buildReportInfo(plain, proxyOnly, FINALS);
    assert.equal(r.rungs.length, 2);
    assert.equal(r.rungs[1].training, '1 epoch', "from the finals' epochs");
    assert.equal(r.rungAgreement[0].n, 3);
    close(r.rungAgreement[0].tau, r.proxyFinalTau as number);
    // No rung and no final: rung 0 only, no agreement.
    const none = buildReportInfo(plain, proxyOnly, []);
    assert.deepEqual([none.rungs.length, none.rungAgreement.length], [1, 0]);
  });

  test('the chart draws a front per rung', () => {
    const byLabel = new Map(paretoDatasets(info).map((d) => [d.label, d.data.map((q) => [q.x, q.y])]));
    assert.deepEqual(byLabel.get('Pareto front, rung 1 (fine-tune, 200 steps): test accuracy'), [[20, 95]]);
    assert.deepEqual(byLabel.get('Pareto front, rung 2 (fine-tune, 1 epoch): test accuracy'), [
      [40, 92],
      [60, 93],
    ]);
    assert.deepEqual(byLabel.get('other candidates, rung 2'), [[80, 91]]);
    assert.equal(byLabel.get('Pareto front, rung 0 (proxy)')?.length, 4);
  });

  test('HTML and Markdown name the rungs and print the tau table with n', () => {
    const md = renderMarkdown(info, { pareto: 'p.png', progress: 'q.png' });
    assert.match(md, /rank agreement between consecutive rungs \(Kendall tau\): rung 0 → 1: tau -1\.00 \(n = 4\); rung 1 → 2: tau 0\.33 \(n = 3\)/);
    assert.match(md, /\| 0 → 1 \| 4 \| -1\.00 \|/);
    assert.match(md, /\| 1 → 2 \| 3 \| 0\.33 \|/);
    assert.match(md, /\| 2 \| rung 2 \(fine-tune, 1 epoch\) \| test \| 3 \| #1 #2 \| 93\.00% \|/);
    assert.match(md, /fine-tuned test acc \(rung 2\)/);
    const html = renderHtml(info, { pareto: Buffer.from('p'), progress: Buffer.from('q') });
    assert.match(html, /<td class="text">1 → 2<\/td><td data-sort="3">3<\/td><td data-sort="0\.3333333333333333">0\.33<\/td>/);
    assert.match(html, /rung 1 \(fine-tune, 200 steps\): test/);
  });

  test('pick: the accuracy says its rung', () => {
    const rows = pickCandidates(info, {}).map(picked);
    assert.deepEqual(
      rows.map((r) => [r.trial, r.accuracy, r.accuracySource, r.rung]),
      [
        [2, 0.93, 'final', 2],
        [1, 0.92, 'final', 2],
        [3, 0.91, 'final', 2],
        [0, 0.6, 'proxy', 0],
      ],
    );
    assert.equal(rungLabel(info, 2), 'rung 2 (fine-tune, 1 epoch)');
  });

  test('compare carries each study its tau', () => {
    const c = buildCompareInfo([
      { study: study(), trials: TRIALS, finals: FINALS },
      { study: { ...study(), name: 'other' }, trials: TRIALS.filter((t) => t.stage === 'proxy'), finals: [] },
    ]);
    assert.deepEqual(
      c.studies.map((s) => s.rungAgreement.map((a) => a.n)),
      [
        [4, 3],
        [0, 0],
      ],
    );
    const t = compareTable(c);
    const col = t.header.indexOf('rank agreement between rungs (Kendall tau)');
    assert.ok(col > 0);
    assert.equal(t.rows[0][col].text, 'rung 0 → 1: tau -1.00 (n = 4); rung 1 → 2: tau 0.33 (n = 3)');
  });
});

describe('commands: rungs', () => {
  let dir: string;
  let db: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'autoprune-fidelity-'));
    db = join(dir, 'store.db');
    const store = await openStore(db);
    try {
      for (const name of ['ladder', 'plain']) {
        const s = study();
        await store.createStudy({
          name,
          configHash: s.configHash,
          config: s.config,
          space: s.space,
          baseCost: s.baseCost,
          baseProxyAccuracy: 0.9,
          baseTestAccuracy: 0.94,
        });
        // `plain` holds the proxy trials only.
        for (const p of PLAN.filter((q) => name === 'ladder' || q.rung === 0)) {
          const r = record(p);
          const t = await addTrial(store, name, {
            candidate: r.candidate,
            key: r.key,
            cost: r.cost,
            controller: r.controller,
            meta: r.meta,
            stage: r.stage,
            parent: r.parent,
          });
          assert.equal(t.number, p.n);
          const claim = (await store.claimTrial(name, 'main', { leaseMs: 600_000, number: t.number }))!;
          await store.completeTrial(claim, r.metrics);
        }
      }
      // The finals are the last rung's trials of PLAN (src/study/finals.ts).
    } finally {
      await store.close();
    }
  });

  after(async () => {
    if (!process.env.KEEP) await rm(dir, { recursive: true, force: true });
  });

  test('list says its best accuracies are rung 0 (proxy)', async () => {
    const r = await cli('list', '--store', db);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /best proxy acc \(rung 0\)/);
    assert.match(r.stdout, /ladder .* all 90\.00%/);
  });

  test('show names the rung of each accuracy, the front at each rung and tau per rung pair', async () => {
    const r = await cli('show', 'ladder', '--store', db);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /proxy acc \(rung 0\)/);
    assert.match(r.stdout, /final acc \(rung 2\)/);
    assert.match(r.stdout, /front, rung 1 \(fine-tune, 200 steps\), test accuracy: #0\n/);
    assert.match(r.stdout, /front, rung 2 \(fine-tune, 1 epoch\), test accuracy: #1 #2\n/);
    assert.match(r.stdout, /rank agreement between rungs \(Kendall tau\): rung 0 → 1: tau -1\.00 \(n = 4\); rung 1 → 2: tau 0\.33 \(n = 3\)/);
  });

  test('show --json: rungs, fronts, tau and each trial its rung results', async () => {
    const r = await cli('show', 'ladder', '--json', '--store', db);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout) as {
      trials: {
        number: number;
        finalAccuracy: number | null;
        finalRung: number | null;
        topRung: number;
        rungs: { rung: number; trial: number; testAccuracy: number }[];
      }[];
      rungs: { rung: number; label: string; split: string; front: number[] }[];
      rankAgreement: { from: number; to: number; n: number; tau: number | null }[];
    };
    assert.deepEqual(
      s.rungs.map((g) => [g.rung, g.label, g.split, g.front]),
      [
        [0, 'rung 0 (proxy)', 'validation', [0, 1, 2, 3]],
        [1, 'rung 1 (fine-tune, 200 steps)', 'test', [0]],
        [2, 'rung 2 (fine-tune, 1 epoch)', 'test', [1, 2]],
      ],
    );
    assert.deepEqual(
      s.rankAgreement.map((a) => [a.from, a.to, a.n]),
      [
        [0, 1, 4],
        [1, 2, 3],
      ],
    );
    close(s.rankAgreement[0].tau, -1);
    close(s.rankAgreement[1].tau, 1 / 3);
    const t3 = s.trials.find((t) => t.number === 3)!;
    assert.deepEqual([t3.finalAccuracy, t3.finalRung, t3.topRung], [0.91, 2, 2]);
    assert.deepEqual(
      t3.rungs.map((x) => [x.rung, x.trial, x.testAccuracy]),
      [
        [1, 7, 0.8],
        [2, 10, 0.91],
      ],
    );
  });

  test('pick: the chosen candidate says the rung of its accuracy', async () => {
    const j = await cli('pick', 'ladder', '--json', '--store', db);
    assert.equal(j.code, 0, j.stderr);
    const rows = JSON.parse(j.stdout) as { trial: number; accuracy: number; rung: number }[];
    assert.deepEqual(
      rows.map((x) => [x.trial, x.rung]),
      [
        [2, 2],
        [1, 2],
        [3, 2],
        [0, 0],
      ],
    );
    const r = await cli('pick', 'ladder', '--store', db);
    assert.equal(r.code, 0, r.stderr);
    const line = (trial: number) => r.stdout.split('\n').find((l) => new RegExp(`^\\s*\\d+\\s+${trial}\\s`).test(l)) ?? '';
    assert.match(line(2), /93\.00%\s+test, rung 2 \(fine-tune, 1 epoch\)/);
    assert.match(line(0), /60\.00%\s+validation, rung 0 \(proxy\)/);
  });

  test('report prints the fidelities and tau; its Markdown has the rung tables', async () => {
    const out = join(dir, 'report');
    const r = await cli('report', 'ladder', '--out', out, '--store', db);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /fidelities: rung 0 \(proxy\): validation; rung 1 \(fine-tune, 200 steps\): test; rung 2 \(fine-tune, 1 epoch\): test/);
    assert.match(r.stdout, /rung 1 → 2: tau 0\.33 \(n = 3\)/);
    const md = await readFile(join(out, 'report.md'), 'utf8');
    assert.match(md, /## Rungs/);
    assert.match(md, /\| 0 → 1 \| 4 \| -1\.00 \|/);
  });

  test('compare prints tau per study', async () => {
    const out = join(dir, 'compare');
    const r = await cli('compare', 'ladder', 'plain', '--out', out, '--store', db);
    assert.equal(r.code, 0, r.stderr);
    const row = (name: string) => r.stdout.split('\n').find((l) => l.startsWith(name)) ?? '';
    assert.match(row('ladder'), /rung 0 → 1: tau -1\.00 \(n = 4\); rung 1 → 2: tau 0\.33 \(n = 3\)/);
    // Its config has two rungs, and no candidate reached them.
    assert.match(row('plain'), /rung 0 → 1: tau – \(n = 0\); rung 1 → 2: tau – \(n = 0\)/);
    const j = await cli('compare', 'ladder', 'plain', '--out', out, '--json', '--store', db);
    const c = JSON.parse(j.stdout) as { studies: { name: string; rungAgreement: { n: number }[] }[] };
    assert.deepEqual(
      c.studies.map((x) => [x.name, x.rungAgreement.map((a) => a.n)]),
      [
        ['ladder', [4, 3]],
        ['plain', [0, 0]],
      ],
    );
  });

  test('the dashboard: each trial row its rung, the study its final rung and tau per rung pair', async () => {
    const store = await openStore(db);
    const server = await startServer({ store, port: 0 });
    try {
      const study = (await (await fetch(`${server.url}api/study?name=ladder`)).json()) as {
        finalRung: number | null;
        rungAgreement: { from: number; to: number; n: number; tau: number | null }[];
      };
      assert.equal(study.finalRung, 2);
      assert.deepEqual(
        study.rungAgreement.map((a) => [a.from, a.to, a.n]),
        [
          [0, 1, 4],
          [1, 2, 3],
        ],
      );
      close(study.rungAgreement[0].tau, -1);
      const trials = (await (await fetch(`${server.url}api/trials?study=ladder&since=0`)).json()) as { rows: { n: number; rung: number }[] };
      assert.deepEqual(
        trials.rows.map((r) => [r.n, r.rung]).sort((a, b) => a[0] - b[0]),
        PLAN.map((p) => [p.n, p.rung]),
      );
      const trial = (await (await fetch(`${server.url}api/trial?study=ladder&n=2`)).json()) as { finalRung: number | null };
      assert.equal(trial.finalRung, 2);
      const pick = (await (await fetch(`${server.url}api/pick?study=ladder&top=2`)).json()) as { rows: { trial: number; rung: number | null }[] };
      assert.deepEqual(
        pick.rows.map((r) => [r.trial, r.rung]),
        [
          [2, 2],
          [1, 2],
        ],
      );
    } finally {
      await server.close();
      await store.close();
    }
  });
});
