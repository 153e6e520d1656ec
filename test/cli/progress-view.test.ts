// The numbers of the live view: nodes per phase (with the power-on wait), ETA, the nodes stuck longest.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  estimateEta,
  formatEta,
  phaseCounts,
  progressLine,
  progressRecord,
  type Snapshot,
  stuckNodes,
} from '../../cli/progress-view.ts';
import type { Progress, TableEntry } from '../../workflows/messages.ts';

const progress = (over: Partial<Progress> = {}): Progress => ({
  cluster: 'ceph-a',
  state: 'powering-on',
  total: 10,
  started: 6,
  paused: false,
  intervalMs: 0,
  maxBooting: 20,
  running: 3,
  outcomes: { success: 2, failure: 1 },
  phases: { dhcp: 1, kernel: 1 },
  ...over,
});
const entry = (node: string, phase: string, since: number): TableEntry => ({
  node,
  bmcIp: `10.10.0.${node.slice(-1)}`,
  mac: '52:54:00:00:00:01',
  dhcpIp: `10.20.0.${node.slice(-1)}`,
  attempt: 1,
  since,
  phase,
});

test('phase counts: chain order, nodes powered on but not yet on DHCP in power-on', () => {
  const counts = Object.fromEntries(phaseCounts(progress()).map((c) => [c.phase, c.nodes]));
  // 6 started − 3 finished − 2 in the table = 1 waiting for its first DHCP request
  assert.equal(counts['power-on'], 1);
  assert.equal(counts.dhcp, 1);
  assert.equal(counts.kernel, 1);
  assert.equal(counts.packages, 0);
  assert.deepEqual(
    phaseCounts(progress())
      .map((c) => c.phase)
      .slice(0, 3),
    ['power-on', 'dhcp', 'bootloader'],
  );
  // an unknown phase is still shown, after the chain
  const odd = phaseCounts(progress({ phases: { 'firmware-update': 2 } }));
  assert.equal(odd.at(-1)?.phase, 'firmware-update');
  assert.equal(odd.at(-1)?.nodes, 2);
});

test('ETA: throughput once nodes finished, a pacing lower bound before, nothing while discovering', () => {
  const now = 1_000_000;
  const s: Snapshot = {
    workflowId: 'pxeflow/ceph-a',
    status: 'RUNNING',
    startedAt: now - 300_000,
    progress: progress(),
  };
  // 3 finished in 300 s → 100 s per node, 7 left
  assert.deepEqual(estimateEta(s, now), { ms: 700_000, basis: 'throughput' });
  // before any node finished: remaining power-ons × the live interval (a lower bound)
  const early: Snapshot = { ...s, progress: progress({ outcomes: {}, intervalMs: 5000 }) };
  assert.deepEqual(estimateEta(early, now), { ms: 4 * 5000, basis: 'pacing' });
  assert.equal(formatEta(estimateEta(early, now)), 'ETA ≥ 20s');
  // a progress without the live pacing falls back to the spec's
  const { intervalMs: _, ...old } = progress({ outcomes: {} });
  const fromSpec: Snapshot = {
    ...s,
    progress: old as Progress,
    pacing: { intervalMs: 10_000, maxBooting: 20 },
  };
  assert.deepEqual(estimateEta(fromSpec, now), { ms: 4 * 10_000, basis: 'pacing' });
  // interval 0: no lower bound worth showing
  assert.equal(estimateEta({ ...early, progress: progress({ outcomes: {} }) }, now), undefined);
  assert.equal(estimateEta({ ...early, progress: progress({ outcomes: {}, total: 0 }) }, now), undefined);
  assert.deepEqual(estimateEta({ ...s, progress: progress({ state: 'done' }) }, now), {
    ms: 0,
    basis: 'done',
  });
});

test('stuck nodes: the longest in the install first (monitor side)', () => {
  const now = 10_000_000;
  const table = {
    controller: [],
    monitor: [
      entry('n1', 'kernel', now - 60_000),
      entry('n2', 'dhcp', now - 600_000),
      entry('n3', 'kickstart', now - 5_000),
    ],
  };
  const stuck = stuckNodes(table, now, 2);
  assert.deepEqual(
    stuck.map((x) => [x.node, x.phase, x.forMs]),
    [
      ['n2', 'dhcp', 600_000],
      ['n1', 'kernel', 60_000],
    ],
  );
  const s: Snapshot = { workflowId: 'pxeflow/ceph-a', status: 'RUNNING', progress: progress(), table };
  assert.match(progressLine(s, now), /longest: n2 in dhcp for 10m00s/);
  assert.match(progressLine(s, now), /started 6\/10/);
  assert.match(progressLine(s, now), /done success:2 failure:1/);
  const rec = progressRecord(s, now);
  assert.equal(rec.type, 'progress');
  assert.equal(rec.finished, 3);
  assert.equal(rec.phases?.['power-on'], 1);
  assert.equal(rec.stuck?.[0].node, 'n2');
});
