/**
 * A host whose base model or dataset is not the study's is refused before it claims anything: the
 * driver records sha256 hashes of both when it creates the study; `autoprune worker` (and a resumed
 * search) compares its own. Real files here: two plain-cnn models and two idx datasets that differ
 * in one label.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { studyInputs } from '../src/app/index.js';
import { configHash, type ResolvedConfig, resolveConfig } from '../src/config/index.js';
import { Rng } from '../src/core/rng.js';
import { splitsHash } from '../src/data/fingerprint.js';
import { loadBaseModel, loadSplits } from '../src/evaluators/setup.js';
import { analyzeModel } from '../src/model/analysis.js';
import { modelHash } from '../src/model/fingerprint.js';
import { loadModel, saveModel } from '../src/model/io.js';
import { buildZooModel } from '../src/model/zoo.js';
import { checkStudyInputs, MemoryStore, openStore, type StudyInputs } from '../src/store/index.js';
import { openStudy } from '../src/study/lifecycle.js';
import { cli, oneLine } from './helpers.js';

let dir: string;
let cfg: ResolvedConfig;
let inputs: StudyInputs;

/** An idx file of unsigned bytes: magic 00 00 08 ndims, big-endian dims, data. */
function idx(dims: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header[2] = 0x08;
  header[3] = dims.length;
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}

/** A Fashion-MNIST-shaped idx set (120 train, 40 test images of 28x28); `flipLabel` changes train label 0. */
async function writeIdxSet(to: string, flipLabel: boolean): Promise<void> {
  const rng = new Rng(5);
  const bytes = (n: number, max: number) => Uint8Array.from({ length: n }, () => Math.floor(rng.next() * max));
  const [trainImages, trainLabels, testImages, testLabels] = [bytes(120 * 784, 256), bytes(120, 10), bytes(40 * 784, 256), bytes(40, 10)];
  if (flipLabel) trainLabels[0] = (trainLabels[0] + 1) % 10;
  await mkdir(to, { recursive: true });
  await writeFile(join(to, 'train-images-idx3-ubyte'), idx([120, 28, 28], trainImages));
  await writeFile(join(to, 'train-labels-idx1-ubyte'), idx([120], trainLabels));
  await writeFile(join(to, 't10k-images-idx3-ubyte'), idx([40, 28, 28], testImages));
  await writeFile(join(to, 't10k-labels-idx1-ubyte'), idx([40], testLabels));
}

before(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'autoprune-inputs-'));
  const model = (seed: number) => buildZooModel('plain-cnn', { inputShape: [28, 28, 1], numClasses: 10, width: 0.25, seed });
  await saveModel(model(3), join(dir, 'base'));
  await saveModel(model(4), join(dir, 'other'));
  await writeIdxSet(join(dir, 'data'), false);
  await writeIdxSet(join(dir, 'data-b'), true);
  cfg = resolveConfig({
    name: 'w',
    data: { dataset: 'fashion-mnist', dir: join(dir, 'data'), validationSize: 20 },
    model: { zoo: 'plain-cnn', width: 0.25, checkpoint: join(dir, 'base', 'model.json') },
    run: { seed: 7, store: join(dir, 'store.db'), backend: 'cpu', concurrency: 1 },
  });
  const splits = await loadSplits(cfg);
  const base = await loadBaseModel(cfg, splits);
  inputs = studyInputs(base, splits);
  const store = await openStore(cfg.run.store);
  try {
    const analysis = analyzeModel(base);
    await openStudy({ cfg, configHash: configHash(cfg), store, analysis, inputs, baseAccuracy: async () => ({ proxy: 0.1, test: 0.1 }), log: () => undefined });
    // Nothing to evaluate: a matching worker starts, sees the study complete and leaves.
    await store.setStudyState('w', 'complete');
  } finally {
    await store.close();
  }
  base.dispose();
});

after(() => rm(dir, { recursive: true, force: true }));

