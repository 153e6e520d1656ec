// Per-host DHCP state as files in the directories dnsmasq watches (dhcp-hostsdir / dhcp-optsdir).
//
// Measured with dnsmasq 2.90 (test/dhcp/): a new or rewritten file in either directory is read at once through
// inotify, without SIGHUP. But dnsmasq only ever *adds* what it reads: the newest entry for a MAC wins, older
// ones stay in memory until a restart, and a new entry whose IP any entry read since start already used is
// dropped ("duplicate dhcp-host IP address"). A deleted file is not forgotten either. SIGHUP would reload, but
// dnsmasq 2.90 crashes (SIGSEGV/SIGABRT) on SIGHUP when an entry with `set:<tag>` has a lease. Hence:
//  - a new MAC with a fresh IP, a changed boot URL, a removal ("<mac>,ignore", a tombstone) and the discovery
//    window (a wildcard entry switched between "set:discovery" and "ignore") apply live;
//  - anything dnsmasq would drop or keep stale (an IP it has seen since start, a removed boot URL) is written
//    and flagged `needsRestart`; the supervisor then restarts dnsmasq (leases are kept in the lease file).
// Writes are atomic: staged in tmpDir (same filesystem, not watched) and renamed into place.
import { chmod, chown, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { normaliseMac } from '../../config/mac.ts';
import { type DhcpPaths, DISCOVERY_FILE, DISCOVERY_TAG, RESERVED_TAG } from './config.ts';
import { ipv4Problem } from '../../config/ipv4.ts';

/** One reserved machine, as the controller's DHCP port hands it over. */
export interface DhcpReservation {
  /** node name (events for this MAC carry it) */
  name: string;
  mac: string;
  /** fixed address; without it the node gets an address from the range */
  ip?: string;
  hostname: string;
  /** boot file for this host once its firmware is iPXE (per-node script URL with its token) */
  ipxeScriptUrl?: string;
}

export class DhcpReservationError extends Error {
  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`DHCP reservation: ${field}: ${reason}`);
    this.name = 'DhcpReservationError';
  }
}

const HOSTNAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i;
const URL_RE = /^https?:\/\/[^\s",\\]+$/;

/** File name for a MAC's entries: its 12 hex digits (never clashes with "discovery"). */
export function macFileName(mac: string): string {
  return mac.replaceAll(':', '');
}

/** The per-host dnsmasq tag; it links the hosts entry to the host's boot URL in the opts dir. */
export function hostTag(mac: string): string {
  return `mac-${macFileName(mac)}`;
}

/** Validates and normalises a reservation; throws DhcpReservationError naming the field. */
export function checkReservation(r: DhcpReservation): DhcpReservation {
  const mac = normaliseMac(r.mac);
  if (!mac) throw new DhcpReservationError('mac', `${JSON.stringify(r.mac)} is not a MAC address`);
  if (typeof r.name !== 'string' || !/^[A-Za-z0-9._-]{1,63}$/.test(r.name)) {
    throw new DhcpReservationError('name', `${JSON.stringify(r.name)} is not a node name`);
  }
  if (!HOSTNAME_RE.test(r.hostname ?? '')) {
    throw new DhcpReservationError('hostname', `${JSON.stringify(r.hostname)} is not a DNS label`);
  }
  if (r.ip !== undefined) {
    const problem = ipv4Problem(r.ip);
    if (problem) throw new DhcpReservationError('ip', problem);
  }
  if (r.ipxeScriptUrl !== undefined && !URL_RE.test(r.ipxeScriptUrl)) {
    throw new DhcpReservationError(
      'ipxeScriptUrl',
      'must be an http(s) URL without spaces, quotes or commas',
    );
  }
  return { ...r, mac };
}

/**
 * The dhcp-hostsdir file: a comment with the node name, then "<mac>,set:<tag>,set:pxeflow[,<ip>],<hostname>". The
 * per-host tag selects the host's boot URL in the opts dir; it is always there so adding a URL later needs no new
 * entry. The common tag marks a reserved MAC (proxy mode answers only those).
 */
export function hostLine(r: DhcpReservation): string {
  const fields = [r.mac, `set:${hostTag(r.mac)}`, `set:${RESERVED_TAG}`, ...(r.ip ? [r.ip] : []), r.hostname];
  return `# node=${r.name}\n${fields.join(',')}`;
}

/** The dhcp-optsdir line: the iPXE boot URL for this host only, sent to its iPXE firmware. */
export function optsLine(r: DhcpReservation): string | undefined {
  if (!r.ipxeScriptUrl) return undefined;
  return `tag:${hostTag(r.mac)},tag:ipxe,option:bootfile-name,"${r.ipxeScriptUrl}"`;
}

const tombstone = (mac: string) => `${mac},ignore`;
const DISCOVERY_OPEN = `*:*:*:*:*:*,set:${DISCOVERY_TAG}`;
const DISCOVERY_CLOSED = '*:*:*:*:*:*,ignore';

export interface FileChange {
  /** absolute paths whose content changed (dnsmasq logs "read <path>" once it has taken them in) */
  changed: string[];
  /** dnsmasq cannot take this change live: restart it (see the header) */
  needsRestart?: boolean;
}

/**
 * The reservation files of one DHCP state directory. Single writer: the supervisor owning the directory.
 * Keeps an index MAC → reservation so conflicting IPs are refused before anything is written.
 */
export class ReservationFiles {
  private readonly byMac = new Map<string, DhcpReservation>();
  /** IPs of every hosts entry the running dnsmasq has read since it started (it refuses them again) */
  private readonly seenIps = new Set<string>();
  private tmpCounter = 0;

  constructor(
    private readonly paths: DhcpPaths,
    /** group id that may read the files (dnsmasq's group after it drops privileges) */
    private gid?: number,
  ) {
    // Only root can hand files to dnsmasq's group; otherwise they must be world-readable for it.
    if (process.getuid?.() !== 0) this.gid = undefined;
  }

  /**
   * Call while dnsmasq is not running, before each start: creates the directories, deletes tombstones and
   * staging files, loads the index from the remaining files, and closes the discovery window if asked.
   */
  async prepare(opts: { closeDiscovery: boolean }): Promise<void> {
    const { stateDir, hostsDir, optsDir, tmpDir } = this.paths;
    for (const dir of [stateDir, hostsDir, optsDir, tmpDir]) {
      // dnsmasq reads these after dropping privileges: its group (or everyone) must be able to enter them
      await mkdir(dir, { recursive: true });
      await chmod(dir, this.gid === undefined ? 0o755 : 0o750);
      if (this.gid !== undefined) await chown(dir, 0, this.gid);
    }
    for (const f of await readdir(tmpDir)) await rm(`${tmpDir}/${f}`, { force: true });
    this.byMac.clear();
    this.seenIps.clear();
    for (const f of await readdir(hostsDir)) {
      if (f === DISCOVERY_FILE) continue;
      const text = await readFile(`${hostsDir}/${f}`, 'utf8');
      const parsed = parseHostFile(text);
      if (!parsed || parsed.ignore) {
        await rm(`${hostsDir}/${f}`, { force: true });
        await rm(`${optsDir}/${f}`, { force: true });
        continue;
      }
      const url = parsed.tag
        ? await readFile(`${optsDir}/${f}`, 'utf8').then(
            (t) => /"([^"]+)"/.exec(t)?.[1],
            () => undefined,
          )
        : undefined;
      if (!url) await rm(`${optsDir}/${f}`, { force: true });
      const { mac, ip, hostname, name } = parsed;
      this.byMac.set(mac, { name: name ?? hostname, mac, ip, hostname, ipxeScriptUrl: url });
      if (ip) this.seenIps.add(ip);
    }
    const discovery = `${hostsDir}/${DISCOVERY_FILE}`;
    if (opts.closeDiscovery || !(await this.exists(discovery))) await this.write(discovery, DISCOVERY_CLOSED);
  }

  /** Reservations currently on disk. */
  list(): DhcpReservation[] {
    return [...this.byMac.values()];
  }

  byMacAddress(mac: string): DhcpReservation | undefined {
    const m = normaliseMac(mac);
    return m ? this.byMac.get(m) : undefined;
  }

  /** Writes (or rewrites) a reservation. Same content twice → no change. Refuses an IP held by another MAC. */
  async set(input: DhcpReservation): Promise<FileChange> {
    const r = checkReservation(input);
    if (r.ip) {
      for (const other of this.byMac.values()) {
        if (other.ip === r.ip && other.mac !== r.mac) {
          throw new DhcpReservationError(
            'ip',
            `${r.ip} is already reserved for ${other.mac} (${other.name})`,
          );
        }
      }
    }
    const name = macFileName(r.mac);
    const previous = this.byMac.get(r.mac);
    const changed: string[] = [];
    let needsRestart = false;
    // Boot URL first: when the hosts entry (and so the tag) appears, the URL is already there.
    const optsPath = `${this.paths.optsDir}/${name}`;
    const opts = optsLine(r);
    if (opts !== undefined && (await this.write(optsPath, opts))) changed.push(optsPath);
    if (opts === undefined && previous?.ipxeScriptUrl) {
      await rm(optsPath, { force: true });
      needsRestart = true; // dnsmasq keeps the old option until it restarts
    }
    const hostsPath = `${this.paths.hostsDir}/${name}`;
    if (await this.write(hostsPath, hostLine(r))) {
      changed.push(hostsPath);
      if (r.ip && this.seenIps.has(r.ip)) needsRestart = true;
      if (r.ip) this.seenIps.add(r.ip);
    }
    this.byMac.set(r.mac, r);
    return { changed, needsRestart };
  }

  /** Removes a reservation live: its hosts entry becomes "<mac>,ignore" until the next start deletes it. */
  async remove(macText: string): Promise<FileChange> {
    const mac = normaliseMac(macText);
    if (!mac) throw new DhcpReservationError('mac', `${JSON.stringify(macText)} is not a MAC address`);
    const path = `${this.paths.hostsDir}/${macFileName(mac)}`;
    this.byMac.delete(mac);
    if (!(await this.exists(path))) return { changed: [] };
    return { changed: (await this.write(path, tombstone(mac))) ? [path] : [] };
  }

  async setDiscovery(open: boolean): Promise<FileChange> {
    const path = `${this.paths.hostsDir}/${DISCOVERY_FILE}`;
    return { changed: (await this.write(path, open ? DISCOVERY_OPEN : DISCOVERY_CLOSED)) ? [path] : [] };
  }

  async discoveryOpen(): Promise<boolean> {
    const text = await readFile(`${this.paths.hostsDir}/${DISCOVERY_FILE}`, 'utf8').catch(() => '');
    return text.trim() === DISCOVERY_OPEN;
  }

  private async exists(path: string): Promise<boolean> {
    return readFile(path).then(
      () => true,
      () => false,
    );
  }

  /** Atomic write (stage + rename). Returns false when the file already holds exactly this content. */
  private async write(path: string, line: string): Promise<boolean> {
    const content = `${line}\n`;
    const current = await readFile(path, 'utf8').catch(() => undefined);
    if (current === content) return false;
    const staged = `${this.paths.tmpDir}/${process.pid}.${++this.tmpCounter}`;
    await writeFile(staged, content, { mode: this.gid === undefined ? 0o644 : 0o640 });
    if (this.gid !== undefined) await chown(staged, 0, this.gid);
    await rename(staged, path);
    return true;
  }
}

/** Parses a hosts-dir file written by hostLine() (or a tombstone); undefined for anything else. */
export function parseHostFile(
  text: string,
): { mac: string; ip?: string; hostname: string; tag?: string; name?: string; ignore: boolean } | undefined {
  const lines = text.split('\n').map((l) => l.trim());
  const name = lines.find((l) => l.startsWith('# node='))?.slice('# node='.length);
  const entry = lines.find((l) => l && !l.startsWith('#'));
  if (!entry) return undefined;
  const parts = entry.split(',');
  const mac = normaliseMac(parts[0] ?? '');
  if (!mac) return undefined;
  let tag: string | undefined;
  let ip: string | undefined;
  let hostname = '';
  let ignore = false;
  for (const part of parts.slice(1)) {
    if (part.startsWith('set:'))
      tag = part === `set:${RESERVED_TAG}` ? tag : part.slice(4); // the per-host one
    else if (part === 'ignore') ignore = true;
    else if (ipv4Problem(part) === undefined) ip = part;
    else hostname = part;
  }
  return { mac, ip, hostname, tag, name, ignore };
}
