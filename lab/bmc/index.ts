// Real BMCs for tests and the lab: one ipmi_sim process per node (a multi-MC sim leaves zombies and nodes
// stuck "on"), each with its own loopback address, user and password, in chassis_control mode (the script in
// chassis-script.ts owns the node process). The password is written only into a 0600 lan.conf inside a
// 0700 temp dir; it is never on a command line.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import { probeBmc } from '../../power/discovery.ts';
import { hostsInSubnet } from '../../power/subnet.ts';
import { chassisScript, nodeScript } from './chassis-script.ts';
import { isRunning, killGroup, signal } from './proc.ts';
import { startUdpDelayProxy, type UdpDelayProxy } from './udp-delay-proxy.ts';

export interface BmcSpec {
  /** node name (default node-<n>) */
  name?: string;
  /** default: the n-th host of the lab subnet */
  address?: string;
  /** UDP port (default options.port, 623) */
  port?: number;
  /** default admin<n>; [A-Za-z0-9._-], at most 16 characters */
  username?: string;
  /** default 16 random hex characters; [A-Za-z0-9._-], at most 20 characters */
  password?: string;
  /** shell command run on power on, in its own process group (default options.nodeCommand) */
  nodeCommand?: string;
  /** the chassis script refuses every boot device change (ipmitool still exits 0) */
  rejectBootDevice?: boolean;
  /** a slow BMC: every datagram delayed this much in each direction (UDP proxy in this process) */
  delayMs?: number;
}

export interface StartBmcsOptions {
  /** where default addresses come from (default: a random 127.X.Y.0/24, so parallel runs do not collide) */
  subnet?: string;
  port?: number;
  /** default `sleep infinity` */
  nodeCommand?: string;
  baseDir?: string;
  startTimeoutMs?: number;
  /** keep the temp dirs after stop (debugging) */
  keepFiles?: boolean;
}

export interface PowerLogEntry {
  /** ms since the epoch */
  at: number;
  op: 'power' | 'boot' | 'reset';
  /** power: "1"/"0"; boot: "pxe", "default", … */
  value: string;
  result: 'ok' | 'refused' | 'failed';
}

const NAME_RE = /^[A-Za-z0-9._-]+$/;

export class LabBmc {
  private stopping?: Promise<void>;
  private simExited = false;

  constructor(
    readonly name: string,
    readonly address: string,
    readonly port: number,
    readonly username: string,
    readonly password: string,
    /** temp dir with lan.conf, chassis.sh, node.sh, power.log, node.out, sim.log */
    readonly dir: string,
    /** TCP port on `address` for qemu's ipmi-bmc-extern chardev (VM codec) */
    readonly serialPort: number,
    private readonly sim: ResultPromise,
    private readonly proxy?: UdpDelayProxy,
  ) {
    sim.then(
      () => {
        this.simExited = true;
      },
      () => {
        this.simExited = true;
      },
    );
  }

  get simPid(): number {
    return this.sim.pid ?? -1;
  }

  get nodeLogPath(): string {
    return join(this.dir, 'node.out');
  }

  /** Every set power / set boot the sim received, oldest first. */
  async powerLog(): Promise<PowerLogEntry[]> {
    const text = await readFile(join(this.dir, 'power.log'), 'utf8').catch(() => '');
    return text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as PowerLogEntry);
  }

  /** Boot device as the chassis script last stored it ("pxe", "default" = disk, …). */
  async bootDevice(): Promise<string> {
    return (await readFile(join(this.dir, 'boot'), 'utf8').catch(() => 'default\n')).trim();
  }

  /** The sim's own view: asks the chassis script, exactly as ipmi_sim does. */
  async isOn(): Promise<boolean> {
    const { stdout } = await execa(join(this.dir, 'chassis.sh'), ['get', 'power'], { stdin: 'ignore' });
    return /^power:1$/m.test(stdout);
  }

  /** PID (= process group) of the running node command, if powered on. */
  async nodePid(): Promise<number | undefined> {
    const pid = Number((await readFile(join(this.dir, 'node.pid'), 'utf8').catch(() => '')).trim());
    return pid > 1 && isRunning(pid) ? pid : undefined;
  }

  async setRejectBootDevice(reject: boolean): Promise<void> {
    const flag = join(this.dir, 'reject-boot');
    if (reject) await writeFile(flag, '');
    else await unlink(flag).catch(() => {});
  }

  get running(): boolean {
    return !this.simExited;
  }

  /** Stops the proxy, the sim and the node's process group (by PID); idempotent. */
  stop(opts: { keepFiles?: boolean } = {}): Promise<void> {
    this.stopping ??= (async () => {
      registry.delete(this);
      await this.proxy?.close();
      if (!this.simExited) {
        this.sim.kill('SIGTERM');
        const exited = await Promise.race([
          this.sim.then(
            () => true,
            () => true,
          ),
          sleep(2000).then(() => false),
        ]);
        if (!exited) {
          this.sim.kill('SIGKILL');
          await this.sim.then(
            () => {},
            () => {},
          );
        }
      }
      const pg = await this.rawNodePid();
      if (pg) await killGroup(pg);
      if (!opts.keepFiles) await rm(this.dir, { recursive: true, force: true });
    })();
    return this.stopping;
  }

  /** Synchronous last-resort cleanup for process exit. */
  killNow(): void {
    signal(this.simPid, 'SIGKILL');
    let pg = 0;
    try {
      pg = Number(readFileSync(join(this.dir, 'node.pid'), 'utf8').trim());
    } catch {
      // never powered on
    }
    if (pg > 1) signal(-pg, 'SIGKILL');
  }

  private async rawNodePid(): Promise<number | undefined> {
    const pid = Number((await readFile(join(this.dir, 'node.pid'), 'utf8').catch(() => '')).trim());
    return pid > 1 ? pid : undefined;
  }
}

