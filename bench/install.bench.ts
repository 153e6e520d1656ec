// Whole install (run: node --import tsx bench/install.bench.ts [--quick] [--nodes 100,500] [--merge]; as root).
// --merge keeps the figures of other sizes from the last bench/out/install.json (a long 2,000-node run alone).
// N simulated nodes (an ipmi_sim BMC + a busybox node in its own namespace each) installed through the real
// pipeline: Temporal dev server (SQLite), the controller as a child process (dnsmasq, TFTP, HTTP, worker),
// ClusterInstall → NodeInstall per node, IPMI power-on over ipmitool, DHCP → TFTP → HTTP → kickstart →
// packages → status. Figures: wall time against the bound the pacing policy and the simulated install time set,
// per-node orchestration cost, Temporal history sizes (every run of the ClusterInstall parent), peak RSS of the
// controller, dnsmasq and the Temporal server. Then one qemu VM (real iPXE firmware) from IPMI power-on to status.
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import proto from '@temporalio/proto';
import { pino } from 'pino';
import { startLab } from '../lab/lab.ts';
import { consoleLogPath, haveQemu, POWER_ON_MARK } from '../lab/qemu/vm.ts';
import { startTestTemporal, type TestTemporal } from '../test/helpers/temporal.ts';
import { BOOT_PHASES } from '../netboot/types.ts';
import type { ClusterReport, NodeOutcome } from '../workflows/messages.ts';
import {
  childrenNamed,
  cpuSeconds,
  median,
  OUT_DIR,
  peakRssMiB,
  rssMiB,
  percentile,
  QUICK,
  r,
  sleep,
  startBench,
} from './lib/report.ts';

const argNodes = process.argv.indexOf('--nodes');
const SIZES = (
  argNodes > 0 ? process.argv[argNodes + 1] : (process.env.BENCH_INSTALL_NODES ?? (QUICK ? '20' : '100,500'))
)
  .split(',')
  .map(Number)
  .filter((n) => n > 0);
const MERGE = process.argv.includes('--merge');
const INSTALL_SECONDS = 1;
const MAX_BOOTING = Number(process.env.BENCH_INSTALL_MAX_BOOTING ?? 250);
const QEMU = process.env.BENCH_INSTALL_QEMU !== '0';
const NOTES_QEMU_SECONDS = 7.3;
const OUTCOMES: NodeOutcome[] = ['success', 'failure', 'timeout', 'power-error', 'skipped', 'cancelled'];
const logger = pino({ level: process.env.PXEFLOW_BENCH_LOG ?? 'silent' });

interface InstallFigures {
  nodes: number;
  /** when this size was measured (runs kept from an earlier invocation with --merge keep their date) */
  measuredAt: string;
  maxBooting: number;
  setupS: number;
  wallS: number;
  boundS: number;
  success: number;
  outcomes: Record<string, number>;
  /** the nodes that did not install (at most 20): outcome, attempts and the reason the install recorded */
  notInstalled?: Array<{ node: string; outcome: string; attempts: number; detail?: string }>;
  /** spacing of consecutive power-on commands (orchestration throughput while slots are free) */
  powerOnSpacingMs: number;
  /** per node, from the power-on command to the workflow's final outcome */
  nodeP50S: number;
  nodeP99S: number;
  /** median time between phases */
  phaseMedians: Record<string, number>;
  parentRuns: number;
  parentEvents: number;
  parentBytes: number;
  /** largest input of a ClusterInstall run (a continue-as-new carries its state in it) */
  parentInputBytes?: number;
  childEvents: number;
  childBytes: number;
  controllerRssMiB: number;
  /** resident set at the end of the install (the peak includes start-up, e.g. loading the workflow bundle) */
  controllerRssEndMiB: number;
  dnsmasqRssMiB: number;
  temporalRssMiB: number;
  /** CPU seconds during the install: the controller process itself (worker, TFTP, HTTP, event bridge; not
   *  dnsmasq) and the Temporal server — what orchestration costs, apart from the simulated nodes' own work */
  controllerCpuS?: number;
  temporalCpuS?: number;
  error?: string;
}

