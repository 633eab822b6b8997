export {
  BACKENDS,
  CONTROLLER_NAMES,
  DATASETS,
  IMPORTANCE_CRITERIA,
  OPTIMIZERS,
  PROXY_ENGINES,
  TRAIN_ENGINES,
  WORKER_MODES,
  ZOO_MODELS,
  configSchema,
  engineStages,
  type EngineStages,
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
