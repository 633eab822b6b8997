import { availableParallelism, loadavg } from 'node:os';
import type { CommandModule } from 'yargs';
import { loadConfig } from '../../config/index.js';
import { RandomController } from '../../controllers/random.js';
import { AutopruneError, ErrorCodes, quote } from '../../core/errors.js';
import { Rng } from '../../core/rng.js';
import { type Candidate, candidateKey, fullCandidate } from '../../core/space.js';
import { initBackend } from '../../engine/backend.js';
import { loadBaseModel } from '../../evaluators/setup.js';
import { CHECK_MIN_FLOPS, CHECK_SEED, checkPredictions, heldOutCandidates } from '../../latency/check.js';
import { pairedCandidateLatencyMs } from '../../latency/onnx.js';
import { prepareLatency, resolveChannelStep } from '../../latency/study.js';
import { pairedTfjsCandidateLatencyMs, TFJS_WASM_ENGINE } from '../../latency/tfjs.js';
import { analyzeModel } from '../../model/analysis.js';
import { costOf } from '../../model/flops.js';
import { openStore } from '../../store/index.js';
import { studySpace } from '../../study/run.js';
import { handler, info, pct, table } from '../output.js';
import { type BackendArg, backendOption } from './common.js';
import { tableProgress } from './search.js';

interface Args extends BackendArg {
  config: string;
  engine?: 'onnxruntime' | 'tfjs-wasm';
  threads?: number;
  batch?: number;
  check: number;
  calibration?: number;
  runs?: number;
  atFlops?: number;
  clock?: 'wall' | 'cpu';
  store?: string;
  json: boolean;
}

