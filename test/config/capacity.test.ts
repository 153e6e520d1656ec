// How many nodes one install holds: the estimate against a real report, and the refusal up front (CLI loader).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { stringify } from 'yaml';
import { INSTALL_PAYLOAD_BUDGET, installSize, perNodeBytes } from '../../config/capacity.ts';
import { loadClusterSpec } from '../../config/load.ts';
import { parseClusterSpec, SpecError } from '../../config/schema.ts';
import type { ClusterReport } from '../../workflows/messages.ts';
import { bigSpec, discoverySpec } from './fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'pxeflow-capacity-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the per-node estimate is what a real report spends on a node installed at its first attempt', () => {
  // the report of a real 5-node install (recorded by test/e2e, replayed by test/workflows/replay.test.ts)
  const history = JSON.parse(
    readFileSync(new URL('../fixtures/histories/cluster-install.json', import.meta.url), 'utf8'),
  ) as { events: Array<Record<string, { result?: { payloads: Array<{ data: string }> } }>> };
  const done = history.events.at(-1)!.workflowExecutionCompletedEventAttributes!;
  const report = JSON.parse(
    Buffer.from(done.result!.payloads[0]!.data, 'base64').toString(),
  ) as ClusterReport;
  const firstTry = report.nodes.filter((r) => r.outcome === 'success' && r.attempts === 1);
  assert.ok(firstTry.length >= 2);
  for (const r of firstTry) {
    const entries = report.table.filter((e) => e.node === r.node);
    const actual =
      JSON.stringify(r).length + 1 + entries.reduce((s, e) => s + JSON.stringify(e).length + 1, 0);
    const estimate = perNodeBytes({ name: r.node, bmc: r.bmcIp, mac: r.mac }, false);
    assert.ok(
      estimate <= actual * 1.1 && estimate >= actual * 0.85,
      `${r.node}: estimate ${estimate}, real ${actual}`,
    );
  }
});

test('2,000 and 3,000 listed nodes fit; 4,000 are refused by the loader, with the most that fit', () => {
  for (const n of [2000, 3000]) {
    const raw = bigSpec(n);
    const size = installSize(parseClusterSpec(raw), JSON.stringify(raw).length);
    assert.ok(size.bytes < INSTALL_PAYLOAD_BUDGET, `${n} nodes: ${size.bytes} B`);
    const file = join(dir, `ok-${n}.yaml`);
    writeFileSync(file, stringify(raw));
    assert.equal(loadClusterSpec(file).spec.nodes?.length, n);
  }
  const file = join(dir, 'too-big.yaml');
  writeFileSync(file, stringify(bigSpec(4000)));
  assert.throws(
    () => loadClusterSpec(file),
    (err: unknown) => {
      assert.ok(err instanceof SpecError);
      assert.equal(err.issues.length, 1);
      const issue = err.issues[0]!;
      assert.equal(issue.path, 'nodes');
      assert.ok(issue.line !== undefined, 'points at the nodes key');
      const most = Number(/at most (\d+) nodes/.exec(issue.message)?.[1]);
      assert.ok(most > 3000 && most < 4000, issue.message);
      // the advice holds: that many nodes fit, one more does not
      const fits = (k: number) => {
        const raw = bigSpec(k);
        return installSize(parseClusterSpec(raw), JSON.stringify(raw).length).bytes <= INSTALL_PAYLOAD_BUDGET;
      };
      assert.ok(fits(most - 10) && !fits(most + 10), `at most ${most}`);
      return true;
    },
  );
});

test('a discovering spec counts its most nodes: a /20 without discovery.maxNodes is refused, maxNodes fixes it', () => {
  const raw = discoverySpec();
  raw.ipmi.subnet = '10.10.0.0/20';
  raw.network = { ...raw.network, subnet: '10.20.0.0/16', controller: '10.20.255.254' };
  raw.network.range = { start: '10.20.0.10', end: '10.20.200.0' };
  const file = join(dir, 'discovery.yaml');
  writeFileSync(file, stringify(raw));
  assert.throws(
    () => loadClusterSpec(file),
    /discovery\.maxNodes: discovery may find 4094 BMCs.*at most \d+/s,
  );
  writeFileSync(file, stringify({ ...raw, discovery: { maxNodes: 2000 } }));
  assert.equal(loadClusterSpec(file).spec.discovery?.maxNodes, 2000);
});
