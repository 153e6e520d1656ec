// One read transfer: its own socket (the server's TID), windowed sending with go-back-N, bounded retries.
//
// Loss handling, the part the npm `tftp` package gets wrong (NOTES.md: a retransmission storm on one lost block):
// - a new ACK n (acked < n <= sent) moves the window to n+1 … n+windowsize and sends it. When n < sent this *is*
//   the go-back-N resend RFC 7440 asks for (the client acks the last in-order block after a gap);
// - an old or duplicate ACK (n <= acked) changes nothing and sends nothing, so duplicates cannot multiply;
// - silence for timeoutMs resends the window once; after `retries` silent rounds the transfer gives up.
import type { Socket } from 'node:dgram';
import type { Readable } from 'node:stream';
import type { Negotiated } from './packet.ts';
import { encodeDataHeader, encodeError, encodeOack, ERR, parsePacket } from './packet.ts';

/** A file to serve: a Buffer, or a size plus a way to stream an inclusive byte range of it. */
export type TftpFile = Buffer | { size: number; open(range: { start: number; end: number }): Readable };

export interface Peer {
  address: string;
  port: number;
}

export interface TransferResult {
  ok: boolean;
  reason?: string;
  bytes: number;
  packets: number;
  retransmits: number;
}

export interface TransferLogger {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export interface TransferSettings {
  socket: Socket;
  client: Peer;
  file: TftpFile;
  negotiated: Negotiated;
  timeoutMs: number;
  retries: number;
  logger: TransferLogger;
  onDone(result: TransferResult): void;
}

const MAX_BACKOFF_MS = 8000;

export function fileSize(file: TftpFile): number {
  return Buffer.isBuffer(file) ? file.length : file.size;
}

/**
 * Hands out block k (1-based) of a file. Streams are read sequentially, ahead of the sender: `prefetch` asks for
 * the blocks of the next window while the client still acknowledges this one, so an ACK is answered from memory
 * instead of waiting for a disk read (a 64 KiB stream chunk is less than one 8192 × 16 window). Only blocks
 * not yet acknowledged, plus that read-ahead, are kept.
 */
class BlockSource {
  private readonly cache = new Map<number, Buffer>();
  private nextToRead = 1;
  /** read up to this block, then stop until asked for more */
  private readTarget = 0;
  private reading = false;
  private failure?: Error;
  private readonly waiters = new Set<() => void>();
  private stream?: Readable;
  private iterator?: AsyncIterator<Buffer>;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(
    private readonly file: TftpFile,
    private readonly size: number,
    private readonly blksize: number,
    private readonly last: number,
  ) {}

  /** Block k if it is in memory now (the common case once read-ahead runs), else undefined. */
  peek(k: number): Buffer | undefined {
    const file = this.file;
    if (Buffer.isBuffer(file)) return file.subarray((k - 1) * this.blksize, k * this.blksize);
    return this.cache.get(k);
  }

  /** Resolves with block k once it has been read; rejects on a read error or a block already released. */
  async get(k: number): Promise<Buffer> {
    for (;;) {
      const block = this.peek(k);
      if (block) return block;
      if (this.failure) throw this.failure;
      if (k < this.nextToRead) throw new Error(`block ${k} was already released`);
      this.prefetch(k);
      await new Promise<void>((resolve) => this.waiters.add(resolve));
    }
  }

  /** Starts reading (in the background) every block up to `upTo`. */
  prefetch(upTo: number): void {
    if (Buffer.isBuffer(this.file)) return;
    this.readTarget = Math.max(this.readTarget, Math.min(upTo, this.last));
    if (!this.reading && !this.failure && this.nextToRead <= this.readTarget) void this.pump();
  }

  /** Blocks up to `block` are acknowledged and will never be resent. */
  release(block: number): void {
    for (const k of this.cache.keys()) {
      if (k > block) break; // inserted in block order
      this.cache.delete(k);
    }
  }

  close(): void {
    this.failure ??= new Error('transfer ended');
    this.stream?.destroy();
    this.wake();
  }

