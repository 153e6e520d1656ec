// Real DHCP clients run inside a client namespace: busybox udhcpc and ISC dhclient. Their event scripts only
// print what the server offered (env), they configure nothing.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { execInNamespace, killTree, spawnInNamespace } from '../../lab/netns.ts';

export type DhcpAnswer = Record<string, string>;

const UDHCPC_SCRIPT = `#!/bin/sh
[ "$1" = bound ] || exit 0
for v in ip siaddr boot_file bootfile serverid subnet router hostname lease opt175 sname domain dns; do
  eval "val=\\\${$v}"
  [ -n "$val" ] && echo "ANSWER $v=$val"
done
exit 0
`;

/**
 * Runs `busybox udhcpc` once (3 DISCOVERs, 1 s apart) in `ns`; returns the bound lease's variables, or
 * undefined when no server answered. `extra`: more udhcpc options (-x, -V, …).
 */
export async function udhcpc(ns: string, extra: string[] = [], tries = 3): Promise<DhcpAnswer | undefined> {
  const dir = await mkdtemp(`${tmpdir()}/pxf-udhcpc-`);
  try {
    const script = `${dir}/script.sh`;
    await writeFile(script, UDHCPC_SCRIPT);
    await chmod(script, 0o755);
    const r = await execInNamespace(
      ns,
      'busybox',
      [
        'udhcpc',
        '-i',
        'eth0',
        '-n',
        '-q',
        '-f',
        '-s',
        script,
        '-O',
        '67',
        '-O',
        '175',
        '-t',
        String(tries),
        '-T',
        '1',
        '-A',
        '1',
        ...extra,
      ],
      { reject: false, timeout: 30_000 },
    );
    return parseAnswer(r.stdout);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function parseAnswer(stdout: string): DhcpAnswer | undefined {
  const lines = stdout.split('\n').filter((l) => l.startsWith('ANSWER '));
  if (!lines.length) return undefined;
  const out: DhcpAnswer = {};
  for (const l of lines) {
    const [k, ...v] = l.slice(7).split('=');
    out[k] = v.join('=');
  }
  return out;
}

const DHCLIENT_SCRIPT = `#!/bin/sh
case "$reason" in BOUND|RENEW|REBOOT) ;; *) exit 0;; esac
{
  echo "ANSWER ip=$new_ip_address"
  echo "ANSWER filename=$new_filename"
  echo "ANSWER server=$new_dhcp_server_identifier"
  echo "ANSWER next_server=$new_next_server"
  echo "ANSWER hostname=$new_host_name"
  echo "ANSWER bootfile=$new_bootfile_name"
} > "$(dirname "$0")/answer.tmp" && mv "$(dirname "$0")/answer.tmp" "$(dirname "$0")/answer"
exit 0
`;

/**
 * Runs ISC dhclient once in `ns` (foreground, own lease/pid files), waits for its BOUND script call, then
 * stops it by PID. Returns the answer, or undefined after `timeoutMs`.
 */
export async function dhclient(ns: string, timeoutMs = 15_000): Promise<DhcpAnswer | undefined> {
  const dir = await mkdtemp(`${tmpdir()}/pxf-dhclient-`);
  const script = `${dir}/script.sh`;
  await writeFile(script, DHCLIENT_SCRIPT);
  await chmod(script, 0o755);
  await writeFile(
    `${dir}/dhclient.conf`,
    'timeout 20;\nretry 1;\nrequest subnet-mask, broadcast-address, host-name, bootfile-name;\n',
  );
  const child = spawnInNamespace(ns, 'dhclient', [
    '-d',
    '-1',
    '-v',
    '-cf',
    `${dir}/dhclient.conf`,
    '-sf',
    script,
    '-lf',
    `${dir}/leases`,
    '-pf',
    `${dir}/pid`,
    'eth0',
  ]);
  try {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const text = await readFile(`${dir}/answer`, 'utf8').catch(() => undefined);
      if (text) return parseAnswer(text);
      if (child.exitCode !== null && child.exitCode !== undefined) return undefined;
      await sleep(50);
    }
    return undefined;
  } finally {
    await killTree(child.pid, { graceMs: 1000 });
    await child.catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
}
