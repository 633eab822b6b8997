/**
 * AMC (He, Lin, Liu, Wang, Li, Han, ECCV 2018): a DDPG actor-critic walks the prunable groups in order
 * (one episode = one candidate) and picks a keep ratio per group from a state embedding.
 *
 * - State (AMC §3.1, min-max normalised over groups): index, layer kind, in/out channels, stride,
 *   kernel size, weight count, MACs reduced so far, MACs still reducible, previous action — plus
 *   the episode's FLOPs target (a deviation: one actor-critic serves several targets).
 * - Action: a continuous keep ratio in [minKeepRatio, 1], rounded to the channel step, then AMC's
 *   one-sided action wall: capped so the constraint stays reachable with every later group at its
 *   minimum. The constraint is MACs <= target + window (a deviation: AMC caps at the target; this
 *   project counts a candidate for a target up to the window's upper edge, `withinTarget`, so a
 *   cap at the target gave away 3% of FLOPs). An episode under the window says `windowExempt`.
 *   The replay stores the actor's action before the wall, as AMC does.
 * - Reward, given to every step of the episode: `error` = -(1 - proxy accuracy) under that
 *   constraint, or `error-log-flops` = -(1 - accuracy) * ln(MACs).
 * - DDPG (Lillicrap et al. 2016) with AMC's defaults (amc_search.py): actor and critic MLPs with
 *   two hidden layers of 300, Adam at 1e-4 / 1e-3, batch 64, tau 0.01, discount 1, replay of 100
 *   episodes' transitions, 100 warm-up episodes of uniform random actions, then truncated-normal
 *   noise sigma = 0.5 * 0.95^(episode - warmup) around the actor's action, a moving-average reward
 *   baseline (alpha 0.5), one update per transition once the warm-up is over.
 * - `ask(n)` rolls out up to n episodes with the current actor (several in flight); results are
 *   matched by candidate key. The answer at a target is the best episode observed (AMC's
 *   `best_strategy`): the study's finalists are its best trials; `bestByTarget()` tells the log.
 * - Snapshot: networks and Adam moments (float32, as PyTorch keeps them) and the replay as base64
 *   float32 bytes, encoded once per told episode and cached until the next tell; bit-exact on
 *   restore; fixed size (4.2 MB of JSON at 300 units, 0.22 MB at 32), however long the study.
 */
import { type ControllerOptionsOf, controllerOptions } from '../config/sections/search.js';
import type { Rng } from '../core/rng.js';
import { type Candidate, candidateKey, isSkipped } from '../core/space.js';
import type { Json } from '../core/types.js';
import {
  type BestOfTarget,
  badSnapshot,
  channelLevels,
  decodeFloats,
  encodeFloats,
  inWindow,
  macsFraction,
  packFloat32,
  ResultLog,
  rngFromJson,
  rngJson,
  sameTargets,
  snapshotObject,
  unpackFloat32,
} from './common.js';
import { Mlp } from './mlp.js';
import type { Controller, ControllerContext, GroupDescriptor, Observation, Proposal } from './types.js';

/** `search.controller` options (defaults in src/config/sections/search.ts), and DDPG knobs that are not config options. */
export type RlOptions = ControllerOptionsOf<'rl'> & {
  /** AMC's values unless given (tests): see `AMC`. */
  readonly actorLr?: number;
  readonly criticLr?: number;
  readonly noiseDecay?: number;
  readonly discount?: number;
};

/** AMC's DDPG settings (amc_search.py defaults). */
const AMC = { actorLr: 1e-4, criticLr: 1e-3, tau: 0.01, discount: 1, initDelta: 0.5, deltaDecay: 0.95, replayEpisodes: 100, movingAlpha: 0.5, initW: 0.003 };
const STATE = 11;
const KINDS: Record<GroupDescriptor['kind'], number> = { conv: 0, dense: 1, depthwise: 2, separable: 3 };

interface Episode {
  readonly index: number;
  readonly target: number;
  /** States (STATE per step), then the actor's action per step (before the wall). */
  readonly data: Float32Array;
  readonly channels: number[];
}

