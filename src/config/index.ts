export {
  BACKENDS,
  CONTROLLER_NAMES,
  DATASETS,
  IMPORTANCE_CRITERIA,
  OPTIMIZERS,
  WORKER_MODES,
  ZOO_MODELS,
  configSchema,
  type ControllerSpec,
  type DeepReadonly,
  type ParsedConfig,
  type ResolvedConfig,
  type UserConfig,
} from './schema.js';
export {
  canonicalJson,
  configHash,
  describeIssues,
  loadConfig,
  resolveConfig,
  type LoadedConfig,
  type ResolveOptions,
} from './load.js';
export { deadlineFromUntil, parseDuration, tryParseClock, tryParseDuration } from './duration.js';
