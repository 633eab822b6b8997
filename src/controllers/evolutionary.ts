/**
 * NSGA-II (Deb, Pratap, Agarwal, Meyarivan, IEEE TEVC 2002) on the keep-ratio vector, built the
 * pymoo way from small operators sharing one seeded RNG: binary tournament on (rank, crowding),
 * simulated binary crossover (SBX), polynomial mutation, and (mu + lambda) survival by
 * non-dominated rank then crowding distance (src/core/pareto.ts).
 *
 * Objectives, all minimised: -proxy accuracy, MACs fraction, and optionally latency or params when
 * observations carry them. Constraint, MetaPruning-style (Liu et al., ICCV 2019: candidates outside
 * the FLOPs budget are never evaluated): each child is given a target (round-robin) and repaired
 * into its window by scaling its ratios (`steerToWindow`); a child that cannot be repaired, or that
 * duplicates the population, is re-drawn, and after `MAX_TRIES` replaced by a random shape.
 * A whole generation is planned at once so the pool stays busy; the next one is bred when every
 * proposal of this one has been told. Results of other sources (the uniform baseline) join the
 * next survival. Snapshot: the population and the open generation, O(population), in JSON.
 */
import { type ControllerOptionsOf, controllerOptions } from '../config/sections/search.js';
import { crowdingDistance, nonDominatedSort, nonDominatedSortN } from '../core/pareto.js';
import type { Rng } from '../core/rng.js';
import { type Candidate, candidateKey, isSkipped, keepRatios } from '../core/space.js';
import type { Json } from '../core/types.js';
import { accuracyOf, badSnapshot, macsFraction, rngFromJson, rngJson, sameTargets, snapshotObject, steerToWindow, targetFeasible } from './common.js';
import type { Controller, ControllerContext, Observation, Proposal } from './types.js';

/** `search.controller` options (defaults in src/config/sections/search.ts). */
export type EvolutionaryOptions = ControllerOptionsOf<'evolutionary'>;

interface Individual {
  readonly channels: number[];
  readonly objectives: number[];
}

interface Planned {
  readonly channels: number[];
  readonly target: number;
}

const MAX_TRIES = 50;

export class EvolutionaryController implements Controller {
  readonly name = 'evolutionary';
  private rng: Rng;
  private generation = 0;
  private population: Individual[] = [];
  private planned: Planned[] = [];
  private pending = new Map<string, Planned>();
  private told: Individual[] = [];
  private cursor = 0;
  /** Set when a whole generation could not be bred (every window exhausted): then done. */
  private stalled = false;
  private readonly size: number;
  private readonly targets: number[];

  private readonly options: EvolutionaryOptions;

  constructor(
    private readonly ctx: ControllerContext,
    given: Partial<EvolutionaryOptions> = {},
  ) {
    this.options = controllerOptions('evolutionary', given);
    this.rng = rngFromJson(rngJson(ctx.rng), this.name);
    this.size = this.options.population;
    this.targets = ctx.targets.filter((t) => targetFeasible(ctx, t));
  }

  ask(n: number): Proposal[] {
    if (this.planned.length === 0 && this.pending.size === 0 && !this.done()) this.breed();
    const out = this.planned.splice(0, n);
    for (const p of out) this.pending.set(p.channels.join(','), p);
    return out.map((p) => ({
      candidate: { channels: [...p.channels] },
      meta: { target: p.target, controller: this.name, generation: this.generation },
    }));
  }

  tell(observations: readonly Observation[]): void {
    for (const o of observations) {
      this.pending.delete(candidateKey(o.candidate));
      this.told.push({ channels: [...o.candidate.channels], objectives: this.objectives(o) });
    }
  }

  done(): boolean {
    return this.targets.length === 0 || this.stalled;
  }

  snapshot(): Json {
    const ind = (i: Individual): Json => ({ c: i.channels, o: i.objectives });
    const plan = (p: Planned): Json => ({ c: p.channels, t: p.target });
    return {
      version: 1,
      targets: [...this.ctx.targets],
      rng: rngJson(this.rng),
      generation: this.generation,
      cursor: this.cursor,
      stalled: this.stalled,
      population: this.population.map(ind),
      told: this.told.map(ind),
      planned: this.planned.map(plan),
      pending: [...this.pending.values()].map(plan),
    };
  }

