// The controller's DHCP: the dnsmasq supervisor (netboot/dhcp) configured from the cluster spec's network.
import type { Logger } from 'pino';
import type { ClusterSpec } from '../config/schema.ts';
import { type DhcpService, startDhcp } from '../netboot/dhcp/supervisor.ts';
import type { BootEvent } from '../netboot/types.ts';

export type { DhcpReservation } from '../netboot/dhcp/supervisor.ts';
export type DhcpPort = Pick<
  DhcpService,
  'setReservation' | 'removeReservation' | 'openDiscoveryWindow' | 'closeDiscoveryWindow' | 'stop' | 'leases'
>;

export interface DhcpPortOptions {
  stateDir: string;
  network: ClusterSpec['network'];
  interface: string;
  controllerAddress: string;
  /** BIOS firmware: chain to iPXE (default) or the legacy pxelinux-over-TFTP path */
  biosBootFile?: 'undionly.kpxe' | 'pxelinux.0';
  /** proxy mode: the controller's boot-by-MAC URL (iPXE appends its MAC) */
  proxyBootUrl?: string;
  dnsmasqPath?: string;
  onEvent: (e: BootEvent) => void;
  logger: Logger;
}

export async function startDhcpPort(opts: DhcpPortOptions): Promise<DhcpPort> {
  const n = opts.network;
  return await startDhcp({
    stateDir: opts.stateDir,
    interface: opts.interface,
    controllerAddress: opts.controllerAddress,
    subnet: n.subnet,
    mode: n.dhcpMode,
    range: n.dhcpMode === 'proxy' ? undefined : n.range,
    gateway: n.gateway,
    dns: n.dns,
    domain: n.domain,
    biosBootFile: opts.biosBootFile,
    proxyBootUrl: n.dhcpMode === 'proxy' ? opts.proxyBootUrl : undefined,
    dnsmasqPath: opts.dnsmasqPath,
    onEvent: opts.onEvent,
    logger: opts.logger.child({ component: 'netboot-dhcp' }),
  });
}
