// The live controls of a running install, as Temporal Updates on its ClusterInstall workflow: pause, resume,
// setPace, retryNodes, skipNodes; cancel = workflow cancellation. A validator's rejection is printed as is.
import {
  type Client,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
} from '@temporalio/client';
import { defaultPayloadConverter, type UpdateDefinition } from '@temporalio/common';
import type { Command } from 'commander';
import { parseDuration } from '../../config/duration.ts';
import {
  type ClusterReport,
  type Progress,
  pauseUpdate,
  resumeUpdate,
  retryNodesUpdate,
  setPaceUpdate,
  skipNodesUpdate,
} from '../../workflows/messages.ts';
import { CliError, EXIT, examples, formatDuration, line, stdoutOut } from '../output.ts';
import { type GlobalOptions, TASK_QUEUE, withTemporal, workflowIdOf } from '../temporal.ts';

const UPDATE_DEADLINE_MS = 30_000;

/** Sends one update and waits for its result; rejections are usage errors (exit 2), silence is exit 1. */
export async function sendUpdate<Ret, Args extends [] | [unknown]>(
  client: Client,
  workflowId: string,
  update: UpdateDefinition<Ret, Args>,
  args: Args,
): Promise<Ret> {
  const handle = client.workflow.getHandle(workflowId);
  const name = update.name;
  try {
    return await client.withDeadline(Date.now() + UPDATE_DEADLINE_MS, () =>
      args.length === 0
        ? handle.executeUpdate(update as UpdateDefinition<Ret, []>)
        : handle.executeUpdate(update as UpdateDefinition<Ret, [unknown]>, { args: [args[0]] }),
    );
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      throw new CliError(
        `${name} rejected by ${workflowId}: ${err.cause?.message ?? err.message}`,
        EXIT.usage,
      );
    }
    if (err instanceof WorkflowNotFoundError) {
      throw new CliError(`no running install ${workflowId} (see \`pxeflow status\`)`, EXIT.usage);
    }
    if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError || /deadline/i.test((err as Error).message)) {
      throw new CliError(
        `${name}: ${workflowId} did not answer within ${UPDATE_DEADLINE_MS / 1000}s — is a worker running (\`pxeflow worker\`)?`,
        EXIT.incomplete,
      );
    }
    const msg = (err as Error).message;
    if (/already completed|not found/i.test(msg)) {
      throw new CliError(`${name}: ${workflowId} is not running: ${msg}`, EXIT.usage);
    }
    throw err;
  }
}

/** The state after a pause/resume/setPace, as the workflow answered it. */
function progressText(p: Progress): string {
  return `${p.state}${p.paused ? ' (paused)' : ''}, started ${p.started}/${p.total}, one power-on every ${formatDuration(p.intervalMs)}, at most ${p.maxBooting} booting`;
}

type Flags = GlobalOptions;

function control(
  program: Command,
  spec: { name: string; description: string; args?: string; examples: string[] },
  build: (cmd: Command) => Command,
  run: (ctx: {
    client: Client;
    workflowId: string;
    nodes: string[];
    flags: Record<string, unknown>;
  }) => Promise<string>,
): void {
  const cmd = program
    .command(spec.name)
    .description(spec.description)
    .argument('<cluster>', 'cluster name or workflow id');
  if (spec.args) cmd.argument(spec.args, 'node names');
  build(cmd)
    .addHelpText('after', examples(...spec.examples))
    .action(async (cluster: string, ...rest: unknown[]) => {
      const c = rest[rest.length - 1] as Command;
      const nodes = spec.args ? ((rest[0] as string[] | undefined) ?? []) : [];
      const flags = c.optsWithGlobals() as Flags & Record<string, unknown>;
      const workflowId = workflowIdOf(cluster);
      process.exitCode = await withTemporal(flags, async ({ client }) => {
        line(stdoutOut(), await run({ client, workflowId, nodes, flags }));
        return EXIT.ok;
      });
    });
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`${flag}: ${value} is not a whole number ≥ 1`);
  return n;
}

