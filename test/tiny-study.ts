/** The tiny study the driver-loop tests (loop, study-parts) run: plain-cnn width 0.25, synthetic data, memory store, inline. */
import * as tf from '@tensorflow/tfjs';
import { type ResolvedConfig, resolveConfig } from '../src/config/index.js';
import { type Analysis, analyzeModel } from '../src/model/analysis.js';
import { buildZooModel } from '../src/model/zoo.js';

export async function tinyStudy(name: string, trials: number, run: Record<string, unknown> = {}): Promise<{ analysis: Analysis; cfg: ResolvedConfig }> {
  await tf.setBackend('cpu');
  const m = buildZooModel('plain-cnn', { inputShape: [28, 28, 1], numClasses: 10, width: 0.25 });
  const analysis = analyzeModel(m);
  m.dispose();
  const cfg = resolveConfig({
    name,
    data: { dataset: 'synthetic', validationSize: 64, synthetic: { train: 128, test: 32 } },
    model: { zoo: 'plain-cnn', width: 0.25, checkpoint: '/unused/model.json' },
    search: { targets: [0.5, 0.3], budget: { trials } },
    evaluation: { finalists: { count: 0 } },
    run: { store: ':memory:', workers: 'inline', ...run },
  });
  return { analysis, cfg };
}
