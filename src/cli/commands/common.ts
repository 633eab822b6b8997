import { BACKEND_NAMES, type BackendName } from '../../app/models.js';

export interface BackendArg {
  backend?: BackendName;
}

export const backendOption = ['backend', { choices: BACKEND_NAMES, describe: 'tfjs backend (default: run.backend of the config, else auto)' }] as const;
