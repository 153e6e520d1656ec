// Spec helpers shared by `validate` and `install`: error listing (every problem with its field path and line)
// and the summary of what an install would do, with an ETA bound from the pacing. Pure except loadSpec.
import { loadClusterSpec } from '../config/load.ts';
import { hostCount, parseCidr } from '../config/ipv4.ts';
import { type ClusterSpec, SpecError, type SpecIssue } from '../config/schema.ts';
import { CliError, EXIT, formatDuration } from './output.ts';

/** Every issue on its own line: "  path: message (line L, column C)". `rename` maps paths to flag names. */
export function specErrorText(err: SpecError, rename: Record<string, string> = {}): string {
  const n = err.issues.length;
  const head = `invalid cluster spec${err.source ? ` ${err.source}` : ''}: ${n} problem${n === 1 ? '' : 's'}`;
  return [head, ...err.issues.map((i) => `  ${issueText(i, rename)}`)].join('\n');
}

function issueText(issue: SpecIssue, rename: Record<string, string>): string {
  const where = issue.line !== undefined ? ` (line ${issue.line}, column ${issue.column ?? 1})` : '';
  return `${rename[issue.path] ?? (issue.path || '(document)')}: ${issue.message}${where}`;
}

export interface LoadedForCli {
  spec: ClusterSpec;
  raw: unknown;
}

/** loadClusterSpec with its SpecError turned into a usage error (exit 2) listing every problem. */
export function loadSpec(file: string): LoadedForCli {
  try {
    return loadClusterSpec(file);
  } catch (err) {
    if (err instanceof SpecError) throw new SpecCliError(err);
    throw err;
  }
}

/** A spec that does not validate: exit 2, the issues kept for --json. */
export class SpecCliError extends CliError {
  constructor(readonly spec: SpecError) {
    super(specErrorText(spec), EXIT.usage);
  }
}

export interface SpecSummary {
  cluster: string;
  image: { version: string; library: string };
  nodes:
    | { mode: 'listed'; count: number; withMac: number; withIp: number }
    | { mode: 'discover'; subnet: string; maxNodes: number };
  network: { interface: string; subnet: string; controller: string; dhcpMode: string };
  pacing: { order: string; intervalMs: number; maxBooting: number };
  timeouts: { installMs: number; dhcpSeenMs: number; attempts: number };
  eta: {
    /** at least this long until the last node is powered on (pacing alone) */
    powerOnMs: number;
    /** the most it can take if every attempt of every node runs into the install timeout */
    worstCaseMs: number;
  };
}

export function summarizeSpec(spec: ClusterSpec): SpecSummary {
  const ipmi = parseCidr(spec.ipmi.subnet);
  const discoverMax = spec.discovery?.maxNodes ?? (ipmi ? hostCount(ipmi) : 0);
  const n = spec.nodes ? spec.nodes.length : discoverMax;
  const { interval, maxBooting } = spec.power;
  const powerOnMs = Math.max(0, n - 1) * interval;
  // waves of maxBooting nodes, each attempt of each wave waiting out the install timeout
  const waves = Math.ceil(n / maxBooting);
  const worstCaseMs = powerOnMs + waves * spec.retry.attempts * spec.timeouts.install;
  return {
    cluster: spec.name,
    image: { version: spec.iso.version, library: spec.iso.library },
    nodes: spec.nodes
      ? {
          mode: 'listed',
          count: spec.nodes.length,
          withMac: spec.nodes.filter((x) => x.mac).length,
          withIp: spec.nodes.filter((x) => x.ip).length,
        }
      : { mode: 'discover', subnet: spec.ipmi.subnet, maxNodes: discoverMax },
    network: {
      interface: spec.network.interface,
      subnet: spec.network.subnet,
      controller: spec.network.controller,
      dhcpMode: spec.network.dhcpMode,
    },
    pacing: { order: spec.power.order, intervalMs: interval, maxBooting },
    timeouts: {
      installMs: spec.timeouts.install,
      dhcpSeenMs: spec.timeouts.dhcpSeen,
      attempts: spec.retry.attempts,
    },
    eta: { powerOnMs, worstCaseMs },
  };
}

export function summaryText(s: SpecSummary): string {
  const nodes =
    s.nodes.mode === 'listed'
      ? `${s.nodes.count} listed (${s.nodes.withMac} with a MAC, ${s.nodes.withIp} with a fixed IP)`
      : `discover in ${s.nodes.subnet} (up to ${s.nodes.maxNodes} nodes, powered on by BMC address)`;
  const count = s.nodes.mode === 'listed' ? s.nodes.count : s.nodes.maxNodes;
  const rows: Array<[string, string]> = [
    ['image', `${s.image.version} (library ${s.image.library})`],
    ['nodes', nodes],
    [
      'network',
      `${s.network.interface} ${s.network.subnet}, controller ${s.network.controller}, DHCP ${s.network.dhcpMode}`,
    ],
    [
      'pacing',
      `one power-on every ${formatDuration(s.pacing.intervalMs)}, at most ${s.pacing.maxBooting} booting, order ${s.pacing.order}`,
    ],
    [
      'timeouts',
      `install ${formatDuration(s.timeouts.installMs)}, DHCP seen ${formatDuration(s.timeouts.dhcpSeenMs)}, ${s.timeouts.attempts} attempt(s) per node`,
    ],
    [
      'ETA',
      `≥ ${formatDuration(s.eta.powerOnMs)} to power on ${s.nodes.mode === 'discover' ? 'up to ' : ''}${count} node(s); at most ~${formatDuration(s.eta.worstCaseMs)} if every attempt times out`,
    ],
  ];
  return (
    [`cluster ${s.cluster}: spec OK`, ...rows.map(([k, v]) => `  ${k.padEnd(9)} ${v}`)].join('\n') + '\n'
  );
}
