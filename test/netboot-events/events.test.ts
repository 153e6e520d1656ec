// BootEventStream: phase-change dedup, first package per attempt, derived packages-done, bounded memory,
// listener isolation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BootEventStream, resetOnNewAttempt } from '../../netboot/events.ts';
import { MachineRegistry } from '../../netboot/machines.ts';
import type { BootEvent, BootPhase } from '../../netboot/types.ts';

const ev = (
  phase: BootPhase,
  node?: string,
  detail?: BootEvent['detail'],
  extra: Partial<BootEvent> = {},
): BootEvent => ({
  phase,
  node,
  at: 1,
  detail,
  ...extra,
});

describe('BootEventStream', () => {
  it('forwards phase changes only, the first package per attempt, and packages-done before status', () => {
    const s = new BootEventStream();
    const out: BootEvent[] = [];
    s.subscribe((e) => out.push(e));
    s.publish(ev('dhcp', 'n1'));
    s.publish(ev('dhcp', 'n1'));
    s.publish(ev('pxe-config', 'n1'));
    s.publish(ev('kernel', 'n1'));
    s.publish(ev('kernel', 'n1'));
    s.publish(ev('initrd', 'n1'));
    s.publish(ev('dhcp', 'n1')); // the installer's own DHCP: a change, forwarded
    s.publish(ev('kickstart', 'n1'));
    for (let i = 0; i < 50; i++) s.publish(ev('packages', 'n1', { file: `p${i}.rpm` }));
    s.publish(ev('kickstart', 'n1'));
    s.publish(ev('packages', 'n1', { file: 'late.rpm' }));
    s.publish(ev('status', 'n1', { outcome: 'success' }, { mac: 'aa:bb:cc:dd:ee:ff' }));
    s.publish(ev('status', 'n1', { outcome: 'success' }));
    assert.deepEqual(
      out.map((e) => e.phase),
      [
        'dhcp',
        'pxe-config',
        'kernel',
        'initrd',
        'dhcp',
        'kickstart',
        'packages',
        'kickstart',
        'packages-done',
        'status',
        'status',
      ],
    );
    const done = out.find((e) => e.phase === 'packages-done')!;
    assert.deepEqual(done.detail, { count: 51, file: 'late.rpm' });
    assert.equal(done.node, 'n1');
    assert.equal(done.mac, 'aa:bb:cc:dd:ee:ff');
    assert.equal(out.filter((e) => e.phase === 'packages-done').length, 1);
    assert.equal(s.lastPhase('n1'), 'status');
  });

  it('keeps nodes apart and starts over on resetNode (new attempt)', () => {
    const s = new BootEventStream();
    const out: string[] = [];
    s.subscribe((e) => out.push(`${e.node ?? e.mac ?? e.ip}:${e.phase}`));
    s.publish(ev('packages', 'a'));
    s.publish(ev('packages', 'b'));
    s.publish(ev('packages', 'a'));
    s.resetNode('a');
    s.publish(ev('packages', 'a'));
    s.publish(ev('packages', 'b'));
    s.publish({ phase: 'dhcp', mac: '52:54:00:00:00:01', at: 1 });
    s.publish({ phase: 'dhcp', mac: '52:54:00:00:00:01', at: 2 });
    s.publish({ phase: 'dhcp', ip: '10.0.0.9', at: 2 });
    s.publish({ phase: 'dhcp', at: 3 });
    s.publish({ phase: 'dhcp', at: 4 });
    assert.deepEqual(out, [
      'a:packages',
      'b:packages',
      'a:packages',
      '52:54:00:00:00:01:dhcp',
      '10.0.0.9:dhcp',
      'undefined:dhcp',
      'undefined:dhcp',
    ]);
  });

  it('isolates listener errors (sync and async) and supports unsubscribe', async () => {
    const errors: unknown[] = [];
    const s = new BootEventStream({ onListenerError: (err) => errors.push(err) });
    const good: BootPhase[] = [];
    s.subscribe(() => {
      throw new Error('boom');
    });
    s.subscribe(async () => {
      throw new Error('async boom');
    });
    const stop = s.subscribe((e) => good.push(e.phase));
    s.publish(ev('dhcp', 'n'));
    stop();
    s.publish(ev('kernel', 'n'));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(good, ['dhcp']);
    assert.equal(errors.length, 4, 'two failing listeners × two events');
    const quiet = new BootEventStream({
      onListenerError: () => {
        throw new Error('reporter fails too');
      },
    });
    quiet.subscribe(() => {
      throw new Error('x');
    });
    assert.doesNotThrow(() => quiet.publish(ev('dhcp', 'n')));
  });

  it('bounds its memory: the least recently seen node is forgotten first', () => {
    const s = new BootEventStream({ maxNodes: 3 });
    for (const n of ['a', 'b', 'c']) s.publish(ev('kernel', n));
    s.publish(ev('kernel', 'a')); // touch a: b is now the oldest
    s.publish(ev('kernel', 'd'));
    assert.equal(s.lastPhase('b'), undefined);
    assert.equal(s.lastPhase('a'), 'kernel');
    assert.equal(s.lastPhase('c'), 'kernel');
    assert.equal(s.lastPhase('d'), 'kernel');
    for (let i = 0; i < 10_000; i++) s.publish(ev('dhcp', `n${i}`));
    assert.equal(['a', 'c', 'd'].filter((n) => s.lastPhase(n)).length, 0);
    assert.equal(s.lastPhase('n9999'), 'dhcp');
    assert.equal(s.lastPhase('n9996'), undefined);
  });

  it('starts a node over when the registry rotates its token, not when it revokes it', () => {
    const machines = new MachineRegistry();
    machines.upsert({ name: 'n', hostname: 'n', bootMode: 'auto' });
    const s = new BootEventStream();
    const out: BootPhase[] = [];
    s.subscribe((e) => out.push(e.phase));
    const stop = resetOnNewAttempt(machines, s);
    s.publish(ev('packages', 'n'));
    machines.revokeToken('n');
    s.publish(ev('packages', 'n'));
    machines.rotateToken('n');
    s.publish(ev('packages', 'n'));
    stop();
    machines.rotateToken('n');
    s.publish(ev('packages', 'n'));
    assert.deepEqual(out, ['packages', 'packages']);
  });
});
