// Following an install live (`pxeflow install`, `pxeflow watch`): poll the `progress` and `table` queries about
// once a second and draw bars per phase on a terminal, plain lines without one, JSON lines with --json; when the
// workflow closes, print the final report and return the exit code. Ctrl-C only detaches: the install goes on.
import { type Client, WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import cliProgress from 'cli-progress';
import { safeParseClusterSpec } from '../config/schema.ts';
import { BOOT_PHASES } from '../netboot/types.ts';
import { type ClusterReport, progressQuery, tableQuery, timelineQuery } from '../workflows/messages.ts';
import { reportExitCode, toTable } from './exports.ts';
import {
  CliError,
  EXIT,
  type ExitCode,
  formatDuration,
  line,
  type Out,
  paint,
  paintOutcome,
  printJsonLine,
} from './output.ts';
import {
  estimateEta,
  finishedCount,
  formatEta,
  outcomeCounts,
  POWER_ON_PHASE,
  phaseCounts,
  progressLine,
  progressRecord,
  type Snapshot,
  stuckNodes,
} from './progress-view.ts';

export interface FollowOptions {
  out: Out;
  json: boolean;
  /** poll period (default 1000 ms) */
  intervalMs?: number;
  /** what to type to re-attach, shown on Ctrl-C */
  reattach: string;
}

const QUERY_DEADLINE_MS = 3000;

/** The spec's pacing, read from the workflow's start event (first history page only). */
async function readPacing(client: Client, workflowId: string): Promise<Snapshot['pacing']> {
  try {
    const res = await client.workflowService.getWorkflowExecutionHistory({
      namespace: client.options.namespace,
      execution: { workflowId },
      maximumPageSize: 1,
    });
    const payload = res.history?.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    if (!payload) return undefined;
    const parsed = safeParseClusterSpec(defaultPayloadConverter.fromPayload(payload));
    if (!parsed.success) return undefined;
    return { intervalMs: parsed.spec.power.interval, maxBooting: parsed.spec.power.maxBooting };
  } catch {
    return undefined; // only the ETA lower bound needs it
  }
}

/** One poll. Queries get a short deadline: without a worker they would hang. */
export async function poll(client: Client, workflowId: string): Promise<Snapshot> {
  const handle = client.workflow.getHandle(workflowId);
  let desc: Awaited<ReturnType<typeof handle.describe>>;
  try {
    desc = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new CliError(`no install ${workflowId} on this Temporal server (see \`pxeflow status\`)`);
    }
    throw err;
  }
  const snap: Snapshot = { workflowId, status: desc.status.name, startedAt: desc.startTime.getTime() };
  if (desc.status.name !== 'RUNNING') return snap;
  try {
    const deadline = Date.now() + QUERY_DEADLINE_MS;
    const [progress, table] = await client.withDeadline(deadline, () =>
      Promise.all([handle.query(progressQuery), handle.query(tableQuery)]),
    );
    snap.progress = progress;
    snap.table = table;
    await currentPhases(client, workflowId, snap, deadline);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    snap.queryError = /deadline/i.test(msg)
      ? `no answer to the progress query within ${QUERY_DEADLINE_MS / 1000}s — is a worker running (\`pxeflow worker\`)?`
      : msg;
  }
  return snap;
}

/**
 * Where each node in the monitor's table is right now. The parent workflow keeps only the table (boot phases go
 * to the node workflows, so its history stays small); the live view asks those nodes — at most `maxBooting`
 * of them — for their timeline. A node that does not answer in time keeps the phase its table entry has.
 */
async function currentPhases(
  client: Client,
  workflowId: string,
  snap: Snapshot,
  deadline: number,
): Promise<void> {
  const entries = snap.table?.monitor ?? [];
  if (!snap.progress || entries.length === 0 || entries.length > 200) return;
  const phases: Record<string, number> = {};
  await client.withDeadline(deadline, () =>
    Promise.all(
      entries.map(async (e) => {
        const tl = await client.workflow
          .getHandle(`${workflowId}/${e.node}`)
          .query(timelineQuery)
          .catch(() => undefined);
        const phase = tl?.phase ?? e.phase;
        e.phase = phase;
        phases[phase] = (phases[phase] ?? 0) + 1;
      }),
    ),
  );
  snap.progress.phases = phases;
}

export interface Outcome {
  code: ExitCode;
  report?: ClusterReport;
  error?: { type?: string; message: string };
}

/** The result of a closed workflow: its report, or why it did not produce one. */
export async function closedOutcome(client: Client, workflowId: string, status: string): Promise<Outcome> {
  const handle = client.workflow.getHandle(workflowId);
  try {
    const report = (await handle.result()) as ClusterReport;
    return { code: reportExitCode(report), report };
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      const { type, message } = rootFailure(err);
      // an invalid spec is a config error: the same exit code as a local `validate` failure
      return { code: type === 'InvalidClusterSpec' ? EXIT.usage : EXIT.incomplete, error: { type, message } };
    }
    return {
      code: EXIT.incomplete,
      error: { message: `${status.toLowerCase()}: ${(err as Error).message}` },
    };
  }
}

/** The deepest ApplicationFailure in the cause chain (e.g. workflow ← activity ← SecretMissing), else the top. */
export function rootFailure(err: WorkflowFailedError): { type?: string; message: string } {
  let found: { type?: string; message: string } | undefined;
  for (let c: Error | undefined = err.cause; c; c = c.cause as Error | undefined) {
    if (c instanceof ApplicationFailure) found = { type: c.type ?? undefined, message: c.message };
  }
  if (found) return found;
  return { type: err.cause?.name, message: err.cause?.message ?? err.message };
}

