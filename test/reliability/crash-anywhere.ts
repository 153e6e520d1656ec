// Crash anywhere: a lab install during which the controller process (Temporal worker + dnsmasq + TFTP + HTTP)
// is killed with SIGKILL at seeded random moments and started again. The test runs a size that fits the test
// budget; the soak (scripts/soak.sh) runs it bigger and longer with fresh seeds.
import { join } from 'node:path';
import { pino } from 'pino';
import { type Behaviour, startLab } from '../../lab/lab.ts';
import type { ClusterReport } from '../../workflows/messages.ts';
import type { TestTemporal } from '../helpers/temporal.ts';
import { checkInstall, figures, rng, sleep, startInstall } from './fixture.ts';

export interface CrashOptions {
  seed: number;
  nodes: number;
  /** SIGKILLs to deliver; the run fails when the install ends before all of them landed */
  kills: number;
  installSeconds: number;
  /** up-time before each kill is drawn from [min, max] ms; down-time likewise */
  upMs: [number, number];
  downMs: [number, number];
  attempts: number;
  /** how long a node may stay silent (after DHCP: for its status) before its attempt is written off */
  silenceSeconds: number;
  /** pace of the power-ons; spreading them over the kill window lands kills in every phase of the chain */
  powerIntervalMs: number;
  /** every n-th node fails its first install (fail-once), every m-th always fails: outcomes stay checkable */
  failOnceEvery?: number;
  failEvery?: number;
  stateDir: string;
  name: string;
}

export interface CrashFigures {
  seed: number;
  nodes: number;
  kills: number;
  /** ms the controller was up before each kill */
  killAfterMs: number[];
  restartMs: number[];
  violations: string[];
  report: ClusterReport;
  figures: ReturnType<typeof figures>;
}

export function crashBehaviour(o: Pick<CrashOptions, 'failOnceEvery' | 'failEvery'>) {
  return (i: number): Behaviour => {
    if (o.failEvery && i % o.failEvery === 0) return 'fail:disk sda not found';
    if (o.failOnceEvery && i % o.failOnceEvery === 0) return 'fail-once:transient mirror error';
    return 'success';
  };
}

export async function crashAnywhere(t: TestTemporal, o: CrashOptions): Promise<CrashFigures> {
  const random = rng(o.seed);
  const between = ([lo, hi]: [number, number]) => lo + Math.floor(random() * (hi - lo));
  const behaviour = crashBehaviour(o);
  const behaviours: Record<string, Behaviour> = {};
  for (let i = 1; i <= o.nodes; i++) if (behaviour(i) !== 'success') behaviours[String(i)] = behaviour(i);
  const taskQueue = `crash-${o.name}`;
  const lab = await startLab({
    nodes: o.nodes,
    behaviours,
    stateDir: join(o.stateDir, o.name),
    temporal: { address: t.endpoint.address, namespace: t.endpoint.namespace, client: t.client },
    taskQueue,
    logger: pino({ level: 'warn' }),
    clusterName: o.name,
    controllerProcess: true,
    installSeconds: o.installSeconds,
    power: { interval: `${o.powerIntervalMs}ms`, maxBooting: o.nodes },
    // long enough for a node to ride out a controller restart before its attempt is written off
    timeouts: { install: `${o.installSeconds + o.silenceSeconds}s`, dhcpSeen: `${o.silenceSeconds}s` },
    attempts: o.attempts,
  });
  try {
    const handle = await startInstall(t.client, lab, taskQueue);
    let finished = false;
    const result = handle.result().finally(() => {
      finished = true;
    }) as Promise<ClusterReport>;
    result.catch(() => {});
    const killAfterMs: number[] = [];
    const restartMs: number[] = [];
    for (let k = 0; k < o.kills && !finished; k++) {
      const up = between(o.upMs);
      await sleep(up);
      if (finished) break;
      await lab.controller.kill();
      killAfterMs.push(up);
      await sleep(between(o.downMs));
      const t0 = Date.now();
      await lab.controller.start();
      restartMs.push(Date.now() - t0);
    }
    const report = await result;
    const violations = await checkInstall(lab, report, behaviour);
    if (killAfterMs.length < o.kills)
      violations.push(`the install ended after ${killAfterMs.length} of ${o.kills} kills (seed ${o.seed})`);
    return {
      seed: o.seed,
      nodes: o.nodes,
      kills: killAfterMs.length,
      killAfterMs,
      restartMs,
      violations,
      report,
      figures: figures(report),
    };
  } finally {
    await lab.stop();
  }
}
