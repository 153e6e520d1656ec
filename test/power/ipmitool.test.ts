// The ipmitool driver against real ipmi_sim BMCs (lab/bmc): real state changes, real failures.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pLimit from 'p-limit';
import { type BmcLab, randomLoopbackSubnet, startBmcs } from '../../lab/bmc/index.ts';
import {
  BmcAuthError,
  BmcCommandError,
  BmcConfigError,
  BmcUnreachableError,
  createPowerDriver,
  type IpmitoolCallEvent,
  type IpmitoolOptions,
} from '../../power/index.ts';
import type { BmcLimiter } from '../../power/limit.ts';

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('ipmitool driver vs ipmi_sim', () => {
  let lab: BmcLab;
  before(async () => {
    lab = await startBmcs(4);
  });
  after(async () => {
    await lab?.stop();
  });

  const driverFor = (i: number, opts: IpmitoolOptions = {}) => createPowerDriver(lab.bmcs[i], opts);

  it('validate() accepts a good target and names the field of a bad one', async () => {
    await driverFor(0).validate();
    const bad = createPowerDriver({ ...lab.bmcs[0], port: 70000 });
    await assert.rejects(
      bad.validate(),
      (e: unknown) => e instanceof BmcConfigError && /port/.test(e.message),
    );
    const long = createPowerDriver({ ...lab.bmcs[0], password: 'x'.repeat(21) });
    await assert.rejects(
      long.powerState(),
      (e: unknown) => e instanceof BmcConfigError && !e.message.includes('xxx'),
    );
  });

  it('info() reads the management controller identity', async () => {
    const info = await driverFor(0).info();
    assert.equal(info.manufacturerId, 0x1291);
    assert.equal(info.productId, 0xf02);
    assert.equal(info.ipmiVersion, '2.0');
    assert.equal(info.firmwareRevision, '9.08');
  });

  it('power on/off/status change the sim state and the node process; repeats are no-ops', async () => {
    const bmc = lab.bmcs[0];
    const d = driverFor(0);
    assert.equal(await d.powerState(), 'off');
    assert.equal(await bmc.isOn(), false);

    assert.equal(await d.powerOn(), 'on');
    assert.equal(await bmc.isOn(), true);
    const pid = await bmc.nodePid();
    assert.ok(pid, 'node process started on power on');
    assert.equal(await d.powerState(), 'on');
    assert.equal(await d.powerOn(), 'none', 'power on of an on node does nothing');
    assert.equal(await bmc.nodePid(), pid, 'same node process after the no-op');

    assert.equal(await d.powerOff(), 'off');
    assert.equal(await bmc.isOn(), false);
    assert.equal(await bmc.nodePid(), undefined, 'node process group killed on power off');
    assert.equal(await d.powerOff(), 'none');

    const ons = (await bmc.powerLog()).filter((e) => e.op === 'power' && e.value === '1');
    assert.equal(ons.length, 1, 'exactly one power-on reached the BMC');
  });

  it('powerCycle: off → on; on → a real cycle (new node process)', async () => {
    const bmc = lab.bmcs[1];
    const d = driverFor(1);
    assert.equal(await d.powerCycle(), 'on');
    const first = await bmc.nodePid();
    assert.ok(first);
    assert.equal(await d.powerCycle(), 'cycle');
    // ipmi_sim powers off, waits a second, powers on again
    await until('the second power-on logged', async () => (await bmc.powerLog()).length === 3);
    const second = await bmc.nodePid();
    assert.ok(second && second !== first, 'a new node process after the cycle');
    const ops = (await bmc.powerLog()).filter((e) => e.op === 'power').map((e) => e.value);
    assert.deepEqual(ops, ['1', '0', '1']);
    await d.powerOff();
  });

  it('setBootDevice is recorded by the sim (pxe, then disk)', async () => {
    const bmc = lab.bmcs[2];
    const d = driverFor(2);
    await d.setBootDevice('pxe', { once: true, uefi: false });
    assert.equal(await bmc.bootDevice(), 'pxe');
    await d.setBootDevice('disk', { once: false, uefi: true });
    assert.equal(await bmc.bootDevice(), 'default');
    const boots = (await bmc.powerLog()).filter((e) => e.op === 'boot').map((e) => e.value);
    assert.deepEqual(boots, ['pxe', 'default']);
  });

  it('powerOnForPxe sets pxe once, powers on when off and cycles when on', async () => {
    const bmc = lab.bmcs[2];
    const d = driverFor(2);
    assert.equal(await d.powerOnForPxe({ uefi: false }), 'on');
    assert.equal(await bmc.bootDevice(), 'pxe');
    const first = await bmc.nodePid();
    assert.equal(await d.powerOnForPxe({ uefi: false }), 'cycle');
    await until('the power-on after the cycle logged', async () => (await bmc.powerLog()).length === 7);
    const second = await bmc.nodePid();
    assert.ok(second && second !== first, 'a new node process after the cycle');
    const log = (await bmc.powerLog()).map((e) => `${e.op}=${e.value}`);
    assert.deepEqual(log.slice(-5), ['boot=pxe', 'power=1', 'boot=pxe', 'power=0', 'power=1']);
    await d.powerOff();
  });

  it('a refused boot device is detected although ipmitool exits 0', async () => {
    const bmc = lab.bmcs[3];
    await bmc.setRejectBootDevice(true);
    try {
      const d = driverFor(3);
      await assert.rejects(d.setBootDevice('pxe', { once: true, uefi: false }), (e: unknown) => {
        assert.ok(e instanceof BmcCommandError);
        assert.equal(e.code, 'BMC_COMMAND');
        assert.equal(e.operation, 'setBootDevice');
        assert.equal(e.bmc, `${bmc.address}:${bmc.port}`);
        return true;
      });
      // and the install path does not power on after a refused boot device
      await assert.rejects(d.powerOnForPxe({ uefi: false }), BmcCommandError);
      assert.equal(await bmc.isOn(), false);
      assert.equal((await bmc.powerLog()).filter((e) => e.op === 'power').length, 0);
      assert.equal(await bmc.bootDevice(), 'default');
    } finally {
      await bmc.setRejectBootDevice(false);
    }
  });

  it('a boot device refused once (a set-in-progress lock) is set on the second try', async () => {
    const bmc = lab.bmcs[3];
    await bmc.setRejectBootDevice(true);
    const calls: IpmitoolCallEvent[] = [];
    let unlocked: Promise<void> | undefined;
    const d = driverFor(3, {
      onCall: (e) => {
        calls.push(e);
        // the lock goes away right after the first refusal (the driver waits ~1 s before its second try)
        if (e.command[1] === 'bootdev' && !unlocked) unlocked = bmc.setRejectBootDevice(false);
      },
    });
    try {
      await d.setBootDevice('pxe', { once: true, uefi: false });
      await unlocked;
      assert.equal(calls.filter((c) => c.command[1] === 'bootdev').length, 2);
      assert.equal(await bmc.bootDevice(), 'pxe');
    } finally {
      await bmc.setRejectBootDevice(false);
      await d.setBootDevice('disk', { once: true, uefi: false }).catch(() => {});
    }
  });

  it('a wrong password is an auth error, not retried, and never shown', async () => {
    const bmc = lab.bmcs[0];
    const wrong = 'wrong-secret-1234';
    const calls: IpmitoolCallEvent[] = [];
    const d = createPowerDriver({ ...bmc, password: wrong }, { attempts: 5, onCall: (e) => calls.push(e) });
    await assert.rejects(d.powerOn(), (e: unknown) => {
      assert.ok(e instanceof BmcAuthError);
      assert.equal(e.retryable, false);
      assert.equal(e.code, 'BMC_AUTH');
      assert.ok(!e.message.includes(wrong) && !e.message.includes(bmc.password));
      assert.ok(!JSON.stringify(e).includes(wrong));
      return true;
    });
    assert.equal(calls.length, 1, 'exactly one ipmitool attempt despite attempts: 5');
    assert.equal(calls[0].outcome, 'BMC_AUTH');
    // a wrong user name is an auth error too
    const nobody = createPowerDriver({ ...bmc, username: 'nobody' });
    await assert.rejects(nobody.powerState(), BmcAuthError);
    assert.equal(await bmc.isOn(), false);
  });

  it('nothing listening: BmcUnreachableError within the configured bound, retried as configured', async () => {
    const [address] = randomLoopbackSubnet().split('/');
    const calls: IpmitoolCallEvent[] = [];
    const target = { address: address.replace(/0$/, '7'), port: 623, username: 'admin', password: 'secret' };
    const d = createPowerDriver(target, {
      timeoutSeconds: 1,
      retries: 1,
      attempts: 2,
      retryDelayMs: 10,
      onCall: (e) => calls.push(e),
    });
    const boundMs = 1000 * (1 + 1) * 2; // N × (R+1) per attempt × 2 attempts
    const started = Date.now();
    await assert.rejects(d.powerState(), (e: unknown) => e instanceof BmcUnreachableError && e.retryable);
    assert.ok(Date.now() - started < 3 * boundMs, `took ${Date.now() - started} ms`);
    assert.deepEqual(
      calls.map((c) => c.outcome),
      ['BMC_UNREACHABLE', 'BMC_UNREACHABLE'],
    );
  });

  it('calls go through the concurrency limiter', async () => {
    let active = 0;
    let peak = 0;
    const inner = pLimit(2);
    const limiter = ((fn: () => Promise<unknown>) =>
      inner(async () => {
        active++;
        peak = Math.max(peak, active);
        try {
          return await fn();
        } finally {
          active--;
        }
      })) as unknown as BmcLimiter;
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => driverFor(i % 4, { limiter }).powerState()),
    );
    assert.equal(results.length, 12);
    assert.ok(peak <= 2, `peak ${peak}`);
    assert.equal(peak, 2);
  });
});
