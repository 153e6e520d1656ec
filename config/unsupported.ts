// Spec values that parse but that pxeflow cannot carry out yet: refused before anything is powered on, with the
// reason. Pure, sandbox-safe (the ClusterInstall workflow runs it too).
import type { SpecIssue } from './errors.ts';
import type { ClusterSpec } from './schema.ts';

/**
 * proxyDHCP answers reserved MACs only (docs/proxy-dhcp.md): a node list where every node has its MAC. Discovery
 * and MAC learning work by handing an unknown machine an address, which in proxy mode is the site server's job.
 */
export function unsupportedProblems(spec: ClusterSpec): SpecIssue[] {
  if (spec.network.dhcpMode !== 'proxy') return [];
  const why = 'in proxy mode pxeflow answers reserved MACs only (docs/proxy-dhcp.md)';
  if (!spec.nodes) {
    return [
      {
        path: 'network.dhcpMode',
        message: `proxy needs a node list with every node's mac: discovery hands unknown machines an address, and ${why}`,
      },
    ];
  }
  return spec.nodes.flatMap((node, i) =>
    node.mac ? [] : [{ path: `nodes[${i}].mac`, message: `required with dhcpMode proxy: ${why}` }],
  );
}
