import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { configHash, deadlineFromUntil, loadConfig, parseDuration, type ResolvedConfig, resolveConfig } from '../src/config/index.js';
import { isAutopruneError } from '../src/core/errors.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'autoprune-config-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function write(name: string, text: string): Promise<string> {
  const p = join(dir, name);
  await writeFile(p, text);
  return p;
}

/** Runs `fn`, asserts it throws an AutopruneError with `code` and a one-line message; returns the message. */
async function failure(fn: () => unknown, code: string): Promise<string> {
  try {
    await fn();
  } catch (e) {
    assert.ok(isAutopruneError(e), `expected an AutopruneError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.ok(!e.message.includes('\n'), `message should be one line: ${JSON.stringify(e.message)}`);
    return e.message;
  }
  assert.fail('expected an error');
}

const CWD = '/work/project';
const minimal = { name: 'tiny', model: { zoo: 'plain-cnn' } };

describe('resolveConfig', () => {
  test('a minimal config resolves to the documented defaults', () => {
    const expected: ResolvedConfig = {
      name: 'tiny',
      data: { dataset: 'fashion-mnist', validationSize: 5000 },
      model: { zoo: 'plain-cnn', width: 1 },
      train: {
        epochs: 3,
        batchSize: 64,
        learningRate: 0.001,
        optimizer: 'adam',
        momentum: 0.9,
        bnMomentum: 0.9,
        weightDecay: 0,
        augment: false,
        out: '/work/project/experiments/tiny/base',
      },
      space: { minKeepRatio: 0.25, channelStep: 1, skip: [] },
      search: {
        controller: { name: 'random', perTarget: null },
        baseline: true,
        warmStart: 'none',
        targets: [0.5],
        window: 0.03,
        budget: { trials: 40 },
      },
      evaluation: {
        importance: 'l1',
        calibration: { batches: 10, batchSize: 128, unfold: 'auto' },
        validation: {},
        finetune: { batchSize: 64, learningRate: 0.0005, optimizer: 'adam', momentum: 0.9, weightDecay: 0, augment: false },
        rungs: [{ keep: 1, max: 3, finetune: { epochs: 1 } }],
        adapt: { epochs: 1, batchesPerEpoch: 20 },
        latency: { batchSize: 32, runs: 5, engine: 'onnxruntime', tableStep: 'auto', clock: 'wall', calibration: 8, check: 8, predict: false },
      },
      run: {
        concurrency: 1,
        backend: 'auto',
        seed: 0,
        store: '/work/project/experiments/autoprune.db',
        workers: 'threads',
        engine: { proxy: 'auto', train: 'auto' },
        remoteWorkers: 0,
        maxConsecutiveFailures: 5,
        leaseSeconds: 60,
        maxAttempts: 3,
      },
    };
    assert.deepEqual(resolveConfig(minimal, { cwd: CWD }), expected);
  });

  test('run.engine: one name sets every stage that engine runs; a mapping names each stage', () => {
    const engine = (e: unknown) => resolveConfig({ name: 'e', model: { zoo: 'resnet-20' }, run: { engine: e } }, { cwd: CWD }).run.engine;
    assert.deepEqual(engine('tfjs'), { proxy: 'tfjs', train: 'tfjs' });
    assert.deepEqual(engine('onnxruntime'), { proxy: 'onnxruntime', train: 'auto' });
    assert.deepEqual(engine({ proxy: 'tfjs' }), { proxy: 'tfjs', train: 'auto' });
    assert.throws(() => engine('torch'), /`run\.engine` expected one of auto, onnxruntime, tfjs, or a mapping \{ proxy, train \}.*got `torch`/);
    assert.throws(() => engine({ train: 'onnxruntime' }), /run\.engine/);
  });

  test('a `:memory:` store is kept as is, not made a path', () => {
    for (const store of [':memory:', 'memory:']) {
      assert.equal(resolveConfig({ ...minimal, run: { store } }, { cwd: CWD }).run.store, store);
    }
  });

  test('relative paths resolve against cwd; absolute ones stay', () => {
    const r = resolveConfig({ name: 'p', data: { dir: 'data/fm' }, model: { checkpoint: '/abs/model.json' }, train: { out: 'out' } }, { cwd: CWD });
    assert.equal(r.data.dir, '/work/project/data/fm');
    assert.equal(r.model.checkpoint, '/abs/model.json');
    assert.equal(r.train.out, '/work/project/out');
  });

  test('synthetic data gets its defaults filled', () => {
    const r = resolveConfig({ ...minimal, data: { dataset: 'synthetic', validationSize: 100 } }, { cwd: CWD });
    assert.deepEqual(r.data.synthetic, { shape: [28, 28, 1], classes: 10, train: 1000, test: 200 });
  });

  test('the result is frozen', () => {
    const r = resolveConfig(minimal, { cwd: CWD });
    assert.ok(Object.isFrozen(r) && Object.isFrozen(r.search.targets));
  });

  test('controller is a discriminated union', () => {
    const r = resolveConfig({ ...minimal, search: { controller: { name: 'uniform', steps: 4 } } }, { cwd: CWD });
    assert.deepEqual(r.search.controller, { name: 'uniform', steps: 4 });
  });
});

describe('config errors: one line with code, field path, bad value and expectation', () => {
  const bad = (patch: Record<string, unknown>) => () => resolveConfig({ ...minimal, ...patch }, { source: 'x.yaml' });

  const cases: ReadonlyArray<{ name: string; patch: Record<string, unknown>; expect: RegExp }> = [
    {
      name: 'wrong type',
      patch: { run: { concurrency: 'two' } },
      expect: /^x\.yaml: `run\.concurrency` expected an integer in \[1, 16\], got `two`$/,
    },
    {
      name: 'unknown key',
      patch: { search: { controler: { name: 'random' } } },
      expect: /^x\.yaml: unknown key `search\.controler` \(expected one of: controller, baseline, warmStart, targets, window, budget\)$/,
    },
    {
      name: 'unknown top-level key',
      patch: { serach: {} },
      expect: /^x\.yaml: unknown key `serach` \(expected one of: name, data, model, train, space, search, evaluation, run\)$/,
    },
    {
      name: 'ratio > 1',
      patch: { space: { minKeepRatio: 1.3 } },
      expect: /^x\.yaml: `space\.minKeepRatio` expected a number in \(0, 1\], got 1\.3$/,
    },
    {
      name: 'target out of range (array element path)',
      patch: { search: { targets: [0.5, 1.5] } },
      expect: /^x\.yaml: `search\.targets\[1\]` expected a FLOPs fraction in \(0, 1\] or `\{ latency: f \}` with f in \(0, 1\], got 1\.5$/,
    },
    {
      name: 'bad enum',
      patch: { evaluation: { importance: 'l3' } },
      expect: /^x\.yaml: `evaluation\.importance` expected one of `l1`, `l2`, `bn-gamma`, `random`, got `l3`$/,
    },
    {
      name: 'bad controller name',
      patch: { search: { controller: { name: 'netadapt' } } },
      expect: /^x\.yaml: `search\.controller\.name` expected one of `random`, `uniform`, `greedy`, `evolutionary`, `rl`, `global`, got `netadapt`$/,
    },
    {
      name: 'warm start with a controller that cannot use it',
      patch: { search: { controller: { name: 'greedy' }, warmStart: 'baselines' } },
      expect: /^x\.yaml: `search\.warmStart: baselines` cannot be used with controller `greedy` .*expected random, evolutionary or rl/,
    },
    {
      name: 'warm start without the baseline sweep',
      patch: { search: { baseline: false, warmStart: 'baselines' } },
      expect: /^x\.yaml: `search\.warmStart: baselines` cannot be used with `search\.baseline: false`/,
    },
    {
      name: 'bad duration',
      patch: { search: { budget: { time: '8 hours' } } },
      expect: /^x\.yaml: `search\.budget\.time` expected a duration like `8h`.*, got `8 hours`$/,
    },
    {
      name: 'bad clock time',
      patch: { search: { budget: { until: '25:00' } } },
      expect: /^x\.yaml: `search\.budget\.until` expected a local clock time `HH:MM`.*, got `25:00`$/,
    },
    {
      name: 'missing required field',
      patch: { name: undefined },
      expect: /^x\.yaml: missing `name` \(expected a study name/,
    },
    {
      name: 'bad study name',
      patch: { name: 'my study/1' },
      expect: /^x\.yaml: `name` expected a study name .*, got `my study\/1`$/,
    },
    {
      name: 'model without zoo or checkpoint',
      patch: { model: { width: 0.5 } },
      expect: /^x\.yaml: `model` expected `zoo` .* and\/or `checkpoint` .*, got \{"width":0\.5\}$/,
    },
    {
      name: 'validation split larger than the data',
      patch: { data: { dataset: 'synthetic', synthetic: { train: 512 } } },
      expect: /^x\.yaml: `data\.validationSize` \(default\) expected an integer below the 512 training images .*, got 5000$/,
    },
    {
      name: 'several issues: the first, then a count (unknown keys first)',
      patch: { space: { minKeepRatio: 2 }, run: { seed: -1, colour: 'red' } },
      expect: /^x\.yaml: unknown key `run\.colour` .* \(and 2 more\)$/,
    },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const msg = await failure(bad(c.patch), 'CONFIG_INVALID');
      assert.match(msg, c.expect);
    });
  }

  test('not a mapping', async () => {
    const msg = await failure(() => resolveConfig(null, { source: 'x.yaml' }), 'CONFIG_INVALID');
    assert.match(msg, /^x\.yaml: expected a mapping.*, got null$/);
  });
});

describe('loadConfig', () => {
  test('missing file -> CONFIG_NOT_FOUND naming the path', async () => {
    const p = join(dir, 'nope.yaml');
    const msg = await failure(() => loadConfig(p), 'CONFIG_NOT_FOUND');
    assert.ok(msg.includes(p), msg);
  });

  test('YAML syntax error -> CONFIG_INVALID with the line number', async () => {
    const p = await write('broken.yaml', 'name: x\nmodel:\n  zoo: [plain-cnn\nrun: {}\n');
    const msg = await failure(() => loadConfig(p), 'CONFIG_INVALID');
    assert.ok(msg.startsWith(`${p}:4:`), msg);
    assert.match(msg, /YAML syntax error/);
  });

  test('duplicate YAML keys are an error', async () => {
    const p = await write('dup.yaml', 'name: x\nname: y\nmodel: { zoo: plain-cnn }\n');
    const msg = await failure(() => loadConfig(p), 'CONFIG_INVALID');
    assert.match(msg, /:2:\d+: YAML syntax error: Map keys must be unique/);
  });

  test('JSON syntax error -> CONFIG_INVALID with the line number', async () => {
    const p = await write('broken.json', '{\n  "name": "x",\n}\n');
    const msg = await failure(() => loadConfig(p), 'CONFIG_INVALID');
    assert.match(msg, new RegExp(`^${p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:\\d+: JSON syntax error`));
  });

  test('unsupported extension', async () => {
    const p = await write('c.toml', 'name = "x"');
    const msg = await failure(() => loadConfig(p), 'CONFIG_INVALID');
    assert.match(msg, /unsupported config format `\.toml`/);
  });

  test('schema errors name the file', async () => {
    const p = await write('bad.yaml', 'name: x\nmodel: { zoo: plain-cnn }\nspace: { minKeepRatio: 1.3 }\n');
    const msg = await failure(() => loadConfig(p), 'CONFIG_INVALID');
    assert.equal(msg, `${p}: \`space.minKeepRatio\` expected a number in (0, 1], got 1.3`);
  });

  test('YAML and JSON of the same config load identically; user is the raw parse', async () => {
    const y = await write('same.yaml', 'name: same\nmodel: { zoo: resnet-20 }\nsearch: { targets: [0.5, 0.3] }\n');
    const j = await write('same.json', JSON.stringify({ name: 'same', model: { zoo: 'resnet-20' }, search: { targets: [0.5, 0.3] } }));
    const a = await loadConfig(y);
    const b = await loadConfig(j);
    assert.deepEqual(a.resolved, b.resolved);
    assert.equal(a.hash, b.hash);
    assert.deepEqual(a.user, { name: 'same', model: { zoo: 'resnet-20' }, search: { targets: [0.5, 0.3] } });
  });

  for (const name of ['quickstart', 'overnight', 'smoke']) {
    test(`shipped configs/${name}.yaml validates`, async () => {
      const { resolved, hash } = await loadConfig(`configs/${name}.yaml`);
      assert.equal(resolved.name, name);
      assert.match(hash, /^[0-9a-f]{64}$/);
    });
  }

  test('shipped configs say what the brief asks', async () => {
    const q = (await loadConfig('configs/quickstart.yaml')).resolved;
    assert.deepEqual(q.search.targets, [0.5, 0.3]);
    assert.equal(q.evaluation.validation.limit, 2000);
    // Finalists fine-tune one full epoch each (no batch cap).
    // Finalists: one rung, the best per target (2 targets), one full epoch each (no batch cap), SGD as in train.
    assert.deepEqual(q.evaluation.rungs, [{ keep: 1, max: 1, finetune: { epochs: 1 } }]);
    assert.deepEqual([q.evaluation.finetune.batchesPerEpoch, q.evaluation.finetune.optimizer, q.evaluation.finetune.learningRate], [undefined, 'sgd', 0.01]);
    assert.equal(q.run.concurrency, 2);
    const o = (await loadConfig('configs/overnight.yaml')).resolved;
    assert.equal(o.search.budget.time, '8h');
    // 5 finalists over 3 targets: 2 per target, 3 epochs.
    assert.deepEqual(o.evaluation.rungs, [{ keep: 1, max: 2, finetune: { epochs: 3 } }]);
    const s = (await loadConfig('configs/smoke.yaml')).resolved;
    assert.deepEqual([s.data.dataset, s.model.zoo, s.model.width], ['synthetic', 'plain-cnn', 0.25]);
    // The smoke checkpoint is where `autoprune train configs/smoke.yaml` saves it (train.out default).
    assert.equal(s.model.checkpoint, join(s.train.out, 'model.json'));
    assert.equal(s.run.workers, 'inline');
  });
});