  private async pump(): Promise<void> {
    this.reading = true;
    try {
      while (this.nextToRead <= this.readTarget) {
        const block = await this.readBlock();
        this.cache.set(this.nextToRead++, block);
        this.wake();
      }
    } catch (err) {
      this.failure = err as Error;
    } finally {
      this.reading = false;
      this.wake();
    }
  }

  private wake(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const w of waiters) w();
  }

  private async readBlock(): Promise<Buffer> {
    const file = this.file as Exclude<TftpFile, Buffer>;
    if (this.size > 0 && !this.iterator) {
      this.stream = file.open({ start: 0, end: this.size - 1 });
      this.iterator = this.stream[Symbol.asyncIterator]();
    }
    while (this.iterator && this.pendingBytes < this.blksize) {
      const { value, done } = await this.iterator.next();
      if (done) {
        this.iterator = undefined;
        break;
      }
      const chunk = Buffer.isBuffer(value) ? value : Buffer.from(value);
      this.pending.push(chunk);
      this.pendingBytes += chunk.length;
    }
    const all = this.pending.length === 1 ? this.pending[0] : Buffer.concat(this.pending);
    const block = all.subarray(0, this.blksize);
    const rest = all.subarray(this.blksize);
    this.pending = rest.length > 0 ? [rest] : [];
    this.pendingBytes = rest.length;
    return block;
  }
}

export class Transfer {
  /** highest block the client acknowledged; -1 while our OACK waits for ACK 0 */
  private acked: number;
  /** highest block sent so far */
  private sent = 0;
  private readonly last: number;
  private readonly blocks: BlockSource;
  private readonly size: number;
  private generation = 0;
  private silentRounds = 0;
  private timer?: NodeJS.Timeout;
  private timerWait = 0;
  private finished = false;
  private packets = 0;
  private retransmits = 0;
  private readonly timeoutMs: number;

  constructor(private readonly s: TransferSettings) {
    this.size = fileSize(s.file);
    // a file that is an exact multiple of blksize ends with a zero-length block
    this.last = Math.floor(this.size / s.negotiated.blksize) + 1;
    this.blocks = new BlockSource(s.file, this.size, s.negotiated.blksize, this.last);
    this.acked = Object.keys(s.negotiated.oack).length > 0 ? -1 : 0;
    this.timeoutMs = s.negotiated.timeoutMs ?? s.timeoutMs;
  }

