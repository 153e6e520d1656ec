// IPMI benchmark against 100 real ipmi_sim BMCs (run: node --import tsx bench/ipmi.bench.ts).
//  1. power status of 100 BMCs through pxeflow's driver (concurrency limit P) vs `xargs -P P ipmitool` in the
//     same run, median of several rounds, ratio printed;
//  2. power on of 100 BMCs with 20 unreachable ones mixed in: total time, time spent on the dead ones, and
//     the same 100 without the dead ones as the baseline.
// Writes bench/out/ipmi.json (rendered into bench/RESULTS.md by bench/run.ts). All BMCs share one user/password so xargs can take it from the environment.
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { execa } from 'execa';
import { startBmcs, stopAll } from '../lab/bmc/index.ts';
import {
  type BmcTarget,
  createBmcLimiter,
  createPowerDriver,
  type IpmitoolCallEvent,
} from '../power/index.ts';
import { QUICK, ratio, startBench } from './lib/report.ts';

const LIVE = 100;
const DEAD = 20;
const PARALLELISM = Number(process.env.BENCH_IPMI_PARALLELISM ?? 16);
const ROUNDS = Number(process.env.BENCH_IPMI_ROUNDS ?? (QUICK ? 2 : 5));
const N = 1; // ipmitool -N
const R = 1; // ipmitool -R

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x: number) => Math.round(x * 10) / 10;

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const v = await fn();
  return [performance.now() - t, v];
}

