/**
 * A user's own model through the CLI, as the README tells users to check one before an overnight
 * run: a Keras model as the tfjs converter writes it (class `Functional` inside `model_config`,
 * Keras layer names and config fields, weights named `layer/kernel`), then `inspect`, a 2-trial
 * search on the default backend, and `export`. And a model with an unsupported layer is refused by
 * `inspect` and by `search` before the store exists.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { analyzeModel } from '../src/model/analysis.js';
import { loadModel, saveModel } from '../src/model/io.js';
import { openStore } from '../src/store/index.js';
import { FIXTURE_CLASSES, FIXTURE_SHAPE, kerasConverted, userFixtures } from './fixtures/user-models.js';
import { cli, oneLine } from './helpers.js';

let dir: string;
before(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'autoprune-user-cli-'));
});

const config = (name: string, checkpoint: string) => `name: ${name}
data:
  dataset: synthetic
  validationSize: 48
  synthetic: { shape: [${FIXTURE_SHAPE.join(', ')}], classes: ${FIXTURE_CLASSES}, train: 160, test: 48 }
model:
  checkpoint: ${checkpoint}
search:
  targets: [0.5]
  budget: { trials: 2 }
evaluation:
  calibration: { batches: 2, batchSize: 16 }
  finalists: { count: 0 }
  latency: { batchSize: 2, runs: 1 }
run:
  workers: inline
  store: ${join(dir, `${name}.db`)}
`;

async function writeKeras(folder: string, model: tf.LayersModel): Promise<string> {
  const { json, weights } = await kerasConverted(model);
  await mkdir(folder, { recursive: true });
  await writeFile(join(folder, 'model.json'), JSON.stringify(json));
  await writeFile(join(folder, 'group1-shard1of1.bin'), new Uint8Array(weights));
  return join(folder, 'model.json');
}

for (const pick of ['separable', 'sequential']) {
  test(`a Keras-converted model (${pick}) loads, inspects, searches 2 trials on the default backend and exports`, async () => {
    const fx = userFixtures().find((f) => (pick === 'sequential' ? !f.spec : f.spec?.conv === 'separable' && f.spec.head === 'flatten-hidden-dropout-dense'))!;
    const original = fx.build(5);
    const path = await writeKeras(join(dir, `keras-${pick}`), original);
    const json = JSON.parse(await readFile(path, 'utf8'));
    assert.equal(json.modelTopology.model_config.class_name, pick === 'sequential' ? 'Sequential' : 'Functional');

    const loaded = await loadModel(path);
    const x = tf.randomNormal([3, ...FIXTURE_SHAPE], 0, 1, 'float32', 3);
    assert.equal(
      tf.tidy(
        () =>
          (original.predict(x) as tf.Tensor)
            .sub(loaded.predict(x) as tf.Tensor)
            .abs()
            .max()
            .dataSync()[0],
      ),
      0,
    );
    const groups = analyzeModel(loaded).groups;
    assert.deepEqual(
      groups.map((g) => g.channels),
      analyzeModel(original).groups.map((g) => g.channels),
    );

    const inspect = await cli('inspect', path, '--json');
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.deepEqual(
      (JSON.parse(inspect.stdout) as { groups: { id: string }[] }).groups.map((g) => g.id),
      groups.map((g) => g.id),
    );

    const cfgPath = join(dir, `keras-${pick}.yaml`);
    await writeFile(cfgPath, config(`keras-${pick}`, path));
    const search = await cli('search', cfgPath);
    assert.equal(search.code, 0, search.stderr);
    assert.doesNotMatch(search.stdout + search.stderr, /failed/);
    const store = await openStore(join(dir, `keras-${pick}.db`));
    const trials = await store.listTrials(`keras-${pick}`);
    await store.close();
    assert.equal(trials.length, 2);
    assert.ok(
      trials.every((t) => t.state === 'complete'),
      JSON.stringify(trials.map((t) => [t.state, t.error])),
    );

    const out = join(dir, `export-${pick}`);
    const exp = await cli('export', `keras-${pick}`, '--trial', String(trials[1].number), '--out', out, '--store', join(dir, `keras-${pick}.db`));
    assert.equal(exp.code, 0, exp.stderr);
    const exported = await loadModel(join(out, 'model.json'));
    assert.equal(exported.countParams(), trials[1].cost.params);
    assert.deepEqual((exported.predict(x) as tf.Tensor).shape, [3, FIXTURE_CLASSES]);
  });
}

test('an unsupported layer is refused by inspect and by search before the store is created, in one line', async () => {
  const inp = tf.input({ shape: [...FIXTURE_SHAPE] });
  let y = tf.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same' }).apply(inp) as tf.SymbolicTensor;
  y = tf.layers.upSampling2d({ name: 'upsample', size: [2, 2] }).apply(y) as tf.SymbolicTensor;
  y = tf.layers.globalAveragePooling2d({}).apply(y) as tf.SymbolicTensor;
  const m = tf.model({ inputs: inp, outputs: tf.layers.dense({ units: FIXTURE_CLASSES }).apply(y) as tf.SymbolicTensor });
  await saveModel(m, join(dir, 'unsupported'));
  const path = join(dir, 'unsupported', 'model.json');
  for (const r of [
    await cli('inspect', path),
    await (async () => {
      await writeFile(join(dir, 'unsupported.yaml'), config('unsupported', path));
      return cli('search', join(dir, 'unsupported.yaml'));
    })(),
  ]) {
    const line = oneLine(r);
    assert.match(line, /Layer `upsample` of class `UpSampling2D` is not supported/);
    assert.match(line, /supported classes: InputLayer, Conv2D, DepthwiseConv2D, SeparableConv2D, Dense/);
  }
  assert.equal(existsSync(join(dir, 'unsupported.db')), false, 'no store was opened');
});