function positiveInt(flag: string, v: number | undefined): number | undefined {
  if (v !== undefined && !(Number.isInteger(v) && v >= 1)) {
    throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected --${flag} to be an integer >= 1, got ${quote(v)}`);
  }
  return v;
}

export const latencyCommand: CommandModule<object, Args> = {
  command: 'latency <config>',
  describe:
    "Build (or complete) the per-layer latency table of a config's model on this host, then check its predictions against end-to-end measurements of held-out candidates",
  builder: (y) =>
    y
      .positional('config', { type: 'string', demandOption: true, describe: 'YAML/JSON config file' })
      .option('engine', {
        choices: ['onnxruntime', 'tfjs-wasm'] as const,
        describe: 'Engine whose latency the table holds (default: evaluation.latency.engine; tfjs-wasm runs on the tfjs backend wasm)',
      })
      .option('threads', { type: 'number', describe: 'Intra-op threads (default: every core, as the proxy uses)' })
      .option('batch', { type: 'number', describe: 'Images per call (default: evaluation.latency.batchSize)' })
      .option('check', { type: 'number', default: 8, describe: 'Held-out candidates measured end to end against their prediction (0: none)' })
      .option('calibration', {
        type: 'number',
        describe:
          'Calibration candidates the correction is fitted on, drawn apart from the held-out ones (default: evaluation.latency.calibration; 0: overhead only)',
      })
      .option('at-flops', {
        type: 'number',
        describe: "Draw the held-out candidates inside one FLOPs window (this fraction of the base's MACs ± 1.5%), to see how latency varies at equal FLOPs",
      })
      .option('clock', { choices: ['wall', 'cpu'] as const, describe: 'Override evaluation.latency.clock (cpu: CPU time, robust to a busy host)' })
      .option('runs', { type: 'number', describe: 'Timed runs per end-to-end measurement (default: max(evaluation.latency.runs, 9))' })
      .option('store', { type: 'string', describe: 'Store that keeps the table (default: run.store)' })
      .option('json', { type: 'boolean', default: false, describe: 'Print the result as JSON' })
      .option(...backendOption),
  handler: handler(async (args) => {
    let cfg = (await loadConfig(args.config)).resolved;
    if (args.clock) cfg = { ...cfg, evaluation: { ...cfg.evaluation, latency: { ...cfg.evaluation.latency, clock: args.clock } } };
    if (args.engine) cfg = { ...cfg, evaluation: { ...cfg.evaluation, latency: { ...cfg.evaluation.latency, engine: args.engine } } };
    const tfjsWasm = cfg.evaluation.latency.engine === TFJS_WASM_ENGINE;
    const clock = cfg.evaluation.latency.clock;
    const threads = positiveInt('threads', args.threads) ?? availableParallelism();
    const batch = positiveInt('batch', args.batch) ?? cfg.evaluation.latency.batchSize;
    const runs = positiveInt('runs', args.runs) ?? Math.max(cfg.evaluation.latency.runs, 21);
    if (args.atFlops !== undefined && !(args.atFlops > 0 && args.atFlops <= 1)) {
      throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected --at-flops to be a fraction of the base's MACs in (0, 1], got ${quote(args.atFlops)}`);
    }
    for (const [flag, v] of [
      ['check', args.check],
      ['calibration', args.calibration],
    ] as const) {
      if (v !== undefined && !(Number.isInteger(v) && v >= 0)) {
        throw new AutopruneError(ErrorCodes.INVALID_ARGUMENT, `Expected --${flag} to be an integer >= 0, got ${quote(v)}`);
      }
    }
    // The tfjs-wasm table times models on the process's tfjs backend.
    await initBackend(tfjsWasm ? 'wasm' : (args.backend ?? cfg.run.backend));
    const base = await loadBaseModel(cfg);
    const analysis = analyzeModel(base);
    studySpace(cfg, analysis, 1); // validates space.skip before a store is opened
    const store = await openStore(args.store ?? cfg.run.store);
    try {
      const log = args.json ? () => {} : info;
      cfg = await resolveChannelStep(cfg, { store, analysis, threads, batch, log, onProgress: tableProgress });
      const space = studySpace(cfg, analysis);
      const measure = (c: Candidate) =>
        tfjsWasm
          ? pairedTfjsCandidateLatencyMs(base, analysis, c, { batch, runs })
          : pairedCandidateLatencyMs(base, analysis, c, { threads, batch, runs, clock });
      // The check below draws its own candidates (held out, or inside one FLOPs window).
      const lat = await prepareLatency({
        cfg,
        store,
        analysis,
        space,
        base,
        threads,
        batch,
        log,
        onProgress: tableProgress,
        measure,
        calibration: args.calibration,
        check: 0,
      });
      const baseMacs = costOf(analysis, null).macs;
      const rng = new Rng(cfg.run.seed + CHECK_SEED);
      const candidates =
        args.atFlops === undefined
          ? heldOutCandidates(space, args.check, rng, lat.calibrationKeys, (c) => costOf(analysis, c).macs >= CHECK_MIN_FLOPS * baseMacs)
          : new RandomController({
              space,
              costOf: (c) => costOf(analysis, c),
              baseCost: costOf(analysis, null),
              targets: [args.atFlops],
              window: 0.015,
              rng,
            })
              .ask(args.check)
              .map((p) => p.candidate)
              .filter((c) => !lat.calibrationKeys.has(candidateKey(c)));
      const check = await checkPredictions(candidates, {
        predictMs: (c) => (c === null ? lat.predictMs(fullCandidate(space)) : lat.predictMs(c)),
        measure,
        flopsFraction: (c) => costOf(analysis, c).macs / baseMacs,
      });
      if (args.json) {
        info(
          JSON.stringify(
            {
              table: lat.tableId,
              entries: lat.model.table.size,
              measuredNow: lat.measured,
              seconds: Math.round(lat.seconds * 10) / 10,
              baseMs: lat.baseMs,
              overheadMsPerImage: lat.model.overheadMs / batch,
              calibrationA: lat.calibrationA,
              load: loadavg()[0],
              check: {
                medianAbsError: check.medianAbsError,
                maxAbsError: check.maxAbsError,
                medianAbsFractionError: check.medianAbsFractionError,
                rows: check.rows,
              },
            },
            null,
            2,
          ),
        );
        return;
      }
      if (check.rows.length === 0) return;
      info(
        table(
          ['#', 'FLOPs', 'predicted ms/image', 'measured ms/image', 'error', 'base timed alongside', 'error of the fraction of base'],
          check.rows.map((r, i) => [
            i,
            pct(r.flopsFraction, 1),
            r.predictedMs.toFixed(4),
            r.measuredMs.toFixed(4),
            `${(100 * r.error).toFixed(1)}%`,
            r.measuredBaseMs.toFixed(4),
            `${(100 * r.fractionError).toFixed(1)}%`,
          ]),
        ),
      );
      if (args.atFlops !== undefined) {
        const ms = check.rows.map((r) => r.measuredMs);
        info(
          `at ${pct(args.atFlops, 1)} ± 1.5% FLOPs: measured ${Math.min(...ms).toFixed(4)} to ${Math.max(...ms).toFixed(4)} ms/image (${(Math.max(...ms) / Math.min(...ms)).toFixed(2)}x)`,
        );
      }
      info(
        `prediction error on ${check.rows.length} held-out candidates: median |error| ${pct(check.medianAbsError, 1)} (max ${pct(check.maxAbsError, 1)}); of the fraction of the base's latency (per-pair ratio with the base timed alongside): median ${pct(check.medianAbsFractionError, 1)}; load average ${loadavg()[0].toFixed(1)}`,
      );
    } finally {
      base.dispose();
      await store.close();
    }
  }),
};