async function main(): Promise<void> {
  const bench = await startBench(
    'ipmi',
    `IPMI: ${LIVE} ipmi_sim BMCs, pxeflow's driver vs xargs -P ipmitool`,
  );
  const username = 'bench';
  const password = randomBytes(8).toString('hex');
  const [tStart, lab] = await timed(() =>
    startBmcs(Array.from({ length: LIVE }, () => ({ username, password }))),
  );
  try {
    const live: BmcTarget[] = lab.bmcs.map((b) => ({ address: b.address, port: b.port, username, password }));
    // Dead BMCs: the rest of the same /24, where nothing listens.
    const prefix = lab.subnet.split('.').slice(0, 3).join('.');
    const dead: BmcTarget[] = Array.from({ length: DEAD }, (_, i) => ({
      address: `${prefix}.${201 + i}`,
      port: 623,
      username,
      password,
    }));
    const driverOpts = { timeoutSeconds: N, retries: R };

    // --- 1. power status: driver vs xargs -------------------------------------------------------
    const driverMs: number[] = [];
    const xargsMs: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const limiter = createBmcLimiter(PARALLELISM);
      const [d, states] = await timed(() =>
        Promise.all(live.map((t) => createPowerDriver(t, { ...driverOpts, limiter }).powerState())),
      );
      if (states.some((s) => s !== 'off')) throw new Error('unexpected power state');
      driverMs.push(d);
      const [x, res] = await timed(() =>
        execa(
          'xargs',
          [
            ...['-P', String(PARALLELISM), '-I{}'],
            ...['ipmitool', '-I', 'lanplus', '-C', '3', '-N', String(N), '-R', String(R), '-E'],
            ...['-H', '{}', '-p', '623', '-U', username, 'power', 'status'],
          ],
          {
            input: live.map((t) => t.address).join('\n'),
            env: { IPMITOOL_PASSWORD: password },
            reject: false,
          },
        ),
      );
      const ok = (res.stdout as string).split('\n').filter((l) => l.includes('Chassis Power is off')).length;
      if (ok !== LIVE) throw new Error(`xargs: ${ok}/${LIVE} answers`);
      xargsMs.push(x);
    }

    // --- 2. power on with dead BMCs mixed in ----------------------------------------------------
    const powerOnAll = async (targets: BmcTarget[]) => {
      const events: IpmitoolCallEvent[] = [];
      const limiter = createBmcLimiter(PARALLELISM);
      const outcomes: Array<{ address: string; ok: boolean; doneAt: number }> = [];
      const t0 = performance.now();
      await Promise.all(
        targets.map(async (t) => {
          const d = createPowerDriver(t, { ...driverOpts, limiter, onCall: (e) => events.push(e) });
          const ok = await d.powerOn().then(
            () => true,
            () => false,
          );
          outcomes.push({ address: t.address, ok, doneAt: performance.now() - t0 });
        }),
      );
      const total = performance.now() - t0;
      return { total, events, outcomes };
    };
    const powerOffAll = () =>
      Promise.all(
        live.map((t) =>
          createPowerDriver(t, { ...driverOpts, limiter: createBmcLimiter(PARALLELISM) }).powerOff(),
        ),
      );

    const baseline = await powerOnAll(live);
    await powerOffAll();
    // Interleave: every 5th target is dead.
    const mixed: BmcTarget[] = [];
    for (let i = 0, d = 0; i < LIVE; i++) {
      mixed.push(live[i]);
      if (i % 5 === 4 && d < DEAD) mixed.push(dead[d++]);
    }
    const withDead = await powerOnAll(mixed);
    const deadSet = new Set(dead.map((t) => t.address));
    const deadCallMs = withDead.events
      .filter((e) => deadSet.has(e.bmc.split(':')[0]))
      .map((e) => e.durationMs);
    const liveDone = withDead.outcomes.filter((o) => !deadSet.has(o.address));
    const deadDone = withDead.outcomes.filter((o) => deadSet.has(o.address));
    if (liveDone.some((o) => !o.ok) || deadDone.some((o) => o.ok)) throw new Error('power-on outcomes wrong');
    const poweredOn = (await Promise.all(lab.bmcs.map((b) => b.isOn()))).filter(Boolean).length;
    await powerOffAll();

    const results = {
      at: new Date().toISOString(),
      machine: { cpus: cpus().length, node: process.version },
      config: {
        live: LIVE,
        dead: DEAD,
        parallelism: PARALLELISM,
        rounds: ROUNDS,
        ipmitoolN: N,
        ipmitoolR: R,
      },
      startBmcsMs: round(tStart),
      powerStatus: {
        driverMedianMs: round(median(driverMs)),
        xargsMedianMs: round(median(xargsMs)),
        driverOverXargs: round((median(driverMs) / median(xargsMs)) * 100) / 100,
        driverRoundsMs: driverMs.map(round),
        xargsRoundsMs: xargsMs.map(round),
      },
      powerOn: {
        baselineTotalMs: round(baseline.total),
        withDeadTotalMs: round(withDead.total),
        extraFromDeadMs: round(withDead.total - baseline.total),
        lastLiveDoneMs: round(Math.max(...liveDone.map((o) => o.doneAt))),
        deadCalls: deadCallMs.length,
        deadCallMeanMs: round(deadCallMs.reduce((a, b) => a + b, 0) / Math.max(1, deadCallMs.length)),
        deadCallMaxMs: round(Math.max(...deadCallMs)),
        deadSlotSecondsTotal: round(deadCallMs.reduce((a, b) => a + b, 0) / 1000),
        liveNodesPoweredOn: poweredOn,
      },
    };

    const t = bench.table(
      `${LIVE} ipmi_sim BMCs (+${DEAD} unreachable), parallelism ${PARALLELISM}, ipmitool -N ${N} -R ${R}, median of ${ROUNDS} rounds`,
      ['what', 'pxeflow driver', 'xargs -P ipmitool (peer)', 'time ratio (lower is better)'],
    );
    t.rows.push([
      `power status ×${LIVE}, ms`,
      results.powerStatus.driverMedianMs,
      results.powerStatus.xargsMedianMs,
      ratio(results.powerStatus.driverMedianMs, results.powerStatus.xargsMedianMs),
    ]);
    t.rows.push([`power on ×${LIVE}, no dead BMCs, ms`, results.powerOn.baselineTotalMs, null, null]);
    t.rows.push([`power on ×${LIVE} + ${DEAD} dead, ms`, results.powerOn.withDeadTotalMs, null, null]);
    t.rows.push(['extra wall time from the dead BMCs, ms', results.powerOn.extraFromDeadMs, null, null]);
    t.rows.push(['last live node powered on at, ms', results.powerOn.lastLiveDoneMs, null, null]);
    t.rows.push([
      'per dead BMC, mean / max ms',
      `${results.powerOn.deadCallMeanMs} / ${results.powerOn.deadCallMaxMs}`,
      null,
      null,
    ]);
    bench.reading(
      'Each ipmitool call is a process start (~15 ms of it parsing the enterprise-numbers file) plus an RMCP+ session with ' +
        'the simulator; the driver adds output parsing and typed errors on top of the same calls, so the ratio shows its cost. ' +
        `A dead BMC costs -N ${N} -R ${R} worth of waiting per call and holds one of the ${PARALLELISM} limiter slots meanwhile.`,
    );
    await bench.finish(results);
  } finally {
    await stopAll();
  }
}

await main();
// results are written: nothing left running may keep the process (e.g. a native Temporal runtime) alive
process.exit(process.exitCode ?? 0);
