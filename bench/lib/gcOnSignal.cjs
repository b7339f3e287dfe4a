// Preloaded into a worker child process by the bench (node --expose-gc --require): SIGUSR2 runs a
// full garbage collection, so the bench reads the memory the process retains, not its garbage.
process.on('SIGUSR2', () => globalThis.gc?.());
