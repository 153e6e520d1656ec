// A slow BMC for reliability tests: listens on the BMC's public address:port and forwards every datagram
// to the real ipmi_sim (on a hidden port) and back, each direction delayed by delayMs. In-process (dgram),
// so it costs no extra process and stops with the test.
import dgram from 'node:dgram';
import { once } from 'node:events';

export interface UdpDelayProxy {
  close(): Promise<void>;
}

export async function startUdpDelayProxy(opts: {
  listenAddress: string;
  listenPort: number;
  targetAddress: string;
  targetPort: number;
  delayMs: number;
}): Promise<UdpDelayProxy> {
  const front = dgram.createSocket({ type: 'udp4', reuseAddr: false });
  // One upstream socket per client endpoint, so replies find their way back.
  const upstreams = new Map<string, dgram.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let closed = false;
  const later = (fn: () => void) => {
    const t = setTimeout(() => {
      timers.delete(t);
      if (!closed) fn();
    }, opts.delayMs);
    timers.add(t);
  };

  front.on('error', () => {});
  front.on('message', (msg, client) => {
    const key = `${client.address}:${client.port}`;
    let up = upstreams.get(key);
    if (!up) {
      const sock = dgram.createSocket('udp4');
      sock.on('error', () => {});
      sock.on('message', (reply) => later(() => front.send(reply, client.port, client.address)));
      sock.bind(0, opts.targetAddress);
      upstreams.set(key, sock);
      up = sock;
    }
    const upstream = up;
    later(() => upstream.send(msg, opts.targetPort, opts.targetAddress));
  });
  front.bind(opts.listenPort, opts.listenAddress);
  await once(front, 'listening');

  return {
    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers) clearTimeout(t);
      for (const s of upstreams.values()) s.close();
      upstreams.clear();
      await new Promise<void>((resolve) => front.close(() => resolve()));
    },
  };
}
