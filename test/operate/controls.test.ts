// The live controls of a running install, against a real lab (ipmi_sim BMCs, simulated PXE nodes, the real
// controller) and a real Temporal dev server: pause/resume, setPace, skip, retry, cancel, the queries, the
// validators' rejections (no trace in history), and the same controls through the raw `temporal` CLI.
import assert from 'node:assert/strict';
import { poll } from '../../cli/live.ts';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { execa } from 'execa';
import { resolveTemporalCli } from '../../temporal/cli-path.ts';
import type {
  ClusterReport,
  NodeResult,
  NodeTimeline,
  Progress,
  TableView,
} from '../../workflows/messages.ts';
import {
  bmcLog,
  type OperateEnv,
  powerOns,
  progressOf,
  rejection,
  sleep,
  startOperateEnv,
  until,
  updateEvents,
} from './fixture.ts';

let env: OperateEnv;
before(async () => {
  env = await startOperateEnv('ctl', {
    nodes: 8,
    behaviours: { '2': 'fail-once:disk sda not found' },
    attempts: 1,
    installSeconds: 5,
    timeouts: { install: '90s', dhcpSeen: '60s' },
  });
});
after(async () => {
  await env?.close();
});

const node = (i: number) => `ctl-00${i}`;
const start = (cluster: string, indexes: number[], power: { interval: string; maxBooting: number }) =>
  env.t.client.workflow.start('ClusterInstall', {
    taskQueue: env.taskQueue,
    workflowId: `pxeflow/${cluster}`,
    args: [{ ...env.lab.specFor(cluster, indexes), power }],
  });
const timeline = (workflowId: string, i: number) =>
  env.t.client.workflow.getHandle(`${workflowId}/${node(i)}`).query<NodeTimeline>('timeline');
const finishedAt = (tl: NodeTimeline) => tl.events.find((e) => e.phase === tl.outcome)?.at ?? Number.NaN;

/** An Update by name, with one argument or none (as the `temporal` CLI sends them). */
function send<R>(h: WorkflowHandle, name: string, arg: unknown, updateId?: string): Promise<R> {
  return arg === undefined
    ? h.executeUpdate<R, []>(name, { updateId })
    : h.executeUpdate<R, [unknown]>(name, { args: [arg], updateId });
}

/** Sends an Update that must be rejected, under a known id so the history can be searched for it. */
async function rejected(h: WorkflowHandle, name: string, arg: unknown, ids: string[]): Promise<string> {
  const updateId = `rejected-${name}-${randomUUID()}`;
  ids.push(updateId);
  return rejection(send(h, name, arg, updateId));
}

