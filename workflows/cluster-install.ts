// ClusterInstall: one request of the method. validate → queue for the power-on turn → prepare image →
// configure netboot → (discover BMCs) → paced power-on, one NodeInstall child per node, in order → report.
// Keeps the controller's side of the correspondence table and a mirror of the monitor's. Live controls are
// Updates (pause/resume/setPace/retryNodes/skipNodes); cancelling it cancels the running children.
//
// Scale: children report their end by signal and are started with ParentClosePolicy.ABANDON, so the install can
// continue-as-new (carrying its cursor, table and results) before its history grows large — 2,000 nodes and more
// stay far from Temporal's limits (docs/scale.md).
import {
  ApplicationFailure,
  allHandlersFinished,
  CancellationScope,
  ChildWorkflowFailure,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  ParentClosePolicy,
  patched,
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
import { DETAIL_MAX, installSizeProblem } from '../config/capacity.ts';
import { SpecError } from '../config/errors.ts';
import { unsupportedProblems } from '../config/unsupported.ts';
import { SA } from '../temporal/search-attributes.ts';
import { failureText } from './failure-text.ts';
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
  startToCloseTimeout: '1 minute',
  retry: {
    initialInterval: '1s',
    maximumInterval: '30s',
    maximumAttempts: 10,
    nonRetryableErrorTypes: ['SecretMissing', 'NetbootNotConfigured'],
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
/** continue-as-new well before the server's 10,240-event warning */
const DEFAULT_HISTORY_LIMIT = 8000;
/** how often children inherited from a previous run are checked for having ended without a word */
const RECONCILE_MS = 5 * 60_000;
/** the same once every node has been powered on (only the tail is left to wait for) */
const TAIL_RECONCILE_MS = 60_000;
/** children started together in one workflow task when the pace allows it (interval 0) */
const START_BATCH = 100;
/** continue-as-new once this run has this many children still running: Temporal refuses a 2,001st pending
 *  child per execution, and children abandoned by a previous run do not count against the new one */
const PENDING_CHILDREN_LIMIT = 1000;

/** What a run hands to the next one on continue-as-new. JSON-safe. */
export interface InstallState {
  stage: Progress['state'];
  startedAt: number;
  runs: number;
  turnHeld: boolean;
  turnGranted: boolean;
  paused: boolean;
  intervalMs: number;
  maxBooting: number;
  /** the node list in power-on order; left out when the spec lists the nodes (it is derived again from the spec,
   *  which every run gets as its input: carrying it twice costs ~150 B per node of the 2 MB payload limit) */
  nodes?: NodeRef[];
  /** names waiting for their power-on, in order */
  queue: string[];
  /** how many nodes of the original request are still in the queue (the power-on turn is held until 0) */
  firstRound: number;
  started: number;
  running: string[];
  results: NodeResult[];
  controllerTable: TableEntry[];
  monitorTable: TableEntry[];
  dropped: TableEntry[];
  seenOnDhcp: string[];
  skipped: string[];
}

export interface ClusterInstallOptions {
  /** continue-as-new once the history has this many events (tests make it small) */
  historyLimit?: number;
  /** set by continue-as-new */
  carried?: InstallState;
}

export async function ClusterInstall(
  input: unknown,
  options: ClusterInstallOptions = {},
): Promise<ClusterReport> {
  const parsed = safeParseClusterSpec(input);
  if (!parsed.success) {
    throw ApplicationFailure.nonRetryable(
      `invalid cluster spec:\n${parsed.error.message}`,
      'InvalidClusterSpec',
    );
  }
  const spec: ClusterSpec = parsed.spec;
  // A spec too large for one install is refused before anything is powered on (its report could not be
  // returned at the end); failure details are cut to DETAIL_MAX in this workflow's state (the child keeps them).
  const sizeLimited = patched('install-size-limit');
  if (sizeLimited && !options.carried) {
    const tooBig = installSizeProblem(spec, JSON.stringify(input).length);
    if (tooBig) {
      throw ApplicationFailure.nonRetryable(
        `invalid cluster spec:\n${new SpecError([tooBig]).message}`,
        'InvalidClusterSpec',
      );
    }
  }
  // proxyDHCP without every node's MAC cannot boot a node (config/unsupported.ts): refused, not left to time out
  const unsupported = options.carried ? [] : unsupportedProblems(spec);
  if (unsupported.length > 0 && patched('proxy-needs-macs')) {
    throw ApplicationFailure.nonRetryable(
      `invalid cluster spec:\n${new SpecError(unsupported).message}`,
      'InvalidClusterSpec',
    );
  }
  const clusterId = workflowInfo().workflowId;
  const historyLimit = options.historyLimit ?? DEFAULT_HISTORY_LIMIT;
  const c = options.carried;

  let stage: Progress['state'] = c?.stage ?? 'preparing';
  const startedAt = c?.startedAt ?? Date.now();
  let turnHeld = c?.turnHeld ?? false;
  let turnGranted = c?.turnGranted ?? false;
  let paused = c?.paused ?? false;
  let intervalMs = c?.intervalMs ?? spec.power.interval;
  let maxBooting = c?.maxBooting ?? spec.power.maxBooting;
  let nodes: NodeRef[] = c ? (c.nodes ?? specNodes(spec)) : [];
  const queue: string[] = [...(c?.queue ?? [])];
  let firstRound = c?.firstRound ?? 0;
  let started = c?.started ?? 0;
  const running = new Set<string>(c?.running ?? []);
  /** children this run started: their result() is a backstop for a child that ends without its 'done' signal */
  const ownChildren = new Set<string>();
  /** node → first run id of the child this install started for it (this run) */
  const childRuns = new Map<string, string>();
  const earlyDone = new Map<string, NodeResult>();
  const results = new Map<string, NodeResult>((c?.results ?? []).map((r) => [r.node, r]));
  const controllerTable = new Map<string, TableEntry>((c?.controllerTable ?? []).map((e) => [e.node, e]));
  const monitorTable = new Map<string, TableEntry>((c?.monitorTable ?? []).map((e) => [e.node, e]));
  const dropped: TableEntry[] = [...(c?.dropped ?? [])];
  const seenOnDhcp = new Set<string>(c?.seenOnDhcp ?? []);
  const skipped = new Set<string>(c?.skipped ?? []);
  let report: ClusterReport | undefined;

  if (!c) {
    upsertSearchAttributes([
      { key: SA.cluster, value: spec.name },
      { key: SA.isoVersion, value: spec.iso.version },
      { key: SA.phase, value: 'preparing' },
    ]);
  }
  const setStage = (s: Progress['state']) => {
    stage = s;
    upsertSearchAttributes([{ key: SA.phase, value: s }]);
  };
  const finish = (r: NodeResult) => {
    if (!running.has(r.node) && results.has(r.node)) return; // already counted (signal and result() both came)
    results.set(r.node, sizeLimited && (r.detail?.length ?? 0) > DETAIL_MAX ? shortDetail(r) : r);
    running.delete(r.node);
  };

  setHandler(nodeReportSignal, (msg) => {
    if (msg.kind === 'table') {
      // the controller records the entry and sends it to the monitor
      controllerTable.set(msg.entry.node, msg.entry);
      monitorTable.set(msg.entry.node, msg.entry);
      seenOnDhcp.add(msg.entry.node);
    } else if (msg.kind === 'feedback' || msg.kind === 'timeout') {
      // the monitor got a status (or timed out): it drops its entry and tells the controller, which drops its own
      monitorTable.delete(msg.node);
      const e = controllerTable.get(msg.node);
      if (e) {
        controllerTable.delete(msg.node);
        dropped.push(e);
      }
      if (msg.kind === 'timeout' && msg.waited === 'dhcp') seenOnDhcp.add(msg.node);
    } else if (msg.kind === 'done') {
      const name = msg.result.node;
      const runId = childRuns.get(name);
      if (running.has(name) && (runId === undefined || msg.runId === undefined || msg.runId === runId)) {
        finish(msg.result);
      } else if (!running.has(name) && msg.runId !== undefined) {
        // after a reset the re-applied 'done' can arrive in the same activation as the replayed child start,
        // before the start is processed: keep it until the start tells which run is ours
        earlyDone.set(`${name}/${msg.runId}`, msg.result);
      }
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
      state: stage,
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
    { validator: () => assertOpen(stage, 'pause') },
  );
  setHandler(
    resumeUpdate,
    () => {
      paused = false;
      return progress();
    },
    {
      validator: () => {
        assertOpen(stage, 'resume');
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
        assertOpen(stage, 'change the pace of');
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
        queue.push(name);
      }
      return names;
    },
    {
      validator: (req) => {
        assertOpen(stage, 'retry nodes of');
        if (req.nodes !== 'all-failed') known(req.nodes);
        const names = retryTargets(req);
        if (names.length === 0) throw new Error('no failed or timed-out node to retry');
        for (const name of names) {
          if (running.has(name) || queue.includes(name))
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
        assertOpen(stage, 'skip nodes of');
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
    turnGranted = false;
    await CancellationScope.nonCancellable(() => act.releasePowerTurn({ requester: clusterId }));
  };
  const snapshot = (): InstallState => ({
    stage,
    startedAt,
    runs: (c?.runs ?? 0) + 1,
    turnHeld,
    turnGranted,
    paused,
    intervalMs,
    maxBooting,
    // runs recorded before carry the node list whatever its source
    nodes: spec.nodes && patched('carry-no-spec-nodes') ? undefined : nodes,
    queue,
    firstRound,
    started,
    running: [...running],
    results: [...results.values()],
    controllerTable: [...controllerTable.values()],
    monitorTable: [...monitorTable.values()],
    dropped,
    seenOnDhcp: [...seenOnDhcp],
    skipped: [...skipped],
  });
  const historyFull = () =>
    workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= historyLimit;
  // Runs recorded before batched starts replay the one-child-per-task loop.
  const batchedStarts = patched('batched-power-on');
  // A 'done' signal that reaches a run while it continues as new can be lost: the server fails that workflow
  // task (UnhandledCommand) and on the retry the run may throw its continue-as-new before the late signal's
  // handler ran (seen once in a 2,000-node install: the node was found only by the 5-minute reconcile pass).
  // So a continued run asks the server about its inherited nodes at once, and the tail reconciles every minute.
  const reconcileSooner = patched('reconcile-after-continue-as-new');
  const ownRunning = () => {
    let n = 0;
    for (const name of ownChildren) if (running.has(name)) n += 1;
    return n;
  };
  const runFull = () => historyFull() || (batchedStarts && ownRunning() >= PENDING_CHILDREN_LIMIT);

  try {
    if (stage === 'preparing') {
      // Ask for the power-on turn first, so installs are served in submission order whatever their image prep takes.
      await act.requestPowerTurn({ requester: clusterId });
      turnHeld = true;
      details('preparing the image');
      const refs = [{ what: 'ipmi password', ref: bmcPasswordRef(spec) }];
      const rootRef = rootPasswordHashRef(spec);
      if (rootRef) refs.push({ what: 'kickstart root password hash', ref: rootRef });
      await act.checkSecrets(refs);
      const image = await imageAct.prepareImage({ version: spec.iso.version, library: spec.iso.library });
      nodes = spec.nodes ? specNodes(spec) : await discovered(spec);
      if (!spec.nodes && spec.power.order === 'bmc-address')
        nodes.sort((a, b) => ipKey(a.bmc) - ipKey(b.bmc));
      await act.configureNetboot({ clusterId, spec, image });
      queue.push(...nodes.map((n) => n.name));
      firstRound = nodes.length;
      setStage('waiting-turn');
    }
    if (stage === 'waiting-turn') {
      details('waiting for the power-on turn (installs go in submission order)');
      await condition(() => turnGranted);
      setStage('powering-on');
    }

    const byName = new Map(nodes.map((n) => [n.name, n]));
    const endOfRequest = async () => {
      // every node of this request has had its power-on: the next request may start powering on
      await releaseTurn();
      setStage('installing');
      details(`all ${nodes.length} nodes powered on; waiting for their status`);
    };
    /** starts one node's NodeInstall child (its first activities power the node on) */
    const launch = async (node: NodeRef) => {
      const name = node.name;
      const child = await startChild(NodeInstall, {
        workflowId: `${clusterId}/${name}`,
        args: [childInput(spec, clusterId, node)],
        // abandoned, not killed, when this run continues as new; cancelled explicitly on cancel
        parentClosePolicy: ParentClosePolicy.ABANDON,
        staticSummary: `install ${name} · BMC ${node.bmc} · ${spec.iso.version}`,
      });
      started += 1;
      running.add(name);
      ownChildren.add(name);
      childRuns.set(name, child.firstExecutionRunId);
      const early = earlyDone.get(`${name}/${child.firstExecutionRunId}`);
      if (early) finish(early);
      child.result().then(
        (r) => finish(r),
        (err) => {
          if (running.has(name)) finish(failedResult(node, err));
        },
      );
    };
    /** takes the next queued node; a skipped one gets its result at once (null) */
    const dequeue = (): { node: NodeRef | null; lastOfRequest: boolean } => {
      const name = queue.shift()!;
      const node = byName.get(name)!;
      const lastOfRequest = firstRound > 0 && --firstRound === 0;
      if (!skipped.has(name)) return { node, lastOfRequest };
      results.set(name, { node: name, bmcIp: node.bmc, outcome: 'skipped', attempts: 0, phases: {} });
      return { node: null, lastOfRequest };
    };
    const powerOnNext = async () => {
      const { node, lastOfRequest } = dequeue();
      if (node) {
        details(`powering on ${node.name} (${started + 1}/${nodes.length})`);
        await launch(node);
        // Unknown MAC: the next power-on waits until this node's first DHCP request tied its MAC to its BMC.
        if (!node.mac) await condition(() => seenOnDhcp.has(node.name) || !running.has(node.name));
      }
      if (lastOfRequest) await endOfRequest();
      else if (intervalMs > 0 && queue.length > 0) await sleep(intervalMs, { summary: 'power-on interval' });
    };
    /** Interval 0: every free slot at once. Each start is a round trip through the server; issued together they
     *  share one workflow task (start order, and so the power-on order, is kept). Nodes of unknown MAC still go
     *  one at a time (DHCP ties a MAC to the one node powered on). */
    const powerOnBatch = async () => {
      const batch: NodeRef[] = [];
      let lastOfRequest = false;
      const free = Math.min(maxBooting - running.size, PENDING_CHILDREN_LIMIT - ownRunning(), START_BATCH);
      while (queue.length > 0 && batch.length < free && byName.get(queue[0]!)!.mac) {
        const next = dequeue();
        if (next.node) batch.push(next.node);
        lastOfRequest ||= next.lastOfRequest;
      }
      if (batch.length > 0) {
        details(
          `powering on ${batch.length} nodes (${started + 1}–${started + batch.length}/${nodes.length})`,
        );
        await Promise.all(batch.map(launch));
      }
      if (lastOfRequest) await endOfRequest();
    };
    const batchable = () => batchedStarts && intervalMs === 0 && !!byName.get(queue[0]!)?.mac;

    if (reconcileSooner && c && running.size > 0) await reconcile([...running]);
    for (;;) {
      const canStart = () => queue.length > 0 && !paused && running.size < maxBooting;
      const allDone = () => queue.length === 0 && running.size === 0;
      const every = reconcileSooner && queue.length === 0 ? TAIL_RECONCILE_MS : RECONCILE_MS;
      const woke = await condition(() => canStart() || allDone() || runFull(), every);
      if (allDone()) break;
      if (runFull()) {
        await condition(allHandlersFinished);
        return await continueAsNew<typeof ClusterInstall>(input, {
          historyLimit: options.historyLimit,
          carried: snapshot(),
        });
      }
      if (!woke) await reconcile([...running]);
      else if (canStart()) await (batchable() ? powerOnBatch() : powerOnNext());
    }
  } catch (err) {
    if (isCancellation(err)) {
      // nodes not yet powered on never will be; running node workflows are cancelled (they stop waiting; a node
      // already installing is left as it is — see docs/operating.md)
      await CancellationScope.nonCancellable(async () => {
        for (const name of running)
          await getExternalWorkflowHandle(`${clusterId}/${name}`)
            .cancel()
            .catch(() => {});
        await releaseTurn();
      });
    }
    throw err;
  } finally {
    if (stage !== 'installing' && stage !== 'done') await releaseTurn();
  }

  /** children that ended without their 'done' reaching this run (terminated; a reset): ask the server */
  async function reconcile(names: string[]): Promise<void> {
    if (names.length === 0) return;
    for (const s of await act.nodeResults({ workflowIds: names.map((n) => `${clusterId}/${n}`) })) {
      const name = s.workflowId.slice(clusterId.length + 1);
      if (s.running || !running.has(name)) continue;
      finish(
        s.result ??
          failedResult(byNameOf(name), new Error(s.error ?? 'the node workflow ended without a result')),
      );
    }
  }
  function byNameOf(name: string): NodeRef {
    return nodes.find((n) => n.name === name)!;
  }

  stage = 'done';
  const counts = Object.fromEntries(OUTCOMES.map((o) => [o, 0])) as Record<NodeOutcome, number>;
  for (const r of results.values()) counts[r.outcome] += 1;
  report = {
    cluster: spec.name,
    isoVersion: spec.iso.version,
    startedAt,
    finishedAt: Date.now(),
    counts,
    nodes: nodes.map((n) => results.get(n.name)!),
    table: withResultEntries(dropped, [...results.values()]),
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

/**
 * A node report signal can race a continue-as-new and be lost; the node's result holds the same facts (BMC IP,
 * MAC, DHCP IP, attempts, when DHCP was seen), so a node missing from the dropped entries gets one from there.
 */
function withResultEntries(dropped: TableEntry[], results: NodeResult[]): TableEntry[] {
  const have = new Set(dropped.map((e) => e.node));
  const missing = results
    .filter((r) => !have.has(r.node) && r.mac && r.dhcpIp)
    .map((r) => ({
      node: r.node,
      bmcIp: r.bmcIp,
      mac: r.mac!,
      dhcpIp: r.dhcpIp!,
      attempt: r.attempts,
      since: r.phases.dhcp ?? 0,
      phase: r.outcome,
    }));
  return [...dropped, ...missing];
}

function shortDetail(r: NodeResult): NodeResult {
  return { ...r, detail: `${r.detail!.slice(0, DETAIL_MAX - 1)}…` };
}

function assertOpen(state: Progress['state'], what: string): void {
  if (state === 'done') throw new Error(`the install has finished: nothing to ${what}`);
}

/** The spec's nodes in power-on order. */
function specNodes(spec: ClusterSpec): NodeRef[] {
  const nodes = (spec.nodes ?? []).map(toNodeRef);
  if (spec.power.order === 'bmc-address') nodes.sort((a, b) => ipKey(a.bmc) - ipKey(b.bmc));
  return nodes;
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
    detail: patched('failure-detail-cause')
      ? failureText(err)
      : err instanceof Error
        ? ((err.cause as Error | undefined)?.message ?? err.message)
        : String(err),
    attempts: 0,
    phases: {},
  };
}

function ipKey(ip: string): number {
  return ip.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}
