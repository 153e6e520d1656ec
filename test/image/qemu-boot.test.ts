// Boots the test ISO's kernel + initrd (as served by isoFileSource) in qemu (TCG) on a tap inside a network
// namespace: DHCP from dnsmasq, kickstart + packages from an HTTP server backed by the ISO, status POST back.
// Judged by the status callback, not qemu's exit code (NOTES.md). Skipped when qemu is missing.
import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import { IsoLibrary } from '../../image/library.ts';
import { isoFileSource } from '../../image/source.ts';
import { freshLibrary } from './fixture.ts';
import { createVethNetns, startDnsmasq, type VethNetns } from './netns.ts';

const haveQemu = (await execa('qemu-system-x86_64', ['--version'], { reject: false })).exitCode === 0;

describe('test ISO boots in qemu', { skip: !haveQemu && 'qemu-system-x86_64 is not installed' }, () => {
  let lib: Awaited<ReturnType<typeof freshLibrary>>;
  let net: VethNetns;
  let server: Server;
  let dnsmasq: ReturnType<typeof startDnsmasq> | undefined;
  let work: string;
  const posts: string[] = [];
  const requests: string[] = [];
  let kernel = '';
  let initrd = '';

  before(async () => {
    lib = await freshLibrary();
    work = await mkdtemp(join(tmpdir(), 'pxeflow-qemu-'));
    const d = await new IsoLibrary(lib.dir).prepareImage(lib.version);
    const source = isoFileSource(d);
    kernel = join(work, 'vmlinuz');
    initrd = join(work, 'initrd.img');
    await pipeline(source.open(d.kernel), createWriteStream(kernel));
    await pipeline(source.open(d.initrd), createWriteStream(initrd));
    net = await createVethNetns({ tap: true });
    server = createServer(async (req, res) => {
      requests.push(`${req.method} ${req.url}`);
      const { port } = server.address() as AddressInfo;
      const base = `http://${net.hostIp}:${port}`;
      if (req.method === 'POST') {
        let body = '';
        for await (const chunk of req) body += chunk;
        posts.push(body);
        return void res.end('{}');
      }
      if (req.url === '/ks.cfg') {
        const post = (json: string) =>
          `curl -fsS --retry 3 -X POST -H 'Content-Type: application/json' --data '${json}' '${base}/status'`;
        return void res.end(
          [
            `url --url=${base}/repo/`,
            '%packages',
            'pxeflow-base',
            'pxeflow-data',
            '%end',
            '%post',
            post('{"status":"success"}'),
            '%end',
            '%onerror',
            post('{"status":"failure","reason":"\'"$PXEFLOW_FAIL_REASON"\'"}'),
            '%end',
            '',
          ].join('\n'),
        );
      }
      const path = req.url?.startsWith('/repo/') ? req.url.slice(6) : '';
      const st = path ? await source.stat(path) : undefined;
      if (!st) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': st.size });
      source.open(path).pipe(res);
    });
    await new Promise<void>((resolve) => server.listen(0, net.hostIp, resolve));
    dnsmasq = startDnsmasq(net);
  });

  after(async () => {
    dnsmasq?.kill('SIGTERM');
    await dnsmasq;
    server?.close();
    await net?.cleanup();
    await lib?.remove();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const boot = async (extraAppend: string) => {
    const { port } = server.address() as AddressInfo;
    const run = await net.exec(
      'qemu-system-x86_64',
      [
        '-accel',
        'tcg',
        '-m',
        '256',
        '-kernel',
        kernel,
        '-initrd',
        initrd,
        '-append',
        `console=ttyS0 quiet inst.ks=http://${net.hostIp}:${port}/ks.cfg ${extraAppend}`,
        '-nographic',
        '-no-reboot',
        '-netdev',
        `tap,id=n0,ifname=${net.tapIf},script=no,downscript=no`,
        '-device',
        'virtio-net-pci,netdev=n0',
      ],
      { timeoutMs: 240_000 },
    );
    return String(run.stdout);
  };

  test('kernel + initrd from the ISO: DHCP, kickstart, packages, success status, power off', async () => {
    posts.length = 0;
    const console = await boot('');
    assert.deepEqual(posts, ['{"status":"success"}'], console.slice(-3000));
    assert.match(console, /pxeflow-install: 2 packages installed/);
    assert.match(console, /pxeflow: pxeflow-install exited 0/);
    assert.ok(requests.some((r) => r.includes('pxeflow-data-0.9-2.noarch.rpm')));
  });

  test('pxeflow.fail=<reason> on the kernel command line: %onerror posts the failure', async () => {
    posts.length = 0;
    const console = await boot('pxeflow.fail=no-os-disk');
    assert.deepEqual(posts, ['{"status":"failure","reason":"no-os-disk"}'], console.slice(-3000));
    assert.match(console, /pxeflow-install exited 1/);
  });
});