  start(): void {
    this.s.socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo));
    this.s.socket.on('error', (err) => this.finish(false, `socket error: ${err.message}`));
    if (this.acked === -1) this.sendOack();
    else void this.sendWindow(1);
  }

  /** Stops the transfer, telling the client why. */
  abort(reason: string): void {
    if (this.finished) return;
    this.finish(false, reason, encodeError(ERR.UNDEFINED, reason));
  }

  private onMessage(msg: Buffer, from: Peer): void {
    if (this.finished) return;
    if (from.address !== this.s.client.address || from.port !== this.s.client.port) {
      // RFC 1350: a packet from a foreign TID gets ERROR 5 and must not disturb the transfer
      this.s.logger.debug({ from, client: this.s.client }, 'tftp: packet from an unknown transfer ID');
      this.s.socket.send(
        encodeError(ERR.UNKNOWN_TID, 'unknown transfer ID'),
        from.port,
        from.address,
        () => {},
      );
      return;
    }
    let packet: ReturnType<typeof parsePacket>;
    try {
      packet = parsePacket(msg);
    } catch {
      return; // garbage from the client's own port: ignore, the timer still guards the transfer
    }
    if (packet.op === 'ack') this.onAck(packet.block);
    else if (packet.op === 'error') this.finish(false, `client sent ERROR ${packet.code}: ${packet.message}`);
  }

  private onAck(wire: number): void {
    // map the 16-bit block number onto the window: the only candidate within 65535 above `acked`
    const n = this.acked + ((wire - this.acked) & 0xffff);
    if (n <= this.acked || n > this.sent) return; // duplicate or stale: never a reason to resend
    this.acked = n;
    this.silentRounds = 0;
    this.blocks.release(n);
    if (n >= this.last) this.finish(true);
    else void this.sendWindow(n + 1);
  }

  private onTimeout(): void {
    if (this.finished) return;
    if (++this.silentRounds > this.s.retries) {
      this.abort(`timeout: no ACK after ${this.s.retries} retransmissions`);
      return;
    }
    this.retransmits++;
    if (this.acked === -1) this.sendOack();
    else void this.sendWindow(this.acked + 1);
  }

  /**
   * Exponential backoff (RFC 1123 4.2.3.2 asks for an adaptive timeout): each silent round doubles the wait, up
   * to 8 s. It also unsticks clients that ACK a duplicate block only once (atftp): once our gap exceeds the
   * client's own timeout, the client re-sends its ACK.
   */
  private arm(): void {
    const wait = Math.min(this.timeoutMs * 2 ** this.silentRounds, Math.max(this.timeoutMs, MAX_BACKOFF_MS));
    // lock-step re-arms once per block: restarting the same timer is cheaper than a new one each time
    if (this.timer && wait === this.timerWait) {
      this.timer.refresh();
      return;
    }
    clearTimeout(this.timer);
    this.timerWait = wait;
    this.timer = setTimeout(() => this.onTimeout(), wait);
  }

  private sendOack(): void {
    this.arm();
    this.send(encodeOack(this.s.negotiated.oack));
  }

  private async sendWindow(from: number): Promise<void> {
    const generation = ++this.generation; // a newer window (ACK or timeout) supersedes this one
    this.arm();
    const { blksize, windowsize } = this.s.negotiated;
    const to = Math.min(this.acked + windowsize, this.last);
    // the window after this one is read while the client works through this one
    this.blocks.prefetch(to + windowsize);
    for (let k = from; k <= to; k++) {
      let payload = this.blocks.peek(k);
      if (!payload) {
        try {
          payload = await this.blocks.get(k);
        } catch (err) {
          this.abort(`read error: ${(err as Error).message}`);
          return;
        }
        if (generation !== this.generation || this.finished) return;
      }
      if (k < this.last && payload.length < blksize) {
        this.abort('file shorter than its announced size');
        return;
      }
      this.sendData(k, payload);
      if (k <= this.sent) this.retransmits++;
      else this.sent = k;
    }
  }

  /**
   * DATA goes out as header + payload in one sendmsg (no copy of the block), without a completion callback (one
   * nextTick less per packet): a failed send is a lost packet, and the retransmission timer already covers loss.
   */
  private sendData(block: number, payload: Buffer): void {
    this.packets++;
    this.s.socket.send([encodeDataHeader(block), payload], this.s.client.port, this.s.client.address);
  }

  private send(packet: Buffer, then?: () => void): void {
    this.packets++;
    this.s.socket.send(packet, this.s.client.port, this.s.client.address, (err) => {
      if (err) this.s.logger.debug({ err: err.message }, 'tftp: send failed (treated as loss)');
      then?.();
    });
  }

  /**
   * Ends the transfer once; `lastWords` (an ERROR packet) leaves before the socket closes. The end is reported
   * before that packet is sent: in a worker thread the report is a message to the main thread, which then
   * counts the transfer before a client that got the ERROR can ask the server about it.
   */
  private finish(ok: boolean, reason?: string, lastWords?: Buffer): void {
    if (this.finished) return;
    this.finished = true;
    this.generation++;
    clearTimeout(this.timer);
    this.blocks.close();
    const bytes = ok ? this.size : Math.min(this.size, Math.max(0, this.acked) * this.s.negotiated.blksize);
    // the ERROR packet counts among the transfer's packets, as it always did
    this.s.onDone({
      ok,
      reason,
      bytes,
      packets: this.packets + (lastWords ? 1 : 0),
      retransmits: this.retransmits,
    });
    const close = () => {
      try {
        this.s.socket.close();
      } catch {
        // already closed
      }
    };
    if (lastWords) this.send(lastWords, close);
    else close();
  }
}
