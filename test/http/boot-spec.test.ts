// The boot decision and its two renderers, plus tokens and the machine registry they depend on.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type BootContext,
  bootSpec,
  nodeUrls,
  renderIpxeScript,
  renderPxelinuxConfig,
} from '../../netboot/boot-spec.ts';
import { MachineRegistry } from '../../netboot/machines.ts';
import { newToken, tokenMatches } from '../../netboot/tokens.ts';
import type { NetbootMachine } from '../../netboot/types.ts';

const ctx: BootContext = {
  baseUrl: 'http://10.0.0.1:8080/',
  image: {
    version: 'rhel-9.4',
    kernel: 'images/pxeboot/vmlinuz',
    initrd: 'images/pxeboot/initrd.img',
    repoRoot: '',
  },
};
const machine: NetbootMachine = {
  name: 'n1',
  hostname: 'n1.lab',
  mac: '52:54:00:00:00:01',
  ip: '10.0.0.11',
  token: 'ab'.repeat(32),
  bootMode: 'uefi',
  target: 'install',
};

describe('bootSpec and renderers', () => {
  it('decides install with HTTP kernel/initrd and the kickstart URL carrying the token', () => {
    const spec = bootSpec(machine, ctx);
    assert.equal(spec.kind, 'install');
    if (spec.kind !== 'install') return;
    assert.equal(spec.kernelUrl, 'http://10.0.0.1:8080/image/rhel-9.4/images/pxeboot/vmlinuz');
    assert.equal(spec.initrdUrl, 'http://10.0.0.1:8080/image/rhel-9.4/images/pxeboot/initrd.img');
    assert.equal(
      spec.cmdline,
      `inst.ks=http://10.0.0.1:8080/ks/n1/${machine.token} inst.repo=http://10.0.0.1:8080/image/rhel-9.4 ip=dhcp console=tty0 console=ttyS0,115200n8`,
    );
    assert.equal(spec.kernelTftpPath, 'image/rhel-9.4/images/pxeboot/vmlinuz');
  });

  it('renders an iPXE script with initrd=<name> on the kernel line (UEFI)', () => {
    const script = renderIpxeScript(bootSpec(machine, ctx));
    const lines = script.split('\n');
    assert.equal(lines[0], '#!ipxe');
    assert.match(
      lines[1],
      /^kernel http:\/\/10\.0\.0\.1:8080\/image\/rhel-9\.4\/images\/pxeboot\/vmlinuz initrd=initrd\.img inst\.ks=/,
    );
    assert.equal(lines[2], 'initrd http://10.0.0.1:8080/image/rhel-9.4/images/pxeboot/initrd.img');
    assert.equal(lines[3], 'boot');
  });

  it('renders a pxelinux config with TFTP paths', () => {
    const cfg = renderPxelinuxConfig(bootSpec(machine, { ...ctx, tftpImagePrefix: 'images/9.4/' }));
    assert.match(cfg, /^DEFAULT install$/m);
    assert.match(cfg, /^LABEL install$/m);
    assert.match(cfg, /^ {2}KERNEL images\/9\.4\/images\/pxeboot\/vmlinuz$/m);
    assert.match(
      cfg,
      /^ {2}APPEND initrd=images\/9\.4\/images\/pxeboot\/initrd\.img inst\.ks=http:\/\/10\.0\.0\.1:8080\/ks\/n1\/(ab){32} /m,
    );
  });

  it('local boot after success: iPXE exit, pxelinux LOCALBOOT 0, no kernel, no token', () => {
    const registry = new MachineRegistry();
    registry.upsert({ ...machine, token: undefined });
    registry.setTarget('n1', 'localboot');
    const spec = bootSpec(registry.get('n1')!, ctx);
    assert.deepEqual(spec, { kind: 'localboot' });
    const script = renderIpxeScript(spec);
    assert.match(script, /^#!ipxe\n/);
    assert.match(script, /^exit$/m);
    assert.doesNotMatch(script, /kernel|sanboot/);
    assert.match(renderPxelinuxConfig(spec), /^DEFAULT local\n(.*\n)*LABEL local\n {2}LOCALBOOT 0\n$/);
    // a revoked token means local boot too: nothing left to install with
    registry.setTarget('n1', 'install');
    registry.revokeToken('n1');
    assert.deepEqual(bootSpec(registry.get('n1')!, ctx), { kind: 'localboot' });
  });

  it('refuses image paths and kernel arguments that would break the script', () => {
    assert.throws(
      () => bootSpec(machine, { ...ctx, image: { ...ctx.image, kernel: 'a b' } }),
      /image\.kernel/,
    );
    assert.throws(
      () => bootSpec(machine, { ...ctx, image: { ...ctx.image, initrd: '../x' } }),
      /image\.initrd/,
    );
    assert.throws(() => bootSpec(machine, { ...ctx, extraArgs: ['a b'] }), /kernel argument/);
    assert.throws(() => bootSpec(machine, { ...ctx, consoleArgs: ['x\nshell'] }), /kernel argument/);
  });

  it('builds the per-node URLs', () => {
    assert.deepEqual(nodeUrls('http://h:1/', { name: 'n1', token: 't' }), {
      ipxeScript: 'http://h:1/ipxe/n1/t',
      kickstart: 'http://h:1/ks/n1/t',
      status: 'http://h:1/status/n1/t',
    });
  });
});

describe('tokens', () => {
  it('are 256 random bits as hex, unique', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const t = newToken();
      assert.match(t, /^[0-9a-f]{64}$/);
      seen.add(t);
    }
    assert.equal(seen.size, 1000);
  });

  it('match only exactly, never when empty', () => {
    const t = newToken();
    assert.equal(tokenMatches(t, t), true);
    const flipped = t.slice(0, 63) + (t.endsWith('0') ? '1' : '0');
    assert.equal(tokenMatches(t, flipped), false);
    assert.equal(tokenMatches(t, t.slice(0, 32)), false);
    assert.equal(tokenMatches(t, `${t}00`), false);
    assert.equal(tokenMatches(t, ''), false);
    assert.equal(tokenMatches('', ''), false, 'a revoked token matches nothing');
  });
});

