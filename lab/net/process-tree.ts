// Stop a process and everything it started, by PID only (never by name): the descendants are found by
// walking /proc parent links, signalled together, and SIGKILLed if they outlive the grace period.
import { readFile, readdir } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

async function parentOf(pid: number): Promise<number | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid …" — comm may contain spaces and parentheses, so split after the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[1]);
  } catch {
    return undefined;
  }
}

/** `pid` and all its descendants that exist right now (parents before children). */
export async function processTree(pid: number): Promise<number[]> {
  const entries = await readdir('/proc');
  const children = new Map<number, number[]>();
  await Promise.all(
    entries
      .filter((e) => /^\d+$/.test(e))
      .map(async (e) => {
        const child = Number(e);
        const parent = await parentOf(child);
        if (parent === undefined) return;
        const list = children.get(parent) ?? [];
        list.push(child);
        children.set(parent, list);
      }),
  );
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const p = queue.shift()!;
    if (out.includes(p)) continue;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    // a zombie still answers signal 0; it is gone for our purposes
    return true;
  } catch {
    return false;
  }
}

async function isZombie(pid: number): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/**
 * Sends `signal` (default SIGTERM) to `pid` and its descendants, waits up to `graceMs` for all of them to
 * end, then SIGKILLs the survivors. Resolves when none is left (zombies count as gone).
 */
export async function killTree(
  pid: number | undefined,
  opts: { signal?: NodeJS.Signals; graceMs?: number } = {},
): Promise<void> {
  if (!pid || pid <= 1) return;
  const pids = alive(pid) ? await processTree(pid) : [];
  const signal = (p: number, s: NodeJS.Signals) => {
    try {
      process.kill(p, s);
    } catch {
      /* already gone */
    }
  };
  for (const p of pids) signal(p, opts.signal ?? 'SIGTERM');
  const deadline = Date.now() + (opts.graceMs ?? 2000);
  const remaining = async () => {
    const left: number[] = [];
    for (const p of pids) if (alive(p) && !(await isZombie(p))) left.push(p);
    return left;
  };
  let left = await remaining();
  while (left.length && Date.now() < deadline) {
    await sleep(20);
    left = await remaining();
  }
  for (const p of left) signal(p, 'SIGKILL');
  while ((await remaining()).length && Date.now() < deadline + 2000) await sleep(20);
}
