// Supervisor behaviour that needs its own network: a crash loop ends in a clear 'failed' state.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { RemoteDhcp } from '../../lab/net/dhcp-remote.ts';
import { createTestNetwork, type TestNetwork } from '../../lab/netns.ts';

describe('DHCP supervisor crash loop', () => {
  let net: TestNetwork;
  let stateDir: string;
  let dhcp: RemoteDhcp | undefined;
  before(async () => {
    net = await createTestNetwork({ subnet: '10.96.0.0/24' });
    stateDir = await mkdtemp(`${tmpdir()}/pxf-dhcp-loop-`);
  });
  after(async () => {
    await dhcp?.kill();
    await net?.destroy();
    await rm(stateDir, { recursive: true, force: true });
  });

  test('dnsmasq dying again and again → restarted with backoff, then reported failed, not spun forever', async () => {
    dhcp = await RemoteDhcp.start(net.controllerNs, {
      stateDir,
      interface: net.bridge.name,
      controllerAddress: net.controllerAddress,
      subnet: '10.96.0.0/24',
      maxRestarts: 2,
      restartWindowMs: 120_000,
    });
    for (let i = 1; i <= 3; i++) {
      const pid = await dhcp.dnsmasqPid();
      assert.ok(pid, `no dnsmasq before kill ${i}`);
      process.kill(pid, 'SIGKILL');
      if (i < 3) {
        await dhcp.waitFor(
          () => dhcp?.states.find((s) => s.state === 'running' && s.restarts === i),
          10_000,
          `restart ${i}`,
        );
      }
    }
    const failed = await dhcp.waitFor(
      () => dhcp?.states.find((s) => s.state === 'failed'),
      10_000,
      'failed state',
    );
    assert.match(failed.error ?? '', /crash loop, not restarting/);
    assert.match(failed.error ?? '', /signal SIGKILL/);
    const status = await dhcp.status();
    assert.equal(status.state, 'failed');
    assert.equal(status.pid, undefined);
    assert.equal(status.restarts, 2);
  });
});
