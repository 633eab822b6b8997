import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { resolveConfig } from '../src/config/index.js';
import { inWindow } from '../src/controllers/common.js';
import { createController } from '../src/controllers/registry.js';
import type { ControllerContext, Observation } from '../src/controllers/types.js';
import { isAutopruneError } from '../src/core/errors.js';
import { Rng } from '../src/core/rng.js';
import { type Candidate, fullCandidate, type SearchSpace } from '../src/core/space.js';
import type { Json } from '../src/core/types.js';
import { initBackend } from '../src/engine/backend.js';
import { loadOnnxRuntime } from '../src/engine/onnxruntime.js';
import { checkPredictions } from '../src/latency/check.js';
import { measureShape } from '../src/latency/measure.js';
import { gridLevels, inputGridLevels, layerShapes, shapeSpace } from '../src/latency/shapes.js';
import { stepFromSweep } from '../src/latency/step.js';
import { prepareLatency, resolveChannelStep } from '../src/latency/study.js';
import { ensureTable, fitCalibration, inputKind, LatencyTable, predictMs, type ShapeTimer } from '../src/latency/table.js';
import { fanOutModel, tfjsWasmShapeTimer, tfjsWasmTableId } from '../src/latency/tfjs.js';
import { analyzeModel } from '../src/model/analysis.js';
import { costOf } from '../src/model/flops.js';
import { buildZooModel } from '../src/model/zoo.js';
import { buildReportInfo } from '../src/report/data.js';
import { renderMarkdown } from '../src/report/markdown.js';
import { MemoryStore } from '../src/store/memory.js';
import type { LatencyShape, LatencyTableId } from '../src/store/types.js';
import { readLatencyCheck, recordLatencyCheck } from '../src/study/latency-check.js';
import { restoreController } from '../src/study/lifecycle.js';
import { runStudy, studySpace } from '../src/study/run.js';

before(async () => {
  await tf.setBackend('cpu');
});

/**
 * A tiny CNN on 8×8×3: conv a (3x3, 8, same) -> conv b (3x3, 16, stride 2, same) -> conv c (1x1, 16)
 * -> add(b, c) -> GAP -> dense (4). Groups: a (8 channels) and b+c (16, joined by the add).
 */
function tinyModel(): tf.LayersModel {
  const inp = tf.input({ shape: [8, 8, 3], name: 'input' });
  const a = tf.layers.conv2d({ name: 'a', filters: 8, kernelSize: 3, padding: 'same', activation: 'relu' }).apply(inp) as tf.SymbolicTensor;
  const b = tf.layers.conv2d({ name: 'b', filters: 16, kernelSize: 3, strides: 2, padding: 'same' }).apply(a) as tf.SymbolicTensor;
  const c = tf.layers.conv2d({ name: 'c', filters: 16, kernelSize: 1 }).apply(b) as tf.SymbolicTensor;
  const s = tf.layers.add({ name: 'sum' }).apply([b, c]) as tf.SymbolicTensor;
  const g = tf.layers.globalAveragePooling2d({ name: 'gap' }).apply(s) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: 'head', units: 4 }).apply(g) as tf.SymbolicTensor;
  return tf.model({ inputs: inp, outputs: out });
}

const TABLE: LatencyTableId = { engine: 'onnxruntime', engineVersion: '1.30.0', host: 'h1/cpu:Test', threads: 2, batch: 4 };

/**
 * A synthetic timer with a staircase (channels padded to blocks of 4, as NCHWc kernels pad to theirs) and a
 * per-layer constant, so latency is not proportional to MACs; counts its calls.
 */
function staircase(): ShapeTimer & { calls: number } {
  const up = (n: number) => Math.ceil(n / 4) * 4;
  const f = (async (s: LatencyShape) => {
    f.calls++;
    return 0.01 + (up(s.cin / s.groups) * up(s.cout) * s.h * s.w * s.kh * s.kw) / (s.sh * s.sw) / 1e5;
  }) as ShapeTimer & { calls: number };
  f.calls = 0;
  return f;
}

/** Linear in cin and in cout: interpolation between grid points must reproduce it exactly. */
const bilinear: ShapeTimer = async (s) => 0.5 + 0.01 * s.cin + 0.02 * s.cout + s.h * 1e-3;

function space(a: ReturnType<typeof analyzeModel>, step = 1): SearchSpace {
  return { groups: a.groups, options: { minKeepRatio: 0.25, channelStep: step, skip: [] } };
}

