// The controller's netboot side: DHCP (dnsmasq), TFTP and HTTP on the provisioning address, one machine registry,
// one boot-event stream, and the bridge that turns events into signals to the node workflows.
// Implements the NetbootControl the activities call. Registry state (tokens, attempts) is kept in a 0600 file in
// the state dir so a controller restart does not strand nodes that are mid-install.
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { NetbootControl } from '../activities/netboot-control.ts';
import type { NodeRef } from '../activities/types.ts';
import { resolveSecretRef } from '../config/load.ts';
import { type ClusterSpec, rootPasswordHashRef } from '../config/schema.ts';
import type { ImageDescription } from '../image/library.ts';
import { isoFileSource } from '../image/source.ts';
import { bootSpec, nodeUrls, renderPxelinuxConfig } from '../netboot/boot-spec.ts';
import { BootEventStream } from '../netboot/events.ts';
import type { KickstartSettings } from '../netboot/http/kickstart.ts';
import { type HttpServerHandle, type StatusReport, startHttpServer } from '../netboot/http/server.ts';
import { MachineRegistry } from '../netboot/machines.ts';
import {
  bootFilesResolver,
  chainResolvers,
  fileSourceResolver,
  macFromPxelinuxPath,
  memoryResolver,
  startTftpServer,
  type TftpResolver,
  type TftpServer,
} from '../netboot/tftp/index.ts';
import type { BootEvent, NetbootMachine } from '../netboot/types.ts';
import { type PhaseSignal, phasesSignal, statusSignal } from '../workflows/messages.ts';
import { type DhcpPort, startDhcpPort } from './dhcp-port.ts';

export interface NetbootOptions {
  stateDir: string;
  /** provisioning interface and the controller's address on it (DHCP/TFTP/HTTP bind there only) */
  interface: string;
  address: string;
  httpPort: number;
  tftpPort?: number;
  /** false: no DHCP (tests of TFTP/HTTP only, or a network whose DHCP is managed elsewhere) */
  dhcp?: boolean;
  dnsmasqPath?: string;
  /** BIOS firmware gets pxelinux.0 (kernel and initrd over TFTP) instead of chaining to iPXE */
  legacyPxelinux?: boolean;
  client: Client;
  logger: Logger;
  env?: NodeJS.ProcessEnv;
}

interface ClusterState {
  clusterId: string;
  spec: ClusterSpec;
  image: ImageDescription;
}

interface Persisted {
  clusters: Record<string, { spec: ClusterSpec; image: ImageDescription }>;
  machines: Array<NetbootMachine & { clusterId: string; node: string; attempt: number }>;
}

/** A cluster the controller cannot serve; not retryable (the activity maps it to NetbootNotConfigured). */
export class NetbootConfigError extends Error {
  override name = 'NetbootConfigError';
}

/** Registry names are `<cluster>.<node>`: node names are unique per cluster, not per controller. */
const machineName = (spec: ClusterSpec, node: string) => `${spec.name}.${node}`;

export class NetbootServices implements NetbootControl {
  readonly registry = new MachineRegistry();
  readonly events = new BootEventStream();
  private readonly clusters = new Map<string, ClusterState>();
  /** registry name → cluster workflow id, node name, workflow attempt */
  private readonly owners = new Map<string, { clusterId: string; node: string; attempt: number }>();
  /** the node (registry name) whose discovery window is open: its first unknown MAC on DHCP is its own */
  private discovering: string | undefined;
  private http: HttpServerHandle | undefined;
  private httpImage: string | undefined;
  private tftp: TftpServer | undefined;
  private dhcp: DhcpPort | undefined;
  private saving: Promise<void> = Promise.resolve();
  private readonly pending = new Map<string, Promise<void>>();
  /** per node: boot phases not sent yet, waiting behind the node's signal in flight */
  private readonly phaseBatches = new Map<string, PhaseSignal[]>();

  private constructor(private readonly opts: NetbootOptions) {}

  static async start(opts: NetbootOptions): Promise<NetbootServices> {
    const s = new NetbootServices(opts);
    // traversable but not listable: dnsmasq runs as an unprivileged user and reads its files below this folder;
    // the state file itself (it holds tokens) is 0600
    await mkdir(opts.stateDir, { recursive: true, mode: 0o711 });
    await chmod(opts.stateDir, 0o711);
    s.events.subscribe((e) => s.bridge(e));
    await s.restore();
    return s;
  }

  get httpUrl(): string | undefined {
    return this.http?.url;
  }

  // --- NetbootControl ------------------------------------------------------------------------------------

