// The controller killed with SIGKILL in the middle of an install, several times, and started again: the install
// completes, every node succeeds, no node is powered on more often than its attempts, no lease changes IP.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { startLab } from '../../lab/lab.ts';
import type { ClusterReport } from '../../workflows/messages.ts';
import { startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';

let t: TestTemporal;
let dir: string;
before(async () => {
  t = await startTestTemporal();
  dir = await mkdtemp(join(tmpdir(), 'pxeflow-crash-'));
  await chmod(dir, 0o711);
});
after(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

/** mulberry32: the kill moments are random but reproducible from the seed */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

test('SIGKILL of the controller mid-install, three times: the install completes and powers nothing twice', async () => {
  const seed = Number(process.env.PXEFLOW_CRASH_SEED ?? 20261125);
  const random = rng(seed);
  const nodes = 8;
  const lab = await startLab({
    nodes,
    stateDir: join(dir, 'lab'),
    temporal: { address: t.endpoint.address, namespace: t.endpoint.namespace, client: t.client },
    taskQueue: 'crash',
    logger: pino({ level: 'warn' }),
    clusterName: 'crash',
    controllerProcess: true,
    installSeconds: 4,
    power: { interval: '1s' },
    timeouts: { install: '3m', dhcpSeen: '2m' },
    attempts: 2,
  });
  try {
    const handle = await t.client.workflow.start('ClusterInstall', {
      taskQueue: 'crash',
      workflowId: 'pxeflow/crash',
      args: [lab.spec],
    });
    let finished = false;
    const result = handle.result().finally(() => {
      finished = true;
    }) as Promise<ClusterReport>;
    const kills: number[] = [];
    for (let k = 0; k < 3 && !finished; k++) {
      const wait = 1500 + Math.floor(random() * 4000);
      await new Promise((r) => setTimeout(r, wait));
      if (finished) break;
      await lab.controller.kill();
      kills.push(wait);
      await new Promise((r) => setTimeout(r, 500 + Math.floor(random() * 1500)));
      await lab.controller.start();
    }
    const report = await result;
    assert.ok(kills.length >= 2, `the install outran the kills (seed ${seed})`);
    assert.equal(report.counts.success, nodes, `seed ${seed}: ${JSON.stringify(report.nodes)}`);
    for (let i = 0; i < nodes; i++) {
      const n = report.nodes[i];
      const ons = (await lab.bmcs.bmcs[i].powerLog()).filter((e) => e.op === 'power' && e.value === '1');
      assert.ok(ons.length <= n.attempts, `seed ${seed}: ${n.node} powered on ${ons.length}× in ${n.attempts} attempt(s)`);
      // the reservation's fixed IP is the one the node kept
      assert.equal(n.dhcpIp, (lab.spec.nodes as Array<{ ip?: string }>)[i].ip, `${n.node} changed IP`);
    }
  } finally {
    await lab.stop();
  }
});
