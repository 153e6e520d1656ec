// `pxeflow install … --json` against the lab (real dev server, controller with dnsmasq/TFTP/HTTP, ipmi_sim
// BMCs, simulated nodes): follows the install to its final report; then the report exports from the real
// workflow result go through their consumers (dnsmasq --test, YAML) and status/table read the closed install.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { pino } from 'pino';
import { parse } from 'yaml';
import { DETAIL_MAX } from '../../config/capacity.ts';
import { type Lab, startLab } from '../../lab/lab.ts';
import type { ClusterReport } from '../../workflows/messages.ts';
import { startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';
import { pxeflow } from './run.ts';

let t: TestTemporal;
let dir: string;
let lab: Lab | undefined;
const logger = pino({ level: process.env.PXEFLOW_TEST_LOG ?? 'silent' });

before(async () => {
  t = await startTestTemporal();
  dir = await mkdtemp(join(tmpdir(), 'pxeflow-cli-lab-'));
  await chmod(dir, 0o711); // dnsmasq (unprivileged) must reach its files below
});
after(async () => {
  await lab?.stop();
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

const LONG_REASON = `disk sdz not found ${'(no such device) '.repeat(20)}`.trim();

const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test('install --json follows a lab install to its final report; the exports come from the real result', async () => {
  const name = `clilab${process.pid % 10000}`;
  const taskQueue = `cli-lab-${process.pid}`;
  const stateDir = join(dir, name);
  lab = await startLab({
    nodes: 3,
    // a long reason: the install's own state keeps DETAIL_MAX characters of it, the node's workflow all of it
    behaviours: { '2': `fail:${LONG_REASON}` },
    attempts: 1,
    // paced, so the install outlasts a few of the CLI's 1 s progress polls (a 3-node install takes ~3 s)
    power: { interval: '1s' },
    timeouts: { install: '60s', dhcpSeen: '60s' },
    stateDir,
    temporal: { address: t.endpoint.address, namespace: t.endpoint.namespace, client: t.client },
    taskQueue,
    logger,
    clusterName: name,
  });
  const specFile = join(dir, `${name}.json`);
  await writeFile(specFile, JSON.stringify(lab.spec, null, 2));
  const cli = ['--address', t.endpoint.address];

  const v = await pxeflow(['validate', specFile]);
  assert.equal(v.exitCode, 0, v.all);

  const r = await pxeflow([...cli, 'install', specFile, '--task-queue', taskQueue, '--json'], {
    timeoutMs: 240_000,
  });
  const lines = jsonLines(r.stdout);
  assert.equal(r.exitCode, 1, `one node fails → exit 1\n${r.all}`);
  assert.equal(lines[0].type, 'started');
  const progress = lines.filter((l) => l.type === 'progress');
  assert.ok(progress.length >= 1, 'progress records while it runs');
  assert.ok(
    progress.some((p) => (p.progress as { started: number } | undefined)?.started),
    `progress shows nodes being started:\n${r.stdout.slice(0, 4000)}`,
  );
  const last = lines.at(-1)!;
  assert.equal(last.type, 'report', r.stdout);
  const report = last.report as ClusterReport;
  const byName = new Map(report.nodes.map((n) => [n.node, n]));
  const nodes = JSON.stringify(report.nodes, null, 1);
  assert.equal(byName.get(`${name}-001`)?.outcome, 'success', nodes);
  assert.equal(byName.get(`${name}-002`)?.outcome, 'failure', nodes);
  assert.equal(byName.get(`${name}-003`)?.outcome, 'success', nodes);
  const detail = byName.get(`${name}-002`)?.detail ?? '';
  assert.equal(detail.length, DETAIL_MAX, detail);
  assert.ok(detail.startsWith('disk sdz not found (no such device)') && detail.endsWith('…'), detail);
  const child = await t.client.workflow.getHandle(`pxeflow/${name}/${name}-002`).result();
  assert.equal((child as { detail?: string }).detail, LONG_REASON);
  assert.ok(!r.stdout.includes(process.env[lab.secretEnv.bmcPassword]!), 'the BMC password never shows');

  // the exports, from the workflow result
  const dnsmasq = await pxeflow([...cli, 'report', name, '--format', 'dnsmasq']);
  assert.equal(dnsmasq.exitCode, 1);
  for (const i of [1, 3]) {
    const n = byName.get(`${name}-00${i}`)!;
    assert.match(
      dnsmasq.stdout,
      new RegExp(`^dhcp-host=${lab.network.nodes[i - 1].mac},${n.dhcpIp},${name}-00${i}$`, 'm'),
    );
  }
  assert.doesNotMatch(dnsmasq.stdout, new RegExp(`${name}-002`));
  const conf = join(dir, 'reservations.conf');
  await writeFile(conf, dnsmasq.stdout);
  const check = await execa('dnsmasq', ['--test', `--conf-file=${conf}`], { reject: false, all: true });
  assert.equal(check.exitCode, 0, check.all);

  const ansible = await pxeflow([...cli, 'report', name, '--format', 'ansible']);
  const inv = parse(ansible.stdout);
  assert.deepEqual(Object.keys(inv.all.hosts).sort(), [`${name}-001`, `${name}-003`]);
  assert.equal(inv.all.hosts[`${name}-001`].ansible_host, byName.get(`${name}-001`)?.dhcpIp);

  // watch on the finished install: the final report as a plain table, no colours without a TTY
  const watch = await pxeflow([...cli, 'watch', name]);
  assert.equal(watch.exitCode, 1, watch.all);
  assert.match(watch.stdout, new RegExp(`^${name}-002\\s+\\S+\\s+\\S+\\s+\\S+\\s+failure`, 'm'));
  assert.match(watch.stdout, /not every node was installed/);
  assert.doesNotMatch(watch.stdout, /\x1b\[/);

  // status and table of the closed install
  const st = await pxeflow([...cli, 'status', name]);
  assert.equal(st.exitCode, 1, st.all);
  assert.match(st.stdout, /success 2 · failure 1/);
  const table = await pxeflow([...cli, 'table', name, '--json']);
  assert.equal(table.exitCode, 0, table.all);
  const view = JSON.parse(table.stdout) as {
    released: Array<{ node: string; bmcIp: string; dhcpIp: string }>;
  };
  assert.ok(
    view.released.some((e) => e.node === `${name}-001` && e.dhcpIp === byName.get(`${name}-001`)?.dhcpIp),
  );
});
