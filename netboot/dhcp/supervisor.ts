// Runs dnsmasq (DHCP only) for the controller and keeps it running: renders its config, checks that it can
// start (config syntax, UDP port 67 free in this network namespace, controller address on the interface),
// turns its log stream into BootEvents, restarts it with backoff when it dies (and gives up, loudly, on a
// crash loop), and changes reservations and the discovery window live through the files it watches.
// It runs in whatever network namespace its Node process is in.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import { redactUrl } from '../http/redact.ts';
import type { BootEvent } from '../types.ts';
import { type DhcpConfigInput, dhcpPaths, parseDhcpConfig, renderDnsmasqConfig } from './config.ts';
import { DhcpEventBuilder } from './events.ts';
import { type DnsmasqLogRecord, parseDnsmasqLine } from './log-parser.ts';
import { type DhcpReservation, type FileChange, ReservationFiles } from './reservations.ts';
import { groupId } from './system.ts';
import { parseLeaseFile, type Lease } from './leases.ts';
import { DhcpStartError, describeFailure, preflight } from './preflight.ts';

export type { DhcpReservation } from './reservations.ts';
export type { Lease } from './leases.ts';
export { parseLeaseFile } from './leases.ts';
export { DhcpStartError } from './preflight.ts';

/** Minimal logger (pino's Logger fits). */
export interface DhcpLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export interface DhcpOptions extends DhcpConfigInput {
  /** dnsmasq binary (default "dnsmasq" on PATH) */
  dnsmasqPath?: string;
  onEvent?: (event: BootEvent) => void;
  /** state changes: running, restarting, failed (crash loop: dnsmasq is no longer restarted) */
  onStateChange?: (state: DhcpState, detail: { restarts: number; error?: Error }) => void;
  logger?: DhcpLogger;
  /** crash loop: more than `maxRestarts` unexpected exits within `restartWindowMs` → failed (default 5 / 60 s) */
  maxRestarts?: number;
  restartWindowMs?: number;
  /** how long to wait for dnsmasq to confirm it read a changed file (default 5 s) */
  applyTimeoutMs?: number;
}

export type DhcpState = 'starting' | 'running' | 'restarting' | 'failed' | 'stopped';

export interface DhcpService {
  /** PID of the current dnsmasq process (undefined while restarting) */
  readonly pid: number | undefined;
  readonly state: DhcpState;
  /** unexpected dnsmasq exits that were followed by a restart */
  readonly restarts: number;
  /** planned restarts that applied reservation changes dnsmasq cannot take live */
  readonly reloads: number;
  setReservation(r: DhcpReservation): Promise<void>;
  removeReservation(mac: string): Promise<void>;
  openDiscoveryWindow(): Promise<void>;
  closeDiscoveryWindow(): Promise<void>;
  reservations(): DhcpReservation[];
  leases(): Promise<Lease[]>;
  stop(): Promise<void>;
}

const noopLogger: DhcpLogger = { debug() {}, info() {}, warn() {}, error() {} };
const START_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 3000;
const RELOAD_COALESCE_MS = 50;

