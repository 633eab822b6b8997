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
        for (const group of manifest) {
          for (const p of group.paths) {
            const bytes = await readFile(join(dirname(path), p));
            buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
          }
        }
        return [manifest.flatMap((g) => g.weights), tf.io.CompositeArrayBuffer.join(buffers)];
      });
    },
  };
}

/**
 * Saves with the completed topology of `modelTopology` (tfjs 4.22 drops SeparableConv2D's
 * `depth_multiplier` from its own JSON, so a model saved by `model.save` alone would reload with
 * multiplier 1 and no longer fit its weights).
 */
export async function saveModel(model: tf.LayersModel, dir: string): Promise<void> {
  await model.save(fileSaver(dir, modelTopology(model)));
}

export async function loadModel(modelJsonPath: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel(fileLoader(modelJsonPath));
}
