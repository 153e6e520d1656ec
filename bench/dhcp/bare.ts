// The peer: a bare dnsmasq with the configuration an operator (or cobbler) would write for the same network —
// one static hosts file, the same range and lease file, no-ping — and default logging to a file.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { formatIPv4 } from '../../config/ipv4.ts';
import { sleep } from '../lib/report.ts';

/** The bare peer: dnsmasq with the equivalent static config, as an operator (or cobbler) would write it. */
export async function startBareDnsmasq(
  dir: string,
  iface: string,
  subnet: string,
  range: { start: string; end: string },
  /** "mac,hostname" lines */
  hosts: string[],
) {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await writeFile(join(dir, 'hosts'), `${hosts.join('\n')}\n`, { mode: 0o644 });
  const [network, prefix] = subnet.split('/');
  const mask = formatIPv4((0xffffffff << (32 - Number(prefix))) >>> 0);
  const conf = [
    'port=0',
    `interface=${iface}`,
    'bind-interfaces',
    'except-interface=lo',
    `dhcp-range=${network},static,${mask},3600`,
    `dhcp-range=${range.start},${range.end},${mask},3600`,
    `dhcp-hostsfile=${join(dir, 'hosts')}`,
    'dhcp-ignore=tag:!known',
    'dhcp-authoritative',
    `dhcp-lease-max=${2 ** (32 - Number(prefix))}`,
    `dhcp-leasefile=${join(dir, 'leases')}`,
    'no-ping',
    'dhcp-boot=undionly.kpxe',
    `log-facility=${join(dir, 'dnsmasq.log')}`,
    'keep-in-foreground',
    'pid-file',
  ];
  await writeFile(join(dir, 'dnsmasq.conf'), `${conf.join('\n')}\n`);
  const child = execa('dnsmasq', [`--conf-file=${join(dir, 'dnsmasq.conf')}`], {
    stdin: 'ignore',
    reject: false,
  });
  // ready once its DHCP socket is bound on the interface
  for (let i = 0; i < 100; i++) {
    const { stdout } = await execa('ss', ['-Hlunp', 'sport', '= :67']);
    if (stdout.includes(`%${iface}:67`) && stdout.includes(`pid=${child.pid},`)) break;
    if (child.exitCode !== null && child.exitCode !== undefined)
      throw new Error('bare dnsmasq exited at start');
    await sleep(50);
  }
  return {
    pid: child.pid,
    leases: () => readFile(join(dir, 'leases'), 'utf8').catch(() => ''),
    async stop() {
      child.kill('SIGTERM');
      await child;
    },
  };
}