async function historyOf(t: TestTemporal, workflowId: string, runId?: string) {
  const h = await t.client.workflow.getHandle(workflowId, runId).fetchHistory();
  const input = h.events?.[0]?.workflowExecutionStartedEventAttributes?.input;
  return {
    events: h.events?.length ?? 0,
    bytes: proto.temporal.api.history.v1.History.encode(h).finish().length,
    /** the run's input: the spec, plus the carried state after a continue-as-new (2 MB payload limit) */
    inputBytes: input ? proto.temporal.api.common.v1.Payloads.encode(input).finish().length : 0,
  };
}

/** Every run (continue-as-new chain) of a workflow id, largest history first. */
async function parentHistories(t: TestTemporal, workflowId: string) {
  const out: Array<{ events: number; bytes: number; inputBytes: number }> = [];
  for await (const wf of t.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) {
    out.push(await historyOf(t, workflowId, wf.runId));
  }
  if (out.length === 0) out.push(await historyOf(t, workflowId));
  return out.sort((a, b) => b.bytes - a.bytes);
}

async function runInstall(n: number, dir: string): Promise<InstallFigures> {
  const t = await startTestTemporal();
  const maxBooting = Math.min(n, MAX_BOOTING);
  const name = `bench${n}`;
  const t0 = performance.now();
  const lab = await startLab({
    nodes: n,
    stateDir: join(dir, name),
    temporal: { address: t.endpoint.address, namespace: t.endpoint.namespace, client: t.client },
    taskQueue: `bench-${name}`,
    logger,
    clusterName: name,
    installSeconds: INSTALL_SECONDS,
    power: { interval: '0s', maxBooting },
    timeouts: { install: '20m', dhcpSeen: '5m' },
    attempts: 1,
    controllerProcess: true,
  }).catch(async (e) => {
    await t.close();
    throw e;
  });
  const setupS = (performance.now() - t0) / 1000;
  try {
    const workflowId = `pxeflow/${name}`;
    const cpu0 = {
      controller: await cpuSeconds(lab.controller.pid),
      temporal: await cpuSeconds(t.endpoint.pid),
    };
    const t1 = performance.now();
    const handle = await t.client.workflow.start('ClusterInstall', {
      taskQueue: `bench-${name}`,
      workflowId,
      args: [lab.spec],
    });
    const deadline = 10 * 60_000 + n * 1000;
    const report = (await Promise.race([
      handle.result(),
      sleep(deadline).then(() => {
        throw new Error(`no result within ${deadline / 1000} s`);
      }),
    ])) as ClusterReport;
    const wallS = (performance.now() - t1) / 1000;
    const controllerPid = lab.controller.pid;
    // cutime/cstime are in cpuSeconds: dnsmasq is a live child of the controller, so not counted until reaped
    const controllerCpuS = (await cpuSeconds(controllerPid)) - cpu0.controller;
    const temporalCpuS = (await cpuSeconds(t.endpoint.pid)) - cpu0.temporal;
    const [dnsmasqPid] = controllerPid ? await childrenNamed(controllerPid, 'dnsmasq') : [];
    const rss = {
      controllerRssMiB: await peakRssMiB(controllerPid),
      controllerRssEndMiB: await rssMiB(controllerPid),
      dnsmasqRssMiB: await peakRssMiB(dnsmasqPid),
      temporalRssMiB: await peakRssMiB(t.endpoint.pid),
    };
    const parents = await parentHistories(t, workflowId);
    const firstNode = report.nodes[0]?.node;
    const child = firstNode ? await historyOf(t, `${workflowId}/${firstNode}`) : { events: 0, bytes: 0 };

    const powerOns = report.nodes
      .map((x) => x.phases['power-on'])
      .filter(Boolean)
      .sort((a, b) => a - b);
    const spacing = powerOns.slice(1).map((x, i) => x - powerOns[i]);
    const firstSlots = spacing.slice(0, Math.max(1, maxBooting - 1));
    const nodeS = report.nodes
      .filter((x) => x.phases['power-on'] && x.phases[x.outcome])
      .map((x) => (x.phases[x.outcome] - x.phases['power-on']) / 1000);
    // gaps between consecutive phases each node reached (the final one is its outcome, e.g. success)
    const order = ['power-on', ...BOOT_PHASES, ...OUTCOMES];
    const gapsByPair = new Map<string, number[]>();
    for (const x of report.nodes) {
      const seen = order.filter((p) => x.phases[p]);
      for (let i = 1; i < seen.length; i++) {
        const key = `${seen[i - 1]}→${seen[i]}`;
        gapsByPair.set(key, [...(gapsByPair.get(key) ?? []), x.phases[seen[i]] - x.phases[seen[i - 1]]]);
      }
    }
    const phaseMedians: Record<string, number> = {};
    for (const [k, v] of gapsByPair) if (v.length >= report.nodes.length / 2) phaseMedians[k] = median(v);
    // the bound: power-ons cannot come faster than the interval (0 here), a node cannot finish before its
    // simulated install, and at most maxBooting nodes install at once
    const boundS = Math.ceil(n / maxBooting) * INSTALL_SECONDS;
    return {
      nodes: n,
      measuredAt: new Date().toISOString().replace('T', ' ').slice(0, 16),
      maxBooting,
      setupS,
      wallS,
      boundS,
      success: report.counts.success ?? 0,
      outcomes: Object.fromEntries(Object.entries(report.counts).filter(([, v]) => v > 0)),
      notInstalled: report.nodes
        .filter((x) => x.outcome !== 'success')
        .slice(0, 20)
        .map((x) => ({ node: x.node, outcome: x.outcome, attempts: x.attempts, detail: x.detail })),
      powerOnSpacingMs: median(firstSlots),
      nodeP50S: median(nodeS),
      nodeP99S: percentile(nodeS, 99),
      phaseMedians,
      parentRuns: parents.length,
      parentEvents: parents[0].events,
      parentBytes: parents[0].bytes,
      parentInputBytes: Math.max(...parents.map((p) => p.inputBytes)),
      childEvents: child.events,
      childBytes: child.bytes,
      controllerCpuS,
      temporalCpuS,
      ...rss,
    };
  } finally {
    await lab.stop();
    await t.close();
  }
}

