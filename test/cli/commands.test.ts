// The command as a subprocess, without Temporal: help for every command, init → validate round trip, validate
// listing every error with its path, usage errors, and exit 3 against an unreachable Temporal.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parse } from 'yaml';
import { buildProgram } from '../../cli/main.ts';
import { parseClusterSpec } from '../../config/schema.ts';
import { pxeflow } from './run.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pxeflow-cli-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every command path: ['init'], ['images', 'prepare'], … */
function commandPaths(): string[][] {
  const out: string[][] = [];
  const walk = (cmd: ReturnType<typeof buildProgram>, prefix: string[]) => {
    for (const c of cmd.commands) {
      out.push([...prefix, c.name()]);
      walk(c, [...prefix, c.name()]);
    }
  };
  walk(buildProgram(), []);
  return out;
}

test('--help of the program and of every command exits 0 and shows an example', async () => {
  const paths = commandPaths();
  for (const name of [
    'init',
    'validate',
    'discover',
    'images',
    'install',
    'watch',
    'status',
    'table',
    'report',
  ]) {
    assert.ok(
      paths.some((p) => p.join(' ') === name),
      `missing command ${name}`,
    );
  }
  for (const name of ['retry', 'skip', 'pause', 'resume', 'pace', 'cancel', 'worker', 'images prepare']) {
    assert.ok(
      paths.some((p) => p.join(' ') === name),
      `missing command ${name}`,
    );
  }
  const top = await pxeflow(['--help']);
  assert.equal(top.exitCode, 0);
  assert.match(top.stdout, /Examples:\n {2}\$ pxeflow init/);
  assert.match(top.stdout, /Exit codes:/);
  // two at a time: each is a node process
  for (let i = 0; i < paths.length; i += 2) {
    await Promise.all(
      paths.slice(i, i + 2).map(async (p) => {
        const r = await pxeflow([...p, '--help']);
        assert.equal(r.exitCode, 0, `${p.join(' ')} --help: ${r.all}`);
        assert.match(r.stdout, new RegExp(`Usage: pxeflow ${p.join(' ')}`), p.join(' '));
        assert.match(r.stdout, /Examples:\n[\s\S]*\$ pxeflow /, `${p.join(' ')} --help shows no example`);
      }),
    );
  }
});

