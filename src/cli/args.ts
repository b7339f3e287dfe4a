/** Reading a command's arguments: files, JSON, numbers, each refused with a message that names it. */
import { readFile } from 'node:fs/promises';
import { InvalidInputError } from '../errors.js';

export function need(args: string[], n: number, command: string, usage: string): void {
  if (args.length < n) throw new InvalidInputError(`usage: smartspec ${command} ${usage} (smartspec ${command} --help)`);
}

export async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new InvalidInputError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

export function parseJsonArg(text: string, flag: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new InvalidInputError(`${flag} is not valid JSON: ${(err as Error).message}`);
  }
}

export function positiveInt(text: string, flag: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new InvalidInputError(`${flag} must be a whole number, got '${text}'`);
  return n;
}
