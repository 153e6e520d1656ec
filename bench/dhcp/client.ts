// The storm client's side: builds bench/dhcp/storm.c with gcc, runs it inside a namespace and turns its output
// into figures (time to ACK, leases/s, lost, duplicated, retransmitted).
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { median, OUT_DIR, percentile } from '../lib/report.ts';

export const MAC_PREFIX = '02:be:0d';
/** first resend after this; then 2, 4, 8, 16 s (±25%), like a real client */
export const TIMEOUT_MS = 1000;
/** sends per message before a client gives up (~80 s) */
export const TRIES = 8;

export const macOf = (i: number) =>
  `${MAC_PREFIX}:${[(i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;

export interface ClientLine {
  mac: string;
  discoverUs: number;
  ackUs: number;
  ip: string;
  sends: number;
  status: 'ACK' | 'NAK' | 'LOST';
}

export async function buildClient(): Promise<string> {
  const bin = join(OUT_DIR, 'dhcp-storm');
  await mkdir(OUT_DIR, { recursive: true });
  await execa('gcc', ['-O2', '-Wall', '-o', bin, new URL('./storm.c', import.meta.url).pathname]);
  return bin;
}

export async function runStorm(bin: string, ns: string, count: number, concurrency: number, out: string) {
  const { stdout } = await execa('ip', [
    ...['netns', 'exec', ns, bin, 'eth0', String(count), String(concurrency), MAC_PREFIX, '1', out],
    ...[String(TIMEOUT_MS), String(TRIES)],
  ]);
  const summary = JSON.parse(stdout) as { startUs: number; endUs: number; packetsSent: number };
  const lines: ClientLine[] = (await readFile(out, 'utf8'))
    .trim()
    .split('\n')
    .map((l) => {
      const f = l.split(' ');
      return {
        mac: f[1],
        discoverUs: Number(f[2]),
        ackUs: Number(f[5]),
        ip: f[6],
        sends: Number(f[7]),
        status: f[8] as ClientLine['status'],
      };
    });
  return { summary, lines };
}

/** Figures the client side gives, whatever the server. */
export function clientFigures(lines: ClientLine[], leaseFile: string) {
  const acked = lines.filter((l) => l.status === 'ACK');
  const times = acked.map((l) => (l.ackUs - l.discoverUs) / 1000);
  const first = Math.min(...lines.map((l) => l.discoverUs));
  const last = Math.max(...acked.map((l) => l.ackUs));
  const byIp = new Map<string, number>();
  for (const l of acked) byIp.set(l.ip, (byIp.get(l.ip) ?? 0) + 1);
  const leaseLines = leaseFile.trim().split('\n').filter(Boolean);
  const leaseIps = new Set(leaseLines.map((l) => l.split(' ')[2]));
  return {
    leasesPerS: acked.length / ((last - first) / 1e6),
    p50Ms: median(times),
    p99Ms: percentile(times, 99),
    maxMs: Math.max(...times),
    lost: lines.filter((l) => l.status === 'LOST').length,
    naks: lines.filter((l) => l.status === 'NAK').length,
    // one address ACKed to two MACs, or the lease file holding fewer distinct addresses than lines
    duplicates: [...byIp.values()].filter((n) => n > 1).length + (leaseLines.length - leaseIps.size),
    retransmits: lines.reduce((a, l) => a + l.sends, 0) - 2 * lines.length,
    leaseFileEntries: leaseLines.length,
  };
}
