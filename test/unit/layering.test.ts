/** The pure layer stands alone: nothing in machines/ reaches up into src/ (or any I/O module). */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const importsOf = (file: string) => [...readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)[^'"]*from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]);

describe('layering', () => {
  const files = readdirSync(join(root, 'machines')).filter((f) => f.endsWith('.ts')).map((f) => join(root, 'machines', f));

  it('finds the machine modules', () => {
    expect(files.length).toBeGreaterThan(5);
  });

  it('machines/ imports only xstate, zod and its own modules', () => {
    const offending = files.flatMap((f) => importsOf(f).filter((spec) => !spec.startsWith('./') && spec !== 'xstate' && spec !== 'zod').map((spec) => `${f}: ${spec}`));
    expect(offending).toEqual([]);
  });

  it('src/ names its files in camelCase', () => {
    const walk = (dir: string): string[] => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [e.name]));
    expect(walk(join(root, 'src')).filter((name) => /^[A-Z]/.test(name))).toEqual([]);
  });
});
