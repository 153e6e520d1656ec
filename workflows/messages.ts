// Signals, queries and the shapes they carry, shared by the workflows and the controller (netboot bridge, CLI).
// Sandbox-safe: @temporalio/workflow only.
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

export type NodeOutcome = 'success' | 'failure' | 'timeout' | 'power-error' | 'skipped' | 'cancelled';

/** A boot-chain step seen by a netboot service (never a secret in here). */
export interface PhaseSignal {
  phase: string;
  at: number;
  mac?: string;
  ip?: string;
  detail?: Record<string, string | number | boolean>;
}

/** The node's own report: the status POST, as forwarded by the controller. */
export interface StatusSignal {
  outcome: 'success' | 'failure';
  detail?: string;
  at: number;
  /** which attempt's token was used: a status for an older attempt is stale and ignored */
  attempt: number;
}

/** One row of the correspondence table (the method's IPMI-IP ↔ DHCP-IP table). */
export interface TableEntry {
  node: string;
  bmcIp: string;
  mac: string;
  dhcpIp: string;
  attempt: number;
  /** when the node was seen on DHCP (the entry was created) */
  since: number;
  /** last boot phase reached */
  phase: string;
}

/** Child → parent messages: the table entry ("sent to the monitor"), feedback and timeout (monitor → controller). */
export type NodeReport =
  | { kind: 'table'; entry: TableEntry }
  | { kind: 'booted'; node: string; at: number }
  | {
      kind: 'feedback';
      node: string;
      attempt: number;
      outcome: 'success' | 'failure';
      detail?: string;
      at: number;
    }
  | { kind: 'timeout'; node: string; attempt: number; waited: 'dhcp' | 'status'; at: number }
  /** the node workflow's end, by signal: the parent may have continued-as-new since it started the child */
  | {
      kind: 'done';
      result: NodeResult /** the child's first run id: a 'done' from another run of it is stale */;
      runId?: string;
    };

export interface NodeResult {
  node: string;
  bmcIp: string;
  mac?: string;
  dhcpIp?: string;
  outcome: NodeOutcome;
  detail?: string;
  attempts: number;
  /** phase → first time it was reached (ms since epoch), over all attempts */
  phases: Record<string, number>;
}

export interface ClusterReport {
  cluster: string;
  isoVersion: string;
  startedAt: number;
  finishedAt: number;
  counts: Record<NodeOutcome, number>;
  nodes: NodeResult[];
  /** entries dropped from the tables, kept for the report */
  table: TableEntry[];
}

export interface TableView {
  controller: TableEntry[];
  monitor: TableEntry[];
}

export interface Progress {
  cluster: string;
  state: 'preparing' | 'waiting-turn' | 'powering-on' | 'installing' | 'done';
  total: number;
  started: number;
  paused: boolean;
  intervalMs: number;
  maxBooting: number;
  /** nodes started and not finished */
  running: number;
  outcomes: Partial<Record<NodeOutcome, number>>;
  phases: Record<string, number>;
}

export interface NodeTimeline {
  node: string;
  attempt: number;
  phase: string;
  mac?: string;
  dhcpIp?: string;
  events: Array<{ attempt: number; phase: string; at: number }>;
  outcome?: NodeOutcome;
}

export const phaseSignal = defineSignal<[PhaseSignal]>('phase');
/** several phases in the order they happened (the bridge coalesces a burst into one signal) */
export const phasesSignal = defineSignal<[{ phases: PhaseSignal[] }]>('phases');
export const statusSignal = defineSignal<[StatusSignal]>('status');
export const nodeReportSignal = defineSignal<[NodeReport]>('nodeReport');
export const powerTurnSignal = defineSignal<[{ grantedAt: number }]>('powerTurn');

export const progressQuery = defineQuery<Progress>('progress');
export const tableQuery = defineQuery<TableView>('table');
export const reportQuery = defineQuery<ClusterReport | undefined>('report');
export const timelineQuery = defineQuery<NodeTimeline>('timeline');

// Live controls (Temporal Updates with validators: a rejected request leaves no trace in history).
export const pauseUpdate = defineUpdate<Progress, []>('pause');
export const resumeUpdate = defineUpdate<Progress, []>('resume');
export const setPaceUpdate = defineUpdate<Progress, [{ intervalMs?: number; maxBooting?: number }]>(
  'setPace',
);
export const retryNodesUpdate = defineUpdate<string[], [{ nodes: string[] | 'all-failed' }]>('retryNodes');
export const skipNodesUpdate = defineUpdate<string[], [{ nodes: string[] }]>('skipNodes');
