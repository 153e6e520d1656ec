// IPv4 CIDR arithmetic for BMC discovery. Hand-written: it is a dozen lines and the scanner must enumerate
// exactly the given subnet and nothing else, which is easiest to see (and test) here.

export interface Ipv4Subnet {
  /** network address as an unsigned 32-bit integer */
  network: number;
  prefix: number;
}

export function ipv4ToInt(address: string): number {
  const parts = address.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255)) {
    throw new RangeError(`not an IPv4 address: ${JSON.stringify(address)}`);
  }
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** Parses "10.1.2.0/24"; host bits set ("10.1.2.7/24") are an error, since they usually mean a typo. */
export function parseSubnet(cidr: string): Ipv4Subnet {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(cidr.trim());
  if (!m) throw new RangeError(`subnet ${JSON.stringify(cidr)}: expected CIDR like 10.0.0.0/24`);
  const prefix = Number(m[2]);
  if (prefix > 32) throw new RangeError(`subnet ${JSON.stringify(cidr)}: prefix must be 0..32`);
  const address = ipv4ToInt(m[1]);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  if ((address & ~mask) >>> 0 !== 0) {
    throw new RangeError(
      `subnet ${JSON.stringify(cidr)}: host bits set (network is ${intToIpv4(address & mask)})`,
    );
  }
  return { network: address >>> 0, prefix };
}

/** Usable host addresses (network and broadcast excluded for prefixes up to /30), in numeric order. */
export function hostsInSubnet(cidr: string, maxHosts = 65534): string[] {
  const { network, prefix } = parseSubnet(cidr);
  const size = 2 ** (32 - prefix);
  const first = prefix >= 31 ? network : network + 1;
  const last = prefix >= 31 ? network + size - 1 : network + size - 2;
  const count = last - first + 1;
  if (count > maxHosts) {
    throw new RangeError(`subnet ${cidr}: ${count} hosts is more than the limit of ${maxHosts}`);
  }
  const hosts: string[] = [];
  for (let n = first; n <= last; n++) hosts.push(intToIpv4(n));
  return hosts;
}

export function subnetContains(cidr: string, address: string): boolean {
  const { network, prefix } = parseSubnet(cidr);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  return (ipv4ToInt(address) & mask) >>> 0 === network;
}

/** Numeric address order, then port: the deterministic order of discovery results. */
export function compareEndpoints(
  a: { address: string; port: number },
  b: { address: string; port: number },
): number {
  return ipv4ToInt(a.address) - ipv4ToInt(b.address) || a.port - b.port;
}
