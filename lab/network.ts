// The lab's provisioning network: a bridge on this host (the controller side, like the provisioning NIC of a
// real control host) and one network namespace per node, attached by a veth pair, with the node's MAC.
// Nothing has an uplink: the bridge is not enslaved to any physical NIC and node namespaces have no default
// route, so no packet leaves this machine. Names carry a per-lab id and are removed by exact name.
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { formatIPv4 } from '../config/ipv4.ts';

export interface LabNode {
  index: number;
  ns: string;
  mac: string;
  /** host side of the veth pair (on the bridge) */
  hostIf: string;
}

export interface ProvisioningNetwork {
  id: string;
  bridge: string;
  /** e.g. 10.213.7.0/24 */
  subnet: string;
  controller: string;
  prefix: number;
  nodes: LabNode[];
  addNodes(count: number): Promise<LabNode[]>;
  destroy(): Promise<void>;
}

/** nodes per bridge: below the kernel's 1,024 ports, with room for qemu taps and the leaf uplinks */
const PORTS_PER_BRIDGE = 1000;

/** Runs an `ip` script; on stdin, since a script for thousands of nodes exceeds the 128 KiB argv limit. */
async function sh(script: string): Promise<void> {
  await execa('bash', ['-e'], { input: script });
}

/** A /24 (or larger, e.g. /20 for thousands of nodes) in 10.200–249.x.0, picked at random so parallel labs do
 *  not collide. The controller is the first host. */
export function randomLabSubnet(prefix = 24): { subnet: string; controller: string; base: number } {
  if (prefix < 16 || prefix > 24) throw new Error(`lab subnet prefix ${prefix}: expected 16..24`);
  const b = randomBytes(2);
  const size = 2 ** (32 - prefix);
  const base = (((10 << 24) | ((200 + (b[0] % 50)) << 16) | (b[1] << 8)) >>> 0) & ~(size - 1);
  return {
    subnet: `${formatIPv4(base >>> 0)}/${prefix}`,
    controller: formatIPv4((base + 1) >>> 0),
    base: base >>> 0,
  };
}

export function labMac(id: string, index: number): string {
  // locally administered unicast (52:54:00 is qemu's prefix; keep it so qemu nodes and sims look alike)
  const idByte = Number.parseInt(id.slice(0, 2), 16);
  return [
    '52',
    '54',
    idByte.toString(16).padStart(2, '0'),
    ((index >> 16) & 0xff).toString(16).padStart(2, '0'),
    ((index >> 8) & 0xff).toString(16).padStart(2, '0'),
    (index & 0xff).toString(16).padStart(2, '0'),
  ].join(':');
}

export async function createProvisioningNetwork(
  opts: { id?: string; subnet?: string; controller?: string; prefix?: number } = {},
): Promise<ProvisioningNetwork> {
  const id = opts.id ?? randomBytes(2).toString('hex');
  const picked = randomLabSubnet(opts.prefix);
  const subnet = opts.subnet ?? picked.subnet;
  const controller = opts.controller ?? picked.controller;
  const prefix = Number(subnet.split('/')[1]);
  const bridge = `pxf${id}br`;
  const nodes: LabNode[] = [];
  const leaves: string[] = [];
  const portBridge = (index: number) => {
    const k = Math.floor((index - 1) / PORTS_PER_BRIDGE);
    return k === 0 ? bridge : `pxf${id}l${k}`;
  };
  // IPv6 on the bridge lets dnsmasq send router advertisements, so iPXE does not wait 13 s for one.
  const v6 = `fd00:${id}::1/64`;
  await sh(
    [
      `ip link add ${bridge} type bridge`,
      `ip link set ${bridge} type bridge stp_state 0 forward_delay 0`,
      `ip addr add ${controller}/${prefix} dev ${bridge}`,
      `ip -6 addr add ${v6} dev ${bridge} nodad || true`,
      `ip link set ${bridge} up`,
    ].join('\n'),
  );
  const net: ProvisioningNetwork = {
    id,
    bridge,
    subnet,
    controller,
    prefix,
    nodes,
    async addNodes(count) {
      const added: LabNode[] = [];
      const lines: string[] = [];
      for (let i = 0; i < count; i++) {
        const index = nodes.length + added.length + 1;
        const node: LabNode = {
          index,
          ns: `pxf-${id}-n${index}`,
          mac: labMac(id, index),
          hostIf: `pxf${id}h${index}`,
        };
        added.push(node);
        const port = portBridge(index);
        if (port !== bridge && !leaves.includes(port)) {
          // a Linux bridge takes at most 1,024 ports (EXFULL beyond): nodes past the first 1,000 go on leaf
          // bridges, each joined to the main one by a veth pair — one L2 segment, as behind a switch stack
          const k = leaves.length + 1;
          leaves.push(port);
          lines.push(
            `ip link add ${port} type bridge`,
            `ip link set ${port} type bridge stp_state 0 forward_delay 0`,
            `ip link add pxf${id}u${k} type veth peer name pxf${id}v${k}`,
            `ip link set pxf${id}u${k} master ${bridge} up`,
            `ip link set pxf${id}v${k} master ${port} up`,
            `ip link set ${port} up`,
          );
        }
        lines.push(
          `ip netns add ${node.ns}`,
          // Simulated nodes speak IPv4 only. Without this each would take an address from the bridge's router
          // advertisement and fill the host's IPv6 neighbour table (gc_thresh3 = 1024) beyond ~500 nodes.
          // (qemu nodes sit on taps on the bridge, not in this stack: iPXE still gets its RA.)
          `ip netns exec ${node.ns} sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1`,
          `ip link add ${node.hostIf} type veth peer name eth0 netns ${node.ns}`,
          `ip link set ${node.hostIf} master ${port} up`,
          `ip -n ${node.ns} link set lo up`,
          `ip -n ${node.ns} link set eth0 address ${node.mac} up`,
        );
      }
      try {
        await sh(lines.join('\n'));
      } finally {
        nodes.push(...added);
      }
      return added;
    },
    async destroy() {
      const lines = nodes.flatMap((n) => [
        `ip netns del ${n.ns} 2>/dev/null || true`,
        `ip link del ${n.hostIf} 2>/dev/null || true`,
      ]);
      for (const [i, leaf] of leaves.entries())
        lines.push(
          `ip link del pxf${id}u${i + 1} 2>/dev/null || true`,
          `ip link del ${leaf} 2>/dev/null || true`,
        );
      lines.push(`ip link del ${bridge} 2>/dev/null || true`);
      leaves.length = 0;
      await sh(lines.join('\n'));
      nodes.length = 0;
    },
  };
  return net;
}

/** Namespaces and links of labs (by our `pxf-` / `pxf` prefixes) still present: leak checks. */
export async function leftoverLabObjects(id?: string): Promise<string[]> {
  const { stdout: ns } = await execa('ip', ['netns', 'list']);
  const { stdout: links } = await execa('ip', ['-o', 'link', 'show']);
  const nsHits = ns
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.startsWith(id ? `pxf-${id}-` : 'pxf-'));
  const linkHits = links
    .split('\n')
    .map((l) => l.split(':')[1]?.trim().split('@')[0] ?? '')
    .filter((n) => n.startsWith(id ? `pxf${id}` : 'pxf') && !n.startsWith('pxf-'));
  return [...nsHits, ...linkHits];
}