test('pause, setPace, skip, retry and the queries on a running install; rejected requests leave no trace', async () => {
  const { lab } = env;
  const h = await start('ctl-a', [1, 2, 3, 4], { interval: '0s', maxBooting: 50 });
  const rejectedIds: string[] = [];
  const accepted: string[] = [];
  const update = async <R>(name: string, arg?: unknown): Promise<R> => {
    accepted.push(name);
    return send<R>(h, name, arg);
  };

  // paused before the power-on turn comes: the queue fills, nothing is powered on
  assert.equal((await update<Progress>('pause')).paused, true);
  await until('the power-on turn', async () => (await progressOf(h)).state === 'powering-on');

  // invalid requests: the validator answers with a clear message
  assert.match(
    await rejected(h, 'skipNodes', { nodes: ['ctl-999'] }, rejectedIds),
    /unknown node\(s\): ctl-999/,
  );
  assert.match(
    await rejected(h, 'retryNodes', { nodes: ['nope', node(1)] }, rejectedIds),
    /unknown node\(s\): nope/,
  );
  assert.match(
    await rejected(h, 'setPace', { intervalMs: -5 }, rejectedIds),
    /intervalMs must be an integer/,
  );
  assert.match(
    await rejected(h, 'setPace', { intervalMs: 1.5 }, rejectedIds),
    /intervalMs must be an integer/,
  );
  assert.match(await rejected(h, 'setPace', { maxBooting: 0 }, rejectedIds), /maxBooting must be an integer/);
  assert.match(await rejected(h, 'setPace', {}, rejectedIds), /give intervalMs or maxBooting/);
  assert.match(await rejected(h, 'retryNodes', { nodes: [node(1)] }, rejectedIds), /waiting for power-on/);
  assert.match(
    await rejected(h, 'retryNodes', { nodes: 'all-failed' }, rejectedIds),
    /no failed or timed-out node/,
  );

  // pace and skip while paused
  const paced = await update<Progress>('setPace', { intervalMs: 2000, maxBooting: 1 });
  assert.deepEqual([paced.intervalMs, paced.maxBooting, paced.paused], [2000, 1, true]);
  assert.deepEqual(await update<string[]>('skipNodes', { nodes: [node(3)] }), [node(3)]);
  await sleep(1500);
  for (let i = 1; i <= 4; i++)
    assert.deepEqual(await bmcLog(lab, i), [], `${node(i)} was commanded while paused`);
  const p0 = await progressOf(h);
  assert.deepEqual([p0.state, p0.total, p0.started, p0.running], ['powering-on', 4, 0, 0]);

  // resume: node 1 powers on; a resume of a running install is rejected
  assert.equal((await update<Progress>('resume')).paused, false);
  assert.match(await rejected(h, 'resume', undefined, rejectedIds), /the install is not paused/);

  // the table, both sides, while node 1 installs: BMC IP ↔ MAC ↔ DHCP IP
  const table = await until('node 1 in the table', async () => {
    const v = await h.query<TableView>('table');
    return v.controller.length > 0 && v;
  });
  const row = { node: node(1), bmcIp: lab.bmcs.bmcs[0].address, mac: lab.network.nodes[0].mac };
  for (const side of [table.controller, table.monitor]) {
    assert.equal(side.length, 1);
    assert.deepEqual({ node: side[0].node, bmcIp: side[0].bmcIp, mac: side[0].mac }, row);
    assert.match(side[0].dhcpIp, /^10\./);
  }
  assert.match(
    await rejected(h, 'retryNodes', { nodes: [node(1)] }, rejectedIds),
    /ctl-001 is still installing/,
  );

  // pause while node 1 installs: it finishes, node 2 is not powered on however long we wait
  assert.equal((await update<Progress>('pause')).paused, true);
  await until('node 1 finished', async () => (await progressOf(h)).outcomes.success === 1);
  await sleep(2500); // > intervalMs: only the pause holds node 2 back now
  assert.deepEqual(await bmcLog(lab, 2), [], 'node 2 was commanded while paused');
  const p1 = await progressOf(h);
  assert.deepEqual([p1.started, p1.running, p1.paused, p1.outcomes], [1, 0, true, { success: 1 }]);
  const t1 = await timeline('pxeflow/ctl-a', 1);
  assert.equal(t1.outcome, 'success');
  assert.equal(t1.mac, row.mac);
  const phases = t1.events.map((e) => e.phase);
  for (const p of ['power-on', 'dhcp', 'kernel', 'initrd', 'kickstart', 'success']) {
    assert.ok(phases.includes(p), `node 1 timeline lacks ${p}: ${phases.join(',')}`);
  }
  const table1 = await h.query<TableView>('table');
  assert.deepEqual(
    [table1.controller, table1.monitor],
    [[], []],
    'both sides drop the entry after the status',
  );

  // resume until node 2 (fail-once, 1 attempt) has been powered on, then hold the queue again
  await update('resume');
  await until('node 2 powered on', async () => (await powerOns(lab, 2)).length === 1);
  await update('pause');
  await until('node 2 failed', async () => (await progressOf(h)).outcomes.failure === 1);
  assert.match(await rejected(h, 'skipNodes', { nodes: [node(1)] }, rejectedIds), /already been powered on/);

  // retry node 2 while the install still runs (the paused queue keeps it alive)
  assert.deepEqual(await update<string[]>('retryNodes', { nodes: 'all-failed' }), [node(2)]);
  assert.match(await rejected(h, 'retryNodes', { nodes: [node(2)] }, rejectedIds), /waiting for power-on/);
  await update('resume');
  const report = (await h.result()) as ClusterReport;

  const r = new Map<string, NodeResult>(report.nodes.map((n) => [n.node, n]));
  assert.deepEqual(
    [1, 2, 3, 4].map((i) => r.get(node(i))?.outcome),
    ['success', 'success', 'skipped', 'success'],
    JSON.stringify(report.nodes),
  );
  assert.equal((await powerOns(lab, 1)).length, 1);
  assert.equal((await powerOns(lab, 2)).length, 2, 'node 2: the failed attempt and the retry');
  assert.deepEqual(await bmcLog(lab, 3), [], 'the skipped node’s BMC was never commanded');
  assert.equal((await powerOns(lab, 4)).length, 1);
  // maxBooting 1: the retry of node 2 waited for node 4 to finish; intervalMs 2000 after node 4's power-on
  const on4 = (await powerOns(lab, 4))[0].at;
  const retryOn = (await powerOns(lab, 2))[1].at;
  assert.ok(
    retryOn >= finishedAt(await timeline('pxeflow/ctl-a', 4)),
    'two nodes booted at once with maxBooting 1',
  );
  assert.ok(retryOn - on4 >= 2000, `power-ons ${retryOn - on4} ms apart with intervalMs 2000`);

  // the history: the accepted Updates are there, the rejected ones left nothing
  const history = await h.fetchHistory();
  const { count, accepted: inHistory } = updateEvents(history);
  assert.deepEqual(
    inHistory.map((u) => u.name),
    accepted,
  );
  assert.equal(count, accepted.length * 2, 'accepted + completed per accepted Update, nothing else');
  const text = JSON.stringify(history);
  for (const id of rejectedIds) assert.ok(!text.includes(id), `rejected update ${id} left a trace`);
  assert.ok(!text.includes('ctl-999') && !text.includes('is not paused'), 'a rejection reached the history');
});

