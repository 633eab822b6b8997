/**
 * The driver (Optuna's ask/tell, with the store as the queue): it asks the controller, writes the
 * proposals as waiting trials together with the controller snapshot in one transaction, and tells
 * the controller what finished. It never evaluates anything; workers do.
 */
import type { Controller, Observation, Proposal } from '../controllers/types.js';
import { AutopruneError, ErrorCodes } from '../core/errors.js';
import type { Candidate } from '../core/space.js';
import type { Cost, Json } from '../core/types.js';
import type { DriverLease, NewTrial, Store, TrialRecord } from '../store/types.js';
import { trialKey } from './lineage.js';
import { type FailurePolicy, firstLine } from './policy.js';
import { duePromotions, type RungMeta, type RungSpec, rungMetaOf } from './rungs.js';
import { isFinished, NumberRuns, type Planned, type RungEntry, type StudyView, TrialIndex } from './view.js';

export type { StudyView } from './view.js';

const rungId = (p: { origin: number; rung: number }) => `${p.origin}@${p.rung}`;

export interface DriverOptions {
  readonly store: Store;
  readonly lease: DriverLease;
  readonly controller: Controller;
  /** Trial numbers the controller has already been told (from the snapshot). */
  readonly told: Iterable<number>;
  readonly costOf: (c: Candidate) => Cost;
  readonly policy: FailurePolicy;
  /** Claims per trial before an expiring lease fails it (store.reapExpired). */
  readonly maxAttempts: number;
  /** For log lines: FLOPs as a fraction of the base model's. */
  readonly baseMacs: number;
  readonly log?: (line: string) => void;
  /** The rungs after the proxy (docs/rungs.md); none: no promotions. */
  readonly rungs?: {
    readonly schedule: readonly RungSpec[];
    /** A search trial's target (the band it lies in), or null. */
    readonly targetOf: (t: TrialRecord) => number | null;
  };
}

/** What the controller snapshot holds besides the controller's own state. */
export interface SnapshotState {
  readonly controller: Json;
  /**
   * Trial numbers told, as inclusive [first, last] runs: a few pairs however long the study, where
   * the plain list made every snapshot grow with it (quadratic bytes over a study). Snapshots
   * written before hold the plain list; `toldNumbers` reads both.
   */
  readonly told: readonly (readonly [number, number])[] | readonly number[];
}

/** Sorted trial numbers as inclusive [first, last] runs. */
export function toldRuns(told: Iterable<number>): [number, number][] {
  return new NumberRuns(told).runs();
}

/** The told trial numbers of a snapshot, whichever form it holds. */
export function toldNumbers(told: SnapshotState['told']): number[] {
  return told.flatMap((x) => (typeof x === 'number' ? [x] : Array.from({ length: x[1] - x[0] + 1 }, (_, i) => x[0] + i)));
}

export function observation(t: TrialRecord): Observation {
  const ok = t.state === 'complete';
  return {
    candidate: t.candidate,
    cost: t.cost,
    meta: t.meta ?? null,
    proxyAccuracy: ok ? (t.metrics.proxyAccuracy ?? null) : null,
    ...(ok && t.metrics.latencyMs !== undefined ? { latencyMs: t.metrics.latencyMs } : {}),
    params: t.cost.params,
    stage: t.stage,
    trial: t.number,
    parent: t.parent,
  };
}

/** Finishing order: the store's finish sequence, of which every listing holds a prefix (TrialRecord.finishSeq). */
const byFinish = (a: TrialRecord, b: TrialRecord) => (a.finishSeq ?? Infinity) - (b.finishSeq ?? Infinity) || a.number - b.number;

export class Driver {
  /** Trial numbers told, as runs: a few pairs however long the study. */
  private readonly told: NumberRuns;
  /** Trials told in this run (for the ETA). */
  toldThisRun = 0;
  /** Built at the first look (`sync`), then kept up to date by the looks and the enqueues. */
  private known: TrialIndex | null = null;

  constructor(private readonly o: DriverOptions) {
    this.told = new NumberRuns(o.told);
  }

  private get index(): TrialIndex {
    if (this.known === null) throw new Error('the driver used its trials before its first look at the study (a bug: sync comes first)');
    return this.known;
  }

  private get study(): string {
    return this.o.lease.study;
  }

  snapshotState(): SnapshotState {
    return { controller: this.o.controller.snapshot(), told: this.told.runs() };
  }

