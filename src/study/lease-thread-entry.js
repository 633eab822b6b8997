// Lease-thread bootstrap: loader hooks registered in the main thread do not reach threads, so the
// thread registers tsx itself before loading the TypeScript entry (as evaluators/worker-entry.js).
import { register } from 'tsx/esm/api';

register();
await import('./lease-thread.ts');
