export { deadlineFromUntil, parseDuration, tryParseClock, tryParseDuration } from './duration.js';
export {
  canonicalJson,
  configHash,
  describeIssues,
  type LoadedConfig,
  loadConfig,
  type ResolveOptions,
  resolveConfig,
} from './load.js';
export {
  BACKENDS,
  CONTROLLER_NAMES,
  type ControllerSpec,
  configSchema,
  DATASETS,
  type DeepReadonly,
  type EngineStages,
  engineStages,
  IMPORTANCE_CRITERIA,
  OPTIMIZERS,
  type ParsedConfig,
  PROXY_ENGINES,
  type ResolvedConfig,
  TRAIN_ENGINES,
  type UserConfig,
  WORKER_MODES,
  ZOO_MODELS,
} from './schema.js';
