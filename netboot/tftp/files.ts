// Resolvers: where the TFTP server's files come from (a directory, Debian's bootloader packages, the ISO via a
// FileSource, memory). Compose them with chainResolvers; the first one that knows a path wins.
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { FileSource } from '../types.ts';
import type { TftpResolver } from './server.ts';
import type { TftpFile } from './transfer.ts';

/** Debian's bootloader files (packages ipxe, pxelinux, syslinux-common) under the names clients ask for. */
export const DEBIAN_BOOT_FILES: Readonly<Record<string, string>> = {
  'undionly.kpxe': '/usr/lib/ipxe/undionly.kpxe',
  'ipxe.efi': '/usr/lib/ipxe/ipxe.efi',
  'snponly.efi': '/usr/lib/ipxe/snponly.efi',
  'pxelinux.0': '/usr/lib/PXELINUX/pxelinux.0',
  'lpxelinux.0': '/usr/lib/PXELINUX/lpxelinux.0',
  // pxelinux.0 loads these from its own directory
  'ldlinux.c32': '/usr/lib/syslinux/modules/bios/ldlinux.c32',
  'libcom32.c32': '/usr/lib/syslinux/modules/bios/libcom32.c32',
  'libutil.c32': '/usr/lib/syslinux/modules/bios/libutil.c32',
  'menu.c32': '/usr/lib/syslinux/modules/bios/menu.c32',
  'vesamenu.c32': '/usr/lib/syslinux/modules/bios/vesamenu.c32',
};

/** A regular file on disk as a TftpFile, or undefined when it is missing or not a regular file. */
export async function diskFile(path: string): Promise<TftpFile | undefined> {
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) return undefined;
  return { size: info.size, open: (range) => createReadStream(path, range) };
}

/**
 * Files under `root`. The path is already normalised by the server (no "..", no leading "/"); symlinks that
 * lead outside `root` are refused as well, so nothing outside the tree is ever read.
 */
export function dirResolver(root: string): TftpResolver {
  return async (path) => {
    // resolved per request: the root may appear later, and a missing root is "not found", not a crash
    const base = await realpath(root).catch(() => undefined);
    if (!base) return undefined;
    const target = await realpath(join(base, path)).catch(() => undefined);
    if (!target?.startsWith(base.endsWith(sep) ? base : base + sep)) return undefined;
    return diskFile(target);
  };
}

/** Fixed names → files on disk (default: Debian's bootloaders); paths are matched exactly. */
export function bootFilesResolver(files: Readonly<Record<string, string>> = DEBIAN_BOOT_FILES): TftpResolver {
  return async (path) => (Object.hasOwn(files, path) ? diskFile(files[path]) : undefined);
}

/**
 * Paths served from a FileSource (an ISO or image tree). `map` turns a TFTP path into the source's path, e.g.
 * `(p) => p.startsWith('rhel9/') ? 'images/pxeboot/' + p.slice(6) : undefined`; the default serves as is.
 */
export function fileSourceResolver(
  source: FileSource,
  map: (path: string) => string | undefined = (p) => p,
): TftpResolver {
  return async (path) => {
    const inner = map(path);
    if (inner === undefined) return undefined;
    const info = await source.stat(inner);
    if (!info) return undefined;
    return { size: info.size, open: (range) => source.open(inner, range) };
  };
}

/** In-memory files; a function value is called per request (e.g. a per-MAC pxelinux config). */
export function memoryResolver(
  files: Readonly<Record<string, Buffer | string | (() => Buffer | string | undefined)>>,
): TftpResolver {
  return async (path) => {
    if (!Object.hasOwn(files, path)) return undefined;
    const entry = files[path];
    const value = typeof entry === 'function' ? entry() : entry;
    return typeof value === 'string' ? Buffer.from(value) : value;
  };
}

/** Asks each resolver in turn; the first that returns a file wins. */
export function chainResolvers(...resolvers: TftpResolver[]): TftpResolver {
  return async (path, client) => {
    for (const resolve of resolvers) {
      const file = await resolve(path, client);
      if (file) return file;
    }
    return undefined;
  };
}
