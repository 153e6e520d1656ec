// Transfers on worker threads (netboot/tftp/pool.ts): they spread over the workers, the boot events keep the
// order a client caused them in, a worker that dies fails only its own transfers and is replaced, close() ends
// the threads and leaves no descriptor behind, and workers: 0 still serves in the main thread.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Readable } from 'node:stream';
import { dirResolver, startTftpServer, type TftpServer } from '../../netboot/tftp/index.ts';
import { encodeError, encodeRequest, OP } from '../../netboot/tftp/packet.ts';
import { TFTP_INTERNALS, type TftpInternals } from '../../netboot/tftp/server.ts';
import type { BootEvent } from '../../netboot/types.ts';
import { errorText, makeFiles, opcode, RawSocket, rawFetch } from './helpers.ts';

const internals = (s: TftpServer) => (s as TftpServer & { [TFTP_INTERNALS]: TftpInternals })[TFTP_INTERNALS];
const fds = () => readdirSync('/proc/self/fd').length;

async function until(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!ok()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Sends an RRQ and returns once the first DATA arrived (the transfer then waits for an ACK). */
async function stalled(port: number, file: string) {
  const client = await RawSocket.open();
  await client.send(encodeRequest('rrq', file, 'octet'), port);
  const d = await client.next();
  assert.ok(d && opcode(d.msg) === OP.DATA, 'first DATA');
  return {
    client,
    /** ends the transfer from the client's side (ERROR) and closes the socket */
    cancel: async () => {
      await client.send(encodeError(0, 'cancelled'), d.from.port);
      client.close();
    },
  };
}

describe('tftp transfer pool (worker threads)', () => {
  let files: Awaited<ReturnType<typeof makeFiles>>;
  let server: TftpServer;
  const events: BootEvent[] = [];

  before(async () => {
    files = await makeFiles({ 'a.bin': 3000, 'b.bin': 5000, 'big.bin': 2 * 1024 * 1024 });
    server = await startTftpServer({
      address: '127.0.0.1',
      port: 0,
      workers: 2,
      timeoutMs: 5000,
      resolve: async (path, client) => {
        // an in-memory file and a stream that fails half-way take the same road as files on disk
        if (path === 'memory.txt') return Buffer.from('generated in the main thread\n');
        if (path === 'broken.bin')
          return {
            size: 100_000,
            open: () =>
              Readable.from(
                (async function* () {
                  yield Buffer.alloc(20_000);
                  throw new Error('disk on fire');
                })(),
              ),
          };
        return dirResolver(files.dir)(path, client);
      },
      classify: (p) => (p === 'a.bin' ? 'kernel' : p === 'b.bin' ? 'initrd' : undefined),
      onEvent: (e) => events.push(e),
    });
  });
  after(async () => {
    await server?.close();
    await files?.cleanup();
  });

  test('the server starts the configured number of worker threads', () => {
    const workers = internals(server).workers();
    assert.equal(workers.length, 2);
    assert.ok(workers.every((w) => w.ready));
  });

  test('concurrent transfers spread over the workers', async () => {
    const clients = await Promise.all([1, 2, 3, 4].map(() => stalled(server.port, 'big.bin')));
    try {
      assert.deepEqual(
        internals(server)
          .workers()
          .map((w) => w.active),
        [2, 2],
      );
    } finally {
      for (const c of clients) await c.cancel();
    }
    await until('the cancelled transfers ended', () => server.stats().active === 0);
  });

  test('bytes of files on disk, in memory and of a failing stream come through the workers', async () => {
    const big = await rawFetch(server.port, 'big.bin', { options: { blksize: 1468, windowsize: 16 } });
    assert.ok(big.data.equals(files.files['big.bin']));
    const mem = await rawFetch(server.port, 'memory.txt');
    assert.equal(mem.data.toString(), 'generated in the main thread\n');
    await assert.rejects(rawFetch(server.port, 'broken.bin'), /ERROR 0 read error: disk on fire/);
  });

  test('one client fetching files one after another: each file ends before the next starts (events in order)', async () => {
    events.length = 0;
    for (let i = 0; i < 25; i++) {
      await rawFetch(server.port, 'a.bin');
      await rawFetch(server.port, 'b.bin');
    }
    await until('every transfer reported', () => events.length === 100);
    const seen = events.map((e) => `${e.phase} ${e.detail?.outcome}`);
    const expected = Array.from({ length: 25 }, () => [
      'kernel started',
      'kernel completed',
      'initrd started',
      'initrd completed',
    ]).flat();
    assert.deepEqual(seen, expected);
  });

  test('a worker killed mid-transfer fails its transfer, is replaced, and the server keeps serving', async () => {
    events.length = 0;
    const before = server.stats();
    const { client } = await stalled(server.port, 'a.bin');
    try {
      const busy = internals(server)
        .workers()
        .find((w) => w.active === 1);
      assert.ok(busy, 'one worker runs the transfer');
      const threadId = busy.worker.threadId;
      await busy.worker.terminate();
      await until('the transfer is counted as failed', () => server.stats().failed === before.failed + 1);
      assert.equal(server.stats().active, 0);
      assert.deepEqual(
        events.map((e) => e.detail?.outcome),
        ['started', 'failed'],
      );
      await until('a new worker is ready', () => {
        const w = internals(server).workers();
        return w.length === 2 && w.every((x) => x.ready) && !w.some((x) => x.worker.threadId === threadId);
      });
    } finally {
      client.close();
    }
    // both workers serve again
    const got = await Promise.all([1, 2, 3, 4].map(() => rawFetch(server.port, 'b.bin')));
    for (const g of got) assert.ok(g.data.equals(files.files['b.bin']));
  });
});

describe('tftp transfer pool lifecycle', () => {
  test('close() aborts transfers in the workers, ends the threads and leaves no descriptor open', async () => {
    const files = await makeFiles({ 'f.bin': 100_000 });
    // settle whatever this process opens once (tsx, the first worker's loader)
    const warm = await startTftpServer({
      address: '127.0.0.1',
      port: 0,
      workers: 2,
      resolve: dirResolver(files.dir),
    });
    await rawFetch(warm.port, 'f.bin');
    await warm.close();
    await new Promise((r) => setTimeout(r, 200));
    const fdsBefore = fds();
    const server = await startTftpServer({
      address: '127.0.0.1',
      port: 0,
      workers: 2,
      resolve: dirResolver(files.dir),
    });
    const threads = internals(server).workers();
    const exited = threads.map((w) => new Promise((r) => w.worker.once('exit', r)));
    const clients: RawSocket[] = [];
    try {
      for (let i = 0; i < 4; i++) clients.push((await stalled(server.port, 'f.bin')).client);
      for (let i = 0; i < 4; i++) await rawFetch(server.port, 'f.bin');
      await server.close();
      for (const c of clients) {
        const d = await c.next();
        assert.ok(d && opcode(d.msg) === OP.ERROR, 'ERROR to every client');
        assert.match(errorText(d.msg), /shutting down/);
      }
      await Promise.all(exited);
      assert.deepEqual(internals(server).workers(), []);
      assert.equal(server.stats().active, 0);
      assert.equal(server.stats().failed, 4);
      assert.equal(server.stats().completed, 4);
    } finally {
      for (const c of clients) c.close();
      await server.close();
      await files.cleanup();
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(fds(), fdsBefore, 'descriptors after close');
  });

  test('workers: 0 runs transfers in the main thread', async () => {
    const files = await makeFiles({ 'f.bin': 300_000 });
    const server = await startTftpServer({
      address: '127.0.0.1',
      port: 0,
      workers: 0,
      resolve: dirResolver(files.dir),
    });
    try {
      assert.deepEqual(internals(server).workers(), []);
      const got = await rawFetch(server.port, 'f.bin', { options: { blksize: 1468, windowsize: 16 } });
      assert.ok(got.data.equals(files.files['f.bin']));
      await until('the transfer is counted', () => server.stats().completed === 1);
    } finally {
      await server.close();
      await files.cleanup();
    }
  });
});
