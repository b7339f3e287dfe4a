/**
 * Where the commands write, and how an interrupt reaches them. Output into a
 * closed pipe (`| head -1`) is dropped quietly; the command still finishes
 * its work. SIGINT exits 130, SIGTERM 143 (set by connect.ts, which owns the
 * NATS connection a command unwinds).
 */
let stdoutClosed = false;
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
  stdoutClosed = true;
});
process.stderr.on('error', () => undefined); // nowhere left to report it

export const out = (s: string): void => { if (!stdoutClosed) process.stdout.write(s + '\n'); };
export const err = (s: string): void => { process.stderr.write(s + '\n'); };

export const interrupt: {
  /** Set by SIGINT (130) or SIGTERM (143): the code the command exits with. */
  code?: number;
  /** What an interrupt stops first: the engine, when the command hosts an execution. */
  onInterrupt?: () => Promise<void>;
} = {};
