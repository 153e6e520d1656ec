// The virtual data center: a provisioning bridge + one namespace per node, one ipmi_sim BMC per node (power-on
// starts the node, power-off stops it), the test ISO in an ISO library, and a cluster spec that points at all of
// it. The controller (Temporal worker + netboot services) runs in this process. One call up, one call down.
import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { execa, type ResultPromise } from 'execa';
import type { Logger } from 'pino';
import { formatIPv4, parseIPv4 } from '../config/ipv4.ts';
import type { ClusterSpecInput } from '../config/schema.ts';
import { buildTestIso, INSTALLER_DIR, TEST_PACKAGES } from '../image/testiso/build.ts';
import { dhcpPaths } from '../netboot/dhcp/config.ts';
import { reapStaleDnsmasq } from '../netboot/dhcp/supervisor.ts';
import { type ControllerConfig, READY_LINE, runController } from '../workers/run.ts';
import { type BmcLab, randomLoopbackSubnet, startBmcs } from './bmc/index.ts';
import { createProvisioningNetwork, type ProvisioningNetwork } from './network.ts';
import { prepareQemuNodes, QEMU_NODE_PENDING } from './qemu/lab-nodes.ts';
import { type SiteDhcpInfo, siteDhcpPlan, startSiteDhcp } from './site-dhcp.ts';

export type Behaviour = 'success' | `fail:${string}` | `fail-once:${string}` | 'hang' | 'crash';

export interface LabOptions {
  nodes: number;
  /** by node name (lab-001…) or 1-based index; default success */
  behaviours?: Record<string, Behaviour>;
  mode?: 'ipxe' | 'pxelinux';
  /** simulated install time per node, seconds */
  installSeconds?: number;
  /** MACs in the spec (default) or left out so the controller learns them under sequential power-on */
  knownMacs?: boolean;
  stateDir: string;
  temporal: { address: string; namespace: string; client: Client };
  taskQueue?: string;
  logger: Logger;
  /** spec overrides (durations as text) */
  timeouts?: { install?: string; dhcpSeen?: string };
  power?: { interval?: string; maxBooting?: number };
  attempts?: number;
  clusterName?: string;
  /** faulty BMCs by node name or 1-based index: slow (every datagram delayed), or not there at all */
  bmcFaults?: Record<string, { delayMs?: number; unreachable?: boolean }>;
  /** run the controller as a child process (crash tests kill it with SIGKILL) */
  controllerProcess?: boolean;
  /** nodes (by name or 1-based index) whose BMC has another password than the spec's: a wrong-password BMC */
  wrongPassword?: string[];
  /** 1-based indexes of nodes that are qemu VMs (iPXE ROM, real installer) instead of simulated nodes;
   *  behaviours and installSeconds do not apply to them (lab/qemu/) */
  qemu?: number[];
  /** authoritative (default): the controller's dnsmasq assigns addresses from the spec's range. proxy: a "site"
   *  DHCP server (lab/site-dhcp.ts) assigns them and the spec says `dhcpMode: proxy` (no range, no fixed IPs) */
  dhcpMode?: 'authoritative' | 'proxy';
}

export interface Lab {
  id: string;
  spec: ClusterSpecInput;
  network: ProvisioningNetwork;
  bmcs: BmcLab;
  controller: LabController;
  /** the BMC password and root hash live in this process's environment under these names */
  secretEnv: { bmcPassword: string; rootHash: string };
  /** the site DHCP server (dhcpMode proxy only) */
  siteDhcp?: SiteDhcpInfo;
  /** a spec for a subset of the lab's nodes (1-based indexes) under another cluster name */
  specFor(name: string, indexes: number[]): ClusterSpecInput;
  stop(): Promise<void>;
}

const SIM_NODE = new URL('./simnode/sim-node', import.meta.url).pathname;
const RUN_CONTROLLER = new URL('../workers/run.ts', import.meta.url).pathname;

/** The lab's controller, wherever it runs. */
export interface LabController {
  readonly pid: number | undefined;
  /** SIGKILL, no goodbye (child process only); resolves when it is gone */
  kill(): Promise<void>;
  /** starts it again after kill() (child process only) */
  start(): Promise<void>;
  stop(): Promise<void>;
}