async function runQemu(dir: string) {
  const t = await startTestTemporal();
  try {
    const lab = await startLab({
      nodes: 1,
      qemu: [1],
      stateDir: join(dir, 'qemu'),
      temporal: { address: t.endpoint.address, namespace: t.endpoint.namespace, client: t.client },
      taskQueue: 'bench-qemu',
      logger,
      clusterName: 'benchqemu',
      timeouts: { install: '4m', dhcpSeen: '90s' },
      attempts: 1,
      controllerProcess: true,
    });
    try {
      const report = (await t.client.workflow.execute('ClusterInstall', {
        taskQueue: 'bench-qemu',
        workflowId: 'pxeflow/benchqemu',
        args: [lab.spec],
      })) as ClusterReport;
      const node = report.nodes[0];
      const console = await readFile(consoleLogPath(join(dir, 'qemu', 'nodes', node.node)), 'utf8').catch(
        () => '',
      );
      const mark = new RegExp(`${POWER_ON_MARK} (\\d+)`).exec(console);
      const end = node.phases.status ?? node.phases[node.outcome];
      return {
        outcome: node.outcome,
        powerOnToStatusS: (end - node.phases['power-on']) / 1000,
        qemuStartToStatusS: mark ? (end - Number(mark[1])) / 1000 : undefined,
        phases: node.phases,
      };
    } finally {
      await lab.stop();
    }
  } finally {
    await t.close();
  }
}

