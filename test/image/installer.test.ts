// The test installer (busybox sh) against a real HTTP server that serves the repo straight out of the
// test ISO, inside a network namespace: success and failure statuses, and the curl shim underneath them.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { IsoLibrary } from '../../image/library.ts';
import { isoFileSource } from '../../image/source.ts';
import { INSTALLER_DIR, TEST_PACKAGES } from '../../image/testiso/build.ts';
import { freshLibrary } from './fixture.ts';
import { createVethNetns, startDnsmasq, type VethNetns } from './netns.ts';

async function collectText(stream: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of stream) text += chunk;
  return text;
}

interface Status {
  token: string;
  contentType?: string;
  body: { status: string; reason?: string };
}

describe('test installer in a network namespace', () => {
  let lib: Awaited<ReturnType<typeof freshLibrary>>;
  let net: VethNetns;
  let server: Server;
  let base = '';
  const kickstarts = new Map<string, string>();
  const statuses: Status[] = [];
  const served: string[] = [];

  before(async () => {
    lib = await freshLibrary();
    const description = await new IsoLibrary(lib.dir).prepareImage(lib.version);
    const source = isoFileSource(description);
    net = await createVethNetns();
    server = createServer(async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'POST' && url.pathname.startsWith('/status/')) {
        let body = '';
        for await (const chunk of req) body += chunk;
        statuses.push({
          token: url.pathname.slice(8),
          contentType: req.headers['content-type'],
          body: JSON.parse(body),
        });
        res.end('{}');
      } else if (url.pathname.startsWith('/ks/') && kickstarts.has(url.pathname.slice(4))) {
        res.end(kickstarts.get(url.pathname.slice(4)));
      } else if (url.pathname.startsWith('/repo/')) {
        const path = url.pathname.slice(6);
        const st = await source.stat(path);
        if (!st) return void res.writeHead(404).end();
        served.push(path);
        res.writeHead(200, { 'content-length': st.size });
        source.open(path).pipe(res);
      } else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, net.hostIp, resolve));
    base = `http://${net.hostIp}:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server?.close();
    await net?.cleanup();
    await lib?.remove();
  });

  const kickstart = (token: string, packages: string[], post = '') => {
    const status = `${base}/status/${token}`;
    kickstarts.set(
      `${token}.cfg`,
      [
        `url --url=${base}/repo/`,
        'text',
        '%packages --ignoremissing',
        '@core',
        ...packages,
        '-firewalld',
        '%end',
        '',
        '%post --log=/root/ks-post.log',
        post,
        `curl -fsS --retry 5 -X POST -H 'Content-Type: application/json' --data '{"status":"success"}' '${status}'`,
        '%end',
        '',
        '%onerror',
        `curl -fsS --retry 5 -X POST -H 'Content-Type: application/json' --data "{\\"status\\":\\"failure\\",\\"reason\\":\\"\${PXEFLOW_FAIL_REASON:-anaconda}\\"}" '${status}'`,
        '%end',
        '',
      ].join('\n'),
    );
    return `${base}/ks/${token}.cfg`;
  };

  const install = (ks: string, ...flags: string[]) =>
    net.exec('busybox', [
      'sh',
      join(INSTALLER_DIR, 'pxeflow-install'),
      '--iface',
      net.nsIf,
      '--ks',
      ks,
      '--no-dhcp',
      ...flags,
    ]);

  const statusOf = (token: string) => statuses.filter((s) => s.token === token);

  test('downloads every package from the ISO and posts success', async () => {
    const names = TEST_PACKAGES.map((p) => p.name);
    const run = await install(kickstart('ok1', names));
    assert.equal(run.exitCode, 0, String(run.stderr));
    assert.deepEqual(
      statusOf('ok1').map((s) => s.body),
      [{ status: 'success' }],
    );
    assert.equal(statusOf('ok1')[0].contentType, 'application/json');
    for (const p of TEST_PACKAGES)
      assert.ok(
        served.some((s) => s.includes(`Packages/${p.name}-`)),
        p.name,
      );
    assert.ok(served.includes('repodata/repomd.xml'));
  });

  test('pxeflow fail knob: %onerror posts failure with the reason', async () => {
    const run = await install(kickstart('fail1', ['pxeflow-base']), '--fail', 'disk-not-found');
    assert.notEqual(run.exitCode, 0);
    assert.deepEqual(
      statusOf('fail1').map((s) => s.body),
      [{ status: 'failure', reason: 'disk-not-found' }],
    );
  });

  test('a package missing from the repo is a failure naming it', async () => {
    const run = await install(kickstart('miss1', ['pxeflow-base', 'no-such-package']));
    assert.notEqual(run.exitCode, 0);
    assert.deepEqual(
      statusOf('miss1').map((s) => s.body),
      [{ status: 'failure', reason: 'missing package no-such-package' }],
    );
  });

  test('a failing %post is a failure, and the success post is not sent', async () => {
    const run = await install(kickstart('post1', [], 'exit 3'));
    assert.notEqual(run.exitCode, 0);
    const bodies = statusOf('post1').map((s) => s.body);
    assert.equal(bodies.length, 1);
    assert.equal(bodies[0].status, 'failure');
    assert.match(bodies[0].reason ?? '', /%post script post\.001 exited 3/);
  });

  test('delay knob still succeeds; hang knob never reports', async () => {
    const delayed = await install(kickstart('delay1', ['pxeflow-base']), '--delay', '1');
    assert.equal(delayed.exitCode, 0, String(delayed.stderr));
    assert.match(String(delayed.stderr), /simulating 1 s of install/);
    assert.deepEqual(
      statusOf('delay1').map((s) => s.body),
      [{ status: 'success' }],
    );
    const hung = await net.exec(
      'busybox',
      [
        'sh',
        join(INSTALLER_DIR, 'pxeflow-install'),
        '--ks',
        kickstart('hang1', ['pxeflow-base']),
        '--no-dhcp',
        '--hang',
      ],
      { timeoutMs: 3000 },
    );
    assert.equal(hung.timedOut, true);
    assert.match(String(hung.stderr), /hanging on purpose/);
    assert.deepEqual(statusOf('hang1'), []);
  });

  test('bad arguments are refused with a usage message', async () => {
    const run = await net.exec('busybox', ['sh', join(INSTALLER_DIR, 'pxeflow-install'), '--ks']);
    assert.equal(run.exitCode, 2);
    assert.match(String(run.stderr), /--ks needs a value/);
  });

  test('curl shim: GET -o writes the body; HTTP errors exit non-zero', async () => {
    const out = join(lib.dir, 'repomd.from-shim.xml');
    const curl = join(INSTALLER_DIR, 'curl');
    const get = await net.exec('busybox', [
      'sh',
      curl,
      '-fsS',
      '--retry',
      '1',
      '-o',
      out,
      `${base}/repo/repodata/repomd.xml`,
    ]);
    assert.equal(get.exitCode, 0, String(get.stderr));
    const expected = await collectText(
      isoFileSource(await new IsoLibrary(lib.dir).prepareImage(lib.version)).open('repodata/repomd.xml'),
    );
    assert.equal(await readFile(out, 'utf8'), expected);
    const missing = await net.exec('busybox', [
      'sh',
      curl,
      '-fsS',
      '-X',
      'POST',
      '--data',
      '{}',
      `${base}/nothing`,
    ]);
    assert.equal(missing.exitCode, 22);
    const bad = await net.exec('busybox', ['sh', curl, '--frobnicate', base]);
    assert.equal(bad.exitCode, 2);
  });

  test('an unreachable kickstart ends with a non-zero exit and no status', async () => {
    const run = await install(`${base}/ks/none.cfg`);
    assert.notEqual(run.exitCode, 0);
    assert.match(String(run.stderr), /cannot fetch the kickstart/);
  });
});

describe('test installer with DHCP (dnsmasq as the peer)', () => {
  let net: VethNetns;
  let server: Server;
  let dnsmasq: ReturnType<typeof startDnsmasq> | undefined;
  const posts: string[] = [];

  before(async () => {
    net = await createVethNetns({ nsAddress: false });
    server = createServer(async (req, res) => {
      if (req.method === 'POST') {
        let body = '';
        for await (const chunk of req) body += chunk;
        posts.push(body);
        return void res.end('{}');
      }
      const { port } = server.address() as AddressInfo;
      const status = `http://${net.hostIp}:${port}/status`;
      res.end(
        `%post\ncurl -fsS --retry 2 -X POST -H 'Content-Type: application/json' --data '{"status":"success"}' '${status}'\n%end\n`,
      );
    });
    await new Promise<void>((resolve) => server.listen(0, net.hostIp, resolve));
    dnsmasq = startDnsmasq(net);
  });

  after(async () => {
    dnsmasq?.kill('SIGTERM');
    await dnsmasq;
    server?.close();
    await net?.cleanup();
  });

  test('udhcpc leases an address through the event script, then the installer reports success', async () => {
    const { port } = server.address() as AddressInfo;
    const run = await net.exec('busybox', [
      'sh',
      join(INSTALLER_DIR, 'pxeflow-install'),
      '--iface',
      net.nsIf,
      '--ks',
      `http://${net.hostIp}:${port}/ks.cfg`,
    ]);
    assert.equal(run.exitCode, 0, String(run.stderr));
    assert.match(
      String(run.stderr),
      new RegExp(`bound to ${net.nsIp.replace(/\./g, '\\.')} \\(router none\\)`),
    );
    assert.deepEqual(posts, ['{"status":"success"}']);
    const addr = await net.exec('ip', ['-4', '-o', 'addr', 'show', 'dev', net.nsIf]);
    assert.match(String(addr.stdout), new RegExp(`${net.nsIp.replace(/\./g, '\\.')}/30`));
  });
});