describe('latency table shapes', () => {
  test('a candidate has one unit per conv and dense, keyed by input size, kernel, stride, padding and channels', () => {
    const m = tinyModel();
    const a = analyzeModel(m);
    assert.deepEqual(
      a.groups.map((g) => [g.id, g.channels]),
      [
        ['a', 8],
        ['b', 16],
      ],
    );
    const units = layerShapes(a, { channels: [4, 12] });
    const one = { groups: 1 } as const;
    assert.deepEqual(units, [
      { layer: 'a', shape: { op: 'conv', cin: 3, cout: 4, h: 8, w: 8, kh: 3, kw: 3, sh: 1, sw: 1, pad: 'same', ...one } },
      { layer: 'b', shape: { op: 'conv', cin: 4, cout: 12, h: 8, w: 8, kh: 3, kw: 3, sh: 2, sw: 2, pad: 'same', ...one } },
      { layer: 'c', shape: { op: 'conv', cin: 12, cout: 12, h: 4, w: 4, kh: 1, kw: 1, sh: 1, sw: 1, pad: 'valid', ...one } },
      { layer: 'head', shape: { op: 'dense', cin: 12, cout: 4, h: 1, w: 1, kh: 1, kw: 1, sh: 1, sw: 1, pad: 'valid', ...one } },
    ]);
    m.dispose();
  });

  test('the shapes a study needs: every grid combination of the groups each layer touches, once', () => {
    const m = tinyModel();
    const a = analyzeModel(m);
    const sp = space(a);
    // Group a: 2..8 (7 levels); group b: 4..16 (13). Grid step 4: a {2, 4, 8}, b {4, 8, 12, 16}.
    assert.deepEqual(gridLevels(sp, 0, 4), [2, 4, 8]);
    assert.deepEqual(gridLevels(sp, 1, 4), [4, 8, 12, 16]);
    const shapes = shapeSpace(a, sp, 4);
    // conv a: 3 cout; conv b: 3 x 4; conv c: 4 (cin = cout, same group); head: 4.
    assert.equal(shapes.length, 3 + 12 + 4 + 4);
    assert.equal(shapeSpace(a, sp, 1).length, 7 + 7 * 13 + 13 + 13);
    m.dispose();
  });
});

describe('latency tables in the store', () => {
  test('a table is built once and reused by the next study; another engine version or host builds its own', async () => {
    const m = tinyModel();
    const a = analyzeModel(m);
    const shapes = shapeSpace(a, space(a), 4);
    const store = new MemoryStore();
    const timer = staircase();
    const first = await ensureTable(store, TABLE, shapes, timer);
    assert.equal(first.measured, shapes.length);
    assert.equal(timer.calls, shapes.length);
    // A second study on the same host, engine, threads and batch: nothing measured.
    const again = await ensureTable(store, TABLE, shapes, timer);
    assert.equal(again.measured, 0);
    assert.equal(again.table.size, shapes.length);
    assert.equal(timer.calls, shapes.length);
    // A study whose space needs more shapes measures only the missing ones.
    const finer = shapeSpace(a, space(a), 2);
    const grown = await ensureTable(store, TABLE, finer, timer);
    assert.equal(grown.measured, finer.filter((s) => !first.table.has(s)).length);
    assert.ok(grown.measured > 0);
    for (const other of [
      { engine: 'tfjs-wasm' },
      { engine: 'onnxruntime:cpu' },
      { engineVersion: '1.31.0' },
      { host: 'h2/cpu:Test' },
      { threads: 1 },
      { batch: 8 },
    ]) {
      const t = await ensureTable(store, { ...TABLE, ...other }, shapes, timer);
      assert.equal(t.measured, shapes.length, JSON.stringify(other));
    }
    await store.close();
    m.dispose();
  });

  test('the prediction is the sum of the entries plus the overhead fitted on the base', async () => {
    const m = tinyModel();
    const a = analyzeModel(m);
    const sp = space(a, 4);
    const store = new MemoryStore();
    const cfg = resolveConfig({ name: 't', model: { zoo: 'plain-cnn' }, evaluation: { latency: { batchSize: 4, tableStep: 4 } } });
    const p = await prepareLatency({
      cfg,
      store,
      analysis: a,
      space: sp,
      base: m,
      tableId: TABLE,
      timer: staircase(),
      baseLatencyMs: async () => 0.5,
      calibration: 0,
      check: 0,
      log: () => {},
    });
    const t = staircase();
    const sumOf = async (c: Candidate | null) => {
      let s = 0;
      for (const u of layerShapes(a, c)) s += await t(u.shape);
      return s;
    };
    const overhead = 0.5 * 4 - (await sumOf(null));
    assert.ok(Math.abs(p.model.overheadMs - overhead) < 1e-12);
    const c = { channels: [4, 8] };
    assert.ok(Math.abs(p.predictMs(c) - ((await sumOf(c)) + overhead) / 4) < 1e-12);
    assert.ok(Math.abs(p.predictMs(fullCandidate(sp)) - 0.5) < 1e-12, 'the base predicts its own measured latency');
    assert.ok(Math.abs(p.fractionOf(c) - p.predictMs(c) / 0.5) < 1e-12);
    await store.close();
    m.dispose();
  });

  test('between grid points the table interpolates bilinearly in (cin, cout); off the grid it names the layer', async () => {
    const m = tinyModel();
    const a = analyzeModel(m);
    const store = new MemoryStore();
    const { table } = await ensureTable(store, TABLE, shapeSpace(a, space(a), 4), bilinear);
    const model = { table, scale: 1, overheadMs: 0, batch: 1 };
    for (const c of [{ channels: [3, 5] }, { channels: [7, 13] }, { channels: [2, 16] }]) {
      let expected = 0;
      for (const u of layerShapes(a, c)) expected += await bilinear(u.shape);
      assert.ok(Math.abs(predictMs(model, layerShapes(a, c)) - expected) < 1e-9, JSON.stringify(c));
    }
    const empty = new LatencyTable(TABLE, []);
    assert.throws(
      () => empty.sum(layerShapes(a, null)),
      (e: unknown) => isAutopruneError(e) && /no entry near layer `a`/.test(e.message),
    );
    await store.close();
    m.dispose();
  });
});

