// What every benchmark hands back: tables of figures (pxeflow next to its peer from the same run, with the
// ratio), a short reading of what limits them, notes on what was skipped. Each bench writes its result as
// bench/out/<name>.json; bench/run.ts renders them all into bench/RESULTS.md.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

export const OUT_DIR = new URL('../out/', import.meta.url).pathname;

export type Cell = string | number | null;

export interface BenchTable {
  title: string;
  columns: string[];
  rows: Cell[][];
}

export interface BenchResult {
  name: string;
  title: string;
  /** the command that produced this result */
  command: string;
  startedAt: string;
  durationSeconds: number;
  quick: boolean;
  machine: MachineInfo;
  tables: BenchTable[];
  /** what limits each figure, one short paragraph each */
  readings: string[];
  /** skipped parts, failures, caveats */
  notes: string[];
  /** the issue's goals, with what this run measured */
  goals: Goal[];
  raw?: unknown;
}

export interface Goal {
  goal: string;
  measured: string;
  /** null: not measured in this run */
  met: boolean | null;
}

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  os: string;
  node: string;
  /** 1-minute load average when the bench started: other work on the machine skews figures */
  loadAtStart: number;
}

export async function machineInfo(): Promise<MachineInfo> {
  const os = await readFile('/etc/os-release', 'utf8').catch(() => '');
  const load = Number((await readFile('/proc/loadavg', 'utf8').catch(() => '0')).split(' ')[0]);
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: (await execa('uname', ['-r'])).stdout.trim(),
    os: /PRETTY_NAME="([^"]+)"/.exec(os)?.[1] ?? 'unknown',
    node: process.version,
    loadAtStart: load,
  };
}

/** --quick on the command line or BENCH_QUICK=1: a short run with smaller counts. */
export const QUICK = process.argv.includes('--quick') || process.env.BENCH_QUICK === '1';

/** A bench's result builder: call `finish()` at the end (also on failure, with what it has). */
export async function startBench(name: string, title: string) {
  const startedAt = new Date();
  const machine = await machineInfo();
  const result: BenchResult = {
    name,
    title,
    command: ['node --import tsx', `bench/${name}.bench.ts`, ...process.argv.slice(2)].join(' '),
    startedAt: startedAt.toISOString(),
    durationSeconds: 0,
    quick: QUICK,
    machine,
    tables: [],
    readings: [],
    notes: [],
    goals: [],
  };
  return {
    result,
    table(title: string, columns: string[]): BenchTable {
      const t: BenchTable = { title, columns, rows: [] };
      result.tables.push(t);
      return t;
    },
    reading(text: string) {
      result.readings.push(text);
    },
    goal(goal: string, measured: string, met: boolean | null) {
      result.goals.push({ goal, measured, met });
    },
    note(text: string) {
      // error messages may carry a whole command line (execa): keep notes readable
      result.notes.push(text.length > 600 ? `${text.slice(0, 600)}…` : text);
      console.log(`note: ${text}`);
    },
    async finish(raw?: unknown): Promise<void> {
      result.durationSeconds = Math.round((Date.now() - startedAt.getTime()) / 1000);
      if (raw !== undefined) result.raw = raw;
      await mkdir(OUT_DIR, { recursive: true });
      await writeFile(join(OUT_DIR, `${name}.json`), `${JSON.stringify(result, null, 2)}\n`);
      for (const t of result.tables) {
        console.log(`\n${t.title}`);
        console.log(renderTable(t));
      }
      console.log(`\nwritten ${join(OUT_DIR, `${name}.json`)}`);
    },
  };
}

// --- statistics -----------------------------------------------------------------------------------------

