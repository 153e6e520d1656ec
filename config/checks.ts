// Cross-field rules of the cluster spec (run after every field is valid on its own). Pure, sandbox-safe.
import type { z } from 'zod';
import {
  type Cidr,
  cidrContains,
  cidrsOverlap,
  formatCidr,
  hostCount,
  isNetworkOrBroadcast,
  parseCidr,
  parseIPv4,
  rangeSize,
} from './ipv4.ts';
import type { SpecObject } from './schema.ts';

type Path = (string | number)[];
type Ctx = z.core.$RefinementCtx<SpecObject>;

/** Largest IPMI subnet pxeflow will sweep when discovering BMCs (a /16 is 65,534 addresses). */
export const MAX_DISCOVERY_PREFIX = 16;

export function checkClusterSpec(spec: SpecObject, ctx: Ctx): void {
  const fail = (path: Path, message: string) => ctx.addIssue({ code: 'custom', path, message });
  const ipmiNet = parseCidr(spec.ipmi.subnet)!;
  const provNet = parseCidr(spec.network.subnet)!;
  const { network, nodes } = spec;

  if (cidrsOverlap(ipmiNet, provNet)) {
    fail(
      ['network', 'subnet'],
      `overlaps ipmi.subnet ${spec.ipmi.subnet}; the IPMI and provisioning networks must be distinct`,
    );
  }

  /** A host address on the provisioning network: inside it, not its network/broadcast address. */
  const hostOnProv = (path: Path, text: string): number | undefined => {
    const address = parseIPv4(text)!;
    return hostIn(provNet, 'network.subnet', path, text, address, fail) ? address : undefined;
  };

  const controller = hostOnProv(['network', 'controller'], network.controller);
  const gateway =
    network.gateway === undefined ? undefined : hostOnProv(['network', 'gateway'], network.gateway);

  // The dynamic range.
  let range: { start: number; end: number } | undefined;
  if (network.dhcpMode === 'proxy') {
    if (network.range) {
      fail(['network', 'range'], 'not used in proxy mode: the existing DHCP server hands out the addresses');
    }
  } else if (!network.range) {
    fail(
      ['network', 'range'],
      'required in authoritative mode (addresses for discovery and nodes without a fixed ip)',
    );
  } else {
    const start = hostOnProv(['network', 'range', 'start'], network.range.start);
    const end = hostOnProv(['network', 'range', 'end'], network.range.end);
    if (start !== undefined && end !== undefined) {
      if (end < start)
        fail(['network', 'range'], `end ${network.range.end} is before start ${network.range.start}`);
      else range = { start, end };
    }
  }
  const inRange = (address: number) => range !== undefined && address >= range.start && address <= range.end;
  const rangeText = network.range ? `${network.range.start}-${network.range.end}` : '';
  if (controller !== undefined && inRange(controller)) {
    fail(
      ['network', 'controller'],
      `${network.controller} is inside the dynamic range ${rangeText}; DHCP could hand it to a node`,
    );
  }
  if (gateway !== undefined && inRange(gateway)) {
    fail(
      ['network', 'gateway'],
      `${network.gateway} is inside the dynamic range ${rangeText}; DHCP could hand it to a node`,
    );
  }

  if (nodes === undefined) {
    checkDiscovery(spec, ipmiNet, range, fail);
    return;
  }
  if (spec.discovery) fail(['discovery'], 'only applies without a node list (remove it, or remove "nodes")');

  const names = new Map<string, number>();
  const bmcs = new Map<string, number>();
  const macs = new Map<string, number>();
  const ips = new Map<number, number>();
  const firstUse = (
    map: Map<string | number, number>,
    key: string | number,
    index: number,
  ): number | undefined => {
    const previous = map.get(key);
    if (previous === undefined) map.set(key, index);
    return previous;
  };
  const owner = (index: number) => `nodes[${index}] (${nodes[index].name})`;
  let needRange = 0;

  nodes.forEach((node, i) => {
    const at = (field: string): Path => ['nodes', i, field];
    const dupName = firstUse(names, node.name, i);
    if (dupName !== undefined) fail(at('name'), `"${node.name}" is already the name of nodes[${dupName}]`);

    const bmc = parseIPv4(node.bmc)!;
    hostIn(ipmiNet, 'ipmi.subnet', at('bmc'), node.bmc, bmc, fail);
    const bmcPort = node.bmcPort ?? spec.ipmi.port;
    const dupBmc = firstUse(bmcs, `${node.bmc}:${bmcPort}`, i);
    if (dupBmc !== undefined)
      fail(at('bmc'), `BMC ${node.bmc} port ${bmcPort} is already used by ${owner(dupBmc)}`);

    if (node.mac !== undefined) {
      const dupMac = firstUse(macs, node.mac, i);
      if (dupMac !== undefined) fail(at('mac'), `${node.mac} is already the MAC of ${owner(dupMac)}`);
    }

    if (node.ip === undefined || node.mac === undefined) needRange++;
    if (node.ip === undefined) return;
    if (network.dhcpMode === 'proxy') {
      fail(
        at('ip'),
        'fixed addresses need dhcpMode authoritative; in proxy mode the existing DHCP server assigns them',
      );
      return;
    }
    const ip = hostOnProv(at('ip'), node.ip);
    if (ip === undefined) return;
    const dupIp = firstUse(ips, ip, i);
    if (dupIp !== undefined) fail(at('ip'), `${node.ip} is already the address of ${owner(dupIp)}`);
    if (ip === controller) fail(at('ip'), `${node.ip} is the controller address (network.controller)`);
    if (ip === gateway) fail(at('ip'), `${node.ip} is the gateway address (network.gateway)`);
    if (inRange(ip))
      fail(at('ip'), `${node.ip} is inside the dynamic range ${rangeText}; pick an address outside it`);
  });

  if (range !== undefined && needRange > rangeSize(range.start, range.end)) {
    fail(
      ['network', 'range'],
      `holds ${rangeSize(range.start, range.end)} addresses but ${needRange} nodes need one ` +
        '(nodes without a fixed ip, or without a mac: their first lease comes from the range)',
    );
  }
}

