// `pxeflow images`: the ISO library (version, size, prepared/checksum state); `images prepare VERSION` verifies
// and indexes one image ahead of an install (the install does the same, instantly once indexed).
import type { Command } from 'commander';
import { DEFAULT_ISO_LIBRARY } from '../../config/schema.ts';
import { ImageError, IsoLibrary } from '../../image/library.ts';
import { CliError, EXIT, examples, formatBytes, formatTable, line, printJson, stdoutOut } from '../output.ts';

interface LibraryFlags {
  library?: string;
  json?: boolean;
}

function libraryDir(flags: LibraryFlags): string {
  return flags.library ?? process.env.PXEFLOW_ISO_LIBRARY ?? DEFAULT_ISO_LIBRARY;
}

/** ImageError (unknown version, bad ISO, checksum mismatch, unreadable folder) is a usage/config problem. */
async function imageCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ImageError) throw new CliError(err.message, EXIT.usage);
    throw err;
  }
}

export function registerImages(program: Command): void {
  const images = program
    .command('images')
    .description('list the ISO library (version, size, checksum state)')
    .option('--library <dir>', `ISO library folder (default $PXEFLOW_ISO_LIBRARY or ${DEFAULT_ISO_LIBRARY})`)
    .option('--json', 'print the list as JSON')
    .addHelpText(
      'after',
      examples(
        'pxeflow images',
        'pxeflow images --library /srv/isos --json',
        'pxeflow images prepare storageos-7.9',
      ),
    )
    .action(async (flags: LibraryFlags) => {
      const lib = new IsoLibrary(libraryDir(flags));
      const list = await imageCall(() => lib.listImages());
      const out = stdoutOut();
      if (flags.json) {
        printJson(out, list);
        return;
      }
      if (list.length === 0) {
        line(out, `no *.iso in ${lib.dir}`);
        return;
      }
      out.write(
        formatTable(
          ['VERSION', 'SIZE', 'STATE', 'SHA256'],
          list.map((i) => [
            i.version,
            formatBytes(i.size),
            i.prepared ? 'prepared' : 'not verified',
            i.sha256 ?? `(run: pxeflow images prepare ${i.version})`,
          ]),
        ),
      );
    });

  images
    .command('prepare')
    .description('verify an ISO (sha256, SHA256SUMS) and index its kernel, initrd and package repository')
    .argument('<version>', 'ISO version (the file name without .iso)')
    .option('--sha256 <hex>', 'refuse the image unless its sha256 is this')
    .option('--json', 'print the image description as JSON')
    .addHelpText(
      'after',
      examples('pxeflow images prepare storageos-7.9', 'pxeflow images prepare rhel-9.4 --sha256 3f5a…'),
    )
    .action(async (version: string, flags: { sha256?: string; json?: boolean }, cmd: Command) => {
      const all = cmd.optsWithGlobals() as LibraryFlags & { sha256?: string };
      const lib = new IsoLibrary(libraryDir(all));
      const out = stdoutOut();
      if (!flags.json) line(out, `verifying ${version} in ${lib.dir} …`);
      const d = await imageCall(() => lib.prepareImage(version, { expectSha256: flags.sha256 }));
      if (flags.json) {
        printJson(out, d);
        return;
      }
      line(
        out,
        `${d.version}: ${d.family}${d.release ? ` ${d.release}` : ''} ${d.arch}, ${formatBytes(d.isoSize)}`,
      );
      line(out, `  sha256  ${d.sha256}`);
      line(out, `  kernel  ${d.kernel}`);
      line(out, `  initrd  ${d.initrd}`);
      line(out, `  repo    ${d.repoRoot}${d.hasRepodata ? '' : ' (no repodata)'}`);
    });
}
