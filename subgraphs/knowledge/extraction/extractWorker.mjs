// Worker-thread bootstrap (plain JavaScript, since a worker thread does not inherit the
// process's TypeScript loader): register tsx for this thread, then run the TypeScript entry.
import { register } from 'tsx/esm/api';

register();
await import('./extractWorker.ts');