export interface BmcLab {
  bmcs: LabBmc[];
  /** the subnet default addresses were taken from (for discovery tests) */
  subnet: string;
  stop(): Promise<void>;
}

const registry = new Set<LabBmc>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const bmc of registry) bmc.killNow();
  });
}

export function randomLoopbackSubnet(): string {
  const [a, b] = randomBytes(2);
  return `127.${64 + (a % 128)}.${b}.0/24`;
}

/** Throws when something already holds address:port (ipmi_sim would silently share it: SO_REUSEADDR). */
async function assertUdpPortFree(address: string, port: number): Promise<void> {
  const s = dgram.createSocket({ type: 'udp4', reuseAddr: false });
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind(port, address, () => resolve());
    });
  } catch (err) {
    throw new Error(`BMC address ${address}:${port} is already in use (${(err as Error).message})`);
  } finally {
    s.close();
  }
}

async function freeUdpPort(address: string): Promise<number> {
  const s = dgram.createSocket('udp4');
  s.bind(0, address);
  await once(s, 'listening');
  const { port } = s.address();
  s.close();
  return port;
}

function lanConf(o: {
  id: string;
  address: string;
  simPort: number;
  dir: string;
  username: string;
  password: string;
}): string {
  const guid = randomBytes(16).toString('hex'); // required for lanplus
  return [
    `name "${o.id}"`,
    'set_working_mc 0x20',
    'startlan 1',
    `  addr ${o.address} ${o.simPort}`,
    '  priv_limit admin',
    '  allowed_auths_callback md5',
    '  allowed_auths_user md5',
    '  allowed_auths_operator md5',
    '  allowed_auths_admin md5',
    `  guid ${guid}`,
    'endlan',
    `chassis_control "${join(o.dir, 'chassis.sh')}"`,
    // Also makes a second sim on the same address:port fail at start instead of sharing the UDP port.
    `serial 15 ${o.address} ${o.simPort} codec VM`,
    `user 2 true "${o.username}" "${o.password}" admin 10 md5`,
    '',
  ].join('\n');
}

const EMU = 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02\nmc_enable 0x20\n';

