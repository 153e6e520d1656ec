// Renders the dnsmasq configuration for the provisioning network (a pure function of validated options).
// dnsmasq does DHCP only here: DNS (port=0) and TFTP are off, it binds to the provisioning interface alone,
// answers reserved MACs only (unknown ones while a discovery window is open) and picks the boot file by
// client architecture and iPXE user class. Per-host data lives in files dnsmasq watches (see reservations.ts).
import { resolve } from 'node:path';
import { z } from 'zod';
import {
  cidrContains,
  formatIPv4,
  hostCount,
  ipv4Problem,
  netmask,
  parseCidr,
  parseIPv4,
} from '../../config/ipv4.ts';

/** Where dnsmasq's state lives under the DHCP state directory. */
export interface DhcpPaths {
  stateDir: string;
  /** the rendered configuration */
  conf: string;
  /** leases survive dnsmasq and controller restarts */
  leases: string;
  /** one file per reserved MAC + the discovery-window file (dhcp-hostsdir, watched with inotify) */
  hostsDir: string;
  /** one file per reserved MAC with its iPXE boot URL (dhcp-optsdir, watched with inotify) */
  optsDir: string;
  /** staging area for atomic writes: same filesystem, not watched by dnsmasq */
  tmpDir: string;
}

export function dhcpPaths(stateDir: string): DhcpPaths {
  const dir = resolve(stateDir);
  return {
    stateDir: dir,
    conf: `${dir}/dnsmasq.conf`,
    leases: `${dir}/leases`,
    hostsDir: `${dir}/hosts`,
    optsDir: `${dir}/opts`,
    tmpDir: `${dir}/tmp`,
  };
}

