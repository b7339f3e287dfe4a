/**
 * A private network namespace (`unshare -rn`, loopback up) for commands that
 * must use fixed ports as documented (3000, 4222, ...) without touching the
 * machine's: commands run in it with `nsenter`. Linux only; `available`
 * says whether this machine allows it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';

export const netnsAvailable =
  process.platform === 'linux' && spawnSync('unshare', ['-rn', 'sh', '-c', 'ip link set lo up'], { stdio: 'ignore' }).status === 0;

export interface NetNs {
  /** `nsenter` arguments that run a command inside: `[...ns.enter, 'sh', '-c', cmd]` with `spawn('nsenter', ...)`. */
  enter: string[];
  close(): void;
}

export async function startNetNs(): Promise<NetNs> {
  const holder: ChildProcess = spawn('unshare', ['-rn', '--fork', 'sh', '-c', 'ip link set lo up && echo $$ && exec sleep 3600'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = await new Promise<string>((res, rej) => {
    holder.stdout!.once('data', (d: Buffer) => res(d.toString().trim()));
    holder.once('exit', (code) => rej(new Error(`unshare exited ${code}`)));
  });
  return {
    enter: ['-t', pid, '-U', '-n', '--preserve-credentials'],
    close: () => { try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ } holder.kill('SIGKILL'); },
  };
}
