// Small facts about this host the DHCP supervisor checks before starting dnsmasq. Read from /proc and
// /etc/group directly: Node has no API for socket owners or group lookups, and these formats are stable.
import { readFile, readdir, readlink } from 'node:fs/promises';

export interface UdpListener {
  /** "0.0.0.0:67", "[::]:67" */
  local: string;
  inode: string;
  /** "dnsmasq (pid 1234)" when the owning process could be found */
  process?: string;
  /** the interface the socket is bound to (SO_BINDTODEVICE); undefined: all interfaces */
  device?: string;
}

function decodeAddress(hex: string): string {
  if (hex.length === 8) {
    // IPv4, little-endian on x86
    const b = hex.match(/../g)!.map((h) => Number.parseInt(h, 16));
    return b.reverse().join('.');
  }
  return hex === '00000000000000000000000000000000' ? '::' : `ipv6:${hex}`;
}

/** UDP sockets bound to `port` in this process's network namespace (/proc/net is per namespace). */
export async function findUdpListeners(port: number): Promise<UdpListener[]> {
  const out: UdpListener[] = [];
  for (const file of ['/proc/net/udp', '/proc/net/udp6']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const [addrHex, portHex] = (f[1] ?? '').split(':');
      if (Number.parseInt(portHex ?? '', 16) !== port) continue;
      const addr = decodeAddress(addrHex ?? '');
      out.push({ local: addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`, inode: f[9] });
    }
  }
  if (out.length) {
    await findOwners(out);
    await findDevices(out, port);
  }
  return out;
}

/**
 * The interface a socket is bound to (SO_BINDTODEVICE), which /proc/net/udp does not show: `ss` prints it as
 * "0.0.0.0%br0:67". dnsmasq binds its DHCP socket to its one interface, so two of them on two provisioning
 * bridges do not conflict.
 */
async function findDevices(listeners: UdpListener[], port: number): Promise<void> {
  const { execa } = await import('execa');
  const r = await execa('ss', ['-H', '-u', '-a', '-n', '-e', `sport = :${port}`], {
    reject: false,
    stdin: 'ignore',
  });
  for (const line of String(r.stdout ?? '').split('\n')) {
    const dev = line.match(/%([^\s:\]]+)[\]]?:\d+\s/)?.[1];
    const inode = line.match(/\bino:(\d+)/)?.[1];
    const l = inode ? listeners.find((x) => x.inode === inode) : undefined;
    if (l && dev) l.device = dev;
  }
}

async function findOwners(listeners: UdpListener[]): Promise<void> {
  const wanted = new Map(listeners.map((l) => [`socket:[${l.inode}]`, l]));
  for (const pid of (await readdir('/proc')).filter((e) => /^\d+$/.test(e))) {
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      const l = wanted.get(target);
      if (l && !l.process) {
        const comm = (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '?')).trim();
        l.process = `${comm} (pid ${pid})`;
      }
    }
  }
}

/** Numeric id of a group from /etc/group, or undefined when it does not exist. */
export async function groupId(name: string): Promise<number | undefined> {
  const text = await readFile('/etc/group', 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const [group, , gid] = line.split(':');
    if (group === name && /^\d+$/.test(gid ?? '')) return Number(gid);
  }
  return undefined;
}
