/**
 * The short form of the crash torture (scripts/torture.ts; the full run is `--kills 20`): SIGKILL
 * the search 3 times at random points while 2 worker threads run proxy and stage-`adapt` trials
 * (with parent/child lineage) on SQLite, then let it finish; the script asserts every trial number
 * once, no completed result lost or changed, the uninterrupted run's key sequence, the finalist.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { ROOT } from './helpers.js';

test('crash torture (short): 3 kills with adapt trials in the mix; every invariant holds', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/torture.ts', '--kills', '3', '--trials', '10', '--adapt-mix', '--seed', '7'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /^OK: \d+ kills .* 10 trials each once, \d+ complete results kept unchanged/m);
});
