// Test helpers for the TFTP server: a raw UDP client whose every packet the test controls, temp files, and a
// network namespace with a veth link and random packet loss (nftables `numgen random`, since this kernel has
// no sch_netem).
import { randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { encodeAck, encodeRequest, OP } from '../../netboot/tftp/packet.ts';

export interface Datagram {
  msg: Buffer;
  from: { address: string; port: number };
}

/** A UDP socket on 127.0.0.1 with a queue of received datagrams. */
export class RawSocket {
  private readonly queue: Datagram[] = [];
  private waiter?: () => void;

  private constructor(readonly socket: dgram.Socket) {
    socket.on('message', (msg, rinfo) => {
      this.queue.push({ msg, from: { address: rinfo.address, port: rinfo.port } });
      this.waiter?.();
    });
  }

  static async open(address = '127.0.0.1'): Promise<RawSocket> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, address, resolve));
    return new RawSocket(socket);
  }

  get port(): number {
    return this.socket.address().port;
  }

  send(buf: Buffer, port: number, address = '127.0.0.1'): Promise<void> {
    return new Promise((resolve, reject) =>
      this.socket.send(buf, port, address, (e) => (e ? reject(e) : resolve())),
    );
  }

  /** The next datagram, or undefined after `timeoutMs` of silence. */
  async next(timeoutMs = 2000): Promise<Datagram | undefined> {
    if (this.queue.length === 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.queue.shift();
  }

  close(): void {
    this.socket.close();
  }
}

export const opcode = (msg: Buffer) => msg.readUInt16BE(0);
export const blockOf = (msg: Buffer) => msg.readUInt16BE(2);
export const errorText = (msg: Buffer) => msg.toString('utf8', 4, msg.length - 1);

export interface RawFetchOptions {
  options?: Record<string, string | number>;
  /** drop the first copy of these block numbers (1-based, counted across rollover) */
  dropFirst?: number[];
  /** send every ACK this many times (duplicate ACKs) */
  ackCopies?: number;
  /** called after the first DATA arrives, before it is acknowledged */
  onFirstData?: (serverTid: { address: string; port: number }) => Promise<void>;
  /** client-side retransmission of the last ACK after this much silence */
  timeoutMs?: number;
}

export interface RawFetchResult {
  data: Buffer;
  /** every DATA packet received, duplicates and dropped copies included */
  dataPackets: number;
  blocks: number;
  oack?: Record<string, string>;
}

/**
 * A minimal RFC 1350/2347/7440 read client: acks the end of each window, acks the last in-order block once on a
 * gap, resends its last ACK after silence. Throws on an ERROR packet or after 5 silent rounds.
 */