/** The raw `temporal` CLI, as an operator would call it (exit code + output, never throws). */
async function temporalCli(args: string[]) {
  const { address, namespace } = env.t.endpoint;
  return execa(resolveTemporalCli(), [...args, '--address', address, '--namespace', namespace], {
    reject: false,
    stdin: 'ignore',
    env: { TEMPORAL_CLI_SHOW_STACKS: '' },
  });
}

test('the raw temporal CLI drives the controls; cancel stops power-on, cancels the nodes, releases the turn', async (tc) => {
  const { lab, t } = env;
  const id = 'pxeflow/ctl-b';
  const h = await start('ctl-b', [5, 6, 7, 8], { interval: '20s', maxBooting: 50 });
  await until('node 5 seen on DHCP', async () => (await h.query<TableView>('table')).controller.length === 1);

  await tc.test('the live view counts nodes by their current boot phase', async () => {
    // the parent keeps only the table (boot phases go to the node workflows); `pxeflow watch` asks the nodes
    const child = t.client.workflow.getHandle(`${id}/${node(5)}`);
    await until('the live view shows node 5 in its current phase past DHCP', async () => {
      const snap = await poll(t.client, id);
      const v = await child.query<NodeTimeline>('timeline');
      const phases = snap.progress?.phases ?? {};
      return (
        !['power-on', 'dhcp'].includes(v.phase) && phases[v.phase] === 1 && Object.keys(phases).length === 1
      );
    });
  });

  const pause = await temporalCli(['workflow', 'update', 'execute', '--workflow-id', id, '--name', 'pause']);
  assert.equal(pause.exitCode, 0, pause.stderr);
  const query = await temporalCli([
    'workflow',
    'query',
    '--workflow-id',
    id,
    '--name',
    'progress',
    '-o',
    'json',
  ]);
  assert.equal(query.exitCode, 0, query.stderr);
  assert.match(query.stdout, /"paused":\s*true/);
  assert.match(query.stdout, /"state":\s*"powering-on"/);
  const pace = ['workflow', 'update', 'execute', '--workflow-id', id, '--name', 'setPace'];
  const setPace = await temporalCli([...pace, '--input', '{"intervalMs":60000}', '-o', 'json']);
  assert.equal(setPace.exitCode, 0, setPace.stderr);
  assert.match(setPace.stdout, /"intervalMs":\s*60000/);
  const badPace = await temporalCli([...pace, '--input', '{"maxBooting":0}']);
  assert.notEqual(badPace.exitCode, 0);
  assert.match(badPace.stderr + badPace.stdout, /maxBooting must be an integer between 1 and 10000/);
  const resume = await temporalCli([
    'workflow',
    'update',
    'execute',
    '--workflow-id',
    id,
    '--name',
    'resume',
  ]);
  assert.equal(resume.exitCode, 0, resume.stderr);
  const again = await temporalCli(['workflow', 'update', 'execute', '--workflow-id', id, '--name', 'resume']);
  assert.notEqual(again.exitCode, 0);
  assert.match(again.stderr + again.stdout, /the install is not paused/);

  // cancel while node 5 installs and nodes 6–8 wait for their turn
  const cancel = await temporalCli(['workflow', 'cancel', '--workflow-id', id]);
  assert.equal(cancel.exitCode, 0, cancel.stderr);
  await assert.rejects(h.result(), (err: unknown) => {
    assert.ok(err instanceof WorkflowFailedError);
    assert.equal(err.cause?.name, 'CancelledFailure');
    return true;
  });
  await until('node 5’s workflow cancelled', async () => {
    const d = await t.client.workflow.getHandle(`${id}/${node(5)}`).describe();
    return d.status.name === 'CANCELLED';
  });
  await sleep(2000);
  for (const i of [6, 7, 8])
    assert.deepEqual(await bmcLog(lab, i), [], `${node(i)} was commanded after cancel`);
  // a node already powered on is left as it is: no power-off command reached its BMC
  assert.ok(
    !(await bmcLog(lab, 5)).some((e) => e.op === 'power' && e.value === '0'),
    'node 5 was powered off',
  );
  // …and it goes on installing on its own; its status callback reaches no workflow
  const out = await until('node 5’s installer ended', async () => {
    const text = await readFile(lab.bmcs.bmcs[4].nodeLogPath, 'utf8');
    return /installed; rebooting|install failed/.test(text) && text;
  });
  await tc.test('a cancelled node’s status callback gets a final answer, not 503 retries', () => {
    // cancelling revokes the node's token: its callback is refused at once (403) instead of retried in vain
    assert.doesNotMatch(out, /503 Service Unavailable/);
    assert.match(out, /install failed|installed; rebooting/);
  });

  // the power-on turn was released: the next install on this controller powers on at once
  const next = await start('ctl-c', [6], { interval: '0s', maxBooting: 50 });
  const report = (await next.result()) as ClusterReport;
  assert.equal(report.counts.success, 1, JSON.stringify(report.nodes));
  assert.equal((await powerOns(lab, 6)).length, 1);
});
