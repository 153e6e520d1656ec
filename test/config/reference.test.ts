import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { loadClusterSpec } from '../../config/load.ts';
import { renderConfigReference } from '../../config/reference.ts';

const root = new URL('../../', import.meta.url);

test('docs/config-reference.md is the generated reference (regenerate: node --import tsx config/reference.ts > docs/config-reference.md)', () => {
  const committed = readFileSync(new URL('docs/config-reference.md', root), 'utf8');
  assert.equal(committed, renderConfigReference());
});

test('the reference documents every field with a type, a default and a description', () => {
  const text = renderConfigReference();
  const rows = text.split('\n').filter((line) => line.startsWith('| `'));
  assert.ok(rows.length > 50, `only ${rows.length} rows`);
  for (const row of rows) {
    const cells = row
      .split(/(?<!\\)\|/)
      .slice(1, -1)
      .map((c) => c.trim());
    assert.equal(cells.length, 4, row);
    assert.ok(
      cells.every((c) => c.length > 0),
      `empty cell in ${row}`,
    );
  }
  assert.match(text, /\| `install` \| duration \| `20m` \|/);
});

test('the example spec parses', () => {
  const { spec } = loadClusterSpec(new URL('config/examples/cluster.example.yaml', root).pathname);
  assert.equal(spec.name, 'ceph-a');
  assert.equal(spec.nodes?.length, 6);
  assert.equal(spec.nodes?.[2].mac, '52:54:00:00:00:03');
  assert.equal(spec.timeouts.install, 20 * 60_000);
});