export async function rawFetch(port: number, file: string, o: RawFetchOptions = {}): Promise<RawFetchResult> {
  const client = await RawSocket.open();
  const drop = new Set(o.dropFirst ?? []);
  const chunks: Buffer[] = [];
  let dataPackets = 0;
  let expected = 1; // next block wanted (unbounded counter)
  let blksize = 512;
  let windowsize = 1;
  let inWindow = 0;
  let tid: { address: string; port: number } | undefined;
  let lastAck: Buffer | undefined;
  let gapAcked = false;
  let oack: Record<string, string> | undefined;
  const ack = async (block: number) => {
    lastAck = encodeAck(block);
    for (let i = 0; i < (o.ackCopies ?? 1); i++) await client.send(lastAck, tid!.port, tid!.address);
  };
  try {
    await client.send(encodeRequest('rrq', file, 'octet', o.options), port);
    let silent = 0;
    for (;;) {
      const d = await client.next(o.timeoutMs ?? 2000);
      if (!d) {
        if (++silent > 5) throw new Error(`raw client: no answer for ${file}`);
        if (lastAck && tid) await client.send(lastAck, tid.port, tid.address);
        else await client.send(encodeRequest('rrq', file, 'octet', o.options), port);
        continue;
      }
      silent = 0;
      tid ??= d.from;
      if (d.from.port !== tid.port) continue;
      const op = opcode(d.msg);
      if (op === OP.ERROR) throw new Error(`raw client: ERROR ${blockOf(d.msg)} ${errorText(d.msg)}`);
      if (op === OP.OACK) {
        const parts = d.msg.toString('ascii', 2, d.msg.length - 1).split('\0');
        oack = {};
        for (let i = 0; i + 1 < parts.length; i += 2) oack[parts[i]] = parts[i + 1];
        blksize = Number(oack.blksize ?? 512);
        windowsize = Number(oack.windowsize ?? 1);
        await ack(0);
        continue;
      }
      if (op !== OP.DATA) continue;
      dataPackets++;
      const block = blockOf(d.msg);
      if (block !== (expected & 0xffff)) {
        // a gap (or an old duplicate): ack the last in-order block once, RFC 7440 style
        if (!gapAcked) await ack(expected - 1);
        gapAcked = true;
        inWindow = 0; // the sender restarts its window after our ACK
        continue;
      }
      if (drop.delete(expected)) continue; // pretend the network lost this copy
      if (expected === 1 && o.onFirstData) await o.onFirstData(tid);
      gapAcked = false;
      const payload = d.msg.subarray(4);
      chunks.push(Buffer.from(payload));
      inWindow++;
      const last = payload.length < blksize;
      if (last || inWindow >= windowsize) {
        inWindow = 0;
        await ack(expected);
      }
      expected++;
      if (last) return { data: Buffer.concat(chunks), dataPackets, blocks: expected - 1, oack };
    }
  } finally {
    client.close();
  }
}

/** A temp directory with random files of the given sizes; `cleanup` removes it. */
export async function makeFiles(sizes: Record<string, number>) {
  const dir = await mkdtemp(join(tmpdir(), 'pxeflow-tftp-'));
  const files: Record<string, Buffer> = {};
  for (const [name, size] of Object.entries(sizes)) {
    files[name] = randomBytes(size);
    await writeFile(join(dir, name), files[name]);
  }
  return { dir, files, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export interface LossyLink {
  ns: string;
  hostAddress: string;
  nsAddress: string;
  destroy(): Promise<void>;
}

/**
 * A namespace joined to the root namespace by a veth pair on a random 10.x.y.0/30, no route out, with `lossPct`
 * of UDP packets dropped in each direction inside the namespace. Names carry a random suffix.
 */
export async function createLossyLink(lossPct: number): Promise<LossyLink> {
  const id = randomBytes(3).toString('hex');
  const ns = `pxtftp-${id}`;
  const host = `pxth${id}`;
  const peer = `pxtn${id}`;
  const net = `10.${200 + (randomBytes(1)[0] % 50)}.${randomBytes(1)[0]}`;
  const sub = (randomBytes(1)[0] % 60) * 4;
  const hostAddress = `${net}.${sub + 1}`;
  const nsAddress = `${net}.${sub + 2}`;
  const destroy = async () => {
    await execa('ip', ['netns', 'del', ns], { reject: false });
    await execa('ip', ['link', 'del', host], { reject: false });
  };
  try {
    await execa('ip', ['netns', 'add', ns]);
    await execa('ip', ['link', 'add', host, 'type', 'veth', 'peer', 'name', peer]);
    await execa('ip', ['link', 'set', peer, 'netns', ns]);
    await execa('ip', ['addr', 'add', `${hostAddress}/30`, 'dev', host]);
    await execa('ip', ['link', 'set', host, 'up']);
    await execa('ip', ['-n', ns, 'addr', 'add', `${nsAddress}/30`, 'dev', peer]);
    await execa('ip', ['-n', ns, 'link', 'set', peer, 'up']);
    await execa('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    const per1000 = Math.round(lossPct * 10);
    const rules = [
      'table inet loss {',
      `  chain in { type filter hook input priority 0; meta l4proto udp numgen random mod 1000 < ${per1000} drop; }`,
      `  chain out { type filter hook output priority 0; meta l4proto udp numgen random mod 1000 < ${per1000} drop; }`,
      '}',
    ].join('\n');
    await execa('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: rules });
  } catch (err) {
    await destroy();
    throw err;
  }
  return { ns, hostAddress, nsAddress, destroy };
}
