// A lab whose process is killed from outside (timeout, Ctrl-C, CI cancelling a job) tears itself down: no node
// namespaces, links, BMC simulators or controller left behind, and the process still dies of the signal.
import assert from 'node:assert/strict';
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

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`${signal} to a process with a running lab removes the lab`, { timeout: 120_000 }, async () => {
    const child = execa('node', ['--import', 'tsx', new URL('./signal-child.ts', import.meta.url).pathname], {
      env: { TEMPORAL_ADDRESS: t.endpoint.address },
      reject: false,
    });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', () => reject(new Error('the lab process exited before it was ready')));
    });
    const started = JSON.parse(line) as { id: string; controller: number; bmcs: number[] };
    assert.ok((await leftoverLabObjects(started.id)).length > 0, 'the lab exists before the signal');
    assert.ok(isRunning(started.controller));

    child.kill(signal);
    const r = await child;
    assert.equal(r.signal, signal, `the process dies of ${signal} (exit ${r.exitCode}): ${r.stderr}`);
    assert.deepEqual(await leftoverLabObjects(started.id), []);
    for (const pid of [started.controller, ...started.bmcs])
      assert.ok(!isRunning(pid), `process ${pid} of the lab is gone`);
  });
}
