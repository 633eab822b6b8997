/**
 * Saving and loading tfjs LayersModels on disk without @tensorflow/tfjs-node (which cannot be
 * installed everywhere): the standard `model.json` + `weights.bin` layout that
 * `tf.loadLayersModel('file://…')` (tfjs-node) and a browser's `tf.loadLayersModel(url)` both read.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { AutopruneError, ErrorCodes } from '../core/errors.js';
import { modelTopology } from './topology.js';

/** `topology`, when given, replaces the one tfjs serialised (see `saveModel`). */
export function fileSaver(dir: string, topology?: object): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (topology) artifacts = { ...artifacts, modelTopology: topology };
      await mkdir(dir, { recursive: true });
      const weightData = artifacts.weightData ? tf.io.CompositeArrayBuffer.join(artifacts.weightData) : new ArrayBuffer(0);
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology as tf.io.ModelJSON['modelTopology'],
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs ?? [] }],
      };
      if (artifacts.trainingConfig) modelJson.trainingConfig = artifacts.trainingConfig;
      if (artifacts.userDefinedMetadata) modelJson.userDefinedMetadata = artifacts.userDefinedMetadata;
      await writeFile(join(dir, 'weights.bin'), new Uint8Array(weightData));
      await writeFile(join(dir, 'model.json'), JSON.stringify(modelJson));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
  };
}

export function fileLoader(modelJsonPath: string): tf.io.IOHandler {
  const path = resolve(modelJsonPath);
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      let json: tf.io.ModelJSON;
      try {
        json = JSON.parse(await readFile(path, 'utf8')) as tf.io.ModelJSON;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'EISDIR') {
          throw new AutopruneError(
            ErrorCodes.MODEL_NOT_FOUND,
            `Model file \`${modelJsonPath}\` not found; expected a tfjs model.json (train one with \`autoprune train <config>\`)`,
          );
        }
        throw new AutopruneError(ErrorCodes.MODEL_NOT_FOUND, `Model file \`${modelJsonPath}\` is not valid JSON: ${(e as Error).message}`);
      }
      if (!json.modelTopology || !Array.isArray(json.weightsManifest)) {
        throw new AutopruneError(
          ErrorCodes.MODEL_NOT_FOUND,
          `Model file \`${modelJsonPath}\` has no modelTopology/weightsManifest; expected a tfjs LayersModel model.json`,
        );
      }
      return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const buffers: ArrayBuffer[] = [];
        const files: string[] = [];
        for (const group of manifest) {
          for (const p of group.paths) {
            const file = join(dirname(path), p);
            files.push(file);
            const bytes = await readFile(file).catch((e: NodeJS.ErrnoException) => {
              throw new AutopruneError(ErrorCodes.MODEL_NOT_FOUND, `Weights file \`${file}\` of \`${modelJsonPath}\` cannot be read (${e.code ?? e.message})`);
            });
            buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
          }
        }
        const weights = manifest.flatMap((g) => g.weights);
        checkWeightBytes(modelJsonPath, files, weights, buffers);
        return [weights, tf.io.CompositeArrayBuffer.join(buffers)];
      });
    },
  };
}

/** Bytes per element of a manifest entry as stored (quantized weights are stored in their quantized dtype). */
const BYTES: Readonly<Record<string, number>> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2, complex64: 8 };

/**
 * The weight files must hold exactly the bytes the manifest describes: tfjs would read past the end
 * of a truncated file (or mis-slice a longer one) and fail deep in its kernels, or not at all.
 */
function checkWeightBytes(
  modelJsonPath: string,
  files: readonly string[],
  weights: readonly tf.io.WeightsManifestEntry[],
  buffers: readonly ArrayBuffer[],
): void {
  let expected = 0;
  for (const w of weights) {
    const dtype = w.quantization?.dtype ?? w.dtype;
    const per = BYTES[dtype];
    if (per === undefined || !Array.isArray(w.shape) || !w.shape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new AutopruneError(
        ErrorCodes.MODEL_INVALID,
        `Weight \`${w.name}\` in \`${modelJsonPath}\` has dtype ${JSON.stringify(dtype)} and shape ${JSON.stringify(w.shape)}; expected a tfjs dtype and a list of integer dims`,
      );
    }
    expected += per * w.shape.reduce((a, b) => a * b, 1);
  }
  const actual = buffers.reduce((n, b) => n + b.byteLength, 0);
  if (actual !== expected) {
    throw new AutopruneError(
      ErrorCodes.MODEL_INVALID,
      `Weights ${files.map((f) => `\`${f}\``).join(', ')} hold ${actual} bytes, but the manifest of \`${modelJsonPath}\` describes ${expected} (${weights.length} weights): ${actual < expected ? 'the file is truncated' : 'the file is longer'} or the manifest's shapes are not the file's`,
    );
  }
}

/**
 * Saves with the completed topology of `modelTopology` (tfjs 4.22 drops SeparableConv2D's
 * `depth_multiplier` from its own JSON, so a model saved by `model.save` alone would reload with
 * multiplier 1 and no longer fit its weights).
 */
export async function saveModel(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(fileSaver(dir, modelTopology(model)));
}

/** The model at `modelJsonPath`; a file tfjs cannot build a model from is MODEL_INVALID (one line), not a library trace. */
export async function loadModel(modelJsonPath: string): Promise<tf.LayersModel> {
  try {
    return await tf.loadLayersModel(fileLoader(modelJsonPath));
  } catch (e) {
    if (e instanceof AutopruneError) throw e;
    const why = (e instanceof Error ? e.message : String(e)).split('\n')[0].slice(0, 300);
    throw new AutopruneError(
      ErrorCodes.MODEL_INVALID,
      `Model \`${modelJsonPath}\` cannot be loaded: ${why}; expected a tfjs LayersModel model.json and its weights`,
      {
        cause: e,
      },
    );
  }
}