  async configureCluster({
    clusterId,
    spec,
    image,
  }: {
    clusterId: string;
    spec: ClusterSpec;
    image: ImageDescription;
  }) {
    const mismatch = this.networkMismatch(spec);
    if (mismatch) throw new NetbootConfigError(`${clusterId}: ${mismatch}`);
    this.clusters.set(clusterId, { clusterId, spec, image });
    await this.ensureServices(image);
    await this.persist();
  }

  async registerNodeBoot({
    clusterId,
    node,
    attempt,
  }: {
    clusterId: string;
    node: NodeRef;
    attempt: number;
  }) {
    const cluster = this.requireCluster(clusterId);
    const name = machineName(cluster.spec, node.name);
    const known = this.registry.get(name);
    const previous = this.owners.get(name);
    const mac = node.mac ?? known?.mac;
    this.registry.upsert({
      name,
      mac,
      ip: node.ip ?? known?.ip,
      hostname: node.name,
      bootMode: node.bootMode,
      target: 'install',
    });
    // every attempt gets a fresh token; a retried activity for the same attempt just rotates once more,
    // which is harmless: the node fetches its URLs only after the power-on that follows
    if (known || previous) this.registry.rotateToken(name);
    this.owners.set(name, { clusterId, node: node.name, attempt });
    this.events.resetNode(name);
    const machine = this.registry.get(name)!;
    if (machine.mac) {
      await this.dhcp?.setReservation(this.reservation(machine));
    } else {
      // unknown MAC: the first new MAC asking for DHCP while this window is open belongs to this node
      this.discovering = name;
      await this.dhcp?.openDiscoveryWindow();
    }
    await this.persist();
  }

  async releaseNode({ clusterId, node }: { clusterId: string; node: NodeRef }) {
    const cluster = this.clusters.get(clusterId);
    if (!cluster) return;
    const name = machineName(cluster.spec, node.name);
    if (this.registry.get(name)) this.registry.revokeToken(name);
    this.owners.delete(name);
    await this.persist();
  }

  async setLocalBoot({ clusterId, node }: { clusterId: string; node: NodeRef }) {
    const cluster = this.requireCluster(clusterId);
    const name = machineName(cluster.spec, node.name);
    if (!this.registry.get(name)) return;
    this.registry.setTarget(name, 'localboot');
    await this.persist();
  }

  /** A spec meant for another provisioning network than the one this controller serves. */
  private networkMismatch(spec: ClusterSpec): string | undefined {
    const n = spec.network;
    if (n.interface !== this.opts.interface)
      return `network.interface is ${n.interface}, but this controller serves ${this.opts.interface}`;
    if (n.controller !== this.opts.address)
      return `network.controller is ${n.controller}, but this controller's address is ${this.opts.address}`;
    return undefined;
  }

  // --- services ------------------------------------------------------------------------------------------

  private async ensureServices(image: ImageDescription): Promise<void> {
    const { address, logger } = this.opts;
    const source = isoFileSource(image);
    if (this.http && this.httpImage !== image.version) {
      // one image served at a time per controller (documented); a different version restarts HTTP
      await this.http.close();
      this.http = undefined;
    }
    if (!this.http) {
      this.http = await startHttpServer({
        address,
        port: this.opts.httpPort,
        machines: this.registry,
        image: {
          version: image.version,
          source,
          kernel: image.kernel,
          initrd: image.initrd,
          repoRoot: image.repoRoot,
        },
        onEvent: (e) => this.events.publish(e),
        onStatus: (r) => this.onStatus(r),
        kickstartVars: (m) => this.kickstartSettings(m),
        logger,
      });
      this.httpImage = image.version;
    }
    if (!this.tftp) {
      this.tftp = await startTftpServer({
        address,
        port: this.opts.tftpPort ?? 69,
        resolve: this.tftpResolver(),
        // a failed fetch is no progress along the boot chain
        onEvent: (e) => {
          if (e.detail?.outcome !== 'failed') this.events.publish(e);
        },
        logger: logger.child({ component: 'netboot-tftp' }),
      });
    }
    if (!this.dhcp && this.opts.dhcp !== false) {
      const cluster = [...this.clusters.values()].at(-1)!;
      this.dhcp = await startDhcpPort({
        stateDir: join(this.opts.stateDir, 'dhcp'),
        network: cluster.spec.network,
        interface: this.opts.interface,
        controllerAddress: address,
        dnsmasqPath: this.opts.dnsmasqPath,
        biosBootFile: this.opts.legacyPxelinux ? 'pxelinux.0' : 'undionly.kpxe',
        proxyBootUrl: `${this.http!.url}/boot-by-mac/`,
        // a lease (ACK with an address) is what ties a node to its DHCP IP; DISCOVER/OFFER/REQUEST add nothing
        onEvent: (e) => {
          if (e.detail?.type === 'ACK' && e.ip) this.events.publish(e);
        },
        logger,
      });
      for (const m of this.registry.list()) if (m.mac) await this.dhcp.setReservation(this.reservation(m));
    }
  }