  /**
   * Looks at the store and tells the controller every finished trial it has not heard of (in
   * finishing order); applies the failure policy. The first look reads every trial; later looks
   * read only the trials in flight at the one before.
   */
  async sync(): Promise<StudyView> {
    const reaped = await this.o.store.reapExpired(this.study, { maxAttempts: this.o.maxAttempts });
    if (reaped.requeued.length) this.o.log?.(`re-queued trial(s) ${reaped.requeued.join(', ')}: their worker stopped renewing its lease`);
    if (reaped.failed.length) this.o.log?.(`trial(s) ${reaped.failed.join(', ')} failed: their lease expired ${this.o.maxAttempts} time(s)`);
    const finished = (await this.look()).sort(byFinish);
    const fresh = finished.filter((t) => !this.told.has(t.number));
    if (fresh.length) {
      // One at a time, yielding between: a controller's tell can be long synchronous work (rl's
      // DDPG updates took 10-60 s per episode on a loaded host). Leases are renewed on the lease
      // thread, but a memory store's renewals are timers on this thread and must get their turn.
      for (const t of fresh) {
        // Rung trials are the study's, not the controller's: it proposed the candidate, not the fine-tune.
        if (rungMetaOf(t) === null) this.o.controller.tell([observation(t)]);
        this.told.add(t.number);
        this.o.log?.(this.describe(t));
        await new Promise<void>((r) => setImmediate(r));
      }
      this.toldThisRun += fresh.length;
      // No snapshot here: the next enqueue writes one with its proposals, and a resume re-tells
      // what finished after the last one (tell is deterministic), so each state is written once
      // (rl's 4 MB snapshot was once written twice per episode).
      this.o.policy.observe(fresh);
    }
    const index = this.index;
    return { count: index.count, searchCount: index.searchCount, live: index.live(), finished };
  }

  /** The origins of the trials that finished the last rung, by number (the study's finalists). */
  finalists(): number[] {
    const last = this.o.rungs?.schedule.length ?? 0;
    return (this.known?.rungTrials() ?? []).flatMap((t) => {
      const m = rungMetaOf(t);
      return m !== null && m.rung === last && t.state === 'complete' ? [m.origin] : [];
    });
  }

  /** Updates the index; returns the trials seen finished for the first time. */
  private async look(): Promise<TrialRecord[]> {
    if (this.known === null) {
      const all = await this.o.store.listTrials(this.study);
      const r = this.o.rungs;
      const index = new TrialIndex(r && r.schedule.length > 0 ? r.targetOf : null);
      for (const t of all) index.add(t);
      this.known = index;
      return all.filter(isFinished);
    }
    const numbers = this.known.liveNumbers();
    return numbers.length === 0 ? [] : this.known.update(await this.o.store.listTrials(this.study, { numbers }));
  }

  /**
   * Asks for up to `slots` new trials and enqueues them with the snapshot. A proposal already in the
   * store (same key: candidate, stage, parent) is not enqueued again; its result, if finished, is
   * told. Returns how many were enqueued, or 'exhausted' when the controller has nothing more.
   */
  async fill(slots: number): Promise<number | 'exhausted'> {
    const index = this.index;
    // Trials of this batch as they will be numbered (the driver lease makes this the only writer),
    // so a proposal may name a parent proposed just before it.
    const fresh: Planned[] = [];
    let asked = 0;
    // Controllers guarantee progress (a saturated target is closed), so this ends.
    while (fresh.length < slots) {
      if (this.o.controller.done()) break;
      const [p] = this.o.controller.ask(1);
      if (!p) break;
      asked++;
      const t = this.newTrial(p, fresh);
      const known = index.numberOfKey(t.key);
      if (known !== undefined) await this.tellKnown(known, p);
      if (known !== undefined || fresh.some((f) => f.key === t.key)) continue;
      fresh.push({ ...t, number: index.count + fresh.length });
    }
    if (fresh.length || asked) {
      const batch = fresh.map(({ number: _, ...t }): NewTrial => t);
      const added = await this.o.store.enqueueTrials(this.o.lease, batch, { told: this.told.size, state: this.snapshotState() as unknown as Json });
      if (added.some((t, i) => t.number !== index.count + i)) {
        throw new AutopruneError(
          ErrorCodes.STORE_ERROR,
          `Trials of study \`${this.study}\` were added by another writer while this driver held it; stop it and resume`,
        );
      }
      for (const t of added) index.add(t);
    }
    return fresh.length === 0 ? 'exhausted' : fresh.length;
  }