describe('kernel paths', () => {
  test('an input width is interpolated from grid widths that run the same kernel: blocked, NCHW multiple of 4, even, odd', () => {
    // onnxruntime blocks a conv whose input channels are a multiple of the block (16) or below it;
    // other input widths run the NCHW conv, fast for multiples of 4 and slow otherwise.
    const e = (n: number, ms: number) => ({
      op: 'conv' as const,
      cin: n,
      cout: n,
      h: 4,
      w: 4,
      kh: 3,
      kw: 3,
      sh: 1,
      sw: 1,
      pad: 'same' as const,
      groups: 1,
      ms,
    });
    assert.deepEqual(
      [8, 15, 16, 20, 22, 23, 32].map((n) => inputKind(n, 16)),
      [0, 0, 0, 1, 2, 3, 0],
    );
    assert.deepEqual(
      [8, 16, 20, 23].map((n) => inputKind(n, 1)),
      [0, 0, 0, 0],
    );
    const entries = [e(16, 2), e(20, 3), e(23, 9), e(24, 4), e(31, 13), e(32, 5), e(40, 6)];
    const q = (n: number) => ({ ...e(n, 0), ms: undefined });
    const blocked = new LatencyTable(TABLE, entries, 16);
    assert.equal(blocked.lookup(q(27)), 11); // odd: between 23 and 31
    assert.equal(blocked.lookup(q(28)), 4.5); // multiple of 4: between 24 and 40
    assert.equal(blocked.lookup(q(32)), 5);
    // No even (2 mod 4) grid width brackets 26: every grid width is used.
    assert.equal(blocked.lookup(q(26)), 4 + (2 / 7) * 9);
    const plain = new LatencyTable(TABLE, entries);
    assert.equal(plain.lookup(q(27)), 4 + (3 / 7) * 9); // between 24 and 31
    // Dense layers and depthwise convs do not run the conv kernels: no kinds.
    const dense = new LatencyTable(
      TABLE,
      [20, 23, 31].map((n) => ({ ...e(n, n), op: 'dense' as const, h: 1, w: 1, kh: 1, kw: 1, pad: 'valid' as const })),
      16,
    );
    assert.equal(dense.lookup({ ...q(27), op: 'dense', h: 1, w: 1, kh: 1, kw: 1, pad: 'valid' }), 27);
  });

  test('the input side of a layer is on a grid with widths of every kind; the output side on the plain grid', () => {
    const m = tinyModel();
    const a = analyzeModel(m);
    const sp = { groups: a.groups, options: { minKeepRatio: 0.25, channelStep: 1, skip: [] } };
    // Group b (4..16), step 8: the plain grid {4, 8, 16}; inputs also 1, 2 and 4 below each multiple of 8.
    assert.deepEqual(gridLevels(sp, 1, 8), [4, 8, 16]);
    assert.deepEqual(inputGridLevels(sp, 1, 8, 16), [4, 6, 7, 8, 12, 14, 15, 16]);
    assert.deepEqual(inputGridLevels(sp, 1, 8, 1), [4, 8, 16]);
    const shapes = shapeSpace(a, sp, 8, 16);
    const convC = shapes.filter((s) => s.h === 4 && s.kh === 1 && s.op === 'conv');
    // conv c reads and writes group b (cin = cout): one shape per input-grid width.
    assert.deepEqual(
      convC.map((s) => s.cin).sort((x, y) => x - y),
      [4, 6, 7, 8, 12, 14, 15, 16],
    );
    // conv b: input group a (2..8: input grid 2, 4, 6, 7, 8) x output group b on the plain grid (4, 8, 16).
    const convB = shapes.filter((s) => s.op === 'conv' && s.sh === 2);
    assert.equal(convB.length, 5 * 3);
    m.dispose();
  });

  test('a table grown by several studies (not a full grid) still interpolates from widths measured at both input widths', () => {
    const e = (cin: number, cout: number, ms: number) => ({
      op: 'conv' as const,
      cin,
      cout,
      h: 4,
      w: 4,
      kh: 3,
      kw: 3,
      sh: 1,
      sw: 1,
      pad: 'same' as const,
      groups: 1,
      ms,
    });
    // cin 1 was measured at cout 4 and 8; cin 16 also at 5, 6, 7 (another study's sweep).
    const t = new LatencyTable(TABLE, [e(1, 4, 1), e(1, 8, 2), e(16, 4, 10), e(16, 5, 11), e(16, 6, 12), e(16, 7, 13), e(16, 8, 20)]);
    assert.equal(t.lookup({ ...e(1, 6, 0) }), 1.5);
    assert.equal(t.lookup({ ...e(16, 6, 0) }), 12);
  });
});