export function registerControls(program: Command): void {
  control(
    program,
    {
      name: 'pause',
      description: 'stop powering on more nodes (nodes already booting go on)',
      examples: ['pxeflow pause ceph-a'],
    },
    (c) => c,
    async ({ client, workflowId }) =>
      `paused ${workflowId}: ${progressText(await sendUpdate(client, workflowId, pauseUpdate, []))}`,
  );
  control(
    program,
    {
      name: 'resume',
      description: 'resume powering on nodes after a pause',
      examples: ['pxeflow resume ceph-a'],
    },
    (c) => c,
    async ({ client, workflowId }) =>
      `resumed ${workflowId}: ${progressText(await sendUpdate(client, workflowId, resumeUpdate, []))}`,
  );
  control(
    program,
    {
      name: 'pace',
      description: 'change the power-on pacing of a running install',
      examples: [
        'pxeflow pace ceph-a --interval 10s --max-booting 20',
        'pxeflow pace ceph-a --max-booting 50',
      ],
    },
    (c) =>
      c
        .option('--interval <duration>', 'pause between two power-ons, e.g. 10s, 1m')
        .option('--max-booting <n>', 'most nodes between power-on and final status'),
    async ({ client, workflowId, flags }) => {
      const args: { intervalMs?: number; maxBooting?: number } = {};
      if (typeof flags.interval === 'string') {
        try {
          args.intervalMs = parseDuration(flags.interval);
        } catch (err) {
          throw new CliError(`--interval: ${(err as Error).message}`);
        }
      }
      if (typeof flags.maxBooting === 'string')
        args.maxBooting = positiveInt('--max-booting', flags.maxBooting);
      if (args.intervalMs === undefined && args.maxBooting === undefined) {
        throw new CliError('give --interval and/or --max-booting');
      }
      const p = await sendUpdate(client, workflowId, setPaceUpdate, [args]);
      return `pace of ${workflowId} changed: ${progressText(p)}`;
    },
  );
  control(
    program,
    {
      name: 'retry',
      description: 'install failed nodes again (named nodes, or --all failed ones)',
      args: '[nodes...]',
      examples: ['pxeflow retry ceph-a stor-007 stor-012', 'pxeflow retry ceph-a --all'],
    },
    (c) => c.option('--all', 'every node whose install failed or timed out'),
    async ({ client, workflowId, nodes, flags }) => {
      if (flags.all && nodes.length > 0) throw new CliError('give node names or --all, not both');
      if (!flags.all && nodes.length === 0) throw new CliError('name the nodes to retry, or pass --all');
      const status = (
        await client.workflow
          .getHandle(workflowId)
          .describe()
          .catch(() => undefined)
      )?.status.name;
      if (status && status !== 'RUNNING')
        return await retryFinished(client, workflowId, flags.all ? 'all-failed' : nodes);
      const retried = await sendUpdate(client, workflowId, retryNodesUpdate, [
        { nodes: flags.all ? 'all-failed' : nodes },
      ]);
      return `${workflowId}: ${retried.length} node(s) queued for another install: ${retried.join(', ')}`;
    },
  );
  control(
    program,
    {
      name: 'skip',
      description: 'leave nodes out of the install (reported as skipped)',
      args: '<nodes...>',
      examples: ['pxeflow skip ceph-a stor-003'],
    },
    (c) => c,
    async ({ client, workflowId, nodes }) => {
      const skipped = await sendUpdate(client, workflowId, skipNodesUpdate, [{ nodes }]);
      return `${workflowId}: skipped ${skipped.join(', ')}`;
    },
  );
  control(
    program,
    {
      name: 'cancel',
      description: 'cancel the install: no more power-ons, the nodes in flight are cancelled',
      examples: ['pxeflow cancel ceph-a'],
    },
    (c) => c,
    async ({ client, workflowId }) => {
      try {
        await client.workflow.getHandle(workflowId).cancel();
      } catch (err) {
        if (err instanceof WorkflowNotFoundError)
          throw new CliError(`no running install ${workflowId}`, EXIT.usage);
        throw err;
      }
      return `cancellation of ${workflowId} requested; \`pxeflow watch ${workflowId}\` shows the final report`;
    },
  );
}

/**
 * Retry after the fact: the install has ended, so a new run of it (same workflow id, same spec) installs only the
 * nodes asked for. Nodes that succeeded are left alone — unlike `temporal workflow reset`, which re-runs every
 * node started after the reset point.
 */
async function retryFinished(
  client: Client,
  workflowId: string,
  which: string[] | 'all-failed',
): Promise<string> {
  const handle = client.workflow.getHandle(workflowId);
  const report = (await handle.result().catch(() => undefined)) as ClusterReport | undefined;
  const history = await handle.fetchHistory();
  const startPayload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  if (!startPayload) throw new CliError(`${workflowId}: cannot read the spec it was started with`);
  const spec = defaultPayloadConverter.fromPayload(startPayload) as {
    nodes?: Array<{ name: string }>;
    [k: string]: unknown;
  };
  const failed = (report?.nodes ?? []).filter((n) => n.outcome !== 'success').map((n) => n.node);
  const names = which === 'all-failed' ? failed : which;
  if (names.length === 0) throw new CliError(`${workflowId}: no failed or timed-out node to retry`);
  const known = new Set(
    (spec.nodes ?? report?.nodes.map((n) => ({ name: n.node })) ?? []).map((n) => n.name),
  );
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length) throw new CliError(`${workflowId}: unknown node(s): ${unknown.join(', ')}`);
  const ok = names.filter((n) => report?.nodes.find((r) => r.node === n)?.outcome === 'success');
  if (ok.length)
    throw new CliError(`${workflowId}: ${ok.join(', ')} installed successfully: nothing to retry`);
  // discovered clusters have no node list: the report's BMC and MAC stand in for it
  const nodes = spec.nodes
    ? spec.nodes.filter((n) => names.includes(n.name))
    : (report?.nodes ?? [])
        .filter((n) => names.includes(n.node))
        .map((n) => ({ name: n.node, bmc: n.bmcIp, ...(n.mac ? { mac: n.mac } : {}) }));
  await client.workflow.start('ClusterInstall', {
    // the controller that ran it (its task queue), not necessarily the default one
    taskQueue: (await handle.describe()).taskQueue ?? TASK_QUEUE,
    workflowId,
    args: [{ ...spec, nodes }],
    staticSummary: `retry of ${names.length} node(s): ${names.join(', ')}`,
  });
  return `${workflowId} had ended: started a new run of it for ${names.join(', ')} (pxeflow watch ${workflowId})`;
}