async function controllerInProcess(config: ControllerConfig, logger: Logger): Promise<LabController> {
  const proc = await runController(config, logger);
  return {
    pid: process.pid,
    kill: async () => {
      throw new Error('the in-process controller cannot be killed: start the lab with controllerProcess');
    },
    start: async () => {},
    stop: () => proc.stop(),
  };
}

async function controllerChild(config: ControllerConfig, logFile: string): Promise<LabController> {
  const configFile = `${logFile}.config.json`;
  await writeFile(configFile, JSON.stringify(config));
  let child: ResultPromise | undefined;
  const start = async () => {
    // secrets reach the child through its environment (inherited), never its argv
    // PXEFLOW_LAB_CONTROLLER_NODE_ARGS: extra Node flags for profiling (e.g. --cpu-prof; NODE_OPTIONS refuses it)
    const extra = process.env.PXEFLOW_LAB_CONTROLLER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
    const c = execa(process.execPath, [...extra, '--import', 'tsx', RUN_CONTROLLER, configFile], {
      stdin: 'ignore',
      stdout: 'pipe',
      stderr: { file: logFile, append: true },
      reject: false,
      cleanup: true,
    });
    child = c;
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      c.stdout?.on('data', (d: Buffer) => {
        seen += d.toString();
        if (seen.includes(READY_LINE)) resolve();
      });
      void c.then(async (r) => {
        const tail = (await readFile(logFile, 'utf8').catch(() => ''))
          .trim()
          .split('\n')
          .slice(-8)
          .join('\n');
        reject(
          new Error(
            `the controller exited before it was ready (${r.exitCode ?? r.signal ?? r.message}):\n${tail}`,
          ),
        );
      });
    });
    c.stdout?.resume();
  };
  const waitGone = async () => {
    if (child) await child.catch(() => undefined);
  };
  await start();
  return {
    get pid() {
      return child?.pid;
    },
    async kill() {
      child?.kill('SIGKILL');
      await waitGone();
    },
    start,
    async stop() {
      // a controller that died (SIGKILL) and was not started again left its dnsmasq behind: stop that one too
      const dhcpDir = dhcpPaths(join(config.stateDir, 'controller', 'dhcp'));
      const quiet = { debug() {}, info() {}, warn() {}, error() {} };
      child?.kill('SIGTERM');
      const gone = await Promise.race([
        waitGone().then(() => true),
        new Promise((r) => setTimeout(() => r(false), 15_000)),
      ]);
      if (!gone) child?.kill('SIGKILL');
      await waitGone();
      await reapStaleDnsmasq(dhcpDir.conf, quiet);
    },
  };
}

async function freeTcpPortOn(address: string): Promise<number> {
  const { createServer } = await import('node:net');
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, address, () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A real sha512-crypt hash of a random throwaway password, computed without putting it on argv. */
async function randomRootHash(): Promise<string> {
  const { stdout } = await execa('busybox', ['mkpasswd', '-m', 'sha512', '-P', '0'], {
    input: `${randomBytes(12).toString('hex')}\n`,
  });
  return stdout.trim();
}

/** Labs of this process not stopped yet: torn down on SIGINT/SIGTERM, since `after()` hooks and exit hooks do
 *  not run when a test or bench is killed from outside (a leaked lab keeps namespaces and node processes). */
const activeLabs = new Set<() => Promise<void>>();
let signalHandlersInstalled = false;

function tearDownOnSignals(): void {
  if (signalHandlersInstalled) return;
  signalHandlersInstalled = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = () => {
      void Promise.allSettled([...activeLabs].map((stop) => stop())).then(() => {
        process.off(sig, onSignal);
        // Die of the signal, as without this handler — unless the program finishes by itself first (the demo
        // waits for Ctrl-C and then prints its goodbye). Other listeners (execa's subprocess cleanup) do not
        // end the process while one is left, so waiting for them would keep it alive forever.
        setTimeout(() => {
          process.kill(process.pid, sig);
          // a listener that swallows it: exit as a shell reports a signal death (exit handlers still run)
          setTimeout(() => process.exit(128 + constants.signals[sig]), 2000).unref();
        }, 2000).unref();
      });
    };
    process.on(sig, onSignal);
  }
}

