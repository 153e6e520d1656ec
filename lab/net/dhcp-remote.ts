// Drives a DHCP supervisor running in another network namespace (lab/net/dhcp-child.ts) over JSON lines.
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ResultPromise } from 'execa';
import type { Lease } from '../../netboot/dhcp/supervisor.ts';
import type { DhcpOptions } from '../../netboot/dhcp/supervisor.ts';
import type { DhcpReservation } from '../../netboot/dhcp/reservations.ts';
import type { BootEvent } from '../../netboot/types.ts';
import { spawnInNamespace } from '../netns.ts';
import { killTree } from './process-tree.ts';

const CHILD = fileURLToPath(new URL('./dhcp-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../..', import.meta.url));

export class RemoteDhcpError extends Error {
  constructor(
    message: string,
    readonly errorName?: string,
    readonly failure?: string,
  ) {
    super(message);
    this.name = 'RemoteDhcpError';
  }
}

export type RemoteDhcpOptions = Omit<DhcpOptions, 'onEvent' | 'onStateChange' | 'logger'>;

export class RemoteDhcp {
  readonly events: BootEvent[] = [];
  readonly states: { state: string; restarts: number; error?: string }[] = [];
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private readonly listeners = new Set<() => void>();
  private nextId = 1;
  readonly stderr: string[] = [];
  /** the supervisor's log records (dnsmasq lines are under `dnsmasq`, tokens redacted) */
  readonly logs: Record<string, unknown>[] = [];

  private constructor(readonly child: ResultPromise) {
    createInterface({ input: child.stdout! }).on('line', (line) => this.onLine(line));
    createInterface({ input: child.stderr! }).on('line', (line) => this.stderr.push(line));
    child.then(() => {
      for (const p of this.pending.values())
        p.reject(new RemoteDhcpError(`dhcp child exited: ${this.stderr.join('\n')}`));
      this.pending.clear();
    });
  }

  /** Spawns the child in `ns` (it does not start dnsmasq yet: call start()). */
  static spawn(ns: string): RemoteDhcp {
    const child = spawnInNamespace(ns, process.execPath, ['--import', 'tsx', CHILD], {
      cwd: REPO,
      stdin: 'pipe',
      buffer: false,
    });
    return new RemoteDhcp(child);
  }

  /** Spawn + start in one go. */
  static async start(ns: string, options: RemoteDhcpOptions): Promise<RemoteDhcp> {
    const remote = RemoteDhcp.spawn(ns);
    try {
      await remote.call('start', options);
    } catch (e) {
      await remote.kill();
      throw e;
    }
    return remote;
  }

  private onLine(line: string): void {
    let msg: {
      id?: number;
      ok?: boolean;
      result?: unknown;
      error?: { name?: string; message: string; failure?: string };
      event?: BootEvent;
      state?: string;
      restarts?: number;
    };
    try {
      msg = JSON.parse(line);
    } catch {
      this.stderr.push(line);
      return;
    }
    if (msg.event) this.events.push(msg.event);
    if ((msg as { log?: unknown }).log) this.logs.push((msg as { log: Record<string, unknown> }).log);
    if (msg.state)
      this.states.push({
        state: msg.state,
        restarts: msg.restarts ?? 0,
        error: (msg as { error?: string }).error,
      });
    if (msg.id !== undefined) {
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.ok) p?.resolve(msg.result);
      else p?.reject(new RemoteDhcpError(msg.error?.message ?? 'error', msg.error?.name, msg.error?.failure));
    }
    for (const l of this.listeners) l();
  }

  call(op: string, ...args: unknown[]): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin!.write(`${JSON.stringify({ id, op, args })}\n`);
    });
  }

  setReservation = (r: DhcpReservation) => this.call('setReservation', r) as Promise<void>;
  removeReservation = (mac: string) => this.call('removeReservation', mac) as Promise<void>;
  openDiscoveryWindow = () => this.call('openDiscoveryWindow') as Promise<void>;
  closeDiscoveryWindow = () => this.call('closeDiscoveryWindow') as Promise<void>;
  leases = () => this.call('leases') as Promise<Lease[]>;
  dnsmasqPid = () => this.call('pid') as Promise<number | undefined>;
  status = () =>
    this.call('status') as Promise<{ pid?: number; state: string; restarts: number; reloads: number }>;
  stop = () => this.call('stop') as Promise<void>;

  /** Resolves with the first state/event that satisfies `check` (checked on every message), or rejects. */
  async waitFor<T>(check: () => T | undefined, timeoutMs = 10_000, what = 'condition'): Promise<T> {
    const first = check();
    if (first !== undefined) return first;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const listener = () => {
        const v = check();
        if (v === undefined) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        resolve(v);
      };
      this.listeners.add(listener);
    });
  }

  /** Stops dnsmasq and the child; kills the whole tree by PID if it does not go quietly. */
  async kill(): Promise<void> {
    this.child.stdin?.end();
    const done = await Promise.race([
      this.child.then(() => true),
      new Promise((r) => setTimeout(() => r(false), 4000)),
    ]);
    if (!done) await killTree(this.child.pid, { graceMs: 1000 });
  }
}
