// `node --import ./test/support/traceImports.mjs ...`: writes the URL of every module the
// process loads, one a line, to the file named by TRACE_IMPORTS_FILE (for tests of what a
// command loads). Both hooks record: loaders registered later (tsx) may load a module
// without passing it on, but they resolve through the chain.
import { register } from 'node:module';

register(new URL('./traceImportsHooks.mjs', import.meta.url));
