// What the activities need from the controller's netboot services (implemented in workers/netboot.ts).
import type { ClusterSpec } from '../config/schema.ts';
import type { ImageDescription } from '../image/library.ts';
import type { NodeRef } from './types.ts';

export interface NetbootControl {
  /** DHCP/TFTP/HTTP ready for this cluster and image (idempotent). */
  configureCluster(input: { clusterId: string; spec: ClusterSpec; image: ImageDescription }): Promise<void>;
  /** A new attempt: fresh token, target install, DHCP reservation (or a discovery window when the MAC is unknown). */
  registerNodeBoot(input: { clusterId: string; node: NodeRef; attempt: number }): Promise<void>;
  /** Cancelled: the node's token is revoked (its callbacks get a final answer), its reservation stays. */
  releaseNode(input: { clusterId: string; node: NodeRef }): Promise<void>;
  /** Installed: the node's PXE answer becomes "boot from local disk". */
  setLocalBoot(input: { clusterId: string; node: NodeRef }): Promise<void>;
}
