// `pxeflow report CLUSTER --format …`: the final report and the inventory exports, from the workflow result
// (or a saved `--format json` report with --from).
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { Option } from 'commander';
import type { ClusterReport } from '../../workflows/messages.ts';
import { formatReport, REPORT_FORMATS, type ReportFormat, reportExitCode } from '../exports.ts';
import { closedOutcome, poll } from '../live.ts';
import { CliError, EXIT, examples, stdoutOut } from '../output.ts';
import { type GlobalOptions, pickCluster, withTemporal } from '../temporal.ts';

interface ReportFlags extends GlobalOptions {
  format: ReportFormat;
  from?: string;
  includeFailed?: boolean;
  domain?: string;
}

function readSavedReport(file: string): ClusterReport {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new CliError(`--from ${file}: ${(err as Error).message}`);
  }
  const r = data as Partial<ClusterReport>;
  if (typeof r?.cluster !== 'string' || !Array.isArray(r.nodes) || typeof r.counts !== 'object') {
    throw new CliError(
      `--from ${file}: not a pxeflow report (expected the output of \`pxeflow report --format json\`)`,
    );
  }
  return r as ClusterReport;
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('the final report of an install, or an inventory for the next tool')
    .argument('[cluster]', 'cluster name or workflow id')
    .addOption(new Option('--format <format>', 'output format').choices(REPORT_FORMATS).default('table'))
    .option('--from <file>', 'format a saved JSON report instead of asking Temporal')
    .option('--include-failed', 'inventories: also nodes that did not succeed (when they got an address)')
    .option('--domain <domain>', 'hosts format: add name.<domain> to every line')
    .addHelpText(
      'after',
      examples(
        'pxeflow report ceph-a',
        'pxeflow report ceph-a --format ansible > inventory.yml && ansible -i inventory.yml all -m ping',
        'pxeflow report ceph-a --format hosts --domain stor.example >> /etc/hosts',
        'pxeflow report ceph-a --format dnsmasq > /etc/dnsmasq.d/ceph-a.conf',
        'pxeflow report ceph-a --format dhcpd > /etc/dhcp/ceph-a-hosts.conf',
        'pxeflow report ceph-a --format json > ceph-a.report.json; pxeflow report --from ceph-a.report.json --format csv',
      ),
    )
    .addHelpText(
      'after',
      '\nExit code: 0 when every node was installed, 1 when some were not (or the install is still running).\n',
    )
    .action(async (cluster: string | undefined, _f, cmd: Command) => {
      const flags = cmd.optsWithGlobals() as ReportFlags;
      const out = stdoutOut();
      const emit = (report: ClusterReport) => {
        out.write(
          formatReport(report, flags.format, { includeFailed: flags.includeFailed, domain: flags.domain }),
        );
        return reportExitCode(report);
      };
      if (flags.from) {
        if (cluster) throw new CliError('give either a cluster or --from <file>, not both');
        process.exitCode = emit(readSavedReport(flags.from));
        return;
      }
      if (!cluster) throw new CliError('name the cluster (or --from <file>)');
      process.exitCode = await withTemporal(flags, async ({ client }) => {
        const workflowId = await pickCluster(client, cluster);
        const snap = await poll(client, workflowId);
        if (snap.status === 'RUNNING') {
          const p = snap.progress;
          process.stderr.write(
            `${workflowId} is still running${p ? ` (${p.state}, started ${p.started}/${p.total})` : ''}; the report exists when it finishes: pxeflow watch ${cluster}\n`,
          );
          return EXIT.incomplete;
        }
        const outcome = await closedOutcome(client, workflowId, snap.status);
        if (!outcome.report) {
          throw new CliError(
            `${workflowId} ended without a report (${snap.status.toLowerCase()}): ${outcome.error?.message ?? ''}`,
            outcome.code === EXIT.usage ? EXIT.usage : EXIT.incomplete,
          );
        }
        return emit(outcome.report);
      });
    });
}