const ipv4 = z.string().superRefine((v, ctx) => {
  const problem = ipv4Problem(v);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
/** Anything written into the config must not be able to add a line or a field. */
const safeUrl = z
  .string()
  .regex(/^https?:\/\/[^\s",\\]+$/, 'must be an http(s) URL without spaces, quotes, commas or backslashes');

export const dhcpConfigSchema = z
  .strictObject({
    stateDir: z.string().min(1),
    interface: z
      .string()
      .regex(/^(?!\.{1,2}$)[A-Za-z0-9._-]{1,15}$/, 'must be a Linux interface name (1-15 of [A-Za-z0-9._-])'),
    controllerAddress: ipv4,
    /** the provisioning network, e.g. 10.77.0.0/24 */
    subnet: z.string().refine((v) => parseCidr(v) !== undefined, 'must be a CIDR block like 10.77.0.0/24'),
    mode: z.enum(['authoritative', 'proxy']).default('authoritative'),
    /** dynamic range: used by discovery windows and by reservations without a fixed IP */
    range: z.strictObject({ start: ipv4, end: ipv4 }).optional(),
    leaseTimeSeconds: z.number().int().min(120).max(31_536_000).default(3600),
    leaseMax: z.number().int().min(1).max(1_000_000).optional(),
    gateway: ipv4.optional(),
    dns: z.array(ipv4).max(8).default([]),
    domain: z
      .string()
      .regex(/^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i)
      .optional(),
    /** boot file for BIOS firmware that is not iPXE yet: chain to iPXE, or the legacy pxelinux path */
    biosBootFile: z.enum(['undionly.kpxe', 'pxelinux.0']).default('undionly.kpxe'),
    /** boot file for UEFI x64 firmware (client-arch 7 or 9) that is not iPXE yet */
    uefiBootFile: z
      .string()
      .regex(/^[A-Za-z0-9._/-]{1,128}$/)
      .default('ipxe.efi'),
    /** iPXE boot URL for iPXE clients that have no per-host URL (e.g. a node seen in a discovery window) */
    discoveryIpxeUrl: safeUrl.optional(),
    /** proxy mode: the controller's boot-by-MAC URL, to which iPXE appends its MAC (dnsmasq sends no per-host
     *  options in a proxy reply, so every reserved iPXE client gets this one file name) */
    proxyBootUrl: safeUrl.optional(),
    /** IPv6 router advertisements on the interface, so iPXE does not wait ~13 s for one */
    routerAdvertisement: z.boolean().default(true),
    /** unprivileged user/group dnsmasq drops to; its files must be readable by that group */
    user: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]{0,31}$/)
      .default('nobody'),
    group: z
      .string()
      .regex(/^[a-z_][a-z0-9_-]{0,31}$/)
      .default('nogroup'),
  })
  .superRefine((o, ctx) => {
    const cidr = parseCidr(o.subnet);
    if (!cidr) return;
    const inside = (field: (string | number)[], addr: string | undefined) => {
      const value = addr === undefined ? undefined : parseIPv4(addr);
      if (value !== undefined && !cidrContains(cidr, value)) {
        ctx.addIssue({ code: 'custom', path: field, message: `${addr} is outside the subnet ${o.subnet}` });
      }
    };
    inside(['controllerAddress'], o.controllerAddress);
    inside(['range', 'start'], o.range?.start);
    inside(['range', 'end'], o.range?.end);
    if (o.mode === 'authoritative') inside(['gateway'], o.gateway);
    if (o.range) {
      const s = parseIPv4(o.range.start);
      const e = parseIPv4(o.range.end);
      const c = parseIPv4(o.controllerAddress);
      if (s !== undefined && e !== undefined && e < s) {
        ctx.addIssue({ code: 'custom', path: ['range'], message: 'range.end is before range.start' });
      }
      if (s !== undefined && e !== undefined && c !== undefined && c >= s && c <= e) {
        ctx.addIssue({
          code: 'custom',
          path: ['range'],
          message: 'the controller address lies inside the range',
        });
      }
      if (o.mode === 'proxy') {
        ctx.addIssue({
          code: 'custom',
          path: ['range'],
          message: 'proxy mode assigns no addresses: omit range',
        });
      }
    }
    if (o.mode === 'proxy' && !o.proxyBootUrl) {
      ctx.addIssue({
        code: 'custom',
        path: ['proxyBootUrl'],
        message: 'required in proxy mode (the boot file iPXE clients get)',
      });
    }
  });

export type DhcpConfigInput = z.input<typeof dhcpConfigSchema>;
export type DhcpConfig = z.output<typeof dhcpConfigSchema>;

/** A bad DHCP option: names the field and the reason. */
export class DhcpConfigError extends Error {
  constructor(readonly issues: { path: string; message: string }[]) {
    super(`invalid DHCP settings: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`);
    this.name = 'DhcpConfigError';
  }
}

export function parseDhcpConfig(input: DhcpConfigInput): DhcpConfig {
  const r = dhcpConfigSchema.safeParse(input);
  if (!r.success) {
    throw new DhcpConfigError(r.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
  }
  return r.data;
}

/** The file name (in hostsDir) of the discovery window: a wildcard host entry dnsmasq re-reads live. */
export const DISCOVERY_FILE = 'discovery';
/** Tag dnsmasq sets on clients that matched the open discovery window. */
export const DISCOVERY_TAG = 'discovery';
/** Tag of every reserved MAC's hosts entry (proxy mode answers only these). */
export const RESERVED_TAG = 'pxeflow';

/** The dnsmasq configuration text. Throws DhcpConfigError on bad input. */
export function renderDnsmasqConfig(input: DhcpConfigInput): string {
  const o = parseDhcpConfig(input);
  const p = dhcpPaths(o.stateDir);
  const cidr = parseCidr(o.subnet)!;
  const mask = netmask(cidr.prefix);
  const network = formatIPv4(cidr.network);
  const lease = String(o.leaseTimeSeconds);
  const leaseMax = o.leaseMax ?? Math.min(Math.max(hostCount(cidr), 1), 65_536);
  const lines: string[] = [
    '# Generated by pxeflow (netboot/dhcp/config.ts). Do not edit: rewritten at every start.',
    '# DHCP only: no DNS, no TFTP (TFTP and HTTP are served by the controller).',
    'port=0',
    'no-hosts',
    'no-resolv',
    `user=${o.user}`,
    `group=${o.group}`,
    '# isolation: sockets bound to the provisioning interface only; nothing else is ever answered',
    `interface=${o.interface}`,
    'bind-interfaces',
    'except-interface=lo',
    '# logging goes to the supervisor (stderr), one line per event, no pid file',
    'log-dhcp',
    'log-facility=-',
    'keep-in-foreground',
    'pid-file',
    '# state that survives restarts; reservations and boot URLs change live (inotify, no SIGHUP)',
    `dhcp-leasefile=${p.leases}`,
    `dhcp-hostsdir=${p.hostsDir}`,
    `dhcp-optsdir=${p.optsDir}`,
    `dhcp-lease-max=${leaseMax}`,
    '# answer at once: no ping-before-offer (3 s), keep file/sname fields for old PXE ROMs',
    'no-ping',
    'dhcp-no-override',
    '# client classes',
    'dhcp-match=set:ipxe,175',
    'dhcp-userclass=set:ipxe,iPXE',
    'dhcp-match=set:bios,option:client-arch,0',
    'dhcp-match=set:efi,option:client-arch,6',
    'dhcp-match=set:efi,option:client-arch,7',
    'dhcp-match=set:efi,option:client-arch,9',
    'dhcp-match=set:efi64,option:client-arch,7',
    'dhcp-match=set:efi64,option:client-arch,9',
  ];

  if (o.mode === 'authoritative') {
    lines.push(
      '# authoritative for the provisioning network: unknown MACs are ignored unless a discovery window',
      '# (a wildcard dhcp-host in the hosts dir) is open',
      'dhcp-authoritative',
      'dhcp-ignore=tag:!known',
      `dhcp-range=set:prov,${network},static,${mask},${lease}`,
    );
    if (o.range) lines.push(`dhcp-range=set:prov,${o.range.start},${o.range.end},${mask},${lease}`);
    lines.push(
      // An empty option list tells dnsmasq not to send its own address as router.
      o.gateway ? `dhcp-option=option:router,${o.gateway}` : 'dhcp-option=option:router',
    );
    if (o.dns.length) lines.push(`dhcp-option=option:dns-server,${o.dns.join(',')}`);
    if (o.domain) lines.push(`domain=${o.domain}`, `dhcp-option=option:domain-name,${o.domain}`);
    lines.push(
      '# boot files for firmware that is not iPXE yet (mutually exclusive tags); next-server = controller',
      `dhcp-boot=tag:!ipxe,tag:efi64,${o.uefiBootFile},,${o.controllerAddress}`,
      `dhcp-boot=tag:!ipxe,tag:!efi,${o.biosBootFile},,${o.controllerAddress}`,
    );
    if (o.biosBootFile === 'pxelinux.0') {
      lines.push(
        '# legacy path: BIOS firmware that already is iPXE (a NIC ROM built from iPXE, as in qemu) gets',
        '# pxelinux.0 too, which it runs through its PXE API; otherwise it would have no boot file at all',
        `dhcp-boot=tag:ipxe,tag:!efi,pxelinux.0,,${o.controllerAddress}`,
      );
    }
  } else {
    lines.push(
      '# proxyDHCP: another server assigns addresses; dnsmasq adds only the PXE boot information, and only for',
      `# reserved MACs (tag ${RESERVED_TAG} of their hosts entry: "known" would match every MAC here, because the`,
      '# closed discovery window is a wildcard entry, and dnsmasq does not apply its "ignore" to proxy replies)',
      `dhcp-range=set:prov,${network},proxy,${mask}`,
      `dhcp-ignore=tag:!${RESERVED_TAG}`,
      `pxe-service=tag:!ipxe,tag:${RESERVED_TAG},x86PC,"pxeflow",${o.biosBootFile},${o.controllerAddress}`,
      `pxe-service=tag:!ipxe,tag:${RESERVED_TAG},BC_EFI,"pxeflow",${o.uefiBootFile},${o.controllerAddress}`,
      `pxe-service=tag:!ipxe,tag:${RESERVED_TAG},X86-64_EFI,"pxeflow",${o.uefiBootFile},${o.controllerAddress}`,
      '# iPXE: one file name for all (per-host options never reach a proxy reply); iPXE fills in its MAC and',
      '# takes a proxy offer only with a next-server',
      `dhcp-boot=tag:ipxe,tag:${RESERVED_TAG},${o.proxyBootUrl}\${net0/mac:hexhyp},,${o.controllerAddress}`,
    );
  }

  lines.push(
    '# iPXE: per-host boot URL comes from the opts dir (tag of its hosts entry);',
    '# option 175.176 (no-pxedhcp) = 1 so iPXE does not wait for ProxyDHCP offers',
    'dhcp-option=tag:ipxe,encap:175,176,1b',
  );
  if (o.discoveryIpxeUrl) {
    lines.push(`dhcp-option=tag:ipxe,option:bootfile-name,"${o.discoveryIpxeUrl}"`);
  }
  if (o.routerAdvertisement) {
    lines.push(
      '# IPv6 RA on the provisioning interface so iPXE does not wait ~13 s; router lifetime 0: nobody',
      '# takes a default route from it',
      'enable-ra',
      `dhcp-range=::,constructor:${o.interface},ra-only`,
      `ra-param=${o.interface},60,0`,
    );
  }
  return `${lines.join('\n')}\n`;
}