  /**
   * Enqueues the rung promotions due (duePromotions) that are not in the store yet, with the
   * controller snapshot (the enqueue is fenced by the driver lease like the controller's). Returns
   * how many were enqueued.
   */
  async promote(searchClosed: boolean): Promise<number> {
    const r = this.o.rungs;
    const trials = this.index.rungTrials();
    if (!r || r.schedule.length === 0 || trials === null) return 0;
    const have = new Set(trials.flatMap((t) => (rungMetaOf(t) ? [rungId(rungMetaOf(t)!)] : [])));
    const due = duePromotions(r.schedule, trials, { targetOf: (t) => (t as RungEntry).target, searchClosed }).filter((p) => !have.has(rungId(p)));
    if (due.length === 0) return 0;
    const fresh: NewTrial[] = [];
    for (const p of due) {
      // A finished trial (it holds a result), so its stored record is final.
      const from = (await this.o.store.getTrial(this.study, p.from))!;
      // Rung 1 continues the proxy's weights: the base cut (re-derived), or its adapted parent's.
      const weights = rungMetaOf(from) !== null || from.stage === 'adapt' ? from.number : from.parent;
      const meta: RungMeta = {
        rung: p.rung,
        origin: p.origin,
        target: p.target,
        weights,
        finetune: r.schedule[p.rung - 1].finetune,
        last: p.rung === r.schedule.length,
      };
      fresh.push({
        candidate: from.candidate,
        key: trialKey(from.candidate, 'finetune', from.number),
        cost: from.cost,
        controller: from.controller,
        meta: meta as unknown as Json,
        stage: 'finetune',
        parent: from.number,
      });
    }
    const added = await this.o.store.enqueueTrials(this.o.lease, fresh, { told: this.told.size, state: this.snapshotState() as unknown as Json });
    for (const t of added) this.index.add(t);
    this.o.log?.(`promoted ${added.map((t) => `trial ${t.parent} -> rung ${(t.meta as unknown as RungMeta).rung} (trial ${t.number})`).join(', ')}`);
    return added.length;
  }

  /** One log line per finished trial, whichever worker (thread or process) ran it. */
  private describe(t: TrialRecord): string {
    const what = `trial ${t.number}${t.stage === 'proxy' ? '' : ` (${t.stage}${t.parent === null ? '' : ` from trial ${t.parent}`})`}`;
    if (t.state === 'failed') return `${what} failed: ${firstLine(t.error ?? 'unknown error')}`;
    const secs = t.metrics.timings?.total;
    const where = `${secs === undefined ? '' : ` in ${secs.toFixed(1)} s`} [${t.worker ?? '?'}]`;
    const done = `${what}: ${(100 * (t.cost.macs / this.o.baseMacs)).toFixed(1)}% FLOPs (${(t.cost.macs / 1e6).toFixed(2)} MMACs), proxy ${(100 * (t.metrics.proxyAccuracy ?? NaN)).toFixed(2)}%${where}`;
    const rung = rungMetaOf(t);
    // A last-rung result is its origin's final (src/study/finals.ts).
    if (!rung?.last || t.metrics.finalAccuracy == null) return done;
    return `${done}\nfinalist trial ${rung.origin}: test ${(100 * t.metrics.finalAccuracy).toFixed(2)}% after rung ${rung.rung} (trial ${t.number})`;
  }

  /**
   * A re-proposed trial that had finished at the last look is told again, with the new proposal's
   * meta: controllers match results to proposals. One still in flight is told when it finishes.
   */
  private async tellKnown(number: number, p: Proposal): Promise<void> {
    if (this.index.isLive(number)) return;
    const t = await this.o.store.getTrial(this.study, number);
    if (t === null || !isFinished(t)) return;
    this.o.controller.tell([{ ...observation(t), meta: p.meta as Json }]);
    this.told.add(t.number);
  }

  private newTrial(p: Proposal, planned: readonly Planned[]): NewTrial {
    const stage = p.meta.stage ?? 'proxy';
    const parent = p.meta.parent === undefined ? null : this.index.parentOf(p.meta.parent, planned);
    return {
      candidate: p.candidate,
      key: trialKey(p.candidate, stage, parent),
      cost: this.o.costOf(p.candidate),
      controller: p.source ?? this.o.controller.name,
      meta: p.meta as Json,
      stage,
      parent,
    };
  }
}
