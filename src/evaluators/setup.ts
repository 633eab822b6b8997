/**
 * From a resolved config to the things every evaluation needs: the data splits and the base model.
 * One place, used by `train`, `search` (main thread and workers), `report` and `export`.
 */
import type * as tf from '@tensorflow/tfjs';
import { AutopruneError, ErrorCodes, quote } from '../core/errors.js';
import { head, loadDataset, shareSplit, splitTrainValidation } from '../data/index.js';
import { loadOwnDataset, type OwnDataSpec } from '../data/own.js';
import type { Split } from '../data/types.js';
import { loadModel } from '../model/io.js';
import { inferShapes } from '../model/ir/analyze.js';
import { graphFromLayersModel } from '../model/ir/from-tfjs.js';
import type { ModelGraph } from '../model/ir/graph.js';
import { isOnnxPath, loadOnnxGraph } from '../model/ir/onnx-import.js';
import { buildZooModel } from '../model/zoo.js';
import type { BaseSource } from './options.js';

export interface Splits {
  readonly name: string;
  readonly shape: readonly [number, number, number];
  readonly numClasses: number;
  /** Training images minus the validation ones (fine-tuning, BN calibration). */
  readonly train: Split;
  /** Carved from train with the run seed; the search sees only this. */
  readonly validation: Split;
  /** Held out; only finalists and the base model are scored on it. */
  readonly test: Split;
  /** The user's own files (`data.format`), not a named dataset: a model that does not fit them is a data error. */
  readonly ownData?: boolean;
  /** Image files `data.onCorrupt: skip` left out (own image folders; 0 otherwise). Not part of the data hash. */
  readonly skippedFiles?: number;
}

export interface LoadSplitsOptions {
  /** Lines about the user's own data: decode speed or cache hit, skipped files. */
  readonly log?: (line: string) => void;
  /** Draw a decoding progress bar on a terminal. Default false. */
  readonly progress?: boolean;
}

export async function loadSplits(cfg: Pick<BaseSource, 'data' | 'run'>, options: LoadSplitsOptions = {}): Promise<Splits> {
  const d = cfg.data;
  const ds =
    d.format === undefined
      ? await loadDataset({
          name: d.dataset ?? 'fashion-mnist',
          dir: d.dir,
          synthetic: d.synthetic
            ? {
                shape: [...d.synthetic.shape] as [number, number, number],
                numClasses: d.synthetic.classes,
                trainCount: d.synthetic.train,
                testCount: d.synthetic.test,
                seed: cfg.run.seed,
              }
            : undefined,
        })
      : await loadOwnDataset({ ...(d as OwnDataSpec), log: options.log, progress: options.progress });
  if (d.format !== undefined && d.validationSize >= ds.train.count) {
    throw new AutopruneError(
      ErrorCodes.DATASET_INVALID,
      `\`data.validationSize\` ${d.validationSize} is not below the ${ds.train.count} training images of ${quote(ds.name)}; expected a smaller \`validationSize\``,
    );
  }
  const { train, validation } = splitTrainValidation(ds.train, d.validationSize, cfg.run.seed);
  return {
    name: ds.name,
    shape: ds.shape as [number, number, number],
    numClasses: ds.numClasses,
    train: d.trainLimit ? head(train, d.trainLimit) : train,
    validation,
    test: ds.test,
    ownData: d.format !== undefined,
    skippedFiles: 'skipped' in ds ? ds.skipped.length : 0,
  };
}

/** A fresh (untrained) zoo model for the config's data. */
export function buildBaseArchitecture(cfg: BaseSource, splits: Pick<Splits, 'shape' | 'numClasses'>): tf.LayersModel {
  if (!cfg.model.zoo) {
    throw new AutopruneError(
      ErrorCodes.CONFIG_INVALID,
      `\`model.zoo\` is required to train a base model; expected one of plain-cnn, resnet-20, mobilenet-v2-tiny`,
    );
  }
  return buildZooModel(cfg.model.zoo, {
    inputShape: splits.shape,
    numClasses: splits.numClasses,
    width: cfg.model.width,
    seed: cfg.run.seed,
    bnMomentum: cfg.train.bnMomentum,
  });
}