describe('MachineRegistry', () => {
  it('upserts, looks up by name/MAC/IP and keeps token and target across upserts', () => {
    const r = new MachineRegistry();
    const a = r.upsert({
      name: 'a',
      hostname: 'a',
      mac: '52:54:00:00:00:0A',
      ip: '10.0.0.10',
      bootMode: 'bios',
    });
    assert.match(a.token, /^[0-9a-f]{64}$/);
    assert.equal(a.target, 'install');
    assert.equal(a.mac, '52:54:00:00:00:0a');
    assert.equal(r.byMac('52:54:00:00:00:0A')?.name, 'a');
    assert.equal(r.byIp('10.0.0.10')?.name, 'a');
    assert.equal(r.byIp('::ffff:10.0.0.10')?.name, 'a');
    r.setTarget('a', 'localboot');
    const again = r.upsert({
      name: 'a',
      hostname: 'a',
      mac: '52:54:00:00:00:0b',
      ip: '10.0.0.11',
      bootMode: 'bios',
    });
    assert.equal(again.token, a.token);
    assert.equal(again.target, 'localboot');
    assert.equal(r.byMac('52:54:00:00:00:0a'), undefined, 'old MAC unindexed');
    assert.equal(r.byIp('10.0.0.10'), undefined);
    assert.throws(
      () => r.upsert({ name: 'b', hostname: 'b', mac: '52:54:00:00:00:0b', bootMode: 'bios' }),
      /mac 52:54:00:00:00:0b already belongs to a/,
    );
    assert.throws(
      () => r.upsert({ name: 'b', hostname: 'b', ip: '10.0.0.11', bootMode: 'bios' }),
      /ip 10\.0\.0\.11 already belongs to a/,
    );
    assert.throws(() => r.upsert({ name: 'b', hostname: 'b', mac: 'zz', bootMode: 'bios' }), /mac "zz"/);
    assert.throws(() => r.upsert({ name: 'b/../c', hostname: 'b', bootMode: 'bios' }), /machine\.name/);
    assert.equal(r.remove('a'), true);
    assert.equal(r.get('a'), undefined);
    assert.equal(r.byMac('52:54:00:00:00:0b'), undefined);
  });

  it('returns frozen snapshots: callers cannot change the registry behind its back', () => {
    const r = new MachineRegistry();
    const a = r.upsert({ name: 'a', hostname: 'a', bootMode: 'auto' });
    assert.throws(() => {
      (a as NetbootMachine).target = 'localboot';
    }, TypeError);
    assert.equal(r.get('a')!.target, 'install');
  });

  it('rotates (new attempt) and revokes tokens; checkToken follows', () => {
    const r = new MachineRegistry();
    const changes: string[] = [];
    r.onChange((c) => changes.push(c.kind));
    const first = r.upsert({ name: 'a', hostname: 'a', bootMode: 'auto' }).token;
    assert.ok(r.checkToken('a', first, 'callback'));
    assert.equal(r.checkToken('b', first, 'callback'), undefined);
    const second = r.rotateToken('a');
    assert.equal(r.attempt('a'), 2);
    assert.equal(r.checkToken('a', first, 'callback'), undefined);
    assert.ok(r.checkToken('a', second, 'callback'));
    assert.equal(r.revokeToken('a', first), false, 'revoking a stale token does nothing');
    assert.equal(r.revokeToken('a', second), true);
    assert.equal(r.get('a')!.token, '');
    assert.equal(r.checkToken('a', second, 'callback'), undefined);
    assert.equal(r.checkToken('a', second, 'boot-script'), undefined, 'retired token: not while installing');
    r.setTarget('a', 'localboot');
    assert.ok(r.checkToken('a', second, 'boot-script'), 'retired token gets the local-boot script');
    assert.equal(r.checkToken('a', second, 'callback'), undefined);
    assert.equal(r.checkToken('a', '', 'boot-script'), undefined);
    assert.deepEqual(changes, ['upsert', 'token', 'token', 'target']);
  });
});
