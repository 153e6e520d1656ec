// Small, pure IPv4 and CIDR helpers. Hand-written on purpose: this module is imported inside the Temporal
// workflow sandbox (via config/schema.ts), where Node's `net` is not available, and the npm IP libraries pull in
// Buffer or bigint-heavy code for IPv6 we do not need. Addresses are handled as unsigned 32-bit integers.

export interface Cidr {
  /** network address as an unsigned 32-bit integer */
  network: number;
  prefix: number;
  /** number of addresses in the block (2^(32-prefix)) */
  size: number;
  /** broadcast address (last address of the block) */
  broadcast: number;
}

const OCTET = /^(0|[1-9][0-9]{0,2})$/;

/** Parses dotted-quad IPv4 ("10.0.0.1") to an unsigned int, or undefined. Leading zeros are rejected (octal ambiguity). */
export function parseIPv4(text: string): number | undefined {
  if (typeof text !== 'string') return undefined;
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!OCTET.test(part)) return undefined;
    const octet = Number(part);
    if (octet > 255) return undefined;
    value = value * 256 + octet;
  }
  return value;
}

export function isIPv4(text: string): boolean {
  return parseIPv4(text) !== undefined;
}

/** Unsigned int → dotted quad. */
export function formatIPv4(value: number): string {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`not an IPv4 address value: ${value}`);
  }
  return [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255].join('.');
}

/** Why `text` is not a valid IPv4 address, or undefined when it is. */
export function ipv4Problem(text: string): string | undefined {
  if (parseIPv4(text) !== undefined) return undefined;
  return `${JSON.stringify(text)} is not an IPv4 address (expected four numbers 0-255 like 10.0.0.1, no leading zeros)`;
}

/** Why `text` is not a valid CIDR block ("10.0.0.0/24"), or undefined when it is. Host bits must be zero. */
export function cidrProblem(text: string): string | undefined {
  if (typeof text !== 'string') return 'expected a string like 10.0.0.0/24';
  const slash = text.indexOf('/');
  if (slash < 0) return `${JSON.stringify(text)} is not a CIDR block: missing "/prefix" (e.g. 10.0.0.0/24)`;
  const address = parseIPv4(text.slice(0, slash));
  const prefixText = text.slice(slash + 1);
  if (address === undefined) return `${JSON.stringify(text)} is not a CIDR block: bad address part`;
  if (!/^(0|[1-9][0-9]?)$/.test(prefixText) || Number(prefixText) > 32) {
    return `${JSON.stringify(text)} is not a CIDR block: prefix must be 0-32`;
  }
  const prefix = Number(prefixText);
  const network = maskAddress(address, prefix);
  if (network !== address) {
    return `${JSON.stringify(text)} has host bits set; the network is ${formatIPv4(network)}/${prefix}`;
  }
  return undefined;
}

/** Parses "10.0.0.0/24" (host bits must be zero), or undefined. */
export function parseCidr(text: string): Cidr | undefined {
  if (cidrProblem(text) !== undefined) return undefined;
  const [addr, prefixText] = text.split('/');
  const prefix = Number(prefixText);
  const network = parseIPv4(addr)!;
  const size = 2 ** (32 - prefix);
  return { network, prefix, size, broadcast: network + size - 1 };
}

function maskAddress(address: number, prefix: number): number {
  const size = 2 ** (32 - prefix);
  return address - (address % size);
}

export function cidrContains(cidr: Cidr, address: number): boolean {
  return address >= cidr.network && address <= cidr.broadcast;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.network <= b.broadcast && b.network <= a.broadcast;
}

/** Usable host addresses (network and broadcast excluded; prefix 31/32 follow RFC 3021 and have none excluded). */
export function hostCount(cidr: Cidr): number {
  return cidr.prefix >= 31 ? cidr.size : cidr.size - 2;
}

/** First usable host address. */
export function firstHost(cidr: Cidr): number {
  return cidr.prefix >= 31 ? cidr.network : cidr.network + 1;
}

/** Last usable host address. */
export function lastHost(cidr: Cidr): number {
  return cidr.prefix >= 31 ? cidr.broadcast : cidr.broadcast - 1;
}

/** True for the network or broadcast address of a block with prefix <= 30. */
export function isNetworkOrBroadcast(cidr: Cidr, address: number): boolean {
  return cidr.prefix <= 30 && (address === cidr.network || address === cidr.broadcast);
}

/** Number of addresses from start to end inclusive (0 when end < start). */
export function rangeSize(start: number, end: number): number {
  return end < start ? 0 : end - start + 1;
}

/** The dotted netmask of a prefix length (24 → 255.255.255.0). */
export function netmask(prefix: number): string {
  return formatIPv4(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIPv4(cidr.network)}/${cidr.prefix}`;
}
