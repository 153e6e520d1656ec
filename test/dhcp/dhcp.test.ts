// dnsmasq under the supervisor, inside a controller namespace, answering real clients (busybox udhcpc,
// ISC dhclient) in client namespaces.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { RemoteDhcp, type RemoteDhcpOptions } from '../../lab/net/dhcp-remote.ts';
import { createTestNetwork, type TestHost, type TestNetwork } from '../../lab/netns.ts';
import type { BootEvent } from '../../netboot/types.ts';
import { dhclient, udhcpc } from './clients.ts';

const IPXE_USER_CLASS = ['-x', '0x4d:69505845']; // option 77 = "iPXE"
const arch = (n: number) => [
  '-x',
  `0x5d:${n.toString(16).padStart(4, '0')}`,
  '-V',
  `PXEClient:Arch:${String(n).padStart(5, '0')}:UNDI:003016`,
];
/** PXE ROMs read the BOOTP file field (udhcpc: boot_file); iPXE's URL comes as option 67 (bootfile) */
const bootFile = (a: Record<string, string> | undefined) => a?.bootfile ?? a?.boot_file;
const TOKEN = 'a3f1c2d4e5f60718293a4b5c6d7e8f90';

describe('DHCP: dnsmasq supervised, real clients in namespaces', () => {
  let net: TestNetwork;
  let stateDir: string;
  let dhcp: RemoteDhcp;
  let options: RemoteDhcpOptions;
  let node1: TestHost;
  let stranger: TestHost;
  let elsewhere: TestHost;
  let late: TestHost;
  const url1 = () => `http://${net.controllerAddress}:8080/ipxe/node1/${TOKEN}`;

  before(async () => {
    net = await createTestNetwork({ subnet: '10.97.0.0/24' });
    stateDir = await mkdtemp(`${tmpdir()}/pxf-dhcp-`);
    node1 = await net.addHost({ mac: '52:54:00:10:00:01', name: 'node1' });
    stranger = await net.addHost({ mac: '52:54:00:10:00:02', name: 'stranger' });
    late = await net.addHost({ mac: '52:54:00:10:00:04', name: 'late' });
    const other = await net.addBridge({ address: '10.98.0.1', prefixLength: 24 });
    elsewhere = await net.addHost({ mac: '52:54:00:10:00:03', name: 'elsewhere', bridge: other.name });
    options = {
      stateDir,
      interface: net.bridge.name,
      controllerAddress: net.controllerAddress,
      subnet: '10.97.0.0/24',
      range: { start: '10.97.0.100', end: '10.97.0.150' },
      discoveryIpxeUrl: `http://${net.controllerAddress}:8080/ipxe/discover`,
    };
    dhcp = await RemoteDhcp.start(net.controllerNs, options);
    await dhcp.setReservation({
      name: 'node1',
      mac: node1.mac,
      ip: '10.97.0.11',
      hostname: 'node1',
      ipxeScriptUrl: url1(),
    });
    // reserved too, but it sits on another interface: it must still get nothing
    await dhcp.setReservation({
      name: 'elsewhere',
      mac: elsewhere.mac,
      ip: '10.97.0.13',
      hostname: 'elsewhere',
    });
  });

  after(async () => {
    await dhcp?.kill();
    await net?.destroy();
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  test('udhcpc gets the reserved IP, next-server = controller, the BIOS boot file, no router', async () => {
    const a = await udhcpc(node1.ns);
    assert.ok(a, 'no lease');
    assert.equal(a.ip, '10.97.0.11');
    assert.equal(a.siaddr, net.controllerAddress);
    assert.equal(a.bootfile ?? a.boot_file, 'undionly.kpxe');
    assert.equal(a.hostname, 'node1');
    assert.equal(a.router, undefined, 'a router was handed out on the isolated network');
  });

  test('ISC dhclient gets the reserved IP and the boot file', async () => {
    const a = await dhclient(node1.ns);
    assert.ok(a, 'no lease');
    assert.equal(a.ip, '10.97.0.11');
    assert.equal(a.server, net.controllerAddress);
    assert.equal(a.filename || a.bootfile, 'undionly.kpxe');
  });

  test('boot file by client: arch 0 → undionly.kpxe, arch 7/9 → ipxe.efi, iPXE → its HTTP script URL', async () => {
    assert.equal(bootFile(await udhcpc(node1.ns, arch(0))), 'undionly.kpxe');
    const efi = await udhcpc(node1.ns, arch(7));
    assert.equal(bootFile(efi), 'ipxe.efi');
    assert.equal(efi?.siaddr, net.controllerAddress);
    assert.equal(bootFile(await udhcpc(node1.ns, arch(9))), 'ipxe.efi');
    const ipxe = await udhcpc(node1.ns, [...IPXE_USER_CLASS, ...arch(0)]);
    assert.equal(ipxe?.bootfile, url1());
    assert.equal(ipxe?.opt175, 'b00101ff', 'option 175.176 (no-pxedhcp) = 1');
    assert.equal((await udhcpc(node1.ns, [...IPXE_USER_CLASS, ...arch(7)]))?.bootfile, url1());
    // dnsmasq logs the boot URL it sends; the supervisor's logs and events must not carry the token
    await dhcp.waitFor(
      () => dhcp.logs.find((l) => String(l.dnsmasq).includes('/ipxe/node1/')),
      5000,
      'URL log line',
    );
    assert.ok(!JSON.stringify(dhcp.logs).includes(TOKEN), 'token in the logs');
    assert.ok(!JSON.stringify(dhcp.events).includes(TOKEN), 'token in the events');
  });

  test('lease events arrive in order DISCOVER → OFFER → REQUEST → ACK with mac, ip and node', async () => {
    const from = dhcp.events.length;
    await udhcpc(node1.ns, arch(7));
    const ours = () => dhcp.events.slice(from).filter((e) => e.mac === node1.mac);
    const ack = await dhcp.waitFor(() => ours().find((e) => e.detail?.type === 'ACK'), 5000, 'ACK event');
    const types = ours().map((e) => e.detail?.type);
    const order = ['DISCOVER', 'OFFER', 'REQUEST', 'ACK'].map((t) => types.indexOf(t));
    assert.ok(
      order.every((i, k) => i >= 0 && (k === 0 || i > order[k - 1])),
      `events out of order: ${types}`,
    );
    assert.equal(ack.ip, '10.97.0.11');
    assert.equal(ack.node, 'node1');
    assert.equal(ack.phase, 'dhcp');
    assert.equal(ours().find((e) => e.detail?.type === 'DISCOVER')?.detail?.arch, 7);
  });

  test('an unknown MAC gets nothing outside a discovery window and a range address inside one', async () => {
    assert.equal(await udhcpc(stranger.ns, [], 2), undefined, 'unknown MAC was answered');
    await dhcp.waitFor(
      () => dhcp.events.find((e) => e.mac === stranger.mac && e.detail?.ignored === true),
      5000,
      'ignored DISCOVER event',
    );
    await dhcp.openDiscoveryWindow();
    const a = await udhcpc(stranger.ns, IPXE_USER_CLASS);
    assert.ok(a, 'no lease inside the discovery window');
    const last = Number(a.ip.split('.')[3]);
    assert.ok(a.ip.startsWith('10.97.0.') && last >= 100 && last <= 150, `not a range address: ${a.ip}`);
    assert.equal(a.bootfile, options.discoveryIpxeUrl);
    // reserved hosts keep their reservation while the window is open
    assert.equal((await udhcpc(node1.ns))?.ip, '10.97.0.11');
    await dhcp.closeDiscoveryWindow();
    assert.equal(await udhcpc(stranger.ns, [], 2), undefined, 'answered after the window closed');
  });

  test('a client on another interface gets nothing, even with a reserved MAC', async () => {
    assert.equal(await udhcpc(elsewhere.ns, [], 2), undefined);
    assert.ok(!dhcp.events.some((e) => e.mac === elsewhere.mac), 'dnsmasq even saw the other network');
  });

  test('reservations change while dnsmasq runs: live when dnsmasq can take it, else one restart', async () => {
    const pid = await dhcp.dnsmasqPid();
    assert.equal(await udhcpc(late.ns, [], 2), undefined);
    await dhcp.setReservation({ name: 'late', mac: late.mac, ip: '10.97.0.14', hostname: 'late' });
    assert.equal((await udhcpc(late.ns))?.ip, '10.97.0.14');
    // same reservation twice is a no-op
    await dhcp.setReservation({ name: 'late', mac: late.mac, ip: '10.97.0.14', hostname: 'late' });
    // a boot URL added later, then a new address: both live
    const url = `http://${net.controllerAddress}:8080/ipxe/late/${TOKEN}`;
    await dhcp.setReservation({
      name: 'late',
      mac: late.mac,
      ip: '10.97.0.14',
      hostname: 'late',
      ipxeScriptUrl: url,
    });
    assert.equal((await udhcpc(late.ns, IPXE_USER_CLASS))?.bootfile, url);
    await dhcp.setReservation({
      name: 'late',
      mac: late.mac,
      ip: '10.97.0.15',
      hostname: 'late',
      ipxeScriptUrl: url,
    });
    assert.equal((await udhcpc(late.ns))?.ip, '10.97.0.15');
    await dhcp.removeReservation(late.mac);
    assert.equal(await udhcpc(late.ns, [], 2), undefined, 'removed reservation still answered');
    assert.equal(await dhcp.dnsmasqPid(), pid, 'dnsmasq was restarted for a change it can take live');
    assert.equal((await dhcp.status()).reloads, 0);
    // an address dnsmasq has already seen cannot be re-used live: the supervisor restarts dnsmasq once
    await dhcp.setReservation({ name: 'late', mac: late.mac, ip: '10.97.0.14', hostname: 'late' });
    assert.equal((await udhcpc(late.ns))?.ip, '10.97.0.14');
    assert.equal((await dhcp.status()).reloads, 1);
    assert.notEqual(await dhcp.dnsmasqPid(), pid);
    assert.equal((await udhcpc(node1.ns))?.ip, '10.97.0.11', 'other reservations lost in the restart');
  });

  test('dnsmasq killed → restarted by the supervisor; leases and reservations survive', async () => {
    await dhcp.openDiscoveryWindow();
    const before = await udhcpc(stranger.ns);
    assert.ok(before);
    const pid = await dhcp.dnsmasqPid();
    assert.ok(pid);
    process.kill(pid, 'SIGKILL');
    await dhcp.waitFor(
      () => dhcp.states.find((s) => s.state === 'running' && s.restarts === 1),
      10_000,
      'restart',
    );
    const pid2 = await dhcp.dnsmasqPid();
    assert.ok(pid2 && pid2 !== pid);
    assert.equal(
      (await udhcpc(stranger.ns))?.ip,
      before.ip,
      'range address changed across a dnsmasq restart',
    );
    assert.equal((await udhcpc(node1.ns))?.ip, '10.97.0.11');
    const leases = await dhcp.leases();
    assert.ok(
      leases.some((l) => l.mac === stranger.mac && l.ip === before.ip),
      JSON.stringify(leases),
    );
  });

  test('stop + start of the supervisor keeps leases and reservations (window closed at start)', async () => {
    const before = (await dhcp.leases()).find((l) => l.mac === stranger.mac);
    assert.ok(before);
    await dhcp.kill();
    dhcp = await RemoteDhcp.start(net.controllerNs, options);
    assert.equal((await udhcpc(node1.ns, IPXE_USER_CLASS))?.bootfile, url1(), 'reservation lost on restart');
    assert.equal(await udhcpc(stranger.ns, [], 2), undefined, 'discovery window survived a restart');
    await dhcp.openDiscoveryWindow();
    assert.equal((await udhcpc(stranger.ns))?.ip, before.ip);
    await dhcp.closeDiscoveryWindow();
  });

  test('router advertisements reach clients on the bridge, with router lifetime 0 (no default route)', async () => {
    const ra = await net.addHost({ mac: '52:54:00:10:00:05', name: 'ra' });
    await net.exec(ra.ns, 'sysctl', ['-q', '-w', 'net.ipv6.conf.eth0.accept_ra=1']);
    // link down/up makes the kernel send a router solicitation, which dnsmasq answers
    await net.exec(ra.ns, 'ip', ['link', 'set', 'eth0', 'down']);
    await net.exec(ra.ns, 'ip', ['link', 'set', 'eth0', 'up']);
    const prefix = net.bridge.ipv6Address.replace(/::1$/, ':');
    let addrs = '';
    for (let i = 0; i < 100 && !addrs.includes(prefix); i++) {
      await new Promise((r) => setTimeout(r, 100));
      addrs = (await net.exec(ra.ns, 'ip', ['-6', '-o', 'addr', 'show', 'dev', 'eth0'])).stdout;
    }
    assert.ok(addrs.includes(prefix), `no SLAAC address from ${prefix}: ${addrs}`);
    assert.equal((await net.exec(ra.ns, 'ip', ['-6', 'route', 'show', 'default'])).stdout.trim(), '');
  });

  test('port 67 already taken → clear DhcpStartError, the running server is untouched', async () => {
    const dir = await mkdtemp(`${tmpdir()}/pxf-dhcp2-`);
    try {
      await assert.rejects(
        RemoteDhcp.start(net.controllerNs, { ...options, stateDir: dir }),
        (e: Error & { failure?: string }) => {
          assert.equal(e.failure, 'port-in-use');
          assert.match(e.message, /port 67 is already in use.*dnsmasq/);
          return true;
        },
      );
      assert.equal((await udhcpc(node1.ns))?.ip, '10.97.0.11');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a missing interface → clear DhcpStartError', async () => {
    const dir = await mkdtemp(`${tmpdir()}/pxf-dhcp3-`);
    const other = await createTestNetwork({ subnet: '10.99.0.0/24' });
    try {
      await assert.rejects(
        RemoteDhcp.start(other.controllerNs, { ...options, stateDir: dir, interface: 'nope0' }),
        (e: Error & { failure?: string }) => {
          assert.equal(e.failure, 'no-such-interface');
          assert.match(e.message, /"nope0" does not exist/);
          return true;
        },
      );
    } finally {
      await other.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

export type { BootEvent };