export class RlController implements Controller {
  readonly name = 'rl';
  private rng: Rng;
  private readonly layers: number[];
  private readonly features: number[][];
  private readonly targets: number[];
  private readonly warmup: number;
  private readonly total: number;
  private readonly nets: { actor: Mlp; critic: Mlp; actorTarget: Mlp; criticTarget: Mlp };
  private readonly replay: Float32Array;
  private readonly width: number;
  private replaySize = 0;
  private replayHead = 0;
  private baseline: number | null = null;
  private started = 0;
  private pending = new Map<string, Episode[]>();
  private heavy: string | null = null;
  private readonly log = new ResultLog();

  private readonly options: RlOptions;

  constructor(
    private readonly ctx: ControllerContext,
    given: Partial<RlOptions> = {},
  ) {
    const { actorLr, criticLr, noiseDecay, discount, ...spec } = given;
    this.options = { ...controllerOptions('rl', spec), actorLr, criticLr, noiseDecay, discount };
    this.rng = rngFromJson(rngJson(ctx.rng), this.name);
    this.layers = ctx.space.groups.map((_, g) => g).filter((g) => !isSkipped(ctx.space, g));
    this.features = staticFeatures(ctx, this.layers);
    this.targets = ctx.targets.filter((t) => macsFraction(ctx, this.withMin(this.full(), 0)) <= t + ctx.window);
    this.warmup = this.options.warmup;
    this.total = this.warmup + this.options.episodes;
    const h = this.options.hidden;
    const netRng = this.rng.fork('networks');
    const make = (inputs: number, sigmoid: boolean): Mlp => new Mlp([inputs, h, h, 1], sigmoid);
    this.nets = { actor: make(STATE, true), critic: make(STATE + 1, false), actorTarget: make(STATE, true), criticTarget: make(STATE + 1, false) };
    this.nets.actor.init(netRng, AMC.initW);
    this.nets.critic.init(netRng, AMC.initW);
    this.nets.actorTarget.params.set(this.nets.actor.params);
    this.nets.criticTarget.params.set(this.nets.critic.params);
    this.width = 2 * STATE + 3;
    this.replay = new Float32Array(AMC.replayEpisodes * Math.max(1, this.layers.length) * this.width);
  }

  ask(n: number): Proposal[] {
    const out: Proposal[] = [];
    while (out.length < n && !this.done()) {
      const e = this.addPending(this.rollout(this.started++, this.targets[(this.started - 1) % this.targets.length]));
      const exempt = inWindow(this.ctx, macsFraction(this.ctx, { channels: e.channels }), e.target) ? {} : { windowExempt: true };
      out.push({ candidate: { channels: [...e.channels] }, meta: { target: e.target, controller: this.name, episode: e.index, ...exempt } });
    }
    return out;
  }

  tell(observations: readonly Observation[]): void {
    this.log.record(observations, this.ctx.baseCost.macs);
    for (const o of observations) {
      const key = candidateKey(o.candidate);
      const episodes = this.pending.get(key);
      if (episodes === undefined) continue;
      this.pending.delete(key);
      for (const e of episodes) this.learn(e, this.reward(o));
      this.heavy = null;
    }
  }

  done(): boolean {
    return this.targets.length === 0 || this.started >= this.total;
  }

  /** Best proxy accuracy per target so far (AMC's best reward), for logs. */
  bestByTarget(): readonly BestOfTarget[] {
    return this.log.best;
  }

  snapshot(): Json {
    this.heavy ??= packFloat32(this.heavyParts());
    const { actor, critic } = this.nets;
    return {
      version: 2,
      targets: [...this.ctx.targets],
      rng: rngJson(this.rng),
      started: this.started,
      baseline: this.baseline,
      replay: [this.replaySize, this.replayHead],
      adamSteps: [actor.step, critic.step],
      heavy: this.heavy,
      pending: [...this.pending.values()].flat().map((e) => ({ i: e.index, t: e.target, c: e.channels, d: encodeFloats(e.data) })),
      ...this.log.toJson(),
    };
  }

