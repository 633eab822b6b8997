/**
 * Proxy evaluations per minute (prune + BN re-calibration + validation accuracy + latency) through
 * the worker pool with 1 and with 2 workers, side by side in one run. Settings match
 * configs/quickstart.yaml (resnet-20 width 0.5, 10 calibration batches of 64, 2000 validation
 * images) on synthetic 28x28x1 data, so no dataset is needed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../src/config/index.js';
import { Rng } from '../src/core/rng.js';
import { candidateFromRatios } from '../src/core/space.js';
import { initBackend } from '../src/engine/backend.js';
import { WorkerPool } from '../src/evaluators/pool.js';
import { analyzeModel } from '../src/model/analysis.js';
import { saveModel } from '../src/model/io.js';
import { buildZooModel } from '../src/model/zoo.js';
import type { BenchSection } from './run.js';

export const poolSection: BenchSection = {
  name: 'pool',
  title: 'Proxy evaluations per minute, worker pool with 1 and 2 workers (resnet-20 w0.5, quickstart settings)',
  async run(ctx) {
    const dir = await mkdtemp(join(tmpdir(), 'autoprune-bench-pool-'));
    try {
      await initBackend('wasm');
      const base = buildZooModel('resnet-20', { inputShape: [28, 28, 1], numClasses: 10, width: 0.5 });
      const analysis = analyzeModel(base);
      await saveModel(base, join(dir, 'base'));
      base.dispose();
      const cfg = resolveConfig({
        name: 'bench-pool',
        data: { dataset: 'synthetic', validationSize: 2000, synthetic: { shape: [28, 28, 1], classes: 10, train: 6000, test: 200 } },
        model: { zoo: 'resnet-20', width: 0.5, checkpoint: join(dir, 'base', 'model.json') },
        evaluation: { calibration: { batches: 10, batchSize: 64 }, validation: { limit: 2000 } },
        run: { backend: 'wasm', store: join(dir, 'unused.db') },
      });
      const space = { groups: analysis.groups, options: { minKeepRatio: 0.25, channelStep: 1, skip: [] } };
      const rng = new Rng(1);
      const count = ctx.quick ? 4 : 12;
      const candidates = Array.from({ length: count }, () =>
        candidateFromRatios(
          space,
          space.groups.map(() => rng.uniform(0.4, 0.8)),
        ),
      );
      const rows: { workers: number; evaluations: number; seconds: number; perMinute: number }[] = [];
      for (const workers of [1, 2]) {
        ctx.log(`pool: ${workers} worker(s), ${count} proxy evaluations`);
        const pool = await WorkerPool.create(cfg, workers);
        try {
          await Promise.all(Array.from({ length: workers }, (_, i) => pool.evaluate({ trial: 1000 + i, candidate: candidates[i], stage: 'proxy' }))); // warm-up
          const t0 = performance.now();
          await Promise.all(candidates.map((c, i) => pool.evaluate({ trial: i, candidate: c, stage: 'proxy' })));
          const seconds = (performance.now() - t0) / 1000;
          rows.push({ workers, evaluations: count, seconds, perMinute: (60 * count) / seconds });
        } finally {
          await pool.close();
        }
      }
      const speedup = rows[1].perMinute / rows[0].perMinute;
      const markdown = [
        '| workers | evaluations | seconds | proxy evaluations / min |',
        '| --- | --- | --- | --- |',
        ...rows.map((r) => `| ${r.workers} | ${r.evaluations} | ${r.seconds.toFixed(1)} | ${r.perMinute.toFixed(1)} |`),
        '',
        `2 workers / 1 worker: ${speedup.toFixed(2)}x (each worker is one single-threaded wasm tfjs; ${ctx.host.cores} cores here).`,
      ].join('\n');
      return { markdown, data: { rows, speedup }, failures: [] };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};
