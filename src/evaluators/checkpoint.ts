/**
 * Per-epoch training checkpoints, so `autoprune train` resumes after a kill: the tfjs model, the
 * optimizer state (in the engine's own format) and where the run stands. Written to a temporary
 * folder and renamed, so a kill while saving leaves the previous checkpoint intact.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { saveModel } from '../model/io.js';

export interface CheckpointState {
  /** Epochs finished; the resumed run starts at this (0-based) epoch. */
  readonly completedEpochs: number;
  readonly epochs: number;
  /** The optimizer state's format depends on it, so a resume must use the same engine. */
  readonly engine: 'libtorch' | 'tfjs';
  /** Config hash and epochs of the run; another config does not resume this checkpoint. */
  readonly configHash: string;
  readonly seconds: number;
}

export const checkpointDir = (out: string): string => join(out, 'checkpoint');

export async function readCheckpoint(out: string): Promise<CheckpointState | null> {
  const file = join(checkpointDir(out), 'state.json');
  if (!existsSync(file)) return null;
  return JSON.parse(await readFile(file, 'utf8')) as CheckpointState;
}

/** Saves model + optimizer + state; `saveOptimizer` writes into the folder it is given. */
export async function writeCheckpoint(
  out: string,
  model: tf.LayersModel,
  saveOptimizer: (dir: string) => Promise<void>,
  state: CheckpointState,
): Promise<void> {
  const dir = checkpointDir(out);
  const tmp = `${dir}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await saveModel(model, tmp);
  await saveOptimizer(tmp);
  await writeFile(join(tmp, 'state.json'), `${JSON.stringify(state, null, 2)}\n`);
  await rm(dir, { recursive: true, force: true });
  await rename(tmp, dir);
}

export async function removeCheckpoint(out: string): Promise<void> {
  await rm(checkpointDir(out), { recursive: true, force: true });
}
