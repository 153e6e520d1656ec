// The Temporal server itself goes down mid-install — killed with SIGKILL, then stopped cleanly — and comes back
// on the same SQLite file and port: the controller's worker and the netboot bridge reconnect by themselves, the
// install resumes where it was and completes with the right outcome for every node.
// (Skipped with TEMPORAL_ADDRESS: an external server is not ours to restart.)
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { startLab } from '../../lab/lab.ts';
import type { ClusterReport } from '../../workflows/messages.ts';
import { type RestartableTemporal, startRestartableTemporal } from '../helpers/restartable-temporal.ts';
import { checkInstall, envInt, figures, rng, sleep, startInstall } from './fixture.ts';

const external = Boolean(process.env.TEMPORAL_ADDRESS);
let t: RestartableTemporal;
let dir: string;
before(async () => {
  if (external) return;
  t = await startRestartableTemporal();
  dir = await mkdtemp(join(tmpdir(), 'pxeflow-trestart-'));
  await chmod(dir, 0o711);
});
after(async () => {
  await t?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('Temporal server SIGKILLed and restarted on the same SQLite file mid-install: the install completes', {
  skip: external,
}, async () => {
  const seed = envInt('PXEFLOW_TRESTART_SEED', 4242);
  const random = rng(seed);
  const nodes = 8;
  const lab = await startLab({
    nodes,
    behaviours: { '3': 'fail-once:mirror hiccup' },
    stateDir: join(dir, 'lab'),
    temporal: { address: t.endpoint.address, namespace: t.endpoint.namespace, client: t.client },
    taskQueue: 'trestart',
    logger: pino({ level: 'warn' }),
    clusterName: 'trestart',
    controllerProcess: true,
    installSeconds: 3,
    power: { interval: '2s' },
    timeouts: { install: '30s', dhcpSeen: '30s' },
    attempts: 3,
  });
  try {
    const handle = await startInstall(t.client, lab, 'trestart');
    const outages: Array<{ afterMs: number; downMs: number; restartMs: number }> = [];
    for (const crash of [true, false]) {
      const afterMs = 2000 + Math.floor(random() * 2000);
      await sleep(afterMs);
      const { status } = await handle.describe();
      assert.equal(status.name, 'RUNNING', 'the install ended before the outage: nothing was proved');
      await t.stop({ crash });
      const downMs = 1000 + Math.floor(random() * 3000);
      await sleep(downMs);
      const t0 = Date.now();
      await t.start();
      outages.push({ afterMs, downMs, restartMs: Date.now() - t0 });
    }
    const report = (await handle.result()) as ClusterReport;
    console.log(`# seed ${seed}: outages ${JSON.stringify(outages)}, ${JSON.stringify(figures(report))}`);
    const violations = await checkInstall(lab, report, (i) =>
      i === 3 ? 'fail-once:mirror hiccup' : 'success',
    );
    assert.deepEqual(violations, [], `seed ${seed}`);
    // the phases the nodes walked while the server was down reached the workflows once it was back
    for (const n of report.nodes) assert.ok(n.phases.kickstart, `${n.node}: no kickstart phase recorded`);
  } finally {
    await lab.stop();
  }
});
