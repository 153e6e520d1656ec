// A network namespace joined to the root namespace by one veth pair, for running the test installer.
// Names carry a random suffix; addresses come from 10.251.x.0/30, no route leaves the pair.
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';

export interface VethNetns {
  ns: string;
  hostIf: string;
  nsIf: string;
  hostIp: string;
  nsIp: string;
  /** with `tap: true`: a tap bridged to the veth inside the namespace, for a qemu NIC */
  tapIf?: string;
  /** runs a command inside the namespace */
  exec(
    cmd: string,
    args: string[],
    opts?: { timeoutMs?: number; env?: Record<string, string> },
  ): ReturnType<typeof execa>;
  cleanup(): Promise<void>;
}

const ip = (...args: string[]) => execa('ip', args);

export async function createVethNetns(
  options: { nsAddress?: boolean; tap?: boolean } = {},
): Promise<VethNetns> {
  const suffix = randomBytes(3).toString('hex');
  const ns = `pxi-${suffix}`;
  const hostIf = `pxh${suffix}`;
  const nsIf = `pxn${suffix}`;
  const used = (await ip('-4', '-o', 'addr', 'show')).stdout;
  let third = 0;
  for (let i = 0; i < 50; i++) {
    third = randomBytes(1)[0];
    if (!used.includes(`10.251.${third}.`)) break;
  }
  const hostIp = `10.251.${third}.1`;
  const nsIp = `10.251.${third}.2`;
  const cleanup = async () => {
    await execa('ip', ['link', 'del', hostIf], { reject: false });
    await execa('ip', ['netns', 'del', ns], { reject: false });
  };
  try {
    await ip('netns', 'add', ns);
    await ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
    await ip('link', 'set', nsIf, 'netns', ns);
    await ip('addr', 'add', `${hostIp}/30`, 'dev', hostIf);
    await ip('link', 'set', hostIf, 'up');
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    if (options.tap) {
      await ip('-n', ns, 'link', 'add', `pxb${suffix}`, 'type', 'bridge');
      await ip('-n', ns, 'link', 'set', nsIf, 'master', `pxb${suffix}`);
      await ip('-n', ns, 'tuntap', 'add', 'dev', `pxt${suffix}`, 'mode', 'tap');
      await ip('-n', ns, 'link', 'set', `pxt${suffix}`, 'master', `pxb${suffix}`);
      await ip('-n', ns, 'link', 'set', `pxt${suffix}`, 'up');
      await ip('-n', ns, 'link', 'set', `pxb${suffix}`, 'up');
    } else if (options.nsAddress !== false) await ip('-n', ns, 'addr', 'add', `${nsIp}/30`, 'dev', nsIf);
    await ip('-n', ns, 'link', 'set', nsIf, 'up');
  } catch (err) {
    await cleanup();
    throw err;
  }
  return {
    ns,
    hostIf,
    nsIf,
    hostIp,
    nsIp,
    tapIf: options.tap ? `pxt${suffix}` : undefined,
    exec: (cmd, args, opts = {}) =>
      execa('ip', ['netns', 'exec', ns, cmd, ...args], {
        reject: false,
        stdin: 'ignore',
        timeout: opts.timeoutMs ?? 60_000,
        env: opts.env,
      }),
    cleanup,
  };
}

/** dnsmasq (DHCP only) on the root side of the pair, leasing nsIp; no router and no DNS are handed out. */
export function startDnsmasq(net: VethNetns) {
  return execa(
    'dnsmasq',
    [
      '--keep-in-foreground',
      '--conf-file=/dev/null',
      '--port=0',
      `--interface=${net.hostIf}`,
      '--bind-interfaces',
      `--dhcp-range=${net.nsIp},${net.nsIp},255.255.255.252,1h`,
      '--dhcp-option=3',
      '--dhcp-option=6',
      '--dhcp-authoritative',
      '--leasefile-ro',
      '--no-ping',
      '--pid-file=',
      '--log-facility=-',
      '--log-dhcp',
    ],
    { reject: false, stdin: 'ignore', all: true },
  );
}
