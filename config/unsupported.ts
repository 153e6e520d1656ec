// Spec values that parse but that pxeflow cannot carry out yet: refused before anything is powered on, with the
// reason. Pure, sandbox-safe (the ClusterInstall workflow runs it too).
import type { SpecIssue } from './errors.ts';
import type { ClusterSpec } from './schema.ts';

/**
 * proxyDHCP: tried with a real iPXE client next to a site DHCP server, pxeflow's proxy replies carry no boot file
 * (dnsmasq sends per-host boot options only in its own leases), and dnsmasq's proxy log lines carry no IP, so the
 * node workflow never sees its DHCP address: every node would time out. What it takes is in docs/proxy-dhcp.md.
 */
export function unsupportedProblems(spec: ClusterSpec): SpecIssue[] {
  if (spec.network.dhcpMode !== 'proxy') return [];
  return [
    {
      path: 'network.dhcpMode',
      message:
        'proxy is not available yet: a real PXE client gets no boot file from it and its address is never seen, so ' +
        'every node would time out (docs/proxy-dhcp.md); use authoritative on a provisioning network of its own',
    },
  ];
}
