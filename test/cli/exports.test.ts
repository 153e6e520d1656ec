// The inventory exports, parsed by real consumers: dnsmasq --test on the reservations, the Ansible inventory as
// YAML, /etc/hosts lines, CSV through Python's csv module; and `pxeflow report --from` as a subprocess.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { execa } from 'execa';
import { parse } from 'yaml';
import {
  CSV_HEADER,
  formatReport,
  REPORT_FORMATS,
  reportExitCode,
  toAnsible,
  toCsv,
  toDhcpd,
  toDnsmasq,
  toHosts,
} from '../../cli/exports.ts';
import type { ClusterReport } from '../../workflows/messages.ts';
import { pxeflow } from './run.ts';

const now = new Date('2026-01-02T03:04:05Z');
const report: ClusterReport = {
  cluster: 'ceph-a',
  isoVersion: 'storageos-7.9',
  startedAt: 1_700_000_000_000,
  finishedAt: 1_700_000_600_000,
  counts: { success: 3, failure: 1, timeout: 0, 'power-error': 1, skipped: 0, cancelled: 0 },
  nodes: [
    {
      node: 'stor-001',
      bmcIp: '10.10.0.11',
      mac: '52:54:00:00:00:01',
      dhcpIp: '10.20.0.101',
      outcome: 'success',
      attempts: 1,
      phases: {},
    },
    {
      node: 'stor-002',
      bmcIp: '10.10.0.12',
      mac: '52:54:00:00:00:02',
      dhcpIp: '10.20.0.102',
      outcome: 'success',
      attempts: 2,
      phases: {},
    },
    {
      node: 'stor-003',
      bmcIp: '10.10.0.13',
      mac: '52:54:00:00:00:03',
      dhcpIp: '10.20.0.103',
      outcome: 'failure',
      detail: 'disk "sda" not found, giving up\nsee log',
      attempts: 2,
      phases: {},
    },
    {
      node: 'stor-004',
      bmcIp: '10.10.0.14',
      outcome: 'power-error',
      detail: 'BmcAuthError',
      attempts: 0,
      phases: {},
    },
    {
      node: 'stor-005',
      bmcIp: '10.10.0.15',
      mac: '52:54:00:00:00:05',
      dhcpIp: '10.20.0.105',
      outcome: 'success',
      attempts: 1,
      phases: {},
    },
  ],
  table: [],
};

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pxeflow-exports-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function dnsmasqTest(text: string): Promise<{ exitCode: number; output: string }> {
  const file = join(dir, `dnsmasq-${Math.random().toString(36).slice(2)}.conf`);
  await writeFile(file, text);
  const r = await execa('dnsmasq', ['--test', `--conf-file=${file}`], { reject: false, all: true });
  return { exitCode: r.exitCode ?? -1, output: r.all ?? '' };
}

test('dnsmasq accepts the reservations (and the check can fail)', async () => {
  const text = toDnsmasq(report, { now });
  const lines = text.split('\n').filter((l) => l.startsWith('dhcp-host='));
  assert.deepEqual(lines, [
    'dhcp-host=52:54:00:00:00:01,10.20.0.101,stor-001',
    'dhcp-host=52:54:00:00:00:02,10.20.0.102,stor-002',
    'dhcp-host=52:54:00:00:00:05,10.20.0.105,stor-005',
  ]);
  const ok = await dnsmasqTest(text);
  assert.equal(ok.exitCode, 0, ok.output);
  assert.match(ok.output, /syntax check OK/);
  // with failed nodes: stor-003 too (stor-004 has no address)
  const all = toDnsmasq(report, { includeFailed: true, now });
  assert.match(all, /dhcp-host=52:54:00:00:00:03,10\.20\.0\.103,stor-003/);
  assert.doesNotMatch(all, /stor-004/);
  assert.equal((await dnsmasqTest(all)).exitCode, 0);
  // the consumer really checks: a broken reservation is refused
  const bad = await dnsmasqTest(text.replace('52:54:00:00:00:01', 'zz:54:00:00:00:01'));
  assert.notEqual(bad.exitCode, 0);
});

test('the Ansible inventory parses as YAML with the installed hosts and their addresses', () => {
  const inv = parse(toAnsible(report, { now }));
  assert.deepEqual(Object.keys(inv.all.hosts), ['stor-001', 'stor-002', 'stor-005']);
  assert.equal(inv.all.hosts['stor-002'].ansible_host, '10.20.0.102');
  assert.equal(inv.all.hosts['stor-002'].pxeflow_bmc, '10.10.0.12');
  assert.equal(inv.all.vars.pxeflow_cluster, 'ceph-a');
  assert.equal(inv.all.vars.pxeflow_iso_version, 'storageos-7.9');
  const withFailed = parse(toAnsible(report, { includeFailed: true, now }));
  assert.equal(withFailed.all.hosts['stor-003'].pxeflow_outcome, 'failure');
});

