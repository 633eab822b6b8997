// Worker-thread bootstrap: loader hooks registered in the main thread do not reach workers, so
// each worker registers tsx itself before loading the TypeScript entry.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
