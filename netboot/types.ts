// Contracts shared by the netboot services, the image layer and the workflow bridge.
// Kept in one small file so that dhcp/, tftp/, http/ and image/ can be built independently.
import type { Readable } from 'node:stream';

/** The boot chain of the method, in the order a node walks it. */
export const BOOT_PHASES = [
  'dhcp',
  'bootloader',
  'pxe-config',
  'kernel',
  'initrd',
  'kickstart',
  'packages',
  'packages-done',
  'status',
] as const;
export type BootPhase = (typeof BOOT_PHASES)[number];

/** One thing a netboot service saw a client do. `mac` is lower-case, colon-separated. */
export interface BootEvent {
  phase: BootPhase;
  mac?: string;
  ip?: string;
  /** Node name when the service could map the client to a known machine. */
  node?: string;
  /** Milliseconds since the epoch. */
  at: number;
  /** Small, secret-free details: file name, bytes, status outcome, DHCP message type… */
  detail?: Record<string, string | number | boolean>;
}

export type BootEventListener = (event: BootEvent) => void;

/** What the netboot services need to know about one machine. */
export interface NetbootMachine {
  name: string;
  /** lower-case, colon-separated; undefined while not yet learned (discovery). */
  mac?: string;
  /** the fixed or learned IPv4 address on the provisioning network */
  ip?: string;
  hostname: string;
  /** per-node random token (hex, >= 128 bits) for kickstart/status/iPXE-script URLs */
  token: string;
  bootMode: 'bios' | 'uefi' | 'auto';
  /** install: boot the installer; localboot: installed, boot from disk (no reinstall loop) */
  target: 'install' | 'localboot';
}

/** Read-only files by path ("images/pxeboot/vmlinuz", "Packages/foo.rpm", ...). */
export interface FileSource {
  /** undefined when the file does not exist (or is a directory). */
  stat(path: string): Promise<{ size: number; mtimeMs: number } | undefined>;
  /** inclusive byte range, like fs.createReadStream */
  open(path: string, range?: { start: number; end: number }): Readable;
}