async function startOne(spec: Required<Omit<BmcSpec, 'delayMs'>> & { delayMs: number }, o: StartBmcsOptions) {
  if (!NAME_RE.test(spec.username) || spec.username.length > 16) {
    throw new Error(`BMC ${spec.name}: username must match ${NAME_RE} and be at most 16 characters`);
  }
  if (!NAME_RE.test(spec.password) || spec.password.length > 20) {
    throw new Error(`BMC ${spec.name}: password must match ${NAME_RE} and be at most 20 characters`);
  }
  await assertUdpPortFree(spec.address, spec.port);
  const simPort = spec.delayMs > 0 ? await freeUdpPort(spec.address) : spec.port;
  const dir = await mkdtemp(join(o.baseDir ?? tmpdir(), 'pxeflow-bmc-'));
  await mkdir(join(dir, 'state'));
  const id = `pxeflow-${spec.name}`;
  await writeFile(
    join(dir, 'lan.conf'),
    lanConf({ id, address: spec.address, simPort, dir, username: spec.username, password: spec.password }),
    { mode: 0o600 },
  );
  await writeFile(join(dir, 'node.emu'), EMU);
  await writeFile(join(dir, 'chassis.sh'), chassisScript(dir), { mode: 0o700 });
  const vars = { PXEFLOW_NODE_NAME: spec.name, PXEFLOW_BMC_ADDRESS: spec.address, PXEFLOW_BMC_DIR: dir };
  await writeFile(join(dir, 'node.sh'), nodeScript(vars, spec.nodeCommand), { mode: 0o700 });
  await writeFile(join(dir, 'boot'), 'default\n');
  await writeFile(join(dir, 'power.log'), '');
  if (spec.rejectBootDevice) await writeFile(join(dir, 'reject-boot'), '');
  await chmod(dir, 0o700);

  const { IPMITOOL_PASSWORD: _a, IPMI_PASSWORD: _b, ...env } = process.env;
  const sim = execa(
    'ipmi_sim',
    ['-c', join(dir, 'lan.conf'), '-f', join(dir, 'node.emu'), '-s', join(dir, 'state'), '-n', '-p'],
    {
      stdin: 'ignore',
      stdout: { file: join(dir, 'sim.log') },
      stderr: { file: join(dir, 'sim.log') },
      env,
      extendEnv: false,
      reject: false,
    },
  );
  let exited = false;
  sim.then(() => {
    exited = true;
  });
  const deadline = Date.now() + (o.startTimeoutMs ?? 5000);
  while (!(await probeBmc(spec.address, simPort, 100))) {
    if (exited || Date.now() > deadline) {
      sim.kill('SIGKILL');
      const log = await readFile(join(dir, 'sim.log'), 'utf8').catch(() => '');
      await rm(dir, { recursive: true, force: true });
      throw new Error(`ipmi_sim for ${spec.name} at ${spec.address}:${simPort} did not start: ${log.trim()}`);
    }
  }
  const proxy =
    spec.delayMs > 0
      ? await startUdpDelayProxy({
          listenAddress: spec.address,
          listenPort: spec.port,
          targetAddress: spec.address,
          targetPort: simPort,
          delayMs: spec.delayMs,
        })
      : undefined;
  const bmc = new LabBmc(
    spec.name,
    spec.address,
    spec.port,
    spec.username,
    spec.password,
    dir,
    simPort,
    sim,
    proxy,
  );
  registry.add(bmc);
  return bmc;
}

/** Starts `count` BMCs (or one per spec), in parallel batches; on any failure stops the ones started. */
export async function startBmcs(
  countOrSpecs: number | BmcSpec[],
  options: StartBmcsOptions = {},
): Promise<BmcLab> {
  installExitHook();
  const specs: BmcSpec[] =
    typeof countOrSpecs === 'number' ? Array.from({ length: countOrSpecs }, () => ({})) : countOrSpecs;
  const subnet = options.subnet ?? randomLoopbackSubnet();
  const hosts = hostsInSubnet(subnet);
  if (specs.filter((s) => !s.address).length > hosts.length) {
    throw new Error(`startBmcs: ${specs.length} BMCs do not fit in ${subnet}`);
  }
  const full = specs.map((s, i) => ({
    name: s.name ?? `node-${i + 1}`,
    address: s.address ?? hosts[i],
    port: s.port ?? options.port ?? 623,
    username: s.username ?? `admin${i + 1}`,
    password: s.password ?? randomBytes(8).toString('hex'),
    nodeCommand: s.nodeCommand ?? options.nodeCommand ?? 'sleep infinity',
    rejectBootDevice: s.rejectBootDevice ?? false,
    delayMs: s.delayMs ?? 0,
  }));
  const bmcs: LabBmc[] = [];
  for (let i = 0; i < full.length; i += 16) {
    const batch = await Promise.allSettled(full.slice(i, i + 16).map((s) => startOne(s, options)));
    for (const r of batch) if (r.status === 'fulfilled') bmcs.push(r.value);
    const failed = batch.find((r) => r.status === 'rejected');
    if (failed) {
      await Promise.allSettled(bmcs.map((b) => b.stop()));
      throw failed.reason;
    }
  }
  return {
    bmcs,
    subnet,
    stop: async () => {
      await Promise.all(bmcs.map((b) => b.stop({ keepFiles: options.keepFiles })));
    },
  };
}

/** Stops every BMC this process started (sims and node process groups, by PID). Idempotent. */
export async function stopAll(): Promise<void> {
  await Promise.all([...registry].map((b) => b.stop()));
}