test('init writes a spec that validates (exit 0) and round-trips through the schema', async () => {
  const file = join(dir, 'ceph-a.yaml');
  const args = [
    'init',
    '--ipmi-subnet',
    '10.10.0.0/24',
    '--ip-subnet',
    '10.20.0.0/24',
    '--iso',
    'storageos-7.9',
  ];
  const r = await pxeflow([...args, '--name', 'ceph-a', '--credentials-env', 'CEPH_A_BMC', '-o', file]);
  assert.equal(r.exitCode, 0, r.all);
  const text = await readFile(file, 'utf8');
  assert.match(text, /^# pxeflow cluster spec/m, 'the spec is commented');

  // stdout form is the same document
  const stdout = await pxeflow([...args, '--name', 'ceph-a', '--credentials-env', 'CEPH_A_BMC']);
  assert.equal(stdout.exitCode, 0);
  assert.equal(stdout.stdout.trimEnd(), text.trimEnd());

  const v = await pxeflow(['validate', file]);
  assert.equal(v.exitCode, 0, v.all);
  assert.match(v.stdout, /cluster ceph-a: spec OK/);
  assert.match(v.stdout, /discover in 10\.10\.0\.0\/24/);
  assert.match(v.stdout, /storageos-7\.9/);
  assert.match(v.stdout, /ETA\s+≥ /);

  const j = await pxeflow(['validate', file, '--json']);
  assert.equal(j.exitCode, 0);
  const summary = JSON.parse(j.stdout);
  assert.equal(summary.valid, true);
  assert.equal(summary.cluster, 'ceph-a');
  assert.equal(summary.image.version, 'storageos-7.9');
  assert.equal(summary.nodes.mode, 'discover');
  assert.equal(summary.pacing.intervalMs, 5000);
  // discovery: up to 127 nodes (the range size), one every 5 s → 126 × 5 s until the last power-on
  assert.equal(summary.nodes.maxNodes, 127);
  assert.equal(summary.eta.powerOnMs, 126 * 5000);

  // round trip: the normalised spec parses again to itself, and carries the values given
  const spec = parseClusterSpec(parse(text));
  assert.deepEqual(parseClusterSpec(JSON.parse(JSON.stringify(spec))), spec);
  assert.equal(spec.ipmi.passwordEnv, 'CEPH_A_BMC');
  assert.equal(spec.network.subnet, '10.20.0.0/24');

  // refuses to overwrite without --force
  const again = await pxeflow([...args, '-o', file]);
  assert.equal(again.exitCode, 2);
  assert.match(again.stderr, /exists; pass --force/);
  const forced = await pxeflow([...args, '--name', 'ceph-b', '-o', file, '--force']);
  assert.equal(forced.exitCode, 0, forced.all);
  assert.match(await readFile(file, 'utf8'), /name: "ceph-b"/);
});

test('init names the bad flag and exits 2', async () => {
  const r = await pxeflow([
    'init',
    '--ipmi-subnet',
    '10.10.0.0/24',
    '--ip-subnet',
    '10.10.0.0/25',
    '--iso',
    'x',
  ]);
  assert.equal(r.exitCode, 2);
  assert.match(r.stderr, /--ip-subnet: .*overlaps/);
  const missing = await pxeflow(['init', '--ipmi-subnet', '10.10.0.0/24']);
  assert.equal(missing.exitCode, 2);
  assert.match(missing.stderr, /required option '--ip-subnet/);
});

const BROKEN = `apiVersion: pxeflow/v1
name: Bad_Name
iso:
  version: storageos-7.9
ipmi:
  subnet: 10.10.0.0/24
  username: admin
  passwordEnv: BMC_PW
network:
  interface: br-prov
  subnet: 10.20.0.0/24
  controller: 10.20.0.1
  range: { start: 10.20.0.100, end: 10.20.0.199 }
  dhcpMod: proxy
nodes:
  - name: stor-001
    bmc: 10.10.0.11
    mac: zz:00
  - name: stor-002
    bmc: 10.10.0.12
timeouts:
  install: 20
`;

test('validate on a broken file prints every error with its path and line, and exits 2', async () => {
  const file = join(dir, 'broken.yaml');
  await writeFile(file, BROKEN);
  const r = await pxeflow(['validate', file]);
  assert.equal(r.exitCode, 2, r.all);
  assert.match(r.stderr, /invalid cluster spec .*broken\.yaml: 4 problems/);
  assert.match(r.stderr, /^ {2}name: must be a DNS label.*\(line 2, column 1\)$/m);
  assert.match(r.stderr, /^ {2}network\.dhcpMod: unknown key \(did you mean "dhcpMode"\?\)/m);
  assert.match(r.stderr, /^ {2}nodes\[0\]\.mac: .*not a MAC address.*\(line 18/m);
  assert.match(r.stderr, /^ {2}timeouts\.install: /m);
  assert.equal(r.stdout, '', 'no summary for a broken spec');

  const j = await pxeflow(['validate', file, '--json']);
  assert.equal(j.exitCode, 2);
  const res = JSON.parse(j.stdout);
  assert.equal(res.valid, false);
  assert.deepEqual(res.issues.map((i: { path: string }) => i.path).sort(), [
    'name',
    'network.dhcpMod',
    'nodes[0].mac',
    'timeouts.install',
  ]);

  const syntax = join(dir, 'syntax.yaml');
  await writeFile(syntax, 'name: [unclosed\n');
  const s = await pxeflow(['validate', syntax]);
  assert.equal(s.exitCode, 2);
  assert.match(s.stderr, /syntax error/);

  const none = await pxeflow(['validate', join(dir, 'nope.yaml')]);
  assert.equal(none.exitCode, 2);
  assert.match(none.stderr, /no such file/);
});

test('usage errors exit 2', async () => {
  for (const args of [
    ['bogus'],
    ['validate'],
    ['report', 'x', '--format', 'xml'],
    ['pace', 'x'],
    ['retry', 'x'],
  ]) {
    const r = await pxeflow(['--address', '127.0.0.1:1', ...args]);
    assert.equal(
      r.exitCode,
      args[0] === 'pace' || args[0] === 'retry' ? 3 : 2,
      `${args.join(' ')}: ${r.all}`,
    );
  }
});

test('status and watch against an unreachable Temporal exit 3 quickly, naming the address', async () => {
  // a port that refuses, and one that accepts TCP but never speaks gRPC
  const silent: Server = createServer(() => {});
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const silentPort = (silent.address() as { port: number }).port;
  try {
    for (const args of [
      ['status'],
      ['status', 'ceph-a'],
      ['watch', 'ceph-a'],
      ['watch', '--json'],
      ['report', 'ceph-a'],
    ]) {
      const started = Date.now();
      const r = await pxeflow(['--address', '127.0.0.1:1', ...args], { timeoutMs: 30_000 });
      assert.equal(r.exitCode, 3, `${args.join(' ')}: ${r.all}`);
      assert.match(r.stderr, /cannot reach Temporal at 127\.0\.0\.1:1: connection refused/);
      assert.ok(Date.now() - started < 20_000, `${args.join(' ')} took ${Date.now() - started} ms`);
    }
    const r = await pxeflow(['--address', `127.0.0.1:${silentPort}`, 'status'], {
      env: { PXEFLOW_CONNECT_TIMEOUT_MS: '1500' },
      timeoutMs: 30_000,
    });
    assert.equal(r.exitCode, 3, r.all);
    assert.match(r.stderr, new RegExp(`cannot reach Temporal at 127\\.0\\.0\\.1:${silentPort}`));
    // TEMPORAL_ADDRESS is honoured when no flag is given
    const env = await pxeflow(['status'], { env: { TEMPORAL_ADDRESS: '127.0.0.1:1' } });
    assert.equal(env.exitCode, 3);
    assert.match(env.stderr, /127\.0\.0\.1:1/);
  } finally {
    silent.close();
  }
});
