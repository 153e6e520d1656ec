// Netboot restart during a boot storm: many simulated nodes powered on in a burst; while they ask for leases
// dnsmasq is killed by PID (the supervisor must bring it back), and a little later the whole controller is
// killed with SIGKILL and started again. No IP may be handed to two nodes, no node may change IP, every node
// must install. The test runs a storm that fits its budget; the soak runs 200 nodes.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { type Lab, startLab } from '../../lab/lab.ts';
import { processTree } from '../../lab/net/process-tree.ts';
import type { ClusterReport } from '../../workflows/messages.ts';
import type { TestTemporal } from '../helpers/temporal.ts';
import { checkInstall, figures, sleep, startInstall } from './fixture.ts';

export interface StormOptions {
  nodes: number;
  /** pace of the burst */
  powerIntervalMs: number;
  installSeconds: number;
  /** how long a node may stay silent before its attempt is written off */
  silenceSeconds: number;
  stateDir: string;
  name: string;
}

export interface StormFigures {
  nodes: number;
  /** nodes with a lease when dnsmasq was killed / when the controller was killed */
  leasedAtDnsmasqKill: number;
  leasedAtControllerKill: number;
  dnsmasqRestartedMs: number;
  controllerRestartMs: number;
  violations: string[];
  report: ClusterReport;
  figures: ReturnType<typeof figures>;
}

async function leased(lab: Lab): Promise<number> {
  const logs = await Promise.all(lab.bmcs.bmcs.map((b) => readFile(b.nodeLogPath, 'utf8').catch(() => '')));
  return logs.filter((l) => /DHCP: \d/.test(l)).length;
}

export async function dnsmasqOf(controllerPid: number): Promise<number | undefined> {
  for (const pid of await processTree(controllerPid)) {
    const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === 'dnsmasq') return pid;
  }
  return undefined;
}

async function until(what: string, fn: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`boot storm: timed out waiting for ${what}`);
    await sleep(100);
  }
}

export async function bootStorm(t: TestTemporal, o: StormOptions): Promise<StormFigures> {
  const taskQueue = `storm-${o.name}`;
  const lab = await startLab({
    nodes: o.nodes,
    stateDir: join(o.stateDir, o.name),
    temporal: { address: t.endpoint.address, namespace: t.endpoint.namespace, client: t.client },
    taskQueue,
    logger: pino({ level: 'warn' }),
    clusterName: o.name,
    controllerProcess: true,
    installSeconds: o.installSeconds,
    power: { interval: `${o.powerIntervalMs}ms`, maxBooting: o.nodes },
    timeouts: { install: `${o.installSeconds + o.silenceSeconds}s`, dhcpSeen: `${o.silenceSeconds}s` },
    attempts: 3,
  });
  try {
    const handle = await startInstall(t.client, lab, taskQueue);
    const result = handle.result() as Promise<ClusterReport>;
    result.catch(() => {});

    // 1. a quarter of the storm has leases: dnsmasq dies, by PID
    await until(
      'a quarter of the nodes to get a lease',
      async () => (await leased(lab)) >= o.nodes / 4,
      180_000,
    );
    const leasedAtDnsmasqKill = await leased(lab);
    const dnsmasq = await dnsmasqOf(lab.controller.pid!);
    if (!dnsmasq) throw new Error('no dnsmasq under the controller');
    process.kill(dnsmasq, 'SIGKILL');
    const k0 = Date.now();
    await until(
      'the supervisor to restart dnsmasq',
      async () => {
        const now = await dnsmasqOf(lab.controller.pid!);
        return now !== undefined && now !== dnsmasq;
      },
      30_000,
    );
    const dnsmasqRestartedMs = Date.now() - k0;

    // 2. most of the storm has leases: the whole controller dies and comes back
    await until(
      'two thirds of the nodes to get a lease',
      async () => (await leased(lab)) >= (2 * o.nodes) / 3,
      300_000,
    );
    const leasedAtControllerKill = await leased(lab);
    await lab.controller.kill();
    await sleep(500);
    const c0 = Date.now();
    await lab.controller.start();
    const controllerRestartMs = Date.now() - c0;

    const report = await result;
    const violations = await checkInstall(lab, report, () => 'success');
    return {
      nodes: o.nodes,
      leasedAtDnsmasqKill,
      leasedAtControllerKill,
      dnsmasqRestartedMs,
      controllerRestartMs,
      violations,
      report,
      figures: figures(report),
    };
  } finally {
    await lab.stop();
  }
}
