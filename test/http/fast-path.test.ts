// The image fast path (netboot/http/fast-path.ts): plain GETs answered 200/206 before fastify. Same bytes on
// the wire as fastify's route (but the Date), same boot events, same log lines; everything it declines still
// answered by fastify; synchronous reads that back off to the thread pool when they turn slow; pipelined and
// vanishing clients.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, utimes } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, beforeEach, describe, it } from 'node:test';
import { pino } from 'pino';
import { isoFileSource } from '../../image/source.ts';
import { syncReads } from '../../netboot/http/fast-path.ts';
import { bufferPools, type PositionalFileSource, SMALL_CHUNK } from '../../netboot/http/files.ts';
import { type HttpServerHandle, startHttpServer } from '../../netboot/http/server.ts';
import { MachineRegistry } from '../../netboot/machines.ts';
import type { BootEvent, FileSource } from '../../netboot/types.ts';
import { tinyIso } from '../image/fixture.ts';

const VERSION = 'fast-1.0';
const KERNEL = 'images/pxeboot/vmlinuz';
const INITRD = 'images/pxeboot/initrd.img';
const RPM = 'Packages/tool-1.0-1.x86_64.rpm';
const SMALL_RPM = 'Packages/tiny-1.0-1.noarch.rpm';
const MTIME = new Date('2026-01-02T03:04:05Z');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends `text` on one connection, returns every byte until the server closes it. */
function raw(port: number, text: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
    s.setTimeout(10_000, () => reject(new Error('timeout')));
    s.write(text);
  });
}