describe('latency targets', () => {
  test('config: `{ latency: f }` targets; one kind per study; a bad one is named in one line', () => {
    const base = { name: 't', model: { zoo: 'plain-cnn' } };
    const cfg = resolveConfig({ ...base, search: { targets: [{ latency: 0.5 }, { latency: 0.3 }] } });
    assert.deepEqual(cfg.search.targets, [{ latency: 0.5 }, { latency: 0.3 }]);
    assert.equal(cfg.evaluation.latency.engine, 'onnxruntime');
    assert.throws(() => resolveConfig({ ...base, search: { targets: [0.5, { latency: 0.3 }] } }), /targets of one kind/);
    assert.throws(() => resolveConfig({ ...base, search: { targets: [{ latency: 1.5 }] } }), /search\.targets/);
    assert.throws(() => resolveConfig({ ...base, search: { targets: [{ latncy: 0.5 }] } }), /search\.targets/);
  });

  const SPECS = [
    { name: 'random' },
    { name: 'uniform', steps: 4 },
    { name: 'greedy' },
    { name: 'evolutionary', population: 8 },
    { name: 'rl', warmup: 6, episodes: 6, hidden: 8, batchSize: 4 },
    { name: 'global' },
  ] as const;

  /** In-window proposals (all controllers) that the same FLOPs window would have refused. */
  let offFlopsWindow = 0;

  for (const spec of SPECS) {
    test(`${spec.name}: proposals for latency targets lie in the predicted-latency window`, async () => {
      const m = tinyModel();
      const a = analyzeModel(m);
      const sp = space(a);
      const store = new MemoryStore();
      const cfg = resolveConfig({
        name: 't',
        model: { zoo: 'plain-cnn' },
        search: { targets: [{ latency: 0.6 }, { latency: 0.4 }], window: 0.05 },
        evaluation: { latency: { batchSize: 4, tableStep: 1 } },
      });
      // The base's end-to-end time: its entries plus 10% (the overhead), per image.
      const t = staircase();
      let baseSum = 0;
      for (const u of layerShapes(a, null)) baseSum += await t(u.shape);
      const lat = await prepareLatency({
        cfg,
        store,
        analysis: a,
        space: sp,
        base: m,
        tableId: TABLE,
        timer: staircase(),
        baseLatencyMs: async () => (1.1 * baseSum) / 4,
        calibration: 0,
        check: 0,
        log: () => {},
      });
      const rng = new Rng(3);
      const ctx: ControllerContext = {
        space: sp,
        costOf: (c) => costOf(a, c),
        baseCost: costOf(a, null),
        targets: [0.6, 0.4],
        window: 0.05,
        rng: new Rng(1),
        fractionOf: lat.fractionOf,
        importance: sp.groups.map((g) => Array.from({ length: g.channels }, () => rng.uniform(0, 1))),
      };
      const controller = createController(spec as never, ctx);
      let inside = 0;
      let flopsOutside = 0;
      for (let round = 0; round < 12 && !controller.done(); round++) {
        const ps = controller.ask(4);
        for (const p of ps) {
          const f = lat.fractionOf(p.candidate);
          if (p.meta.target !== undefined && !p.meta.windowExempt) {
            assert.ok(inWindow(ctx, f, p.meta.target), `${spec.name}: latency fraction ${f} outside ${p.meta.target} ± 0.05`);
            inside++;
            if (!inWindow(ctx, costOf(a, p.candidate).macs / ctx.baseCost.macs, p.meta.target)) flopsOutside++;
          }
        }
        const obs: Observation[] = ps.map((p) => ({
          candidate: p.candidate,
          cost: costOf(a, p.candidate),
          meta: p.meta as Json,
          proxyAccuracy: 0.5 + 0.4 * lat.fractionOf(p.candidate),
        }));
        controller.tell(obs);
      }
      assert.ok(inside > 0, `${spec.name} proposed nothing inside a latency window`);
      offFlopsWindow += flopsOutside;
      await store.close();
      m.dispose();
    });
  }

  test('the windows are latency windows, not FLOPs windows: some proposals inside them miss the FLOPs window', () => {
    assert.ok(offFlopsWindow > 0);
  });
});

