// An install interrupted by a restart of the Temporal dev server (same SQLite file, same port) resumes by itself:
// the controller's worker and the netboot bridge reconnect, every node ends installed, none is powered on twice.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { pino } from 'pino';
import { startLab } from '../../lab/lab.ts';
import { freePort, startDevServer, type TemporalEndpoint } from '../../temporal/devserver.ts';
import type { ClusterReport } from '../../workflows/messages.ts';
import { powerOns, progressOf, sleep, until } from './fixture.ts';

test('the dev server stopped and started again mid-install: the install completes, nothing powered on twice', {
  skip: process.env.TEMPORAL_ADDRESS ? 'an external Temporal server cannot be restarted by the test' : false,
}, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pxeflow-restart-'));
  await chmod(dir, 0o711);
  const server = {
    dbFile: join(dir, 'temporal.db'),
    logFile: join(dir, 'temporal.log'),
    port: await freePort('127.0.0.1'),
    headless: true,
  };
  let endpoint: TemporalEndpoint | undefined = await startDevServer(server);
  const connection = await Connection.connect({ address: endpoint.address });
  const client = new Client({ connection, namespace: endpoint.namespace });
  const nodes = 4;
  const lab = await startLab({
    nodes,
    stateDir: join(dir, 'lab'),
    temporal: { address: endpoint.address, namespace: endpoint.namespace, client },
    taskQueue: 'restart',
    logger: pino({ level: process.env.PXEFLOW_TEST_LOG ?? 'silent' }),
    clusterName: 'restart',
    installSeconds: 4,
    power: { interval: '1s' },
    timeouts: { install: '3m', dhcpSeen: '2m' },
    attempts: 2,
  });
  try {
    const h = await client.workflow.start('ClusterInstall', {
      taskQueue: 'restart',
      workflowId: 'pxeflow/restart',
      args: [lab.spec],
    });
    // stop the server while nodes are installing and others still wait for their power-on
    const before = await until(
      'a node installing',
      async () => {
        const p = await progressOf(h);
        return p.running > 0 && p;
      },
      90_000,
    );
    assert.ok(before.started < nodes, 'every node was already powered on before the restart');
    await endpoint.stop();
    endpoint = undefined;
    await sleep(2000);
    endpoint = await startDevServer(server);

    const report = (await h.result()) as ClusterReport;
    assert.equal(report.counts.success, nodes, JSON.stringify(report.nodes));
    for (let i = 1; i <= nodes; i++) {
      const ons = (await powerOns(lab, i)).length;
      assert.equal(ons, report.nodes[i - 1].attempts, `restart-00${i} powered on ${ons}× in its attempts`);
    }
  } finally {
    await lab.stop();
    await connection.close();
    await endpoint?.stop();
    await rm(dir, { recursive: true, force: true });
  }
});
