import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { loadClusterSpec, parsePath, resolveSecretRef } from '../../config/load.ts';
import { SpecError } from '../../config/schema.ts';
import { validSpec } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'pxeflow-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function loadError(path: string): SpecError {
  try {
    loadClusterSpec(path);
  } catch (error) {
    assert.ok(error instanceof SpecError, `expected SpecError, got ${error}`);
    return error;
  }
  assert.fail('expected loadClusterSpec to throw');
}

const VALID_YAML = `apiVersion: pxeflow/v1
name: ceph-a
iso:
  version: storageos-7.9
ipmi:
  subnet: 10.10.0.0/24
  username: admin
  passwordEnv: PXEFLOW_BMC_PASSWORD
network:
  interface: br-prov
  subnet: 10.20.0.0/24
  controller: 10.20.0.1
  range: { start: 10.20.0.100, end: 10.20.0.199 }
nodes:
  - name: stor-001
    bmc: 10.10.0.11
    mac: "52-54-00-00-00-01"
    ip: 10.20.0.11
  - name: stor-002
    bmc: 10.10.0.12
    mac: "52:54:00:00:00:02"
timeouts:
  install: 30m
`;

describe('loadClusterSpec', () => {
  test('reads YAML and returns the normalised spec and the raw document', () => {
    const { spec, raw } = loadClusterSpec(write('ok.yaml', VALID_YAML));
    assert.equal(spec.timeouts.install, 30 * 60_000);
    assert.equal(spec.nodes![0].mac, '52:54:00:00:00:01');
    assert.equal((raw as { timeouts: { install: string } }).timeouts.install, '30m');
  });

  test('reads JSON', () => {
    const { spec } = loadClusterSpec(write('ok.json', JSON.stringify(validSpec(), null, '\t')));
    assert.equal(spec.name, 'ceph-a');
    assert.equal(spec.timeouts.install, 20 * 60_000);
  });

  test('malformed YAML is reported with line and column', () => {
    const path = write(
      'bad-syntax.yaml',
      'apiVersion: pxeflow/v1\nname: x\nipmi:\n  subnet: [10.10.0.0/24\n  username: admin\n',
    );
    const error = loadError(path);
    assert.equal(error.source, path);
    const [issue] = error.issues;
    assert.match(issue.message, /^syntax error: /);
    assert.equal(typeof issue.line, 'number');
    assert.equal(typeof issue.column, 'number');
    assert.match(error.message, /line \d+, column \d+: \(document\): syntax error/);
  });

  test('a YAML syntax error points at the right line', () => {
    const tab = loadError(write('tab.yaml', 'apiVersion: pxeflow/v1\nname: x\n\tiso: {}\n'));
    assert.deepEqual([tab.issues[0].line, tab.issues[0].column], [3, 1]);
    assert.match(tab.issues[0].message, /Tabs are not allowed/);
    const nested = loadError(write('nested.yaml', 'apiVersion: pxeflow/v1\nname: x\niso: version: 1\n'));
    assert.deepEqual([nested.issues[0].line, nested.issues[0].column], [3, 6]);
  });

  test('duplicate keys are an error, with their line', () => {
    const error = loadError(write('dup.yaml', 'apiVersion: pxeflow/v1\nname: a\nname: b\n'));
    assert.match(error.issues[0].message, /unique/);
    assert.equal(error.issues[0].line, 3);
  });

  test('malformed JSON is reported with line and column', () => {
    const error = loadError(write('bad.json', '{\n  "apiVersion": "pxeflow/v1",\n  "name": "x",,\n}\n'));
    assert.equal(error.issues[0].line, 3);
    assert.equal(typeof error.issues[0].column, 'number');
  });

  test('validation errors carry the line and column of the offending key', () => {
    const text = VALID_YAML.replace('mac: "52:54:00:00:00:02"', 'mac: "52:54:00:00:00:zz"').replace(
      '  username: admin',
      '  usernme: admin',
    );
    const error = loadError(write('bad-values.yaml', text));
    const mac = error.issues.find((i) => i.path === 'nodes[1].mac');
    assert.ok(mac, error.message);
    assert.deepEqual([mac.line, mac.column], [21, 5]);
    const unknown = error.issues.find((i) => i.path === 'ipmi.usernme');
    assert.ok(unknown);
    assert.deepEqual([unknown.line, unknown.column], [7, 3]);
    assert.match(unknown.message, /did you mean "username"/);
    // a missing key points at its parent mapping
    const missing = error.issues.find((i) => i.path === 'ipmi.username');
    assert.ok(missing);
    assert.equal(missing.line, 5);
  });

  test('a missing file is a clear error', () => {
    const error = loadError(join(dir, 'nope.yaml'));
    assert.match(error.message, /cannot read .*nope\.yaml: no such file/);
  });

  test('a directory or an empty file is a clear error', () => {
    assert.match(loadError(dir).message, /not a regular file/);
    assert.match(loadError(write('empty.yaml', '')).message, /empty/);
  });

  test('parsePath inverts formatPath', () => {
    assert.deepEqual(parsePath('nodes[3].mac'), ['nodes', 3, 'mac']);
    assert.deepEqual(parsePath('kickstart.variables["a b"]'), ['kickstart', 'variables', 'a b']);
    assert.deepEqual(parsePath(''), []);
  });
});

describe('resolveSecretRef', () => {
  test('reads an environment variable', () => {
    assert.equal(resolveSecretRef({ env: 'BMC_PW' }, 'BMC password', { BMC_PW: 's3cret' }), 's3cret');
  });

  test('a missing or empty variable names the variable, not a value', () => {
    assert.throws(
      () => resolveSecretRef({ env: 'BMC_PW' }, 'BMC password', {}),
      /BMC password: environment variable BMC_PW is not set/,
    );
    assert.throws(
      () => resolveSecretRef({ env: 'BMC_PW' }, 'BMC password', { BMC_PW: '' }),
      /BMC_PW is empty/,
    );
  });

  test('reads a file and drops one trailing newline only', () => {
    assert.equal(resolveSecretRef({ file: write('pw', 'p@ss word\n') }, 'BMC password'), 'p@ss word');
    assert.equal(resolveSecretRef({ file: write('pw-crlf', 'abc\r\n') }, 'BMC password'), 'abc');
    assert.equal(resolveSecretRef({ file: write('pw-nonl', ' x ') }, 'BMC password'), ' x ');
  });

  test('file errors name the file, never the content', () => {
    assert.throws(
      () => resolveSecretRef({ file: join(dir, 'missing') }, 'root hash'),
      /root hash: cannot read file .*missing: no such file/,
    );
    const empty = write('pw-empty', '\n');
    assert.throws(() => resolveSecretRef({ file: empty }, 'root hash'), /is empty/);
    const secret = write('pw-secret', 'TOPSECRET');
    chmodSync(secret, 0o000);
    // root reads anything; as another user this is "permission denied" — either way the content is not shown
    try {
      resolveSecretRef({ file: secret }, 'BMC password');
    } catch (error) {
      assert.ok(!String(error).includes('TOPSECRET'));
    }
  });

  test('exactly one of env / file', () => {
    assert.throws(() => resolveSecretRef({}, 'BMC password'), /exactly one/);
    assert.throws(() => resolveSecretRef({ env: 'A', file: '/x' }, 'BMC password'), /exactly one/);
  });
});
