/**
 * One root error class with stable codes. Messages quote the bad value and say what was expected;
 * the CLI prints `message` on one line and exits with the code's class (exitCodeOf, docs/exit-codes.md).
 */
export const ErrorCodes = {
  CONFIG_INVALID: 'CONFIG_INVALID',
  CONFIG_NOT_FOUND: 'CONFIG_NOT_FOUND',
  DATASET_MISSING: 'DATASET_MISSING',
  DATASET_INVALID: 'DATASET_INVALID',
  MODEL_NOT_FOUND: 'MODEL_NOT_FOUND',
  /** A model file that cannot be what it claims (weight bytes that disagree with its manifest). */
  MODEL_INVALID: 'MODEL_INVALID',
  MODEL_UNSUPPORTED_LAYER: 'MODEL_UNSUPPORTED_LAYER',
  MODEL_UNSUPPORTED_TOPOLOGY: 'MODEL_UNSUPPORTED_TOPOLOGY',
  CANDIDATE_INVALID: 'CANDIDATE_INVALID',
  BACKEND_UNAVAILABLE: 'BACKEND_UNAVAILABLE',
  /** A location this host cannot write (a read-only or special file system such as /proc). */
  LOCATION_UNWRITABLE: 'LOCATION_UNWRITABLE',
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
 * Process exit codes by what went wrong, so scripts can tell a typo from bad data from a missing
 * engine (docs/exit-codes.md is the table): 2 usage or config, 3 the input data or model, 4 the
 * environment, 5 the store or a study in it, 1 a run that failed (trials keep failing, a lost
 * lease). 70 (EX_SOFTWARE) is an error the code did not anticipate; 130 an interrupt.
 */
export const ExitCodes = { RUN_FAILED: 1, USAGE: 2, INPUT: 3, ENVIRONMENT: 4, STORE: 5, INTERNAL: 70, INTERRUPTED: 130 } as const;

const EXIT_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  CONFIG_INVALID: ExitCodes.USAGE,
  CONFIG_NOT_FOUND: ExitCodes.USAGE,
  INVALID_ARGUMENT: ExitCodes.USAGE,
  CANDIDATE_INVALID: ExitCodes.USAGE,
  DATASET_MISSING: ExitCodes.INPUT,
  DATASET_INVALID: ExitCodes.INPUT,
  MODEL_NOT_FOUND: ExitCodes.INPUT,
  MODEL_INVALID: ExitCodes.INPUT,
  MODEL_UNSUPPORTED_LAYER: ExitCodes.INPUT,
  MODEL_UNSUPPORTED_TOPOLOGY: ExitCodes.INPUT,
  INPUTS_MISMATCH: ExitCodes.INPUT,
  BACKEND_UNAVAILABLE: ExitCodes.ENVIRONMENT,
  LOCATION_UNWRITABLE: ExitCodes.ENVIRONMENT,
  STORE_ERROR: ExitCodes.STORE,
  STUDY_NOT_FOUND: ExitCodes.STORE,
  TRIAL_NOT_FOUND: ExitCodes.STORE,
  STUDY_BUSY: ExitCodes.STORE,
  TRIAL_IMMUTABLE: ExitCodes.RUN_FAILED,
  LEASE_LOST: ExitCodes.RUN_FAILED,
  TRIALS_FAILING: ExitCodes.RUN_FAILED,
};

export function exitCodeOf(code: ErrorCode): number {
  return EXIT_BY_CODE[code] ?? ExitCodes.RUN_FAILED;
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
