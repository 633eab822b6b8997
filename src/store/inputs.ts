/**
 * A study's inputs (base model and dataset hashes) against the ones a host loaded: every host that
 * evaluates a study's trials must evaluate the same model on the same data, or their results mix.
 */
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import type { StudyInputs, StudyRecord } from './types.js';

/** Hex digits of a hash shown in messages: enough to tell two apart at a glance. */
const SHOWN = 16;

const short = (h: string): string => h.slice(0, SHOWN);

/**
 * Throws INPUTS_MISMATCH (one line, naming the study's and this host's hashes of what differs)
 * unless `here` equals the study's recorded inputs; a study created before hashes were recorded
 * (`inputs` null) passes. `hint` ends the message (what to point where).
 */
export function checkStudyInputs(study: Pick<StudyRecord, 'name' | 'inputs'>, here: StudyInputs, hint: string): void {
  const want = study.inputs;
  if (want === null) return;
  const diffs: string[] = [];
  if (want.baseModel !== here.baseModel) diffs.push(`base model sha256 ${short(here.baseModel)}…, the study's is ${short(want.baseModel)}…`);
  if (want.data !== here.data) diffs.push(`data sha256 ${short(here.data)}…, the study's is ${short(want.data)}…`);
  if (diffs.length === 0) return;
  throw new AutopruneError(ErrorCodes.INPUTS_MISMATCH, `This host's inputs are not study ${quote(study.name)}'s: ${diffs.join('; ')}; ${hint}`);
}
