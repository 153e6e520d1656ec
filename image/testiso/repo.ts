// The fake package repository of the test ISO: deterministic ".rpm" files and yum/dnf repodata
// (repomd.xml + primary.xml.gz) listing them, enough for an installer that resolves names via <location href>.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';

export interface TestPackage {
  name: string;
  version: string;
  release: string;
  arch: string;
  size: number;
}

/** The packages every test ISO carries (64 KiB – 2 MiB, so downloads are measurable but quick). */
export const TEST_PACKAGES: readonly TestPackage[] = [
  { name: 'pxeflow-base', version: '1.0', release: '1', arch: 'x86_64', size: 64 * 1024 },
  { name: 'pxeflow-tools', version: '2.3', release: '1', arch: 'x86_64', size: 512 * 1024 + 123 },
  { name: 'pxeflow-data', version: '0.9', release: '2', arch: 'noarch', size: 2 * 1024 * 1024 },
];

export const packageFileName = (p: TestPackage) => `${p.name}-${p.version}-${p.release}.${p.arch}.rpm`;

/** Deterministic, incompressible content: the RPM lead magic, then a sha256 counter stream seeded by the name. */
export function fakeRpm(p: TestPackage): Buffer {
  const out = Buffer.alloc(p.size);
  Buffer.from([0xed, 0xab, 0xee, 0xdb]).copy(out, 0);
  let pos = 4;
  for (let block = 0; pos < out.length; block++) {
    const chunk = createHash('sha256')
      .update(`${packageFileName(p)}:${block}`)
      .digest();
    pos += chunk.copy(out, pos);
  }
  return out;
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');

/** Files to put into the tree: path → content. */
export function buildRepo(packages: readonly TestPackage[] = TEST_PACKAGES): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const entries: string[] = [];
  for (const p of packages) {
    const content = fakeRpm(p);
    const href = `Packages/${packageFileName(p)}`;
    files.set(href, content);
    entries.push(
      [
        '<package type="rpm">',
        `  <name>${xml(p.name)}</name>`,
        `  <arch>${p.arch}</arch>`,
        `  <version epoch="0" ver="${xml(p.version)}" rel="${xml(p.release)}"/>`,
        `  <checksum type="sha256" pkgid="YES">${sha256(content)}</checksum>`,
        `  <summary>pxeflow test package ${xml(p.name)}</summary>`,
        `  <size package="${p.size}" installed="${p.size}" archive="${p.size}"/>`,
        `  <location href="${xml(href)}"/>`,
        '</package>',
      ].join('\n'),
    );
  }
  const primaryXml = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="${packages.length}">`,
    ...entries,
    '</metadata>',
    '',
  ].join('\n');
  const primaryGz = gzipSync(primaryXml, { level: 9 }); // node writes mtime 0: deterministic
  const primaryHref = `repodata/${sha256(primaryGz)}-primary.xml.gz`;
  files.set(primaryHref, primaryGz);
  const repomd = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">',
    '  <revision>0</revision>',
    '  <data type="primary">',
    `    <checksum type="sha256">${sha256(primaryGz)}</checksum>`,
    `    <open-checksum type="sha256">${sha256(primaryXml)}</open-checksum>`,
    `    <location href="${primaryHref}"/>`,
    '    <timestamp>0</timestamp>',
    `    <size>${primaryGz.length}</size>`,
    `    <open-size>${Buffer.byteLength(primaryXml)}</open-size>`,
    '  </data>',
    '</repomd>',
    '',
  ].join('\n');
  files.set('repodata/repomd.xml', Buffer.from(repomd));
  return files;
}

/** A RHEL-style (productmd 1.2) .treeinfo for the test tree. */
export function treeinfo(release: string, version: string): string {
  return `[header]
type = productmd.treeinfo
version = 1.2

[release]
name = ${release}
short = PXEFLOWTEST
version = ${version}

[tree]
arch = x86_64
build_timestamp = 0
platforms = x86_64
variants = BaseOS

[variant-BaseOS]
id = BaseOS
name = BaseOS
packages = Packages
repository = .
type = variant
uid = BaseOS

[images-x86_64]
initrd = images/pxeboot/initrd.img
kernel = images/pxeboot/vmlinuz
`;
}
