// What the live view shows, computed from one poll of a ClusterInstall (progress + table queries): nodes per
// phase, counts per outcome, the nodes stuck longest, an ETA. Pure, so the numbers are unit-testable.
import { BOOT_PHASES } from '../netboot/types.ts';
import type { NodeOutcome, Progress, TableView } from '../workflows/messages.ts';
import { formatDuration } from './output.ts';

/** One poll of a running (or finished) install. */
export interface Snapshot {
  workflowId: string;
  /** Temporal execution status: RUNNING, COMPLETED, FAILED, … */
  status: string;
  /** ms since epoch the workflow started */
  startedAt?: number;
  progress?: Progress;
  table?: TableView;
  /** power-on pacing of the spec, when known (ETA lower bound before any node finished) */
  pacing?: { intervalMs: number; maxBooting: number };
  /** why the queries did not answer (e.g. no worker running) */
  queryError?: string;
}

/** Nodes powered on but not yet seen on DHCP are shown in this pseudo-phase before the boot chain. */
export const POWER_ON_PHASE = 'power-on';

export interface PhaseCount {
  phase: string;
  nodes: number;
}

export function finishedCount(p: Progress): number {
  return Object.values(p.outcomes).reduce<number>((a, b) => a + (b ?? 0), 0);
}

/** Nodes per phase of the boot chain (in chain order, then any phase the chain does not know). */
export function phaseCounts(p: Progress): PhaseCount[] {
  const inTable = Object.values(p.phases).reduce((a, b) => a + b, 0);
  const waiting = Math.max(0, p.started - finishedCount(p) - inTable);
  const known: string[] = [POWER_ON_PHASE, ...BOOT_PHASES];
  const extra = Object.keys(p.phases).filter((k) => !known.includes(k));
  return [...known, ...extra].map((phase) => ({
    phase,
    // the workflow may report 'power-on' itself (a node in the table before DHCP): add it to the computed wait
    nodes: (phase === POWER_ON_PHASE ? waiting : 0) + (p.phases[phase] ?? 0),
  }));
}

export interface Eta {
  ms: number;
  /** throughput: from the nodes finished so far; pacing: a lower bound from the power-on interval */
  basis: 'throughput' | 'pacing' | 'done';
}

export function estimateEta(s: Snapshot, now: number): Eta | undefined {
  const p = s.progress;
  if (!p) return undefined;
  if (p.state === 'done') return { ms: 0, basis: 'done' };
  if (p.total === 0) return undefined; // discovery has not counted the nodes yet
  const finished = finishedCount(p);
  if (finished > 0 && s.startedAt !== undefined) {
    const perNode = (now - s.startedAt) / finished;
    return { ms: Math.max(0, Math.round(perNode * (p.total - finished))), basis: 'throughput' };
  }
  // the live pacing (it changes with `pxeflow pace`), else the spec's
  const interval = p.intervalMs ?? s.pacing?.intervalMs;
  if (interval) return { ms: Math.max(0, p.total - p.started) * interval, basis: 'pacing' };
  return undefined;
}

export function formatEta(eta: Eta | undefined): string {
  if (!eta) return 'ETA unknown';
  if (eta.basis === 'done') return 'done';
  return eta.basis === 'pacing' ? `ETA ≥ ${formatDuration(eta.ms)}` : `ETA ~${formatDuration(eta.ms)}`;
}

export interface StuckNode {
  node: string;
  phase: string;
  bmcIp: string;
  dhcpIp: string;
  /** ms since the node was seen on DHCP (the table entry's `since`) */
  forMs: number;
}

/** The in-flight nodes that have been in the install longest (monitor side of the table). */
export function stuckNodes(table: TableView | undefined, now: number, limit = 5): StuckNode[] {
  if (!table) return [];
  return [...table.monitor]
    .sort((a, b) => a.since - b.since)
    .slice(0, limit)
    .map((e) => ({ node: e.node, phase: e.phase, bmcIp: e.bmcIp, dhcpIp: e.dhcpIp, forMs: now - e.since }));
}

const OUTCOME_ORDER: NodeOutcome[] = ['success', 'failure', 'timeout', 'power-error', 'skipped', 'cancelled'];

export function outcomeCounts(p: Progress): Array<{ outcome: NodeOutcome; nodes: number }> {
  return OUTCOME_ORDER.filter((o) => (p.outcomes[o] ?? 0) > 0).map((o) => ({
    outcome: o,
    nodes: p.outcomes[o]!,
  }));
}

/** One plain line per change (no TTY): time, state, started/total, phases, outcomes, ETA, the longest stuck. */
export function progressLine(s: Snapshot, now: number): string {
  const time = new Date(now).toISOString().slice(11, 19);
  const p = s.progress;
  if (!p)
    return `${time} ${s.workflowId} ${s.status.toLowerCase()}${s.queryError ? ` (${s.queryError})` : ''}`;
  const phases = phaseCounts(p)
    .filter((c) => c.nodes > 0)
    .map((c) => `${c.phase}:${c.nodes}`)
    .join(' ');
  const outcomes = outcomeCounts(p)
    .map((c) => `${c.outcome}:${c.nodes}`)
    .join(' ');
  const stuck = stuckNodes(s.table, now, 1)[0];
  return [
    time,
    p.cluster,
    p.paused ? `${p.state} (paused)` : p.state,
    `started ${p.started}/${p.total}`,
    phases && `[${phases}]`,
    outcomes && `done ${outcomes}`,
    formatEta(estimateEta(s, now)),
    stuck && `longest: ${stuck.node} in ${stuck.phase} for ${formatDuration(stuck.forMs)}`,
  ]
    .filter(Boolean)
    .join(' · ');
}

/** The `--json` progress record (one per line). */
export function progressRecord(s: Snapshot, now: number) {
  const p = s.progress;
  return {
    type: 'progress' as const,
    at: new Date(now).toISOString(),
    workflowId: s.workflowId,
    status: s.status,
    ...(p
      ? {
          progress: p,
          phases: Object.fromEntries(phaseCounts(p).map((c) => [c.phase, c.nodes])),
          finished: finishedCount(p),
          eta: estimateEta(s, now),
          stuck: stuckNodes(s.table, now),
        }
      : {}),
    ...(s.queryError ? { queryError: s.queryError } : {}),
  };
}
