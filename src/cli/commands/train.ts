import { writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { CommandModule } from 'yargs';
import { loadConfig } from '../../config/index.js';
import { initBackend } from '../../engine/backend.js';
import { buildBaseArchitecture, loadSplits } from '../../evaluators/setup.js';
import { accuracy, train } from '../../evaluators/train.js';
import { analyzeModel } from '../../model/analysis.js';
import { costOf } from '../../model/flops.js';
import { saveModel } from '../../model/io.js';
import { handler, info, isTty, mmacs, note, pct } from '../output.js';
import { backendOption, type BackendArg } from './common.js';

interface Args extends BackendArg {
  config: string;
  epochs?: number;
}

export const trainCommand: CommandModule<object, Args> = {
  command: 'train <config>',
  describe: 'Train the base model of a config (model.zoo) and save it with its test accuracy',
  builder: (y) =>
    y
      .positional('config', { type: 'string', demandOption: true, describe: 'YAML/JSON config file' })
      .option('epochs', { type: 'number', describe: 'Override train.epochs' })
      .option(...backendOption),
  handler: handler(async (args) => {
    const { resolved: cfg, hash } = await loadConfig(args.config);
    const backend = await initBackend(args.backend ?? cfg.run.backend);
    const splits = await loadSplits(cfg);
    const model = buildBaseArchitecture(cfg, splits);
    const cost = costOf(analyzeModel(model), null);
    const epochs = args.epochs ?? cfg.train.epochs;
    info(`training ${cfg.model.zoo} (width ${cfg.model.width}, ${mmacs(cost.macs)} MMACs, ${cost.params} params) on ${splits.name}: ${splits.train.count} train / ${splits.validation.count} validation images, ${epochs} epochs, backend ${backend.name}`);
    let lastLog = 0;
    const result = await train(model, splits.train, {
      epochs,
      batchSize: cfg.train.batchSize,
      learningRate: cfg.train.learningRate,
      optimizer: cfg.train.optimizer,
      momentum: cfg.train.momentum,
      numClasses: splits.numClasses,
      seed: cfg.run.seed,
      augment: cfg.train.augment,
      onProgress: (p) => {
        const now = performance.now();
        if (p.step !== p.steps && now - lastLog < (isTty ? 1000 : 30000)) return;
        lastLog = now;
        const eta = ((p.steps - p.step) * cfg.train.batchSize) / p.imagesPerSecond;
        note(`epoch ${p.epoch + 1}/${epochs} step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} ${p.imagesPerSecond.toFixed(0)} img/s eta ${Math.round(eta)}s`);
      },
    });
    const validationAccuracy = accuracy(model, splits.validation);
    const testAccuracy = accuracy(model, splits.test);
    await saveModel(model, cfg.train.out);
    const card = {
      zoo: cfg.model.zoo,
      width: cfg.model.width,
      dataset: splits.name,
      trainImages: splits.train.count,
      epochs,
      batchSize: cfg.train.batchSize,
      learningRate: cfg.train.learningRate,
      optimizer: cfg.train.optimizer,
      seed: cfg.run.seed,
      macs: cost.macs,
      params: cost.params,
      validationAccuracy,
      testAccuracy,
      seconds: Math.round(result.seconds),
      trainImagesPerSecond: Math.round(result.imagesPerSecond),
      backend: backend.name,
      configHash: hash,
      command: `autoprune train ${relative(process.cwd(), args.config)}${args.epochs ? ` --epochs ${args.epochs}` : ''}`,
      createdAt: new Date().toISOString(),
    };
    await writeFile(join(cfg.train.out, 'train.json'), `${JSON.stringify(card, null, 2)}\n`);
    info(`validation accuracy ${pct(validationAccuracy)}, test accuracy ${pct(testAccuracy)}, ${Math.round(result.seconds)} s (${result.imagesPerSecond.toFixed(0)} img/s)`);
    info(`saved ${relative(process.cwd(), join(cfg.train.out, 'model.json'))}`);
  }),
};
