// The HTTP service serving image files straight out of a real ISO (isoFileSource): the fast path that copies
// byte ranges from one shared descriptor into pooled buffers and writes them to the socket itself. Bodies
// across chunk boundaries, Range/HEAD/304/416, boot events, clients that vanish mid-transfer (no leaked
// descriptors, the server carries on), and an ISO that changes or is replaced on disk.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readdir, readlink, rename, rm, stat, utimes } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { isoFileSource } from '../../image/source.ts';
import { BODY_CHUNK, bufferPools } from '../../netboot/http/files.ts';
import { type HttpServerHandle, startHttpServer } from '../../netboot/http/server.ts';
import { MachineRegistry } from '../../netboot/machines.ts';
import type { BootEvent } from '../../netboot/types.ts';
import { tinyIso } from '../image/fixture.ts';
import { curl } from './fixture.ts';

const VERSION = 'iso-1.0';
const KERNEL = 'images/pxeboot/vmlinuz';
const INITRD = 'images/pxeboot/initrd.img';
const RPM = 'Packages/tool-1.0-1.x86_64.rpm';
const SMALL_RPM = 'Packages/tiny-1.0-1.noarch.rpm';

const PREPARED_MTIME = new Date('2026-01-02T03:04:05Z');
const openFds = async () => (await readdir('/proc/self/fd')).length;
/** this process's descriptors open on `path` (a replaced file's show as "path (deleted)") */
const fdsOn = async (path: string) => {
  let n = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target === path || target === `${path} (deleted)`) n++;
  }
  return n;
};
const settle = async (check: () => Promise<boolean>) => {
  for (let i = 0; i < 50 && !(await check()); i++) await sleep(20);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('image files out of an ISO (shared descriptor, pooled buffers)', () => {
  let tmp: string;
  let isoPath: string;
  let server: HttpServerHandle;
  let base: string;
  const events: BootEvent[] = [];
  const logLines: string[] = [];
  // the kernel spans several chunks and more than loopback's socket buffers hold, so a client that stops
  // reading leaves the server with a write in flight
  const files: Record<string, Buffer> = {
    [KERNEL]: randomBytes(8 * BODY_CHUNK + 12_345),
    [INITRD]: randomBytes(BODY_CHUNK + 1),
    [RPM]: randomBytes(300_000),
    [SMALL_RPM]: randomBytes(40_000),
    'repodata/repomd.xml': Buffer.from('<repomd/>\n'),
    'empty.txt': Buffer.alloc(0),
  };

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'pxeflow-http-iso-'));
    isoPath = await tinyIso(join(tmp, `${VERSION}.iso`), files);
    await utimes(isoPath, PREPARED_MTIME, PREPARED_MTIME); // whole seconds: the tests can set it back exactly
    const st = await stat(isoPath);
    const machines = new MachineRegistry();
    machines.upsert({
      name: 'node1',
      hostname: 'node1',
      mac: '52:54:00:aa:00:01',
      ip: '127.0.0.1',
      bootMode: 'auto',
    });
    server = await startHttpServer({
      address: '127.0.0.1',
      port: 0,
      machines,
      image: {
        version: VERSION,
        source: isoFileSource({ isoPath, isoSize: st.size, isoMtimeMs: st.mtimeMs }),
        kernel: KERNEL,
        initrd: INITRD,
        repoRoot: '',
      },
      onEvent: (e) => events.push(e),
      onStatus: async () => {},
      kickstartVars: { rootPasswordHash: '', osDisk: 'sda' },
      logger: pino({ level: 'debug' }, { write: (line: string) => logLines.push(line) }),
    });
    base = `${server.url}/image/${VERSION}`;
  });
  after(async () => {
    await server?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it('serves whole files, ranges across chunk boundaries, HEAD, 304 and 416', async () => {
    for (const [path, data] of Object.entries(files)) {
      const r = await curl([`${base}/${path}`]);
      assert.equal(r.status, 200, path);
      assert.equal(r.headers['content-length'], String(data.length), path);
      assert.ok(r.body.equals(data), `body of ${path}`);
      assert.equal(r.headers['accept-ranges'], 'bytes');
      assert.ok(r.headers.etag && r.headers['last-modified'], path);
    }
    assert.equal((await curl([`${base}/${RPM}`])).headers['content-type'], 'application/x-rpm');
    assert.equal((await curl([`${base}/repodata/repomd.xml`])).headers['content-type'], 'application/xml');

    const kernel = files[KERNEL];
    const size = kernel.length;
    for (const [spec, start, end] of [
      ['0-0', 0, 0],
      [`${BODY_CHUNK - 10}-${BODY_CHUNK + 9}`, BODY_CHUNK - 10, BODY_CHUNK + 9],
      [`${BODY_CHUNK}-${3 * BODY_CHUNK + 5}`, BODY_CHUNK, 3 * BODY_CHUNK + 5],
      ['1000-', 1000, size - 1],
      ['-65536', size - 65536, size - 1],
      [`0-${size + 100}`, 0, size - 1],
    ] as const) {
      const r = await curl(['-r', spec, `${base}/${KERNEL}`]);
      assert.equal(r.status, 206, spec);
      assert.equal(r.headers['content-range'], `bytes ${start}-${end}/${size}`, spec);
      assert.equal(r.headers['content-length'], String(end - start + 1), spec);
      assert.ok(r.body.equals(kernel.subarray(start, end + 1)), `bytes of ${spec}`);
    }
    const unsatisfiable = await curl(['-r', `${size}-`, `${base}/${KERNEL}`]);
    assert.equal(unsatisfiable.status, 416);
    assert.equal(unsatisfiable.headers['content-range'], `bytes */${size}`);
    const multi = await curl(['-r', '0-1,10-11', `${base}/${SMALL_RPM}`]);
    assert.equal(multi.status, 200);
    assert.ok(multi.body.equals(files[SMALL_RPM]));

    const head = await curl(['-I', `${base}/${KERNEL}`]);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(size));
    assert.equal(head.body.length, 0);
    const cached = await curl(['-H', `If-None-Match: ${head.headers.etag}`, `${base}/${KERNEL}`]);
    assert.equal(cached.status, 304);
    assert.equal(cached.body.length, 0);
    const ifRange = await curl(['-r', '0-9', '-H', `If-Range: ${head.headers.etag}`, `${base}/${KERNEL}`]);
    assert.equal(ifRange.status, 206);
    assert.ok(ifRange.body.equals(kernel.subarray(0, 10)));

    for (const path of ['nope.rpm', 'Packages', '../x', '%2e%2e/etc/passwd', 'Packages/%2E%2E/empty.txt']) {
      const r = await curl([`${base}/${path}`]);
      assert.ok([400, 404].includes(r.status), `${path} → ${r.status}`);
    }
  });

  it('keeps the connection usable after a file body (keep-alive), many times over', async () => {
    for (let i = 0; i < 20; i++) {
      const path = i % 2 ? RPM : INITRD;
      const res = await fetch(`${base}/${path}`, { headers: i % 3 ? {} : { range: 'bytes=5-70004' } });
      const body = Buffer.from(await res.arrayBuffer());
      const expected = i % 3 ? files[path] : files[path].subarray(5, 70_005);
      assert.ok(body.equals(expected), `request ${i}`);
    }
  });

  it('emits one boot event per file GET that sends a body (not for HEAD, 304, 416, 404)', async () => {
    events.length = 0;
    await curl([`${base}/${KERNEL}`]);
    await curl(['-r', '0-99', `${base}/${INITRD}`]);
    await curl(['-r', '0-65535', `${base}/${RPM}`]);
    await curl([`${base}/repodata/repomd.xml`]);
    await curl(['-I', `${base}/${KERNEL}`]);
    const etag = (await curl(['-I', `${base}/${RPM}`])).headers.etag;
    await curl(['-H', `If-None-Match: ${etag}`, `${base}/${RPM}`]);
    await curl(['-r', '999999999-', `${base}/${RPM}`]);
    await curl([`${base}/missing.rpm`]);
    assert.deepEqual(
      events.map((e) => [e.phase, e.node, e.detail?.file]),
      [
        ['kernel', 'node1', undefined],
        ['initrd', 'node1', undefined],
        ['packages', 'node1', RPM],
      ],
    );
  });

  it('survives clients that vanish mid-transfer, without leaking descriptors or buffers', async () => {
    const fdsBefore = await openFds();
    const aborted = Array.from(
      { length: 40 },
      (_, i) =>
        new Promise<void>((resolve, reject) => {
          const s = connect(server.port, '127.0.0.1');
          s.on('error', () => {});
          s.on('close', () => resolve());
          s.setTimeout(10_000, () => reject(new Error('no data')));
          s.write(`GET /image/${VERSION}/${KERNEL} HTTP/1.1\r\nHost: x\r\n\r\n`);
          let got = 0;
          s.on('data', (d: Buffer) => {
            got += d.length;
            // stop early (headers only) or after some of the body; then stop reading and reset
            if (got > (i % 2 ? 100 : 2 * BODY_CHUNK)) {
              s.pause();
              setTimeout(() => s.resetAndDestroy(), 20);
            }
          });
        }),
    );
    await Promise.all(aborted);
    // the server is fine and still serves the same bytes
    const r = await curl([`${base}/${KERNEL}`]);
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(files[KERNEL]));
    let fdsAfter = await openFds();
    for (let i = 0; i < 50 && fdsAfter > fdsBefore; i++) {
      await sleep(20);
      fdsAfter = await openFds();
    }
    assert.ok(fdsAfter <= fdsBefore, `descriptors: ${fdsBefore} before, ${fdsAfter} after`);
    const early = logLines.filter((l) => l.includes('file transfer ended early')).length;
    assert.ok(early >= 20, `transfers cut short: ${early}`);
    assert.equal(await fdsOn(isoPath), 1, 'one shared descriptor of the ISO');
    assert.ok(bufferPools.large.idle <= 64 && bufferPools.small.idle <= 256);
  });

  it('refuses to serve while the ISO differs from the prepared one; serves a replaced identical ISO afresh', async () => {
    const later = new Date(Date.now() + 120_000);
    await utimes(isoPath, later, later);
    assert.equal((await curl([`${base}/${RPM}`])).status, 404, 'changed ISO → not served');
    await settle(async () => (await fdsOn(isoPath)) === 0);
    assert.equal(await fdsOn(isoPath), 0, 'its descriptor is closed (no reader holds it)');
    await utimes(isoPath, PREPARED_MTIME, PREPARED_MTIME);
    const back = await curl([`${base}/${RPM}`]);
    assert.equal(back.status, 200, 'the prepared ISO again → served');
    assert.ok(back.body.equals(files[RPM]));

    // another file at the path with the same size and mtime (another inode): read from the new one
    const copy = join(tmp, 'copy.iso');
    await copyFile(isoPath, copy);
    await utimes(copy, PREPARED_MTIME, PREPARED_MTIME);
    await rename(copy, isoPath);
    const fresh = await curl([`${base}/${RPM}`]);
    assert.equal(fresh.status, 200);
    assert.ok(fresh.body.equals(files[RPM]));
    await settle(async () => (await fdsOn(isoPath)) === 1);
    assert.equal(await fdsOn(isoPath), 1, 'the replaced file’s descriptor is closed');
  });
});
