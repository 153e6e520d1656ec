// Network-namespace fixtures for the lab and every network test.
// One "controller" namespace holds the provisioning bridge (IPv4 + an IPv6 ULA, so dnsmasq can send router
// advertisements); each client lives in its own namespace, attached to a bridge by a veth pair with the MAC
// it asked for. Nothing has an uplink or a default route, so no packet can leave this machine. Every name
// carries a per-run id and is removed by that exact name; destroy() is idempotent and safe after a failure.
import { randomBytes } from 'node:crypto';
import { type Options, type ResultPromise, execa } from 'execa';
import { killTree } from './net/process-tree.ts';

export { killTree } from './net/process-tree.ts';

/** Every namespace these fixtures create starts with this, so leak checks can find them. */
export const NAMESPACE_PREFIX = 'pxf-';

export interface TestBridge {
  /** interface name inside the controller namespace (≤ 15 chars) */
  name: string;
  /** IPv4 address of the controller on this bridge */
  address: string;
  prefixLength: number;
  /** IPv6 ULA address (no DAD) of the controller on this bridge */
  ipv6Address: string;
}

export interface TestHost {
  name: string;
  /** the client's namespace */
  ns: string;
  /** interface inside `ns` */
  ifname: string;
  mac: string;
  /** the bridge it is attached to */
  bridge: string;
}

