// ClusterInstall: one request of the method. validate → queue for the power-on turn → prepare image →
// configure netboot → (discover BMCs) → paced power-on, one NodeInstall child per node, in order → report.
// Keeps the controller's side of the correspondence table and a mirror of the monitor's.
import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  condition,
  type ChildWorkflowHandle,
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
  type Progress,
  type TableEntry,
  nodeReportSignal,
  powerTurnSignal,
  progressQuery,
  reportQuery,
  tableQuery,
} from './messages.ts';
import { NodeInstall, type NodeInstallInput } from './node-install.ts';

const act = proxyActivities<ControllerActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10 },
});
const imageAct = proxyActivities<ControllerActivities>({
  // reading a multi-GB ISO once takes minutes; heartbeats show it is alive
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '1 minute',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['ImageError'] },
});
const discoverAct = proxyActivities<ControllerActivities>({ startToCloseTimeout: '10 minutes' });

const OUTCOMES: NodeOutcome[] = ['success', 'failure', 'timeout', 'power-error', 'skipped', 'cancelled'];

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
  let turnGranted = false;
  const controllerTable = new Map<string, TableEntry>();
  const monitorTable = new Map<string, TableEntry>();
  const dropped: TableEntry[] = [];
  const results = new Map<string, NodeResult>();
  const booted = new Set<string>();
  const seenOnDhcp = new Set<string>();
  let nodes: NodeRef[] = [];
  let started = 0;
  let report: ClusterReport | undefined;

  const drop = (table: Map<string, TableEntry>, node: string) => {
    const e = table.get(node);
    if (e) {
      table.delete(node);
      if (table === controllerTable) dropped.push(e);
    }
  };
  setHandler(nodeReportSignal, (msg) => {
    if (msg.kind === 'table') {
      // controller records the entry and sends it to the monitor
      controllerTable.set(msg.entry.node, msg.entry);
      monitorTable.set(msg.entry.node, msg.entry);
      seenOnDhcp.add(msg.entry.node);
    } else if (msg.kind === 'booted') {
      booted.add(msg.node);
    } else {
      // monitor: status (or timeout) received → drops its entry, feedback to the controller → controller drops its
      drop(monitorTable, msg.node);
      drop(controllerTable, msg.node);
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
    return { cluster: spec.name, state, total: nodes.length, started, paused: false, outcomes, phases };
  };
  setHandler(progressQuery, progress);
  setHandler(tableQuery, () => ({
    controller: [...controllerTable.values()],
    monitor: [...monitorTable.values()],
  }));
  setHandler(reportQuery, () => report);
  const details = (line: string) => setCurrentDetails(`**${spec.name}** · ${spec.iso.version} · ${line}`);

  // Ask for the power-on turn first, so installs are served in submission order whatever their image prep takes.
  await act.requestPowerTurn({ requester: clusterId });
  try {
    details('preparing the image');
    const refs = [{ what: 'ipmi password', ref: bmcPasswordRef(spec) }];
    const rootRef = rootPasswordHashRef(spec);
    if (rootRef) refs.push({ what: 'kickstart root password hash', ref: rootRef });
    await act.checkSecrets(refs);
    const image = await imageAct.prepareImage({ version: spec.iso.version, library: spec.iso.library });
    nodes = spec.nodes
      ? spec.nodes.map((n) => ({
          name: n.name,
          bmc: n.bmc,
          bmcPort: n.bmcPort,
          mac: n.mac,
          ip: n.ip,
          osDisk: n.osDisk,
          bootMode: n.bootMode,
        }))
      : (
          await discoverAct.discoverBmcs({
            subnet: spec.ipmi.subnet,
            port: spec.ipmi.port,
            maxNodes: spec.discovery?.maxNodes ?? 4096,
            username: spec.ipmi.username,
            passwordRef: bmcPasswordRef(spec),
          })
        ).map((b, i) => ({
          name: `${spec.name}-${String(i + 1).padStart(3, '0')}`,
          bmc: b.address,
          bmcPort: b.port,
          osDisk: spec.kickstart.osDisk,
          bootMode: spec.bootMode,
        }));
    if (spec.power.order === 'bmc-address') nodes.sort((a, b) => ipKey(a.bmc) - ipKey(b.bmc));
    await act.configureNetboot({ clusterId, spec, image });

    state = 'waiting-turn';
    details(`waiting for the power-on turn (installs go in submission order)`);
    upsertSearchAttributes([{ key: SA.phase, value: 'waiting-turn' }]);
    await condition(() => turnGranted);

    state = 'powering-on';
    upsertSearchAttributes([{ key: SA.phase, value: 'powering-on' }]);
    const children: Array<Promise<void>> = [];
    for (const node of nodes) {
      await condition(() => started - results.size < spec.power.maxBooting);
      details(`powering on ${node.name} (${started + 1}/${nodes.length})`);
      const childInput: NodeInstallInput = {
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
      const child: ChildWorkflowHandle<typeof NodeInstall> = await startChild(NodeInstall, {
        workflowId: `${clusterId}/${node.name}`,
        args: [childInput],
        staticSummary: `install ${node.name} · BMC ${node.bmc} · ${spec.iso.version}`,
      });
      started += 1;
      children.push(
        child.result().then(
          (r) => void results.set(node.name, r),
          (err) => void results.set(node.name, failedResult(node, err)),
        ),
      );
      // Unknown MAC: the next power-on waits until this node's first DHCP request tied its MAC to its BMC.
      if (!node.mac) await condition(() => seenOnDhcp.has(node.name) || results.has(node.name));
      if (spec.power.interval > 0) await sleep(spec.power.interval);
    }
    await CancellationScope.nonCancellable(() => act.releasePowerTurn({ requester: clusterId }));
    turnGranted = false;

    state = 'installing';
    upsertSearchAttributes([{ key: SA.phase, value: 'installing' }]);
    details(`all ${nodes.length} nodes powered on; waiting for their status`);
    await Promise.all(children);
  } finally {
    if (turnGranted || state !== 'installing') {
      await CancellationScope.nonCancellable(() => act.releasePowerTurn({ requester: clusterId }));
    }
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
  const overall = counts.success === nodes.length ? 'success' : 'incomplete';
  upsertSearchAttributes([
    { key: SA.phase, value: 'done' },
    { key: SA.outcome, value: overall },
  ]);
  details(
    OUTCOMES.filter((o) => counts[o])
      .map((o) => `${o}: ${counts[o]}`)
      .join(' · '),
  );
  return report;
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
