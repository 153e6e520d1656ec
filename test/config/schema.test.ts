import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  bmcPasswordRef,
  clusterWorkflowId,
  nodeWorkflowId,
  parseClusterSpec,
  rootPasswordHashRef,
  SpecError,
} from '../../config/schema.ts';
import { discoverySpec, expectIssue, expectValid, issuesOf, validSpec } from './fixtures.ts';

describe('defaults and normalisation', () => {
  test('the install timeout defaults to 20 minutes', () => {
    const spec = expectValid(validSpec());
    assert.equal(spec.timeouts.install, 20 * 60 * 1000);
    assert.equal(spec.timeouts.dhcpSeen, 5 * 60 * 1000);
  });

  test('every default is filled and node defaults are resolved', () => {
    const raw = validSpec();
    raw.ipmi.port = 6230;
    raw.kickstart = { osDisk: '/dev/vda' };
    raw.bootMode = 'uefi';
    raw.nodes[1].bmcPort = 9001;
    raw.nodes[1].osDisk = '/dev/nvme0n1';
    raw.nodes[1].bootMode = 'bios';
    const spec = expectValid(raw);
    assert.equal(spec.iso.library, '/var/lib/pxeflow/isos');
    assert.deepEqual(
      { ...spec.ipmi, passwordEnv: undefined },
      {
        subnet: '10.10.0.0/24',
        username: 'admin',
        passwordEnv: undefined,
        port: 6230,
        cipherSuite: 3,
        timeoutSeconds: 2,
        retries: 1,
      },
    );
    assert.deepEqual(spec.power, { order: 'listed', interval: 5000, maxBooting: 20 });
    assert.deepEqual(spec.retry, { attempts: 2, powerCycleOnRetry: true });
    assert.equal(spec.network.httpPort, 8080);
    assert.equal(spec.network.dhcpMode, 'authoritative');
    assert.deepEqual(spec.network.dns, []);
    assert.deepEqual(spec.kickstart, {
      timezone: 'UTC',
      osDisk: '/dev/vda',
      extraPackages: [],
      variables: {},
    });
    const [first, second] = spec.nodes!;
    assert.deepEqual(
      [first.bmcPort, first.osDisk, first.bootMode, first.role],
      [6230, '/dev/vda', 'uefi', 'storage'],
    );
    assert.deepEqual([second.bmcPort, second.osDisk, second.bootMode], [9001, '/dev/nvme0n1', 'bios']);
  });

  test('durations are parsed to milliseconds', () => {
    const raw = validSpec();
    raw.timeouts = { install: '1h30m', dhcpSeen: '90s' };
    raw.power = { interval: '500ms' };
    const spec = expectValid(raw);
    assert.equal(spec.timeouts.install, 5_400_000);
    assert.equal(spec.timeouts.dhcpSeen, 90_000);
    assert.equal(spec.power.interval, 500);
  });

  test('a bad duration is rejected, and a bare small number gets a hint', () => {
    const raw = validSpec();
    raw.timeouts = { install: '20 minutes', dhcpSeen: 20 };
    const issues = expectIssue(raw, 'timeouts.install', /not a duration/);
    assert.ok(issues.some((i) => i.path === 'timeouts.dhcpSeen' && /did you mean "20m"/.test(i.message)));
  });

  test('MACs are normalised from every accepted form', () => {
    const raw = validSpec();
    raw.nodes = [
      { name: 'a', bmc: '10.10.0.1', mac: '52-54-00-AB-CD-01', ip: '10.20.0.11' },
      { name: 'b', bmc: '10.10.0.2', mac: '5254.00ab.cd02', ip: '10.20.0.12' },
      { name: 'c', bmc: '10.10.0.3', mac: '52:54:00:Ab:cD:03', ip: '10.20.0.13' },
      { name: 'd', bmc: '10.10.0.4', mac: '525400ABCD04', ip: '10.20.0.14' },
    ];
    const macs = expectValid(raw).nodes!.map((n) => n.mac);
    assert.deepEqual(macs, [
      '52:54:00:ab:cd:01',
      '52:54:00:ab:cd:02',
      '52:54:00:ab:cd:03',
      '52:54:00:ab:cd:04',
    ]);
  });

  test('bad MACs are rejected: junk, mixed separators, multicast, all-zero', () => {
    for (const mac of [
      '52:54:00:00:00',
      '52:54-00:00:00:01',
      'zz:54:00:00:00:01',
      '01:00:5e:00:00:01',
      '00:00:00:00:00:00',
    ]) {
      const raw = validSpec();
      raw.nodes[0].mac = mac;
      expectIssue(raw, 'nodes[0].mac', /MAC/);
    }
  });

  test('the normalised spec is JSON-safe and parses again to itself', () => {
    const spec = expectValid(validSpec());
    const json = JSON.parse(JSON.stringify(spec));
    assert.deepEqual(json, spec);
    assert.deepEqual(parseClusterSpec(json), spec);
    const discovered = expectValid(discoverySpec());
    assert.deepEqual(parseClusterSpec(JSON.parse(JSON.stringify(discovered))), discovered);
    assert.equal('nodes' in discovered, false);
  });
});

