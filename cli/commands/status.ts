// `pxeflow status [CLUSTER]` (progress of one install, or every install) and `pxeflow table [CLUSTER]` (both
// sides of the correspondence table: the controller's and the monitor's IPMI-IP ↔ DHCP-IP entries).
import type { Command } from 'commander';
import type { TableEntry, TableView } from '../../workflows/messages.ts';
import { closedOutcome, poll } from '../live.ts';
import {
  EXIT,
  examples,
  formatDuration,
  formatTable,
  line,
  type Out,
  paintOutcome,
  printJson,
  stdoutOut,
} from '../output.ts';
import { estimateEta, formatEta, outcomeCounts, phaseCounts, stuckNodes } from '../progress-view.ts';
import { type GlobalOptions, listInstalls, pickCluster, withTemporal } from '../temporal.ts';

type Flags = GlobalOptions & { json?: boolean };

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description('progress of an install, or the list of installs when no cluster is named')
    .argument('[cluster]', 'cluster name or workflow id')
    .option('--json', 'print as JSON')
    .addHelpText('after', examples('pxeflow status', 'pxeflow status ceph-a', 'pxeflow status --json'))
    .action(async (cluster: string | undefined, _f, cmd: Command) => {
      const flags = cmd.optsWithGlobals() as Flags;
      const out = stdoutOut();
      process.exitCode = await withTemporal(flags, async ({ client }) => {
        if (!cluster) {
          const installs = await listInstalls(client);
          if (flags.json) printJson(out, installs);
          else if (installs.length === 0) line(out, 'no installs on this Temporal server');
          else {
            out.write(
              formatTable(
                ['CLUSTER', 'WORKFLOW ID', 'STATUS', 'PHASE', 'OUTCOME', 'STARTED'],
                installs.map((i) => [
                  i.cluster,
                  i.workflowId,
                  i.status,
                  i.phase ?? '-',
                  i.outcome ?? '-',
                  i.startTime ?? '-',
                ]),
              ),
            );
          }
          return EXIT.ok;
        }
        const workflowId = await pickCluster(client, cluster);
        const snap = await poll(client, workflowId);
        const now = Date.now();
        if (snap.status === 'RUNNING') {
          if (flags.json) {
            printJson(out, { ...snap, eta: estimateEta(snap, now), stuck: stuckNodes(snap.table, now) });
            return EXIT.ok;
          }
          printRunning(out, snap, now);
          return EXIT.ok;
        }
        const outcome = await closedOutcome(client, workflowId, snap.status);
        if (flags.json) printJson(out, { ...snap, ...outcome, code: undefined });
        else if (outcome.report) {
          const r = outcome.report;
          const counts = Object.entries(r.counts)
            .filter(([, v]) => v > 0)
            .map(([k, v]) => paintOutcome(out, k, `${k} ${v}`))
            .join(' · ');
          line(
            out,
            `${workflowId}: ${snap.status.toLowerCase()} · ${r.nodes.length} nodes · ${counts || 'no nodes'}`,
          );
          line(
            out,
            `inventory: pxeflow report ${r.cluster} --format table|hosts|ansible|dnsmasq|dhcpd|csv|json`,
          );
        } else {
          line(
            out,
            `${workflowId}: ${snap.status.toLowerCase()}${outcome.error?.type ? ` (${outcome.error.type})` : ''}`,
          );
          line(out, outcome.error?.message ?? '');
        }
        return outcome.code;
      });
    });

  program
    .command('table')
    .description(
      'the correspondence table: node, IPMI IP, MAC, DHCP IP, phase — controller and monitor sides',
    )
    .argument('[cluster]', 'cluster name or workflow id (default: the only running install)')
    .option('--json', 'print as JSON')
    .addHelpText(
      'after',
      examples('pxeflow table ceph-a', 'pxeflow table ceph-a --json | jq ".monitor[].dhcpIp"'),
    )
    .action(async (cluster: string | undefined, _f, cmd: Command) => {
      const flags = cmd.optsWithGlobals() as Flags;
      const out = stdoutOut();
      process.exitCode = await withTemporal(flags, async ({ client }) => {
        const workflowId = await pickCluster(client, cluster);
        const snap = await poll(client, workflowId);
        let view: TableView & { released?: TableEntry[] };
        if (snap.table) view = snap.table;
        else if (snap.status === 'RUNNING') {
          line(out, `${workflowId}: ${snap.queryError ?? 'no table yet'}`);
          return EXIT.incomplete;
        } else {
          // closed: both live tables are empty by now; the report keeps the released entries
          const outcome = await closedOutcome(client, workflowId, snap.status);
          view = { controller: [], monitor: [], released: outcome.report?.table ?? [] };
        }
        if (flags.json) {
          printJson(out, view);
          return EXIT.ok;
        }
        const now = Date.now();
        const show = (title: string, entries: TableEntry[]) => {
          line(out, `${title} (${entries.length})`);
          if (entries.length > 0) {
            out.write(
              formatTable(
                ['NODE', 'IPMI IP', 'MAC', 'DHCP IP', 'PHASE', 'ATTEMPT', 'SINCE'],
                entries.map((e) => [
                  e.node,
                  e.bmcIp,
                  e.mac,
                  e.dhcpIp,
                  e.phase,
                  String(e.attempt),
                  `${formatDuration(now - e.since)} ago`,
                ]),
              ),
            );
          }
        };
        show('controller', view.controller);
        show('monitor', view.monitor);
        if (view.released) show('released (in the final report)', view.released);
        return EXIT.ok;
      });
    });
}

function printRunning(out: Out, snap: Awaited<ReturnType<typeof poll>>, now: number): void {
  const p = snap.progress;
  if (!p) {
    line(out, `${snap.workflowId}: running · ${snap.queryError ?? 'no progress yet'}`);
    return;
  }
  line(
    out,
    `${snap.workflowId}: ${p.state}${p.paused ? ' (paused)' : ''} · started ${p.started}/${p.total} · ${formatEta(estimateEta(snap, now))}`,
  );
  const phases = phaseCounts(p).filter((c) => c.nodes > 0);
  if (phases.length) line(out, `  phases    ${phases.map((c) => `${c.phase} ${c.nodes}`).join(' · ')}`);
  const outcomes = outcomeCounts(p);
  if (outcomes.length)
    line(
      out,
      `  finished  ${outcomes.map((c) => paintOutcome(out, c.outcome, `${c.outcome} ${c.nodes}`)).join(' · ')}`,
    );
  for (const s of stuckNodes(snap.table, now, 3)) {
    line(
      out,
      `  longest   ${s.node} (BMC ${s.bmcIp}, ${s.dhcpIp}) in ${s.phase} for ${formatDuration(s.forMs)}`,
    );
  }
}
