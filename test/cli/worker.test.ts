// `pxeflow worker` with the embedded dev server: records the server in the state folder, the other commands
// find it there, Ctrl-C stops worker and server and removes the record.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pxeflow, spawnPxeflow } from './run.ts';

let state: string;
before(async () => {
  state = await mkdtemp(join(tmpdir(), 'pxeflow-cli-worker-'));
});
after(async () => {
  await rm(state, { recursive: true, force: true });
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('worker starts the dev server, records it for the other commands, and stops it on Ctrl-C', {
  timeout: 180_000,
}, async () => {
  const env = { PXEFLOW_STATE_DIR: state };
  const worker = spawnPxeflow(['worker'], { env });
  const record = join(state, 'temporal.json');
  let rec: { address: string; pid: number; uiUrl?: string } | undefined;
  try {
    for (let i = 0; i < 120 && !rec; i++) {
      if (existsSync(record)) rec = JSON.parse(readFileSync(record, 'utf8'));
      else await sleep(500);
    }
    assert.ok(rec, 'the worker recorded its Temporal server');
    assert.match(rec.address, /^127\.0\.0\.1:\d+$/);
    assert.ok(alive(rec.pid));

    // no --address: the recorded server is used
    const st = await pxeflow(['status', '--json'], { env });
    assert.equal(st.exitCode, 0, st.all);
    assert.deepEqual(JSON.parse(st.stdout), []);
  } finally {
    worker.kill('SIGINT');
  }
  const w = await worker;
  assert.equal(w.exitCode, 0, String(w.all));
  assert.match(String(w.stderr), /pxeflow worker: Temporal 127\.0\.0\.1:\d+ .*task queue pxeflow/);
  assert.ok(!existsSync(record), 'the record is removed');
  assert.ok(!alive(rec.pid), 'the dev server is stopped');
  // and without the record, the stale address is no longer used
  const gone = await pxeflow(['status'], { env });
  assert.ok(!gone.all.includes(rec.address), gone.all);
});
