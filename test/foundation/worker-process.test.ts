// The controller process against the real dev server: it polls task queue `pxeflow`-style queues, runs a
// workflow, and stops cleanly on SIGTERM (the SDK drains in-flight work within the grace time).
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { WorkflowFailedError } from '@temporalio/client';
import { execa } from 'execa';
import { READY_LINE } from '../../workers/run.ts';
import { startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';

const RUN = new URL('../../workers/run.ts', import.meta.url).pathname;
let t: TestTemporal;
before(async () => {
  t = await startTestTemporal();
});
after(async () => {
  await t?.close();
});

test('workers/run.ts serves its task queue and exits 0 on SIGTERM', async () => {
  const config = join(t.dir, 'controller.json');
  await writeFile(
    config,
    JSON.stringify({ temporal: { address: t.endpoint.address }, taskQueue: 'proc-test', stateDir: t.dir, logLevel: 'warn' }),
  );
  const child = execa(process.execPath, ['--import', 'tsx', RUN, config], { reject: false, stdin: 'ignore' });
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes(READY_LINE)) resolve();
      });
      void child.then((r) => reject(new Error(`exited early: ${r.stderr}`)));
    });
    // it really serves the queue: a workflow with a bad spec is picked up and fails cleanly
    const h = await t.client.workflow.start('ClusterInstall', { taskQueue: 'proc-test', workflowId: 'proc-bad', args: [{}] });
    await assert.rejects(h.result(), WorkflowFailedError);
    child.kill('SIGTERM');
    const r = await child;
    assert.equal(r.exitCode, 0, r.stderr);
  } finally {
    child.kill('SIGKILL');
  }
});
