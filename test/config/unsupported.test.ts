// Valid specs that pxeflow cannot carry out yet are refused by the loader, naming the field and the reason.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { stringify } from 'yaml';
import { loadClusterSpec } from '../../config/load.ts';
import { SpecError } from '../../config/schema.ts';
import { expectValid, validSpec } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'pxeflow-unsupported-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A valid proxy-mode spec: no range, no fixed node addresses. */
function proxySpec() {
  const raw = validSpec();
  raw.network.dhcpMode = 'proxy';
  delete raw.network.range;
  for (const node of raw.nodes) delete node.ip;
  return raw;
}

test('proxyDHCP parses but the loader refuses it, at network.dhcpMode with its line', () => {
  expectValid(proxySpec()); // the schema itself accepts it
  const file = join(dir, 'proxy.yaml');
  writeFileSync(file, stringify(proxySpec()));
  assert.throws(
    () => loadClusterSpec(file),
    (err: unknown) => {
      assert.ok(err instanceof SpecError);
      assert.deepEqual(
        err.issues.map((i) => i.path),
        ['network.dhcpMode'],
      );
      assert.match(err.issues[0]!.message, /not available yet.*authoritative/s);
      assert.ok(err.issues[0]!.line !== undefined);
      return true;
    },
  );
  // the same spec in authoritative mode loads
  const ok = join(dir, 'authoritative.yaml');
  writeFileSync(ok, stringify(validSpec()));
  assert.equal(loadClusterSpec(ok).spec.network.dhcpMode, 'authoritative');
});