describe('configHash', () => {
  const base = { name: 'h', model: { zoo: 'plain-cnn', width: 0.5 }, search: { targets: [0.5], window: 0.02 } };
  const hash = (u: unknown): string => configHash(resolveConfig(u, { cwd: CWD }));

  test('stable under key order', () => {
    const reordered = { search: { window: 0.02, targets: [0.5] }, model: { width: 0.5, zoo: 'plain-cnn' }, name: 'h' };
    assert.equal(hash(base), hash(reordered));
  });

  test('stable when a default is written out explicitly', () => {
    assert.equal(hash(base), hash({ ...base, run: { seed: 0 } }));
  });

  test('changes when a value changes', () => {
    assert.notEqual(hash(base), hash({ ...base, search: { targets: [0.5], window: 0.03 } }));
    assert.notEqual(hash(base), hash({ ...base, search: { targets: [0.3, 0.5], window: 0.02 } }));
  });
});

describe('durations', () => {
  const ok: ReadonlyArray<[string, number]> = [
    ['8h', 8 * 3_600_000],
    ['90m', 90 * 60_000],
    ['30s', 30_000],
    ['1h30m', 90 * 60_000],
    ['1.5h', 90 * 60_000],
    ['1d 2h', 26 * 3_600_000],
  ];
  for (const [text, ms] of ok) test(`parseDuration(${text})`, () => assert.equal(parseDuration(text), ms));

  for (const text of ['', '8', '8x', 'h', '30m1h', '1h1h', '0s', '-1h', '8 hours']) {
    test(`parseDuration(${JSON.stringify(text)}) throws a clear error`, async () => {
      const msg = await failure(() => parseDuration(text), 'INVALID_ARGUMENT');
      assert.ok(msg.includes('1h30m') && msg.includes(`got \`${text}\``), msg);
    });
  }

  test('deadlineFromUntil: later today, or tomorrow once passed (local time)', () => {
    const now = new Date(2024, 4, 10, 22, 15, 0);
    assert.deepEqual(deadlineFromUntil('23:00', now), new Date(2024, 4, 10, 23, 0, 0));
    assert.deepEqual(deadlineFromUntil('07:00', now), new Date(2024, 4, 11, 7, 0, 0));
    assert.deepEqual(deadlineFromUntil('22:15', now), new Date(2024, 4, 11, 22, 15, 0), 'now itself is not "next"');
    assert.deepEqual(deadlineFromUntil('7:05', new Date(2024, 11, 31, 8, 0)), new Date(2025, 0, 1, 7, 5, 0));
  });

  test('deadlineFromUntil rejects a bad clock time', async () => {
    const msg = await failure(() => deadlineFromUntil('7am', new Date(0)), 'INVALID_ARGUMENT');
    assert.match(msg, /HH:MM.*got `7am`/);
  });
});

