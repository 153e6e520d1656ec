// A lab node that is a real machine as far as the network can tell: qemu-system-x86_64 (TCG) with a virtio NIC
// whose option ROM is iPXE (Debian ipxe-qemu), on a tap on the lab's provisioning bridge, no disk, its serial
// console appended to a log file in the node's state dir. It is wired to its ipmi_sim BMC twice:
//  - the BMC's chassis script runs node.sh on IPMI power-on (that is this VM's qemu) and kills its process
//    group on power-off, so the BMC's power state is qemu's life;
//  - qemu's ipmi-bmc-extern device talks to the same ipmi_sim over its VM codec socket, so the guest has a
//    real KCS BMC (and ipmi_sim can power the VM off through it as well).
// Flags and traps (NOTES.md "PXE with qemu"): TCG (KVM hangs iPXE here), stdin from /dev/null, the tap exists
// before qemu starts, -no-reboot + reboot-timeout=0 so a failed or finished boot ends the process (= power off),
// pvpanic so a kernel panic ends it too. qemu's exit code proves nothing: success is the status callback.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { LabBmc } from '../bmc/index.ts';
import { nodeScript } from '../bmc/chassis-script.ts';

export interface QemuNodeOptions {
  /** node name (qemu's -name, log lines) */
  name: string;
  /** the NIC's MAC: the one the spec and the DHCP reservation carry */
  mac: string;
  /** tap on the provisioning bridge; must exist before qemu starts (createTap) */
  tap: string;
  /** console.log (serial console, every boot appended) and qemu.log (qemu's own messages) live here */
  stateDir: string;
  /** the node's ipmi_sim: address and TCP port of its VM codec (LabBmc.serialPort) */
  bmc: { address: string; serialPort: number };
  /** guest memory; the Debian kernel + installer initramfs need 128 MiB at least */
  memoryMb?: number;
}

export const QEMU_BINARY = 'qemu-system-x86_64';
/** The line node.sh appends to the console log before each power-on: splits the log into boots. */
export const POWER_ON_MARK = '=== pxeflow-lab: power on';

export function consoleLogPath(stateDir: string): string {
  return join(stateDir, 'console.log');
}

/** qemu's argument list for one node (no secrets: the BMC link is a local socket without credentials). */
export function qemuArgs(o: QemuNodeOptions): string[] {
  if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(o.mac)) throw new Error(`qemu node ${o.name}: bad MAC ${o.mac}`);
  if (!/^[A-Za-z0-9._-]{1,15}$/.test(o.tap)) throw new Error(`qemu node ${o.name}: bad tap name ${o.tap}`);
  const memory = o.memoryMb ?? 256;
  if (!Number.isInteger(memory) || memory < 128)
    throw new Error(`qemu node ${o.name}: memoryMb must be >= 128`);
  return [
    ['-name', o.name],
    ['-accel', 'tcg'],
    ['-m', String(memory)],
    ['-smp', '1'],
    // no default devices (VGA, floppy, CD, parallel, monitor); -nographic is what makes qemu ask SeaBIOS for
    // its serial console (fw_cfg etc/sercon-port), so SeaBIOS, iPXE and pxelinux print on the serial port too
    ['-nodefaults', '-no-user-config', '-nographic', '-vga', 'none'],
    ['-chardev', `file,id=console,path=${consoleLogPath(o.stateDir)},append=on`],
    ['-serial', 'chardev:console'],
    // network first; a failed or finished boot ends the VM instead of looping
    ['-boot', 'order=n,reboot-timeout=0', '-no-reboot'],
    ['-netdev', `tap,id=net0,ifname=${o.tap},script=no,downscript=no`],
    ['-device', `virtio-net-pci,netdev=net0,mac=${o.mac}`],
    // the guest's BMC is the node's ipmi_sim (VM codec); reconnect: the sim may restart, qemu keeps going
    ['-chardev', `socket,id=ipmi0,host=${o.bmc.address},port=${o.bmc.serialPort},reconnect=2`],
    ['-device', 'ipmi-bmc-extern,id=bmc0,chardev=ipmi0', '-device', 'isa-ipmi-kcs,bmc=bmc0'],
    ['-device', 'pvpanic', '-action', 'panic=exit-failure'],
  ].flat();
}

function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The shell command that is this node's power: marks the console log, then execs qemu (so qemu is the process
 * group leader the chassis script watches and kills), stdin from /dev/null, qemu's messages to qemu.log.
 */
export function qemuNodeCommand(o: QemuNodeOptions): string {
  const dir = shQuote(o.stateDir);
  const consoleLog = shQuote(consoleLogPath(o.stateDir));
  return [
    // the console shows per-node URLs (tokens) as any PXE screen does: keep the logs to root
    'umask 077',
    `mkdir -p ${dir}`,
    `echo "${POWER_ON_MARK} $(date +%s%3N)" >> ${consoleLog}`,
    `exec ${[QEMU_BINARY, ...qemuArgs(o)].map(shQuote).join(' ')} </dev/null >>${shQuote(join(o.stateDir, 'qemu.log'))} 2>&1`,
  ].join('\n');
}

/**
 * Makes `bmc`'s power-on start this VM: rewrites its node.sh (the BMC's VM codec port is known only once the
 * sim runs). Call before anything powers the node on.
 */
export async function attachQemuNode(bmc: LabBmc, o: Omit<QemuNodeOptions, 'bmc'>): Promise<QemuNodeOptions> {
  const full: QemuNodeOptions = { ...o, bmc: { address: bmc.address, serialPort: bmc.serialPort } };
  await mkdir(o.stateDir, { recursive: true });
  const vars = { PXEFLOW_NODE_NAME: bmc.name, PXEFLOW_BMC_ADDRESS: bmc.address, PXEFLOW_BMC_DIR: bmc.dir };
  await writeFile(join(bmc.dir, 'node.sh'), nodeScript(vars, qemuNodeCommand(full)), { mode: 0o700 });
  return full;
}

/** A persistent tap on `bridge`, up (no carrier until qemu opens it). Removed by exact name: removeTap. */
export async function createTap(bridge: string, tap: string): Promise<void> {
  for (const n of [bridge, tap])
    if (!/^[A-Za-z0-9._-]{1,15}$/.test(n))
      throw new Error(`createTap: ${JSON.stringify(n)} is not an interface name`);
  const script = [
    `ip tuntap add dev ${tap} mode tap`,
    `ip link set ${tap} master ${bridge}`,
    `ip link set ${tap} up`,
  ].join('\n');
  try {
    await execa('bash', ['-e', '-c', script], { stdin: 'ignore' });
  } catch (err) {
    await removeTap(tap);
    throw err;
  }
}

export async function removeTap(tap: string): Promise<void> {
  await execa('ip', ['link', 'del', tap], { stdin: 'ignore', reject: false });
}

export async function haveQemu(): Promise<boolean> {
  const r = await execa(QEMU_BINARY, ['--version'], { stdin: 'ignore', reject: false });
  return r.exitCode === 0;
}