  /** Bootloaders from Debian's packages; per-MAC pxelinux configs from the registry; kernel/initrd from the ISO. */
  private tftpResolver(): TftpResolver {
    const pxelinuxConfig: TftpResolver = async (path) => {
      const mac = macFromPxelinuxPath(path);
      const machine = mac ? this.registry.byMac(mac) : undefined;
      if (!machine || !this.http) return undefined;
      return Buffer.from(renderPxelinuxConfig(bootSpec(machine, this.http.bootContext)));
    };
    const image: TftpResolver = async (path, peer) => {
      const prefix = `image/${this.httpImage}/`;
      if (!this.httpImage || !path.startsWith(prefix)) return undefined;
      const cluster = [...this.clusters.values()].find((c) => c.image.version === this.httpImage);
      if (!cluster) return undefined;
      return fileSourceResolver(isoFileSource(cluster.image), (p) => p.slice(prefix.length))(path, peer);
    };
    return chainResolvers(bootFilesResolver(), memoryResolver({}), pxelinuxConfig, image);
  }

  private reservation(m: Readonly<NetbootMachine>) {
    return {
      name: m.name,
      mac: m.mac!,
      ip: m.ip,
      hostname: m.hostname,
      // legacy pxelinux path: no per-host iPXE script URL, so iPXE firmware (a NIC ROM that is iPXE) takes the
      // pxelinux.0 boot file dnsmasq gives it in that mode instead of the HTTP script
      ipxeScriptUrl:
        this.http && !this.opts.legacyPxelinux ? nodeUrls(this.http.url, m).ipxeScript : undefined,
    };
  }

