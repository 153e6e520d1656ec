// The soak: the reliability scenarios, bigger and for longer, with fresh seeds, until the time is up.
// Alternates a crash-anywhere round (≥ 50 nodes, ≥ 10 SIGKILLs at seeded random moments) and a boot-storm
// round (200 nodes, dnsmasq killed mid-storm, then the controller). Prints one line of figures per round and
// a summary; exits 1 on the first round that breaks an invariant (its seed reproduces it).
//   npm run soak                         30 minutes
//   PXEFLOW_SOAK_MINUTES=90 PXEFLOW_SOAK_NODES=60 PXEFLOW_SOAK_KILLS=15 PXEFLOW_STORM_NODES=200 npm run soak
//   PXEFLOW_SOAK_SEED=123 npm run soak   start from a given seed (round n uses seed + n)
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestTemporal } from '../helpers/temporal.ts';
import { bootStorm } from './boot-storm.ts';
import { crashAnywhere } from './crash-anywhere.ts';
import { envInt } from './fixture.ts';

const minutes = envInt('PXEFLOW_SOAK_MINUTES', 30);
const crashNodes = envInt('PXEFLOW_SOAK_NODES', 50);
const kills = envInt('PXEFLOW_SOAK_KILLS', 12);
const stormNodes = envInt('PXEFLOW_STORM_NODES', 200);
const seed0 = envInt('PXEFLOW_SOAK_SEED', Date.now() % 1_000_000);
const deadline = Date.now() + minutes * 60_000;

const t = await startTestTemporal();
const dir = await mkdtemp(join(tmpdir(), 'pxeflow-soak-'));
await chmod(dir, 0o711);
const totals = { rounds: 0, nodes: 0, kills: 0, dnsmasqKills: 0, extraAttempts: 0, failed: 0 };
const restarts: number[] = [];
console.log(
  `soak: ${minutes} min, crash rounds ${crashNodes} nodes × ${kills} kills, storm ${stormNodes} nodes, seed ${seed0}`,
);
let exitCode = 0;
try {
  for (let round = 0; Date.now() < deadline; round++) {
    const seed = seed0 + round;
    const t0 = Date.now();
    const storm = round % 2 === 1;
    const r = storm
      ? await bootStorm(t, {
          nodes: stormNodes,
          powerIntervalMs: 50,
          installSeconds: 5,
          silenceSeconds: 90,
          stateDir: dir,
          name: `storm${round}`,
        })
      : await crashAnywhere(t, {
          seed,
          nodes: crashNodes,
          kills,
          installSeconds: 5,
          silenceSeconds: 60,
          upMs: [1000, 8000],
          downMs: [100, 3000],
          attempts: 3,
          powerIntervalMs: Math.round((kills * 9000) / crashNodes),
          failOnceEvery: 7,
          failEvery: 11,
          stateDir: dir,
          name: `crash${round}`,
        });
    totals.rounds++;
    totals.nodes += r.report.nodes.length;
    totals.extraAttempts += r.figures.extraAttempts;
    if ('kills' in r) {
      totals.kills += r.kills;
      restarts.push(...r.restartMs);
    } else {
      totals.kills += 1;
      totals.dnsmasqKills += 1;
      restarts.push(r.controllerRestartMs);
    }
    const { report: _r, violations, ...shown } = r;
    console.log(
      `round ${round} ${storm ? 'storm' : 'crash'} ${Math.round((Date.now() - t0) / 1000)} s: ${JSON.stringify(shown)}`,
    );
    if (violations.length) {
      totals.failed++;
      console.log(`round ${round} BROKE (seed ${seed}):\n  ${violations.join('\n  ')}`);
      exitCode = 1;
      break;
    }
    await rm(join(dir, storm ? `storm${round}` : `crash${round}`), { recursive: true, force: true });
  }
} finally {
  await t.close();
  await rm(dir, { recursive: true, force: true });
}
restarts.sort((a, b) => a - b);
const pct = (p: number) => restarts[Math.min(restarts.length - 1, Math.floor(p * restarts.length))] ?? 0;
console.log(
  `soak summary: ${JSON.stringify(totals)}; controller restart ms p50 ${pct(0.5)} p95 ${pct(0.95)} max ${restarts.at(-1) ?? 0}`,
);
process.exit(exitCode);
