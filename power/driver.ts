// The narrow power-driver interface (in the spirit of Ironic's power/management interfaces and bmclib's
// capability interfaces). ipmitool is one implementation (power/ipmitool.ts); Redfish can be another file.
import { isIP } from 'node:net';
import { BmcConfigError } from './errors.ts';

/** Where a BMC is and how to log in. `password` is the resolved secret: in memory only, never logged. */
export interface BmcTarget {
  address: string;
  /** UDP port of the IPMI LAN interface; 623 unless the BMC (or a lab sim) says otherwise */
  port: number;
  username: string;
  password: string;
}

export type PowerState = 'on' | 'off';
export type BootDevice = 'pxe' | 'disk';

export interface BootDeviceOptions {
  /** true: next boot only (the install); false: persistent (e.g. local boot after success) */
  once: boolean;
  /** request an EFI boot (BIOS boot flags "efiboot") */
  uefi: boolean;
}

/** What a power call actually did: 'none' when the node already was in the wanted state. */
export type PowerAction = 'none' | 'on' | 'off' | 'cycle';

/** Identity of the management controller ("mc info"). */
export interface BmcInfo {
  deviceId: number;
  deviceRevision: number;
  firmwareRevision: string;
  ipmiVersion: string;
  manufacturerId: number;
  manufacturerName: string;
  productId: number;
  productName: string;
}

export interface PowerDriver {
  /** "address:port" — how errors and logs name this BMC */
  readonly name: string;
  /** Checks the target and the local tooling without contacting the BMC; throws BmcConfigError. */
  validate(): Promise<void>;
  powerState(): Promise<PowerState>;
  /** Idempotent: already on → 'none', nothing sent. */
  powerOn(): Promise<PowerAction>;
  /** Idempotent: already off → 'none'. Hard power off (no ACPI soft shutdown). */
  powerOff(): Promise<PowerAction>;
  /** Off → on ('on'); on → power cycle ('cycle'). Real BMCs refuse a cycle while off. */
  powerCycle(): Promise<PowerAction>;
  setBootDevice(device: BootDevice, options: BootDeviceOptions): Promise<void>;
  /**
   * What the install uses: boot device PXE for the next boot only, then a cycle when the node is on (it must
   * run the PXE chain now, not whatever it is running) or power on when it is off.
   */
  powerOnForPxe(options: { uefi: boolean }): Promise<PowerAction>;
  info(): Promise<BmcInfo>;
}

const USERNAME_MAX = 16; // IPMI user names are 16 bytes
const PASSWORD_MAX = 20; // IPMI 2.0 passwords are at most 20 bytes

/** Throws a BmcConfigError naming the field and the reason; never echoes the password. */
export function validateTarget(target: BmcTarget, operation = 'validate'): void {
  const bmc = `${target.address}:${target.port}`;
  const fail = (reason: string): never => {
    throw new BmcConfigError({ bmc, operation }, reason);
  };
  if (typeof target.address !== 'string' || target.address.length === 0) fail('address: empty');
  if (isIP(target.address) === 0 && !/^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(target.address)) {
    fail('address: not an IP address or host name');
  }
  if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65535) {
    fail('port: must be an integer 1..65535');
  }
  if (typeof target.username !== 'string' || target.username.length === 0) fail('username: empty');
  if (Buffer.byteLength(target.username) > USERNAME_MAX) fail(`username: longer than ${USERNAME_MAX} bytes`);
  if (typeof target.password !== 'string') fail('password: not resolved (missing secret?)');
  if (Buffer.byteLength(target.password) > PASSWORD_MAX) fail(`password: longer than ${PASSWORD_MAX} bytes`);
  if (/[\0\n]/.test(target.username) || /[\0\n]/.test(target.password)) {
    fail('username/password: contains a NUL or newline');
  }
}

export function bmcName(target: Pick<BmcTarget, 'address' | 'port'>): string {
  return `${target.address}:${target.port}`;
}
