// The HTTP service against the real curl binary: iPXE script, image files with Range/HEAD/304, kickstart,
// status API with tokens, events in order, local boot after success, tokens absent from logs.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { execa } from 'execa';
import { bootSpec, renderPxelinuxConfig } from '../../netboot/boot-spec.ts';
import { startHttpServer } from '../../netboot/http/server.ts';
import { MachineRegistry } from '../../netboot/machines.ts';
import { curl, type Fixture, naiveDirSource, startFixture, VERSION } from './fixture.ts';

const KSVALIDATOR = new URL('../../.tools/venv/bin/ksvalidator', import.meta.url).pathname;

function statusCommands(kickstart: string): { success: string; failure: string } {
  const lines = kickstart.split('\n');
  // the whole script section: from the line after the header to the line before %end
  const after = (header: RegExp) => {
    const start = lines.findIndex((l) => header.test(l)) + 1;
    return lines.slice(start, lines.indexOf('%end', start)).join('\n');
  };
  return { success: after(/^%post\b/), failure: after(/^%onerror\b/) };
}

describe('netboot HTTP service (real curl)', () => {
  let f: Fixture;
  let url: string;
  const allTokens: string[] = [];
  before(async () => {
    f = await startFixture();
    url = f.server.url;
    for (const m of f.machines.list()) allTokens.push(m.token);
  });
  after(async () => {
    await f?.close();
  });

  it('refuses a wildcard bind address', async () => {
    await assert.rejects(
      startHttpServer({
        address: '0.0.0.0',
        port: 0,
        machines: new MachineRegistry(),
        image: {
          version: 'v',
          source: naiveDirSource('/nonexistent'),
          kernel: 'k',
          initrd: 'i',
          repoRoot: '',
        },
        onStatus: async () => {},
        kickstartVars: { rootPasswordHash: 'x', osDisk: 'sda' },
      }),
      /wildcard/,
    );
  });

  it('listens on the given address only', async () => {
    const r = await curl([`${url}/healthz`]);
    assert.equal(r.status, 200);
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const port = url.split(':').pop();
    const ss = await execa('ss', ['-Hltn', `sport = :${port}`]);
    const listeners = ss.stdout.trim().split('\n');
    assert.equal(listeners.length, 1, ss.stdout);
    assert.match(listeners[0], /127\.0\.0\.1:\d+/);
  });

  it('serves image files whole, by Range, by HEAD, and 304 on validators', async () => {
    const kernel = f.files['images/pxeboot/vmlinuz'];
    const base = `${url}/image/${VERSION}/images/pxeboot/vmlinuz`;
    const whole = await curl([base]);
    assert.equal(whole.status, 200);
    assert.equal(whole.headers['accept-ranges'], 'bytes');
    assert.equal(whole.headers['content-length'], String(kernel.length));
    assert.ok(whole.body.equals(kernel));

    for (const [spec, start, end] of [
      ['0-99', 0, 99],
      ['1000-1999', 1000, 1999],
      [`${kernel.length - 10}-`, kernel.length - 10, kernel.length - 1],
      ['-50', kernel.length - 50, kernel.length - 1],
    ] as const) {
      const r = await curl(['-r', spec, base]);
      assert.equal(r.status, 206, spec);
      assert.equal(r.headers['content-range'], `bytes ${start}-${end}/${kernel.length}`);
      assert.equal(r.headers['content-length'], String(end - start + 1));
      assert.ok(r.body.equals(kernel.subarray(start, end + 1)), `bytes of ${spec}`);
    }
    const unsatisfiable = await curl(['-r', `${kernel.length + 5}-`, base]);
    assert.equal(unsatisfiable.status, 416);
    assert.equal(unsatisfiable.headers['content-range'], `bytes */${kernel.length}`);
    const multi = await curl(['-r', '0-1,10-11', base]);
    assert.equal(multi.status, 200, 'multiple ranges answered with the whole file');
    assert.ok(multi.body.equals(kernel));

    const head = await curl(['-I', base]);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(kernel.length));
    assert.equal(head.body.length, 0);
    const etag = head.headers.etag;
    assert.ok(etag);
    const cached = await curl(['-H', `If-None-Match: ${etag}`, base]);
    assert.equal(cached.status, 304);
    assert.equal(cached.body.length, 0);
    const changed = await curl(['-H', 'If-None-Match: "other"', base]);
    assert.equal(changed.status, 200);
    const ims = await curl(['-H', `If-Modified-Since: ${head.headers['last-modified']}`, base]);
    assert.equal(ims.status, 304);
    const staleIfRange = await curl(['-r', '0-9', '-H', 'If-Range: "stale"', base]);
    assert.equal(staleIfRange.status, 200, 'If-Range with another validator → whole file');

    const empty = await curl([`${url}/image/${VERSION}/empty.txt`]);
    assert.equal(empty.status, 200);
    assert.equal(empty.headers['content-length'], '0');
    assert.equal((await curl([`${url}/image/other-version/.treeinfo`])).status, 404);
    assert.equal((await curl([`${url}/image/${VERSION}/nope.rpm`])).status, 404);
    assert.equal((await curl([`${url}/image/${VERSION}/Packages`])).status, 404, 'directories are not files');
  });

  it('never serves a path outside the image', async () => {
    for (const path of [
      `/image/${VERSION}/../../etc/passwd`,
      `/image/${VERSION}/../secret.txt`,
      `/image/${VERSION}/%2e%2e/secret.txt`,
      `/image/${VERSION}/Packages/%2E%2E/%2e%2e/secret.txt`,
      `/image/${VERSION}/..%2fsecret.txt`,
      `/image/${VERSION}/..%5csecret.txt`,
      `/image/${VERSION}//etc/passwd`,
      `/image/${VERSION}/%2fetc%2fpasswd`,
      `/image/..%2f..%2fetc/passwd`,
    ]) {
      const r = await curl([url + path]);
      assert.ok([400, 404].includes(r.status), `${path} → ${r.status}`);
      assert.doesNotMatch(r.body.toString(), /OUTSIDE-THE-IMAGE|root:/, path);
    }
  });

  it('refuses wrong tokens and unknown nodes alike with 403, without events', async () => {
    const before = f.raw.length;
    const calls = f.statusCalls.length;
    const node2 = f.machines.get('node2')!;
    for (const path of [
      '/ipxe/node1/0000',
      `/ipxe/node1/${node2.token}`,
      `/ks/node1/${'f'.repeat(64)}`,
      `/ks/nobody/${node2.token}`,
      '/ipxe/nobody/x',
    ]) {
      const r = await curl([url + path]);
      assert.equal(r.status, 403, path);
    }
    const forged = await curl([
      '-X',
      'POST',
      '-H',
      'Content-Type: application/json',
      '--data',
      '{"outcome":"success"}',
      `${url}/status/node1/${node2.token}`,
    ]);
    assert.equal(forged.status, 403);
    assert.equal(f.raw.length, before, 'no event for refused requests');
    assert.equal(f.statusCalls.length, calls, 'onStatus not called');
    assert.equal(f.machines.get('node1')!.target, 'install');
  });

  it('validates status bodies: 400 naming the field, 413 when too large, 415 when not JSON', async () => {
    const { token } = f.machines.get('node2')!;
    const post = (body: string, type = 'application/json') =>
      curl([
        '-X',
        'POST',
        '-H',
        `Content-Type: ${type}`,
        '--data-binary',
        body,
        `${url}/status/node2/${token}`,
      ]);
    const missing = await post('{"detail":"x"}');
    assert.equal(missing.status, 400);
    assert.match(missing.body.toString(), /outcome/);
    const wrong = await post('{"outcome":"maybe"}');
    assert.equal(wrong.status, 400);
    assert.match(wrong.body.toString(), /outcome/);
    const long = await post(JSON.stringify({ outcome: 'failure', detail: 'x'.repeat(2049) }));
    assert.equal(long.status, 400);
    assert.match(long.body.toString(), /detail/);
    assert.equal((await post('{not json')).status, 400);
    const big = await post(JSON.stringify({ outcome: 'failure', detail: 'x'.repeat(20_000) }));
    assert.equal(big.status, 413);
    assert.equal((await post('outcome=success', 'application/x-www-form-urlencoded')).status, 415);
    assert.equal(f.statusCalls.filter((c) => c.node === 'node2').length, 0);
    assert.equal(f.machines.get('node2')!.token, token, 'token still live');
  });

  it('walks the boot chain: script → kernel → initrd → kickstart → packages → status (retried), then local boot', async () => {
    const node = f.machines.get('node1')!;
    f.stream.resetNode('node1'); // earlier tests fetched files from this node's IP (127.0.0.1)
    const firstEvent = f.seen.length;
    const script = await curl([`${url}/ipxe/node1/${node.token}`]);
    assert.equal(script.status, 200);
    const text = script.body.toString();
    assert.match(text, /^#!ipxe\n/);
    const kernelLine = text.split('\n').find((l) => l.startsWith('kernel '))!;
    assert.match(kernelLine, / initrd=initrd\.img /);
    assert.match(kernelLine, new RegExp(`inst\\.ks=${url}/ks/node1/${node.token}`));
    assert.match(kernelLine, new RegExp(`inst\\.repo=${url}/image/${VERSION}( |$)`));
    const kernelUrl = kernelLine.split(' ')[1];
    const initrdUrl = text
      .split('\n')
      .find((l) => l.startsWith('initrd '))!
      .split(' ')[1];
    assert.ok((await curl([kernelUrl])).body.equals(f.files['images/pxeboot/vmlinuz']));
    assert.ok((await curl([initrdUrl])).body.equals(f.files['images/pxeboot/initrd.img']));

    const ksUrl = /inst\.ks=(\S+)/.exec(kernelLine)![1];
    const ks = await curl([ksUrl]);
    assert.equal(ks.status, 200);
    const kickstart = ks.body.toString();
    const ksFile = join(f.tmp, 'node1.ks');
    await writeFile(ksFile, kickstart);
    const validation = await execa(KSVALIDATOR, ['-v', 'RHEL9', ksFile], { reject: false });
    assert.equal(validation.exitCode, 0, validation.stdout + validation.stderr);
    assert.match(kickstart, /^network --bootproto=dhcp --device=52:54:00:aa:00:01 --hostname=node1\.lab/m);

    for (const rpm of [
      'Packages/bash-5.1-1.x86_64.rpm',
      'Packages/curl-7.76-1.x86_64.rpm',
      'Packages/bash-5.1-1.x86_64.rpm',
    ]) {
      const r = await curl([`${url}/image/${VERSION}/${rpm}`]);
      assert.ok(r.body.equals(f.files[rpm]));
    }
    await curl([`${url}/image/${VERSION}/repodata/repomd.xml`]);

    // the kickstart's own %post line, run by a shell with the real curl; the first onStatus fails → 503 → retry
    f.failStatus(1);
    const { success } = statusCommands(kickstart);
    assert.match(
      success,
      /^curl -fsS --retry 30 --retry-delay 2 --retry-connrefused -X POST -H 'Content-Type: application\/json' --data '\{.*\}' 'http/,
    );
    const posted = await execa('sh', ['-c', success], { reject: false });
    assert.equal(posted.exitCode, 0, posted.stderr);
    const calls = f.statusCalls.filter((c) => c.node === 'node1');
    assert.equal(calls.length, 2, 'one rejected call, one accepted retry');
    assert.deepEqual(calls[1], { node: 'node1', outcome: 'success', detail: 'installed', attempt: 1 });

    // replay: the token is revoked, nothing changes
    const replay = await execa('sh', ['-c', success], { reject: false });
    assert.notEqual(replay.exitCode, 0);
    const replayStatus = await curl([
      '-X',
      'POST',
      '-H',
      'Content-Type: application/json',
      '--data',
      '{"outcome":"failure"}',
      `${url}/status/node1/${node.token}`,
    ]);
    assert.equal(replayStatus.status, 403);
    assert.equal(
      f.statusCalls.filter((c) => c.node === 'node1').length,
      2,
      'onStatus called once successfully, never again',
    );
    assert.equal((await curl([ksUrl])).status, 403, 'kickstart gone with the token');

    // local boot: the old script URL (still in DHCP) now says exit; pxelinux says LOCALBOOT
    const again = await curl([`${url}/ipxe/node1/${node.token}`]);
    assert.equal(again.status, 200);
    assert.match(again.body.toString(), /^#!ipxe\n(.*\n)*exit\n$/);
    assert.doesNotMatch(again.body.toString(), /kernel|inst\.ks/);
    const now = f.machines.get('node1')!;
    assert.equal(now.target, 'localboot');
    assert.match(renderPxelinuxConfig(bootSpec(now, f.server.bootContext)), /LOCALBOOT 0/);

    // the event stream, deduplicated, in order
    const phases = f.seen
      .slice(firstEvent)
      .filter((e) => e.node === 'node1')
      .map((e) => e.phase);
    assert.deepEqual(phases, [
      'pxe-config',
      'kernel',
      'initrd',
      'kickstart',
      'packages',
      'packages-done',
      'status',
      'pxe-config',
    ]);
    const done = f.seen.find((e) => e.phase === 'packages-done')!;
    assert.deepEqual(done.detail, { count: 3, file: 'Packages/bash-5.1-1.x86_64.rpm' });
    const statusEvent = f.seen.find((e) => e.phase === 'status')!;
    assert.equal(statusEvent.mac, '52:54:00:aa:00:01');
    assert.equal(statusEvent.detail?.outcome, 'success');
    assert.equal(f.raw.filter((e) => e.phase === 'packages').length, 3, 'every package GET reached onEvent');
  });

  it('a new attempt gets a new token; the old one is refused', async () => {
    f.machines.setTarget('node1', 'install');
    const old = allTokens[0];
    const fresh = f.machines.rotateToken('node1');
    allTokens.push(fresh);
    assert.notEqual(fresh, old);
    assert.equal((await curl([`${url}/ipxe/node1/${old}`])).status, 403);
    const r = await curl([`${url}/ipxe/node1/${fresh}`]);
    assert.equal(r.status, 200);
    assert.match(r.body.toString(), /inst\.ks=\S+\/ks\/node1\/[0-9a-f]{64} /);
    assert.equal(f.machines.attempt('node1'), 2);
  });

  it('a failure status from %onerror is recorded and revokes the token without local boot', async () => {
    const { token } = f.machines.get('node2')!;
    const ks = await curl([`${url}/ks/node2/${token}`]);
    const { failure } = statusCommands(ks.body.toString());
    // the installer's reason reaches the status, stripped of what would break the JSON
    const r = await execa('sh', ['-c', failure], {
      reject: false,
      env: { PXEFLOW_FAIL_REASON: 'disk "sda" not found\\' },
    });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(f.statusCalls.at(-1)?.outcome, 'failure');
    assert.equal(f.statusCalls.at(-1)?.detail, 'disk sda not found');
    assert.equal(f.machines.get('node2')!.target, 'install');
    assert.equal((await curl([`${url}/ipxe/node2/${token}`])).status, 403);
  });

  it('proxyDHCP: a reserved MAC gets its script by MAC, with the dhcp phase from its address; others 403', async () => {
    f.machines.setTarget('node1', 'install');
    const { token } = f.machines.get('node1')!;
    const before = f.raw.length;
    for (const mac of ['52-54-00-aa-00-99', 'zz', '52-54-00-aa-00-01-ff']) {
      assert.equal((await curl([`${url}/boot-by-mac/${mac}`])).status, 403, mac);
    }
    assert.equal(f.raw.length, before, 'no event for refused requests');
    // iPXE's ${net0/mac:hexhyp} form
    const r = await curl([`${url}/boot-by-mac/52-54-00-AA-00-01`]);
    assert.equal(r.status, 200);
    assert.match(r.body.toString(), new RegExp(`^#!ipxe\\n[\\s\\S]*inst\\.ks=${url}/ks/node1/${token} `));
    const events = f.raw.slice(before);
    assert.deepEqual(
      events.map((e) => [e.phase, e.node, e.mac]),
      [
        ['dhcp', 'node1', '52:54:00:aa:00:01'],
        ['pxe-config', 'node1', '52:54:00:aa:00:01'],
      ],
    );
    assert.equal(
      events[0]!.ip,
      '127.0.0.1',
      'the address the site DHCP server gave: where the request came from',
    );
  });

  it('never writes a token into a log line', () => {
    for (const m of f.machines.list()) if (m.token) allTokens.push(m.token);
    assert.ok(f.logLines.length > 20, 'logs were captured');
    assert.ok(
      f.logLines.some((l) => l.includes('/ks/node1/[token]')),
      'token routes are logged, redacted',
    );
    for (const line of f.logLines)
      for (const token of allTokens) assert.ok(!line.includes(token), `token in: ${line}`);
  });
});
