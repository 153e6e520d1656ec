// A node installs, then its BMC stops answering before the boot device is set to disk (a BMC rebooting, a
// flapping management link): the node is installed, so it is reported installed, with the reason in its detail
// — not as a failure. Real ipmitool against a real ipmi_sim behind a UDP relay the test cuts at the moment.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import { startLab } from '../../lab/lab.ts';
import { type ClusterReport, timelineQuery } from '../../workflows/messages.ts';
import { startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';
import { startUdpFlapProxy } from '../helpers/udp-flap-proxy.ts';
import { nodeEvidence, sleep } from './fixture.ts';

let t: TestTemporal;
let dir: string;
before(async () => {
  t = await startTestTemporal();
  dir = await mkdtemp(join(tmpdir(), 'pxeflow-finish-bmc-'));
  await chmod(dir, 0o711); // dnsmasq (unprivileged) must reach its files below
});
after(async () => {
  await t?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('a BMC lost after the install: the node is reported installed, with why its boot device was not set', async () => {
  const name = 'finishbmc';
  const lab = await startLab({
    nodes: 1,
    stateDir: join(dir, name),
    temporal: { address: t.endpoint.address, namespace: t.endpoint.namespace, client: t.client },
    taskQueue: name,
    logger: pino({ level: 'silent' }),
    clusterName: name,
    installSeconds: 2,
    timeouts: { install: '60s', dhcpSeen: '60s' },
    attempts: 1,
  });
  const bmc = lab.bmcs.bmcs[0];
  const relay = await startUdpFlapProxy({ address: bmc.address, targetPort: bmc.port, manual: true });
  try {
    const spec = lab.specFor(name, [1]);
    spec.nodes![0]!.bmcPort = relay.port; // the controller reaches the BMC through the relay only
    const handle = await t.client.workflow.start('ClusterInstall', {
      taskQueue: name,
      workflowId: `pxeflow/${name}`,
      args: [spec],
    });
    // powered on (through the relay) and on its way: the BMC goes away before the install ends
    const node = t.client.workflow.getHandle(`pxeflow/${name}/${name}-001`);
    for (let i = 0; ; i++) {
      const phase = await node.query(timelineQuery).then(
        (tl) => tl.phase,
        () => 'pending',
      );
      if (['kickstart', 'packages', 'packages-done'].includes(phase)) break;
      assert.ok(i < 600, `the node never reached its kickstart (phase ${phase})`);
      await sleep(50);
    }
    relay.setUp(false);
    const report = (await handle.result()) as ClusterReport;
    const n = report.nodes[0]!;
    assert.equal(n.outcome, 'success', JSON.stringify(n));
    assert.match(n.detail ?? '', /^installed; the boot device was not set to disk: finishNode: Bmc\w+: /);
    assert.equal(report.counts.success, 1);
    assert.ok(relay.dropped > 0, 'ipmitool did try to reach the BMC after the cut');
    // the node's own word: it finished its install once
    assert.equal((await nodeEvidence(lab, 0)).finished, 1);
  } finally {
    await relay.close();
    await lab.stop();
  }
});
