// Distribution layout detection: where the installer kernel, initrd and package repository sit in an ISO.
// Red Hat family ISOs describe themselves in `.treeinfo`; other layouts are recognised by well-known paths.
import { ImageError, readIsoFileBytes } from './iso9660.ts';
import type { IsoIndex } from './iso9660.ts';

export interface ImageRepo {
  /** variant id ("BaseOS", "AppStream") or "root" */
  id: string;
  /** directory inside the ISO ('' = the ISO root) */
  root: string;
  hasRepodata: boolean;
}

export interface ImageLayout {
  /** "redhat" for .treeinfo trees, else "debian" / "ubuntu" / "syslinux" */
  family: string;
  /** product name + version from .treeinfo when present, e.g. "Red Hat Enterprise Linux 9.4" */
  release?: string;
  arch: string;
  kernel: string;
  initrd: string;
  /** main package repository root ('' = ISO root); for multi-repo trees the first variant (BaseOS) */
  repoRoot: string;
  hasRepodata: boolean;
  repos: ImageRepo[];
}

export type Ini = Map<string, Map<string, string>>;

/** Parses the INI dialect of .treeinfo (Python configparser style: `key = value`, `#`/`;` comments).
 *  Hand-written: ten lines, and it keeps section order, which decides the default variant. */
export function parseIni(text: string): Ini {
  const ini: Ini = new Map();
  let section: Map<string, string> | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = ini.get(header[1]) ?? new Map();
      ini.set(header[1], section);
      continue;
    }
    const eq = line.search(/[=:]/);
    if (eq > 0 && section) section.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim());
  }
  return ini;
}

const joinPath = (dir: string, file: string) =>
  [dir, file]
    .filter((p) => p && p !== '.')
    .join('/')
    .replace(/\/+/g, '/')
    .replace(/^\/|\/$/g, '');

export async function detectLayout(index: IsoIndex): Promise<ImageLayout> {
  if (index.files.has('.treeinfo')) {
    const text = (await readIsoFileBytes(index, '.treeinfo', 256 * 1024)).toString('utf8');
    return fromTreeinfo(index, parseIni(text));
  }
  return fromWellKnownPaths(index);
}

function repoInfo(index: IsoIndex, id: string, root: string): ImageRepo {
  return { id, root, hasRepodata: index.files.has(joinPath(root, 'repodata/repomd.xml')) };
}

export function fromTreeinfo(index: IsoIndex, ini: Ini): ImageLayout {
  const fail = (msg: string): never => {
    throw new ImageError(index.isoPath, `.treeinfo: ${msg}`);
  };
  const general = ini.get('general');
  const tree = ini.get('tree');
  const release = ini.get('release');
  const archs = [...ini.keys()].filter((s) => s.startsWith('images-')).map((s) => s.slice('images-'.length));
  const arch = tree?.get('arch') ?? general?.get('arch') ?? archs[0] ?? fail('no [tree] or [general] arch');
  const images = ini.get(`images-${arch}`) ?? fail(`no [images-${arch}] section`);
  const kernel = images.get('kernel') ?? fail(`[images-${arch}] has no kernel=`);
  const initrd = images.get('initrd') ?? fail(`[images-${arch}] has no initrd=`);
  for (const [key, path] of [
    ['kernel', kernel],
    ['initrd', initrd],
  ]) {
    if (!index.files.has(joinPath('', path))) fail(`${key}=${path} is not in the image`);
  }

  // productmd 1.x trees list variants with their repository; old (0.x) trees have [general] packagedir.
  const repos: ImageRepo[] = [];
  const order = (tree?.get('variants') ?? '').split(',').map((v) => v.trim());
  const variantSections = [...ini.keys()].filter((s) => s.startsWith('variant-'));
  variantSections.sort((a, b) => rank(order, a.slice(8)) - rank(order, b.slice(8)));
  for (const section of variantSections) {
    const repo = ini.get(section)!.get('repository');
    if (repo !== undefined) repos.push(repoInfo(index, section.slice(8), joinPath('', repo)));
  }
  if (repos.length === 0) {
    // old trees: packagedir (e.g. "Packages") sits next to repodata/ at the tree root
    repos.push(repoInfo(index, 'root', ''));
  }
  for (const repo of repos) {
    if (!repo.hasRepodata) fail(`repository ${repo.id} (${repo.root || '/'}) has no repodata/repomd.xml`);
  }
  const name = release?.get('name') ?? general?.get('family') ?? general?.get('name');
  const version = release?.get('version') ?? general?.get('version');
  return {
    family: 'redhat',
    release: name ? [name, version].filter(Boolean).join(' ') : undefined,
    arch,
    kernel: joinPath('', kernel),
    initrd: joinPath('', initrd),
    repoRoot: repos[0].root,
    hasRepodata: repos[0].hasRepodata,
    repos,
  };
}

function rank(order: string[], id: string): number {
  const i = order.indexOf(id);
  return i === -1 ? order.length : i;
}

/** Layouts without .treeinfo, in the order we try them. */
const WELL_KNOWN: Array<{ family: string; kernel: string[]; initrd: string[] }> = [
  { family: 'redhat', kernel: ['images/pxeboot/vmlinuz'], initrd: ['images/pxeboot/initrd.img'] },
  { family: 'redhat', kernel: ['isolinux/vmlinuz'], initrd: ['isolinux/initrd.img'] },
  {
    family: 'ubuntu',
    kernel: ['casper/vmlinuz', 'casper/vmlinuz.efi'],
    initrd: ['casper/initrd', 'casper/initrd.gz'],
  },
  {
    family: 'debian',
    kernel: ['install.amd/vmlinuz', 'install/vmlinuz'],
    initrd: ['install.amd/initrd.gz', 'install/initrd.gz'],
  },
];

export function fromWellKnownPaths(index: IsoIndex): ImageLayout {
  for (const candidate of WELL_KNOWN) {
    const kernel = candidate.kernel.find((p) => index.files.has(p));
    const initrd = candidate.initrd.find((p) => index.files.has(p));
    if (!kernel || !initrd) continue;
    const repo = repoInfo(index, 'root', '');
    return {
      family: candidate.family,
      arch: 'x86_64', // these layouts do not name their architecture; pxeflow boots x86_64 only
      kernel,
      initrd,
      repoRoot: repo.root,
      hasRepodata: repo.hasRepodata,
      repos: [repo],
    };
  }
  const tried = WELL_KNOWN.map((c) => c.kernel[0]).join(', ');
  throw new ImageError(index.isoPath, `no .treeinfo and no known installer layout (looked for ${tried})`);
}
