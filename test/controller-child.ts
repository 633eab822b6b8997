/**
 * Child process of test/controllers-search.test.ts: restores a controller from a snapshot in a
 * fresh process and plays the rest of a scripted session, printing its proposals as JSON.
 * argv: <file with { scenario, snapshot, outstanding, from }>
 */
import { readFileSync } from 'node:fs';
import type { Proposal } from '../src/controllers/types.js';
import type { Json } from '../src/store/types.js';
import { playScript, type Scenario, session } from './controller-script.js';

const input = JSON.parse(readFileSync(process.argv[2], 'utf8')) as { scenario: Scenario; snapshot: Json; outstanding: Proposal[]; from: number };
const sess = session(input.scenario, 999); // another seed: the snapshot's state must win
sess.controller.restore(input.snapshot);
const played = playScript(input.scenario, sess, input.from, undefined, input.outstanding);
process.stdout.write(JSON.stringify({ proposals: played.proposals, snapshot: sess.controller.snapshot() }));