  restore(state: Json): void {
    const s = snapshotObject(state, this.name, 1);
    sameTargets(s, this.ctx, this.name);
    const list = (v: Json | undefined): { c: number[]; o: number[]; t: number }[] => {
      if (!Array.isArray(v)) throw badSnapshot(this.name, 'malformed population');
      return v as unknown as { c: number[]; o: number[]; t: number }[];
    };
    if (typeof s.generation !== 'number' || typeof s.cursor !== 'number') throw badSnapshot(this.name, 'malformed `generation`');
    this.rng = rngFromJson(s.rng, this.name);
    this.generation = s.generation;
    this.cursor = s.cursor;
    this.stalled = s.stalled === true;
    this.population = list(s.population).map((i) => ({ channels: i.c, objectives: i.o }));
    this.told = list(s.told).map((i) => ({ channels: i.c, objectives: i.o }));
    this.planned = list(s.planned).map((p) => ({ channels: p.c, target: p.t }));
    this.pending = new Map(list(s.pending).map((p) => [p.c.join(','), { channels: p.c, target: p.t }]));
  }

  private objectives(o: Observation): number[] {
    const objs = [-accuracyOf(o), o.cost.macs / this.ctx.baseCost.macs];
    const third = this.options.thirdObjective;
    // A missing latency ranks worst; MAX_VALUE rather than Infinity, which JSON cannot carry.
    if (third === 'latency') objs.push(o.latencyMs ?? Number.MAX_VALUE);
    if (third === 'params') objs.push(o.params ?? o.cost.params);
    return objs;
  }

  /** (mu + lambda) survival, then a new generation of children repaired into their windows. */
  private breed(): void {
    if (this.told.length) {
      this.population = survive([...this.population, ...this.told], this.size);
      this.told = [];
      this.generation++;
    }
    const ranked = rankAndCrowd(this.population);
    const seen = new Set(this.population.map((i) => i.channels.join(',')));
    for (let k = 0; k < this.size; k++) {
      const target = this.targets[this.cursor++ % this.targets.length];
      const child = this.child(ranked, target, seen);
      if (child === undefined) continue;
      seen.add(candidateKey(child));
      this.planned.push({ channels: [...child.channels], target });
    }
    this.stalled = this.planned.length === 0;
  }

  private child(ranked: Ranked, target: number, seen: Set<string>): Candidate | undefined {
    const fresh = (c: Candidate): boolean => !seen.has(candidateKey(c));
    for (let tryNo = 0; tryNo < MAX_TRIES; tryNo++) {
      const shape = this.population.length >= 2 && tryNo < MAX_TRIES - 1 ? this.variation(ranked) : this.randomShape();
      const aim = target + this.rng.uniform(-this.ctx.window, this.ctx.window);
      const c = steerToWindow(this.ctx, shape, target, aim, fresh);
      if (c !== undefined && Math.abs(macsFraction(this.ctx, c) - target) <= this.ctx.window) return c;
    }
    return undefined;
  }

  private randomShape(): number[] {
    const lo = this.ctx.space.options.minKeepRatio;
    return this.ctx.space.groups.map((_, g) => (isSkipped(this.ctx.space, g) ? 1 : this.rng.uniform(lo, 1)));
  }

  /** Tournament -> SBX -> polynomial mutation, on realised keep ratios in [minKeepRatio, 1]. */
  private variation(ranked: Ranked): number[] {
    const space = this.ctx.space;
    const a = keepRatios(space, { channels: this.population[this.tournament(ranked)].channels });
    const b = keepRatios(space, { channels: this.population[this.tournament(ranked)].channels });
    const lo = space.options.minKeepRatio;
    const n = space.groups.length;
    const cross = this.rng.next() < this.options.crossoverProbability;
    return a.map((x, g) => {
      if (isSkipped(space, g)) return 1;
      let y = cross && this.rng.next() < 0.5 ? sbx(this.rng, x, b[g], lo, 1, this.options.crossoverEta) : x;
      if (this.rng.next() < 1 / n) y = polynomialMutation(this.rng, y, lo, 1, this.options.mutationEta);
      return Math.min(1, Math.max(lo, y));
    });
  }

