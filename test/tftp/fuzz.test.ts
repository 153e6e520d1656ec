// Property test: random and malformed datagrams thrown at the server port and at a live transfer's port never
// crash the server, leave no transfer behind, and a real fetch works afterwards.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import fc from 'fast-check';
import { dirResolver, startTftpServer, type TftpServer } from '../../netboot/tftp/index.ts';
import { encodeRequest } from '../../netboot/tftp/packet.ts';
import { makeFiles, RawSocket, rawFetch } from './helpers.ts';

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const text = fc.string({ maxLength: 40 });

/** Datagrams a broken or hostile client might send. */
const datagram = fc.oneof(
  fc.uint8Array({ maxLength: 1500 }).map((a) => Buffer.from(a)),
  fc.constant(Buffer.alloc(0)),
  fc.integer({ min: 0, max: 0xffff }).map((op) => u16(op)),
  // requests with arbitrary fields, options, missing or extra NULs
  fc
    .record({
      op: fc.constantFrom(1, 2),
      file: fc.oneof(text, fc.constantFrom('file.bin', '../file.bin', '/file.bin', 'a\\..\\b', '')),
      mode: fc.oneof(text, fc.constantFrom('octet', 'OCTET', 'netascii', 'mail')),
      options: fc.array(
        fc.tuple(fc.oneof(text, fc.constantFrom('blksize', 'TSIZE', 'windowsize', 'timeout')), text),
        {
          maxLength: 40,
        },
      ),
      terminated: fc.boolean(),
    })
    .map(({ op, file, mode, options, terminated }) => {
      const body = [file, mode, ...options.flat()].join('\0') + (terminated ? '\0' : '');
      return Buffer.concat([u16(op), Buffer.from(body)]);
    }),
  // a valid RRQ cut short anywhere
  fc
    .integer({ min: 0, max: 40 })
    .map((cut) => encodeRequest('rrq', 'file.bin', 'octet', { blksize: 1468, tsize: 0 }).subarray(0, cut)),
  // a huge option list
  fc
    .integer({ min: 17, max: 4000 })
    .map((n) => Buffer.concat([u16(1), Buffer.from(`file.bin\0octet\0${'blksize\x00512\x00'.repeat(n)}`)])),
  // ACK/DATA/ERROR/OACK with random payloads
  fc
    .tuple(fc.constantFrom(3, 4, 5, 6), fc.uint8Array({ maxLength: 600 }))
    .map(([op, rest]) => Buffer.concat([u16(op), Buffer.from(rest)])),
);

describe('tftp server under random datagrams', () => {
  let server: TftpServer;
  let files: Awaited<ReturnType<typeof makeFiles>>;

  before(async () => {
    files = await makeFiles({ 'file.bin': 50_000 });
    server = await startTftpServer({
      address: '127.0.0.1',
      port: 0,
      timeoutMs: 50,
      retries: 1,
      resolve: dirResolver(files.dir),
    });
  });
  after(async () => {
    await server?.close();
    await files?.cleanup();
  });

  test('never crashes, frees every transfer, and still serves real clients', async () => {
    const fuzzer = await RawSocket.open();
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(datagram, { minLength: 1, maxLength: 8 }), async (packets) => {
          for (const p of packets) await fuzzer.send(p, server.port);
        }),
        { numRuns: 300 },
      );
      // the same garbage at a live transfer's own port (from a foreign port: ERROR 5, transfer unharmed)
      const samples = fc.sample(datagram, 200);
      const got = await rawFetch(server.port, 'file.bin', {
        onFirstData: async (tid) => {
          for (const p of samples) await fuzzer.send(p, tid.port, tid.address);
        },
      });
      assert.ok(got.data.equals(files.files['file.bin']));
    } finally {
      fuzzer.close();
    }
    // transfers started by fuzzed RRQs time out (50 ms, one retry) and are freed
    for (let i = 0; i < 100 && server.stats().active > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.equal(server.stats().active, 0);
    const out = join(files.dir, 'after-fuzz');
    await execa('atftp', ['--get', '-r', 'file.bin', '-l', out, '127.0.0.1', String(server.port)], {
      timeout: 20_000,
    });
    assert.ok((await readFile(out)).equals(files.files['file.bin']));
  });
});
