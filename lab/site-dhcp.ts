// The "site" DHCP server of a proxyDHCP lab: the DHCP server a real site already runs on its network, which
// hands out addresses and nothing else (no PXE options, no router, no DNS), so that pxeflow's own dnsmasq only
// adds the boot information. A bare dnsmasq in a namespace of its own (`pxf-<id>-site`, so the lab's leak
// checks see it), attached to the lab bridge by a veth pair like a node, with a static address on the
// provisioning subnet. Stopped by its PID, then the namespace and the host side of the pair by exact name.
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { formatIPv4, netmask, parseIPv4 } from '../config/ipv4.ts';
import { killTree } from './net/process-tree.ts';
import type { ProvisioningNetwork } from './network.ts';

export interface SiteDhcpInfo {
  /** the site server's own address on the provisioning subnet */
  address: string;
  /** the addresses it hands out */
  range: { start: string; end: string };
  /** dnsmasq's log (--log-dhcp): one DISCOVER/OFFER/REQUEST/ACK line per step */
  logFile: string;
  /** its namespace (pxf-<id>-site) */
  ns: string;
}

export interface SiteDhcp extends SiteDhcpInfo {
  readonly pid: number | undefined;
  /** stops dnsmasq (by PID), deletes the namespace and the host side of the veth pair; idempotent */
  stop(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;

export async function startSiteDhcp(
  network: ProvisioningNetwork,
  opts: { address: string; range: { start: string; end: string }; logFile: string },
): Promise<SiteDhcp> {
  const ns = `pxf-${network.id}-site`;
  const hostIf = `pxf${network.id}s`; // ≤ 15 chars; node ends are pxf<id>h<n>
  let pid: number | undefined;
  let exited: Promise<unknown> = Promise.resolve();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (pid !== undefined) await killTree(pid, { graceMs: 2000 });
    await exited;
    pid = undefined;
    await execa('ip', ['netns', 'del', ns], { reject: false, stdin: 'ignore' });
    await execa('ip', ['link', 'del', hostIf], { reject: false, stdin: 'ignore' });
  };
  try {
    await execa('bash', ['-e'], {
      input: [
        `ip netns add ${ns}`,
        `ip netns exec ${ns} sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1`,
        `ip link add ${hostIf} type veth peer name eth0 netns ${ns}`,
        `ip link set ${hostIf} master ${network.bridge} up`,
        `ip -n ${ns} link set lo up`,
        `ip -n ${ns} addr add ${opts.address}/${network.prefix} dev eth0`,
        `ip -n ${ns} link set eth0 up`,
      ].join('\n'),
    });
    // `ip netns exec` execs dnsmasq: the child's PID is dnsmasq's
    const child = execa(
      'ip',
      [
        'netns',
        'exec',
        ns,
        'dnsmasq',
        '--keep-in-foreground',
        '--conf-file=/dev/null',
        '--pid-file=',
        '--port=0',
        '--interface=eth0',
        '--bind-interfaces',
        `--dhcp-range=${opts.range.start},${opts.range.end},${netmask(network.prefix)},1h`,
        '--dhcp-option=3', // no router: nothing is routed off this machine
        '--dhcp-option=6', // no DNS
        '--no-ping',
        '--dhcp-authoritative',
        '--leasefile-ro',
        '--log-dhcp',
        `--log-facility=${opts.logFile}`,
      ],
      { stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', reject: false, cleanup: true },
    );
    pid = child.pid;
    let result: { exitCode?: number; signal?: string; stderr?: unknown } | undefined;
    exited = child.then((r) => {
      result = r;
    });
    // ready once it logged its DHCP range (the socket is bound by then); a bad option exits at once
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (result)
        throw new Error(
          `site dhcp: dnsmasq exited during start-up (${result.exitCode ?? result.signal}): ${String(result.stderr ?? '').trim()}`,
        );
      const log = await readFile(opts.logFile, 'utf8').catch(() => '');
      if (log.includes('DHCP, IP range')) break;
      if (Date.now() > deadline)
        throw new Error(`site dhcp: dnsmasq not ready within ${START_TIMEOUT_MS} ms`);
      await sleep(50);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    address: opts.address,
    range: opts.range,
    logFile: opts.logFile,
    ns,
    get pid() {
      return pid;
    },
    stop,
  };
}

/** The site server's address and range for a lab network: the address after the controller's, and the upper
 *  half of the range an authoritative lab uses (.175–.250 on a /24), so the two never overlap. */
export function siteDhcpPlan(
  network: Pick<ProvisioningNetwork, 'controller' | 'prefix'>,
  nodes: number,
): { address: string; range: { start: string; end: string } } {
  const controller = parseIPv4(network.controller)!;
  const netBase = controller - 1;
  const hosts = 2 ** (32 - network.prefix) - 2;
  const [lo, hi] = network.prefix === 24 ? [netBase + 100, netBase + 250] : [netBase + 256, netBase + hosts];
  const start = lo + Math.ceil((hi - lo) / 2);
  if (hi - start + 1 < nodes)
    throw new Error(`site dhcp: ${hi - start + 1} addresses in the site range, ${nodes} nodes`);
  return { address: formatIPv4(controller + 1), range: { start: formatIPv4(start), end: formatIPv4(hi) } };
}
