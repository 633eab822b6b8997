/**
 * Training a config's base model (`autoprune train`): the zoo architecture on the config's data,
 * checkpointed after every epoch (an interrupted run resumes), saved to `train.out` (by default the
 * folder of `model.checkpoint`, where `autoprune search` reads it) with a card of how it was made.
 */
import { writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type * as tf from '@tensorflow/tfjs';
import { loadConfig } from '../config/index.js';
import type { Split } from '../data/types.js';
import { type BackendName, initBackend } from '../engine/backend.js';
import { torchStatus } from '../engine/torch.js';
import { checkpointDir, readCheckpoint, removeCheckpoint, writeCheckpoint } from '../evaluators/checkpoint.js';
import { fit, resolveTrainEngine } from '../evaluators/fit.js';
import { buildBaseArchitecture, loadSplits } from '../evaluators/setup.js';
import { accuracy } from '../evaluators/train.js';
import { accuracyTorch } from '../evaluators/train-torch.js';
import { analyzeModel } from '../model/analysis.js';
import { costOf } from '../model/flops.js';
import { loadModel, saveModel } from '../model/io.js';

export interface TrainOptions {
  /** The config file. */
  readonly config: string;
  /** Overrides `train.epochs`. */
  readonly epochs?: number;
  /** Ignore the checkpoint of an interrupted run. */
  readonly restart?: boolean;
  readonly backend?: BackendName;
  /** Progress lines: `info` for results, `note` for progress. */
  readonly info: (line: string) => void;
  readonly note: (line: string) => void;
  /** Log training steps this often at most, in ms (an epoch's last step is always logged). Default 30000. */
  readonly progressEveryMs?: number;
}

export interface TrainOutcome {
  /** The saved model.json. */
  readonly modelPath: string;
  readonly validationAccuracy: number;
  readonly testAccuracy: number;
}

const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;
const mmacs = (macs: number): string => (macs / 1e6).toFixed(2);

export async function trainBase(args: TrainOptions): Promise<TrainOutcome> {
  const { info, note } = args;
  const { resolved: cfg, hash } = await loadConfig(args.config);
  const backend = await initBackend(args.backend ?? cfg.run.backend);
  const splits = await loadSplits(cfg);
  const epochs = args.epochs ?? cfg.train.epochs;
  const engine = resolveTrainEngine(cfg.run.engine.train);
  const out = cfg.train.out;
  let model = buildBaseArchitecture(cfg, splits);
  const cost = costOf(analyzeModel(model), null);
  // A checkpoint of the same config, epochs and engine resumes; anything else starts over.
  const saved = args.restart ? null : await readCheckpoint(out);
  const resumes = saved !== null && saved.configHash === hash && saved.epochs === epochs && saved.engine === engine;
  if (saved && !resumes) note(`ignoring the checkpoint in ${relative(process.cwd(), checkpointDir(out))} (another config, epoch count or engine)`);
  if (resumes) {
    model.dispose();
    model = await loadModel(join(checkpointDir(out), 'model.json'));
    info(`resuming from the checkpoint after epoch ${saved.completedEpochs}/${epochs}`);
  }
  const engineName = engine === 'libtorch' ? `libtorch ${torchStatus().loaded ? '' : '(missing)'}`.trim() : `tfjs (${backend.name})`;
  info(
    `training ${cfg.model.zoo} (width ${cfg.model.width}, ${mmacs(cost.macs)} MMACs, ${cost.params} params) on ${splits.name}: ${splits.train.count} train / ${splits.validation.count} validation images, ${epochs} epochs, engine ${engineName}`,
  );
  let lastLog = 0;
  const secondsBefore = resumes ? saved.seconds : 0;
  const started = performance.now();
  const result = await fit(
    model,
    splits.train,
    {
      epochs,
      batchSize: cfg.train.batchSize,
      learningRate: cfg.train.learningRate,
      optimizer: cfg.train.optimizer,
      momentum: cfg.train.momentum,
      weightDecay: cfg.train.weightDecay,
      numClasses: splits.numClasses,
      seed: cfg.run.seed,
      augment: cfg.train.augment,
      startEpoch: resumes ? saved.completedEpochs : 0,
      resumeFrom: resumes ? checkpointDir(out) : undefined,
      onProgress: (p) => {
        const now = performance.now();
        if (p.step !== p.steps && now - lastLog < (args.progressEveryMs ?? 30000)) return;
        lastLog = now;
        const eta = ((p.steps - p.step) * cfg.train.batchSize) / p.imagesPerSecond;
        note(
          `epoch ${p.epoch + 1}/${epochs} step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} ${p.imagesPerSecond.toFixed(0)} img/s eta ${Math.round(eta)}s`,
        );
      },
      onEpochEnd: async (epoch, saveOptimizer) => {
        const seconds = secondsBefore + (performance.now() - started) / 1000;
        await writeCheckpoint(out, model, saveOptimizer, { completedEpochs: epoch + 1, epochs, engine, configHash: hash, seconds: Math.round(seconds) });
        const acc = score(engine, model, splits.validation);
        note(`epoch ${epoch + 1}/${epochs} done: validation accuracy ${pct(acc)}, checkpoint saved`);
      },
    },
    { requested: engine, workers: 1 },
  );
  const validationAccuracy = score(engine, model, splits.validation);
  const testAccuracy = score(engine, model, splits.test);
  await saveModel(model, out);
  const card = {
    zoo: cfg.model.zoo,
    width: cfg.model.width,
    dataset: splits.name,
    trainImages: splits.train.count,
    epochs,
    batchSize: cfg.train.batchSize,
    learningRate: cfg.train.learningRate,
    optimizer: cfg.train.optimizer,
    momentum: cfg.train.optimizer === 'sgd' ? cfg.train.momentum : undefined,
    weightDecay: cfg.train.weightDecay,
    augment: cfg.train.augment,
    seed: cfg.run.seed,
    macs: cost.macs,
    params: cost.params,
    validationAccuracy,
    testAccuracy,
    seconds: Math.round(secondsBefore + result.seconds),
    trainImagesPerSecond: Math.round(result.imagesPerSecond),
    engine: result.engine,
    backend: backend.name,
    configHash: hash,
    command: `autoprune train ${relative(process.cwd(), args.config)}${args.epochs ? ` --epochs ${args.epochs}` : ''}`,
    createdAt: new Date().toISOString(),
  };
  await writeFile(join(out, 'train.json'), `${JSON.stringify(card, null, 2)}\n`);
  await removeCheckpoint(out);
  info(
    `validation accuracy ${pct(validationAccuracy)}, test accuracy ${pct(testAccuracy)}, ${Math.round(secondsBefore + result.seconds)} s (${result.imagesPerSecond.toFixed(0)} img/s)`,
  );
  const modelPath = join(out, 'model.json');
  info(`saved ${relative(process.cwd(), modelPath)}`);
  if (cfg.model.checkpoint !== undefined && cfg.model.checkpoint !== modelPath) {
    note(
      `note: \`model.checkpoint\` is ${relative(process.cwd(), cfg.model.checkpoint)}, so \`autoprune search\` will not read this model; point it at ${relative(process.cwd(), modelPath)}`,
    );
  }
  return { modelPath, validationAccuracy, testAccuracy };
}

/** Top-1 accuracy on the engine that trained (both read the same weights). */
function score(engine: 'libtorch' | 'tfjs', model: tf.LayersModel, split: Split): number {
  const s = torchStatus();
  return engine === 'libtorch' && s.loaded ? accuracyTorch(s.binding, model, split) : accuracy(model, split);
}
