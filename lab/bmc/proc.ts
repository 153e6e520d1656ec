// Process checks by PID through /proc. A zombie counts as gone: on these machines PID 1 does not reap
// orphans, so a killed, re-parented node process stays a zombie forever although it no longer runs.
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/** State letter and process group of a PID, or undefined when there is no such process. */
export function procStat(pid: number): { state: string; pgrp: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: the fields after the last ") " are fixed.
    const rest = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    return { state: rest[0], pgrp: Number(rest[2]) };
  } catch {
    return undefined;
  }
}

export function isRunning(pid: number): boolean {
  const s = procStat(pid);
  return s !== undefined && s.state !== 'Z' && s.state !== 'X';
}

/** PIDs of running (non-zombie) processes in process group `pgid`. */
export function runningGroupMembers(pgid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = procStat(Number(entry));
    if (s && s.pgrp === pgid && s.state !== 'Z' && s.state !== 'X') pids.push(Number(entry));
  }
  return pids;
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** SIGTERM a process group, wait up to graceMs for it to empty, then SIGKILL what is left. */
export async function killGroup(pgid: number, graceMs = 2000): Promise<void> {
  if (!(pgid > 1)) return;
  signal(-pgid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  // Poll the leader (cheap); scan /proc for stragglers once at the end.
  while (isRunning(pgid) && Date.now() < deadline) await sleep(20);
  if (isRunning(pgid) || runningGroupMembers(pgid).length > 0) signal(-pgid, 'SIGKILL');
}
