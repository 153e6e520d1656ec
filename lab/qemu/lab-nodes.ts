// The lab's side of qemu nodes (LabOptions.qemu): for each chosen node, a tap on the provisioning bridge takes
// the place of the node's veth (the namespace stays, empty: a second port with the VM's MAC on the bridge would
// steal its frames), and once the BMCs run, the node's BMC power-on is rewired to start the VM.
import { execa } from 'execa';
import type { LabBmc } from '../bmc/index.ts';
import type { ProvisioningNetwork } from '../network.ts';
import { attachQemuNode, createTap, removeTap } from './vm.ts';

/** node.sh of a qemu node until attach() rewrites it: powering on before that is a bug, not a boot. */
export const QEMU_NODE_PENDING = 'echo "qemu node not attached yet" >&2; exit 1';

export interface LabQemuNodes {
  /** 1-based node index → tap name */
  readonly taps: ReadonlyMap<number, string>;
  has(index: number): boolean;
  /** rewires each qemu node's BMC (bmcs[index - 1]) to start its VM; stateDirOf gives the node's state dir */
  attach(bmcs: LabBmc[], stateDirOf: (index: number) => string, memoryMb?: number): Promise<void>;
  /** removes the taps (by exact name); the VMs must be stopped first (BMC stop kills them) */
  remove(): Promise<void>;
}

export async function prepareQemuNodes(
  network: ProvisioningNetwork,
  indexes: number[],
): Promise<LabQemuNodes> {
  const taps = new Map<number, string>();
  const remove = async () => {
    for (const tap of taps.values()) await removeTap(tap);
    taps.clear();
  };
  try {
    for (const index of new Set(indexes)) {
      const node = network.nodes.find((n) => n.index === index);
      if (!node) throw new Error(`qemu: node index ${index} is not in the lab (1..${network.nodes.length})`);
      // deleting one end of the veth pair deletes both; the namespace is removed with the network
      await execa('ip', ['link', 'del', node.hostIf], { stdin: 'ignore', reject: false });
      const tap = `pxf${network.id}q${index}`;
      await createTap(network.bridge, tap);
      taps.set(index, tap);
    }
  } catch (err) {
    await remove();
    throw err;
  }
  return {
    taps,
    has: (index) => taps.has(index),
    async attach(bmcs, stateDirOf, memoryMb) {
      for (const [index, tap] of taps) {
        const node = network.nodes.find((n) => n.index === index)!;
        const bmc = bmcs[index - 1];
        await attachQemuNode(bmc, {
          name: bmc.name,
          mac: node.mac,
          tap,
          stateDir: stateDirOf(index),
          memoryMb,
        });
      }
    },
    remove,
  };
}
