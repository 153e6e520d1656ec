// Unreliable BMCs for reliability tests: a UDP relay in front of a real ipmi_sim. In-process (dgram), stops
// with the test; counts what it relayed and dropped.
//  - flapping: drops every datagram (both ways) while "down". It starts down, so the first call surely fails;
//    `downMs` after the first datagram it comes up, then alternates upMs up / downMs down.
//  - lost replies: relays the first `dropAfter` client datagrams (the session set-up) and drops everything
//    after, so a command reaches a live session and its answer never comes back.
//  - manual: up until the test calls setUp(false) (a BMC that goes away at a chosen moment).
import dgram from 'node:dgram';
import { once } from 'node:events';

export interface UdpFlapProxy {
  port: number;
  /** datagrams from clients: relayed while up, dropped while down */
  readonly relayed: number;
  readonly dropped: number;
  /** manual mode: relay (true) or drop (false) from now on */
  setUp(up: boolean): void;
  close(): Promise<void>;
}

export type FlapMode = { upMs: number; downMs: number } | { dropAfter: number } | { manual: true };

export async function startUdpFlapProxy(
  opts: { address: string; targetPort: number } & FlapMode,
): Promise<UdpFlapProxy> {
  const front = dgram.createSocket('udp4');
  const upstreams = new Map<string, dgram.Socket>();
  let up = !('upMs' in opts);
  let relayed = 0;
  let dropped = 0;
  let timer: NodeJS.Timeout | undefined;
  const flip = () => {
    if (!('upMs' in opts)) return;
    up = !up;
    timer = setTimeout(flip, up ? opts.upMs : opts.downMs);
  };
  front.on('error', () => {});
  front.on('message', (msg, client) => {
    if ('upMs' in opts) timer ??= setTimeout(flip, opts.downMs);
    else if ('dropAfter' in opts && relayed >= opts.dropAfter) up = false;
    if (!up) {
      dropped++;
      return;
    }
    relayed++;
    const key = `${client.address}:${client.port}`;
    let sock = upstreams.get(key);
    if (!sock) {
      const s = dgram.createSocket('udp4');
      s.on('error', () => {});
      s.on('message', (reply) => {
        if (up) front.send(reply, client.port, client.address);
      });
      s.bind(0, opts.address);
      upstreams.set(key, s);
      sock = s;
    }
    sock.send(msg, opts.targetPort, opts.address);
  });
  front.bind(0, opts.address);
  await once(front, 'listening');
  return {
    port: front.address().port,
    get relayed() {
      return relayed;
    },
    get dropped() {
      return dropped;
    },
    setUp(value) {
      if (!('manual' in opts)) throw new Error('setUp() is for a manual proxy');
      up = value;
    },
    async close() {
      clearTimeout(timer);
      for (const s of upstreams.values()) s.close();
      await new Promise<void>((r) => front.close(() => r()));
    },
  };
}