async function main(): Promise<void> {
  const bench = await startBench(
    'install',
    'Whole install: simulated nodes through the real pipeline, and one qemu VM',
  );
  const dir = await mkdtemp(join(tmpdir(), 'pxeflow-bench-install-'));
  await chmod(dir, 0o711); // dnsmasq (unprivileged) reads its files below
  const runs: InstallFigures[] = [];
  let qemu: Awaited<ReturnType<typeof runQemu>> | undefined;
  try {
    for (const n of SIZES) {
      console.log(`install: ${n} nodes …`);
      try {
        const f = await runInstall(n, dir);
        runs.push(f);
        console.log(JSON.stringify(f));
      } catch (err) {
        let first = (err as Error).message.split('\n')[0].slice(0, 200);
        if (/E2BIG/.test(first))
          first =
            'the lab could not be created: lab/network.ts addNodes passes the whole namespace script as one ' +
            '`bash -c` argument, which beyond ~500 nodes exceeds the kernel’s 128 KiB limit for one argument (E2BIG); ' +
            'passing the script on stdin would lift it';
        bench.note(`${n} nodes: the run failed: ${first}`);
        console.error(err);
        runs.push({ nodes: n, error: first } as InstallFigures);
      }
    }
    if (QEMU && !QUICK) {
      if (await haveQemu()) {
        try {
          qemu = await runQemu(dir);
          console.log(JSON.stringify(qemu));
        } catch (err) {
          bench.note(`qemu VM: ${(err as Error).message}`);
        }
      } else bench.note('qemu-system-x86_64 is not installed: the VM figure is skipped');
    }
    if (MERGE) {
      // keep the other sizes (and the qemu figure) from the last result: e.g. a long 2,000-node run on its own
      const previous = JSON.parse(
        await readFile(join(OUT_DIR, 'install.json'), 'utf8').catch(() => '{}'),
      ) as {
        raw?: { runs?: InstallFigures[]; qemu?: typeof qemu };
      };
      for (const old of previous.raw?.runs ?? [])
        if (!old.error && !runs.some((x) => x.nodes === old.nodes)) runs.push(old);
      runs.sort((a, b) => a.nodes - b.nodes);
      qemu ??= previous.raw?.qemu;
      bench.note('--merge: sizes not measured by this command keep the figures (and date) of an earlier run');
    }
    report(bench, runs, qemu);
  } finally {
    await rm(dir, { recursive: true, force: true });
    await bench.finish({ runs, qemu });
  }
}

