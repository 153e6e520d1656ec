// Read-only TFTP server for the controller (RFC 1350 + options from RFC 2347/2348/2349/7440).
//
// Why our own and not an npm package: no maintained npm TFTP server is correct under loss. The `tftp` package
// (0.1.2, unmaintained) was measured in NOTES.md: a retransmission storm on one lost block or a duplicate ACK
// (0 of 3 transfers finished at 1% loss), a process crash on a missing file, no source-port check (a spoofed
// ERROR aborts a transfer) and case-sensitive options. A read-only server is a few hundred lines: the codec is in
// packet.ts, one transfer's state machine in transfer.ts, request handling and events here.
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import type { BootEvent, BootPhase } from '../types.ts';
import { encodeError, ERR, MAX_REQUEST_BYTES, negotiate, parsePacket, TftpProtocolError } from './packet.ts';
import { type JobHandlers, type PoolJob, type RunningTransfer, TransferPool } from './pool.ts';
import { fileSize, type Peer, type TftpFile, Transfer, type TransferResult } from './transfer.ts';

export type { Peer, TftpFile } from './transfer.ts';

/** Finds the file for a normalised path ("pxelinux.cfg/01-52-54-00-12-34-56"); undefined = not found. */
export type TftpResolver = (path: string, client: Peer) => Promise<TftpFile | undefined>;

/** Maps a served path to the boot phase it stands for; undefined = not worth an event. */
export type TftpClassifier = (path: string) => BootPhase | undefined;

export interface TftpLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface TftpServerOptions {
  /** the provisioning address; the wildcard address is refused */
  address: string;
  port?: number;
  resolve: TftpResolver;
  onEvent?: (event: BootEvent) => void;
  classify?: TftpClassifier;
  /** cap on the negotiated block size (default 1468: a 1500-byte MTU without IP fragmentation) */
  maxBlksize?: number;
  /** cap on the negotiated RFC 7440 window (default 16) */
  maxWindowsize?: number;
  /**
   * cap on blksize × windowsize, the bytes one window puts in flight (default 64 KiB; the window is shrunk to fit).
   * A window arrives as one burst, so it must fit the client's receive buffer even when the client does not run
   * during the burst: Linux's default (212,992 bytes) holds only 15 datagrams of 8 KiB once each is split into
   * six IP fragments, so 8192 × 16 loses a block of nearly every window and each loss costs a 1 s timeout. 64 KiB
   * leaves room for a resent window overlapping a new one, and does not cut the 512/1468 × 16 windows PXE uses.
   */
  maxWindowBytes?: number;
  /** retransmission timeout when the client sets none (default 1000 ms) */
  timeoutMs?: number;
  /** silent timeouts before a transfer gives up (default 5) */
  retries?: number;
  /** concurrent transfers; more get ERROR 0 "server busy" (default 1000) */
  maxTransfers?: number;
  /**
   * worker threads that run the transfers (pool.ts); 0 runs them in the main thread. Default: the environment's
   * PXEFLOW_TFTP_WORKERS, else 0. With iPXE (the default boot) TFTP carries only the ~80 KB bootloader per node,
   * and each worker thread costs ~30 MB of controller memory; the pool pays off for legacy pxelinux (kernel and
   * initrd over TFTP) with many nodes at once on a multi-core host: 1.1–1.5× at 32 clients (bench/tftp.bench.ts).
   */
  workers?: number;
  logger?: TftpLogger;
}

/** Counters since start; packetsSent and retransmits are added when a transfer ends. */
export interface TftpStats {
  active: number;
  started: number;
  completed: number;
  failed: number;
  refused: number;
  packetsSent: number;
  retransmits: number;
}

export interface TftpServer {
  readonly address: string;
  readonly port: number;
  stats(): TftpStats;
  /** stops listening, aborts active transfers (ERROR 0 to their clients) and closes every socket */
  close(): Promise<void>;
}

const silentLogger: TftpLogger = { debug() {}, info() {}, warn() {} };