export async function startLab(opts: LabOptions): Promise<Lab> {
  const id = randomBytes(2).toString('hex');
  const name = opts.clusterName ?? `lab-${id}`;
  const cleanups: Array<() => Promise<unknown>> = [];
  let stopping: Promise<void> | undefined;
  // idempotent: a signal and the owner's own stop() may meet
  const stop = () => (stopping ??= stopOnce());
  activeLabs.add(stop);
  tearDownOnSignals();
  const stopOnce = async () => {
    activeLabs.delete(stop);
    for (const c of cleanups.reverse()) await c().catch(() => {});
    cleanups.length = 0;
    // nodes share the host's filesystem: a client that deletes its output file on a failed download (busybox
    // tftp, atftp) would turn /dev/null into a regular file — say so loudly instead of breaking the host quietly
    if (!(await stat('/dev/null')).isCharacterDevice()) {
      throw new Error('/dev/null is no longer a character device: something in the lab replaced it');
    }
  };
  try {
    await mkdir(opts.stateDir, { recursive: true, mode: 0o711 });
    // 1. the image
    const library = join(opts.stateDir, 'isos');
    await mkdir(library, { recursive: true });
    const iso = await buildTestIso();
    await rm(join(library, `${iso.version}.iso`), { force: true });
    await link(iso.isoPath, join(library, `${iso.version}.iso`));

    // 2. the provisioning network and the nodes' namespaces
    // a /24 holds 150 nodes in its range; thousands need a /20
    // (proxy mode: the site server's range is the upper half of that, 76 addresses on a /24)
    const proxy = opts.dhcpMode === 'proxy';
    const network = await createProvisioningNetwork({
      id,
      prefix: opts.nodes > (proxy ? 70 : 140) ? 20 : 24,
    });
    cleanups.push(() => network.destroy());
    // 2a. proxyDHCP: the site's own DHCP server on the bridge, before any node can ask (stopped before the
    //     network goes: cleanups run in reverse)
    let siteDhcp: SiteDhcpInfo | undefined;
    if (proxy) {
      const site = await startSiteDhcp(network, {
        ...siteDhcpPlan(network, opts.nodes),
        logFile: join(opts.stateDir, 'site-dhcp.log'),
      });
      cleanups.push(() => site.stop());
      siteDhcp = { address: site.address, range: site.range, logFile: site.logFile, ns: site.ns };
    }
    const nodes = await network.addNodes(opts.nodes);
    // qemu nodes: a tap on the bridge instead of the veth; BMCs are rewired to start the VM in step 3b
    const qemuNodes = await prepareQemuNodes(network, opts.qemu ?? []);
    cleanups.push(() => qemuNodes.remove());
    const nodeName = (i: number) => `${name}-${String(i).padStart(3, '0')}`;

    // 3. one BMC per node, same credentials (the spec has one username + password reference)
    const secretEnv = {
      bmcPassword: `PXEFLOW_LAB_BMC_PASSWORD_${id}`,
      rootHash: `PXEFLOW_LAB_ROOT_HASH_${id}`,
    };
    const password = randomBytes(8).toString('hex');
    process.env[secretEnv.bmcPassword] = password;
    process.env[secretEnv.rootHash] = await randomRootHash();
    cleanups.push(async () => {
      delete process.env[secretEnv.bmcPassword];
      delete process.env[secretEnv.rootHash];
    });
    // one loopback address per BMC: a /24 for up to 254, a /20 beyond
    const ipmiSubnet =
      opts.nodes <= 250
        ? randomLoopbackSubnet()
        : `127.${100 + (randomBytes(1)[0] % 100)}.${16 * (randomBytes(1)[0] % 16)}.0/20`;
    const bmcs = await startBmcs(
      nodes.map((n) => {
        const nm = nodeName(n.index);
        const behaviour = opts.behaviours?.[nm] ?? opts.behaviours?.[String(n.index)] ?? 'success';
        const state = join(opts.stateDir, 'nodes', nm);
        const cmd = [
          // nice 19: a real node has CPUs of its own; here hundreds of booting nodes share the cores with the
          // controller and Temporal and would otherwise starve the orchestration under test (load ~250 at 2,000)
          `mkdir -p ${state} && exec nice -n 19 ip netns exec ${n.ns}`,
          SIM_NODE,
          `--iface eth0 --mode ${opts.mode ?? 'ipxe'} --behaviour '${behaviour}' --state ${state}`,
          `--installer ${join(INSTALLER_DIR, 'pxeflow-install')} --delay ${opts.installSeconds ?? 1}`,
        ].join(' ');
        const wrong = opts.wrongPassword?.includes(nm) || opts.wrongPassword?.includes(String(n.index));
        const fault = opts.bmcFaults?.[nm] ?? opts.bmcFaults?.[String(n.index)];
        return {
          name: nm,
          username: 'pxeflow',
          password: wrong ? `${password}x` : password,
          nodeCommand: qemuNodes.has(n.index) ? QEMU_NODE_PENDING : cmd,
          delayMs: fault?.delayMs,
        };
      }),
      {
        subnet: ipmiSubnet,
        baseDir: await mkdir(join(opts.stateDir, 'bmcs'), { recursive: true }).then(() =>
          join(opts.stateDir, 'bmcs'),
        ),
      },
    );
    cleanups.push(() => bmcs.stop());
    // 3b. qemu nodes: power-on starts the VM (needs the BMC's VM codec port, known once the sim runs)
    await qemuNodes.attach(bmcs.bmcs, (i) => join(opts.stateDir, 'nodes', nodeName(i)));
    // an unreachable BMC: listed in the spec, nothing answers at its address
    for (const [i, n] of nodes.entries()) {
      const nm = nodeName(n.index);
      if ((opts.bmcFaults?.[nm] ?? opts.bmcFaults?.[String(n.index)])?.unreachable) await bmcs.bmcs[i].stop();
    }

    // 4. the controller: netboot services on the bridge + the Temporal worker (in this process, or as a child
    //    process that a test may kill with SIGKILL and start again)
    const httpPort = await freeTcpPortOn(network.controller);
    const controllerConfig: ControllerConfig = {
      temporal: { address: opts.temporal.address, namespace: opts.temporal.namespace },
      taskQueue: opts.taskQueue,
      stateDir: opts.stateDir,
      isoLibrary: library,
      netboot: {
        interface: network.bridge,
        address: network.controller,
        httpPort,
        legacyPxelinux: opts.mode === 'pxelinux',
      },
      logLevel: opts.logger.level,
    };
    const controller = opts.controllerProcess
      ? await controllerChild(controllerConfig, join(opts.stateDir, 'controller.log'))
      : await controllerInProcess(controllerConfig, opts.logger);
    cleanups.push(() => controller.stop());

    // 5. the cluster spec the operator would have written
    const base = network.controller.split('.').slice(0, 3).join('.');
    const netBase = parseIPv4(network.controller)! - 1;
    const hosts = 2 ** (32 - network.prefix) - 2;
    const fixedIps = opts.nodes <= 80; // .11–.90 fixed, .100 and up for the range
    const range =
      network.prefix === 24
        ? { start: `${base}.100`, end: `${base}.250` }
        : { start: formatIPv4(netBase + 256), end: formatIPv4(netBase + hosts) };
    const specFor = (clusterName: string, indexes: number[]): ClusterSpecInput =>
      ({
        apiVersion: 'pxeflow/v1',
        name: clusterName,
        iso: { version: iso.version, library },
        ipmi: { subnet: ipmiSubnet, username: 'pxeflow', passwordEnv: secretEnv.bmcPassword },
        network: {
          interface: network.bridge,
          subnet: network.subnet,
          controller: network.controller,
          httpPort,
          ...(proxy ? { dhcpMode: 'proxy' } : { range }),
        },
        nodes: indexes.map((index) => {
          const n = nodes[index - 1];
          const b = bmcs.bmcs[index - 1];
          return {
            name: nodeName(index),
            bmc: b.address,
            bmcPort: b.port,
            ...(opts.knownMacs === false
              ? {}
              : { mac: n.mac, ...(fixedIps && !proxy ? { ip: `${base}.${10 + index}` } : {}) }),
          };
        }),
        power: { interval: opts.power?.interval ?? '0s', maxBooting: opts.power?.maxBooting ?? 50 },
        timeouts: { install: opts.timeouts?.install ?? '20m', dhcpSeen: opts.timeouts?.dhcpSeen ?? '2m' },
        retry: { attempts: opts.attempts ?? 2 },
        kickstart: {
          rootPasswordHashEnv: secretEnv.rootHash,
          extraPackages: TEST_PACKAGES.map((p) => p.name),
        },
      }) as ClusterSpecInput;
    const spec = specFor(
      name,
      nodes.map((n) => n.index),
    );
    await writeFile(join(opts.stateDir, `${name}.json`), `${JSON.stringify(spec, null, 2)}\n`);
    return { id, spec, network, bmcs, controller, secretEnv, siteDhcp, specFor, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
