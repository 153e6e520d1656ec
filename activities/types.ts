// The activity surface the workflows call: types only, so workflow code can import it (proxyActivities<…>).
import type { ClusterSpec, SecretRef } from '../config/schema.ts';
import type { NodeResult } from '../workflows/messages.ts';

export interface ImageSummary {
  version: string;
  sha256: string;
  kernel: string;
  initrd: string;
  repoRoot: string;
}

/** How to reach one BMC: the password stays a reference until the activity resolves it on the controller. */
export interface PowerTarget {
  node: string;
  bmc: string;
  port: number;
  username: string;
  passwordRef: SecretRef;
  timeoutSeconds: number;
  retries: number;
  cipherSuite: number;
}

export interface NodeRef {
  name: string;
  bmc: string;
  bmcPort: number;
  mac?: string;
  ip?: string;
  osDisk: string;
  bootMode: 'auto' | 'bios' | 'uefi';
}

export interface DiscoveredBmc {
  address: string;
  port: number;
  powerState?: 'on' | 'off';
  product?: string;
}

export interface ControllerActivities {
  /** Checks that every secret reference resolves on the controller (values never leave it). */
  checkSecrets(refs: Array<{ what: string; ref: SecretRef }>): Promise<void>;
  /** Finds the ISO version in the library, verifies it once, indexes kernel/initrd/repo (heartbeats). */
  prepareImage(iso: { version: string; library: string }): Promise<ImageSummary>;
  /** Brings the controller's DHCP/TFTP/HTTP up for this cluster (idempotent). */
  configureNetboot(input: { clusterId: string; spec: ClusterSpec; image: ImageSummary }): Promise<void>;
  /** BMCs answering in the IPMI subnet, sorted by address. */
  discoverBmcs(input: {
    subnet: string;
    port: number;
    maxNodes: number;
    username: string;
    passwordRef: SecretRef;
  }): Promise<DiscoveredBmc[]>;
  /** Queues this install for its power-on turn (FIFO across installs on this controller). */
  requestPowerTurn(input: { requester: string }): Promise<void>;
  releasePowerTurn(input: { requester: string }): Promise<void>;
  /** Whether a workflow is still running (the sequencer's guard against a holder that vanished). */
  workflowIsRunning(workflowId: string): Promise<boolean>;
  /** For node workflows a parent lost track of: still running, or their result / error. */
  nodeResults(input: {
    workflowIds: string[];
  }): Promise<Array<{ workflowId: string; running: boolean; result?: NodeResult; error?: string }>>;
  /** New attempt: fresh token, boot target "install", DHCP reservation or a discovery window for this node. */
  registerNodeBoot(input: { clusterId: string; node: NodeRef; attempt: number }): Promise<void>;
  /** Boot device PXE for the next boot, then power on (or cycle when already on). */
  powerOnForPxe(target: PowerTarget & { uefi: boolean }): Promise<'powered-on' | 'power-cycled'>;
  /** The node's install was cancelled: its callbacks are answered for good, nothing more is served to install it. */
  releaseNode(input: { clusterId: string; node: NodeRef }): Promise<void>;
  /** After success: local boot from now on (netboot answer + persistent boot device disk). */
  finishNode(input: {
    clusterId: string;
    node: NodeRef;
    outcome: string;
    power: PowerTarget & { uefi: boolean };
  }): Promise<void>;
}