describe('study inputs: hashes of the base model and the data', () => {
  test('a model hashes the same when loaded again (names made unique by tfjs left out), another model not', async () => {
    const a = await loadModel(join(dir, 'base', 'model.json'));
    const again = await loadModel(join(dir, 'base', 'model.json'));
    const other = await loadModel(join(dir, 'other', 'model.json'));
    assert.notEqual(a.weights[0].name, again.weights[0].name, 'tfjs gave the second copy other variable names');
    assert.equal(modelHash(a), inputs.baseModel);
    assert.equal(modelHash(again), inputs.baseModel);
    assert.notEqual(modelHash(other), inputs.baseModel);
    // One weight changed by one ulp is another model.
    const [k, ...rest] = again.layers[1].getWeights();
    const bumped = k.dataSync().slice();
    bumped[0] = bumped[0] === 0 ? 1e-45 : bumped[0] * (1 + 2 ** -23);
    again.layers[1].setWeights([tf.tensor(bumped, k.shape), ...rest]);
    assert.notEqual(modelHash(again), inputs.baseModel);
    for (const m of [a, again, other]) m.dispose();
  });

  test('the data hash follows the files (one label), the split seed and the validation size', async () => {
    const same = await loadSplits(await copied());
    assert.equal(splitsHash(same), inputs.data, 'a copy of the files in another folder is the same data');
    const variants = [
      { ...cfg, data: { ...cfg.data, dir: join(dir, 'data-b') } },
      { ...cfg, run: { ...cfg.run, seed: 8 } },
      { ...cfg, data: { ...cfg.data, validationSize: 21 } },
    ] as ResolvedConfig[];
    for (const v of variants) assert.notEqual(splitsHash(await loadSplits(v)), inputs.data, `${JSON.stringify(v.data)} seed ${v.run.seed}`);
  });

  test('checkStudyInputs: one line naming both hashes of what differs; a study without hashes passes', () => {
    const study = { name: 'w', inputs };
    checkStudyInputs(study, inputs, 'hint');
    checkStudyInputs({ name: 'old', inputs: null }, { baseModel: '0'.repeat(64), data: '1'.repeat(64) }, 'hint');
    assert.throws(
      () => checkStudyInputs(study, { ...inputs, data: 'f'.repeat(64) }, 'point --data at it'),
      (e: Error & { code?: string }) =>
        e.code === 'INPUTS_MISMATCH' &&
        !e.message.includes('\n') &&
        e.message.includes(`data sha256 ${'f'.repeat(16)}…, the study's is ${inputs.data.slice(0, 16)}…`) &&
        !e.message.includes('base model') &&
        e.message.endsWith('point --data at it'),
    );
  });

  test('a resumed search with another base model is refused before it touches the study', async () => {
    const store = new MemoryStore();
    const other = await loadModel(join(dir, 'other', 'model.json'));
    const o = {
      cfg,
      configHash: configHash(cfg),
      store,
      analysis: analyzeModel(other),
      baseAccuracy: async () => ({ proxy: 0.1, test: 0.1 }),
      log: () => undefined,
    };
    const created = await openStudy({ ...o, inputs });
    assert.deepEqual(created.inputs, inputs);
    const theirs = { ...inputs, baseModel: modelHash(other) };
    await assert.rejects(
      openStudy({ ...o, inputs: theirs }),
      (e: Error & { code?: string }) =>
        e.code === 'INPUTS_MISMATCH' && e.message.includes(theirs.baseModel.slice(0, 16)) && e.message.includes(inputs.baseModel.slice(0, 16)),
    );
    assert.deepEqual((await openStudy({ ...o, inputs })).inputs, inputs);
    other.dispose();
    await store.close();
  });
});

/** The study's idx files copied to another folder; the config pointing there. */
async function copied(): Promise<ResolvedConfig> {
  const to = join(dir, 'copy');
  await mkdir(to, { recursive: true });
  for (const f of ['train-images-idx3-ubyte', 'train-labels-idx1-ubyte', 't10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'])
    await copyFile(join(dir, 'data', f), join(to, f));
  return { ...cfg, data: { ...cfg.data, dir: to } } as ResolvedConfig;
}

describe('autoprune worker refuses a host with other inputs (CLI)', () => {
  test('another base model (--model): one line with both base-model hashes, exit non-zero', async () => {
    const other = await loadModel(join(dir, 'other', 'model.json'));
    const theirs = modelHash(other);
    other.dispose();
    const line = oneLine(await cli('worker', '--store', cfg.run.store, '--study', 'w', '--model', join(dir, 'other', 'model.json'), '--backend', 'cpu'));
    assert.match(line, new RegExp(`base model sha256 ${theirs.slice(0, 16)}…, the study's is ${inputs.baseModel.slice(0, 16)}…`));
    assert.doesNotMatch(line, /data sha256/);
  });

  test('another dataset (--data, one label differs): one line with both data hashes', async () => {
    const theirs = splitsHash(await loadSplits({ ...cfg, data: { ...cfg.data, dir: join(dir, 'data-b') } } as ResolvedConfig));
    const line = oneLine(await cli('worker', '--store', cfg.run.store, '--study', 'w', '--data', join(dir, 'data-b'), '--backend', 'cpu'));
    assert.match(line, new RegExp(`data sha256 ${theirs.slice(0, 16)}…, the study's is ${inputs.data.slice(0, 16)}…`));
  });

  test("the study's own inputs from other folders are accepted", async () => {
    const to = join(dir, 'host2');
    await mkdir(to, { recursive: true });
    for (const f of ['model.json', 'weights.bin']) await copyFile(join(dir, 'base', f), join(to, f));
    const r = await cli(
      'worker',
      '--store',
      cfg.run.store,
      '--study',
      'w',
      '--model',
      join(to, 'model.json'),
      '--data',
      (await copied()).data.dir!,
      '--backend',
      'cpu',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout + r.stderr,
      new RegExp(`base model \\(sha256 ${inputs.baseModel.slice(0, 16)}…\\) and data \\(${inputs.data.slice(0, 16)}…\\) match the study`),
    );
  });
});
