// How many nodes one install can hold. Pure, sandbox-safe (the ClusterInstall workflow runs it too).
//
// Why a limit at all: a ClusterInstall carries its spec, its nodes' results and its table through every
// continue-as-new, and returns them all in its report. Temporal refuses a payload over 2 MiB (the server's
// blob size limit) — and it would refuse it at the *end* of the install, with every node already installed. So
// the size is estimated up front, from the spec, and a spec that cannot fit is refused before anything is
// powered on, with the number of nodes that would fit.
import { BOOT_PHASES } from '../netboot/types.ts';
import { hostCount, parseCidr } from './ipv4.ts';
import type { ClusterSpec } from './schema.ts';
import type { SpecIssue } from './errors.ts';

/** Temporal's default blob size limit (limit.blobSize.error) less room for encoding and the rest of the state. */
export const INSTALL_PAYLOAD_BUDGET = 1_900_000;

/** The times a successful node's result records: its power-on, the boot chain (its status is the outcome), the
 *  outcome. */
const PHASES = ['power-on', ...BOOT_PHASES.filter((p) => p !== 'status'), 'success'];
const TIMESTAMP = 1_700_000_000_000; // 13 digits, like every Date.now() until 2286
const IPV4 = '255.255.255.255';
const MAC = 'aa:bb:cc:dd:ee:ff';

interface NodeShape {
  name: string;
  bmc: string;
  mac?: string;
}

/**
 * Bytes one node adds to the largest payload of its install once it has installed: its result with every phase's
 * time, its table entry, and — when the node list is not in the spec (discovery) — its carried reference. This is
 * what a node that installs at its first attempt costs; a failed one adds a longer detail (at most DETAIL_MAX
 * characters in the parent) and a table entry per extra attempt. So a spec over the budget cannot complete.
 */
export function perNodeBytes(node: NodeShape, carriesNodeRef: boolean): number {
  const result = {
    node: node.name,
    bmcIp: node.bmc,
    mac: node.mac ?? MAC,
    dhcpIp: IPV4,
    outcome: 'success',
    detail: 'installed',
    attempts: 1,
    phases: Object.fromEntries(PHASES.map((p) => [p, TIMESTAMP])),
  };
  const entry = {
    node: node.name,
    bmcIp: node.bmc,
    mac: node.mac ?? MAC,
    dhcpIp: IPV4,
    attempt: 1,
    since: TIMESTAMP,
    phase: 'success',
  };
  const ref = { name: node.name, bmc: node.bmc, bmcPort: 623, osDisk: '/dev/sda', bootMode: 'auto' };
  // +1: the comma between array items
  return (
    JSON.stringify(result).length +
    1 +
    JSON.stringify(entry).length +
    1 +
    (carriesNodeRef ? JSON.stringify(ref).length + 1 : 0)
  );
}

/** Longest failure detail a ClusterInstall keeps per node (the node's own workflow keeps all of it). */
export const DETAIL_MAX = 200;

export interface InstallSize {
  nodes: number;
  /** estimated largest payload of the install (its input after continue-as-new, or its report) */
  bytes: number;
  /** most nodes like these one install holds */
  maxNodes: number;
}

/**
 * Estimates the largest payload of an install: the spec as submitted (`inputBytes`, JSON; every run gets it) plus
 * what each installed node adds. A discovering spec counts its most nodes.
 */
export function installSize(spec: ClusterSpec, inputBytes: number): InstallSize {
  let perNode: number;
  let nodes: number;
  if (spec.nodes) {
    nodes = spec.nodes.length;
    let sum = 0;
    for (const n of spec.nodes) sum += perNodeBytes(n, false);
    perNode = nodes > 0 ? sum / nodes : 0;
  } else {
    const ipmi = parseCidr(spec.ipmi.subnet);
    nodes = spec.discovery?.maxNodes ?? (ipmi ? hostCount(ipmi) : 0);
    perNode = perNodeBytes({ name: `${spec.name}-00000`, bmc: IPV4 }, true);
  }
  // a listed node also costs its entry in the spec
  const specPerNode = spec.nodes && nodes > 0 ? inputBytes / nodes : 0;
  const bytes = Math.ceil(inputBytes + perNode * nodes);
  const fixed = spec.nodes ? 0 : inputBytes;
  const maxNodes = Math.max(0, Math.floor((INSTALL_PAYLOAD_BUDGET - fixed) / (perNode + specPerNode)));
  return { nodes, bytes, maxNodes };
}

/** The spec's problem when one install cannot hold its nodes, else undefined. */
export function installSizeProblem(spec: ClusterSpec, inputBytes: number): SpecIssue | undefined {
  const size = installSize(spec, inputBytes);
  if (size.bytes <= INSTALL_PAYLOAD_BUDGET) return undefined;
  const mb = (b: number) => (b / 1e6).toFixed(1);
  const why =
    `one install carries every node's result and table entry through Temporal (~${mb(size.bytes)} MB for ` +
    `${size.nodes} nodes, over the ${mb(INSTALL_PAYLOAD_BUDGET)} MB that fits in a payload)`;
  return spec.nodes
    ? {
        path: 'nodes',
        message: `${size.nodes} nodes are too many for one install: ${why}; split the cluster into installs of at most ${size.maxNodes} nodes (they power on one after another)`,
      }
    : {
        path: 'discovery.maxNodes',
        message: `discovery may find ${size.nodes} BMCs, too many for one install: ${why}; set discovery.maxNodes to at most ${size.maxNodes}, or split ipmi.subnet into several installs`,
      };
}
