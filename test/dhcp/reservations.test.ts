import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { dhcpPaths } from '../../netboot/dhcp/config.ts';
import { DhcpReservationError, ReservationFiles } from '../../netboot/dhcp/reservations.ts';
import { groupId } from '../../netboot/dhcp/system.ts';

const r1 = {
  name: 'node1',
  mac: '52-54-00-AA-00-01',
  ip: '10.0.0.11',
  hostname: 'node1',
  ipxeScriptUrl: 'http://10.0.0.1:8080/ipxe/node1/abc',
};

describe('reservation files', () => {
  let dir: string;
  let files: ReservationFiles;
  const paths = () => dhcpPaths(dir);
  beforeEach(async () => {
    dir = await mkdtemp(`${tmpdir()}/pxf-resv-`);
    files = new ReservationFiles(paths(), await groupId('nogroup'));
    await files.prepare({ closeDiscovery: true });
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('writes the hosts entry and the boot URL, readable by dnsmasq group only; same twice is a no-op', async () => {
    const first = await files.set(r1);
    assert.equal(first.changed.length, 2);
    assert.equal(first.needsRestart, false);
    const hosts = await readFile(`${paths().hostsDir}/525400aa0001`, 'utf8');
    assert.equal(hosts, '# node=node1\n52:54:00:aa:00:01,set:mac-525400aa0001,set:pxeflow,10.0.0.11,node1\n');
    const opts = await readFile(`${paths().optsDir}/525400aa0001`, 'utf8');
    assert.equal(
      opts,
      'tag:mac-525400aa0001,tag:ipxe,option:bootfile-name,"http://10.0.0.1:8080/ipxe/node1/abc"\n',
    );
    const st = await stat(`${paths().optsDir}/525400aa0001`);
    assert.equal(st.mode & 0o777, 0o640, 'boot URL (token) readable by others');
    assert.equal(st.gid, await groupId('nogroup'));
    assert.deepEqual(await files.set({ ...r1, mac: '52:54:00:aa:00:01' }), {
      changed: [],
      needsRestart: false,
    });
    assert.deepEqual(await readdir(paths().tmpDir), [], 'staging files left behind');
  });

  test('an IP held by another MAC is refused before anything is written', async () => {
    await files.set(r1);
    await assert.rejects(
      files.set({ ...r1, name: 'node2', mac: '52:54:00:aa:00:02', hostname: 'node2' }),
      (e: Error) =>
        e instanceof DhcpReservationError &&
        /ip: 10\.0\.0\.11 is already reserved for 52:54:00:aa:00:01/.test(e.message),
    );
    assert.deepEqual((await readdir(paths().hostsDir)).sort(), ['525400aa0001', 'discovery']);
  });

  test('bad input names the field', async () => {
    for (const [patch, field] of [
      [{ mac: 'nope' }, 'mac'],
      [{ ip: '10.0.0.300' }, 'ip'],
      [{ hostname: 'bad host' }, 'hostname'],
      [{ hostname: 'a,b' }, 'hostname'],
      [{ ipxeScriptUrl: 'http://x/"\nfoo' }, 'ipxeScriptUrl'],
      [{ name: 'a b' }, 'name'],
    ] as const) {
      await assert.rejects(files.set({ ...r1, ...patch }), new RegExp(`DHCP reservation: ${field}:`));
    }
  });

  test('live vs restart: fresh IP live, seen IP or dropped URL need a restart; removal is a tombstone', async () => {
    await files.set(r1);
    assert.equal((await files.set({ ...r1, ip: '10.0.0.12' })).needsRestart, false, 'fresh IP');
    assert.equal(
      (await files.set({ ...r1, ip: '10.0.0.12', ipxeScriptUrl: 'http://10.0.0.1:8080/ipxe/node1/def' }))
        .needsRestart,
      false,
    );
    assert.equal((await files.set({ ...r1, ip: '10.0.0.11' })).needsRestart, true, 'IP dnsmasq has seen');
    const { ipxeScriptUrl: _u, ...noUrl } = r1;
    assert.equal((await files.set(noUrl)).needsRestart, true, 'dropped boot URL');
    const removed = await files.remove(r1.mac);
    assert.equal(removed.changed.length, 1);
    assert.equal(await readFile(`${paths().hostsDir}/525400aa0001`, 'utf8'), '52:54:00:aa:00:01,ignore\n');
    assert.deepEqual(await files.remove(r1.mac), { changed: [] });
    assert.deepEqual(files.list(), []);
  });

  test('prepare (before each dnsmasq start) drops tombstones and keeps reservations with their names', async () => {
    await files.set(r1);
    await files.set({ name: 'n-2', mac: '52:54:00:aa:00:02', hostname: 'host2' });
    await files.remove('52:54:00:aa:00:02');
    await files.setDiscovery(true);
    const again = new ReservationFiles(paths(), await groupId('nogroup'));
    await again.prepare({ closeDiscovery: false });
    assert.equal(await again.discoveryOpen(), true);
    assert.deepEqual((await readdir(paths().hostsDir)).sort(), ['525400aa0001', 'discovery']);
    assert.deepEqual(again.list(), [{ ...r1, mac: '52:54:00:aa:00:01' }]);
    await again.prepare({ closeDiscovery: true });
    assert.equal(await again.discoveryOpen(), false);
  });
});
