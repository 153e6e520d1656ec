// The lab BMCs themselves: node processes, clean stop by PID, no password anywhere visible, faults.
import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type BmcLab, startBmcs, stopAll } from '../../lab/bmc/index.ts';
import { isRunning, runningGroupMembers } from '../../lab/bmc/proc.ts';
import { BmcAuthError, createPowerDriver, type IpmitoolCallEvent } from '../../power/index.ts';

async function allCmdlines(): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const raw = await readFile(`/proc/${entry}/cmdline`).catch(() => undefined);
    if (raw?.length) out.push(raw.toString('utf8').replaceAll('\0', ' '));
  }
  return out;
}

describe('lab BMCs', () => {
  after(stopAll);

  it('runs the node command on power on (own process group, output to a file)', async () => {
    const lab = await startBmcs(1, {
      nodeCommand: 'echo "node $PXEFLOW_NODE_NAME up"; sleep 600 & sleep 600; wait',
    });
    try {
      const bmc = lab.bmcs[0];
      await createPowerDriver(bmc).powerOn();
      const pid = await bmc.nodePid();
      assert.ok(pid);
      for (let i = 0; i < 50 && !(await readFile(bmc.nodeLogPath, 'utf8')).includes('up'); i++)
        await sleep(20);
      assert.match(await readFile(bmc.nodeLogPath, 'utf8'), /node node-1 up/);
      assert.ok(runningGroupMembers(pid).length >= 2, 'node command and its child share the process group');
      assert.equal((await stat(join(bmc.dir, 'lan.conf'))).mode & 0o777, 0o600);
    } finally {
      await lab.stop();
    }
  });

  it('stopAll leaves no ipmi_sim and no node process behind (checked by PID), and is idempotent', async () => {
    const lab = await startBmcs(3, { nodeCommand: 'sleep 600 & sleep 600; wait' });
    await Promise.all(lab.bmcs.slice(0, 2).map((b) => createPowerDriver(b).powerOn()));
    const simPids = lab.bmcs.map((b) => b.simPid);
    const groups = (await Promise.all(lab.bmcs.map((b) => b.nodePid()))).filter((p): p is number => !!p);
    assert.equal(groups.length, 2);
    assert.ok(simPids.every(isRunning));
    const members = groups.flatMap(runningGroupMembers);
    assert.ok(members.length >= 4);

    await stopAll();
    for (const pid of simPids) assert.equal(isRunning(pid), false, `ipmi_sim ${pid} still running`);
    for (const pid of members) assert.equal(isRunning(pid), false, `node process ${pid} still running`);
    for (const pg of groups) assert.deepEqual(runningGroupMembers(pg), []);
    await stopAll();
    await lab.stop();
  });

  it('refuses a second BMC on an address:port already in use', async () => {
    const lab = await startBmcs(1);
    try {
      const { address, port } = lab.bmcs[0];
      await assert.rejects(startBmcs([{ address, port }]), /already in use/);
    } finally {
      await lab.stop();
    }
  });

  it('no password on any command line, in any log or error, while many calls run', async () => {
    const lab: BmcLab = await startBmcs(4);
    try {
      const passwords = lab.bmcs.map((b) => b.password);
      const wrong = 'wrong-pw-5551234';
      const events: IpmitoolCallEvent[] = [];
      const errors: string[] = [];
      const leaks: string[] = [];
      let sawIpmitool = false;
      let scanning = true;
      const scanner = (async () => {
        while (scanning) {
          for (const line of await allCmdlines()) {
            if (line.includes('ipmitool')) sawIpmitool = true;
            if ([...passwords, wrong].some((pw) => line.includes(pw))) leaks.push(line);
          }
          await sleep(2);
        }
      })();
      const work = [];
      for (let round = 0; round < 10; round++) {
        for (const b of lab.bmcs) {
          work.push(createPowerDriver(b, { onCall: (e) => events.push(e) }).powerState());
          work.push(
            createPowerDriver({ ...b, password: wrong }, { onCall: (e) => events.push(e) })
              .powerState()
              .catch((e: unknown) => {
                assert.ok(e instanceof BmcAuthError);
                errors.push(e.message, JSON.stringify(e));
              }),
          );
        }
      }
      await Promise.all(work);
      await createPowerDriver(lab.bmcs[0]).powerOnForPxe({ uefi: true });
      scanning = false;
      await scanner;
      assert.deepEqual(leaks, [], 'password on a command line');
      assert.ok(sawIpmitool, 'the scan saw ipmitool processes (so it could have caught a password)');

      const texts = [...errors, JSON.stringify(events)];
      for (const b of lab.bmcs) {
        for (const f of ['sim.log', 'node.out', 'power.log', 'chassis.sh', 'node.sh']) {
          texts.push(await readFile(join(b.dir, f), 'utf8').catch(() => ''));
        }
      }
      for (const t of texts)
        for (const pw of [...passwords, wrong]) assert.ok(!t.includes(pw), 'password in a log');
      assert.equal(errors.length, 2 * 40);
    } finally {
      await lab.stop();
    }
  });

  it('delayMs makes a slow but working BMC (UDP proxy)', async () => {
    const lab = await startBmcs([{ delayMs: 150 }]);
    try {
      const bmc = lab.bmcs[0];
      const started = Date.now();
      assert.equal(await createPowerDriver(bmc, { timeoutSeconds: 2 }).powerState(), 'off');
      // An IPMI session is several round trips, each delayed twice: a lower bound, not a speed claim.
      assert.ok(Date.now() - started >= 4 * 150, 'the delay was applied');
    } finally {
      await lab.stop();
    }
  });
});
