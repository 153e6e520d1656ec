// A BMC that stops answering after the session is up (a flapping link, a BMC that reboots mid-command): the
// command may or may not have run, and no answer came back. That is "no answer" — retryable, with the
// activity's careful retry path (never a second cycle) — not "the BMC rejected the command", which the node
// workflow never retries (a node lost to one dropped datagram). Real ipmitool against a real ipmi_sim behind a
// relay that drops everything after the session set-up.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type BmcLab, startBmcs } from '../../lab/bmc/index.ts';
import { classifyFailure } from '../../power/ipmitool-output.ts';
import { createPowerDriver, isBmcError } from '../../power/index.ts';
import { startUdpFlapProxy } from '../helpers/udp-flap-proxy.ts';

// recorded from ipmitool 1.8.19 -v with every datagram after the 7th dropped (noise lines removed)
const RECORDED = {
  'power on':
    'No valid response received\nUnable to set Chassis Power Control to Up/On\nClose Session command failed',
  'power cycle':
    'No valid response received\nUnable to set Chassis Power Control to Cycle\nClose Session command failed',
  'bootdev pxe':
    'No valid response received\nError setting Chassis Boot Parameter 0\nError setting Chassis Boot Parameter 4\nClose Session command failed',
  'power status':
    'No valid response received\nUnable to get Chassis Power Status\nClose Session command failed',
};

describe('a BMC whose reply is lost after the session is up', () => {
  let bmcs: BmcLab;
  before(async () => {
    bmcs = await startBmcs(1);
  });
  after(async () => {
    await bmcs?.stop();
  });

  it('ipmitool output without a reply is classified "unreachable" (retryable), never a command rejection', () => {
    for (const [cmd, stderr] of Object.entries(RECORDED)) {
      assert.deepEqual(classifyFailure(stderr), { kind: 'unreachable' }, cmd);
    }
    // a real rejection (a completion code came back) stays a command error
    assert.equal(
      classifyFailure('Set Chassis Power Control to Cycle failed: Command not supported in present state')
        .kind,
      'command',
    );
  });

  for (const op of ['powerOn', 'powerCycle', 'setBootDevice', 'powerOnForPxe'] as const) {
    it(`${op}: the reply dropped after the session set-up → BmcUnreachableError, retryable`, async () => {
      const b = bmcs.bmcs[0];
      const proxy = await startUdpFlapProxy({ address: b.address, targetPort: b.port, dropAfter: 7 });
      try {
        const driver = createPowerDriver({
          address: b.address,
          port: proxy.port,
          username: b.username,
          password: b.password,
        });
        const call =
          op === 'setBootDevice'
            ? driver.setBootDevice('pxe', { once: true, uefi: false })
            : op === 'powerOnForPxe'
              ? driver.powerOnForPxe({ uefi: false })
              : driver[op]();
        await assert.rejects(call, (err: unknown) => {
          assert.ok(isBmcError(err), String(err));
          assert.equal(err.name, 'BmcUnreachableError', `${op}: ${err.name}: ${err.message}`);
          assert.equal(err.retryable, true);
          return true;
        });
        assert.ok(
          proxy.dropped > 0 && proxy.relayed === 7,
          `relayed ${proxy.relayed}, dropped ${proxy.dropped}`,
        );
      } finally {
        await proxy.close();
      }
    });
  }
});
