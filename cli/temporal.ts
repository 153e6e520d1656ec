// How the command finds and talks to Temporal: the address (flag, TEMPORAL_ADDRESS, the record the main
// command leaves in the state folder, 127.0.0.1:7233), a client with a short connect deadline, and the mapping of
// connection failures to exit code 3 with a message naming the address.
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { Client, Connection, isGrpcServiceError } from '@temporalio/client';
import { clusterWorkflowId } from '../config/schema.ts';
import { SA } from '../temporal/search-attributes.ts';
import { CliError, EXIT } from './output.ts';

export const DEFAULT_ADDRESS = '127.0.0.1:7233';
export const TASK_QUEUE = 'pxeflow';
export const WORKFLOW_TYPE = 'ClusterInstall';
const REPO_ROOT = new URL('..', import.meta.url).pathname;

export interface GlobalOptions {
  address?: string;
  namespace?: string;
}

/** What the main command records when it starts a Temporal server: `<state>/temporal.json`. */
export interface TemporalRecord {
  address: string;
  namespace?: string;
  uiUrl?: string;
  pid?: number;
}

/** `$PXEFLOW_STATE_DIR`, else /var/lib/pxeflow for root, else ./.state. */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PXEFLOW_STATE_DIR) return resolve(env.PXEFLOW_STATE_DIR);
  return process.getuid?.() === 0 ? '/var/lib/pxeflow' : resolve('.state');
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The recorded server, if a record exists whose server process (when it names one) is still alive. */
export function recordedTemporal(env: NodeJS.ProcessEnv = process.env): TemporalRecord | undefined {
  const candidates = env.PXEFLOW_STATE_DIR
    ? [join(resolve(env.PXEFLOW_STATE_DIR), 'temporal.json')]
    : [
        join(resolve('.state'), 'temporal.json'),
        join(REPO_ROOT, '.state', 'temporal.json'),
        join(stateDir(env), 'temporal.json'),
      ];
  for (const file of new Set(candidates)) {
    try {
      const rec = JSON.parse(readFileSync(file, 'utf8')) as TemporalRecord;
      if (typeof rec.address !== 'string' || rec.address === '') continue;
      if (typeof rec.pid === 'number' && !isAlive(rec.pid)) continue; // stale: that server is gone
      return rec;
    } catch {
      // no record there
    }
  }
  return undefined;
}

export interface ResolvedTarget {
  address: string;
  namespace: string;
  /** where the address came from, for messages */
  source: 'flag' | 'env' | 'record' | 'default';
  /** Temporal web UI, when known (TEMPORAL_UI_URL or the record) */
  uiUrl?: string;
}

export function resolveTarget(opts: GlobalOptions, env: NodeJS.ProcessEnv = process.env): ResolvedTarget {
  const rec = opts.address || env.TEMPORAL_ADDRESS ? undefined : recordedTemporal(env);
  const address = opts.address || env.TEMPORAL_ADDRESS || rec?.address || DEFAULT_ADDRESS;
  const source = opts.address ? 'flag' : env.TEMPORAL_ADDRESS ? 'env' : rec ? 'record' : 'default';
  const namespace = opts.namespace || env.TEMPORAL_NAMESPACE || rec?.namespace || 'default';
  const uiUrl = env.TEMPORAL_UI_URL || (source === 'record' ? rec?.uiUrl : undefined);
  return { address, namespace, source, ...(uiUrl ? { uiUrl } : {}) };
}

export interface Temporal {
  client: Client;
  target: ResolvedTarget;
  close(): Promise<void>;
}

function unreachable(target: ResolvedTarget, reason: string): CliError {
  const hint =
    target.source === 'default'
      ? ' (no --address, TEMPORAL_ADDRESS or recorded server: start one with `pxeflow worker`, or pass --address)'
      : target.source === 'record'
        ? ' (address recorded in the state folder)'
        : '';
  return new CliError(`cannot reach Temporal at ${target.address}${hint}: ${reason}`, EXIT.unreachable);
}

export async function connectTemporal(opts: GlobalOptions): Promise<Temporal> {
  const target = resolveTarget(opts);
  const connectTimeout = Number(process.env.PXEFLOW_CONNECT_TIMEOUT_MS ?? 5000);
  // A refused or unroutable address fails at once here; gRPC alone would retry until its deadline.
  const refused = await tcpProblem(target.address, connectTimeout);
  if (refused) throw unreachable(target, refused);
  let connection: Connection;
  try {
    connection = await Connection.connect({ address: target.address, connectTimeout });
  } catch (err) {
    throw unreachable(target, err instanceof Error ? err.message : String(err));
  }
  const client = new Client({ connection, namespace: target.namespace });
  return { client, target, close: () => connection.close() };
}

