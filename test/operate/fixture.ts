// Shared by the operating tests: one Temporal dev server + one lab per test file, and small probes of what the
// BMCs and the workflows saw. Nothing here fakes a peer: the lab is real ipmi_sim BMCs and simulated PXE nodes.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { pino } from 'pino';
import { type Lab, type LabOptions, startLab } from '../../lab/lab.ts';
import { leftoverLabObjects } from '../../lab/network.ts';
import type { PowerLogEntry } from '../../lab/bmc/index.ts';
import type { Progress } from '../../workflows/messages.ts';
import { startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';

export interface OperateEnv {
  t: TestTemporal;
  lab: Lab;
  taskQueue: string;
  close(): Promise<void>;
}

export async function startOperateEnv(
  name: string,
  opts: Partial<LabOptions> & { headless?: boolean },
): Promise<OperateEnv> {
  const t = await startTestTemporal({ headless: opts.headless ?? true });
  const dir = await mkdtemp(join(tmpdir(), `pxeflow-${name}-`));
  await chmod(dir, 0o711); // dnsmasq (unprivileged) must reach its files below
  const taskQueue = `operate-${name}`;
  let lab: Lab | undefined;
  try {
    lab = await startLab({
      nodes: 3,
      stateDir: join(dir, 'lab'),
      temporal: { address: t.endpoint.address, namespace: t.endpoint.namespace, client: t.client },
      taskQueue,
      logger: pino({ level: process.env.PXEFLOW_TEST_LOG ?? 'silent' }),
      clusterName: name,
      ...opts,
    });
  } catch (err) {
    await t.close();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  const started = lab;
  return {
    t,
    lab: started,
    taskQueue,
    async close() {
      try {
        await started.stop();
        assert.deepEqual(await leftoverLabObjects(started.id), [], 'the lab left namespaces or links behind');
      } finally {
        await t.close();
        await rm(dir, { recursive: true, force: true });
      }
    },
  };
}

/** Every command the BMC of lab node `index` (1-based) received. */
export const bmcLog = (lab: Lab, index: number): Promise<PowerLogEntry[]> =>
  lab.bmcs.bmcs[index - 1].powerLog();

/** Successful power-on commands of lab node `index` (1-based). */
export async function powerOns(lab: Lab, index: number): Promise<PowerLogEntry[]> {
  return (await bmcLog(lab, index)).filter((e) => e.op === 'power' && e.value === '1' && e.result === 'ok');
}

/** Polls `probe` until it returns a value other than undefined/false, or fails naming `what`. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await sleep(200);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export const progressOf = (h: WorkflowHandle) => h.query<Progress>('progress');

/** The message a rejected Update carries (the validator's error), or fails when the Update was accepted. */
export async function rejection(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    const e = err as Error & { cause?: Error };
    return e.cause?.message ?? e.message;
  }
  assert.fail('the update was accepted');
}

// temporal.api.enums.v1.EventType numbers (the history arrives decoded, with numeric event types)
const UPDATE_EVENTS = new Set([41, 42, 43, 47]); // accepted, rejected, completed, admitted

interface HistoryLike {
  events?: Array<{
    eventType?: unknown;
    workflowExecutionUpdateAcceptedEventAttributes?: {
      acceptedRequest?: {
        meta?: { updateId?: string | null } | null;
        input?: { name?: string | null } | null;
      } | null;
    } | null;
  }> | null;
}

/** Every Update event in a history, and the Updates it accepted (id and name). */
export function updateEvents(history: HistoryLike): {
  count: number;
  accepted: Array<{ id: string; name: string }>;
} {
  const events = (history.events ?? []).filter((e) => UPDATE_EVENTS.has(Number(e.eventType)));
  const accepted = events.flatMap((e) => {
    const req = e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest;
    return req ? [{ id: req.meta?.updateId ?? '', name: req.input?.name ?? '' }] : [];
  });
  return { count: events.length, accepted };
}
