// One lab install under every kind of trouble that does not need a crash: faulty BMCs (unreachable, slow,
// wrong password, flapping), forged/replayed/oversized status POSTs, traversal on the controller's HTTP
// address, junk DHCP packets at its dnsmasq, junk cluster specs through the Temporal client — while every
// process's command line is sampled, the controller logs at debug and every workflow history is read back
// for secrets. Then isolation: other networks and unknown MACs get no lease, services bind one address.
// The tests share the lab and run in order (the first ones act during the install, the last ones after it).
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type WorkflowHandle, WorkflowFailedError } from '@temporalio/client';
import { execa } from 'execa';
import fc from 'fast-check';
import { pino } from 'pino';
import { type Lab, startLab } from '../../lab/lab.ts';
import { processTree } from '../../lab/net/process-tree.ts';
import { createProvisioningNetwork } from '../../lab/network.ts';
import { sequencerWorkflowId } from '../../workflows/power-sequencer.ts';
import type { ClusterReport, NodeResult } from '../../workflows/messages.ts';
import { udhcpc } from '../dhcp/clients.ts';
import { startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';
import { startUdpFlapProxy, type UdpFlapProxy } from '../helpers/udp-flap-proxy.ts';
import { powerOns, sleep, startInstall } from './fixture.ts';
import { historyTexts, secretHits, startCmdlineSampler } from './secrets.ts';
import { dhcpJunk, dhcpMessage, get, post, rawHttp, sendFromNamespace } from './wire.ts';

const NAME = 'fire';
const QUEUE = 'fire';
// 1 ok · 2 BMC unreachable · 3 BMC slow · 4 wrong BMC password · 5 BMC flapping · 6 installer hangs · 7 ok ·
// 8 install fails
const node = (i: number) => `${NAME}-00${i}`;
let t: TestTemporal;
let dir: string;
let lab: Lab;
let flap: UdpFlapProxy;
let handle: WorkflowHandle;
let result: Promise<ClusterReport>;
let sampler: ReturnType<typeof startCmdlineSampler>;
const startedAt = Date.now();

before(async () => {
  t = await startTestTemporal();
  dir = await mkdtemp(join(tmpdir(), 'pxeflow-fire-'));
  await chmod(dir, 0o711);
  sampler = startCmdlineSampler();
  lab = await startLab({
    nodes: 8,
    behaviours: { '6': 'hang', '8': 'fail:disk sda not found' },
    bmcFaults: { '2': { unreachable: true }, '3': { delayMs: 250 } },
    wrongPassword: ['4'],
    stateDir: join(dir, 'lab'),
    temporal: { address: t.endpoint.address, namespace: t.endpoint.namespace, client: t.client },
    taskQueue: QUEUE,
    logger: pino({ level: 'debug' }), // the controller child logs everything it can to its log file
    clusterName: NAME,
    controllerProcess: true,
    installSeconds: 2,
    power: { interval: '0s' },
    timeouts: { install: '25s', dhcpSeen: '30s' },
    attempts: 2,
  });
  // node 5's BMC flaps: the spec points at a relay in front of it that drops everything while "down"
  const b5 = lab.bmcs.bmcs[4];
  flap = await startUdpFlapProxy({ address: b5.address, targetPort: b5.port, upMs: 4000, downMs: 1500 });
  const spec = structuredClone(lab.spec) as typeof lab.spec & { nodes: Array<{ bmcPort?: number }> };
  spec.nodes[4].bmcPort = flap.port;
  handle = await startInstall(t.client, lab, QUEUE, spec);
  result = handle.result() as Promise<ClusterReport>;
  result.catch(() => {});
});

after(async () => {
  await sampler?.stop();
  await flap?.close();
  await lab?.stop();
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

const http = () => ({ host: lab.network.controller, port: lab.spec.network.httpPort as number });
const hostHeader = () => `${http().host}:${http().port}`;

/** The kickstart URL a node fetched (its own log), hence its node name and token. */
async function tokenOf(i: number): Promise<string> {
  const text = await readFile(lab.bmcs.bmcs[i - 1].nodeLogPath, 'utf8');
  const m = [...text.matchAll(/\/ks\/([^/\s]+)\/([0-9a-f]{16,})/g)].at(-1);
  assert.ok(m, `no kickstart URL in ${node(i)}'s log`);
  return m[2];
}

async function waitFor(what: string, fn: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

test("forged statuses while a node installs: another node's token, wrong token, oversized → refused, no effect", async () => {
  // node 6 hangs in its installer with a valid token: the moment a forged "success" would count
  await waitFor(
    `${node(6)} to hang`,
    async () =>
      /hanging on purpose/.test(await readFile(lab.bmcs.bmcs[5].nodeLogPath, 'utf8').catch(() => '')),
    90_000,
  );
  const token6 = await tokenOf(6);
  const { host, port } = http();
  const ok = JSON.stringify({ outcome: 'success', detail: 'forged' });
  const cases: Array<[string, Buffer, number]> = [
    ["another node's token", post(`/status/${NAME}.${node(7)}/${token6}`, hostHeader(), ok), 403],
    ['a wrong token', post(`/status/${NAME}.${node(6)}/${'0'.repeat(64)}`, hostHeader(), ok), 403],
    ['a token prefix', post(`/status/${NAME}.${node(6)}/${token6.slice(0, 32)}`, hostHeader(), ok), 403],
    ['an unknown node', post(`/status/nobody/${token6}`, hostHeader(), ok), 403],
    [
      'oversized (1 MiB)',
      post(
        `/status/${NAME}.${node(6)}/${token6}`,
        hostHeader(),
        `{"outcome":"success","detail":"${'x'.repeat(1 << 20)}"}`,
      ),
      413,
    ],
    [
      'a lying Content-Length',
      post(`/status/${NAME}.${node(6)}/${token6}`, hostHeader(), ok, { 'Content-Length': '999999999' }),
      413,
    ],
    [
      'form-encoded',
      post(`/status/${NAME}.${node(6)}/${token6}`, hostHeader(), 'outcome=success', {
        'Content-Type': 'application/x-www-form-urlencoded',
      }),
      415,
    ],
    [
      'text/plain',
      post(`/status/${NAME}.${node(6)}/${token6}`, hostHeader(), 'outcome=success', {
        'Content-Type': 'text/plain',
      }),
      400,
    ],
    ['broken JSON', post(`/status/${NAME}.${node(6)}/${token6}`, hostHeader(), '{"outcome":"succ'), 400],
    [
      'a bad outcome',
      post(`/status/${NAME}.${node(6)}/${token6}`, hostHeader(), '{"outcome":"installed"}'),
      400,
    ],
  ];
  for (const [what, req, want] of cases) {
    const r = await rawHttp(host, port, req);
    assert.equal(r.status, want, `${what}: HTTP ${r.status} ${r.body.slice(0, 200)}`);
    if (want !== 403) assert.match(r.body, /"error":"[^"]{4,}/, `${what}: no reason given`);
    assert.ok(!r.body.includes(token6), `${what}: the answer echoes the token`);
  }
});

test('faulty BMCs: bounded, the right error per node, wrong password never retried, the rest unaffected', async () => {
  const report = await result;
  const r = new Map<string, NodeResult>(report.nodes.map((n) => [n.node, n]));
  const at = (i: number) => r.get(node(i))!;
  for (const i of [1, 3, 7]) assert.equal(at(i).outcome, 'success', `${node(i)}: ${JSON.stringify(at(i))}`);
  assert.equal(at(2).outcome, 'power-error');
  assert.match(at(2).detail ?? '', /BmcUnreachableError/);
  assert.equal(at(4).outcome, 'power-error');
  assert.match(at(4).detail ?? '', /BmcAuthError/);
  assert.equal(at(6).outcome, 'timeout');
  assert.equal(at(6).attempts, 2);
  assert.equal(at(8).outcome, 'failure');
  assert.match(at(8).detail ?? '', /disk sda not found/);
  // the flapping BMC really flapped under the calls, and the node got through it
  assert.ok(
    flap.dropped > 0 && flap.relayed > 0,
    `flap proxy: ${flap.dropped} dropped, ${flap.relayed} relayed`,
  );
  assert.equal(at(5).outcome, 'success', `flapping BMC: ${JSON.stringify(at(5))}`);
  // bounded: an unreachable BMC is given up within a minute and a half of its first power-on attempt
  const gaveUp = at(2).phases['power-error'] - at(2).phases['power-on'];
  assert.ok(gaveUp < 90_000, `unreachable BMC given up after ${gaveUp} ms`);
  console.log(
    `# unreachable BMC given up after ${gaveUp} ms; flap proxy dropped ${flap.dropped}, relayed ${flap.relayed}`,
  );
  // wrong password: never commanded, one activity attempt, one node attempt (no retry of a password)
  assert.equal((await lab.bmcs.bmcs[3].powerLog()).length, 0, 'the wrong-password BMC was commanded');
  assert.equal(at(4).attempts, 1);
  const h4 = await t.client.workflow.getHandle(`pxeflow/${NAME}/${node(4)}`).fetchHistory();
  const starts = (h4.events ?? []).filter((e) => e.activityTaskStartedEventAttributes);
  assert.deepEqual(
    starts.map((e) => e.activityTaskStartedEventAttributes?.attempt),
    starts.map(() => 1),
    'an activity of the wrong-password node was retried',
  );
  // nothing was powered on more often than its attempts
  for (let i = 1; i <= 8; i++) assert.ok((await powerOns(lab, i - 1)).length <= at(i).attempts, node(i));
});

test('replayed statuses after success are refused and change nothing', async () => {
  await result;
  const stateFile = join(dir, 'lab', 'controller', 'netboot-state.json');
  const before = await readFile(stateFile, 'utf8');
  const token1 = await tokenOf(1);
  const { host, port } = http();
  for (const outcome of ['success', 'failure']) {
    const req = post(`/status/${NAME}.${node(1)}/${token1}`, hostHeader(), JSON.stringify({ outcome }));
    assert.equal((await rawHttp(host, port, req)).status, 403, `replayed ${outcome}`);
  }
  // the old kickstart and iPXE URLs are dead too
  assert.equal(
    (await rawHttp(host, port, get(`/ks/${NAME}.${node(1)}/${token1}`, hostHeader()))).status,
    403,
  );
  assert.equal(await readFile(stateFile, 'utf8'), before, 'the controller state changed');
  const tl = await t.client.workflow
    .getHandle(`pxeflow/${NAME}/${node(1)}`)
    .query<{ outcome?: string }>('timeline');
  assert.equal(tl.outcome, 'success');
});

test('traversal and junk paths on the controller HTTP address: 4xx, never a file outside the image', async () => {
  await result;
  const { host, port } = http();
  const version = lab.spec.iso.version;
  const passwd = await readFile('/etc/passwd', 'utf8');
  const fixed = [
    `/image/${version}/../../../../../etc/passwd`,
    `/image/${version}/%2e%2e/%2e%2e/%2e%2e/etc/passwd`,
    `/image/${version}/%252e%252e/%252e%252e/etc/passwd`,
    `/image/${version}/..%2f..%2f..%2fetc%2fpasswd`,
    `/image/${version}/....//....//etc/passwd`,
    `/image/${version}/%00/etc/passwd`,
    `/image/..%5c..%5c..%5cetc%5cpasswd`,
    `/image/${version}//etc/passwd`,
    '/../../etc/passwd',
    `/image/${version}/${'a/'.repeat(4000)}`,
  ];
  const segment = fc.oneof(
    fc.constantFrom('..', '.', '%2e%2e', '%2f', '%00', 'etc', 'passwd', '', '~'),
    fc.string({ maxLength: 8 }),
  );
  const random = fc
    .sample(fc.array(segment, { minLength: 1, maxLength: 12 }), { numRuns: 150, seed: 11 })
    .map((segs) => `/image/${version}/${segs.map((s) => s.replace(/[\s\x00-\x1f\x7f]/g, '_')).join('/')}`);
  for (const path of [...fixed, ...random]) {
    const r = await rawHttp(host, port, get(path, hostHeader()));
    // 200 only for a path that normalises to a file inside the image
    assert.ok((r.status >= 400 && r.status < 500) || r.status === 200, `${path}: HTTP ${r.status}`);
    assert.ok(!r.body.includes(passwd.slice(0, 30)), `${path} served /etc/passwd`);
  }
  // the service is still there and serves the image
  assert.equal((await rawHttp(host, port, get(`/image/${version}/.treeinfo`, hostHeader()))).status, 200);
});

test('junk DHCP packets at the lab dnsmasq: no crash, no address for an unknown MAC, real leases afterwards', async () => {
  await result;
  const dnsmasqBefore = await dnsmasqPid();
  assert.ok(dnsmasqBefore, 'no dnsmasq under the controller');
  const [junkNode] = await lab.network.addNodes(1);
  const mac = Buffer.from(junkNode.mac.split(':').map((h) => Number.parseInt(h, 16)));
  // an unlisted MAC outside a discovery window: a real client gets nothing
  assert.equal(await udhcpc(junkNode.ns, [], 2), undefined, 'dnsmasq answered an unknown MAC');
  const base = lab.network.controller.split('.').slice(0, 3).join('.');
  await execa('ip', ['-n', junkNode.ns, 'addr', 'add', `${base}.95/24`, 'dev', 'eth0']);
  const packets = fc.sample(dhcpJunk(mac), { numRuns: 400, seed: 7 });
  // and well-formed messages of every type from the unknown MAC, incl. a REQUEST for node 1's reserved IP
  const reserved = (lab.spec.nodes as Array<{ ip: string }>)[0].ip;
  const ip = Buffer.from(reserved.split('.').map(Number));
  for (let type = 1; type <= 8; type++)
    packets.push(
      dhcpMessage({
        type,
        mac,
        options: [
          [50, ip],
          [54, Buffer.from(lab.network.controller.split('.').map(Number))],
        ],
      }),
    );
  const sent = await sendFromNamespace(
    junkNode.ns,
    packets,
    [lab.network.controller, `${base}.255`],
    join(dir, 'junk.json'),
  );
  assert.equal(sent.sent, packets.length * 2);
  assert.deepEqual(sent.offers, [], 'dnsmasq offered an address to the unknown MAC');
  assert.equal(await dnsmasqPid(), dnsmasqBefore, 'dnsmasq died (and was restarted) under junk');
  // a real client with a reserved MAC still gets its lease
  const lease = await udhcpc(lab.network.nodes[0].ns, [], 3);
  assert.equal(lease?.ip, reserved);
});

test('isolation: no lease on another network even for a reserved MAC; TFTP/HTTP bound to the provisioning address', async () => {
  await result;
  const other = await createProvisioningNetwork({});
  try {
    const [n] = await other.addNodes(1);
    await execa('ip', ['-n', n.ns, 'link', 'set', 'eth0', 'address', lab.network.nodes[0].mac]);
    assert.equal(await udhcpc(n.ns, [], 2), undefined, 'dnsmasq answered on another interface');
  } finally {
    await other.destroy();
  }
  const pids = new Set(await processTree(lab.controller.pid!));
  const { stdout } = await execa('ss', ['-H', '-lntup']);
  const ours = stdout
    .split('\n')
    .filter((l) => [...l.matchAll(/pid=(\d+)/g)].some((m) => pids.has(Number(m[1]))));
  assert.ok(ours.length >= 3, `expected HTTP, TFTP and DHCP sockets of the controller:\n${ours.join('\n')}`);
  for (const l of ours) {
    const local = l.trim().split(/\s+/)[4];
    const ok = local.startsWith(`${lab.network.controller}:`) || local.includes(`%${lab.network.bridge}:`);
    assert.ok(ok, `a controller socket not bound to the provisioning address or interface: ${l}`);
  }
});

test('junk cluster specs through the Temporal client: InvalidClusterSpec, nothing powered on', async () => {
  await result;
  const powerBefore = await Promise.all(lab.bmcs.bmcs.map((b) => b.powerLog().then((l) => l.length)));
  const valid = lab.specFor('junk', [1]) as unknown as Record<string, unknown>;
  const junk: unknown[] = [
    null,
    'rm -rf /',
    [],
    { ...valid, apiVersion: 'pxeflow/v0' },
    { ...valid, iso: { version: '../../../etc/passwd' } },
    { ...valid, nodes: [{ name: 'n1\nPXE', bmc: '127.0.0.1' }] },
    { ...valid, ipmi: { ...(valid.ipmi as object), password: 'in-clear' } },
    { ...valid, network: { ...(valid.network as object), interface: 'eth0; reboot' } },
    { ...valid, name: 'x'.repeat(100_000) },
  ];
  for (const [i, spec] of junk.entries()) {
    const h = await t.client.workflow.start('ClusterInstall', {
      taskQueue: QUEUE,
      workflowId: `pxeflow/junk-${i}`,
      args: [spec],
    });
    await assert.rejects(h.result(), (err: unknown) => {
      assert.ok(err instanceof WorkflowFailedError, String(err));
      assert.equal(
        (err.cause as { type?: string }).type,
        'InvalidClusterSpec',
        `junk #${i}: ${(err.cause as Error).message}`,
      );
      return true;
    });
  }
  const powerAfter = await Promise.all(lab.bmcs.bmcs.map((b) => b.powerLog().then((l) => l.length)));
  assert.deepEqual(powerAfter, powerBefore, 'a junk spec powered something');
});

test('secrets: no BMC password or root hash in any command line, log line, state file or workflow history', async () => {
  await result;
  const samples = await sampler.stop();
  const secrets = [process.env[lab.secretEnv.bmcPassword]!, process.env[lab.secretEnv.rootHash]!];
  assert.ok(secrets.every((s) => s && s.length >= 16));
  assert.ok(
    samples.commands.has('ipmitool') && samples.commands.has('dnsmasq'),
    `the sampler saw ${[...samples.commands]}`,
  );
  assert.deepEqual(secretHits(samples.texts, secrets), [], 'a secret on a command line');
  console.log(`# cmdline sampler: ${samples.sweeps} sweeps, ${samples.texts.size} distinct command lines`);

  const logs = new Map<string, string>();
  const labDir = join(dir, 'lab');
  logs.set('controller.log', await readFile(join(labDir, 'controller.log'), 'utf8'));
  logs.set('temporal.log', await readFile(join(t.dir, 'temporal.log'), 'utf8').catch(() => ''));
  for (const b of lab.bmcs.bmcs)
    logs.set(`${b.name} node.out`, await readFile(b.nodeLogPath, 'utf8').catch(() => ''));
  for (const f of await filesUnder(join(labDir, 'controller'))) logs.set(f, await readFile(f, 'utf8'));
  assert.ok(
    (logs.get('controller.log') ?? '').split('\n').length > 50,
    'the controller log is too short to prove anything',
  );
  assert.deepEqual(secretHits(logs, secrets), [], 'a secret in a log or state file');

  const ids = [
    `pxeflow/${NAME}`,
    ...Array.from({ length: 8 }, (_, i) => `pxeflow/${NAME}/${node(i + 1)}`),
    sequencerWorkflowId(QUEUE),
  ];
  const texts = new Map<string, string>();
  for (const id of ids) texts.set(id, (await historyTexts(t.client, id)).join('\n'));
  assert.ok((texts.get(`pxeflow/${NAME}`) ?? '').includes(node(8)), 'history decoding found no payload text');
  assert.deepEqual(secretHits(texts, secrets), [], 'a secret in workflow history');
  console.log(`# lab under fire: ${Math.round((Date.now() - startedAt) / 1000)} s`);
});

async function dnsmasqPid(): Promise<number | undefined> {
  for (const pid of await processTree(lab.controller.pid!)) {
    const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === 'dnsmasq') return pid;
  }
  return undefined;
}

async function filesUnder(d: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(d).catch(() => [] as string[])) {
    const p = join(d, e);
    const s = await stat(p);
    if (s.isDirectory()) out.push(...(await filesUnder(p)));
    else if (s.isFile() && s.size < 10 << 20) out.push(p);
  }
  return out;
}