describe('latency measurement (onnxruntime)', () => {
  test('one small shape measures to a finite, non-negative time per call', async (t) => {
    const ort = await loadOnnxRuntime();
    if (!ort) {
      if (process.env.CI === 'true') assert.fail('onnxruntime-node is required in CI');
      t.skip('onnxruntime-node is not installed');
      return;
    }
    const shape: LatencyShape = { op: 'conv', cin: 4, cout: 6, h: 6, w: 6, kh: 3, kw: 3, sh: 2, sw: 2, pad: 'same', groups: 1 };
    const ms = await measureShape(ort, shape, { threads: 1, batch: 2, copies: 3, repeats: 3 });
    assert.ok(Number.isFinite(ms) && ms >= 0, String(ms));
    const dense: LatencyShape = { op: 'dense', cin: 8, cout: 3, h: 1, w: 1, kh: 1, kw: 1, sh: 1, sw: 1, pad: 'valid', groups: 1 };
    assert.ok(Number.isFinite(await measureShape(ort, dense, { threads: 1, batch: 2, copies: 2, repeats: 1 })));
  });
});

describe('latency measurement (tfjs-wasm)', () => {
  test('the table is keyed tfjs-wasm with the backend version; a shape measures to a finite time; the copies model is the layer k times', async () => {
    const conv: LatencyShape = { op: 'conv', cin: 4, cout: 6, h: 6, w: 6, kh: 3, kw: 3, sh: 2, sw: 2, pad: 'same', groups: 1 };
    const m3 = fanOutModel(conv, 3);
    assert.equal(m3.outputs.length, 3);
    assert.deepEqual(m3.outputs[0].shape, [null, 6]);
    // Each copy: 3x3x4x6 weights + 6 biases.
    assert.equal(m3.countParams(), 3 * (3 * 3 * 4 * 6 + 6));
    m3.dispose();
    // On the cpu backend the table refuses in one line rather than timing the wrong engine.
    await assert.rejects(tfjsWasmTableId(2), (e: unknown) => isAutopruneError(e) && /expected the tfjs backend `wasm`, got `cpu`/.test(e.message));
    try {
      await initBackend('wasm');
    } catch (e) {
      if (process.env.CI === 'true') throw e;
      return; // the wasm backend is a dependency; a host that cannot start it says so in initBackend's error
    }
    try {
      const id = await tfjsWasmTableId(2);
      assert.equal(id.engine, 'tfjs-wasm');
      assert.equal(id.engineVersion, (await import('@tensorflow/tfjs-backend-wasm')).version_wasm);
      const timer = await tfjsWasmShapeTimer(2, { copies: 3, repeats: 3 });
      // A table of this engine and one of onnxruntime on the same host never share entries.
      const store = new MemoryStore();
      const ms = (await ensureTable(store, id, [conv], timer)).table.lookup(conv)!;
      assert.ok(Number.isFinite(ms) && ms >= 0, String(ms));
      const ort = await ensureTable(store, { ...id, engine: 'onnxruntime' }, [conv], async () => 123);
      assert.equal(ort.measured, 1);
      assert.equal(ort.table.lookup(conv), 123);
      assert.equal((await ensureTable(store, id, [conv], async () => 456)).table.lookup(conv), ms);
      await store.close();
    } finally {
      await tf.setBackend('cpu');
    }
  });
});

