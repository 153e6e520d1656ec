// The boot decision, pixiecore style: one function says what a machine boots, renderers turn it into an
// iPXE script (HTTP path) or a pxelinux config (legacy TFTP path).
import type { NetbootMachine } from './types.ts';

export interface BootContext {
  /** The controller's HTTP base URL on the provisioning network, e.g. http://10.0.0.1:8080 */
  baseUrl: string;
  image: {
    version: string;
    /** paths inside the image, e.g. images/pxeboot/vmlinuz, images/pxeboot/initrd.img, '' for the repo root */
    kernel: string;
    initrd: string;
    repoRoot: string;
  };
  /** Console arguments for the kernel; default ['console=tty0', 'console=ttyS0,115200n8']. */
  consoleArgs?: string[];
  /** More kernel arguments, appended last. */
  extraArgs?: string[];
  /** TFTP path prefix under which the TFTP server serves the image; default `image/<version>`. */
  tftpImagePrefix?: string;
}

export type BootSpec =
  | {
      kind: 'install';
      kernelUrl: string;
      initrdUrl: string;
      /** for pxelinux: the same files as TFTP paths */
      kernelTftpPath: string;
      initrdTftpPath: string;
      cmdline: string;
    }
  | { kind: 'localboot' };

/** Path of a file in the image as served over HTTP: /image/<version>/<path>, each segment encoded. */
export function imageUrlPath(version: string, path: string): string {
  return ['image', version, ...path.split('/').filter((s) => s !== '')].map(encodeURIComponent).join('/');
}

/** The per-node URLs; they carry the node's live token. */
export function nodeUrls(baseUrl: string, machine: Pick<NetbootMachine, 'name' | 'token'>) {
  const base = baseUrl.replace(/\/+$/, '');
  const tail = `${encodeURIComponent(machine.name)}/${encodeURIComponent(machine.token)}`;
  return {
    ipxeScript: `${base}/ipxe/${tail}`,
    kickstart: `${base}/ks/${tail}`,
    status: `${base}/status/${tail}`,
  };
}

export function bootSpec(machine: NetbootMachine, ctx: BootContext): BootSpec {
  // After success the machine boots its disk, whatever the reason it netboots again (no reinstall loop).
  // A revoked token (final status seen) means the same: nothing to install with.
  if (machine.target === 'localboot' || machine.token === '') return { kind: 'localboot' };
  const base = ctx.baseUrl.replace(/\/+$/, '');
  const { version, kernel, initrd, repoRoot } = ctx.image;
  for (const [field, value] of Object.entries({ version, kernel, initrd, repoRoot })) {
    if (!/^[A-Za-z0-9._/+-]*$/.test(value) || value.split('/').includes('..'))
      throw new Error(`image.${field} ${JSON.stringify(value)}: only [A-Za-z0-9._/+-] and no '..' segment`);
  }
  if (!version || !kernel || !initrd)
    throw new Error('image.version, image.kernel and image.initrd are required');
  const urls = nodeUrls(base, machine);
  const repoUrl = `${base}/${imageUrlPath(version, repoRoot)}`;
  const tftpPrefix = (ctx.tftpImagePrefix ?? `image/${version}`).replace(/\/+$/, '');
  const args = [
    `inst.ks=${urls.kickstart}`,
    `inst.repo=${repoUrl}`,
    'ip=dhcp',
    ...(ctx.consoleArgs ?? ['console=tty0', 'console=ttyS0,115200n8']),
    ...(ctx.extraArgs ?? []),
  ];
  for (const arg of args) {
    if (/[\s"'\\]/.test(arg) || arg === '')
      throw new Error(`kernel argument ${JSON.stringify(arg)}: empty or contains whitespace/quotes`);
  }
  return {
    kind: 'install',
    kernelUrl: `${base}/${imageUrlPath(version, kernel)}`,
    initrdUrl: `${base}/${imageUrlPath(version, initrd)}`,
    kernelTftpPath: `${tftpPrefix}/${kernel}`,
    initrdTftpPath: `${tftpPrefix}/${initrd}`,
    cmdline: args.join(' '),
  };
}

/**
 * iPXE script. `initrd=<name>` on the kernel line is required under UEFI with Debian's iPXE (the kernel
 * panics at root mount otherwise) and harmless under BIOS; <name> is the image name iPXE gives the initrd,
 * the last segment of its URL.
 *
 * Local boot is `exit`: iPXE returns to the firmware, which goes on to the next boot entry (the disk) under
 * both BIOS and UEFI. `sanboot --no-describe --drive 0x80` addresses a BIOS INT 13h drive number and fails
 * under UEFI, so it is the worse default.
 */
export function renderIpxeScript(spec: BootSpec): string {
  if (spec.kind === 'localboot') return '#!ipxe\necho pxeflow: installed, booting from local disk\nexit\n';
  const initrdName = decodeURIComponent(spec.initrdUrl.split('/').pop() ?? 'initrd.img');
  return [
    '#!ipxe',
    `kernel ${spec.kernelUrl} initrd=${initrdName} ${spec.cmdline}`,
    `initrd ${spec.initrdUrl}`,
    'boot',
    '',
  ].join('\n');
}

/** pxelinux config (legacy path: kernel and initrd over TFTP). */
export function renderPxelinuxConfig(spec: BootSpec): string {
  if (spec.kind === 'localboot')
    return ['DEFAULT local', 'PROMPT 0', 'LABEL local', '  LOCALBOOT 0', ''].join('\n');
  return [
    'DEFAULT install',
    'PROMPT 0',
    'LABEL install',
    `  KERNEL ${spec.kernelTftpPath}`,
    `  APPEND initrd=${spec.initrdTftpPath} ${spec.cmdline}`,
    '',
  ].join('\n');
}
