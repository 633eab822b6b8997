/**
 * Controller defaults live in the config schema (src/config/sections/search.ts): the resolved
 * config, `config show` and the config hash carry every option's value; the controllers read those
 * values and have no fallbacks of their own; a study hashed before the defaults moved still resumes
 * as "the same config".
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { makeProblem } from '../bench/synthetic-problem.js';
import { CONTROLLER_NAMES, canonicalJson, configHash, controllerOptions, resolveConfig, resolveControllerSpec } from '../src/config/index.js';
import { controllerSchema } from '../src/config/sections/search.js';
import { createController } from '../src/controllers/registry.js';
import { Rng } from '../src/core/rng.js';
import { sameConfig } from '../src/study/lifecycle.js';
import { cli } from './helpers.js';

/** Every option key of each controller, from the schema itself. */
const OPTION_KEYS = Object.fromEntries(controllerSchema.options.map((o) => [o.shape.name.value, Object.keys(o.shape).filter((k) => k !== 'name')])) as Record<
  string,
  string[]
>;

test('a controller given by name alone resolves with every option at a value (none left undefined)', () => {
  for (const name of CONTROLLER_NAMES) {
    const spec = resolveControllerSpec({ name }) as Record<string, unknown>;
    assert.ok(OPTION_KEYS[name].length > 0, name);
    for (const k of OPTION_KEYS[name]) assert.ok(k in spec && spec[k] !== undefined, `${name}.${k} has a default`);
  }
  // The documented values, spot-checked against the papers' settings the comments cite.
  assert.deepEqual(resolveControllerSpec({ name: 'greedy' }), { name: 'greedy', initialReduction: 0.05, decay: 0.96, adapt: 'off' });
  assert.deepEqual(resolveControllerSpec({ name: 'rl' }), { name: 'rl', warmup: 100, episodes: 300, reward: 'error', hidden: 300, batchSize: 64 });
  assert.deepEqual(controllerOptions('evolutionary', { population: 8 }), {
    population: 8,
    crossoverProbability: 0.9,
    crossoverEta: 15,
    mutationEta: 20,
    thirdObjective: null,
  });
});

test('the resolved config and its hash carry the controller defaults: omitting them or writing them out is the same config', () => {
  const short = resolveConfig({ name: 'x', model: { zoo: 'plain-cnn' }, search: { controller: { name: 'evolutionary' } } });
  const long = resolveConfig({
    name: 'x',
    model: { zoo: 'plain-cnn' },
    search: { controller: { name: 'evolutionary', population: 40, crossoverProbability: 0.9, crossoverEta: 15, mutationEta: 20, thirdObjective: null } },
  });
  assert.equal(configHash(short), configHash(long));
  assert.match(canonicalJson(short.search.controller), /"crossoverEta":15/);
  const other = resolveConfig({ name: 'x', model: { zoo: 'plain-cnn' }, search: { controller: { name: 'evolutionary', crossoverEta: 16 } } });
  assert.notEqual(configHash(short), configHash(other));
});

test('a controller built from defaults proposes what one built from the same values written out proposes', () => {
  const p = makeProblem({ widths: [8, 16, 32], minKeepRatio: 0.25, channelStep: 4, skip: [] });
  const ctx = (seed: number) => ({
    ...p,
    targets: [0.5],
    window: 0.04,
    rng: new Rng(seed),
    importance: p.space.groups.map((g) => Array.from({ length: g.channels }, (_, i) => i + 1)),
  });
  for (const name of CONTROLLER_NAMES) {
    const a = createController({ name }, ctx(2)).ask(4);
    const b = createController(resolveControllerSpec({ name }), ctx(2)).ask(4);
    assert.deepEqual(a, b, name);
  }
});

test('a study hashed before the defaults moved into the schema resumes as the same config; a real change does not', () => {
  const user = { name: 's', model: { zoo: 'plain-cnn', checkpoint: '/m/model.json' }, search: { controller: { name: 'greedy' } } };
  const now = resolveConfig(user);
  // What an older version stored: the resolved config without the controller's (then implicit) options.
  const before = { ...now, search: { ...now.search, controller: { name: 'greedy' } } };
  const old = { name: 's', config: JSON.parse(JSON.stringify(before)), configHash: configHash(before as never) };
  assert.notEqual(old.configHash, configHash(now), 'the hash itself changed');
  assert.ok(sameConfig(old, configHash(now)));
  const changed = resolveConfig({ ...user, search: { controller: { name: 'greedy', decay: 0.5 } } });
  assert.ok(!sameConfig(old, configHash(changed)));
});

test('`config show` prints the controller defaults', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'autoprune-defaults-'));
  try {
    const path = join(dir, 'c.json');
    await writeFile(path, JSON.stringify({ name: 'c', model: { zoo: 'plain-cnn' }, search: { controller: { name: 'rl' } } }));
    const r = await cli('config', 'show', path, '--json');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).config.search.controller, { name: 'rl', warmup: 100, episodes: 300, reward: 'error', hidden: 300, batchSize: 64 });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
