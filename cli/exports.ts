// The final report as the inventories the next tools take: /etc/hosts lines, an Ansible YAML inventory,
// dnsmasq and ISC dhcpd host reservations (the DHCP-assigned IPs are the ones the installed OS keeps, so the
// reservations pin them after pxeflow is gone), CSV, and a human table. Pure functions: report in, text out.
import { stringify } from 'yaml';
import type { ClusterReport, NodeResult } from '../workflows/messages.ts';
import { formatTable } from './output.ts';

export const REPORT_FORMATS = ['table', 'json', 'csv', 'hosts', 'ansible', 'dnsmasq', 'dhcpd'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export interface ExportOptions {
  /** include nodes that did not succeed (when they have an address); default: only installed nodes */
  includeFailed?: boolean;
  /** DNS domain: hosts lines get "ip name.domain name" */
  domain?: string;
  /** the generation time written into comments (tests pin it) */
  now?: Date;
}

type Addressed = NodeResult & { dhcpIp: string };
type Reservable = Addressed & { mac: string };

/** Nodes that belong in an inventory: succeeded (or any, with includeFailed) and holding a DHCP address. */
export function inventoryNodes(report: ClusterReport, opts: ExportOptions = {}): Addressed[] {
  return report.nodes.filter(
    (n): n is Addressed =>
      n !== undefined && !!n.dhcpIp && (opts.includeFailed === true || n.outcome === 'success'),
  );
}

function header(report: ClusterReport, what: string, opts: ExportOptions): string {
  const at = (opts.now ?? new Date()).toISOString();
  return `# ${what} for cluster ${report.cluster} (${report.isoVersion}), written by pxeflow at ${at}\n`;
}

/** /etc/hosts lines: "dhcpIp name" (or "dhcpIp name.domain name"). */
export function toHosts(report: ClusterReport, opts: ExportOptions = {}): string {
  const lines = inventoryNodes(report, opts).map((n) =>
    opts.domain ? `${n.dhcpIp}\t${n.node}.${opts.domain}\t${n.node}` : `${n.dhcpIp}\t${n.node}`,
  );
  return header(report, 'hosts', opts) + lines.map((l) => `${l}\n`).join('');
}

/** Ansible YAML inventory: all.hosts.<name>.ansible_host = DHCP IP, plus the BMC/MAC as host vars. */
export function toAnsible(report: ClusterReport, opts: ExportOptions = {}): string {
  const hosts: Record<string, Record<string, string>> = {};
  for (const n of inventoryNodes(report, opts)) {
    hosts[n.node] = {
      ansible_host: n.dhcpIp,
      pxeflow_bmc: n.bmcIp,
      ...(n.mac ? { pxeflow_mac: n.mac } : {}),
      ...(opts.includeFailed ? { pxeflow_outcome: n.outcome } : {}),
    };
  }
  const inventory = {
    all: {
      hosts,
      vars: { pxeflow_cluster: report.cluster, pxeflow_iso_version: report.isoVersion },
    },
  };
  return header(report, 'Ansible inventory', opts) + stringify(inventory);
}

function reservable(report: ClusterReport, opts: ExportOptions): Reservable[] {
  return inventoryNodes(report, opts).filter((n): n is Reservable => !!n.mac);
}

/** dnsmasq reservations, one `dhcp-host=mac,ip,name` per node (a --conf-file or a dhcp-hostsfile line set). */
export function toDnsmasq(report: ClusterReport, opts: ExportOptions = {}): string {
  const lines = reservable(report, opts).map((n) => `dhcp-host=${n.mac},${n.dhcpIp},${n.node}`);
  return header(report, 'dnsmasq host reservations', opts) + lines.map((l) => `${l}\n`).join('');
}

/** ISC dhcpd host declarations. Node names are DNS labels (the spec enforces it), valid dhcpd identifiers. */
export function toDhcpd(report: ClusterReport, opts: ExportOptions = {}): string {
  const blocks = reservable(report, opts).map(
    (n) => `host ${n.node} {\n  hardware ethernet ${n.mac};\n  fixed-address ${n.dhcpIp};\n}\n`,
  );
  return header(report, 'ISC dhcpd host reservations', opts) + blocks.join('');
}

export const CSV_HEADER = ['node', 'bmc_ip', 'mac', 'dhcp_ip', 'outcome', 'attempts', 'detail'] as const;

/** RFC 4180 field: quoted when it holds a comma, quote, CR or LF. */
function csvField(value: string | number | undefined): string {
  const s = value === undefined ? '' : String(value);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV with a header; every node of the report (the outcome column says which succeeded). */
export function toCsv(report: ClusterReport): string {
  const rows = report.nodes
    .filter((n) => n !== undefined)
    .map((n) => [n.node, n.bmcIp, n.mac, n.dhcpIp, n.outcome, n.attempts, n.detail].map(csvField).join(','));
  return [CSV_HEADER.join(','), ...rows].map((r) => `${r}\r\n`).join('');
}

/** All nodes: the counts, then one row per node. */
export function toTable(report: ClusterReport): string {
  const nodes = report.nodes.filter((n) => n !== undefined);
  const counts = Object.entries(report.counts)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const took = Math.round((report.finishedAt - report.startedAt) / 1000);
  const head = `cluster ${report.cluster} · ${report.isoVersion} · ${nodes.length} nodes · ${counts || 'no nodes'} · ${took}s\n`;
  return (
    head +
    formatTable(
      ['NODE', 'BMC IP', 'MAC', 'DHCP IP', 'OUTCOME', 'ATTEMPTS', 'DETAIL'],
      nodes.map((n) => [
        n.node,
        n.bmcIp,
        n.mac ?? '-',
        n.dhcpIp ?? '-',
        n.outcome,
        String(n.attempts),
        (n.detail ?? '').replace(/\s+/g, ' '),
      ]),
    )
  );
}

export function formatReport(report: ClusterReport, format: ReportFormat, opts: ExportOptions = {}): string {
  switch (format) {
    case 'json':
      return `${JSON.stringify(report, null, 2)}\n`;
    case 'csv':
      return toCsv(report);
    case 'hosts':
      return toHosts(report, opts);
    case 'ansible':
      return toAnsible(report, opts);
    case 'dnsmasq':
      return toDnsmasq(report, opts);
    case 'dhcpd':
      return toDhcpd(report, opts);
    case 'table':
      return toTable(report);
  }
}

/** 0 when every node succeeded, 1 otherwise (the exit code of report/watch/install). */
export function reportExitCode(report: ClusterReport): 0 | 1 {
  return report.nodes.length > 0 && report.nodes.every((n) => n?.outcome === 'success') ? 0 : 1;
}
