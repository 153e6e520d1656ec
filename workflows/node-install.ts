// NodeInstall: one node through the method — PXE next boot + power on, DHCP seen → table entry to the monitor,
// boot phases as signals, the final status under a durable install timer (default 20 min), then local boot on
// success or the retry ladder on failure/timeout. Deterministic: no Node APIs; time is the SDK's.
import {
  type ActivityOptions,
  ApplicationFailure,
  ActivityFailure,
  CancellationScope,
  condition,
  isCancellation,
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  setCurrentDetails,
} from '@temporalio/workflow';
import type { ControllerActivities, NodeRef, PowerTarget } from '../activities/types.ts';
import { SA } from '../temporal/search-attributes.ts';
import { failureText } from './failure-text.ts';
import {
  type NodeOutcome,
  type NodeReport,
  type NodeResult,
  type NodeTimeline,
  nodeReportSignal,
  type PhaseSignal,
  phaseSignal,
  phasesSignal,
  statusSignal,
  type StatusSignal,
  timelineQuery,
} from './messages.ts';

export interface NodeInstallInput {
  clusterId: string;
  cluster: string;
  isoVersion: string;
  node: NodeRef;
  power: PowerTarget;
  installTimeoutMs: number;
  dhcpSeenMs: number;
  attempts: number;
  powerCycleOnRetry: boolean;
}

const controller = proxyActivities<ControllerActivities>({
  startToCloseTimeout: '30s',
  retry: {
    initialInterval: '1s',
    maximumInterval: '30s',
    maximumAttempts: 5,
    nonRetryableErrorTypes: ['BmcAuthError'],
  },
});
const POWER_OPTIONS: ActivityOptions = {
  // ipmitool calls are bounded by -N/-R; the limit protects against a hung process
  startToCloseTimeout: '45s',
  retry: {
    initialInterval: '2s',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 4,
    nonRetryableErrorTypes: ['BmcAuthError', 'BmcCommandError', 'BmcConfigError'],
  },
};
const power = proxyActivities<ControllerActivities>(POWER_OPTIONS);

function errorType(err: unknown): string | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure ? (cause.type ?? undefined) : undefined;
}

