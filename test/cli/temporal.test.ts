// The command against a real Temporal dev server and the real controller worker: install starts ClusterInstall,
// a spec the workflow rejects ends the command with exit 2 and the workflow's error, status lists installs,
// watch follows and detaches on Ctrl-C, a second install of the same cluster is refused.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { heartbeat, sleep as activitySleep } from '@temporalio/activity';
import { NativeConnection, Worker } from '@temporalio/worker';
import { pino } from 'pino';
import { createActivities } from '../../activities/index.ts';
import { workflowBundle } from '../../workers/bundle.ts';
import { type RunningController, startController } from '../../workers/controller.ts';
import { startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';
import { pxeflow, spawnPxeflow } from './run.ts';

let t: TestTemporal;
let ctl: RunningController | undefined;
let dir: string;
let address: string;
const id = randomBytes(3).toString('hex');

before(async () => {
  t = await startTestTemporal();
  address = t.endpoint.address;
  dir = await mkdtemp(join(tmpdir(), 'pxeflow-cli-temporal-'));
});
after(async () => {
  await ctl?.shutdown();
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

const startController_ = async () => {
  ctl = await startController({
    address,
    namespace: t.endpoint.namespace,
    deps: { logger: pino({ level: 'silent' }) },
  });
};

/** A spec the workflow rejects: bad name, controller outside the subnet (passes YAML parsing only). */
const badSpec = (name: string) => ({
  apiVersion: 'pxeflow/v1',
  name,
  iso: { version: 'storageos-7.9' },
  ipmi: { subnet: '10.10.0.0/24', username: 'admin', passwordEnv: 'PXEFLOW_BMC_PASSWORD' },
  network: {
    interface: 'br-prov',
    subnet: '10.20.0.0/24',
    controller: '10.30.0.1',
    range: { start: '10.20.0.100', end: '10.20.0.199' },
  },
  power: { interval: '0s' },
  nodes: [{ name: 'stor-001', bmc: '10.10.0.11' }],
});

const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

test('install --detach without a worker; watch shows it unanswered and Ctrl-C detaches; then the workflow rejects the spec (exit 2)', async () => {
  const name = `cli-wait-${id}`;
  const file = join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify({ ...badSpec(name), network: { ...badSpec(name).network } }));
  // this spec is bad only for the workflow's cross-field checks: skip the local validation
  const started = await pxeflow(['--address', address, 'install', file, '--skip-validate', '--detach']);
  assert.equal(started.exitCode, 0, started.all);
  assert.match(started.stdout, new RegExp(`started pxeflow/${name}`));
  assert.match(started.stdout, new RegExp(`pxeflow --address ${address} watch ${name}`));

  // a second install of the same cluster is refused while the first runs
  const dup = await pxeflow(['--address', address, 'install', file, '--skip-validate', '--detach']);
  assert.equal(dup.exitCode, 2, dup.all);
  assert.match(
    dup.stderr,
    new RegExp(`pxeflow/${name} is already running; follow it with: pxeflow --address \\S+ watch ${name}`),
  );

  // no worker yet: the live view says so, and Ctrl-C detaches with exit 0
  const watch = spawnPxeflow(['--address', address, 'watch', name, '--json']);
  let seen = '';
  watch.all?.on('data', (b: Buffer) => {
    seen += b.toString();
  });
  await until('a progress record', async () =>
    jsonLines(seen).some((r) => r.type === 'progress') ? true : undefined,
  );
  const rec = jsonLines(seen).find((r) => r.type === 'progress')!;
  assert.equal(rec.workflowId, `pxeflow/${name}`);
  assert.equal(rec.status, 'RUNNING');
  assert.match(String(rec.queryError), /worker|query/i);
  watch.kill('SIGINT');
  const w = await watch;
  assert.equal(w.exitCode, 0, String(w.all));
  const last = jsonLines(String(w.stdout)).at(-1)!;
  assert.equal(last.type, 'detached');
  assert.equal(last.reattach, `pxeflow --address ${address} watch ${name}`);

  // status of a running install without a worker: exit 0, says why there is no progress
  const st = await pxeflow(['--address', address, 'status', name]);
  assert.equal(st.exitCode, 0, st.all);
  assert.match(st.stdout, /running/);

  // the worker comes: the workflow rejects the spec; watch ends with its error and exit 2
  await startController_();
  const end = await pxeflow(['--address', address, 'watch', name, '--json'], { timeoutMs: 60_000 });
  assert.equal(end.exitCode, 2, end.all);
  const failed = jsonLines(end.stdout).at(-1)!;
  assert.equal(failed.type, 'failed');
  assert.equal(failed.workflowId, `pxeflow/${name}`);
  const error = failed.error as { type: string; message: string };
  assert.equal(error.type, 'InvalidClusterSpec');
  assert.match(error.message, /network\.controller/);
});

test('install of a spec the workflow rejects exits 2 with the workflow error; status --json lists it', async () => {
  if (!ctl) await startController_();
  const name = `cli-bad-${id}`;
  const file = join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify(badSpec(name)));
  // local validation catches it first (exit 2, nothing started)
  const local = await pxeflow(['--address', address, 'install', file]);
  assert.equal(local.exitCode, 2);
  assert.match(local.stderr, /network\.controller/);
  const none = await t.client.workflow.count(`WorkflowId="pxeflow/${name}"`);
  assert.equal(none.count, 0, 'a spec that fails locally is never started');

  const r = await pxeflow(['--address', address, 'install', file, '--skip-validate'], { timeoutMs: 60_000 });
  assert.equal(r.exitCode, 2, r.all);
  assert.match(r.stdout, new RegExp(`install pxeflow/${name} failed \\(InvalidClusterSpec\\)`));
  assert.match(r.stdout, /network\.controller/);

  const listed = await until('the install in the visibility list', async () => {
    const s = await pxeflow(['--address', address, 'status', '--json']);
    assert.equal(s.exitCode, 0, s.all);
    const rows = JSON.parse(s.stdout) as Array<{ workflowId: string; status: string; cluster: string }>;
    return rows.find((x) => x.workflowId === `pxeflow/${name}`);
  });
  assert.equal(listed.status, 'FAILED');
  assert.equal(listed.cluster, name);

  const text = await pxeflow(['--address', address, 'status']);
  assert.match(text.stdout, /CLUSTER\s+WORKFLOW ID\s+STATUS/);
  assert.match(text.stdout, new RegExp(`${name}\\s+pxeflow/${name}\\s+FAILED`));

  const one = await pxeflow(['--address', address, 'status', name, '--json']);
  assert.equal(one.exitCode, 2);
  const detail = JSON.parse(one.stdout);
  assert.equal(detail.status, 'FAILED');
  assert.equal(detail.error.type, 'InvalidClusterSpec');

  const report = await pxeflow(['--address', address, 'report', name]);
  assert.equal(report.exitCode, 2);
  assert.match(report.stderr, /ended without a report \(failed\)/);

  // the live controls on a closed install: a clear refusal, exit 2
  const pause = await pxeflow(['--address', address, 'pause', name]);
  assert.equal(pause.exitCode, 2, pause.all);
  assert.match(pause.stderr, new RegExp(`pxeflow/${name}`));

  const missing = await pxeflow(['--address', address, 'watch', `no-such-${id}`]);
  assert.equal(missing.exitCode, 2);
  assert.match(missing.stderr, /no install pxeflow\/no-such-/);
});

test('a spec valid here that the controller cannot serve (secret missing) ends with exit 1 and the reason', async () => {
  if (!ctl) await startController_();
  const name = `cli-nosecret-${id}`;
  const file = join(dir, `${name}.yaml`);
  const envVar = `PXEFLOW_CLI_TEST_UNSET_${id.toUpperCase()}`;
  const init = await pxeflow([
    'init',
    '--ipmi-subnet',
    '10.10.0.0/24',
    '--ip-subnet',
    '10.20.0.0/24',
    '--iso',
    'storageos-7.9',
    '--name',
    name,
    '--credentials-env',
    envVar,
    '-o',
    file,
  ]);
  assert.equal(init.exitCode, 0, init.all);
  const r = await pxeflow(['--address', address, 'install', file, '--json'], { timeoutMs: 120_000 });
  assert.equal(r.exitCode, 1, r.all);
  const lines = jsonLines(r.stdout);
  assert.equal(lines[0].type, 'started');
  const last = lines.at(-1)! as { type: string; error: { type: string; message: string } };
  assert.equal(last.type, 'failed');
  assert.equal(last.error.type, 'SecretMissing');
  assert.match(last.error.message, new RegExp(envVar));
});

test('the live controls on a running install: accepted, rejected by the validators (exit 2), cancel', {
  timeout: 240_000,
}, async () => {
  if (!ctl) await startController_();
  // A worker whose image preparation does not finish until the install is cancelled: the install stays in
  // "preparing", where every control is open. Everything else (workflow, other activities, Temporal) is real.
  const taskQueue = `cli-controls-${id}`;
  const activities = createActivities({ logger: pino({ level: 'silent' }), client: t.client, taskQueue });
  const worker = await Worker.create({
    connection: await NativeConnection.connect({ address }),
    namespace: t.endpoint.namespace,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: {
      ...activities,
      async prepareImage() {
        for (;;) {
          heartbeat();
          await activitySleep(200); // throws CancelledFailure once the install is cancelled (or the worker stops)
        }
      },
    },
  });
  const running = worker.run();
  const name = `cli-ctl-${id}`;
  const envVar = `PXEFLOW_CLI_TEST_BMC_${id.toUpperCase()}`;
  process.env[envVar] = 'not-used';
  try {
    const file = join(dir, `${name}.yaml`);
    const init = await pxeflow([
      'init',
      '--ipmi-subnet',
      '10.10.0.0/24',
      '--ip-subnet',
      '10.20.0.0/24',
      '--iso',
      'storageos-7.9',
      '--name',
      name,
      '--credentials-env',
      envVar,
      '-o',
      file,
    ]);
    assert.equal(init.exitCode, 0, init.all);
    const cli = ['--address', address];
    const started = await pxeflow([...cli, 'install', file, '--task-queue', taskQueue, '--detach']);
    assert.equal(started.exitCode, 0, started.all);

    const status = async () => {
      const r = await pxeflow([...cli, 'status', name, '--json']);
      assert.equal(r.exitCode, 0, r.all);
      return JSON.parse(r.stdout) as {
        progress?: { state: string; paused: boolean; intervalMs: number; maxBooting: number };
      };
    };
    await until('progress of the running install', async () =>
      (await status()).progress ? true : undefined,
    );
    assert.equal((await status()).progress?.state, 'preparing');

    const pause = await pxeflow([...cli, 'pause', name]);
    assert.equal(pause.exitCode, 0, pause.all);
    assert.match(pause.stdout, new RegExp(`paused pxeflow/${name}: preparing \\(paused\\)`));
    assert.equal((await status()).progress?.paused, true);
    const resume = await pxeflow([...cli, 'resume', name]);
    assert.equal(resume.exitCode, 0, resume.all);
    const again = await pxeflow([...cli, 'resume', name]);
    assert.equal(again.exitCode, 2, again.all);
    assert.match(again.stderr, /resume rejected by pxeflow\/cli-ctl-\w+: the install is not paused/);

    const pace = await pxeflow([...cli, 'pace', name, '--interval', '10s', '--max-booting', '5']);
    assert.equal(pace.exitCode, 0, pace.all);
    const p = (await status()).progress!;
    assert.equal(p.intervalMs, 10_000);
    assert.equal(p.maxBooting, 5);
    const tooSlow = await pxeflow([...cli, 'pace', name, '--interval', '2h']);
    assert.equal(tooSlow.exitCode, 2);
    assert.match(tooSlow.stderr, /setPace rejected .*intervalMs must be/);
    const badDuration = await pxeflow([...cli, 'pace', name, '--interval', '10']);
    assert.equal(badDuration.exitCode, 2);
    assert.match(badDuration.stderr, /--interval: .*no unit/);

    const skip = await pxeflow([...cli, 'skip', name, 'no-such-node']);
    assert.equal(skip.exitCode, 2);
    assert.match(skip.stderr, /skipNodes rejected .*unknown node\(s\): no-such-node/);
    const retry = await pxeflow([...cli, 'retry', name, '--all']);
    assert.equal(retry.exitCode, 2);
    assert.match(retry.stderr, /retryNodes rejected .*no failed or timed-out node to retry/);

    // watch follows it; cancel ends it; watch then exits 1 with the cancellation
    const watch = spawnPxeflow([...cli, 'watch', name]);
    await sleep(1500);
    const cancel = await pxeflow([...cli, 'cancel', name]);
    assert.equal(cancel.exitCode, 0, cancel.all);
    const w = await watch;
    assert.equal(w.exitCode, 1, String(w.all));
    assert.match(String(w.stdout), /cancel/i);
    assert.doesNotMatch(String(w.stdout), /\x1b\[/, 'no colours or bars without a TTY');
  } finally {
    delete process.env[envVar];
    worker.shutdown();
    await running;
  }
});
