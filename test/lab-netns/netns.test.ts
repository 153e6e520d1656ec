import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { execa } from 'execa';
import {
  createTestNetwork,
  execInNamespace,
  killTree,
  listOurNamespaces,
  spawnInNamespace,
  type TestNetwork,
} from '../../lab/netns.ts';

async function links(ns: string): Promise<string[]> {
  const { stdout } = await execInNamespace(ns, 'ip', ['-o', 'link', 'show']);
  return stdout.split('\n').map((l) => l.split(': ')[1]?.split('@')[0] ?? '');
}

describe('network namespace fixtures', () => {
  const networks: TestNetwork[] = [];
  after(async () => {
    for (const n of networks) await n.destroy();
  });

  test('creates a controller namespace with a bridge, hosts linked to it, and no default route anywhere', async () => {
    const net = await createTestNetwork({ subnet: '10.91.0.0/24' });
    networks.push(net);
    assert.match(net.controllerNs, /^pxf-[0-9a-f]{6}-ctl$/);
    assert.equal(net.controllerAddress, '10.91.0.1');
    assert.ok(net.bridge.name.length <= 15, net.bridge.name);
    const a = await net.addHost({ mac: '52:54:00:aa:00:01', name: 'a' });
    const b = await net.addHost({ mac: '52:54:00:AA:00:02', name: 'b' });
    assert.equal(b.mac, '52:54:00:aa:00:02');
    const other = await net.addBridge({ address: '10.92.0.1', prefixLength: 24 });
    const c = await net.addHost({ mac: '52:54:00:aa:00:03', name: 'c', bridge: other.name });
    assert.deepEqual(
      (await listOurNamespaces()).filter((n) => n.includes(net.id)).sort(),
      net.namespaces().sort(),
    );

    // MAC, loopback up, bridge addresses
    const link = await net.exec(a.ns, 'ip', ['-o', 'link', 'show', 'eth0']);
    assert.match(link.stdout, /link\/ether 52:54:00:aa:00:01/);
    assert.match((await net.exec(a.ns, 'ip', ['-o', 'link', 'show', 'lo'])).stdout, /UP/);
    const addrs = (await net.exec(net.controllerNs, 'ip', ['-o', 'addr', 'show', net.bridge.name])).stdout;
    assert.match(addrs, /inet 10\.91\.0\.1\/24/);
    assert.match(addrs, new RegExp(`inet6 ${net.bridge.ipv6Address.replace(/:/g, ':')}/64`));
    for (const n of net.namespaces()) {
      for (const family of ['-4', '-6']) {
        const { stdout } = await execInNamespace(n, 'ip', [family, 'route', 'show', 'default']);
        assert.equal(stdout.trim(), '', `${n} has a default route (${family}): ${stdout}`);
      }
    }

    // L2 works on the same bridge and not across bridges
    await net.exec(a.ns, 'ip', ['addr', 'add', '10.91.0.10/24', 'dev', 'eth0']);
    await net.exec(b.ns, 'ip', ['addr', 'add', '10.91.0.11/24', 'dev', 'eth0']);
    await net.exec(c.ns, 'ip', ['addr', 'add', '10.91.0.12/24', 'dev', 'eth0']);
    await net.exec(a.ns, 'ping', ['-c', '1', '-W', '2', '10.91.0.11']);
    await net.exec(a.ns, 'ping', ['-c', '1', '-W', '2', '10.91.0.1']);
    const cross = await net.exec(a.ns, 'ping', ['-c', '1', '-W', '1', '10.91.0.12'], { reject: false });
    assert.notEqual(cross.exitCode, 0, 'a host on another bridge answered');
    // nothing outside the machine is reachable: no route
    const out = await net.exec(a.ns, 'ping', ['-c', '1', '-W', '1', '192.0.2.1'], { reject: false });
    assert.notEqual(out.exitCode, 0);
    assert.match(out.stderr + out.stdout, /unreachable/i);
    assert.ok((await links(net.controllerNs)).includes(net.bridge.name));
  });

  test('spawnInNamespace runs a process in the namespace; killTree stops it and its children by PID', async () => {
    const net = await createTestNetwork({ subnet: '10.93.0.0/24' });
    networks.push(net);
    const child = spawnInNamespace(net.controllerNs, 'sh', [
      '-c',
      'sleep 300 & sleep 300 & ip -o addr show; wait',
    ]);
    await new Promise((r) => setTimeout(r, 300));
    const pids = (await execa('ip', ['netns', 'pids', net.controllerNs])).stdout.split('\n').filter(Boolean);
    assert.ok(pids.length >= 3, `expected sh + 2 sleeps in the namespace, got ${pids}`);
    await killTree(child.pid);
    await child;
    const after = (await execa('ip', ['netns', 'pids', net.controllerNs])).stdout.trim();
    assert.equal(after, '', 'processes left in the namespace');
    assert.match(String((await child).stdout), /10\.93\.0\.1/);
  });

  test('destroy removes every namespace and interface it created, is idempotent, and works mid-setup', async () => {
    const net = await createTestNetwork({ subnet: '10.94.0.0/24' });
    await net.addHost({ mac: '52:54:00:bb:00:01', name: 'x' });
    // a leftover process does not keep the namespace alive
    const sleeper = spawnInNamespace(net.namespaces()[1], 'sleep', ['300']);
    await net.destroy();
    await sleeper.catch(() => {});
    await net.destroy();
    assert.deepEqual(
      (await listOurNamespaces()).filter((n) => n.includes(net.id)),
      [],
    );
    const rootLinks = (await execa('ip', ['-o', 'link', 'show'])).stdout;
    assert.ok(!rootLinks.includes(net.id), `an interface of ${net.id} is left in the root namespace`);
    await assert.rejects(net.addHost({ mac: '52:54:00:bb:00:02', name: 'y' }), /destroyed/);
  });

  test('bad input is refused with the field named', async () => {
    await assert.rejects(createTestNetwork({ subnet: '10.95.0.0' }), /subnet/);
    const net = await createTestNetwork({ subnet: '10.95.0.0/24' });
    networks.push(net);
    await assert.rejects(net.addHost({ mac: 'zz', name: 'a' }), /mac/);
    await assert.rejects(net.addHost({ mac: '52:54:00:00:00:01', name: 'Bad Name' }), /name/);
    await assert.rejects(
      net.addHost({ mac: '52:54:00:00:00:01', name: 'a', bridge: 'nope' }),
      /unknown bridge/,
    );
  });
});
