// Why dnsmasq cannot start, found before starting it (port 67 taken, controller address missing) or read from
// what it printed when it gave up.
import { networkInterfaces } from 'node:os';
import type { DhcpStartFailure } from './log-parser.ts';
import { findUdpListeners } from './system.ts';

/** dnsmasq could not start; `failure` says why in one word, the message says it for people. */
export class DhcpStartError extends Error {
  constructor(
    readonly failure: DhcpStartFailure | 'address-missing' | 'timeout',
    message: string,
  ) {
    super(message);
    this.name = 'DhcpStartError';
  }
}

export function describeFailure(failure: DhcpStartFailure, iface: string, message: string): string {
  switch (failure) {
    case 'port-in-use':
      return `UDP port 67 is already in use on this host/namespace (another DHCP server?): dnsmasq said "${message}"`;
    case 'no-such-interface':
      return `the provisioning interface "${iface}" does not exist: dnsmasq said "${message}"`;
    default:
      return `dnsmasq could not start: ${message}`;
  }
}

/**
 * Checks dnsmasq would not report itself: with bind-interfaces it binds port 67 with SO_REUSEADDR, so a second
 * DHCP server on the same port (even another dnsmasq) would start silently next to it.
 */
export async function preflight(iface: string, controllerAddress: string): Promise<void> {
  // a socket bound to another interface (another pxeflow controller on another provisioning bridge) is no conflict
  const listeners = (await findUdpListeners(67)).filter((l) => l.device === undefined || l.device === iface);
  if (listeners.length) {
    const who = listeners.map((l) => `${l.local}${l.process ? ` (${l.process})` : ''}`).join(', ');
    throw new DhcpStartError(
      'port-in-use',
      `UDP port 67 is already in use in this network namespace: ${who}`,
    );
  }
  const addrs = networkInterfaces()[iface];
  if (addrs && !addrs.some((a) => a.family === 'IPv4' && a.address === controllerAddress)) {
    throw new DhcpStartError(
      'address-missing',
      `the controller address ${controllerAddress} is not configured on interface "${iface}" ` +
        `(it has ${addrs.map((a) => a.address).join(', ') || 'no address'})`,
    );
  }
}
