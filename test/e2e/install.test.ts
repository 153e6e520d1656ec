// The install pipeline end to end: real Temporal dev server, real controller (dnsmasq DHCP, TFTP, HTTP), real
// ipmi_sim BMCs driven by ipmitool, simulated nodes speaking DHCP/TFTP/HTTP from their own namespaces.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { pino } from 'pino';
import { type Lab, type LabOptions, startLab } from '../../lab/lab.ts';
import { leftoverLabObjects } from '../../lab/network.ts';
import { workflowBundle } from '../../workers/bundle.ts';
import type { ClusterReport, NodeResult } from '../../workflows/messages.ts';
import { startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';

let t: TestTemporal;
let dir: string;
const logger = pino({ level: process.env.PXEFLOW_TEST_LOG ?? 'silent' });

before(async () => {
  t = await startTestTemporal();
  dir = await mkdtemp(join(tmpdir(), 'pxeflow-e2e-'));
  await chmod(dir, 0o711); // dnsmasq (unprivileged) must reach its files below
});
after(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

async function withLab(name: string, opts: Partial<LabOptions>, fn: (lab: Lab) => Promise<void>): Promise<void> {
  const taskQueue = `e2e-${name}`;
  const lab = await startLab({
    nodes: 3,
    stateDir: join(dir, name),
    temporal: { address: t.endpoint.address, namespace: t.endpoint.namespace, client: t.client },
    taskQueue,
    logger,
    clusterName: name,
    ...opts,
  });
  try {
    await fn(lab);
  } finally {
    await lab.stop();
  }
  assert.deepEqual(await leftoverLabObjects(lab.id), [], 'the lab left namespaces or links behind');
}

async function install(lab: Lab, spec = lab.spec): Promise<{ report: ClusterReport; workflowId: string }> {
  const workflowId = `pxeflow/${spec.name}`;
  const handle = await t.client.workflow.start('ClusterInstall', {
    taskQueue: `e2e-${lab.spec.name}`,
    workflowId,
    args: [spec],
  });
  return { report: (await handle.result()) as ClusterReport, workflowId };
}

const byName = (r: ClusterReport) => new Map<string, NodeResult>(r.nodes.map((n) => [n.node, n]));
const powerOns = async (lab: Lab, i: number) =>
  (await lab.bmcs.bmcs[i].powerLog()).filter((e) => e.op === 'power' && e.value === '1' && e.result === 'ok');

test('five nodes: success, failure then success on retry, and a node that never reports times out', async () => {
  await withLab(
    'happy',
    {
      nodes: 5,
      behaviours: { '2': 'fail-once:disk sda not found', '4': 'hang' },
      timeouts: { install: '12s', dhcpSeen: '60s' },
      attempts: 2,
    },
    async (lab) => {
      const { report, workflowId } = await install(lab);
      const r = byName(report);
      const name = (i: number) => `happy-00${i}`;
      assert.equal(r.get(name(1))?.outcome, 'success');
      assert.equal(r.get(name(1))?.attempts, 1);
      assert.equal(r.get(name(2))?.outcome, 'success', JSON.stringify(r.get(name(2))));
      assert.equal(r.get(name(2))?.attempts, 2);
      assert.equal(r.get(name(3))?.outcome, 'success');
      assert.equal(r.get(name(4))?.outcome, 'timeout');
      assert.equal(r.get(name(4))?.attempts, 2);
      assert.equal(r.get(name(5))?.outcome, 'success');
      assert.deepEqual(report.counts.success, 4);

      // the correspondence table: each node's BMC IP with the MAC and IP its DHCP request got
      for (let i = 1; i <= 5; i++) {
        const n = r.get(name(i))!;
        assert.equal(n.bmcIp, lab.bmcs.bmcs[i - 1].address);
        assert.equal(n.mac, lab.network.nodes[i - 1].mac);
        assert.match(n.dhcpIp ?? '', /^10\./);
        const phases = Object.keys(n.phases);
        for (const p of ['power-on', 'dhcp', 'bootloader', 'kernel', 'initrd', 'kickstart']) {
          assert.ok(phases.includes(p), `${name(i)} never reached ${p}: ${phases.join(',')}`);
        }
      }
      assert.ok(report.table.length >= 5, 'dropped table entries stay in the report');

      // every power-on the BMCs saw is one attempt: nothing powered on twice
      for (let i = 1; i <= 5; i++) {
        assert.equal((await powerOns(lab, i - 1)).length, r.get(name(i))!.attempts, `power-ons of ${name(i)}`);
      }
      // after success: boot device back to disk, and the node's next PXE boot was answered with local boot
      assert.equal(await lab.bmcs.bmcs[0].bootDevice(), 'default');
      const out = await readFile(lab.bmcs.bmcs[0].nodeLogPath, 'utf8');
      assert.match(out, /installed; rebooting[\s\S]*local boot/);

      // the timeout reached the controller as an explicit message in the parent's history
      const history = await t.client.workflow.getHandle(workflowId).fetchHistory();
      const text = JSON.stringify(history.events);
      assert.ok(text.includes('nodeReport'), 'child → parent reports are signals in history');
      // and every history replays against today's code (determinism)
      const bundle = await workflowBundle();
      await Worker.runReplayHistory({ workflowBundle: bundle }, history, workflowId);
      const child = await t.client.workflow.getHandle(`${workflowId}/${name(2)}`).fetchHistory();
      await Worker.runReplayHistory({ workflowBundle: bundle }, child, `${workflowId}/${name(2)}`);
      const tag = process.env.PXEFLOW_RECORD_HISTORIES;
      if (tag) {
        // add fixtures that test/workflows/replay.test.ts replays against future code; histories of earlier
        // code stay (a running install may have been recorded by any version): PXEFLOW_RECORD_HISTORIES=<tag>
        const dirOut = new URL('../fixtures/histories/', import.meta.url).pathname;
        await mkdir(dirOut, { recursive: true });
        const index = JSON.parse(await readFile(`${dirOut}index.json`, 'utf8').catch(() => '{}'));
        const suffix = tag === '1' ? '' : `-${tag}`;
        await writeFile(`${dirOut}cluster-install${suffix}.json`, historyToJSON(history));
        await writeFile(`${dirOut}node-install-retry${suffix}.json`, historyToJSON(child));
        index[`cluster-install${suffix}.json`] = workflowId;
        index[`node-install-retry${suffix}.json`] = `${workflowId}/${name(2)}`;
        await writeFile(`${dirOut}index.json`, JSON.stringify(index, null, 2));
      }
    },
  );
});

test('a BMC that rejects the password fails that node only, without retrying the password', async () => {
  await withLab('badpw', { nodes: 3, wrongPassword: ['2'], attempts: 2 }, async (lab) => {
    const { report } = await install(lab);
    const r = byName(report);
    assert.equal(r.get('badpw-001')?.outcome, 'success');
    assert.equal(r.get('badpw-002')?.outcome, 'power-error');
    assert.match(r.get('badpw-002')?.detail ?? '', /BmcAuthError/);
    assert.equal(r.get('badpw-003')?.outcome, 'success');
    assert.equal((await lab.bmcs.bmcs[1].powerLog()).length, 0, 'the wrong-password BMC was never commanded');
  });
});

test('unknown MACs: sequential power-on ties each BMC to the MAC that then asks for DHCP', async () => {
  await withLab('nomac', { nodes: 3, knownMacs: false, power: { interval: '0s' } }, async (lab) => {
    const { report } = await install(lab);
    for (let i = 1; i <= 3; i++) {
      const n = byName(report).get(`nomac-00${i}`)!;
      assert.equal(n.outcome, 'success', JSON.stringify(n));
      assert.equal(n.mac, lab.network.nodes[i - 1].mac, `BMC ${n.bmcIp} ↔ MAC`);
    }
  });
});

test('two installs submitted back to back power on in submission order', async () => {
  await withLab('order', { nodes: 6, power: { interval: '1s' } }, async (lab) => {
    const a = lab.specFor('order-a', [1, 2, 3]);
    const b = lab.specFor('order-b', [4, 5, 6]);
    const queue = `e2e-${lab.spec.name}`;
    const ha = await t.client.workflow.start('ClusterInstall', { taskQueue: queue, workflowId: 'pxeflow/order-a', args: [a] });
    await new Promise((r) => setTimeout(r, 1000));
    const hb = await t.client.workflow.start('ClusterInstall', { taskQueue: queue, workflowId: 'pxeflow/order-b', args: [b] });
    const [ra, rb] = (await Promise.all([ha.result(), hb.result()])) as ClusterReport[];
    assert.equal(ra.counts.success, 3);
    assert.equal(rb.counts.success, 3);
    const firstOn = async (i: number) => (await powerOns(lab, i))[0].at;
    const lastOfA = Math.max(await firstOn(0), await firstOn(1), await firstOn(2));
    const firstOfB = Math.min(await firstOn(3), await firstOn(4), await firstOn(5));
    assert.ok(lastOfA <= firstOfB, `install B powered on a node (${firstOfB}) before A finished (${lastOfA})`);
  });
});

test('continue-as-new mid-install carries the cursor, the table and the results (children are abandoned, not killed)', async () => {
  await withLab('can', { nodes: 6, power: { interval: '0s', maxBooting: 2 }, installSeconds: 2 }, async (lab) => {
    const handle = await t.client.workflow.start('ClusterInstall', {
      taskQueue: 'e2e-can',
      workflowId: 'pxeflow/can',
      args: [lab.spec, { historyLimit: 60 }],
    });
    const report = (await handle.result()) as ClusterReport;
    assert.equal(report.counts.success, 6, JSON.stringify(report.nodes));
    assert.equal(report.table.length, 6, 'every table entry made it across the runs');
    // the install really continued as new: the first run ended with ContinueAsNew
    const runs = [];
    for await (const w of t.client.workflow.list({ query: 'WorkflowId="pxeflow/can"' })) runs.push(w.status.name);
    assert.ok(runs.includes('CONTINUED_AS_NEW'), `runs: ${runs.join(',')}`);
    for (let i = 0; i < 6; i++) assert.equal((await powerOns(lab, i)).length, 1, `node ${i + 1} powered on once`);
  });
});
