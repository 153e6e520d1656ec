// One thread of the TFTP transfer pool (pool.ts): runs the transfers the main thread hands it, each on its own
// UDP socket (the transfer's TID) with the same state machine as in-process transfers (transfer.ts). The main
// thread keeps everything else (the well-known port, parsing, resolving, negotiation, events); it feeds file
// bytes on request (a pull per chunk, so a transfer never holds more than a chunk or two) and hears back when a
// transfer started (its socket is bound), ended, or could not start.
import dgram from 'node:dgram';
import { Readable } from 'node:stream';
import { parentPort } from 'node:worker_threads';
import type { Negotiated } from './packet.ts';
import { type Peer, type TftpFile, Transfer, type TransferResult } from './transfer.ts';

/** main → worker */
export type ToWorker =
  | {
      t: 'start';
      id: number;
      /** the server's address: the transfer socket binds it with an ephemeral port */
      address: string;
      family: 4 | 6;
      client: Peer;
      negotiated: Negotiated;
      timeoutMs: number;
      retries: number;
      size: number;
      /** the whole file for in-memory files; absent: the bytes are pulled from the main thread */
      data?: Uint8Array;
      debug: boolean;
    }
  | { t: 'chunk'; id: number; data: Uint8Array }
  | { t: 'end'; id: number }
  | { t: 'fail'; id: number; message: string }
  | { t: 'abort'; id: number; reason: string }
  | { t: 'sync'; seq: number }
  | { t: 'close' };

/** worker → main */
export type FromWorker =
  | { t: 'ready' }
  | { t: 'started'; id: number }
  | { t: 'bind-failed'; id: number; message: string }
  | { t: 'pull'; id: number }
  | { t: 'done'; id: number; result: TransferResult }
  | { t: 'synced'; seq: number }
  | { t: 'log'; level: 'debug' | 'warn'; obj: object; msg?: string }
  | { t: 'closed' };

/** bytes of file data a transfer asks the main thread for ahead of its reads (on top of the chunk in hand) */
const READ_AHEAD = 128 * 1024;

interface Running {
  transfer?: Transfer;
  feed?: Readable;
  closed: Promise<void>;
  aborted?: string;
}

const port = parentPort;
if (!port) throw new Error('netboot/tftp/worker.ts runs as a worker thread of the TFTP server');
const post = (m: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer);
const running = new Map<number, Running>();

function start(m: Extract<ToWorker, { t: 'start' }>): void {
  const { id, family } = m;
  const logger = {
    debug: (obj: object, msg?: string) => {
      if (m.debug) post({ t: 'log', level: 'debug', obj, msg });
    },
    warn: (obj: object, msg?: string) => post({ t: 'log', level: 'warn', obj, msg }),
  };
  // the client's address is always an IP literal: no per-send DNS lookup
  const socket = dgram.createSocket({
    type: family === 6 ? 'udp6' : 'udp4',
    lookup: (host, _opts, done) => done(null, host, family),
  });
  const entry: Running = { closed: new Promise((r) => socket.once('close', () => r())) };
  running.set(id, entry);
  let file: TftpFile;
  if (m.data) file = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
  else
    file = {
      size: m.size,
      open: () => {
        entry.feed = new Readable({
          highWaterMark: READ_AHEAD,
          read: () => post({ t: 'pull', id }),
        });
        return entry.feed;
      },
    };
  const onBindError = (err: Error) => {
    running.delete(id);
    socket.close();
    post({ t: 'bind-failed', id, message: err.message });
  };
  socket.once('error', onBindError);
  socket.bind({ address: m.address, port: 0 }, () => {
    socket.off('error', onBindError);
    const transfer = new Transfer({
      socket,
      client: m.client,
      file,
      negotiated: m.negotiated,
      timeoutMs: m.timeoutMs,
      retries: m.retries,
      logger,
      onDone: (result) => {
        running.delete(id);
        entry.feed?.destroy();
        post({ t: 'done', id, result });
      },
    });
    entry.transfer = transfer;
    post({ t: 'started', id });
    transfer.start();
    // close() or an abort that arrived while the socket was binding
    if (entry.aborted) transfer.abort(entry.aborted);
  });
}

let closing = false;

port.on('message', (m: ToWorker) => {
  switch (m.t) {
    case 'start':
      if (closing) post({ t: 'bind-failed', id: m.id, message: 'server shutting down' });
      else start(m);
      break;
    case 'chunk': {
      const feed = running.get(m.id)?.feed;
      if (feed && !feed.destroyed)
        feed.push(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
      break;
    }
    case 'end':
      running.get(m.id)?.feed?.push(null);
      break;
    case 'fail':
      running.get(m.id)?.feed?.destroy(new Error(m.message));
      break;
    case 'abort': {
      const entry = running.get(m.id);
      if (!entry) break;
      if (entry.transfer) entry.transfer.abort(m.reason);
      else entry.aborted = m.reason;
      break;
    }
    case 'sync':
      // answered after this turn's I/O: an ACK that reached a transfer socket before the main thread asked is
      // handled (and its `done` posted) first, so the main thread sees events in the order the client caused them
      setImmediate(() => post({ t: 'synced', seq: m.seq }));
      break;
    case 'close': {
      closing = true;
      const waits: Promise<void>[] = [];
      for (const entry of running.values()) {
        if (entry.transfer) entry.transfer.abort('server shutting down');
        else entry.aborted = 'server shutting down';
        waits.push(entry.closed);
      }
      void Promise.all(waits).then(() => post({ t: 'closed' }));
      break;
    }
  }
});

post({ t: 'ready' });