export async function startDhcp(opts: DhcpOptions): Promise<DhcpService> {
  const {
    dnsmasqPath: _binary,
    onEvent: _onEvent,
    onStateChange: _onStateChange,
    logger: _logger,
    maxRestarts: _maxRestarts,
    restartWindowMs: _restartWindowMs,
    applyTimeoutMs: _applyTimeoutMs,
    ...configInput
  } = opts;
  const config = parseDhcpConfig(configInput);
  const paths = dhcpPaths(config.stateDir);
  const log = opts.logger ?? noopLogger;
  const binary = opts.dnsmasqPath ?? 'dnsmasq';
  const applyTimeoutMs = opts.applyTimeoutMs ?? 5000;
  const maxRestarts = opts.maxRestarts ?? 5;
  const restartWindowMs = opts.restartWindowMs ?? 60_000;

  const files = new ReservationFiles(paths, await groupId(config.group));
  await files.prepare({ closeDiscovery: true });
  await writeFile(paths.conf, renderDnsmasqConfig(configInput), { mode: 0o644 });
  const check = await execa(binary, ['--test', `--conf-file=${paths.conf}`], {
    reject: false,
    stdin: 'ignore',
  });
  if (check.exitCode !== 0) {
    throw new DhcpStartError(
      'config',
      `dnsmasq rejected the generated config: ${String(check.stderr).trim()}`,
    );
  }

  const events = new DhcpEventBuilder((mac) => files.byMacAddress(mac)?.name);
  /** how often dnsmasq logged "read <path>", and who waits for the count to pass a value */
  const readCounts = new Map<string, number>();
  const readListeners = new Set<() => void>();
  let child: ResultPromise | undefined;
  let state: DhcpState = 'starting';
  let restarts = 0;
  const recentExits: number[] = [];
  let stopping = false;
  let exited: Promise<void> = Promise.resolve();
  let pendingRestart: Promise<void> | undefined;
  const stopSignal = new AbortController();

  const setState = (s: DhcpState, error?: Error) => {
    state = s;
    opts.onStateChange?.(s, { restarts, error });
  };

  const onRecord = (rec: DnsmasqLogRecord, line: string) => {
    if (rec.kind === 'read-file') {
      readCounts.set(rec.path, (readCounts.get(rec.path) ?? 0) + 1);
      for (const listener of readListeners) listener();
    }
    const event = events.accept(rec);
    if (event) {
      try {
        opts.onEvent?.(event);
      } catch (e) {
        log.error({ err: e }, 'dhcp: event listener threw');
      }
    }
    if (rec.kind === 'fatal') log.error({ dnsmasq: redactUrl(line) }, 'dhcp: dnsmasq error');
    else log.debug({ dnsmasq: redactUrl(line) }, 'dhcp: dnsmasq');
  };

  /** Spawns dnsmasq and resolves once it has bound its socket; rejects with DhcpStartError otherwise. */
  const spawnOnce = async (): Promise<void> => {
    await files.prepare({ closeDiscovery: false }); // drops tombstones: dnsmasq is not running now
    await reapStaleDnsmasq(paths.conf, log);
    await preflight(config.interface, config.controllerAddress);
    const proc = execa(binary, [`--conf-file=${paths.conf}`], {
      stdin: 'ignore',
      buffer: false,
      reject: false,
      cleanup: true,
    });
    child = proc;
    const early: string[] = [];
    let ready = false;
    const readyPromise = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new DhcpStartError('timeout', `dnsmasq did not report ready within ${START_TIMEOUT_MS} ms`));
      }, START_TIMEOUT_MS);
      const handle = (line: string) => {
        const rec = parseDnsmasqLine(line);
        if (!ready) early.push(line);
        if (rec.kind === 'ready' && !ready) {
          ready = true;
          clearTimeout(timer);
          resolve();
        }
        onRecord(rec, line);
      };
      for (const stream of [proc.stdout, proc.stderr]) {
        if (stream)
          createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', handle);
      }
      proc.then((r) => {
        if (ready) return;
        clearTimeout(timer);
        const fatal = early.map((l) => parseDnsmasqLine(l)).find((r) => r.kind === 'fatal');
        const text = early.join(' | ').trim() || `exit code ${r.exitCode ?? r.signal}`;
        reject(
          fatal?.kind === 'fatal'
            ? new DhcpStartError(
                fatal.failure,
                describeFailure(fatal.failure, config.interface, fatal.message),
              )
            : new DhcpStartError('other', `dnsmasq exited during start-up: ${redactUrl(text)}`),
        );
      });
    });
    exited = proc.then(() => undefined);
    try {
      await readyPromise;
    } catch (e) {
      await stopChild(proc);
      child = undefined;
      throw e;
    }
    log.info({ pid: proc.pid, interface: config.interface }, 'dhcp: dnsmasq running');
    proc.then((r) => onExit(proc, r.exitCode, r.signal));
  };

  const onExit = (proc: ResultPromise, code: number | undefined, signal: string | undefined) => {
    if (child !== proc) return;
    child = undefined;
    if (stopping) return;
    crashed(`dnsmasq exited unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`})`);
  };

  /** Restart with backoff, or give up (state 'failed') when it keeps dying. */
  const crashed = (why: string) => {
    const now = Date.now();
    recentExits.push(now);
    while (recentExits.length && recentExits[0] < now - restartWindowMs) recentExits.shift();
    if (recentExits.length > maxRestarts) {
      const err = new Error(
        `${why}; ${recentExits.length} failures within ${restartWindowMs / 1000} s — crash loop, not restarting. ` +
          'DHCP is down on the provisioning network until the controller restarts it.',
      );
      log.error({ err, restarts }, 'dhcp: dnsmasq crash loop');
      setState('failed', err);
      return;
    }
    const delay = Math.min(5000, 200 * 2 ** (recentExits.length - 1));
    log.warn({ delayMs: delay, restarts: restarts + 1 }, `dhcp: ${why}; restarting`);
    setState('restarting');
    pendingRestart = (async () => {
      await sleep(delay, undefined, { signal: stopSignal.signal }).catch(() => {});
      if (stopping) return;
      restarts++;
      try {
        await spawnOnce();
        setState('running');
      } catch (e) {
        if (!stopping) crashed(`restart failed: ${(e as Error).message}`);
      }
    })();
  };

  const stopChild = async (proc: ResultPromise) => {
    if (proc.exitCode !== null && proc.exitCode !== undefined) return;
    proc.kill('SIGTERM');
    const done = await Promise.race([proc.then(() => true), sleep(STOP_GRACE_MS).then(() => false)]);
    if (!done) {
      proc.kill('SIGKILL');
      await proc;
    }
  };

  /**
   * Runs a file change and resolves once dnsmasq logged reading every changed path after it (dnsmasq may read
   * a file before write() returns, so the read counts are taken first). Without a running dnsmasq there is
   * nothing to wait for: the next start reads every file.
   */
  const applied = async (change: () => Promise<FileChange>) => {
    const before = new Map(readCounts);
    const { changed, needsRestart } = await change();
    if (needsRestart) return restartSoon();
    if (!changed.length || !child || state !== 'running') return;
    const done = () => changed.every((p) => (readCounts.get(p) ?? 0) > (before.get(p) ?? 0));
    if (done()) return;
    let listener = () => {};
    const ok = await Promise.race([
      new Promise<boolean>((resolve) => {
        listener = () => done() && resolve(true);
        readListeners.add(listener);
      }),
      sleep(applyTimeoutMs).then(() => false),
    ]);
    readListeners.delete(listener);
    if (!ok) {
      throw new Error(
        `dnsmasq did not confirm reading ${changed.join(', ')} within ${applyTimeoutMs} ms (files are written; ` +
          'they apply at the latest when dnsmasq restarts)',
      );
    }
  };

  /**
   * Restarts dnsmasq for changes it cannot take live (reservations.ts). Changes within RELOAD_COALESCE_MS
   * share one restart; restarts never overlap. Leases survive in the lease file.
   */
  let reloadQueued: Promise<void> | undefined;
  let reloadChain: Promise<void> = Promise.resolve();
  const restartSoon = (): Promise<void> => {
    reloadQueued ??= sleep(RELOAD_COALESCE_MS).then(() => {
      reloadQueued = undefined;
      reloadChain = reloadChain.catch(() => {}).then(reloadNow);
      return reloadChain;
    });
    return reloadQueued;
  };
  const reloadNow = async () => {
    if (stopping || state === 'failed') return;
    await pendingRestart;
    const proc = child;
    child = undefined; // a planned exit: onExit ignores it
    if (proc) await stopChild(proc);
    reloads++;
    try {
      await spawnOnce();
    } catch (e) {
      crashed(`restart to apply reservation changes failed: ${(e as Error).message}`);
      throw e;
    }
  };
  let reloads = 0;

  await spawnOnce();
  setState('running');

  return {
    get pid() {
      return child?.pid;
    },
    get state() {
      return state;
    },
    get restarts() {
      return restarts;
    },
    get reloads() {
      return reloads;
    },
    async setReservation(r) {
      await applied(() => files.set(r));
    },
    async removeReservation(mac) {
      await applied(() => files.remove(mac));
    },
    async openDiscoveryWindow() {
      await applied(() => files.setDiscovery(true));
    },
    async closeDiscoveryWindow() {
      await applied(() => files.setDiscovery(false));
    },
    reservations: () => files.list(),
    async leases() {
      return parseLeaseFile(await readFile(paths.leases, 'utf8').catch(() => ''));
    },
    async stop() {
      stopping = true;
      stopSignal.abort();
      await pendingRestart;
      await reloadChain.catch(() => {});
      const proc = child;
      if (proc) await stopChild(proc);
      await exited.catch(() => {});
      child = undefined;
      if (state !== 'stopped') setState('stopped');
    },
  };
}

/**
 * A controller killed with SIGKILL leaves its dnsmasq running (nothing reaps it), and it may have been a dnsmasq
 * the supervisor restarted a moment before. The next start stops every dnsmasq still reading this very config
 * file — found by its exact `--conf-file=` argument in /proc, stopped by PID.
 */
export async function reapStaleDnsmasq(conf: string, log: DhcpLogger): Promise<void> {
  const mine = `--conf-file=${conf}`;
  const pids: number[] = [];
  for (const entry of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.split('\0').includes(mine)) pids.push(Number(entry));
  }
  // a zombie (its parent died and nobody reaps it) holds no socket: it counts as gone
  const alive = async (pid: number) => {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  };
  for (const pid of pids) {
    log.warn({ pid }, 'dhcp: stopping the dnsmasq a previous controller left running');
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      continue;
    }
    for (let i = 0; i < 100 && (await alive(pid)); i++) await sleep(20);
    if (await alive(pid)) process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && (await alive(pid)); i++) await sleep(20);
  }
}
