// Builds the pxeflow test ISO with xorriso: a RHEL-layout tree with .treeinfo, a real Debian kernel as
// images/pxeboot/vmlinuz, a busybox installer initramfs as images/pxeboot/initrd.img, fake packages and
// repodata. Cached under .tools/testiso/ by a key of every input, so a second build is instant.
// CLI: node --import tsx image/testiso/build.ts [--out-dir DIR] [--version NAME]
import { createHash } from 'node:crypto';
import {
  chmod,
  copyFile,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { buildRepo, TEST_PACKAGES, treeinfo } from './repo.ts';

export { TEST_PACKAGES } from './repo.ts';

/** The installer scripts (init, pxeflow-install, curl shim, udhcpc event script); the lab runs them from here. */
export const INSTALLER_DIR = fileURLToPath(new URL('./installer/', import.meta.url));
export const TESTISO_CACHE = fileURLToPath(new URL('../../.tools/testiso/', import.meta.url));
export const DEFAULT_TEST_VERSION = 'pxeflow-test-1.0';
const INSTALLER_FILES = ['init', 'pxeflow-install', 'curl', 'udhcpc-script'];
/** NIC drivers for qemu (virtio-net, e1000); their dependencies come from modules.dep */
const NIC_MODULES = ['virtio_pci', 'virtio_net', 'e1000'];
const BUSYBOX = '/bin/busybox';

export interface BuildTestIsoOptions {
  /** copy the ISO here as `<version>.iso` (e.g. an ISO library folder); default: only the cache */
  outDir?: string;
  /** the library version = file name without .iso; default pxeflow-test-1.0 */
  version?: string;
  log?: (message: string) => void;
}

export interface TestIso {
  isoPath: string;
  version: string;
  /** the Debian kernel package whose vmlinuz and modules are inside */
  kernelPackage: string;
}

export async function buildTestIso(options: BuildTestIsoOptions = {}): Promise<TestIso> {
  const version = options.version ?? DEFAULT_TEST_VERSION;
  if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(version)) throw new Error(`bad test ISO version ${version}`);
  const log = options.log ?? (() => {});
  const deb = await kernelDeb(log);
  const key = await cacheKey(deb, version);
  const cachedIso = join(TESTISO_CACHE, `iso-${key}`, `${version}.iso`);
  if (!(await exists(cachedIso))) {
    await buildInto(cachedIso, deb, version, log);
    await pruneOldBuilds(key, version);
  }
  let isoPath = cachedIso;
  if (options.outDir) {
    await mkdir(options.outDir, { recursive: true });
    isoPath = join(options.outDir, `${version}.iso`);
    await copyFile(cachedIso, isoPath);
  }
  return { isoPath, version, kernelPackage: basename(deb).split('_')[0] };
}

const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );

/** Drops cached ISOs of the same version built from older inputs. */
async function pruneOldBuilds(key: string, version: string) {
  for (const d of await readdir(TESTISO_CACHE)) {
    if (
      d.startsWith('iso-') &&
      d !== `iso-${key}` &&
      (await exists(join(TESTISO_CACHE, d, `${version}.iso`)))
    ) {
      await rm(join(TESTISO_CACHE, d), { recursive: true, force: true });
    }
  }
}