interface Parsed {
  status: number;
  head: string[];
  headers: Record<string, string>;
  body: Buffer;
}
/** splits back-to-back HTTP/1.1 responses (content-length bodies) */
function parseResponses(buf: Buffer, methods: string[]): Parsed[] {
  const out: Parsed[] = [];
  let at = 0;
  for (const method of methods) {
    const end = buf.indexOf('\r\n\r\n', at);
    assert.ok(end >= 0, 'a complete head');
    const head = buf.subarray(at, end).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const line of head.slice(1)) {
      const i = line.indexOf(':');
      headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
    }
    const status = Number(head[0].split(' ')[1]);
    const length = method === 'HEAD' || status === 304 ? 0 : Number(headers['content-length'] ?? 0);
    out.push({ status, head, headers, body: buf.subarray(end + 4, end + 4 + length) });
    at = end + 4 + length;
  }
  assert.equal(at, buf.length, 'nothing after the last response');
  return out;
}
const get = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}`;
const lastly = (req: string) => `${req}Connection: close\r\n\r\n`;
const request = (req: string) => `${req}\r\n`;

describe('image fast path', () => {
  let tmp: string;
  let isoPath: string;
  const files: Record<string, Buffer> = {
    [KERNEL]: randomBytes(3 * 1024 * 1024 + 77),
    [INITRD]: randomBytes(200_000),
    [RPM]: randomBytes(300_000),
    [SMALL_RPM]: randomBytes(40_000),
    'repodata/repomd.xml': Buffer.from('<repomd/>\n'),
  };
  // readerNow calls: the fast path asks for a file; fastify's route uses reader()
  const calls = { now: 0, async: 0 };
  const events: BootEvent[] = [];
  const logLines: string[] = [];
  let quiet: HttpServerHandle; // no logger
  let logged: HttpServerHandle; // pino at info
  let machines: MachineRegistry;

  const counting = (source: FileSource & PositionalFileSource): FileSource & PositionalFileSource => ({
    stat: (p) => source.stat(p),
    open: (p, r) => source.open(p, r),
    reader: (p) => {
      calls.async++;
      return source.reader(p);
    },
    readerNow: (p) => {
      calls.now++;
      return source.readerNow(p);
    },
  });
  const start = async (logger?: pino.Logger) => {
    const st = await stat(isoPath);
    return startHttpServer({
      address: '127.0.0.1',
      port: 0,
      machines,
      image: {
        version: VERSION,
        source: counting(isoFileSource({ isoPath, isoSize: st.size, isoMtimeMs: st.mtimeMs })),
        kernel: KERNEL,
        initrd: INITRD,
        repoRoot: '',
      },
      onEvent: (e) => events.push(e),
      onStatus: async () => {},
      kickstartVars: { rootPasswordHash: '', osDisk: 'sda' },
      ...(logger ? { logger } : {}),
    });
  };

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'pxeflow-http-fast-'));
    isoPath = await tinyIso(join(tmp, `${VERSION}.iso`), files);
    await utimes(isoPath, MTIME, MTIME);
    machines = new MachineRegistry();
    machines.upsert({
      name: 'node1',
      hostname: 'node1',
      mac: '52:54:00:aa:00:01',
      ip: '127.0.0.1',
      bootMode: 'auto',
    });
    quiet = await start();
    logged = await start(pino({ level: 'info' }, { write: (line: string) => logLines.push(line) }));
    // the first request of a source opens its descriptor and reads the index (through fastify's route)
    for (const s of [quiet, logged]) await raw(s.port, lastly(get(`/image/${VERSION}/${SMALL_RPM}`)));
  });
  after(async () => {
    await quiet?.close();
    await logged?.close();
    await rm(tmp, { recursive: true, force: true });
  });
  beforeEach(() => {
    calls.now = 0;
    calls.async = 0;
    events.length = 0;
    syncReads.asyncUntil = 0;
  });

  it('answers like fastify’s route, byte for byte but the Date (200, 206, small and large bodies)', async () => {
    const base = `/image/${VERSION}`;
    const cases: Array<[string, string]> = [
      [SMALL_RPM, ''],
      [RPM, ''],
      [RPM, 'Range: bytes=1000-66535\r\n'],
      [RPM, 'Range: bytes=-100\r\n'],
      [KERNEL, 'Range: bytes=1048000-2097999\r\n'],
      [KERNEL, ''],
      ['repodata/repomd.xml', ''],
      [SMALL_RPM, 'Range: bytes=0-1,5-6\r\n'], // multiple ranges: the whole file
      [RPM, 'Range: bytes=0-99\r\nIf-Range: "nope"\r\n'], // stale If-Range: the whole file
    ];
    for (const server of [quiet, logged]) {
      for (const [path, extra] of cases) {
        calls.now = 0;
        calls.async = 0;
        // the same request twice on one connection: plain (fast path) and with a query (fastify's route), in
        // both orders, so each kind is seen keeping the connection alive and closing it
        const both = async (first: string, second: string) =>
          parseResponses(
            await raw(
              server.port,
              request(get(`${base}/${path}${first}`, extra)) + lastly(get(`${base}/${path}${second}`, extra)),
            ),
            ['GET', 'GET'],
          );
        const [fast, slowLast] = await both('', '?via=fastify');
        const [slow, fastLast] = await both('?via=fastify', '');
        assert.equal(calls.now, 2, `${path} ${extra}: fast path taken twice`);
        assert.equal(calls.async, 2, `${path} ${extra}: fastify's route twice`);
        const noDate = (p: Parsed) => p.head.filter((l) => !/^date:/i.test(l));
        assert.deepEqual(noDate(fast), noDate(slow), `${path} ${extra}: same head (keep-alive)`);
        assert.deepEqual(noDate(fastLast), noDate(slowLast), `${path} ${extra}: same head (closing)`);
        assert.ok(
          fast.body.equals(slow.body) && fastLast.body.equals(slow.body),
          `${path} ${extra}: same body`,
        );
        const data = files[path];
        const range = /bytes=(\d*)-(\d*)$/.exec(extra.split('\r\n')[0]);
        const expected =
          fast.status === 206 && range
            ? range[1] === ''
              ? data.subarray(data.length - Number(range[2]))
              : data.subarray(Number(range[1]), Number(range[2]) + 1)
            : data;
        assert.ok(fast.body.equals(expected), `${path} ${extra}: the file's bytes`);
        assert.equal(fast.status, range && !extra.includes('If-Range') && !extra.includes(',') ? 206 : 200);
      }
    }
  });

  it('emits the same boot events as fastify’s route', async () => {
    const base = `/image/${VERSION}`;
    for (const path of [KERNEL, INITRD, RPM, 'repodata/repomd.xml']) {
      await raw(
        quiet.port,
        request(get(`${base}/${path}`, 'Range: bytes=0-9\r\n')) + lastly(get(`${base}/${path}?q=1`)),
      );
    }
    assert.equal(calls.now, 4);
    const strip = (e: BootEvent) => ({ ...e, at: 0 });
    assert.deepEqual(
      events.map(strip),
      [KERNEL, KERNEL, INITRD, INITRD, RPM, RPM].map((path) => ({
        phase: path === KERNEL ? 'kernel' : path === INITRD ? 'initrd' : 'packages',
        at: 0,
        ip: '127.0.0.1',
        node: 'node1',
        mac: '52:54:00:aa:00:01',
        detail: path === RPM ? { path: `${base}/${path}`, file: path } : { path: `${base}/${path}` },
      })),
    );
  });

  it('writes fastify’s two log lines per request, numbered in one sequence with fastify’s', async () => {
    logLines.length = 0;
    const base = `/image/${VERSION}`;
    await raw(logged.port, request(get(`${base}/${RPM}`)) + lastly(get(`${base}/${RPM}?q=1`)));
    await sleep(20);
    // pipelined: the second request may be read before the first one's response is complete
    const all = logLines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const ids = [...new Set(all.map((l) => l.reqId as string))];
    assert.equal(ids.length, 2, 'two request ids');
    for (const id of ids) assert.match(id, /^req-[0-9a-z]+$/);
    const lines = ids.flatMap((id) => all.filter((l) => l.reqId === id));
    assert.deepEqual(
      lines.map((l) => l.msg),
      ['incoming request', 'request completed', 'incoming request', 'request completed'],
    );
    const shape = (l: Record<string, unknown>) => {
      const { time: _t, reqId: _r, responseTime: _rt, ...rest } = l;
      return JSON.stringify({ ...rest, req: rest.req ? { ...(rest.req as object), url: '' } : undefined });
    };
    assert.equal(shape(lines[0]), shape(lines[2]), 'incoming request: same fields');
    assert.equal(shape(lines[1]), shape(lines[3]), 'request completed: same fields');
    assert.equal((lines[0].req as { url: string }).url, `${base}/${RPM}`);
  });

  it('declines what it does not handle; fastify answers it as before', async () => {
    const base = `/image/${VERSION}`;
    const etag = parseResponses(await raw(quiet.port, lastly(get(`${base}/${RPM}`))), ['GET'])[0].headers
      .etag;
    calls.now = 0;
    events.length = 0;
    const asks: Array<[string, number, string?]> = [
      [`HEAD ${base}/${RPM} HTTP/1.1\r\nHost: x\r\n`, 200, 'HEAD'],
      [get(`${base}/${RPM}`, `If-None-Match: ${etag}\r\n`), 304],
      [get(`${base}/${RPM}`, 'Range: bytes=999999999-\r\n'), 416],
      [get(`${base}/missing.rpm`), 404],
      [get(`${base}/Packages/../${RPM}`), 400],
      [get(`${base}/Packages/%2E%2E/${RPM}`), 400],
      [get(`${base}/./${RPM}`), 400],
      [get(`/image/other/${RPM}`), 404],
      [get(`${base}/${'a/'.repeat(200)}x.rpm`), 404],
    ];
    for (const [req, status, method] of asks) {
      const [r] = parseResponses(await raw(quiet.port, lastly(req)), [method ?? 'GET']);
      assert.equal(r.status, status, req);
    }
    assert.equal(events.length, 0, 'no event for any of them');
    assert.ok(calls.now <= 3, `only 304/416/missing reach readerNow (${calls.now})`);
  });

  it('serves pipelined requests in order, fast and slow mixed', async () => {
    const base = `/image/${VERSION}`;
    const buf = await raw(
      quiet.port,
      request(get(`${base}/${RPM}`, 'Range: bytes=0-65535\r\n')) +
        request(get('/healthz')) +
        request(get(`${base}/${KERNEL}`)) +
        request(get(`${base}/${RPM}?q`, 'Range: bytes=10-19\r\n')) +
        lastly(get(`${base}/${SMALL_RPM}`, 'Range: bytes=5-9\r\n')),
    );
    const r = parseResponses(buf, ['GET', 'GET', 'GET', 'GET', 'GET']);
    assert.deepEqual(
      r.map((x) => x.status),
      [206, 200, 200, 206, 206],
    );
    assert.ok(r[0].body.equals(files[RPM].subarray(0, 65536)));
    assert.equal(r[1].body.toString(), '{"ok":true}');
    assert.ok(r[2].body.equals(files[KERNEL]));
    assert.ok(r[3].body.equals(files[RPM].subarray(10, 20)));
    assert.ok(r[4].body.equals(files[SMALL_RPM].subarray(5, 10)));
  });

  it('backs off to the thread pool after consecutive slow reads, then reads in place again', async () => {
    const base = `/image/${VERSION}`;
    const one = async () =>
      parseResponses(await raw(quiet.port, lastly(get(`${base}/${RPM}`, 'Range: bytes=0-65535\r\n'))), [
        'GET',
      ])[0];
    const { count } = syncReads;
    assert.equal((await one()).status, 206);
    assert.equal(syncReads.count, count + 1, 'read in place');

    // one slow read (preempted) is not enough; two in a row are
    syncReads.record(performance.now() - 10 * syncReads.SLOW_MS);
    syncReads.record(performance.now());
    assert.equal(syncReads.asyncUntil, 0);
    const backoffs = syncReads.backoffs;
    syncReads.record(performance.now() - 10 * syncReads.SLOW_MS);
    syncReads.record(performance.now() - 10 * syncReads.SLOW_MS);
    assert.equal(syncReads.backoffs, backoffs + 1);
    assert.ok(syncReads.asyncUntil > performance.now());

    calls.now = 0;
    calls.async = 0;
    events.length = 0;
    const r = await one();
    assert.equal(r.status, 206);
    assert.ok(r.body.equals(files[RPM].subarray(0, 65536)));
    assert.deepEqual(calls, { now: 0, async: 1 }, 'backing off: fastify’s route, thread-pool reads');
    assert.equal(events.length, 1, 'the event all the same');

    syncReads.asyncUntil = performance.now() - 1; // the back-off is over
    await one();
    assert.equal(calls.now, 1);
  });

  it('survives clients that send requests and vanish (small bodies), pool bounded', async () => {
    const base = `/image/${VERSION}`;
    await Promise.all(
      Array.from(
        { length: 100 },
        (_, i) =>
          new Promise<void>((resolve) => {
            const s = connect(quiet.port, '127.0.0.1');
            s.on('error', () => {});
            s.on('close', () => resolve());
            s.write(
              request(
                get(`${base}/${RPM}`, `Range: bytes=${i * 100}-${i * 100 + SMALL_CHUNK - 1}\r\n`),
              ).repeat(4),
            );
            if (i % 2) s.resetAndDestroy();
            else s.once('data', () => s.resetAndDestroy());
          }),
      ),
    );
    const [r] = parseResponses(await raw(quiet.port, lastly(get(`${base}/${RPM}`))), ['GET']);
    assert.equal(r.status, 200);
    assert.ok(r.body.equals(files[RPM]));
    assert.ok(bufferPools.small.idle <= 256);
  });

  it('a fast path that throws leaves the request to fastify and the process alive', async () => {
    const st = await stat(isoPath);
    const source = isoFileSource({ isoPath, isoSize: st.size, isoMtimeMs: st.mtimeMs });
    let throws = 0;
    const throwing: FileSource & PositionalFileSource = {
      stat: (p) => source.stat(p),
      open: (p, r) => source.open(p, r),
      reader: (p) => source.reader(p),
      readerNow: () => {
        throws++;
        throw new Error('boom');
      },
    };
    const server = await startHttpServer({
      address: '127.0.0.1',
      port: 0,
      machines,
      image: {
        version: VERSION,
        source: throwing,
        kernel: KERNEL,
        initrd: INITRD,
        repoRoot: '',
      },
      onStatus: async () => {},
      kickstartVars: { rootPasswordHash: '', osDisk: 'sda' },
    });
    try {
      const [r] = parseResponses(
        await raw(server.port, lastly(get(`/image/${VERSION}/${RPM}`, 'Range: bytes=0-9\r\n'))),
        ['GET'],
      );
      assert.equal(throws, 1);
      assert.equal(r.status, 206);
      assert.ok(r.body.equals(files[RPM].subarray(0, 10)));
    } finally {
      await server.close();
    }
  });

  it('sees an ISO changed on disk at once (404), and serves it again once restored', async () => {
    const base = `/image/${VERSION}`;
    const later = new Date(Date.now() + 60_000);
    await utimes(isoPath, later, later);
    const [gone] = parseResponses(await raw(quiet.port, lastly(get(`${base}/${RPM}`))), ['GET']);
    assert.equal(gone.status, 404);
    assert.equal(events.length, 0);
    await utimes(isoPath, MTIME, MTIME);
    // the first request after the change reopens through fastify's route, the next is fast again
    for (let i = 0; i < 2; i++) {
      const [back] = parseResponses(await raw(quiet.port, lastly(get(`${base}/${RPM}`))), ['GET']);
      assert.equal(back.status, 200);
      assert.ok(back.body.equals(files[RPM]));
    }
    assert.ok(calls.now >= 2);
  });
});