describe('field validation', () => {
  test('all errors are reported at once, each with its path', () => {
    const raw = validSpec();
    delete raw.name;
    raw.iso.version = 7.1;
    raw.ipmi.port = 70000;
    raw.nodes[1].mac = 'nope';
    raw.retry = { attempts: 0 };
    const paths = issuesOf(raw).map((i) => i.path);
    for (const path of ['name', 'iso.version', 'ipmi.port', 'nodes[1].mac', 'retry.attempts']) {
      assert.ok(paths.includes(path), `missing ${path} in ${paths.join(', ')}`);
    }
  });

  test('a missing field says required; a number where a string belongs hints at YAML quoting', () => {
    const raw = validSpec();
    delete raw.ipmi.username;
    raw.iso.version = 7.1;
    expectIssue(raw, 'ipmi.username', /^required$/);
    expectIssue(raw, 'iso.version', /quote/);
  });

  test('cross-field checks still run when only unrelated fields are wrong', () => {
    const raw = validSpec();
    delete raw.name;
    raw.network.controller = '10.20.0.150';
    const issues = expectIssue(raw, 'network.controller', /inside the dynamic range/);
    assert.ok(issues.some((i) => i.path === 'name'));
  });

  test('the input must be a mapping', () => {
    for (const raw of [null, 42, 'spec', []]) expectIssue(raw, '', /expected a mapping/);
    expectIssue(undefined, '', /got nothing/);
  });

  test('apiVersion must be pxeflow/v1', () => {
    const raw = validSpec();
    raw.apiVersion = 'pxeflow/v2';
    expectIssue(raw, 'apiVersion', /pxeflow\/v1/);
  });

  test('names are DNS labels', () => {
    const raw = validSpec();
    raw.name = 'Ceph_A';
    raw.nodes[0].name = '-bad';
    expectIssue(raw, 'name', /DNS label/);
    expectIssue(raw, 'nodes[0].name', /DNS label/);
  });

  test('subnets must be CIDR blocks without host bits', () => {
    const raw = validSpec();
    raw.ipmi.subnet = '10.10.0.1/24';
    raw.network.subnet = '10.20.0.0';
    expectIssue(raw, 'ipmi.subnet', /host bits set; the network is 10\.10\.0\.0\/24/);
    expectIssue(raw, 'network.subnet', /missing "\/prefix"/);
  });

  test('IPv4 addresses are strict', () => {
    for (const bad of ['10.20.0', '10.20.0.256', '010.20.0.1', '10.20.0.1 ', 'host']) {
      const raw = validSpec();
      raw.network.controller = bad;
      expectIssue(raw, 'network.controller', /not an IPv4 address/);
    }
  });

  test('cipher suite 0 (no authentication) is refused', () => {
    const raw = validSpec();
    raw.ipmi.cipherSuite = 0;
    expectIssue(raw, 'ipmi.cipherSuite', /authenticates nothing/);
  });

  test('unknown keys are rejected with a did-you-mean', () => {
    const raw = validSpec();
    raw.netwrok = {};
    raw.ipmi.usernme = 'x';
    raw.nodes[1].adress = '1.2.3.4';
    raw.timeouts = { instal: '20m' };
    expectIssue(raw, 'netwrok', /unknown key \(did you mean "network"\?\)/);
    expectIssue(raw, 'ipmi.usernme', /did you mean "username"/);
    expectIssue(raw, 'timeouts.instal', /did you mean "install"/);
    expectIssue(raw, 'nodes[1].adress', /unknown key \(known keys: name, bmc/);
  });
});

describe('secrets are referenced, never written', () => {
  test('exactly one of passwordEnv / passwordFile', () => {
    const none = validSpec();
    delete none.ipmi.passwordEnv;
    expectIssue(none, 'ipmi', /exactly one of passwordEnv or passwordFile/);
    const both = validSpec();
    both.ipmi.passwordFile = '/etc/pxeflow/bmc';
    expectIssue(both, 'ipmi.passwordFile', /exactly one/);
    const file = validSpec();
    delete file.ipmi.passwordEnv;
    file.ipmi.passwordFile = '/etc/pxeflow/bmc';
    assert.deepEqual(bmcPasswordRef(expectValid(file)), { file: '/etc/pxeflow/bmc' });
    assert.deepEqual(bmcPasswordRef(expectValid(validSpec())), { env: 'PXEFLOW_BMC_PASSWORD' });
  });

  test('a plain password field is rejected with advice, and its value never appears in the error', () => {
    const raw = validSpec();
    raw.ipmi.password = 'hunter2-s3cret';
    raw.kickstart = { rootPasswordHash: '$6$salt$hashvalue' };
    raw.kickstart.variables = { dbPassword: 'also-s3cret' };
    expectIssue(raw, 'ipmi.password', /ipmi\.passwordEnv or ipmi\.passwordFile/);
    expectIssue(raw, 'kickstart.rootPasswordHash', /rootPasswordHashEnv or kickstart\.rootPasswordHashFile/);
    expectIssue(raw, 'kickstart.variables.dbPassword', /never written in the spec/);
    const message = issuesOf(raw)
      .map((i) => i.message)
      .join('\n');
    for (const secret of ['hunter2', '$6$salt', 'also-s3cret']) assert.ok(!message.includes(secret));
    const error = (() => {
      try {
        parseClusterSpec(raw);
      } catch (e) {
        return e;
      }
    })();
    assert.ok(error instanceof SpecError);
    assert.ok(!error.message.includes('hunter2'));
  });

  test('the password written into passwordEnv by mistake is refused without being echoed', () => {
    const raw = validSpec();
    raw.ipmi.passwordEnv = 'my pass!word';
    const issues = expectIssue(raw, 'ipmi.passwordEnv', /NAME of an environment variable/);
    assert.ok(!JSON.stringify(issues).includes('my pass!word'));
  });

  test('passwordFile must be absolute', () => {
    const raw = validSpec();
    delete raw.ipmi.passwordEnv;
    raw.ipmi.passwordFile = 'bmc.txt';
    expectIssue(raw, 'ipmi.passwordFile', /absolute path/);
  });

  test('at most one root password hash reference', () => {
    const raw = validSpec();
    raw.kickstart = { rootPasswordHashEnv: 'ROOT_HASH', rootPasswordHashFile: '/etc/pxeflow/root.hash' };
    expectIssue(raw, 'kickstart.rootPasswordHashFile', /at most one/);
    raw.kickstart = { rootPasswordHashEnv: 'ROOT_HASH' };
    assert.deepEqual(rootPasswordHashRef(expectValid(raw)), { env: 'ROOT_HASH' });
    assert.equal(rootPasswordHashRef(expectValid(validSpec())), undefined);
  });
});

describe('workflow ids', () => {
  test('cluster and node ids', () => {
    assert.equal(clusterWorkflowId('ceph-a'), 'pxeflow/ceph-a');
    assert.equal(nodeWorkflowId('ceph-a', 'stor-001'), 'pxeflow/ceph-a/stor-001');
  });
});