  restore(state: Json): void {
    const s = snapshotObject(state, this.name, 2);
    sameTargets(s, this.ctx, this.name);
    const { started, baseline, replay, adamSteps, pending } = s;
    if (typeof started !== 'number' || !Array.isArray(replay) || !Array.isArray(adamSteps) || !Array.isArray(pending))
      throw badSnapshot(this.name, 'malformed counters');
    const { actor, critic } = this.nets;
    unpackFloat32(s.heavy, this.heavyParts(), this.name);
    this.rng = rngFromJson(s.rng, this.name);
    this.started = started;
    this.baseline = typeof baseline === 'number' ? baseline : null;
    [this.replaySize, this.replayHead] = replay as number[];
    [actor.step, critic.step] = adamSteps as number[];
    this.heavy = s.heavy as string;
    this.log.load(s, this.name);
    this.pending = new Map();
    for (const p of pending as { i: number; t: number; c: number[]; d: string }[]) {
      this.addPending({ index: p.i, target: p.t, channels: p.c, data: decodeFloats(p.d, this.layers.length * (STATE + 1), this.name, Float32Array) });
    }
  }

  private addPending(e: Episode): Episode {
    const key = e.channels.join(',');
    this.pending.set(key, [...(this.pending.get(key) ?? []), e]);
    return e;
  }

  /** Everything learned, in snapshot order: float32 arrays only. */
  private heavyParts(): Float32Array[] {
    const { actor, critic, actorTarget, criticTarget } = this.nets;
    return [actor.params, actor.m, actor.v, actorTarget.params, critic.params, critic.m, critic.v, criticTarget.params, this.replay];
  }

  private full(): number[] {
    return this.ctx.space.groups.map((g) => g.channels);
  }

  /** `channels` with every layer from position `from` on at its minimum. */
  private withMin(channels: number[], from: number): Candidate {
    const c = [...channels];
    for (let t = from; t < this.layers.length; t++) c[this.layers[t]] = channelLevels(this.ctx.space, this.layers[t])[0];
    return { channels: c };
  }

  private state(t: number, channels: number[], prev: number, target: number): number[] {
    const now = macsFraction(this.ctx, { channels });
    const reducible = now - macsFraction(this.ctx, this.withMin(channels, t));
    return [...this.features[t], 1 - now, reducible, prev, target];
  }

  private rollout(index: number, target: number): Episode {
    const L = this.layers.length;
    const data = new Float32Array(L * (STATE + 1));
    const channels = this.full();
    const minKeep = this.ctx.space.options.minKeepRatio;
    const sigma = AMC.initDelta * (this.options.noiseDecay ?? AMC.deltaDecay) ** (index - this.warmup);
    let prev = 1;
    for (let t = 0; t < L; t++) {
      const g = this.layers[t];
      const s = this.state(t, channels, prev, target);
      const a = index < this.warmup ? this.rng.uniform(minKeep, 1) : truncatedNormal(this.rng, this.nets.actor.forward(s)[3][0], sigma, minKeep, 1);
      const levels = channelLevels(this.ctx.space, g);
      channels[g] = this.wall(t, levels, nearestLevel(levels, a * this.ctx.space.groups[g].channels), channels, target);
      prev = channels[g] / this.ctx.space.groups[g].channels;
      data.set(s, t * STATE);
      data[L * STATE + t] = a;
    }
    return { index, target, data, channels };
  }

  /** AMC's action wall: level `i` of layer `t`, lowered while even every later layer at its minimum would break the constraint. */
  private wall(t: number, levels: readonly number[], i: number, channels: number[], target: number): number {
    channels[this.layers[t]] = levels[i];
    while (i > 0 && macsFraction(this.ctx, this.withMin(channels, t + 1)) > target + this.ctx.window) channels[this.layers[t]] = levels[--i];
    return levels[i];
  }

  private reward(o: Observation): number {
    const error = 1 - (o.proxyAccuracy ?? 0);
    return this.options.reward === 'error-log-flops' ? -error * Math.log(o.cost.macs) : -error;
  }

  /** Store the episode's transitions, all with the episode's reward; train once per transition after the warm-up. */
  private learn(e: Episode, reward: number): void {
    const L = this.layers.length;
    for (let t = 0; t < L; t++) {
      const row = this.replayHead * this.width;
      this.replay.set(e.data.subarray(t * STATE, (t + 1) * STATE), row);
      this.replay[row + STATE] = e.data[L * STATE + t];
      this.replay[row + STATE + 1] = reward;
      const last = t === L - 1;
      if (!last) this.replay.set(e.data.subarray((t + 1) * STATE, (t + 2) * STATE), row + STATE + 2);
      else this.replay.fill(0, row + STATE + 2, row + 2 * STATE + 2);
      this.replay[row + 2 * STATE + 2] = last ? 1 : 0;
      this.replayHead = (this.replayHead + 1) % (this.replay.length / this.width);
      this.replaySize = Math.min(this.replaySize + 1, this.replay.length / this.width);
      if (e.index >= this.warmup) this.update();
    }
  }

