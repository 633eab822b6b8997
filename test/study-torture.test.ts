/**
 * The short form of the crash torture (scripts/torture.ts; the full run is `--kills 24`): SIGKILL
 * the search 3 times at random points while 2 worker threads run proxy and stage-`adapt` trials
 * (with parent/child lineage) on SQLite, then let it finish; the script asserts that all 3 kills
 * happened (one with an adapt trial in flight), every trial number once, no completed result lost
 * or changed, the uninterrupted run's key sequence, each target's finalist.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { ROOT } from './helpers.js';

test('crash torture (short): 3 kills, one aimed at an adapt trial; every invariant holds', () => {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/torture.ts', '--kills', '3', '--trials', '12', '--adapt-mix', '--seed', '7'], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(
    r.stdout,
    /^OK: 3 kills \(\d+ trials in flight at the kills, [1-9]\d* of them adapt\), 12 search trials and 2 finalist fine-tunes each once, \d+ complete results kept unchanged/m,
  );
});