/** The default size of the transfer pool (see TftpServerOptions.workers). */
export function defaultTftpWorkers(): number {
  const env = process.env.PXEFLOW_TFTP_WORKERS;
  if (env !== undefined && env.trim() !== '' && Number.isInteger(Number(env)) && Number(env) >= 0) {
    return Number(env);
  }
  return 0;
}

/** A pool size worth opting into on this host (PXEFLOW_TFTP_WORKERS): one thread per core, at most 4. */
export function tftpPoolSizeForHost(): number {
  const cores = availableParallelism();
  return cores > 1 ? Math.min(4, cores) : 0;
}

/** Internals for tests and diagnostics: the transfer pool's threads (empty when transfers run in-process). */
export const TFTP_INTERNALS: unique symbol = Symbol('pxeflow.tftp.internals');
export interface TftpInternals {
  workers(): ReturnType<TransferPool['workers']>;
}

/**
 * Makes a client-supplied file name safe: backslashes count as separators, leading "/" and "." segments go,
 * any ".." segment or control character is an access violation. The result never starts with "/".
 */
export function normalizeTftpPath(raw: string): string {
  if (/[\x00-\x1f\x7f]/.test(raw)) {
    throw new TftpProtocolError(ERR.ACCESS_VIOLATION, 'control character in file name');
  }
  const segments = raw.split(/[/\\]+/).filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw new TftpProtocolError(ERR.ACCESS_VIOLATION, '".." in file name');
  if (segments.length === 0) throw new TftpProtocolError(ERR.NOT_FOUND, 'empty file name');
  return segments.join('/');
}

/** pxelinux.cfg/* → pxe-config, iPXE/pxelinux binaries → bootloader, *vmlinuz* → kernel, *initrd* → initrd. */
export function defaultClassifier(path: string): BootPhase | undefined {
  const lower = path.toLowerCase();
  if (lower.startsWith('pxelinux.cfg/')) return 'pxe-config';
  if (/\.(kpxe|efi|c32)$/.test(lower) || /(^|\/)l?pxelinux\.0$/.test(lower)) return 'bootloader';
  if (lower.includes('vmlinuz')) return 'kernel';
  if (lower.includes('initrd')) return 'initrd';
  return undefined;
}

/** "pxelinux.cfg/01-52-54-00-ab-cd-ef" → "52:54:00:ab:cd:ef" (ARP type 1 = Ethernet). */
export function macFromPxelinuxPath(path: string): string | undefined {
  const m = /^pxelinux\.cfg\/01-([0-9a-f]{2}(?:-[0-9a-f]{2}){5})$/i.exec(path);
  return m ? m[1].toLowerCase().replaceAll('-', ':') : undefined;
}