export interface TestNetwork {
  id: string;
  /** namespace of the controller side (bridges live here) */
  controllerNs: string;
  /** the provisioning bridge */
  bridge: TestBridge;
  /** shorthand for bridge.address */
  controllerAddress: string;
  /** Another bridge in the controller namespace, not connected to the provisioning one. */
  addBridge(opts: { address: string; prefixLength?: number }): Promise<TestBridge>;
  /** A client namespace linked to `bridge` (default: the provisioning bridge) with this MAC. */
  addHost(opts: { mac: string; name: string; bridge?: string }): Promise<TestHost>;
  exec(ns: string, command: string, args?: readonly string[], opts?: Options): Promise<ExecResult>;
  spawn(ns: string, command: string, args?: readonly string[], opts?: Options): ResultPromise;
  /** Every namespace this network created (controller first). */
  namespaces(): string[];
  destroy(): Promise<void>;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const HOST_NAME_RE = /^[a-z0-9][a-z0-9-]{0,19}$/;

/** Runs a command inside a namespace and waits; rejects (execa error) on a non-zero exit. */
export async function execInNamespace(
  ns: string,
  command: string,
  args: readonly string[] = [],
  opts: Options = {},
): Promise<ExecResult> {
  const r = await execa('ip', ['netns', 'exec', ns, command, ...args], { stdin: 'ignore', ...opts });
  return { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode: r.exitCode ?? 0 };
}

/**
 * Starts a long-running command inside a namespace. `ip netns exec` execs the command (no fork), so the
 * child's PID is the command's PID: stop it with killTree(child.pid).
 */
export function spawnInNamespace(
  ns: string,
  command: string,
  args: readonly string[] = [],
  opts: Options = {},
): ResultPromise {
  return execa('ip', ['netns', 'exec', ns, command, ...args], { stdin: 'ignore', reject: false, ...opts });
}

/** Names of the namespaces on this machine that start with `prefix` (default "pxf-"). */
export async function listOurNamespaces(prefix = NAMESPACE_PREFIX): Promise<string[]> {
  const { stdout } = await execa('ip', ['netns', 'list'], { stdin: 'ignore' });
  return stdout
    .split('\n')
    .map((line) => line.split(' ')[0])
    .filter((name) => name?.startsWith(prefix));
}

async function ip(args: string[]): Promise<void> {
  await execa('ip', args, { stdin: 'ignore' });
}

async function sysctl(ns: string, settings: string[]): Promise<void> {
  await execInNamespace(ns, 'sysctl', ['-q', '-w', ...settings]);
}

/** Deletes a namespace after stopping what still runs in it (by PID); a missing namespace is fine. */
async function deleteNamespace(ns: string): Promise<void> {
  const pids = await execa('ip', ['netns', 'pids', ns], { stdin: 'ignore', reject: false });
  if (pids.exitCode === 0) {
    const list = String(pids.stdout)
      .split('\n')
      .map(Number)
      .filter((p) => p > 1);
    await Promise.all(list.map((pid) => killTree(pid, { graceMs: 1000 })));
  }
  const r = await execa('ip', ['netns', 'delete', ns], { stdin: 'ignore', reject: false });
  if (r.exitCode !== 0 && !/No such file|Cannot remove|not found/i.test(String(r.stderr))) {
    throw new Error(`could not delete network namespace ${ns}: ${r.stderr}`);
  }
}

async function createNamespace(ns: string): Promise<void> {
  await ip(['netns', 'add', ns]);
  await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
  // Clients must not take a default route from a router advertisement; nothing forwards.
  await sysctl(ns, [
    'net.ipv6.conf.all.accept_ra=0',
    'net.ipv6.conf.default.accept_ra=0',
    'net.ipv4.ip_forward=0',
    'net.ipv6.conf.all.forwarding=0',
  ]);
}

function parseSubnet(subnet: string): { base: number[]; prefixLength: number } {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(subnet);
  if (!m) throw new Error(`subnet: expected a.b.c.d/len, got ${JSON.stringify(subnet)}`);
  const base = m.slice(1, 5).map(Number);
  const prefixLength = Number(m[5]);
  if (base.some((o) => o > 255) || prefixLength < 8 || prefixLength > 30) {
    throw new Error(`subnet: ${subnet} is not a usable IPv4 network (prefix 8..30)`);
  }
  return { base, prefixLength };
}

/**
 * Creates the controller namespace and its provisioning bridge. `subnet` is an IPv4 network ("10.77.0.0/24");
 * the controller takes its first host address unless `controllerAddress` is given.
 */
export async function createTestNetwork(opts: {
  subnet: string;
  prefix?: string;
  controllerAddress?: string;
}): Promise<TestNetwork> {
  const prefix = opts.prefix ?? NAMESPACE_PREFIX;
  if (!prefix.startsWith(NAMESPACE_PREFIX) || !/^[a-z0-9-]{1,12}$/.test(prefix)) {
    throw new Error(`prefix: must start with "${NAMESPACE_PREFIX}" and be ≤ 12 of [a-z0-9-]`);
  }
  const { base, prefixLength } = parseSubnet(opts.subnet);
  const controllerAddress = opts.controllerAddress ?? [base[0], base[1], base[2], base[3] + 1].join('.');
  const id = randomBytes(3).toString('hex');
  const controllerNs = `${prefix}${id}-ctl`;
  const created: string[] = [];
  const bridges: TestBridge[] = [];
  const hostNames = new Set<string>();
  let vethCount = 0;
  let destroyed = false;

  const addBridge = async (b: { address: string; prefixLength?: number }): Promise<TestBridge> => {
    const index = bridges.length;
    const name = `pxb${id}${index}`; // ≤ 15: "pxb" + 6 + digits
    // canonical form (no leading zeros) so it reads back from `ip addr` exactly as written
    const group = (hex: string) => Number.parseInt(hex, 16).toString(16);
    const ipv6Address = `fd00:${group(id.slice(0, 4))}:${group(id.slice(4) + index.toString(16).padStart(2, '0'))}::1`;
    const bridge = { name, address: b.address, prefixLength: b.prefixLength ?? prefixLength, ipv6Address };
    await ip(['-n', controllerNs, 'link', 'add', name, 'type', 'bridge', 'forward_delay', '0']);
    await ip(['-n', controllerNs, 'addr', 'add', `${bridge.address}/${bridge.prefixLength}`, 'dev', name]);
    await ip(['-n', controllerNs, 'addr', 'add', `${ipv6Address}/64`, 'dev', name, 'nodad']);
    await ip(['-n', controllerNs, 'link', 'set', name, 'up']);
    bridges.push(bridge);
    return bridge;
  };

  const destroy = async (): Promise<void> => {
    destroyed = true;
    const errors: unknown[] = [];
    for (const ns of [...created].reverse()) {
      try {
        await deleteNamespace(ns);
      } catch (e) {
        errors.push(e);
      }
    }
    created.length = 0;
    if (errors.length) throw new AggregateError(errors, 'destroy: some namespaces could not be deleted');
  };

  try {
    created.push(controllerNs);
    await createNamespace(controllerNs);
    await addBridge({ address: controllerAddress, prefixLength });
  } catch (e) {
    await destroy().catch(() => {});
    throw e;
  }

  const network: TestNetwork = {
    id,
    controllerNs,
    bridge: bridges[0],
    controllerAddress,
    addBridge,
    async addHost({ mac, name, bridge }) {
      if (destroyed) throw new Error('addHost: the test network was destroyed');
      const lowerMac = mac.toLowerCase();
      if (!MAC_RE.test(lowerMac))
        throw new Error(`addHost: mac ${JSON.stringify(mac)} is not aa:bb:cc:dd:ee:ff`);
      if (!HOST_NAME_RE.test(name))
        throw new Error(`addHost: name ${JSON.stringify(name)} must match ${HOST_NAME_RE}`);
      if (hostNames.has(name)) throw new Error(`addHost: a host named ${name} already exists`);
      const target = bridge ?? bridges[0].name;
      if (!bridges.some((b) => b.name === target)) throw new Error(`addHost: unknown bridge ${target}`);
      hostNames.add(name);
      const ns = `${prefix}${id}-${name}`;
      const peer = `pxv${id}${vethCount++}`; // controller side of the veth, ≤ 15 chars
      created.push(ns);
      await createNamespace(ns);
      await ip([
        '-n',
        controllerNs,
        'link',
        'add',
        peer,
        'type',
        'veth',
        'peer',
        'name',
        'eth0',
        'netns',
        ns,
      ]);
      await ip(['-n', controllerNs, 'link', 'set', peer, 'master', target, 'up']);
      await ip(['-n', ns, 'link', 'set', 'eth0', 'address', lowerMac, 'up']);
      return { name, ns, ifname: 'eth0', mac: lowerMac, bridge: target };
    },
    exec: (ns, command, args = [], o = {}) => execInNamespace(ns, command, args, o),
    spawn: (ns, command, args = [], o = {}) => spawnInNamespace(ns, command, args, o),
    namespaces: () => [...created],
    destroy,
  };
  return network;
}
