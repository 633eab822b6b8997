/**
 * The short form of the PostgreSQL crash torture (scripts/torture-pg.ts; the full run is 20+ kills):
 * a driver and 3 `autoprune worker` processes, each with an artifact folder of its own, run a study
 * with stage-`adapt` trials and their children; 3 of them are SIGKILLed at random and the database
 * is restarted once. The script asserts every trial number once and complete, no completed result
 * lost or changed, the uninterrupted run's key sequence, the finalist, every adapt trial's weights in
 * the database, and that every process exited by itself.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { test } from 'node:test';
import { ROOT } from './helpers.js';

/** Its own cluster needs Debian's server binaries (scripts/setup.sh installs `postgresql`). */
function serverMissing(): string | false {
  const have = existsSync('/usr/lib/postgresql') && readdirSync('/usr/lib/postgresql').some((v) => existsSync(`/usr/lib/postgresql/${v}/bin/initdb`));
  if (have) return false;
  if (process.env.CI) throw new Error('CI must run the PostgreSQL torture: no PostgreSQL server binaries (apt-get install postgresql)');
  return 'no PostgreSQL server binaries here (apt-get install postgresql)';
}

test('PostgreSQL crash torture (short): 3 kills and a database restart with adapt trials; every invariant holds', { skip: serverMissing() }, () => {
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', 'scripts/torture-pg.ts', '--kills', '3', '--trials', '14', '--adapt-mix', '--gap', '1500-3000', '--seed', '3'],
    { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 },
  );
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(
    r.stdout,
    /^OK: 3 kills .* 1 database restart; 14 search trials and [1-9]\d* finalist fine-tunes each once, all complete, .* adapt trials \(\d+ children\) with weights in the database, keys = uninterrupted run's/m,
  );
});
