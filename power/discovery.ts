// BMC discovery in the IPMI subnet: an unauthenticated RMCP probe to every address of the given subnet
// (nothing outside it), bounded concurrency and a per-probe timeout; then an authenticated info() +
// powerState() per responder. Results are sorted by address (numeric), then port.
import dgram from 'node:dgram';
import { once } from 'node:events';
import pLimit from 'p-limit';
import type { BmcInfo, BmcTarget, PowerDriver, PowerState } from './driver.ts';
import { isBmcError } from './errors.ts';
import { createIpmitoolDriver, type IpmitoolOptions } from './ipmitool.ts';
import { getChannelAuthCapabilities, parseRmcpReply, presencePing, type RmcpReply } from './rmcp.ts';
import { compareEndpoints, hostsInSubnet } from './subnet.ts';

export interface ScanOptions {
  /** IPv4 CIDR, e.g. "10.10.0.0/24" (loopback subnets such as 127.0.1.0/24 work too) */
  subnet: string;
  /** UDP ports to probe on every address (default [623]) */
  ports?: number[];
  /** probes in flight at once (default 128) */
  concurrency?: number;
  /** wait per probe attempt (default 300 ms) */
  probeTimeoutMs?: number;
  /** attempts per address:port (default 2; UDP may drop one) */
  attempts?: number;
  /** refuse subnets with more hosts than this (default 4094, a /20) */
  maxHosts?: number;
}

export interface BmcResponder {
  address: string;
  port: number;
  /** which probe it answered first */
  via: RmcpReply['kind'];
}

export interface DiscoveredBmc {
  address: string;
  port: number;
  via: RmcpReply['kind'];
  info?: BmcInfo;
  powerState?: PowerState;
  /** why the authenticated step failed (e.g. BMC_AUTH for a wrong password); secret-free */
  error?: { code: string; retryable: boolean; message: string };
}

export interface DiscoverOptions extends ScanOptions {
  /** credentials to try on each responder; undefined → report the responder without the authenticated step */
  credentials: (responder: BmcResponder) => Pick<BmcTarget, 'username' | 'password'> | undefined;
  driverOptions?: IpmitoolOptions;
  /** for other drivers (defaults to ipmitool) */
  createDriver?: (target: BmcTarget) => PowerDriver;
}

/** Sends both probes to every address:port of the subnet and returns the responders, sorted. */
export async function scanForBmcs(options: ScanOptions): Promise<BmcResponder[]> {
  const ports = options.ports ?? [623];
  for (const p of ports) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new RangeError(`ports: invalid port ${p}`);
  }
  const hosts = hostsInSubnet(options.subnet, options.maxHosts ?? 4094);
  const timeoutMs = options.probeTimeoutMs ?? 300;
  const attempts = Math.max(1, options.attempts ?? 2);
  const limit = pLimit(Math.max(1, options.concurrency ?? 128));

  const socket = dgram.createSocket('udp4');
  const waiting = new Map<string, (reply: RmcpReply) => void>();
  const responders = new Map<string, BmcResponder>();
  socket.on('message', (msg, rinfo) => {
    const reply = parseRmcpReply(msg); // never throws; junk is ignored
    if (!reply) return;
    if (reply.kind === 'asf-pong' && !reply.ipmiSupported) return; // an ASF agent that is no IPMI BMC
    waiting.get(`${rinfo.address}:${rinfo.port}`)?.(reply);
  });
  socket.on('error', () => {}); // ICMP errors and the like: a silent address is simply no BMC
  socket.bind(0);
  await once(socket, 'listening');

  const authCaps = getChannelAuthCapabilities();
  let tag = 0;
  const probe = async (address: string, port: number): Promise<void> => {
    const key = `${address}:${port}`;
    for (let attempt = 0; attempt < attempts && !responders.has(key); attempt++) {
      const reply = await new Promise<RmcpReply | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), timeoutMs);
        waiting.set(key, (r) => {
          clearTimeout(timer);
          resolve(r);
        });
        tag = (tag + 2) & 0xfe;
        const onSent = () => {}; // send errors (EPERM, ENETUNREACH…) mean no answer; the timer resolves
        socket.send(presencePing(tag), port, address, onSent);
        socket.send(authCaps, port, address, onSent);
      });
      waiting.delete(key);
      if (reply) responders.set(key, { address, port, via: reply.kind });
    }
  };

  try {
    await Promise.all(hosts.flatMap((address) => ports.map((port) => limit(() => probe(address, port)))));
  } finally {
    socket.close();
  }
  return [...responders.values()].sort(compareEndpoints);
}

/** True when something at address:port answers an RMCP probe within timeoutMs (lab readiness checks). */
export async function probeBmc(address: string, port: number, timeoutMs = 300): Promise<boolean> {
  const found = await scanForBmcs({
    subnet: `${address}/32`,
    ports: [port],
    probeTimeoutMs: timeoutMs,
    attempts: 1,
  });
  return found.length > 0;
}

/** Scan, then an authenticated info() + powerState() on each responder (through the BMC call limiter). */
export async function discoverBmcs(options: DiscoverOptions): Promise<DiscoveredBmc[]> {
  const responders = await scanForBmcs(options);
  const makeDriver =
    options.createDriver ?? ((t: BmcTarget) => createIpmitoolDriver(t, options.driverOptions));
  const results = await Promise.all(
    responders.map(async (r): Promise<DiscoveredBmc> => {
      const creds = options.credentials(r);
      if (!creds) return { ...r };
      const driver = makeDriver({ address: r.address, port: r.port, ...creds });
      try {
        const info = await driver.info();
        const powerState = await driver.powerState();
        return { ...r, info, powerState };
      } catch (err) {
        if (!isBmcError(err)) throw err;
        return { ...r, error: { code: err.code, retryable: err.retryable, message: err.message } };
      }
    }),
  );
  return results.sort(compareEndpoints);
}
