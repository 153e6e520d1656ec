// ClusterInstall: one request of the method. validate → queue for the power-on turn → prepare image →
// configure netboot → (discover BMCs) → paced power-on, one NodeInstall child per node, in order → report.
// Keeps the controller's side of the correspondence table and a mirror of the monitor's. Live controls are
// Updates (pause/resume/setPace/retryNodes/skipNodes); cancelling it cancels the children (see docs/operating.md).
import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  condition,
  ParentClosePolicy,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ControllerActivities, NodeRef } from '../activities/types.ts';
import {
  bmcPasswordRef,
  type ClusterSpec,
  rootPasswordHashRef,
  safeParseClusterSpec,
} from '../config/schema.ts';
import { SA } from '../temporal/search-attributes.ts';
import {
  type ClusterReport,
  type NodeOutcome,
  type NodeResult,
  nodeReportSignal,
  type Progress,
  pauseUpdate,
  powerTurnSignal,
  progressQuery,
  reportQuery,
  resumeUpdate,
  retryNodesUpdate,
  setPaceUpdate,
  skipNodesUpdate,
  type TableEntry,
  tableQuery,
} from './messages.ts';
import { NodeInstall, type NodeInstallInput } from './node-install.ts';

const act = proxyActivities<ControllerActivities>({
  startToCloseTimeout: '2 minutes',
  retry: {
    initialInterval: '1s',
    maximumInterval: '30s',
    maximumAttempts: 10,
    nonRetryableErrorTypes: ['SecretMissing'],
  },
});
const imageAct = proxyActivities<ControllerActivities>({
  // reading a multi-GB ISO once takes minutes; heartbeats show it is alive
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '1 minute',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['ImageError'] },
});
const discoverAct = proxyActivities<ControllerActivities>({ startToCloseTimeout: '10 minutes' });

const OUTCOMES: NodeOutcome[] = ['success', 'failure', 'timeout', 'power-error', 'skipped', 'cancelled'];
const RETRYABLE: NodeOutcome[] = ['failure', 'timeout', 'power-error'];