describe('space.channelStep auto', () => {
  test('the step is the smallest between whose multiples each added channel costs the same', () => {
    // A staircase of blocks of 8 over a fixed cost: L(n) = 0.5 + ceil(n / 8) * 8 * 0.01 ms; an added
    // channel costs 0 inside a block and 0.08 ms at its edge, the same per channel only at multiples of 8.
    const sweep = new Map(Array.from({ length: 49 }, (_, i) => [i + 16, 0.5 + Math.ceil((i + 16) / 8) * 8 * 0.01] as const));
    const r8 = stepFromSweep(sweep, 0.05);
    assert.equal(r8.step, 8);
    assert.equal(r8.flat, true);
    assert.ok(Math.abs(r8.spread - 1) < 1e-9);
    // Proportional to n: every step is flat, so 1.
    const linear = new Map(Array.from({ length: 10 }, (_, i) => [i + 4, (i + 4) * 0.02] as const));
    assert.equal(stepFromSweep(linear, 0.05).step, 1);
    // Nothing flat: the largest step with three multiples, and `flat` says so.
    const odd = new Map([
      [16, 1],
      [24, 9],
      [32, 1],
      [48, 5],
      [64, 4],
    ]);
    const r = stepFromSweep(odd, 0.05);
    assert.equal(r.flat, false);
    assert.equal(r.step, 16);
  });

  test('auto resolves through the table: the sweep is measured once and stored', async () => {
    const m = tinyModel();
    const a = analyzeModel(m);
    const store = new MemoryStore();
    const timer = staircase();
    const cfg = resolveConfig({ name: 't', model: { zoo: 'plain-cnn' }, space: { channelStep: 'auto' }, evaluation: { latency: { batchSize: 4 } } });
    const lines: string[] = [];
    const resolved = await resolveChannelStep(cfg, { store, analysis: a, tableId: TABLE, timer, log: (l) => lines.push(l) });
    // The probe is conv b (16 wide like c, more MACs), swept over its 4..16 output channels;
    // the staircase pads to 4, so multiples of 4 are flat and 1, 2 are not.
    assert.equal(resolved.space.channelStep, 4);
    assert.match(lines[0], /space\.channelStep auto: 4 .*layer `b`/);
    assert.equal(timer.calls, 13);
    await resolveChannelStep(cfg, { store, analysis: a, tableId: TABLE, timer, log: () => {} });
    assert.equal(timer.calls, 13, 'the second study reuses the sweep');
    const resumed = await resolveChannelStep(cfg, { store, analysis: a, tableId: TABLE, timer, log: () => {}, known: 8 });
    assert.equal(resumed.space.channelStep, 8, 'a resumed study keeps its step');
    assert.throws(() => studySpace(cfg, a), /channelStep.*auto/);
    assert.equal(studySpace(resolved, a).options.channelStep, 4);
    await store.close();
    m.dispose();
  });
});

describe('predictions recorded with the trials', () => {
  test("each proposal's meta carries its predicted latency and the table it came from", async () => {
    const m = tinyModel();
    const a = analyzeModel(m);
    const store = new MemoryStore();
    const cfg = resolveConfig({
      name: 'rec',
      model: { zoo: 'plain-cnn' },
      search: { targets: [{ latency: 0.6 }], window: 0.1 },
      evaluation: { latency: { batchSize: 4, tableStep: 1 } },
    });
    const sp = studySpace(cfg, a);
    const lat = await prepareLatency({
      cfg,
      store,
      analysis: a,
      space: sp,
      base: m,
      tableId: TABLE,
      timer: staircase(),
      baseLatencyMs: async () => 0.2,
      calibration: 0,
      check: 0,
      log: () => {},
    });
    const study = await store.createStudy({
      name: 'rec',
      configHash: 'h',
      config: {},
      space: sp,
      baseCost: costOf(a, null),
      baseProxyAccuracy: 0.9,
      baseTestAccuracy: null,
    });
    const { controller } = await restoreController(cfg, study, store, a, { latency: lat });
    const ps = controller.ask(3);
    assert.ok(ps.length > 0);
    for (const p of ps) {
      assert.equal(p.meta.predictedLatencyMs, Math.round(lat.predictMs(p.candidate) * 1e6) / 1e6);
      assert.equal(p.meta.latencyTable, 'onnxruntime@1.30.0 h1/cpu:Test threads=2 batch=4');
    }
    await store.close();
    m.dispose();
  });
});

