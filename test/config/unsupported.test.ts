// Valid specs that pxeflow cannot carry out are refused by the loader, naming the field and the reason.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { stringify } from 'yaml';
import { loadClusterSpec } from '../../config/load.ts';
import { SpecError } from '../../config/schema.ts';
import { discoverySpec, expectValid, type RawSpec, validSpec } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'pxeflow-unsupported-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A valid proxy-mode spec: no range, no fixed node addresses. */
function proxySpec(raw: RawSpec = validSpec()): RawSpec {
  raw.network.dhcpMode = 'proxy';
  delete raw.network.range;
  for (const node of raw.nodes ?? []) delete node.ip;
  return raw;
}

function refused(raw: RawSpec): SpecError {
  expectValid(raw); // the schema itself accepts it
  const file = join(dir, 'spec.yaml');
  writeFileSync(file, stringify(raw));
  try {
    loadClusterSpec(file);
  } catch (err) {
    assert.ok(err instanceof SpecError);
    for (const issue of err.issues) assert.ok(issue.line !== undefined, issue.path);
    return err;
  }
  assert.fail('loaded');
}

test('proxyDHCP with every node MAC loads', () => {
  const file = join(dir, 'proxy.yaml');
  writeFileSync(file, stringify(proxySpec()));
  assert.equal(loadClusterSpec(file).spec.network.dhcpMode, 'proxy');
});

test('proxyDHCP refuses a node without its MAC, and discovery, naming the field', () => {
  const raw = proxySpec();
  delete raw.nodes[1].mac;
  const err = refused(raw);
  assert.deepEqual(
    err.issues.map((i) => i.path),
    ['nodes[1].mac'],
  );
  assert.match(err.issues[0]!.message, /required with dhcpMode proxy.*reserved MACs only/);

  const discovering = proxySpec(discoverySpec());
  const err2 = refused(discovering);
  assert.deepEqual(
    err2.issues.map((i) => i.path),
    ['network.dhcpMode'],
  );
  assert.match(err2.issues[0]!.message, /proxy needs a node list with every node's mac/);
});