/** The trained base model a search prunes; with `splits`, also checks that it fits the data. */
export async function loadBaseModel(cfg: BaseSource, splits?: Pick<Splits, 'name' | 'shape' | 'numClasses' | 'ownData'>): Promise<tf.LayersModel> {
  if (!cfg.model.checkpoint) {
    throw new AutopruneError(
      ErrorCodes.CONFIG_INVALID,
      `\`model.checkpoint\` is required to search; expected the model.json of a trained base model (make one with \`autoprune train <config>\`)`,
    );
  }
  if (isOnnxPath(cfg.model.checkpoint)) {
    throw new AutopruneError(
      ErrorCodes.CONFIG_INVALID,
      `\`model.checkpoint\` ${quote(cfg.model.checkpoint)} is an ONNX model, which this command does not run (its engines take a tfjs LayersModel); expected a tfjs model.json (\`autoprune inspect\` reads ONNX models)`,
    );
  }
  const model = await loadModel(cfg.model.checkpoint);
  if (splits) {
    const input = model.inputs[0].shape.slice(1).join('x');
    const classes = model.outputs[0].shape[model.outputs[0].shape.length - 1];
    if (input !== splits.shape.join('x') || classes !== splits.numClasses) {
      model.dispose();
      if (splits.ownData) {
        throw new AutopruneError(
          ErrorCodes.DATASET_INVALID,
          `Images of ${quote(splits.name)} are ${splits.shape.join('x')} (h x w x c) in ${splits.numClasses} classes, but \`model.checkpoint\` takes ${input} images into ${classes} classes; expected data the model can take (see \`data.imageSize\` and \`data.channels\`)`,
        );
      }
      throw new AutopruneError(
        ErrorCodes.CONFIG_INVALID,
        `\`model.checkpoint\` takes ${input} images into ${classes} classes, but \`data\` (${splits.name}) has ${splits.shape.join('x')} images and ${splits.numClasses} classes; expected a base model trained on this data`,
      );
    }
  }
  return model;
}

/**
 * The base model as a graph (src/model/ir): a `.onnx` checkpoint through the ONNX importer, a tfjs
 * model.json through the tfjs importer. With `splits`, also checks that it fits the data: `data`
 * shapes are H x W x C whatever the model's layout (an NCHW model takes the same images transposed).
 */
export async function loadBaseGraph(cfg: BaseSource, splits?: Pick<Splits, 'name' | 'shape' | 'numClasses'>): Promise<ModelGraph> {
  const path = cfg.model.checkpoint;
  if (!path) {
    throw new AutopruneError(
      ErrorCodes.CONFIG_INVALID,
      `\`model.checkpoint\` is required to search; expected a tfjs model.json or a .onnx model of a trained base model`,
    );
  }
  let graph: ModelGraph;
  if (isOnnxPath(path)) graph = await loadOnnxGraph(path);
  else {
    const model = await loadModel(path);
    try {
      graph = graphFromLayersModel(model);
    } finally {
      model.dispose();
    }
  }
  if (splits) {
    const input = graph.nodes.find((n) => n.name === graph.input);
    const [c, h, w] = input?.op === 'Input' ? input.shape : [0, 0, 0];
    const shapes = inferShapes(graph);
    const out = shapes[graph.nodes.findIndex((n) => n.name === graph.output)];
    const classes = out.length === 1 ? out[0] : Number.NaN;
    if (`${h}x${w}x${c}` !== splits.shape.join('x') || classes !== splits.numClasses) {
      throw new AutopruneError(
        ErrorCodes.CONFIG_INVALID,
        `\`model.checkpoint\` takes ${h}x${w}x${c} images (HxWxC) into ${classes} classes, but \`data\` (${splits.name}) has ${splits.shape.join('x')} images and ${splits.numClasses} classes; expected a base model trained on this data`,
      );
    }
  }
  return graph;
}

/** The same splits in shared memory, for handing to worker threads without one copy each. */
export function shareSplits(s: Splits): Splits {
  return { ...s, train: shareSplit(s.train), validation: shareSplit(s.validation), test: shareSplit(s.test) };
}
