/**
 * One root error class with stable codes (STYLE.md principle 9). Messages quote the bad value and
 * say what was expected; the CLI prints `message` on one line and exits non-zero.
 */
export const ErrorCodes = {
  CONFIG_INVALID: 'CONFIG_INVALID',
  CONFIG_NOT_FOUND: 'CONFIG_NOT_FOUND',
  DATASET_MISSING: 'DATASET_MISSING',
  DATASET_INVALID: 'DATASET_INVALID',
  MODEL_NOT_FOUND: 'MODEL_NOT_FOUND',
  MODEL_UNSUPPORTED_LAYER: 'MODEL_UNSUPPORTED_LAYER',
  MODEL_UNSUPPORTED_TOPOLOGY: 'MODEL_UNSUPPORTED_TOPOLOGY',
  CANDIDATE_INVALID: 'CANDIDATE_INVALID',
  BACKEND_UNAVAILABLE: 'BACKEND_UNAVAILABLE',
  STORE_ERROR: 'STORE_ERROR',
  STUDY_NOT_FOUND: 'STUDY_NOT_FOUND',
  TRIAL_NOT_FOUND: 'TRIAL_NOT_FOUND',
  TRIAL_IMMUTABLE: 'TRIAL_IMMUTABLE',
  INVALID_ARGUMENT: 'INVALID_ARGUMENT',
  /** A worker's or driver's lease expired or was taken over: its late write is refused (fencing). */
  LEASE_LOST: 'LEASE_LOST',
  /** Another live driver holds the study. */
  STUDY_BUSY: 'STUDY_BUSY',
  /** This host's base model or dataset is not the one a study was created with (hashes differ). */
  INPUTS_MISMATCH: 'INPUTS_MISMATCH',
  /** The failure policy stopped a study (its trials keep failing). */
  TRIALS_FAILING: 'TRIALS_FAILING',
} as const;
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/**
 * The CLI's exit code for an error code: 2 = the config or the command line, 3 = the input data
 * (missing, unreadable, corrupt or not what the model takes), 1 = anything else. 130 = interrupted
 * is set by the commands themselves.
 */
export function exitCodeOf(code: ErrorCode): 1 | 2 | 3 {
  if (code === ErrorCodes.CONFIG_INVALID || code === ErrorCodes.CONFIG_NOT_FOUND || code === ErrorCodes.INVALID_ARGUMENT) return 2;
  if (code === ErrorCodes.DATASET_MISSING || code === ErrorCodes.DATASET_INVALID) return 3;
  return 1;
}

export class AutopruneError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'AutopruneError';
    this.code = code;
  }
}

/** Quote a user value for an error message: strings in backticks, the rest as JSON. */
export function quote(value: unknown): string {
  if (typeof value === 'string') return `\`${value}\``;
  try {
    const s = JSON.stringify(value);
    return s === undefined ? String(value) : s;
  } catch {
    return String(value);
  }
}

export function isAutopruneError(e: unknown): e is AutopruneError {
  return e instanceof AutopruneError;
}
