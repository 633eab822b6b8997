/**
 * Bad input ends in one line naming the bad value and what was expected, with the exit code of its
 * class (docs/exit-codes.md: 2 usage or config, 3 data or model, 4 environment), within seconds:
 * never a library's stack trace, never a hang.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { resolveConfig } from '../src/config/index.js';
import { type ErrorCode, ErrorCodes, ExitCodes, exitCodeOf } from '../src/core/errors.js';
import { torchStatus } from '../src/engine/torch.js';
import { saveModel } from '../src/model/io.js';
import { buildZooModel } from '../src/model/zoo.js';
import { cli, oneLine, ROOT } from './helpers.js';

let dir: string;

/** A search config over synthetic data whose base model is `model` (a model.json path). */
async function config(name: string, model: string, extra: Record<string, unknown> = {}): Promise<string> {
  const path = join(dir, `${name}.json`);
  const cfg = {
    name,
    data: { dataset: 'synthetic', validationSize: 16, synthetic: { shape: [28, 28, 1], classes: 10, train: 32, test: 16 } },
    model: { zoo: 'plain-cnn', width: 0.25, checkpoint: model },
    search: { budget: { trials: 1 } },
    evaluation: { finalists: { count: 0 } },
    run: { store: join(dir, `${name}.db`), workers: 'inline', backend: 'cpu' },
    ...extra,
  };
  await writeFile(path, JSON.stringify(cfg));
  return path;
}

before(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'autoprune-bad-input-'));
  const m = buildZooModel('plain-cnn', { inputShape: [28, 28, 1], numClasses: 10, width: 0.25, seed: 1 });
  await saveModel(m, join(dir, 'base'));
  m.dispose();
});
after(() => rm(dir, { recursive: true, force: true }));

/** Runs the CLI; asserts one `autoprune:` line, the exit code, and that it took at most `seconds`. */
async function refused(args: string[], exit: number, seconds = 60): Promise<string> {
  const t0 = Date.now();
  const r = await cli(...args);
  const line = oneLine(r);
  assert.equal(r.code, exit, line);
  assert.ok(Date.now() - t0 < seconds * 1000, `took ${Date.now() - t0} ms`);
  return line;
}

describe('bad model files: exit 3, the file and the byte counts named', () => {
  test('a truncated weights.bin', async () => {
    await cp(join(dir, 'base'), join(dir, 'trunc'), { recursive: true });
    const size = (await stat(join(dir, 'trunc', 'weights.bin'))).size;
    await truncate(join(dir, 'trunc', 'weights.bin'), 1000);
    const line = await refused(['search', await config('trunc', join(dir, 'trunc', 'model.json'))], ExitCodes.INPUT);
    assert.match(line, new RegExp(`trunc/weights\\.bin\` hold 1000 bytes, but the manifest .* describes ${size} .*truncated`));
  });

  test('a missing weights file', async () => {
    await cp(join(dir, 'base'), join(dir, 'noweights'), { recursive: true });
    await rm(join(dir, 'noweights', 'weights.bin'));
    const line = await refused(['search', await config('noweights', join(dir, 'noweights', 'model.json'))], ExitCodes.INPUT);
    assert.match(line, /Weights file `.*noweights\/weights\.bin` of `.*noweights\/model\.json` cannot be read \(ENOENT\)/);
  });

  test("a manifest whose shapes disagree with the weights file's size", async () => {
    await cp(join(dir, 'base'), join(dir, 'shape'), { recursive: true });
    const path = join(dir, 'shape', 'model.json');
    const json = JSON.parse(await readFile(path, 'utf8'));
    const w = json.weightsManifest[0].weights[0];
    w.shape = [...w.shape.slice(0, -1), w.shape.at(-1) + 1]; // one more output channel than the file holds
    await writeFile(path, JSON.stringify(json));
    const line = await refused(['search', await config('shape', path)], ExitCodes.INPUT);
    assert.match(line, /shape\/weights\.bin` hold \d+ bytes, but the manifest of `.*shape\/model\.json` describes \d+/);
  });
});

describe('bad locations and values on the command line', () => {
  test('--store under /proc is refused at once (exit 4), not a hang', async () => {
    const line = await refused(['search', await config('proc', join(dir, 'base', 'model.json')), '--store', '/proc/x/y.db'], ExitCodes.ENVIRONMENT, 30);
    assert.match(line, /Cannot keep a store at `\/proc\/x\/y\.db`: `\/proc` is on the proc file system/);
  });

  test('--store inside a file is refused (exit 4)', async () => {
    const line = await refused(
      ['search', await config('infile', join(dir, 'base', 'model.json')), '--store', join(dir, 'base', 'model.json', 'x.db')],
      ExitCodes.ENVIRONMENT,
      30,
    );
    assert.match(line, /model\.json` is not a folder/);
  });

  test('--time-budget -5m reaches the duration check (exit 2) whether written with a space or `=`', async () => {
    const cfg = await config('neg', join(dir, 'base', 'model.json'));
    for (const args of [['--time-budget', '-5m'], ['--time-budget=-5m']]) {
      const line = await refused(['search', cfg, ...args], ExitCodes.USAGE, 30);
      assert.match(line, /`search\.budget\.time` expected a positive duration like `8h`.*cannot be negative.*, got `-5m`$/);
    }
  });
});