function checkDiscovery(
  spec: SpecObject,
  ipmiNet: Cidr,
  range: { start: number; end: number } | undefined,
  fail: (path: Path, message: string) => void,
): void {
  if (ipmiNet.prefix < MAX_DISCOVERY_PREFIX) {
    fail(
      ['ipmi', 'subnet'],
      `discovery sweeps every address: ${formatCidr(ipmiNet)} is larger than /${MAX_DISCOVERY_PREFIX}; list the nodes or narrow the subnet`,
    );
    return;
  }
  const wanted = spec.discovery?.maxNodes ?? hostCount(ipmiNet);
  if (range !== undefined && wanted > rangeSize(range.start, range.end)) {
    const why = spec.discovery
      ? `discovery.maxNodes is ${wanted}`
      : `discovery may find up to ${wanted} BMCs in ${formatCidr(ipmiNet)} (set discovery.maxNodes to expect fewer)`;
    fail(['network', 'range'], `holds ${rangeSize(range.start, range.end)} addresses but ${why}`);
  }
}

/** Reports and returns false when `address` is outside `net` or is its network/broadcast address. */
function hostIn(
  net: Cidr,
  netName: string,
  path: Path,
  text: string,
  address: number,
  fail: (path: Path, message: string) => void,
): boolean {
  if (!cidrContains(net, address)) {
    fail(path, `${text} is outside ${netName} ${formatCidr(net)}`);
    return false;
  }
  if (isNetworkOrBroadcast(net, address)) {
    const which = address === net.network ? 'network' : 'broadcast';
    fail(path, `${text} is the ${which} address of ${netName} ${formatCidr(net)}, not a host address`);
    return false;
  }
  return true;
}