  private update(): void {
    const { actor, critic, actorTarget, criticTarget } = this.nets;
    const B = Math.min(this.options.batchSize, this.replaySize);
    const rows = Array.from({ length: B }, () => this.rng.int(this.replaySize) * this.width);
    const mean = rows.reduce((a, r) => a + this.replay[r + STATE + 1], 0) / B;
    this.baseline = this.baseline === null ? mean : this.baseline + AMC.movingAlpha * (mean - this.baseline);
    for (const r of rows) {
      const s = this.replay.subarray(r, r + STATE);
      const s1 = this.replay.subarray(r + STATE + 2, r + 2 * STATE + 2);
      const notDone = 1 - this.replay[r + 2 * STATE + 2];
      const next = notDone ? criticTarget.forward([...s1, actorTarget.forward(s1)[3][0]])[3][0] : 0;
      const y = this.replay[r + STATE + 1] - this.baseline + (this.options.discount ?? AMC.discount) * notDone * next;
      const acts = critic.forward([...s, this.replay[r + STATE]]);
      critic.backward(acts, [(2 * (acts[3][0] - y)) / B]);
    }
    critic.adam(this.options.criticLr ?? AMC.criticLr, 1);
    for (const r of rows) {
      const s = this.replay.subarray(r, r + STATE);
      const aActs = actor.forward(s);
      const dIn = critic.backward(critic.forward([...s, aActs[3][0]]), [-1 / B]);
      actor.backward(aActs, [dIn[STATE]]);
    }
    critic.grad.fill(0);
    actor.adam(this.options.actorLr ?? AMC.actorLr, 1);
    actorTarget.softUpdate(actor, AMC.tau);
    criticTarget.softUpdate(critic, AMC.tau);
  }
}

/** Per layer: index, kind, in/out channels, stride, kernel, weights — each min-max normalised over layers. */
function staticFeatures(ctx: ControllerContext, layers: readonly number[]): number[][] {
  const rows = layers.map((g, t) => {
    const d = ctx.groups?.[g] ?? derivedDescriptor(ctx, g);
    return [t, KINDS[d.kind], d.inChannels, d.outChannels, d.stride, d.kernel, d.params];
  });
  return rows.map((r) =>
    r.map((v, k) => {
      const col = rows.map((x) => x[k]);
      const [lo, hi] = [Math.min(...col), Math.max(...col)];
      return hi > lo ? (v - lo) / (hi - lo) : 0;
    }),
  );
}

/** Without analysis data: what costOf says pruning this group alone to its minimum saves. */
function derivedDescriptor(ctx: ControllerContext, g: number): GroupDescriptor {
  const c = ctx.space.groups.map((x) => x.channels);
  c[g] = channelLevels(ctx.space, g)[0];
  const cut = ctx.costOf({ channels: c });
  return {
    kind: 'conv',
    inChannels: g > 0 ? ctx.space.groups[g - 1].channels : 0,
    outChannels: ctx.space.groups[g].channels,
    stride: 1,
    kernel: 9,
    params: ctx.baseCost.params - cut.params,
    macs: ctx.baseCost.macs - cut.macs,
  };
}

function nearestLevel(levels: readonly number[], x: number): number {
  let best = 0;
  for (let i = 1; i < levels.length; i++) if (Math.abs(levels[i] - x) < Math.abs(levels[best] - x)) best = i;
  return best;
}

/** Normal(mu, sigma) truncated to [lo, hi] by rejection (AMC samples scipy's truncnorm); clamped after 100 misses. */
function truncatedNormal(rng: Rng, mu: number, sigma: number, lo: number, hi: number): number {
  for (let i = 0; i < 100; i++) {
    const x = mu + sigma * rng.normal();
    if (x >= lo && x <= hi) return x;
  }
  return Math.min(hi, Math.max(lo, mu));
}