describe('an ONNX base model with a latency target', () => {
  test('is refused in one line (exit 2) before a store exists: latency tables read tfjs models only', async () => {
    const onnx = join(ROOT, 'test', 'fixtures', 'onnx', 'tiny-opset11.onnx');
    const path = await config('onnx-latency', onnx, {
      data: { dataset: 'synthetic', validationSize: 16, synthetic: { shape: [32, 32, 3], classes: 10, train: 32, test: 16 } },
      model: { checkpoint: onnx },
      search: { targets: [{ latency: 0.5 }], budget: { trials: 1 } },
    });
    const line = await refused(['search', path], ExitCodes.USAGE);
    assert.match(line, /expected a tfjs base model \(model\.json\)/);
    await assert.rejects(stat(join(dir, 'onnx-latency.db')), /ENOENT/, 'no store file is left behind');
  });
});

describe('an ONNX base model trained on tfjs', () => {
  test('a node without an exact tfjs layer is refused at start (exit 3), naming the node, before any trial runs', async () => {
    const onnx = join(ROOT, 'test', 'fixtures', 'onnx', 'tiny-opset11.onnx');
    const path = await config('onnx-tfjs-train', onnx, {
      data: { dataset: 'synthetic', validationSize: 16, synthetic: { shape: [32, 32, 3], classes: 10, train: 32, test: 16 } },
      model: { checkpoint: onnx },
      search: { targets: [0.5], budget: { trials: 2 } },
      evaluation: { finalists: { count: 1, epochs: 1 } },
      run: { store: join(dir, 'onnx-tfjs-train.db'), workers: 'inline', backend: 'cpu', engine: { proxy: 'auto', train: 'tfjs' } },
    });
    const line = await refused(['search', path], ExitCodes.INPUT);
    assert.match(line, /Node `pool\/MaxPool` \(Pool\): ceil-mode pooling that adds a window has no exact tfjs layer/);
    const { openStore } = await import('../src/store/index.js');
    const store = await openStore(join(dir, 'onnx-tfjs-train.db'));
    try {
      assert.deepEqual(await store.listTrials('onnx-tfjs-train').catch(() => []), [], 'no trial ran');
    } finally {
      await store.close();
    }
  });
});

describe('train saves where search reads', () => {
  test('train.out defaults to the folder of model.checkpoint, else experiments/<name>/base; an explicit train.out wins', () => {
    const base = { name: 'x', model: { zoo: 'plain-cnn' } };
    assert.equal(resolveConfig({ ...base, model: { zoo: 'plain-cnn', checkpoint: 'm/here/model.json' } }, { cwd: '/w' }).train.out, '/w/m/here');
    assert.equal(resolveConfig(base, { cwd: '/w' }).train.out, '/w/experiments/x/base');
    assert.equal(resolveConfig({ ...base, model: { zoo: 'plain-cnn', checkpoint: 'm/model.json' }, train: { out: 'o' } }, { cwd: '/w' }).train.out, '/w/o');
  });

  test('a config that names only model.checkpoint: train writes it, and search finds it', async () => {
    const checkpoint = join(dir, 'trained', 'model.json');
    const cfg = await config('trained', checkpoint, { train: { epochs: 1, batchSize: 16 } });
    const t = await cli('train', cfg);
    assert.equal(t.code, 0, t.stderr);
    assert.ok((await stat(checkpoint)).isFile(), 'model.json where model.checkpoint points');
    const s = await cli('search', cfg);
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /study `trained` complete/);
  });
});