  private tournament(r: Ranked): number {
    const i = this.rng.int(r.rank.length);
    const j = this.rng.int(r.rank.length);
    if (r.rank[i] !== r.rank[j]) return r.rank[i] < r.rank[j] ? i : j;
    if (r.crowding[i] !== r.crowding[j]) return r.crowding[i] > r.crowding[j] ? i : j;
    return this.rng.next() < 0.5 ? i : j;
  }
}

interface Ranked {
  readonly rank: number[];
  readonly crowding: number[];
}

function fronts(pop: readonly Individual[]): number[][] {
  if (pop.length && pop[0].objectives.length === 2) {
    return nonDominatedSort(pop.map((p) => ({ cost: p.objectives[1], value: -p.objectives[0] }))).fronts;
  }
  return nonDominatedSortN(pop.map((p) => p.objectives));
}

function rankAndCrowd(pop: readonly Individual[]): Ranked {
  const rank = new Array<number>(pop.length).fill(0);
  const crowding = new Array<number>(pop.length).fill(0);
  fronts(pop).forEach((f, k) => {
    const d = crowdingDistance(f.map((i) => pop[i].objectives));
    f.forEach((i, r) => {
      rank[i] = k;
      crowding[i] = d[r];
    });
  });
  return { rank, crowding };
}

/** NSGA-II survival: whole fronts while they fit, then the least crowded of the last one. */
function survive(pool: readonly Individual[], size: number): Individual[] {
  const unique = [...new Map(pool.map((p) => [p.channels.join(','), p])).values()];
  const out: Individual[] = [];
  for (const f of fronts(unique)) {
    if (out.length + f.length <= size) {
      out.push(...f.map((i) => unique[i]));
      continue;
    }
    const d = crowdingDistance(f.map((i) => unique[i].objectives));
    const order = f.map((_, r) => r).sort((x, y) => d[y] - d[x] || x - y);
    out.push(...order.slice(0, size - out.length).map((r) => unique[f[r]]));
    break;
  }
  return out;
}

/** Simulated binary crossover (Deb & Agrawal 1995), one child, bounded. */
function sbx(rng: Rng, x1: number, x2: number, lo: number, hi: number, eta: number): number {
  if (Math.abs(x1 - x2) < 1e-14) return x1;
  const y1 = Math.min(x1, x2);
  const y2 = Math.max(x1, x2);
  const u = rng.next();
  const spread = (beta: number): number => {
    const alpha = 2 - beta ** -(eta + 1);
    return u <= 1 / alpha ? (u * alpha) ** (1 / (eta + 1)) : (1 / (2 - u * alpha)) ** (1 / (eta + 1));
  };
  const c1 = 0.5 * (y1 + y2 - spread(1 + (2 * (y1 - lo)) / (y2 - y1)) * (y2 - y1));
  const c2 = 0.5 * (y1 + y2 + spread(1 + (2 * (hi - y2)) / (y2 - y1)) * (y2 - y1));
  return rng.next() < 0.5 ? c1 : c2;
}

/** Polynomial mutation (Deb & Goyal 1996), bounded. */
function polynomialMutation(rng: Rng, x: number, lo: number, hi: number, eta: number): number {
  if (hi <= lo) return x;
  const d1 = (x - lo) / (hi - lo);
  const d2 = (hi - x) / (hi - lo);
  const u = rng.next();
  const p = 1 / (eta + 1);
  const dq = u < 0.5 ? (2 * u + (1 - 2 * u) * (1 - d1) ** (eta + 1)) ** p - 1 : 1 - (2 * (1 - u) + 2 * (u - 0.5) * (1 - d2) ** (eta + 1)) ** p;
  return x + dq * (hi - lo);
}