/** Why a TCP connection to host:port fails (refused, no route, unknown host, timeout), or undefined. */
export async function tcpProblem(address: string, timeoutMs: number): Promise<string | undefined> {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  if (!m) return `"${address}" is not host:port`;
  return await new Promise((resolve) => {
    const socket = connect({ host: m[1], port: Number(m[2]) });
    const done = (problem: string | undefined) => {
      socket.destroy();
      resolve(problem);
    };
    socket.setTimeout(timeoutMs, () => done(`no TCP answer within ${timeoutMs} ms`));
    socket.once('connect', () => done(undefined));
    socket.once('error', (err: NodeJS.ErrnoException) =>
      done(
        err.code === 'ECONNREFUSED'
          ? 'connection refused (is the server running?)'
          : `${err.code ?? ''} ${err.message}`.trim(),
      ),
    );
  });
}

/** Runs `fn` with a connected client; a lost connection on the way becomes exit 3 too. */
export async function withTemporal<T>(opts: GlobalOptions, fn: (t: Temporal) => Promise<T>): Promise<T> {
  const t = await connectTemporal(opts);
  try {
    return await fn(t);
  } catch (err) {
    if (isConnectionError(err)) throw unreachable(t.target, (err as Error).message);
    throw err;
  } finally {
    await t.close().catch(() => {});
  }
}

/** gRPC UNAVAILABLE (14): the server went away or never answered. */
export function isConnectionError(err: unknown): boolean {
  return isGrpcServiceError(err) && err.code === 14;
}

/** Link to a workflow in the web UI, when the UI is known. */
export function uiLink(target: ResolvedTarget, workflowId: string): string | undefined {
  if (!target.uiUrl) return undefined;
  return `${target.uiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(target.namespace)}/workflows/${encodeURIComponent(workflowId)}`;
}

/** "ceph-a" → "pxeflow/ceph-a"; a workflow id (anything with a "/", e.g. "pxeflow/ceph-a") is taken as is. */
export function workflowIdOf(cluster: string): string {
  if (cluster.includes('/')) return cluster;
  if (!CLUSTER_NAME.test(cluster)) {
    throw new CliError(
      `"${cluster}" is not a cluster name (a DNS label like ceph-a) nor a workflow id like pxeflow/ceph-a`,
    );
  }
  return clusterWorkflowId(cluster);
}

const CLUSTER_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface InstallSummary {
  workflowId: string;
  cluster: string;
  status: string;
  startTime?: string;
  closeTime?: string;
  phase?: string;
  outcome?: string;
}

/** Every ClusterInstall the server knows, newest first (visibility: may lag a running start by a moment). */
export async function listInstalls(client: Client, extraQuery?: string): Promise<InstallSummary[]> {
  const out: InstallSummary[] = [];
  const query = `WorkflowType="${WORKFLOW_TYPE}"${extraQuery ? ` AND ${extraQuery}` : ''}`;
  for await (const wf of client.workflow.list({ query })) {
    const sa = wf.typedSearchAttributes;
    out.push({
      workflowId: wf.workflowId,
      cluster: sa.get(SA.cluster) ?? wf.workflowId.replace(/^pxeflow\//, ''),
      status: wf.status.name,
      startTime: wf.startTime?.toISOString(),
      closeTime: wf.closeTime?.toISOString(),
      phase: sa.get(SA.phase),
      outcome: sa.get(SA.outcome),
    });
    if (out.length >= 1000) break;
  }
  return out;
}

/** CLUSTER given → its workflow id; absent → the only running install, or a usage error listing the choices. */
export async function pickCluster(client: Client, cluster: string | undefined): Promise<string> {
  if (cluster) return workflowIdOf(cluster);
  const running = await listInstalls(client, 'ExecutionStatus="Running"');
  if (running.length === 1) return running[0].workflowId;
  if (running.length === 0) {
    throw new CliError('no install is running; name the cluster (see `pxeflow status` for past installs)');
  }
  throw new CliError(
    `${running.length} installs are running (${running.map((r) => r.cluster).join(', ')}); name one of them`,
  );
}

/** The `pxeflow watch …` line that re-attaches to this install from another shell. */
export function reattachCommand(target: ResolvedTarget, workflowId: string): string {
  const short = workflowId.slice('pxeflow/'.length);
  const cluster = workflowId.startsWith('pxeflow/') && CLUSTER_NAME.test(short) ? short : workflowId;
  const addr = target.source === 'flag' ? ` --address ${target.address}` : '';
  const ns = target.namespace !== 'default' ? ` --namespace ${target.namespace}` : '';
  return `pxeflow${addr}${ns} watch ${cluster}`;
}