describe('calibration', () => {
  test('the correction through the base point recovers how much of the latency moves with the entries', () => {
    const m = tinyModel();
    const a = analyzeModel(m);
    const units = layerShapes(a, null);
    const table = new LatencyTable(
      TABLE,
      units.map((u, i) => ({ ...u.shape, ms: i + 1 })),
    );
    const baseSum = 1 + 2 + 3 + 4;
    // Measured fractions of the base follow r = 0.6 (x - 1) + 1 exactly.
    const points = [0.3, 0.5, 0.8].map((x) => ({ sum: x * baseSum, ratio: 0.6 * (x - 1) + 1 }));
    const fit = fitCalibration(table, units, 2, 4, points)!;
    assert.ok(Math.abs(fit.a - 0.6) < 1e-12);
    // The base predicts its measured 2 ms/image; a model whose entries sum to half the base's predicts 0.7 of it.
    assert.ok(Math.abs(predictMs(fit, units) - 2) < 1e-12);
    assert.ok(Math.abs((fit.scale * 0.5 * baseSum + fit.overheadMs) / 4 - 2 * 0.7) < 1e-12);
    // No spread in the points, or a correction out of range: no fit.
    assert.equal(fitCalibration(table, units, 2, 4, [{ sum: baseSum, ratio: 1 }]), null);
    assert.equal(
      fitCalibration(
        table,
        units,
        2,
        4,
        [0.3, 0.5].map((x) => ({ sum: x * baseSum, ratio: 1 + 5 * (x - 1) })),
      ),
      null,
    );
    m.dispose();
  });

  test('a study fits the correction on calibration candidates, checks on disjoint held-out ones, and records the check', async () => {
    const m = tinyModel();
    const a = analyzeModel(m);
    const cfg = resolveConfig({ name: 'cal', model: { zoo: 'plain-cnn' }, evaluation: { latency: { batchSize: 4, tableStep: 1, calibration: 6, check: 5 } } });
    const sp = space(a);
    const store = new MemoryStore();
    const t = staircase();
    const sumOf = async (c: Candidate | null) => {
      let x = 0;
      for (const u of layerShapes(a, c)) x += await t(u.shape);
      return x;
    };
    const baseSum = await sumOf(null);
    // The engine: 40% of the base's latency is fixed, the rest scales with the (exact) entries.
    const seen: string[] = [];
    const measure = async (c: Candidate) => {
      seen.push(c.channels.join(','));
      const ratio = 0.4 + (0.6 * (await sumOf(c))) / baseSum;
      return { baseMs: 1, candidateMs: ratio, ratio };
    };
    const p = await prepareLatency({
      cfg,
      store,
      analysis: a,
      space: sp,
      base: m,
      tableId: TABLE,
      timer: staircase(),
      baseLatencyMs: async () => 1,
      measure,
      align: 1,
      log: () => {},
    });
    assert.equal(seen.length, 6 + 5);
    const calibration = new Set(seen.slice(0, 6));
    assert.ok(
      seen.slice(6).every((k) => !calibration.has(k)),
      'no held-out candidate was a calibration candidate',
    );
    assert.ok(p.calibrationA !== null && Math.abs(p.calibrationA - 0.6) < 1e-9, String(p.calibrationA));
    assert.ok(p.check !== null && p.check !== undefined);
    assert.equal(p.check.candidates, 5);
    assert.equal(p.check.calibration, 6);
    assert.ok(p.check.medianAbsFractionError < 1e-9, String(p.check.medianAbsFractionError));
    assert.equal(p.checkResult?.rows.length, 5);
    // The study records the check; the report and `show` print it.
    await store.createStudy({
      name: 'cal',
      configHash: 'h',
      config: cfg as unknown as Json,
      space: sp,
      baseCost: costOf(a, null),
      baseProxyAccuracy: 0.9,
      baseTestAccuracy: 0.9,
      inputs: null,
    });
    await recordLatencyCheck(store, 'cal', p.check);
    const back = await readLatencyCheck(store, 'cal');
    assert.deepEqual(back, p.check);
    const info = buildReportInfo((await store.getStudy('cal'))!, [], [], null, back);
    const md = renderMarkdown(info, { pareto: 'p.svg', progress: 'q.svg' });
    assert.ok(md.includes(`latency prediction: median \\|error\\| ${(100 * p.check.medianAbsError).toFixed(1)}%`), md);
    assert.match(md, /on 5 held-out candidates/);
    await store.close();
    m.dispose();
  });
});