export async function ClusterInstall(input: unknown): Promise<ClusterReport> {
  const parsed = safeParseClusterSpec(input);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(
      `invalid cluster spec:\n${parsed.error.message}`,
      'InvalidClusterSpec',
    );
  }
  const spec: ClusterSpec = parsed.spec;
  const clusterId = workflowInfo().workflowId;
  const startedAt = Date.now();
  upsertSearchAttributes([
    { key: SA.cluster, value: spec.name },
    { key: SA.isoVersion, value: spec.iso.version },
    { key: SA.phase, value: 'preparing' },
  ]);

  let state: Progress['state'] = 'preparing';
  let turnHeld = false;
  let turnGranted = false;
  let paused = false;
  let intervalMs = spec.power.interval;
  let maxBooting = spec.power.maxBooting;
  const controllerTable = new Map<string, TableEntry>();
  const monitorTable = new Map<string, TableEntry>();
  const dropped: TableEntry[] = [];
  const results = new Map<string, NodeResult>();
  const running = new Set<string>();
  const seenOnDhcp = new Set<string>();
  const skipped = new Set<string>();
  const queue: NodeRef[] = [];
  let nodes: NodeRef[] = [];
  let started = 0;
  let report: ClusterReport | undefined;

  const drop = (node: string) => {
    monitorTable.delete(node);
    const e = controllerTable.get(node);
    if (e) {
      controllerTable.delete(node);
      dropped.push(e);
    }
  };
  setHandler(nodeReportSignal, (msg) => {
    if (msg.kind === 'table') {
      // the controller records the entry and sends it to the monitor
      controllerTable.set(msg.entry.node, msg.entry);
      monitorTable.set(msg.entry.node, msg.entry);
      seenOnDhcp.add(msg.entry.node);
    } else if (msg.kind === 'feedback' || msg.kind === 'timeout') {
      // the monitor got a status (or timed out): it drops its entry and tells the controller, which drops its own
      drop(msg.node);
      if (msg.kind === 'timeout' && msg.waited === 'dhcp') seenOnDhcp.add(msg.node);
    }
  });
  setHandler(powerTurnSignal, () => {
    turnGranted = true;
  });

  const progress = (): Progress => {
    const outcomes: Partial<Record<NodeOutcome, number>> = {};
    for (const r of results.values()) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
    const phases: Record<string, number> = {};
    for (const e of monitorTable.values()) phases[e.phase] = (phases[e.phase] ?? 0) + 1;
    return {
      cluster: spec.name,
      state,
      total: nodes.length,
      started,
      paused,
      intervalMs,
      maxBooting,
      running: running.size,
      outcomes,
      phases,
    };
  };
  const known = (names: string[]) => {
    const all = new Set(nodes.map((n) => n.name));
    const unknown = names.filter((n) => !all.has(n));
    if (unknown.length) throw new Error(`unknown node(s): ${unknown.join(', ')}`);
  };
  setHandler(progressQuery, progress);
  setHandler(tableQuery, () => ({
    controller: [...controllerTable.values()],
    monitor: [...monitorTable.values()],
  }));
  setHandler(reportQuery, () => report);
  setHandler(
    pauseUpdate,
    () => {
      paused = true;
      return progress();
    },
    { validator: () => assertOpen(state, 'pause') },
  );
  setHandler(
    resumeUpdate,
    () => {
      paused = false;
      return progress();
    },
    {
      validator: () => {
        assertOpen(state, 'resume');
        if (!paused) throw new Error('the install is not paused');
      },
    },
  );
  setHandler(
    setPaceUpdate,
    (p) => {
      if (p.intervalMs !== undefined) intervalMs = p.intervalMs;
      if (p.maxBooting !== undefined) maxBooting = p.maxBooting;
      return progress();
    },
    {
      validator: (p) => {
        assertOpen(state, 'change the pace of');
        if (p.intervalMs === undefined && p.maxBooting === undefined)
          throw new Error('give intervalMs or maxBooting');
        if (
          p.intervalMs !== undefined &&
          !(Number.isInteger(p.intervalMs) && p.intervalMs >= 0 && p.intervalMs <= 3_600_000)
        )
          throw new Error('intervalMs must be an integer between 0 and 3600000');
        if (
          p.maxBooting !== undefined &&
          !(Number.isInteger(p.maxBooting) && p.maxBooting >= 1 && p.maxBooting <= 10_000)
        )
          throw new Error('maxBooting must be an integer between 1 and 10000');
      },
    },
  );
  const retryTargets = (req: { nodes: string[] | 'all-failed' }) =>
    req.nodes === 'all-failed'
      ? [...results.values()].filter((r) => RETRYABLE.includes(r.outcome)).map((r) => r.node)
      : req.nodes;
  setHandler(
    retryNodesUpdate,
    (req) => {
      const names = retryTargets(req);
      for (const name of names) {
        results.delete(name);
        queue.push(nodes.find((n) => n.name === name)!);
      }
      return names;
    },
    {
      validator: (req) => {
        assertOpen(state, 'retry nodes of');
        if (req.nodes !== 'all-failed') known(req.nodes);
        const names = retryTargets(req);
        if (names.length === 0) throw new Error('no failed or timed-out node to retry');
        for (const name of names) {
          if (running.has(name) || queue.some((n) => n.name === name))
            throw new Error(`${name} is still installing or waiting for power-on: nothing to retry`);
          const r = results.get(name);
          if (!r) throw new Error(`${name} has not been installed yet`);
          if (!RETRYABLE.includes(r.outcome))
            throw new Error(`${name} ended with ${r.outcome}: only failed or timed-out nodes are retried`);
        }
      },
    },
  );
  setHandler(
    skipNodesUpdate,
    (req) => {
      for (const name of req.nodes) skipped.add(name);
      return req.nodes;
    },
    {
      validator: (req) => {
        assertOpen(state, 'skip nodes of');
        known(req.nodes);
        for (const name of req.nodes) {
          if (running.has(name) || results.has(name))
            throw new Error(`${name} has already been powered on: it cannot be skipped`);
        }
      },
    },
  );
  const details = (line: string) => setCurrentDetails(`**${spec.name}** · ${spec.iso.version} · ${line}`);
  const releaseTurn = async () => {
    if (!turnHeld) return;
    turnHeld = false;
    await CancellationScope.nonCancellable(() => act.releasePowerTurn({ requester: clusterId }));
  };

  // Every node of this request has had its power-on: the next request may start powering on.
  const endOfRequest = async () => {
    await releaseTurn();
    state = 'installing';
    upsertSearchAttributes([{ key: SA.phase, value: 'installing' }]);
    details(`all ${nodes.length} nodes powered on; waiting for their status`);
  };

  // Ask for the power-on turn first, so installs are served in submission order whatever their image prep takes.
  await act.requestPowerTurn({ requester: clusterId });
  turnHeld = true;
  try {
    details('preparing the image');
    const refs = [{ what: 'ipmi password', ref: bmcPasswordRef(spec) }];
    const rootRef = rootPasswordHashRef(spec);
    if (rootRef) refs.push({ what: 'kickstart root password hash', ref: rootRef });
    await act.checkSecrets(refs);
    const image = await imageAct.prepareImage({ version: spec.iso.version, library: spec.iso.library });
    nodes = spec.nodes ? spec.nodes.map(toNodeRef) : await discovered(spec);
    if (spec.power.order === 'bmc-address') nodes.sort((a, b) => ipKey(a.bmc) - ipKey(b.bmc));
    await act.configureNetboot({ clusterId, spec, image });
    queue.push(...nodes);

    state = 'waiting-turn';
    details('waiting for the power-on turn (installs go in submission order)');
    upsertSearchAttributes([{ key: SA.phase, value: 'waiting-turn' }]);
    await condition(() => turnGranted);

    state = 'powering-on';
    upsertSearchAttributes([{ key: SA.phase, value: 'powering-on' }]);
    const children: Array<Promise<void>> = [];
    let firstRound = nodes.length;
    for (;;) {
      await condition(
        () =>
          (queue.length > 0 && !paused && running.size < maxBooting) ||
          (queue.length === 0 && running.size === 0),
      );
      if (queue.length === 0) break;
      const node = queue.shift()!;
      const lastOfRequest = firstRound > 0 && --firstRound === 0;
      if (skipped.has(node.name)) {
        results.set(node.name, {
          node: node.name,
          bmcIp: node.bmc,
          outcome: 'skipped',
          attempts: 0,
          phases: {},
        });
        if (lastOfRequest) await endOfRequest();
        continue;
      }
      details(`powering on ${node.name} (${started + 1}/${nodes.length})${paused ? ' · paused' : ''}`);
      const child = await startChild(NodeInstall, {
        workflowId: `${clusterId}/${node.name}`,
        args: [childInput(spec, clusterId, node)],
        parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
        staticSummary: `install ${node.name} · BMC ${node.bmc} · ${spec.iso.version}`,
      });
      started += 1;
      running.add(node.name);
      children.push(
        child
          .result()
          .then(
            (r) => void results.set(node.name, r),
            (err) => void results.set(node.name, failedResult(node, err)),
          )
          .finally(() => running.delete(node.name)),
      );
      // Unknown MAC: the next power-on waits until this node's first DHCP request tied its MAC to its BMC.
      if (!node.mac) await condition(() => seenOnDhcp.has(node.name) || !running.has(node.name));
      if (lastOfRequest) await endOfRequest();
      else if (intervalMs > 0 && queue.length > 0) await sleep(intervalMs);
    }
    await Promise.all(children);
  } finally {
    await releaseTurn();
  }

  state = 'done';
  const counts = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<NodeOutcome, number>;
  for (const r of results.values()) counts[r.outcome] += 1;
  report = {
    cluster: spec.name,
    isoVersion: spec.iso.version,
    startedAt,
    finishedAt: Date.now(),
    counts,
    nodes: nodes.map((n) => results.get(n.name)!),
    table: dropped,
  };
  upsertSearchAttributes([
    { key: SA.phase, value: 'done' },
    { key: SA.outcome, value: counts.success === nodes.length ? 'success' : 'incomplete' },
  ]);
  details(
    OUTCOMES.filter((o) => counts[o])
      .map((o) => `${o}: ${counts[o]}`)
      .join(' · '),
  );
  return report;
}

