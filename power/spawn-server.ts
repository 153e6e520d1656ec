// Runs short-lived commands (ipmitool) from a small helper process instead of from the controller itself.
// Why: fork() copies the page tables of the process that forks and the parent then takes a copy-on-write fault
// for every page it touches; from a controller of 300–450 MB each spawn costs 15–25 ms of its CPU (measured:
// ChildProcess.spawn was 11% of the controller's main thread in a 100-node install, 4–6 ipmitool calls per
// node). The helper is ~40 MB: ~1.5 ms per spawn. No library does this (execa/nano-spawn spawn in-process).
import { type ChildProcess, fork } from 'node:child_process';

const CHILD = new URL('./spawn-server-child.mjs', import.meta.url).pathname;

export interface SpawnRequest {
  file: string;
  args: string[];
  /** the whole environment of the command (nothing is inherited) */
  env: Record<string, string>;
  /** SIGKILL after this long */
  timeoutMs: number;
}

export interface SpawnResult {
  /** undefined: the command could not be started (see `error`) or was killed */
  exitCode?: number;
  signal?: string;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  error?: string;
}

interface Reply extends Omit<SpawnResult, 'exitCode' | 'signal'> {
  id: number;
  exitCode: number | null;
  signal: string | null;
}

export class SpawnServer {
  private child: ChildProcess | undefined;
  private nextId = 1;
  /** commands in flight, each with the helper that runs it (a dead helper fails only its own commands) */
  private readonly pending = new Map<number, { helper: ChildProcess; resolve: (r: SpawnResult) => void }>();

  run(req: SpawnRequest): Promise<SpawnResult> {
    const child = this.ensure();
    const id = this.nextId++;
    // a command in flight keeps the process alive (helper and channel are unref'd when idle); both, because
    // when the helper dies the channel may close before its exit is reaped, and with nothing ref'd the event
    // loop could end with the command's promise still pending
    child.ref();
    (child.channel as { ref?: () => void } | undefined)?.ref?.();
    return new Promise((resolve) => {
      this.pending.set(id, { helper: child, resolve });
      child.send({ id, ...req }, (err) => {
        if (err) this.settle(id, { stdout: '', stderr: '', timedOut: false, error: err.message });
      });
    });
  }

  /** Stops the helper; commands still running are killed by it. */
  close(): void {
    this.child?.disconnect();
    this.child = undefined;
  }

  private ensure(): ChildProcess {
    if (this.child?.connected) return this.child;
    // no tsx, no inherited flags: a plain, small Node process
    const child = fork(CHILD, [], {
      execArgv: [],
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
      serialization: 'json',
    });
    child.on('message', (m: Reply) =>
      this.settle(m.id, {
        exitCode: m.exitCode ?? undefined,
        signal: m.signal ?? undefined,
        stdout: m.stdout,
        stderr: m.stderr,
        timedOut: m.timedOut,
        error: m.error,
      }),
    );
    // commands in flight lose their answer: report them as not run (the caller's error handling applies).
    // Whichever comes first: the channel closing or the exit being reaped.
    const lost = (why: string) => {
      if (this.child === child) this.child = undefined;
      for (const [id, p] of [...this.pending])
        if (p.helper === child)
          this.settle(id, {
            stdout: '',
            stderr: '',
            timedOut: false,
            error: `the spawn helper exited (${why}) before the command finished`,
          });
    };
    child.on('disconnect', () => lost('channel closed'));
    child.on('exit', (code, signal) => lost(String(signal ?? code)));
    // the helper must not keep the controller alive, nor the controller wait for it
    child.unref();
    (child.channel as { unref?: () => void } | undefined)?.unref?.();
    this.child = child;
    return child;
  }

  private settle(id: number, r: SpawnResult): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    if (![...this.pending.values()].some((q) => q.helper === p.helper)) {
      p.helper.unref();
      (p.helper.channel as { unref?: () => void } | undefined)?.unref?.();
    }
    p.resolve(r);
  }
}

let shared: SpawnServer | undefined;
/** The controller-wide helper (started on first use). */
export function sharedSpawnServer(): SpawnServer {
  shared ??= new SpawnServer();
  return shared;
}