export function printOutcome(out: Out, json: boolean, workflowId: string, o: Outcome): void {
  if (json) {
    printJsonLine(
      out,
      o.report
        ? { type: 'report', workflowId, report: o.report }
        : { type: 'failed', workflowId, error: o.error },
    );
    return;
  }
  if (o.report) {
    out.write(toTable(o.report));
    const ok = o.code === EXIT.ok;
    line(out, paint(out, ok ? 'green' : 'red', ok ? 'all nodes installed' : 'not every node was installed'));
  } else {
    line(out, paint(out, 'red', `install ${workflowId} failed${o.error?.type ? ` (${o.error.type})` : ''}:`));
    line(out, o.error?.message ?? 'unknown error');
  }
}

interface Renderer {
  update(s: Snapshot): void;
  stop(): void;
}

/** Plain lines (or JSON lines), printed only when something changed, plus every 30 s as a heartbeat. */
function lineRenderer(out: Out, json: boolean): Renderer {
  let last = '';
  let lastAt = 0;
  return {
    update(s) {
      const now = Date.now();
      const key = JSON.stringify([s.status, s.progress, s.queryError, s.table?.monitor.length]);
      if (key === last && now - lastAt < 30_000) return;
      last = key;
      lastAt = now;
      if (json) printJsonLine(out, progressRecord(s, now));
      else line(out, progressLine(s, now));
    },
    stop() {},
  };
}

/** Terminal view: one bar per phase, outcome counts, the nodes stuck longest, ETA (cli-progress MultiBar). */
function barRenderer(out: Out): Renderer {
  const multi = new cliProgress.MultiBar(
    {
      format: ' {label} {bar} {value}/{total}',
      barsize: 30,
      hideCursor: true,
      clearOnComplete: false,
      autopadding: true,
      emptyOnZero: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const text = (t: string) => multi.create(1, 0, { t }, { format: '{t}' });
  const header = text('');
  const bars = new Map<string, cliProgress.SingleBar>();
  const bar = (label: string) => {
    let b = bars.get(label);
    if (!b) {
      b = multi.create(1, 0, { label: label.padEnd(13) });
      bars.set(label, b);
    }
    return b;
  };
  // the chain's bars first, so the text lines stay below them (an unknown phase is added at the end)
  for (const label of ['started', 'finished', POWER_ON_PHASE, ...BOOT_PHASES]) bar(label);
  const footer = [text(''), text(''), ...[0, 1, 2].map(() => text(''))];
  return {
    update(s) {
      const now = Date.now();
      const p = s.progress;
      const state = p ? (p.paused ? `${p.state} (paused)` : p.state) : s.status.toLowerCase();
      header.update({
        t: `${paint(out, 'bold', p?.cluster ?? s.workflowId)} · ${state}${s.queryError ? ` · ${s.queryError}` : ''}`,
      });
      if (!p) return;
      const total = Math.max(1, p.total);
      bar('started').setTotal(total);
      bar('started').update(p.started);
      bar('finished').setTotal(total);
      bar('finished').update(finishedCount(p));
      for (const c of phaseCounts(p)) {
        bar(c.phase).setTotal(total);
        bar(c.phase).update(c.nodes);
      }
      const outcomes = outcomeCounts(p)
        .map((c) => paintOutcome(out, c.outcome, `${c.outcome} ${c.nodes}`))
        .join(' · ');
      footer[0].update({ t: ` ${outcomes || 'no node finished yet'} · ${formatEta(estimateEta(s, now))}` });
      const stuck = stuckNodes(s.table, now, 3);
      footer[1].update({ t: stuck.length ? ' longest in the install:' : '' });
      for (let i = 0; i < 3; i++) {
        const n = stuck[i];
        footer[2 + i].update({
          t: n
            ? `   ${n.node} (BMC ${n.bmcIp}, ${n.dhcpIp}) in ${n.phase} for ${formatDuration(n.forMs)}`
            : '',
        });
      }
    },
    stop() {
      multi.stop();
    },
  };
}

/** Follows the install until it closes (→ report and its exit code) or Ctrl-C (→ detach, exit 0). */
export async function follow(client: Client, workflowId: string, opts: FollowOptions): Promise<ExitCode> {
  const { out, json } = opts;
  const renderer = !json && out.tty ? barRenderer(out) : lineRenderer(out, json);
  const pacing = await readPacing(client, workflowId);
  let detached = false;
  let wake: () => void = () => {};
  const onInt = () => {
    detached = true;
    wake();
  };
  process.on('SIGINT', onInt);
  try {
    for (;;) {
      const snap = await poll(client, workflowId);
      snap.pacing = pacing;
      if (detached) break;
      if (snap.status === 'RUNNING' || snap.status === 'CONTINUED_AS_NEW') {
        renderer.update(snap);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, opts.intervalMs ?? 1000);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        if (detached) break;
        continue;
      }
      renderer.stop();
      const outcome = await closedOutcome(client, workflowId, snap.status);
      printOutcome(out, json, workflowId, outcome);
      return outcome.code;
    }
    renderer.stop();
    if (json) printJsonLine(out, { type: 'detached', workflowId, reattach: opts.reattach });
    else line(out, `\ndetached: the install goes on. Re-attach with: ${opts.reattach}`);
    return EXIT.ok;
  } finally {
    process.off('SIGINT', onInt);
  }
}