test('hosts lines: "ip name", or "ip fqdn name" with a domain', () => {
  const lines = toHosts(report, { now })
    .split('\n')
    .filter((l) => l && !l.startsWith('#'));
  assert.deepEqual(lines, ['10.20.0.101\tstor-001', '10.20.0.102\tstor-002', '10.20.0.105\tstor-005']);
  const fq = toHosts(report, { domain: 'stor.example', now });
  assert.match(fq, /^10\.20\.0\.101\tstor-001\.stor\.example\tstor-001$/m);
  // the format /etc/hosts readers expect: an address, then names, whitespace-separated
  for (const l of lines) assert.match(l, /^\d+\.\d+\.\d+\.\d+\s+[a-z0-9-]+$/);
});

test('CSV: a header, every node, quoting that a real CSV reader undoes', async () => {
  const csv = toCsv(report);
  assert.equal(csv.split('\r\n')[0], CSV_HEADER.join(','));
  const file = join(dir, 'report.csv');
  await writeFile(file, csv);
  const py = `import csv, json, sys\nwith open(sys.argv[1], newline='') as f:\n    print(json.dumps(list(csv.DictReader(f))))`;
  const { stdout } = await execa('python3', ['-c', py, file]);
  const rows = JSON.parse(stdout) as Array<Record<string, string>>;
  assert.equal(rows.length, 5);
  assert.deepEqual(Object.keys(rows[0]), [...CSV_HEADER]);
  assert.equal(rows[2].detail, 'disk "sda" not found, giving up\nsee log');
  assert.equal(rows[3].mac, '');
  assert.equal(rows[3].outcome, 'power-error');
});

test('dhcpd host declarations', () => {
  const text = toDhcpd(report, { now });
  assert.match(
    text,
    /^host stor-001 \{\n {2}hardware ethernet 52:54:00:00:00:01;\n {2}fixed-address 10\.20\.0\.101;\n\}$/m,
  );
  assert.equal(text.match(/^host /gm)?.length, 3);
  // balanced braces, every statement ends with ";"
  assert.equal(text.split('{').length, text.split('}').length);
  for (const l of text.split('\n').filter((x) => x.startsWith('  '))) assert.match(l, /;$/);
});

test('exit code: 0 only when every node succeeded', () => {
  assert.equal(reportExitCode(report), 1);
  const ok = { ...report, nodes: report.nodes.filter((n) => n.outcome === 'success') };
  assert.equal(reportExitCode(ok), 0);
  assert.equal(reportExitCode({ ...report, nodes: [] }), 1, 'an install that found no node is not a success');
});

test('pxeflow report --from: every format as a subprocess, dnsmasq output checked by dnsmasq', async () => {
  const file = join(dir, 'ceph-a.report.json');
  await writeFile(file, formatReport(report, 'json'));
  for (const format of REPORT_FORMATS) {
    const r = await pxeflow(['report', '--from', file, '--format', format]);
    assert.equal(r.exitCode, 1, `${format}: not every node succeeded → 1 (${r.stderr})`);
    assert.ok(r.stdout.length > 0, format);
    if (format === 'json') assert.deepEqual(JSON.parse(r.stdout), report);
    if (format === 'dnsmasq') assert.equal((await dnsmasqTest(r.stdout)).exitCode, 0);
    if (format === 'ansible') assert.ok(parse(r.stdout).all.hosts['stor-001']);
    if (format === 'table')
      assert.match(r.stdout, /stor-003\s+10\.10\.0\.13\s+52:54:00:00:00:03\s+10\.20\.0\.103\s+failure/);
  }
  const okFile = join(dir, 'ok.report.json');
  await writeFile(okFile, JSON.stringify({ ...report, nodes: report.nodes.slice(0, 2) }));
  const ok = await pxeflow(['report', '--from', okFile, '--format', 'hosts']);
  assert.equal(ok.exitCode, 0, ok.all);
  const junk = join(dir, 'junk.json');
  await writeFile(junk, '{"hello": 1}');
  const bad = await pxeflow(['report', '--from', junk]);
  assert.equal(bad.exitCode, 2);
  assert.match(bad.stderr, /not a pxeflow report/);
});