export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
export const median = (xs: readonly number[]) => percentile(xs, 50);
export const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/** Rounds to `digits` significant-ish decimals; NaN/undefined become null (rendered as "—"). */
export function r(x: number | undefined, digits = 1): number | null {
  if (x === undefined || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** pxeflow / peer, as "1.23×" (null when either is missing). */
export function ratio(ours: number | undefined | null, peer: number | undefined | null): string | null {
  if (ours == null || peer == null || !Number.isFinite(ours) || !Number.isFinite(peer) || peer === 0)
    return null;
  return `${(ours / peer).toFixed(2)}×`;
}

// --- processes ------------------------------------------------------------------------------------------

const TICK = 100; // USER_HZ on Linux

/** CPU seconds (user + system, plus reaped children) of a process, or NaN when it is gone. */
export async function cpuSeconds(pid: number | undefined): Promise<number> {
  if (!pid) return Number.NaN;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (!stat) return Number.NaN;
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields after the command: state(0) … utime(11) stime(12) cutime(13) cstime(14)
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICK;
}

/** CPU seconds of a process and all its live descendants (nginx workers, forked TFTP transfers). */
export async function treeCpuSeconds(pid: number | undefined): Promise<number> {
  if (!pid) return Number.NaN;
  let total = await cpuSeconds(pid);
  if (!Number.isFinite(total)) return total;
  const { readdir } = await import('node:fs/promises');
  for (const task of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
    const kids = await readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '');
    for (const k of kids.split(' ').filter(Boolean)) {
      const c = await treeCpuSeconds(Number(k));
      if (Number.isFinite(c)) total += c;
    }
  }
  return total;
}

/**
 * CPU time of a server and everything it forks (tftpd-hpa forks a process per transfer that /proc cannot account
 * for afterwards): a cgroup-v1 cpuacct group of its own, named per run and removed by `close()`. Falls back to
 * the process tree when cpuacct is not there.
 */
export async function cpuGroup(name: string) {
  const { mkdir: mk, rmdir, readdir } = await import('node:fs/promises');
  const dir = `/sys/fs/cgroup/cpuacct/pxf-bench-${name}-${process.pid}`;
  const usable = await mk(dir).then(
    () => true,
    () => false,
  );
  let root: number | undefined;
  const descendants = async (pid: number): Promise<number[]> => {
    const out = [pid];
    for (const task of await readdir(`/proc/${pid}/task`).catch(() => [] as string[])) {
      const kids = await readFile(`/proc/${pid}/task/${task}/children`, 'utf8').catch(() => '');
      for (const k of kids.split(' ').filter(Boolean)) out.push(...(await descendants(Number(k))));
    }
    return out;
  };
  return {
    /** puts the process and its current descendants in the group (children forked later follow by themselves) */
    async add(pid: number | undefined): Promise<void> {
      root = pid;
      if (!usable || !pid) return;
      for (const p of await descendants(pid))
        await writeFile(`${dir}/cgroup.procs`, `${p}\n`).catch(() => {});
    },
    async seconds(): Promise<number> {
      if (!usable) return treeCpuSeconds(root);
      return Number((await readFile(`${dir}/cpuacct.usage`, 'utf8')).trim()) / 1e9;
    },
    async close(): Promise<void> {
      if (!usable) return;
      // anything still in it (nothing should be: the server was stopped) goes back to the root group
      const left = (await readFile(`${dir}/cgroup.procs`, 'utf8').catch(() => ''))
        .split('\n')
        .filter(Boolean);
      for (const p of left) await writeFile('/sys/fs/cgroup/cpuacct/cgroup.procs', `${p}\n`).catch(() => {});
      await rmdir(dir).catch(() => {});
    },
  };
}

/** Peak resident set (VmHWM) in MiB, or NaN. */
export async function peakRssMiB(pid: number | undefined): Promise<number> {
  if (!pid) return Number.NaN;
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /VmHWM:\s+(\d+) kB/.exec(status)?.[1];
  return kb ? Number(kb) / 1024 : Number.NaN;
}

/** Current resident set (VmRSS) in MiB, or NaN. */
export async function rssMiB(pid: number | undefined): Promise<number> {
  if (!pid) return Number.NaN;
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  return kb ? Number(kb) / 1024 : Number.NaN;
}

/** Direct children of a process (by PID) whose command name is `comm`. */
export async function childrenNamed(pid: number, comm: string): Promise<number[]> {
  const { readdir } = await import('node:fs/promises');
  const out: number[] = [];
  for (const d of await readdir('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const stat = await readFile(`/proc/${d}/stat`, 'utf8').catch(() => '');
    const name = /\(([^)]*)\)/.exec(stat)?.[1];
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (name === comm && ppid === pid) out.push(Number(d));
  }
  return out;
}

export const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

// --- rendering ------------------------------------------------------------------------------------------

const cell = (c: Cell) => (c === null || c === undefined ? '—' : String(c));

export function renderTable(t: BenchTable): string {
  const head = `| ${t.columns.join(' | ')} |`;
  const sep = `|${t.columns.map(() => '---').join('|')}|`;
  return [head, sep, ...t.rows.map((row) => `| ${row.map(cell).join(' | ')} |`)].join('\n');
}

export function renderSection(res: BenchResult): string {
  const lines = [
    `## ${res.title}`,
    '',
    `Measured ${res.startedAt.replace('T', ' ').slice(0, 19)} UTC in ${res.durationSeconds} s by \`${res.command}\`` +
      `${res.quick ? ' (quick run: smaller counts)' : ''}; load average at start ${res.machine.loadAtStart}.`,
    '',
  ];
  for (const t of res.tables) lines.push(`**${t.title}**`, '', renderTable(t), '');
  if (res.readings.length) {
    lines.push('What limits these figures:', '');
    for (const x of res.readings) lines.push(`- ${x}`);
    lines.push('');
  }
  if (res.notes.length) {
    lines.push('Notes:', '');
    for (const x of res.notes) lines.push(`- ${x}`);
    lines.push('');
  }
  return lines.join('\n');
}