export async function startTftpServer(options: TftpServerOptions): Promise<TftpServer> {
  const { address, resolve } = options;
  const family = isIP(address);
  if (family === 0) throw new Error(`TFTP: address "${address}" is not an IP address`);
  if (address === '0.0.0.0' || address === '::') {
    throw new Error(`TFTP: refusing to bind the wildcard address ${address}; give the provisioning address`);
  }
  const type = family === 6 ? 'udp6' : 'udp4';
  const limits = {
    maxBlksize: Math.max(8, Math.min(options.maxBlksize ?? 1468, 65464)),
    maxWindowsize: Math.max(1, Math.min(options.maxWindowsize ?? 16, 65535)),
    maxWindowBytes: Math.max(1, options.maxWindowBytes ?? 64 * 1024),
  };
  const timeoutMs = options.timeoutMs ?? 1000;
  const retries = options.retries ?? 5;
  const maxTransfers = options.maxTransfers ?? 1000;
  const classify = options.classify ?? defaultClassifier;
  const logger = options.logger ?? silentLogger;
  const counters = { started: 0, completed: 0, failed: 0, refused: 0, packetsSent: 0, retransmits: 0 };
  /** client "address:port" → its transfer; a key is reserved while the resolver runs */
  const active = new Map<string, { run?: RunningTransfer }>();
  let closing = false;

  const main = dgram.createSocket({ type });
  const port = await bindSocket(main, address, options.port ?? 69).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`TFTP: cannot bind ${address}:${options.port ?? 69}: ${describeBindError(err)}`);
  });
  const workers = Math.max(0, Math.floor(options.workers ?? defaultTftpWorkers()));
  let pool: TransferPool | undefined;
  if (workers > 0) {
    const debug = (logger as { isLevelEnabled?: (l: string) => boolean }).isLevelEnabled?.('debug') ?? true;
    pool = new TransferPool(workers, address, family as 4 | 6, logger, debug);
    if (!(await pool.start())) {
      logger.warn({ workers }, 'tftp: transfer workers did not start; transfers run in the main thread');
      pool = undefined;
    }
  }

  /** One transfer in this thread: its own socket (TID), bound before the first packet. */
  const runInline = (job: PoolJob, handlers: JobHandlers): RunningTransfer => {
    // the client's address is always the IP literal the request came from: resolving it on every send (the
    // default lookup goes through dns.lookup and a nextTick per packet) buys nothing
    const socket = dgram.createSocket({ type, lookup: (host, _opts, done) => done(null, host, family) });
    const ended = new Promise<void>((r) => socket.once('close', () => r()));
    let transfer: Transfer | undefined;
    let aborted: string | undefined;
    bindSocket(socket, address, 0).then(
      () => {
        if (closing) return void socket.close();
        transfer = new Transfer({ socket, ...job, logger, onDone: (r) => handlers.ended(r) });
        handlers.started();
        transfer.start();
        if (aborted) transfer.abort(aborted);
      },
      (err: Error) => {
        socket.close();
        handlers.refused(err);
      },
    );
    return {
      abort: (reason) => {
        if (transfer) transfer.abort(reason);
        else aborted = reason;
      },
      ended,
    };
  };

  const emit = (path: string, client: Peer, detail: BootEvent['detail']) => {
    const phase = classify(path);
    if (!phase || !options.onEvent) return;
    const event: BootEvent = { phase, ip: client.address, at: Date.now(), detail: { file: path, ...detail } };
    const mac = macFromPxelinuxPath(path);
    if (mac) event.mac = mac;
    try {
      options.onEvent(event);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'tftp: event listener threw');
    }
  };

  const refuse = (to: Peer, code: number, message: string) => {
    if (closing) return; // the main socket may already be closed
    counters.refused++;
    main.send(encodeError(code, message), to.port, to.address, () => {});
  };

  const serve = async (file: string, mode: string, opts: Map<string, string>, client: Peer) => {
    const key = `${client.address}:${client.port}`;
    if (active.has(key)) return; // a retransmitted RRQ: the running transfer already answers it
    if (active.size >= maxTransfers) return refuse(client, ERR.UNDEFINED, 'server busy, try again');
    if (mode === 'netascii')
      return refuse(client, ERR.UNDEFINED, 'netascii mode is not supported; use octet');
    if (mode !== 'octet') return refuse(client, ERR.ILLEGAL_OPERATION, `unknown transfer mode "${mode}"`);
    const path = normalizeTftpPath(file);
    const slot: { run?: RunningTransfer } = {};
    active.set(key, slot);
    // (with workers) this client's earlier transfers report their end before this one starts
    const synced = pool?.sync(client.address);
    let content: TftpFile | undefined;
    try {
      content = await resolve(path, client);
      await synced;
    } catch (err) {
      active.delete(key);
      logger.warn({ path, client, err: (err as Error).message }, 'tftp: resolver failed');
      return refuse(client, ERR.UNDEFINED, 'internal error while opening the file');
    }
    if (closing) return;
    if (!content) {
      active.delete(key);
      logger.debug({ path, client }, 'tftp: file not found');
      return refuse(client, ERR.NOT_FOUND, 'file not found');
    }
    const size = fileSize(content);
    if (!Number.isSafeInteger(size) || size < 0) {
      active.delete(key);
      logger.warn({ path, size }, 'tftp: resolver returned an invalid size');
      return refuse(client, ERR.UNDEFINED, 'internal error: invalid file size');
    }
    if (closing) return;
    const negotiated = negotiate(opts, size, limits);
    const detail = { blksize: negotiated.blksize, windowsize: negotiated.windowsize };
    const handlers: JobHandlers = {
      // the transfer's own TID is bound; its first packet leaves now
      started: () => {
        counters.started++;
        emit(path, client, { ...detail, bytes: size, outcome: 'started' });
      },
      refused: (err) => {
        active.delete(key);
        logger.warn({ err: err.message }, 'tftp: cannot bind a transfer socket');
        refuse(client, ERR.UNDEFINED, 'server cannot open a transfer socket');
      },
      ended: (r: TransferResult) => {
        active.delete(key);
        counters.packetsSent += r.packets;
        counters.retransmits += r.retransmits;
        if (r.ok) counters.completed++;
        else counters.failed++;
        logger.debug({ path, client, ...r }, 'tftp: transfer ended');
        emit(path, client, { ...detail, bytes: r.bytes, outcome: r.ok ? 'completed' : 'failed' });
      },
    };
    const job: PoolJob = { client, file: content, size, negotiated, timeoutMs, retries };
    slot.run = pool?.usable ? pool.run(job, handlers) : runInline(job, handlers);
  };

  const onRequest = (msg: Buffer, client: Peer) => {
    let packet: ReturnType<typeof parsePacket>;
    try {
      packet = parsePacket(msg);
      if (packet.op === 'wrq') return refuse(client, ERR.ACCESS_VIOLATION, 'read-only server');
      if (packet.op !== 'rrq') return; // ACK/DATA/ERROR/OACK to port 69 belong to no transfer: ignore
      serve(packet.file, packet.mode, packet.options, client).catch((err) => {
        if (err instanceof TftpProtocolError) return refuse(client, err.code, err.message);
        logger.warn({ client, err: (err as Error).message }, 'tftp: request failed');
      });
    } catch (err) {
      // never answer an ERROR with an ERROR (two servers could ping-pong forever)
      if (msg.length >= 2 && msg.readUInt16BE(0) === 5) return;
      if (err instanceof TftpProtocolError) refuse(client, err.code, err.message);
      else logger.warn({ client, err: (err as Error).message }, 'tftp: bad request');
    }
  };

  main.on('message', (msg, rinfo) => {
    if (closing) return;
    if (msg.length > MAX_REQUEST_BYTES * 64) return; // no valid request is that large; do not parse it
    onRequest(msg, { address: rinfo.address, port: rinfo.port });
  });
  main.on('error', (err) => logger.warn({ err: err.message }, 'tftp: server socket error'));
  logger.info({ address, port }, 'tftp: listening');

  const internals: TftpInternals = { workers: () => pool?.workers() ?? [] };
  return {
    address,
    port,
    stats: () => ({ active: active.size, ...counters }),
    async close() {
      if (closing) return;
      closing = true;
      const waits: Promise<void>[] = [new Promise((r) => main.close(() => r()))];
      for (const slot of active.values()) {
        if (!slot.run) continue;
        slot.run.abort('server shutting down');
        waits.push(slot.run.ended);
      }
      if (pool) waits.push(pool.close());
      await Promise.all(waits);
      active.clear();
    },
    [TFTP_INTERNALS]: internals,
  } as TftpServer;
}

function bindSocket(socket: dgram.Socket, address: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    socket.once('error', onError);
    socket.bind({ address, port, exclusive: true }, () => {
      socket.off('error', onError);
      resolve(socket.address().port);
    });
  });
}

function describeBindError(err: NodeJS.ErrnoException): string {
  if (err.code === 'EADDRINUSE') return 'port already in use (another TFTP server running?)';
  if (err.code === 'EADDRNOTAVAIL') return 'address is not configured on this host';
  if (err.code === 'EACCES') return 'permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)';
  return err.message;
}