test('every error code has an exit code, and docs/exit-codes.md lists each with it', async () => {
  const doc = await readFile(join(ROOT, 'docs', 'exit-codes.md'), 'utf8');
  for (const code of Object.values(ErrorCodes) as ErrorCode[]) {
    const exit = exitCodeOf(code);
    assert.ok([1, 2, 3, 4, 5].includes(exit), `${code} -> ${exit}`);
    const row = doc.split('\n').find((l) => l.startsWith(`| ${exit} `));
    assert.ok(row?.includes(`\`${code}\``), `docs/exit-codes.md: the row of exit ${exit} names ${code}`);
  }
  assert.equal(exitCodeOf(ErrorCodes.CONFIG_INVALID), 2);
  assert.equal(exitCodeOf(ErrorCodes.MODEL_INVALID), 3);
  assert.equal(exitCodeOf(ErrorCodes.BACKEND_UNAVAILABLE), 4);
});

const torch = torchStatus();
// Skips locally without the binding; in CI a missing binding fails the test instead.
const noTorch = torch.loaded || process.env.CI === 'true' ? false : `libtorch binding not available: ${torch.loaded ? '' : torch.reason}`;

describe('libtorch binding: bad arguments are JS TypeErrors naming what was expected', { skip: noTorch }, () => {
  test('fromData checks the array against the shape', () => {
    assert.ok(torch.loaded, torch.loaded ? '' : torch.reason);
    const b = torch.binding;
    assert.throws(() => b.fromData(new Float32Array(5), [2, 3]), { name: 'TypeError', message: 'fromData: shape [2,3] holds 6 elements, the array has 5' });
    assert.throws(() => b.fromData(new Float32Array(7), [2, 3]), /holds 6 elements, the array has 7/);
    assert.throws(() => b.fromData(new Int32Array(6), [2, -3]), /dims to be integers >= 0, got -3 at 1/);
    assert.throws(() => b.fromData(new Float32Array(6), [2, 2.5]), /got 2\.5 at 1/);
    const t = b.fromData(new Float64Array(6), [2, 3]);
    assert.deepEqual(t.shape, [2, 3]);
    t.dispose();
  });

  test('ops check that the inputs they need are there', () => {
    assert.ok(torch.loaded);
    const b = torch.binding;
    const x = b.fromData(new Float32Array(4), [1, 1, 2, 2]);
    assert.throws(() => b.op('conv2d', [x]), { name: 'TypeError', message: 'Op `conv2d` expected a tensor as input 1, got 1 input(s)' });
    assert.throws(() => b.op('relu', []), /Op `relu` expected a tensor as input 0, got 0 input\(s\)/);
    assert.throws(() => b.op('add', []), /Op `add` expected at least 1 input tensor/);
    assert.throws(() => b.op('batch_norm', [x, null, null]), /Op `batch_norm` expected a tensor as input 3/);
    assert.throws(() => b.op('sub', [x, null]), /Op `sub` expected a tensor as input 1, got null/);
    const y = b.op('relu', [x]);
    assert.deepEqual(y.shape, [1, 1, 2, 2]);
    for (const t of [x, y]) t.dispose();
  });
});

test('a reader that closes the pipe early (`inspect m | head -1`) ends the command quietly with exit 0', async () => {
  const child = spawn(process.execPath, ['bin/autoprune.js', 'inspect', 'resnet-20'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  // Close our end before it writes, as `head` does once it has its line: every write meets a closed pipe.
  child.stdout.destroy();
  const code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  assert.equal(stderr, '', 'no EPIPE stack trace');
  assert.equal(code, 0);
});
