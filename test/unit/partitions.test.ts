/** The partition function and the names it gives (docs/nats.md): other systems compute them too. */
import { describe, expect, it } from 'vitest';
import { fnv1a32, Partitions } from '../../src/nats/partitions.js';

describe('partitions', () => {
  it('hash is FNV-1a 32 over the UTF-8 bytes (published test vectors)', () => {
    expect(fnv1a32('')).toBe(0x811c9dc5);
    expect(fnv1a32('a')).toBe(0xe40c292c);
    expect(fnv1a32('foobar')).toBe(0xbf9cf968);
    expect(fnv1a32('é')).toBe(fnv1a32('\u00e9')); // bytes c3 a9, not the code unit
  });

  it('one partition: the names of old, unchanged', () => {
    const p = new Partitions(1);
    expect(p.of('order-42')).toBe(0);
    expect(p.executionStream(0)).toBe('SMARTSPEC_EXECUTIONS');
    expect(p.executionSubject('order-42')).toBe('smartspec.exec.order-42');
    expect(p.executionSubjects(0)).toEqual(['smartspec.exec.*']);
    expect(p.commandStream(0)).toBe('SMARTSPEC_COMMANDS');
    expect(p.commandSubjects(0)).toEqual(['smartspec.cmd.*']);
    expect(p.commandSubject('start', 'order-42')).toBe('smartspec.cmd.start');
    expect(p.describe('event log', 0)).toBeUndefined();
    expect(p.streams()).toEqual(['SMARTSPEC_EXECUTIONS', 'SMARTSPEC_COMMANDS']);
  });

  it('N partitions: k = fnv1a32(id) mod N names the streams and subjects', () => {
    const p = new Partitions(3);
    const k = fnv1a32('order-42') % 3;
    expect(p.of('order-42')).toBe(k);
    expect(p.executionStreamOf('order-42')).toBe(`SMARTSPEC_EXECUTIONS_P${k}`);
    expect(p.executionSubject('order-42')).toBe(`smartspec.exec.p${k}.order-42`);
    expect(p.executionIdOf(p.executionSubject('order-42'))).toBe('order-42');
    expect(p.commandSubject('signal', 'order-42')).toBe(`smartspec.cmd.p${k}.signal`);
    expect(p.commandSubjects(0)).toEqual(['smartspec.cmd.p0.*', 'smartspec.cmd.*']); // other systems' unpartitioned commands land in P0
    expect(p.commandSubjects(2)).toEqual(['smartspec.cmd.p2.*']);
    expect(p.describe('commands', 1)).toBe('SmartSpec commands, partition 1 of 3 (NATS_PARTITIONS=3)');
    // Spread: 300 ids land in every partition.
    const counts = [0, 0, 0];
    for (let i = 0; i < 300; i++) counts[p.of(`exec-${i}`)]++;
    expect(Math.min(...counts)).toBeGreaterThan(50);
  });

  it('NATS_PARTITIONS: unset is 1; a bad value names the variable', () => {
    expect(Partitions.fromEnv({}).count).toBe(1);
    expect(Partitions.fromEnv({ NATS_PARTITIONS: ' 3 ' }).count).toBe(3);
    expect(() => Partitions.fromEnv({ NATS_PARTITIONS: '0' })).toThrow(/NATS_PARTITIONS.*from 1 to 64, got '0'/);
    expect(() => Partitions.fromEnv({ NATS_PARTITIONS: 'three' })).toThrow(/NATS_PARTITIONS/);
  });
});