describe('evaluation.finetune and evaluation.rungs', () => {
  const withEval = (evaluation: object, extra: object = {}) => resolveConfig({ ...minimal, ...extra, evaluation }, { source: 'x.yaml', cwd: CWD });

  test('the recipe takes train’s optimizer, momentum, weight decay and augmentation unless written', () => {
    const train = { optimizer: 'sgd', momentum: 0.8, weightDecay: 0.0005, augment: true };
    const inherited = withEval({}, { train }).evaluation.finetune;
    assert.deepEqual([inherited.optimizer, inherited.momentum, inherited.weightDecay, inherited.augment], ['sgd', 0.8, 0.0005, true]);
    const own = withEval({ finetune: { optimizer: 'adam', momentum: 0.5, weightDecay: 0, augment: false } }, { train }).evaluation.finetune;
    assert.deepEqual([own.optimizer, own.momentum, own.weightDecay, own.augment], ['adam', 0.5, 0, false]);
  });

  test('distillation is off by default; written, it resolves with its defaults and enters the hash', async () => {
    assert.equal(withEval({}).evaluation.finetune.distill, undefined);
    assert.deepEqual(withEval({ finetune: { distill: {} } }).evaluation.finetune.distill, { temperature: 4, alpha: 0.9 });
    assert.deepEqual(withEval({ finetune: { distill: { temperature: 2, alpha: 0.5 } } }).evaluation.finetune.distill, { temperature: 2, alpha: 0.5 });
    const hashes = [{}, { finetune: { distill: {} } }, { finetune: { distill: { alpha: 0.5 } } }].map((e) => configHash(withEval(e)));
    assert.equal(new Set(hashes).size, 3, 'switching distillation on, or changing alpha, changes the config hash');
  });

  test('distillation trains on libtorch: the tfjs training engine is refused in one line naming the key', async () => {
    const expected = /^x\.yaml: `evaluation\.finetune\.distill` trains on libtorch: expected `run\.engine\.train` auto or libtorch, got tfjs$/;
    for (const engine of ['tfjs', { train: 'tfjs' }, { proxy: 'onnxruntime', train: 'tfjs' }]) {
      assert.match(await failure(() => withEval({ finetune: { distill: {} } }, { run: { engine } }), 'CONFIG_INVALID'), expected);
    }
    for (const engine of ['auto', 'onnxruntime', { train: 'libtorch' }, { proxy: 'tfjs', train: 'auto' }]) {
      assert.deepEqual(withEval({ finetune: { distill: {} } }, { run: { engine } }).evaluation.finetune.distill, { temperature: 4, alpha: 0.9 });
    }
  });

  test('rungs are taken as written, in order', () => {
    const rungs = [
      { keep: 0.5, finetune: { steps: 200 } },
      { keep: 0.25, max: 2, finetune: { epochs: 1 } },
    ];
    assert.deepEqual(withEval({ rungs }).evaluation.rungs, rungs);
    assert.deepEqual(withEval({ rungs: [] }).evaluation.rungs, []);
  });

  test('finalists is shorthand for one capped rung: count spread over the targets, rounded up', () => {
    const r = (finalists: object, targets: number[]) => withEval({ finalists }, { search: { targets } }).evaluation.rungs;
    assert.deepEqual(r({ count: 3, epochs: 2 }, [0.5]), [{ keep: 1, max: 3, finetune: { epochs: 2 } }]);
    assert.deepEqual(r({ count: 3 }, [0.5, 0.3]), [{ keep: 1, max: 2, finetune: { epochs: 1 } }]);
    assert.deepEqual(r({ count: 0 }, [0.5]), []);
    assert.deepEqual(r({ count: 1, epochs: 0 }, [0.5]), [{ keep: 1, max: 1, finetune: { epochs: 0 } }]);
    // The resolved config has rungs only.
    assert.equal('finalists' in withEval({ finalists: { count: 1 } }).evaluation, false);
  });

  test('the old finalists recipe keys are read as evaluation.finetune keys', () => {
    const f = withEval({ finalists: { count: 1, batchSize: 32, learningRate: 0.01, batchesPerEpoch: 5 } }).evaluation.finetune;
    assert.deepEqual([f.batchSize, f.learningRate, f.batchesPerEpoch], [32, 0.01, 5]);
  });

  test('moved, conflicting and bad keys: one line naming the key', async () => {
    const bad = async (evaluation: object, re: RegExp) => assert.match(await failure(() => withEval(evaluation), 'CONFIG_INVALID'), re);
    await bad({ adapt: { learningRate: 0.01 } }, /^x\.yaml: `evaluation\.adapt\.learningRate` is gone: .* `evaluation\.finetune\.learningRate`$/);
    await bad({ adapt: { batchSize: 8 } }, /`evaluation\.finetune\.batchSize`$/);
    await bad(
      { finalists: { count: 1, learningRate: 0.01 }, finetune: { learningRate: 0.02 } },
      /both given: write only `evaluation\.finetune\.learningRate`$/,
    );
    await bad({ finalists: { count: 1 }, rungs: [] }, /`evaluation\.finalists` and `evaluation\.rungs` both given/);
    await bad({ rungs: [{ keep: 0, finetune: { steps: 1 } }] }, /`evaluation\.rungs\[0\]\.keep` expected a number in \(0, 1\], got 0$/);
    await bad({ rungs: [{ keep: 0.5, finetune: { steps: 0 } }] }, /`evaluation\.rungs\[0\]\.finetune\.steps` expected an integer >= 1, got 0$/);
    await bad({ rungs: [{ keep: 0.5, finetune: { epochs: 1, steps: 3 } }] }, /evaluation\.rungs\[0\]\.finetune/);
    await bad({ finetune: { distill: { alpha: 2 } } }, /`evaluation\.finetune\.distill\.alpha` expected a number in \[0, 1\], got 2$/);
    await bad({ finetune: { distill: { temperature: 0 } } }, /`evaluation\.finetune\.distill\.temperature` expected a number > 0, got 0$/);
    await bad({ finetune: { distill: { T: 4 } } }, /evaluation\.finetune\.distill/);
  });
});