export async function NodeInstall(input: NodeInstallInput): Promise<NodeResult> {
  const { node } = input;
  const parent = workflowInfo().parent;
  // to the parent's workflow id, so the newest run gets it after a continue-as-new; a parent that has ended
  // (cancelled, terminated) cannot be told and does not need to be: the node's own history keeps everything
  const report = async (msg: NodeReport) => {
    if (!parent) return;
    try {
      await getExternalWorkflowHandle(parent.workflowId).signal(nodeReportSignal, msg);
    } catch (err) {
      if (isCancellation(err)) throw err;
    }
  };

  let attempt = 0;
  let phase = 'pending';
  let mac = node.mac;
  let dhcpIp: string | undefined;
  let seenDhcp = false;
  let status: StatusSignal | undefined;
  let outcome: NodeOutcome | undefined;
  let detail: string | undefined;
  const events: NodeTimeline['events'] = [];
  const firstSeen: Record<string, number> = {};

  /** records a phase; `publish` false leaves the search attribute and details to the caller (one update for many) */
  const enter = (p: string, at: number, publish = true) => {
    if (p === phase) return;
    phase = p;
    events.push({ attempt, phase: p, at });
    firstSeen[p] ??= at;
    if (publish) show();
  };
  const show = () => {
    upsertSearchAttributes([{ key: SA.phase, value: phase }]);
    setCurrentDetails(
      `**${node.name}** · attempt ${attempt}/${input.attempts} · phase **${phase}**\n\n` +
        events
          .slice(-12)
          .map((e) => `- ${new Date(e.at).toISOString()} attempt ${e.attempt}: ${e.phase}`)
          .join('\n'),
    );
  };

  const onPhase = (s: PhaseSignal, publish: boolean) => {
    if (outcome) return;
    if (s.phase === 'dhcp') {
      if (s.mac && !mac) mac = s.mac;
      if (s.ip) dhcpIp = s.ip;
      if (mac && dhcpIp) seenDhcp = true;
    }
    enter(s.phase, s.at, publish);
  };
  setHandler(phaseSignal, (s) => onPhase(s, true));
  // the controller's bridge sends the phases that arrived while its previous signal was in flight as one signal:
  // one workflow task and one search-attribute update for a burst (kernel → initrd → kickstart within ms)
  setHandler(phasesSignal, ({ phases }) => {
    const before = events.length;
    for (const s of phases) onPhase(s, false);
    if (events.length > before) show();
  });
  setHandler(statusSignal, (s) => {
    // a status for an older attempt is stale (its token was rotated); only the first one for this attempt counts
    if (s.attempt === attempt && status === undefined && !outcome) status = s;
  });
  setHandler(timelineQuery, () => ({ node: node.name, attempt, phase, mac, dhcpIp, events, outcome }));

  upsertSearchAttributes([
    { key: SA.cluster, value: input.cluster },
    { key: SA.node, value: node.name },
    { key: SA.bmc, value: node.bmc },
    { key: SA.isoVersion, value: input.isoVersion },
    ...(mac ? [{ key: SA.mac, value: mac }] : []),
  ]);

  const uefi = node.bootMode === 'uefi';
  try {
    while (attempt < input.attempts && !outcome) {
      attempt += 1;
      seenDhcp = false;
      status = undefined;
      enter('power-on', Date.now());
      await controller.registerNodeBoot({ clusterId: input.clusterId, node: { ...node, mac }, attempt });
      try {
        await power.powerOnForPxe.executeWithOptions(
          { ...POWER_OPTIONS, summary: `PXE next boot + power on ${node.name} via BMC ${node.bmc}` },
          [{ ...input.power, uefi }],
        );
      } catch (err) {
        // wrong password or a BMC that rejects the command: retrying the install cannot help
        outcome = 'power-error';
        detail = `${errorType(err) ?? 'power'}: ${err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err)}`;
        break;
      }

      if (
        !(await condition(() => seenDhcp, input.dhcpSeenMs, {
          summary: `DHCP-seen deadline, attempt ${attempt}`,
        }))
      ) {
        await report({ kind: 'timeout', node: node.name, attempt, waited: 'dhcp', at: Date.now() });
        detail = `no DHCP request within ${input.dhcpSeenMs} ms of power-on`;
        if (attempt >= input.attempts) outcome = 'timeout';
        continue;
      }
      if (mac) upsertSearchAttributes([{ key: SA.mac, value: mac }]);
      await report({
        kind: 'table',
        entry: {
          node: node.name,
          bmcIp: node.bmc,
          mac: mac!,
          dhcpIp: dhcpIp!,
          attempt,
          since: Date.now(),
          phase,
        },
      });

      // the monitor: the final status, or an explicit timeout message after the install timer
      const installTimer = {
        summary: `install timer (${Math.round(input.installTimeoutMs / 60_000)} min), attempt ${attempt}`,
      };
      if (!(await condition(() => status !== undefined, input.installTimeoutMs, installTimer))) {
        await report({ kind: 'timeout', node: node.name, attempt, waited: 'status', at: Date.now() });
        detail = `no install status within ${input.installTimeoutMs} ms`;
        if (attempt >= input.attempts) outcome = 'timeout';
        continue;
      }
      const s = status!;
      await report({
        kind: 'feedback',
        node: node.name,
        attempt,
        outcome: s.outcome,
        detail: s.detail,
        at: s.at,
      });
      detail = s.detail;
      if (s.outcome === 'success') outcome = 'success';
      else if (attempt >= input.attempts) outcome = 'failure';
    }
    outcome ??= 'failure';
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // cancelled with the install: stop waiting, tell the parent; a node already installing is left as it is
    outcome = 'cancelled';
    detail = 'install cancelled';
    await CancellationScope.nonCancellable(async () => {
      // its callbacks end here: the netboot side answers them for good instead of waiting for a workflow
      await controller.releaseNode({ clusterId: input.clusterId, node: { ...node, mac } });
      await report({ kind: 'done', result: result(), runId: workflowInfo().firstExecutionRunId });
    });
    throw err;
  }

  if (outcome === 'success') {
    try {
      await controller.finishNode({
        clusterId: input.clusterId,
        node: { ...node, mac },
        outcome,
        power: { ...input.power, uefi },
      });
    } catch (err) {
      // The node is installed: a BMC that no longer answers when its boot device is set to disk must not turn it
      // into a failure (its token is revoked, so a PXE boot gets `exit` and boots the disk anyway). Said in detail.
      if (isCancellation(err) || !patched('installed-despite-finish-failure')) throw err;
      detail = `installed; the boot device was not set to disk: ${failureText(err)}`;
    }
  }
  upsertSearchAttributes([{ key: SA.outcome, value: outcome }]);
  enter(outcome, Date.now());
  await report({ kind: 'done', result: result(), runId: workflowInfo().firstExecutionRunId });
  return result();

  function result(): NodeResult {
    return {
      node: node.name,
      bmcIp: node.bmc,
      mac,
      dhcpIp,
      outcome: outcome ?? 'failure',
      detail,
      attempts: attempt,
      phases: firstSeen,
    };
  }
}