function report(
  bench: Awaited<ReturnType<typeof startBench>>,
  runs: InstallFigures[],
  qemu: Awaited<ReturnType<typeof runQemu>> | undefined,
) {
  const ok = runs.filter((x) => !x.error);
  const t = bench.table(
    `Simulated nodes, install time ${INSTALL_SECONDS} s, power interval 0 s, maxBooting min(N, ${MAX_BOOTING}); controller as a child process`,
    [
      'nodes',
      'measured (UTC)',
      'outcomes',
      'wall s',
      'bound s',
      '(wall − bound) ÷ N, ms',
      'power-on spacing ms (median)',
      'CPU ms per node: controller / Temporal',
      'node power-on→outcome p50 / p99 s',
      'lab set-up s',
    ],
  );
  for (const x of ok)
    t.rows.push([
      x.nodes,
      x.measuredAt,
      Object.entries(x.outcomes)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
      r(x.wallS, 1),
      x.boundS,
      r(((x.wallS - x.boundS) * 1000) / x.nodes, 0),
      r(x.powerOnSpacingMs, 0),
      x.controllerCpuS === undefined
        ? '—'
        : `${r((x.controllerCpuS * 1000) / x.nodes, 0)} / ${r(((x.temporalCpuS ?? Number.NaN) * 1000) / x.nodes, 0)}`,
      `${r(x.nodeP50S, 1)} / ${r(x.nodeP99S, 1)}`,
      r(x.setupS, 0),
    ]);
  const h = bench.table('Temporal histories and peak memory', [
    'nodes',
    'ClusterInstall runs',
    'largest parent history: events / KiB',
    'largest run input KiB (spec + carried state; limit 2,048)',
    'one NodeInstall: events / KiB',
    'controller RSS MiB, peak / at the end (goal < 300 at 2,000)',
    'dnsmasq peak RSS MiB',
    'Temporal dev server peak RSS MiB',
  ]);
  for (const x of ok)
    h.rows.push([
      x.nodes,
      x.parentRuns,
      `${x.parentEvents} / ${r(x.parentBytes / 1024, 0)}`,
      x.parentInputBytes === undefined ? '—' : r(x.parentInputBytes / 1024, 0),
      `${x.childEvents} / ${r(x.childBytes / 1024, 1)}`,
      `${r(x.controllerRssMiB, 0)} / ${r(x.controllerRssEndMiB, 0)}`,
      r(x.dnsmasqRssMiB, 1),
      r(x.temporalRssMiB, 0),
    ]);
  const p = bench.table('Median time between boot phases per node, ms', [
    'nodes',
    ...Object.keys(ok[0]?.phaseMedians ?? {}),
  ]);
  for (const x of ok) p.rows.push([x.nodes, ...Object.values(x.phaseMedians).map((v) => r(v, 0))]);
  if (qemu) {
    const q = bench.table('One qemu VM (SeaBIOS + iPXE ROM, TCG, no KVM), the real installer', [
      'outcome',
      'IPMI power-on command → status, s',
      'qemu start → status, s',
      'bare dnsmasq + static HTTP (NOTES.md), s',
      'ratio',
    ]);
    q.rows.push([
      qemu.outcome,
      r(qemu.powerOnToStatusS, 2),
      r(qemu.qemuStartToStatusS, 2),
      NOTES_QEMU_SECONDS,
      qemu.qemuStartToStatusS ? `${(qemu.qemuStartToStatusS / NOTES_QEMU_SECONDS).toFixed(2)}×` : null,
    ]);
    bench.note(
      'The 7.3 s peer figure was measured earlier on this machine type (NOTES.md), not in this run: the same VM with bare ' +
        'dnsmasq and a static HTTP server, from qemu start to the status POST.',
    );
  }
  for (const x of ok)
    for (const f of x.notInstalled ?? [])
      bench.note(
        `${x.nodes} nodes: ${f.node} ${f.outcome} after ${f.attempts} attempt(s)${f.detail ? `: ${f.detail}` : ''}`,
      );
  const largest = ok.at(-1);
  if (largest) {
    bench.goal(
      'whole install: orchestration overhead < 50 ms per node',
      `power-on spacing ${r(largest.powerOnSpacingMs, 0)} ms, (wall − bound) ÷ N ${r(((largest.wallS - largest.boundS) * 1000) / largest.nodes, 0)} ms at ${largest.nodes} nodes`,
      largest.powerOnSpacingMs < 50,
    );
    bench.goal(
      'controller RSS < 300 MB at 2,000 nodes',
      `${r(largest.controllerRssMiB, 0)} MiB peak at ${largest.nodes} nodes`,
      largest.nodes >= 2000 ? largest.controllerRssMiB < 300 : null,
    );
  }
  bench.reading(
    'The bound is what the pacing policy allows: with a 0 s interval and maxBooting slots, ceil(N ÷ maxBooting) waves ' +
      `of the ${INSTALL_SECONDS} s simulated install. Everything above it is the boot chain itself (each simulated node runs ` +
      'udhcpc twice, a TFTP fetch, and fetches the 8 MB kernel, the initrd, the kickstart and the packages over HTTP) plus ' +
      'orchestration: one NodeInstall child start, one IPMI power-on (two ipmitool calls) and ~8 phase signals per node, all ' +
      'through one dev server (SQLite) and one controller on the same 2 cores as the nodes themselves.',
  );
  bench.reading(
    'Power-on spacing is the orchestration throughput while slots are free. With a 0 s interval the ClusterInstall ' +
      'parent starts every free slot’s NodeInstall child in one workflow task (up to 100 at a time), so the spacing is the ' +
      'server’s child-start rate plus the children’s first activities (registerNodeBoot, then the IPMI power-on through ' +
      'the power limiter), not one task round trip per node as when starts were serial (~300 ms per node before). ' +
      'CPU ms per node is what orchestration costs whatever the pace: the controller process (worker, event bridge, and ' +
      'also the TFTP and HTTP serving of each node’s boot files) and the Temporal server, divided by N.',
  );
  bench.reading(
    'Controller RSS: an idle controller is ~250 MiB (Node + the Temporal SDK’s native runtime + the workflow bundle in its ' +
      'own worker thread + tsx + the netboot services). On top of it come the workflow cache (bounded: 250 executions by ' +
      'default, `pxeflow worker --workflow-cache`) and the HTTP server’s buffers for the files in flight, which grow with ' +
      'the number of nodes downloading at once (maxBooting), not with N. dnsmasq stays at a few MiB.',
  );
  bench.reading(
    'History size: the parent’s history grows with every child start, child result and node report signal; it continues as ' +
      'new before Temporal’s limits (51,200 events / 50 MB), so the largest single run is reported with the number of runs.',
  );
}

await main();
// results are written: nothing left running may keep the process (e.g. a native Temporal runtime) alive
process.exit(process.exitCode ?? 0);