/** The current Debian kernel package (.deb), downloaded once with apt-get into the cache. */
async function kernelDeb(log: (m: string) => void): Promise<string> {
  const dir = join(TESTISO_CACHE, 'deb');
  await mkdir(dir, { recursive: true });
  let pkg = process.env.PXEFLOW_TEST_KERNEL_PACKAGE;
  if (!pkg) {
    const deps = await execa('apt-cache', ['depends', 'linux-image-amd64'], { reject: false });
    pkg = /Depends:\s*(linux-image-[0-9][^\s]*-amd64)\b/.exec(deps.stdout)?.[1];
  }
  const debs = (await readdir(dir)).filter((f) => f.endsWith('.deb') && (!pkg || f.startsWith(`${pkg}_`)));
  if (debs.length > 0) return join(dir, debs.sort().at(-1)!);
  if (!pkg)
    throw new Error('cannot find the Debian kernel package (apt-cache depends linux-image-amd64 failed)');
  log(`downloading ${pkg} with apt-get`);
  const got = await execa('apt-get', ['download', pkg], { cwd: dir, reject: false, stdin: 'ignore' });
  const after = (await readdir(dir)).filter((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (after.length === 0) throw new Error(`apt-get download ${pkg} failed: ${got.stderr.trim()}`);
  return join(dir, after[0]);
}

async function cacheKey(deb: string, version: string): Promise<string> {
  const hash = createHash('sha256');
  hash.update(`${basename(deb)}\0${version}\0`);
  for (const f of INSTALLER_FILES) hash.update(await readFile(join(INSTALLER_DIR, f)));
  for (const f of ['build.ts', 'repo.ts']) hash.update(await readFile(new URL(`./${f}`, import.meta.url)));
  const bb = await stat(BUSYBOX);
  hash.update(`${bb.size}:${bb.mtimeMs}`);
  return hash.digest('hex').slice(0, 16);
}

async function buildInto(isoPath: string, deb: string, version: string, log: (m: string) => void) {
  const work = join(TESTISO_CACHE, `tmp-${process.pid}-${Date.now()}`);
  try {
    log(`extracting ${basename(deb)}`);
    const kernelTree = join(work, 'kernel');
    await mkdir(kernelTree, { recursive: true });
    await execa('dpkg-deb', ['-x', deb, kernelTree]);
    const [kver] = await readdir(join(kernelTree, 'lib/modules'));
    // the .deb ships no modules.dep (depmod runs at install time): busybox depmod writes one
    await execa(BUSYBOX, ['depmod', '-b', kernelTree, kver]);

    const tree = join(work, 'tree');
    await mkdir(join(tree, 'images/pxeboot'), { recursive: true });
    await copyFile(join(kernelTree, 'boot', `vmlinuz-${kver}`), join(tree, 'images/pxeboot/vmlinuz'));
    log('building the installer initramfs');
    await buildInitramfs(
      join(work, 'initramfs'),
      join(kernelTree, 'lib/modules', kver),
      join(tree, 'images/pxeboot/initrd.img'),
    );
    await rm(kernelTree, { recursive: true, force: true });
    for (const [path, content] of buildRepo()) {
      await mkdir(dirname(join(tree, path)), { recursive: true });
      await writeFile(join(tree, path), content);
    }
    await writeFile(join(tree, '.treeinfo'), treeinfo('pxeflow test OS', version.replace(/^.*?-(?=\d)/, '')));

    log('writing the ISO with xorriso');
    await mkdir(dirname(isoPath), { recursive: true });
    const tmpIso = `${isoPath}.${process.pid}.tmp`;
    const volid = version
      .toUpperCase()
      .replace(/[^A-Z0-9_]/g, '_')
      .slice(0, 32);
    await execa('xorriso', ['-as', 'mkisofs', '-R', '-J', '-V', volid, '-o', tmpIso, tree], {
      stdin: 'ignore',
    });
    await rename(tmpIso, isoPath);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Module paths (relative to lib/modules/<kver>) in load order: dependencies first. */
export function moduleLoadOrder(modulesDep: string, wanted: string[]): string[] {
  const deps = new Map<string, string[]>();
  for (const line of modulesDep.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0)
      deps.set(
        line.slice(0, colon),
        line
          .slice(colon + 1)
          .trim()
          .split(/\s+/)
          .filter(Boolean),
      );
  }
  const byName = new Map([...deps.keys()].map((p) => [basename(p).replace(/\.ko(\.[a-z]+)?$/, ''), p]));
  const order: string[] = [];
  const visit = (path: string, depth: number) => {
    if (order.includes(path) || depth > 32) return;
    for (const d of deps.get(path) ?? []) visit(d, depth + 1);
    order.push(path);
  };
  for (const name of wanted) {
    const path = byName.get(name);
    if (!path) throw new Error(`kernel module ${name} is not in modules.dep`);
    visit(path, 0);
  }
  return order;
}

async function buildInitramfs(root: string, modulesDir: string, out: string) {
  await mkdir(join(root, 'bin'), { recursive: true });
  for (const d of ['proc', 'sys', 'dev', 'tmp', 'run', 'etc'])
    await mkdir(join(root, d), { recursive: true });
  await copyFile(BUSYBOX, join(root, 'bin/busybox'));
  const applets = (await execa(BUSYBOX, ['--list'])).stdout.split('\n').filter((a) => a && a !== 'busybox');
  for (const a of applets) await symlink('busybox', join(root, 'bin', a));
  for (const f of INSTALLER_FILES) {
    const target = f === 'init' ? join(root, 'init') : join(root, 'bin', f);
    await rm(target, { force: true }); // replaces a busybox applet link of the same name, if any
    await copyFile(join(INSTALLER_DIR, f), target);
    await chmod(target, 0o755);
  }
  const order = moduleLoadOrder(await readFile(join(modulesDir, 'modules.dep'), 'utf8'), NIC_MODULES);
  for (const rel of order) {
    await mkdir(dirname(join(root, 'lib/modules', rel)), { recursive: true });
    await copyFile(join(modulesDir, rel), join(root, 'lib/modules', rel));
  }
  await writeFile(join(root, 'etc/pxeflow-modules'), `${order.join('\n')}\n`);
  // newc cpio, reproducible (fixed inode numbers and mtimes), gzip without a timestamp
  await execa(
    'sh',
    ['-c', 'find . | LC_ALL=C sort | cpio --quiet -o -H newc --reproducible -R 0:0 | gzip -9 -n > "$0"', out],
    {
      cwd: root,
    },
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({
    options: { 'out-dir': { type: 'string' }, version: { type: 'string' }, quiet: { type: 'boolean' } },
  });
  const started = Date.now();
  buildTestIso({
    outDir: values['out-dir'],
    version: values.version,
    log: values.quiet ? undefined : (m) => console.error(`build-test-iso: ${m}`),
  }).then(
    (r) =>
      console.log(
        JSON.stringify({ ...r, packages: TEST_PACKAGES.map((p) => p.name), ms: Date.now() - started }),
      ),
    (err: Error) => {
      console.error(`build-test-iso: ${err.message}`);
      process.exit(1);
    },
  );
}
