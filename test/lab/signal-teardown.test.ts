// A lab whose process is killed from outside (timeout, Ctrl-C, CI cancelling a job) tears itself down: no node
// namespaces, links, BMC simulators or controller left behind, and the process still dies of the signal.
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { constants } from 'node:os';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { isRunning } from '../../lab/bmc/proc.ts';
import { leftoverLabObjects } from '../../lab/network.ts';
import { startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';

let t: TestTemporal;
before(async () => {
  t = await startTestTemporal();
});
after(async () => {
  await t?.close();
});

for (const [signal, other] of [
  ['SIGTERM', false],
  ['SIGINT', false],
  ['SIGTERM', true],
] as const) {
  const title = `${signal} to a process with a running lab removes the lab${other ? ' (with another listener)' : ''}`;
  test(title, { timeout: 120_000 }, async (ctx) => {
    const child = execa('node', ['--import', 'tsx', new URL('./signal-child.ts', import.meta.url).pathname], {
      env: { TEMPORAL_ADDRESS: t.endpoint.address, ...(other ? { OTHER_LISTENER: '1' } : {}) },
      reject: false,
    });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', () => reject(new Error('the lab process exited before it was ready')));
    });
    const started = JSON.parse(line) as { id: string; controller: number; bmcs: number[]; stateDir: string };
    ctx.after(() => rm(started.stateDir, { recursive: true, force: true }));
    assert.ok((await leftoverLabObjects(started.id)).length > 0, 'the lab exists before the signal');
    assert.ok(isRunning(started.controller));

    child.kill(signal);
    const r = await child;
    // with a listener that swallows the signal, it exits with 128 + the signal's number instead
    const died = r.signal === signal || (other && r.exitCode === 128 + constants.signals[signal]);
    assert.ok(died, `the process ends by ${signal} (signal ${r.signal}, exit ${r.exitCode}): ${r.stderr}`);
    assert.deepEqual(await leftoverLabObjects(started.id), []);
    for (const pid of [started.controller, ...started.bmcs])
      assert.ok(!isRunning(pid), `process ${pid} of the lab is gone`);
  });
}
