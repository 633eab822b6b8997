/**
 * The composition root: the one place where config, store, engines, evaluators and the study loop
 * are wired together. The CLI, the crash tortures, the benches and the tests call these functions;
 * nothing else builds a search (docs/architecture.md).
 */
export { loadSearchConfig, type SearchOverrides, withOverrides } from './config.js';
export { type Dashboard, type DashboardOptions, startDashboard } from './dashboard.js';
export { runSearch, type SearchOptions, type SearchOutcome, searchDeadline } from './driver.js';
export { cpuDevice, defaultDevice, hostEvaluator, studyEvaluator } from './evaluators.js';
export { EXPORT_FORMATS, type ExportFormat, type ExportOptions, type ExportOutcome, exportTrial, type ModelCard } from './export.js';
export { describeHost, type HostReport, type Inspection, type InspectOptions, inspectModel } from './models.js';
export * from './reports.js';
export * from './studies.js';
export { baseAccuracy, type HostInputs, loadHostInputs, openStudyStore, studyInputs } from './study.js';
export { checkSameBase, hostConfig, INPUTS_HINT, pickStudy, runWorkerHost, type ServeOptions, serveStudy, type WorkerHostOptions } from './worker.js';