describe('prediction check', () => {
  test('errors are relative to the measurement; the fraction error pairs each candidate with a base measured beside it', async () => {
    const cands = [{ channels: [2, 4] }, { channels: [4, 8] }];
    const predicted = new Map<string, number>([
      ['base', 1],
      ['2,4', 0.5],
      ['4,8', 0.8],
    ]);
    // The host slows down 2x after the table was fitted: every measurement is double, the ratios are not.
    const r = await checkPredictions(cands, {
      predictMs: (c) => predicted.get(c ? c.channels.join(',') : 'base')!,
      measure: async (c) => {
        const ms = predicted.get(c.channels.join(','))!;
        return { baseMs: 2, candidateMs: 2 * ms, ratio: ms };
      },
      flopsFraction: () => 0.5,
    });
    assert.deepEqual(
      r.rows.map((x) => x.error),
      [-0.5, -0.5],
    );
    assert.deepEqual(
      r.rows.map((x) => x.fractionError),
      [0, 0],
    );
    assert.equal(r.medianAbsError, 0.5);
    assert.equal(r.medianAbsFractionError, 0);
  });
});

describe('a study with latency targets', () => {
  test('runs end to end: every windowed trial lies in its latency window and records its prediction', async () => {
    const m = buildZooModel('plain-cnn', { inputShape: [28, 28, 1], numClasses: 10, width: 0.25 });
    const a = analyzeModel(m);
    const cfg = resolveConfig({
      name: 'lat',
      data: { dataset: 'synthetic', validationSize: 64, synthetic: { train: 128, test: 32 } },
      model: { zoo: 'plain-cnn', width: 0.25, checkpoint: '/unused/model.json' },
      search: { targets: [{ latency: 0.6 }, { latency: 0.4 }], window: 0.05, budget: { trials: 8 } },
      evaluation: { finalists: { count: 0 }, latency: { batchSize: 4, tableStep: 1 } },
      run: { store: ':memory:', workers: 'inline' },
    });
    const store = new MemoryStore();
    const t = staircase();
    let baseSum = 0;
    for (const u of layerShapes(a, null)) baseSum += await t(u.shape);
    const lat = await prepareLatency({
      cfg,
      store,
      analysis: a,
      space: studySpace(cfg, a),
      base: m,
      tableId: TABLE,
      timer: staircase(),
      baseLatencyMs: async () => (1.1 * baseSum) / 4,
      // The engine as the table says, plus a fixed 10% of the base: the correction finds it.
      measure: async (c) => {
        let sum = 0;
        for (const u of layerShapes(a, c)) sum += await t(u.shape);
        const ratio = (sum + 0.1 * baseSum) / (1.1 * baseSum);
        return { baseMs: (1.1 * baseSum) / 4, candidateMs: (ratio * 1.1 * baseSum) / 4, ratio };
      },
      align: 1,
      log: () => {},
    });
    assert.ok(lat.check && lat.check.medianAbsFractionError < 1e-9, JSON.stringify(lat.check));
    const evaluator = {
      capacity: 1,
      evaluate: async (req: { candidate: Candidate }) => ({
        proxyAccuracy: 0.5,
        latencyMs: lat.predictMs(req.candidate) * 1.05,
        cost: costOf(a, req.candidate),
        timings: {},
        worker: 'fake',
      }),
      close: async () => {},
    };
    const summary = await runStudy({
      cfg,
      configHash: 'h',
      store,
      analysis: a,
      latency: lat,
      baseAccuracy: async () => ({ proxy: 0.9, test: 0.9 }),
      evaluator: async () => evaluator,
      budget: { trials: 8, deadline: null },
      fresh: false,
      signal: new AbortController().signal,
      log: () => undefined,
      pollMs: 5,
    });
    assert.equal(summary.evaluated, 8);
    const trials = await store.listTrials('lat');
    let windowed = 0;
    for (const tr of trials) {
      const meta = tr.meta as { target?: number; windowExempt?: boolean; predictedLatencyMs?: number; latencyTable?: string };
      assert.equal(meta.predictedLatencyMs, Math.round(lat.predictMs(tr.candidate) * 1e6) / 1e6);
      assert.equal(meta.latencyTable, lat.table);
      if (meta.target !== undefined && !meta.windowExempt) {
        windowed++;
        assert.ok(Math.abs(lat.fractionOf(tr.candidate) - meta.target) <= 0.05 + 1e-9, `trial ${tr.number}`);
      }
    }
    assert.ok(windowed > 0);
    assert.deepEqual(await readLatencyCheck(store, 'lat'), lat.check, 'the study records its check');
    await store.close();
    m.dispose();
  });
});
