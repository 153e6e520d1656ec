// Hostile bytes on the wire for the reliability tests: raw HTTP requests (exact paths, lying headers — what
// fetch and curl would normalise away) and DHCP packets, valid and broken, sent from inside a namespace.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { execa } from 'execa';
import fc from 'fast-check';

export interface RawResponse {
  status: number;
  head: string;
  body: string;
}

/**
 * Sends `request` as is and reads until the server closes (or `timeoutMs`). status 0: closed without answer.
 * halfClose: end our side right after the request (a legal HTTP/1.1 client; some tools do it).
 */
export async function rawHttp(
  host: string,
  port: number,
  request: string | Buffer,
  opts: { timeoutMs?: number; halfClose?: boolean } = {},
): Promise<RawResponse> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  return await new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = net.connect({ host, port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer from ${host}:${port} within ${timeoutMs} ms (a hang)`));
    }, timeoutMs);
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', () => {}); // a reset after the answer is fine: the answer is what counts
    sock.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const [head, ...rest] = text.split('\r\n\r\n');
      resolve({
        status: Number(head.match(/^HTTP\/1\.[01] (\d{3})/)?.[1] ?? 0),
        head,
        body: rest.join('\r\n\r\n'),
      });
    });
    if (opts.halfClose) sock.end(request);
    else sock.write(request);
  });
}

export function post(
  path: string,
  host: string,
  body: string | Buffer,
  headers: Record<string, string> = {},
): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  const h = {
    Host: host,
    'Content-Type': 'application/json',
    'Content-Length': String(b.length),
    Connection: 'close',
    ...headers,
  };
  const lines = Object.entries(h).map(([k, v]) => `${k}: ${v}`);
  return Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\n${lines.join('\r\n')}\r\n\r\n`), b]);
}

export const get = (path: string, host: string) =>
  `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`;

// --- DHCP ----------------------------------------------------------------------------------------------

const COOKIE = [0x63, 0x82, 0x53, 0x63];

/** A well-formed PXE DHCP client message (BOOTP header, cookie, options, end). */
export function dhcpMessage(o: {
  type: number;
  mac: Buffer;
  xid?: number;
  options?: Array<[number, Buffer]>;
}): Buffer {
  const head = Buffer.alloc(236);
  head[0] = 1; // BOOTREQUEST
  head[1] = 1; // ethernet
  head[2] = 6;
  head.writeUInt32BE(o.xid ?? randomBytes(4).readUInt32BE(0), 4);
  head.writeUInt16BE(0x8000, 10); // broadcast reply
  o.mac.copy(head, 28);
  const opts: number[] = [53, 1, o.type];
  opts.push(60, 32, ...Buffer.from('PXEClient:Arch:00000:UNDI:002001'));
  opts.push(93, 2, 0, 0, 55, 4, 1, 3, 66, 67);
  for (const [code, data] of o.options ?? []) opts.push(code, data.length & 0xff, ...data);
  opts.push(255);
  return Buffer.concat([head, Buffer.from(COOKIE), Buffer.from(opts)]);
}

/** Junk: random bytes, truncated and bit-flipped valid messages, lying option lengths, every message type. */
export function dhcpJunk(mac: Buffer): fc.Arbitrary<Buffer> {
  const valid = fc.integer({ min: 0, max: 255 }).map((type) => dhcpMessage({ type, mac }));
  return fc.oneof(
    fc.uint8Array({ minLength: 0, maxLength: 700 }).map((a) => Buffer.from(a)),
    fc.tuple(valid, fc.nat()).map(([m, n]) => m.subarray(0, n % (m.length + 1))),
    fc
      .tuple(
        valid,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 20 }),
      )
      .map(([m, flips]) => {
        const b = Buffer.from(m);
        for (const [at, v] of flips) b[at % b.length] = v;
        return b;
      }),
    fc
      .tuple(
        fc.integer({ min: 1, max: 254 }),
        fc.integer({ min: 0, max: 255 }),
        fc.uint8Array({ maxLength: 40 }),
      )
      .map(([code, len, data]) => {
        // an option whose length byte lies about its data, then no end marker
        const m = dhcpMessage({ type: 1, mac });
        return Buffer.concat([m.subarray(0, m.length - 1), Buffer.from([code, len, ...data])]);
      }),
    fc.uint8Array({ minLength: 0, maxLength: 300 }).map((opts) => {
      // a header claiming a 255-byte hardware address, then random options
      const m = dhcpMessage({ type: 3, mac });
      m[2] = 255;
      return Buffer.concat([m.subarray(0, 240), Buffer.from(opts)]);
    }),
  );
}

/**
 * Sends `packets` from inside `ns` (source port 68) to `targets` (UDP 67) with a small gap between them, and
 * returns the DHCP replies that came back carrying an address (OFFER/ACK with yiaddr ≠ 0.0.0.0) during the run.
 */
export async function sendFromNamespace(
  ns: string,
  packets: Buffer[],
  targets: string[],
  file: string,
): Promise<{ sent: number; offers: Array<{ type: number; yiaddr: string }> }> {
  await writeFile(file, JSON.stringify(packets.map((p) => p.toString('base64'))));
  // plain JS on `node -e` inside the namespace: no tsx start-up, no project imports
  const script = `
    const dgram = require('node:dgram');
    const fs = require('node:fs');
    const packets = JSON.parse(fs.readFileSync(process.argv[1], 'utf8')).map((p) => Buffer.from(p, 'base64'));
    const targets = process.argv.slice(2);
    const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
    const offers = [];
    s.on('message', (m) => {
      if (m.length < 240 || m[0] !== 2) return;
      let type = 0;
      for (let i = 240; i + 1 < m.length && m[i] !== 255; ) {
        if (m[i] === 0) { i++; continue; }
        if (m[i] === 53) type = m[i + 2];
        i += 2 + m[i + 1];
      }
      const yiaddr = [...m.subarray(16, 20)].join('.');
      if ((type === 2 || type === 5) && yiaddr !== '0.0.0.0') offers.push({ type, yiaddr });
    });
    s.bind(68, '0.0.0.0', async () => {
      s.setBroadcast(true);
      let sent = 0;
      for (const p of packets) for (const t of targets) {
        await new Promise((r) => s.send(p, 67, t, () => r()));
        sent++;
        if (sent % 20 === 0) await new Promise((r) => setTimeout(r, 5));
      }
      setTimeout(() => { console.log(JSON.stringify({ sent, offers })); s.close(); }, 1500);
    });`;
  const r = await execa('ip', ['netns', 'exec', ns, process.execPath, '-e', script, file, ...targets], {
    stdin: 'ignore',
    timeout: 120_000,
  });
  return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}');
}