  private kickstartSettings(m: Readonly<NetbootMachine>): KickstartSettings {
    const owner = this.owners.get(m.name);
    const cluster = owner && this.clusters.get(owner.clusterId);
    if (!cluster) throw new Error(`no cluster for machine ${m.name}`);
    const ks = cluster.spec.kickstart;
    const ref = rootPasswordHashRef(cluster.spec);
    const node = cluster.spec.nodes?.find((n) => n.name === owner.node);
    return {
      rootPasswordHash: ref ? resolveSecretRef(ref, 'kickstart root password hash', this.opts.env) : '',
      osDisk: (node?.osDisk ?? ks.osDisk).replace(/^\/dev\//, ''),
      timezone: ks.timezone,
      // anaconda's callbacks run in the installer (%post --nochroot), so curl is not needed on the target
      basePackages: ['@^minimal-environment'],
      extraPackages: ks.extraPackages,
      templatePath: ks.template,
    };
  }

  // --- the bridge: boot events → node workflow signals -----------------------------------------------------

  private bridge(event: BootEvent): void {
    let name = event.node ?? (event.mac ? this.registry.byMac(event.mac)?.name : undefined);
    name ??= event.ip ? this.registry.byIp(event.ip)?.name : undefined;
    if (!name && event.phase === 'dhcp' && event.mac && this.discovering) {
      name = this.learnMac(this.discovering, event.mac, event.ip);
    }
    if (!name) return;
    const owner = this.owners.get(name);
    if (!owner) return;
    if (event.phase === 'dhcp' && event.ip) {
      const m = this.registry.get(name);
      if (m && m.ip !== event.ip) this.registry.upsert({ ...m, ip: event.ip });
    }
    if (event.phase === 'status') return; // statuses go through onStatus (durable hand-off)
    const signal = { phase: event.phase, at: event.at, mac: event.mac, ip: event.ip, detail: event.detail };
    const queued = this.phaseBatches.get(name);
    if (queued) {
      queued.push(signal); // a signal is waiting for its turn: this phase rides along
      return;
    }
    // No timer, no added latency: the first phase goes at once; the ones that arrive while a signal for this
    // node is in flight go together in the next one (a burst costs the node workflow one task, not five).
    const batch = [signal];
    this.phaseBatches.set(name, batch);
    this.send(name, () => {
      if (this.phaseBatches.get(name) === batch) this.phaseBatches.delete(name);
      return this.opts.client.workflow
        .getHandle(`${owner.clusterId}/${owner.node}`)
        .signal(phasesSignal, { phases: batch });
    });
  }

  private learnMac(name: string, mac: string, ip: string | undefined): string | undefined {
    const m = this.registry.get(name);
    if (!m || m.mac) return undefined;
    this.discovering = undefined;
    const learned = this.registry.upsert({ ...m, mac, ip: ip ?? m.ip });
    void this.dhcp?.closeDiscoveryWindow();
    void this.dhcp?.setReservation(this.reservation(learned));
    void this.persist();
    this.opts.logger.info({ node: name, mac }, 'MAC learned during the discovery window');
    return name;
  }

  /** Signals in order per node, retried while Temporal is unreachable (bounded). */
  private send(name: string, fn: () => Promise<void>): void {
    const prev = this.pending.get(name) ?? Promise.resolve();
    const next = prev.then(async () => {
      for (let i = 0; i < 20; i++) {
        try {
          await fn();
          return;
        } catch (err) {
          if ((err as Error).name === 'WorkflowNotFoundError') return;
          await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** i)));
        }
      }
      this.opts.logger.warn({ node: name }, 'gave up signalling a boot phase');
    });
    this.pending.set(name, next);
    void next.finally(() => {
      if (this.pending.get(name) === next) this.pending.delete(name);
    });
  }

  /** The status POST: handed to the node workflow as a signal before the HTTP answer (503 → installer retries). */
  private async onStatus(r: StatusReport): Promise<void> {
    const owner = this.owners.get(r.node);
    if (!owner) throw new Error(`no workflow for ${r.node}`);
    this.events.publish({ phase: 'status', node: r.node, at: Date.now(), detail: { outcome: r.outcome } });
    await this.pending.get(r.node); // phases first, then the status
    try {
      await this.opts.client.workflow.getHandle(`${owner.clusterId}/${owner.node}`).signal(statusSignal, {
        outcome: r.outcome,
        detail: r.detail,
        at: Date.now(),
        attempt: owner.attempt,
      });
    } catch (err) {
      // the node workflow is gone (cancelled, terminated): nobody waits for this status any more; answering 503
      // would only make the installer retry in vain, so the status is logged and the callback ends here
      if ((err as Error).name !== 'WorkflowNotFoundError') throw err;
      this.opts.logger.warn(
        { node: r.node, outcome: r.outcome },
        'status for a node whose workflow has ended',
      );
    }
  }

  // --- persistence -----------------------------------------------------------------------------------------

  private get stateFile(): string {
    return join(this.opts.stateDir, 'netboot-state.json');
  }

  private persist(): Promise<void> {
    const snapshot: Persisted = {
      clusters: Object.fromEntries(
        [...this.clusters].map(([id, c]) => [id, { spec: c.spec, image: c.image }]),
      ),
      machines: this.registry.list().flatMap((m) => {
        const o = this.owners.get(m.name);
        return o ? [{ ...m, ...o }] : [];
      }),
    };
    this.saving = this.saving.then(async () => {
      const tmp = `${this.stateFile}.tmp`;
      await writeFile(tmp, JSON.stringify(snapshot), { mode: 0o600 });
      await rename(tmp, this.stateFile);
    });
    return this.saving;
  }

  private async restore(): Promise<void> {
    let saved: Persisted;
    try {
      saved = JSON.parse(await readFile(this.stateFile, 'utf8')) as Persisted;
    } catch {
      return; // first start
    }
    for (const [clusterId, c] of Object.entries(saved.clusters)) {
      const mismatch = this.networkMismatch(c.spec);
      if (mismatch)
        this.opts.logger.warn({ clusterId, reason: mismatch }, 'not restoring a cluster of another network');
      else this.clusters.set(clusterId, { clusterId, ...c });
    }
    for (const { clusterId, node, attempt, token, ...m } of saved.machines) {
      if (!this.clusters.has(clusterId)) continue;
      this.registry.upsert(m.target === 'localboot' || token === '' ? m : { ...m, token });
      this.owners.set(m.name, { clusterId, node, attempt });
    }
    const last = [...this.clusters.values()].at(-1);
    if (last) await this.ensureServices(last.image);
  }

  private requireCluster(clusterId: string): ClusterState {
    const c = this.clusters.get(clusterId);
    if (!c) throw new Error(`netboot is not configured for ${clusterId} (configureNetboot runs first)`);
    return c;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.pending.values()]);
    await this.dhcp?.stop();
    await this.tftp?.close();
    await this.http?.close();
    await this.saving;
  }
}
