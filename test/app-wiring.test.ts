/**
 * One composition root: `autoprune search`, the crash tortures and the benches build a search only
 * through src/app, so what the tortures kill is the product's wiring; every other command parses
 * its arguments, calls src/app and prints. Checked two ways:
 *  - by construction: the search command, the torture scripts, the benches and the tests import no
 *    CLI command module, and the torture's search imports from src/app only (no store, evaluator or
 *    study-loop module of its own), and no command module imports a store, evaluator, engine or
 *    model module itself;
 *  - by behaviour: the torture's search and `autoprune search` on the same config leave the same
 *    study: the same config hash and input hashes (recorded by src/app/study.ts), the same trial
 *    keys, and latencies stamped with this host (the evaluator of src/app/evaluators.ts).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { tortureSearch } from '../scripts/torture-search.js';
import { loadHostInputs, loadSearchConfig } from '../src/app/index.js';
import { saveModel } from '../src/model/io.js';
import { buildZooModel } from '../src/model/zoo.js';
import { openStore, type Store } from '../src/store/index.js';
import { cli, ROOT } from './helpers.js';

/** The module specifiers a TypeScript file imports (static `import ... from '...'` and `import('...')`). */
async function importsOf(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  return [...text.matchAll(/(?:from\s+|import\(\s*)'([^']+)'/g)].map((m) => m[1]);
}

async function tsFiles(folder: string): Promise<string[]> {
  return (await readdir(join(ROOT, folder))).filter((f) => f.endsWith('.ts')).map((f) => join(ROOT, folder, f));
}

test('no script, bench or test imports a CLI command module; the torture search and the search command go through src/app', async () => {
  const users = [...(await tsFiles('scripts')), ...(await tsFiles('bench')), ...(await tsFiles('test'))];
  for (const f of users) {
    for (const spec of await importsOf(f)) assert.ok(!spec.includes('/cli/'), `${f} imports ${spec}`);
  }
  const torture = (await importsOf(join(ROOT, 'scripts', 'torture-search.ts'))).filter((s) => s.startsWith('../src/'));
  assert.ok(torture.includes('../src/app/index.js'), 'the torture search imports the app');
  for (const spec of torture) assert.match(spec, /^\.\.\/src\/(app|controllers\/types|core\/types)\.?/, `torture-search imports ${spec}`);
  const search = await importsOf(join(ROOT, 'src', 'cli', 'commands', 'search.ts'));
  assert.ok(search.includes('../../app/driver.js'), 'the search command runs the app');
  for (const spec of search) assert.doesNotMatch(spec, /\/(store|evaluators|engine)\/|study\/run/, `the search command wires ${spec} itself`);
});

/**
 * Command modules that still wire parts themselves, each with its reason. `latency` builds and
 * times candidates for the latency table: its wiring moves with the latency table's own module.
 */
const WIRES_ITSELF = new Set(['latency.ts']);

test('command modules open no store, start no server and load no model, engine or evaluator themselves: src/app does', async () => {
  const commands = await tsFiles(join('src', 'cli', 'commands'));
  assert.ok(commands.length >= 10, 'the command modules are found');
  for (const f of commands) {
    if (WIRES_ITSELF.has(f.slice(f.lastIndexOf('/') + 1))) continue;
    for (const spec of await importsOf(f)) assert.doesNotMatch(spec, /\/(store|evaluators|engine|model|serve)\//, `${f} imports ${spec}`);
  }
});

let dir: string;

before(async () => {
  await tf.setBackend('cpu');
  dir = await mkdtemp(join(tmpdir(), 'autoprune-wiring-'));
  const model = buildZooModel('plain-cnn', { inputShape: [28, 28, 1], numClasses: 10, width: 0.25, seed: 3 });
  await saveModel(model, join(dir, 'base'));
  model.dispose();
});
after(() => rm(dir, { recursive: true, force: true }));

async function writeConfig(store: string): Promise<string> {
  const path = join(dir, `${store}.json`);
  const cfg = {
    name: 'wiring',
    data: { dataset: 'synthetic', validationSize: 32, synthetic: { shape: [28, 28, 1], classes: 10, train: 64, test: 32 } },
    model: { zoo: 'plain-cnn', width: 0.25, checkpoint: join(dir, 'base', 'model.json') },
    search: { targets: [0.5], budget: { trials: 3 } },
    evaluation: { calibration: { batches: 1, batchSize: 32 }, finalists: { count: 0 }, latency: { batchSize: 4, runs: 1 } },
    run: { store: join(dir, `${store}.db`), workers: 'inline', engine: 'tfjs', backend: 'cpu' },
  };
  await writeFile(path, JSON.stringify(cfg));
  return path;
}

async function withStudy<T>(db: string, f: (s: Store) => Promise<T>): Promise<T> {
  const s = await openStore(db);
  try {
    return await f(s);
  } finally {
    await s.close();
  }
}

test("the torture's search leaves the study `autoprune search` leaves: inputs recorded, host-stamped latencies, same keys", async () => {
  const tortureCfg = await writeConfig('torture');
  const out = await tortureSearch(tortureCfg, { adaptMix: false, log: () => undefined });
  assert.equal(out.summary.study.state, 'complete');
  const cliCfg = await writeConfig('cli');
  const r = await cli('search', cliCfg);
  assert.equal(r.code, 0, r.stderr);

  const loaded = await loadSearchConfig(tortureCfg);
  const host = await loadHostInputs(loaded.resolved, { backend: 'cpu' });
  host.base?.dispose();
  const [a, b] = await Promise.all(
    ['torture', 'cli'].map((n) =>
      withStudy(join(dir, `${n}.db`), async (s) => ({ study: (await s.getStudy('wiring'))!, trials: await s.listTrials('wiring') })),
    ),
  );
  assert.deepEqual(a.study.inputs, host.inputs, 'the study records the hashes of the inputs the app loaded');
  assert.deepEqual(b.study.inputs, a.study.inputs);
  assert.equal(a.study.configHash, loaded.hash);
  assert.deepEqual(
    a.trials.map((t) => t.key),
    b.trials.map((t) => t.key),
  );
  assert.equal(a.trials.length, 3);
  for (const t of [...a.trials, ...b.trials]) {
    assert.equal(t.state, 'complete');
    assert.equal(t.metrics.latencyHost, hostname(), `trial ${t.number}'s latency is stamped with this host`);
  }
});
