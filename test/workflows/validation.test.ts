// The first real workflow on the real dev server: ClusterInstall rejects a bad spec before touching anything,
// and its recorded history replays deterministically.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { pino } from 'pino';
import { type RunningController, startController } from '../../workers/controller.ts';
import { workflowBundle } from '../../workers/bundle.ts';
import { bigSpec, validSpec } from '../config/fixtures.ts';
import { startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';

let t: TestTemporal;
let ctl: RunningController;
const taskQueue = `validation-${process.pid}`;

before(async () => {
  t = await startTestTemporal();
  ctl = await startController({
    address: t.endpoint.address,
    namespace: t.endpoint.namespace,
    taskQueue,
    deps: { logger: pino({ level: 'silent' }) },
  });
});
after(async () => {
  await ctl?.shutdown();
  await t?.close();
});

const badSpec = {
  apiVersion: 'pxeflow/v1',
  name: 'Bad_Name',
  iso: { version: 'storageos-7.9' },
  ipmi: { subnet: '10.10.0.0/24', username: 'admin', passwordEnv: 'PXEFLOW_BMC_PASSWORD' },
  network: {
    interface: 'br-prov',
    subnet: '10.20.0.0/24',
    controller: '10.30.0.1',
    range: { start: '10.20.0.100', end: '10.20.0.199' },
  },
};

test('ClusterInstall fails fast on an invalid spec, naming every bad field', async () => {
  const handle = await t.client.workflow.start('ClusterInstall', {
    taskQueue,
    workflowId: 'pxeflow/bad-spec',
    args: [badSpec],
  });
  await assert.rejects(handle.result(), (err: unknown) => {
    assert.ok(err instanceof WorkflowFailedError);
    const cause = err.cause as { type?: string; message: string };
    assert.equal(cause.type, 'InvalidClusterSpec');
    assert.match(cause.message, /name/);
    assert.match(cause.message, /network\.controller/);
    return true;
  });
  // nothing else happened: no activity was scheduled
  const history = await handle.fetchHistory();
  const types = (history.events ?? []).map((e) => e.eventType);
  assert.ok(!types.some((ty) => String(ty).includes('ACTIVITY_TASK_SCHEDULED') || ty === 10));
  // and the history replays against today's workflow code
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, 'pxeflow/bad-spec');
});

test('ClusterInstall refuses more nodes than one install can carry, before anything is powered on', async () => {
  const handle = await t.client.workflow.start('ClusterInstall', {
    taskQueue,
    workflowId: 'pxeflow/too-big',
    args: [bigSpec(4000)],
  });
  await assert.rejects(handle.result(), (err: unknown) => {
    assert.ok(err instanceof WorkflowFailedError);
    const cause = err.cause as { type?: string; message: string };
    assert.equal(cause.type, 'InvalidClusterSpec');
    assert.match(cause.message, /nodes: 4000 nodes are too many for one install.*at most \d+ nodes/s);
    return true;
  });
  const history = await handle.fetchHistory();
  const types = (history.events ?? []).map((e) => String(e.eventType));
  assert.ok(!types.some((ty) => ty.includes('ACTIVITY_TASK_SCHEDULED') || ty === '10'), types.join(' '));
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, 'pxeflow/too-big');
});

test('ClusterInstall refuses proxyDHCP for a node without its MAC, before anything is powered on', async () => {
  const spec = validSpec();
  spec.network.dhcpMode = 'proxy';
  delete spec.network.range;
  for (const node of spec.nodes) delete node.ip;
  delete spec.nodes[0].mac;
  const handle = await t.client.workflow.start('ClusterInstall', {
    taskQueue,
    workflowId: 'pxeflow/proxy',
    args: [spec],
  });
  await assert.rejects(handle.result(), (err: unknown) => {
    assert.ok(err instanceof WorkflowFailedError);
    const cause = err.cause as { type?: string; message: string };
    assert.equal(cause.type, 'InvalidClusterSpec');
    assert.match(cause.message, /nodes\[0\]\.mac: required with dhcpMode proxy/);
    return true;
  });
  const history = await handle.fetchHistory();
  const types = (history.events ?? []).map((e) => String(e.eventType));
  assert.ok(!types.some((ty) => ty.includes('ACTIVITY_TASK_SCHEDULED') || ty === '10'), types.join(' '));
  await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history, 'pxeflow/proxy');
});
