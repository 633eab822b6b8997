/**
 * onnxruntime-node as an optional engine: loaded on first use, never required (a missing or broken
 * install makes `auto` fall back to tfjs, and `doctor` says why). Sessions are built here with
 * constant weights (initializers, which onnxruntime pre-packs), a bounded intra-op thread count and
 * spinning off, so several workers can share the cores without burning them while idle.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { AutopruneError, ErrorCodes } from '../core/errors.js';

export type OrtModule = typeof Ort;
export type OrtSession = Ort.InferenceSession;

let loaded: Promise<OrtModule | null> | undefined;
let failure: string | null = null;

/** onnxruntime-node, or null when it is not installed or its native library does not load. */
export function loadOnnxRuntime(): Promise<OrtModule | null> {
  loaded ??= (async () => {
    try {
      const specifier: string = 'onnxruntime-node';
      const mod = (await import(specifier)) as OrtModule & { default?: OrtModule };
      return (mod.InferenceSession ? mod : mod.default) ?? null;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      failure =
        code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND'
          ? 'onnxruntime-node is not installed'
          : `onnxruntime-node failed to load: ${(e as Error).message.split('\n')[0]}`;
      return null;
    }
  })();
  return loaded;
}

export async function requireOnnxRuntime(): Promise<OrtModule> {
  const ort = await loadOnnxRuntime();
  if (!ort)
    throw new AutopruneError(
      ErrorCodes.BACKEND_UNAVAILABLE,
      `Engine \`onnxruntime\` is unavailable (${failure}); install it with \`ONNXRUNTIME_NODE_INSTALL=skip npm install onnxruntime-node\` or use --engine tfjs`,
    );
  return ort;
}

/**
 * The CUDA execution provider is usable when its library sits beside the CPU binary: onnxruntime-node's
 * install script puts it there on a Linux x64 machine unless told to skip (this project's set-up skips it).
 */
function cudaInstalled(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const pkg = dirname(require.resolve('onnxruntime-node/package.json'));
    return existsSync(join(pkg, 'bin', 'napi-v6', `${process.platform}`, `${process.arch}`, 'libonnxruntime_providers_cuda.so'));
  } catch {
    return false;
  }
}

export interface OnnxRuntimeInfo {
  readonly available: boolean;
  readonly version: string | null;
  /** Execution providers the proxy would use, best first. */
  readonly providers: readonly string[];
  /** Why it is unavailable, when it is. */
  readonly reason: string | null;
}

export async function describeOnnxRuntime(): Promise<OnnxRuntimeInfo> {
  const ort = await loadOnnxRuntime();
  if (!ort) return { available: false, version: null, providers: [], reason: failure };
  return { available: true, version: ort.env.versions?.node ?? ort.env.versions?.common ?? null, providers: executionProviders(), reason: null };
}

export function executionProviders(): string[] {
  return cudaInstalled() ? ['cuda', 'cpu'] : ['cpu'];
}

/**
 * The channel block of onnxruntime's NCHWc convolutions on this CPU (MLAS: 16 floats with
 * AVX-512F, 8 with AVX2), read from /proc/cpuinfo; 1 (no padding) when it cannot tell or when the
 * proxy would run on CUDA. See model/onnx-pad.ts.
 */
export function nchwcBlock(cpuinfo: () => string = () => readFileSync('/proc/cpuinfo', 'utf8')): number {
  if (executionProviders()[0] !== 'cpu') return 1;
  try {
    const flags = new Set(/^flags\s*:(.*)$/m.exec(cpuinfo())?.[1].trim().split(/\s+/) ?? []);
    return flags.has('avx512f') ? 16 : flags.has('avx2') ? 8 : 1;
  } catch {
    return 1;
  }
}

let liveSessions = 0;
/** Sessions created and not yet released (a tested invariant: flat over many evaluations). */
export function openSessionCount(): number {
  return liveSessions;
}

export interface SessionOptions {
  /** Intra-op threads (workers × threads should not exceed the cores). Default: every core. */
  readonly threads?: number;
}

export async function createSession(model: Uint8Array, o: SessionOptions = {}): Promise<OrtSession> {
  const ort = await requireOnnxRuntime();
  const session = await ort.InferenceSession.create(model, {
    executionProviders: executionProviders(),
    graphOptimizationLevel: 'all',
    intraOpNumThreads: Math.max(1, o.threads ?? availableParallelism()),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    // Without onnxruntime's arena, tensors come from malloc (memory patterns still plan them). Measured
    // here: process RSS flat over 300 calibration sessions (the arena: +30 to +100 MiB of churn) and
    // calibration runs 10-25% faster per image; evaluation the same.
    enableCpuMemArena: false,
    logSeverityLevel: 3,
    // Idle intra-op threads sleep instead of spinning (onnxruntime's session config keys).
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  });
  liveSessions++;
  return session;
}

export async function releaseSession(s: OrtSession): Promise<void> {
  await s.release();
  liveSessions--;
}

/** Runs `fn` with a session that is released afterwards, whatever happens. */
export async function withSession<T>(model: Uint8Array, o: SessionOptions, fn: (s: OrtSession, ort: OrtModule) => Promise<T>): Promise<T> {
  const ort = await requireOnnxRuntime();
  const s = await createSession(model, o);
  try {
    return await fn(s, ort);
  } finally {
    await releaseSession(s);
  }
}