function assertOpen(state: Progress['state'], what: string): void {
  if (state === 'done') throw new Error(`the install has finished: nothing to ${what}`);
}

function toNodeRef(n: NonNullable<ClusterSpec['nodes']>[number]): NodeRef {
  return {
    name: n.name,
    bmc: n.bmc,
    bmcPort: n.bmcPort,
    mac: n.mac,
    ip: n.ip,
    osDisk: n.osDisk,
    bootMode: n.bootMode,
  };
}

async function discovered(spec: ClusterSpec): Promise<NodeRef[]> {
  const found = await discoverAct.discoverBmcs({
    subnet: spec.ipmi.subnet,
    port: spec.ipmi.port,
    maxNodes: spec.discovery?.maxNodes ?? 4096,
    username: spec.ipmi.username,
    passwordRef: bmcPasswordRef(spec),
  });
  return found.map((b, i) => ({
    name: `${spec.name}-${String(i + 1).padStart(3, '0')}`,
    bmc: b.address,
    bmcPort: b.port,
    osDisk: spec.kickstart.osDisk,
    bootMode: spec.bootMode,
  }));
}

function childInput(spec: ClusterSpec, clusterId: string, node: NodeRef): NodeInstallInput {
  return {
    clusterId,
    cluster: spec.name,
    isoVersion: spec.iso.version,
    node,
    power: {
      node: node.name,
      bmc: node.bmc,
      port: node.bmcPort,
      username: spec.ipmi.username,
      passwordRef: bmcPasswordRef(spec),
      timeoutSeconds: spec.ipmi.timeoutSeconds,
      retries: spec.ipmi.retries,
      cipherSuite: spec.ipmi.cipherSuite,
    },
    installTimeoutMs: spec.timeouts.install,
    dhcpSeenMs: spec.timeouts.dhcpSeen,
    attempts: spec.retry.attempts,
    powerCycleOnRetry: spec.retry.powerCycleOnRetry,
  };
}

function failedResult(node: NodeRef, err: unknown): NodeResult {
  const cancelled = err instanceof ChildWorkflowFailure && err.cause?.name === 'CancelledFailure';
  return {
    node: node.name,
    bmcIp: node.bmc,
    mac: node.mac,
    outcome: cancelled ? 'cancelled' : 'failure',
    detail: err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err),
    attempts: 0,
    phases: {},
  };
}

function ipKey(ip: string): number {
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}
