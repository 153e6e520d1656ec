// The ISO library against the real test ISO: layout, byte-exact serving (compared with xorriso's own
// extraction), the index cache, re-indexing, and every "bad image" error.
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, open, readFile, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { readIsoIndex } from '../../image/iso9660.ts';
import { ImageError, IsoLibrary } from '../../image/library.ts';
import { isoFileSource } from '../../image/source.ts';
import { TEST_PACKAGES } from '../../image/testiso/build.ts';
import { freshLibrary, tinyIso, xorrisoExtract } from './fixture.ts';

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('ISO library with the test ISO', () => {
  let lib: Awaited<ReturnType<typeof freshLibrary>>;
  let scratch: string;
  before(async () => {
    lib = await freshLibrary();
    scratch = await mkdtemp(join(tmpdir(), 'pxeflow-iso-scratch-'));
  });
  after(async () => {
    await lib?.remove();
    await rm(scratch, { recursive: true, force: true });
  });

  test('prepare finds kernel, initrd and the repository', async () => {
    const d = await new IsoLibrary(lib.dir).prepareImage(lib.version);
    assert.equal(d.version, lib.version);
    assert.equal(d.family, 'redhat');
    assert.equal(d.arch, 'x86_64');
    assert.equal(d.kernel, 'images/pxeboot/vmlinuz');
    assert.equal(d.initrd, 'images/pxeboot/initrd.img');
    assert.equal(d.repoRoot, '');
    assert.equal(d.hasRepodata, true);
    assert.equal(d.isoSize, (await stat(lib.isoPath)).size);
    assert.match(d.sha256, /^[0-9a-f]{64}$/);
    assert.equal(d.files, 5 + TEST_PACKAGES.length);
    assert.equal(JSON.parse(JSON.stringify(d)).kernel, d.kernel); // JSON-serialisable for Temporal
  });

  test('bytes served from the ISO equal what xorriso extracts, whole and by range', async () => {
    const d = await new IsoLibrary(lib.dir).prepareImage(lib.version);
    const source = isoFileSource(d);
    const index = await readIsoIndex(lib.isoPath);
    const paths = [
      d.kernel,
      d.initrd,
      'repodata/repomd.xml',
      ...[...index.files.keys()].filter((p) => p.endsWith('.rpm')),
    ];
    for (const path of paths) {
      const expected = await readFile(await xorrisoExtract(lib.isoPath, path, scratch));
      assert.deepEqual(await source.stat(path), {
        size: expected.length,
        mtimeMs: index.files.get(path)!.mtimeMs,
      });
      assert.ok((await collect(source.open(path))).equals(expected), `${path}: whole file`);
      const n = expected.length;
      for (const [start, end] of [
        [0, 0],
        [0, Math.min(n, 100) - 1],
        [Math.min(2047, n - 1), Math.min(4096, n - 1)],
        [Math.floor(n / 3), Math.floor(n / 2)],
        [n - 1, n - 1],
      ]) {
        const got = await collect(source.open(path, { start, end }));
        assert.ok(got.equals(expected.subarray(start, end + 1)), `${path}: bytes ${start}-${end}`);
      }
    }
    assert.equal(await source.stat('images/pxeboot'), undefined, 'a directory is not a file');
    assert.equal(await source.stat('no/such/file'), undefined);
    assert.equal(await source.stat('../images/pxeboot/vmlinuz'), undefined);
    await assert.rejects(collect(source.open(d.kernel, { start: 0, end: 1e12 })), /outside the file/);
  });

  test('a second prepare comes from the index without hashing; concurrent prepares hash once', async () => {
    const dir = await mkdtemp(join(scratch, 'lib-'));
    await copyFile(lib.isoPath, join(dir, 'os-1.iso'));
    const hashed: string[] = [];
    const library = new IsoLibrary(dir, { onHash: (p) => hashed.push(p) });
    assert.deepEqual(
      (await library.listImages()).map((l) => [l.version, l.prepared]),
      [['os-1', false]],
    );
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => library.prepareImage('os-1')));
    assert.equal(hashed.length, 1);
    assert.deepEqual(a, b);
    assert.deepEqual(b, c);
    const again = await new IsoLibrary(dir, { onHash: (p) => hashed.push(p) }).prepareImage('os-1');
    assert.equal(hashed.length, 1, 'the second prepare must not recompute the sha256');
    assert.deepEqual(again, a);
    assert.deepEqual(
      (await library.listImages()).map((l) => [l.version, l.prepared, l.sha256]),
      [['os-1', true, a.sha256]],
    );

    // same size, new mtime → verified and indexed again
    const later = new Date(Date.now() + 60_000);
    await utimes(join(dir, 'os-1.iso'), later, later);
    const touched = await library.prepareImage('os-1');
    assert.equal(hashed.length, 2);
    assert.equal(touched.sha256, a.sha256);
    assert.notEqual(touched.isoMtimeMs, a.isoMtimeMs);

    // content changed inside a package → a new sha256 is recorded
    const pkg = (await readIsoIndex(join(dir, 'os-1.iso'))).files.get(
      `Packages/${'pxeflow-base-1.0-1.x86_64.rpm'}`,
    )!;
    const fh = await open(join(dir, 'os-1.iso'), 'r+');
    await fh.write(Buffer.from('changed'), 0, 7, pkg.offset + 100);
    await fh.close();
    const changed = await library.prepareImage('os-1');
    assert.equal(hashed.length, 3);
    assert.notEqual(changed.sha256, a.sha256);
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
    assert.equal(index.images['os-1'].sha256, changed.sha256);
  });

  test('a source refuses to serve once its ISO changed on disk', async () => {
    const dir = await mkdtemp(join(scratch, 'lib-'));
    await copyFile(lib.isoPath, join(dir, 'os-2.iso'));
    const d = await new IsoLibrary(dir).prepareImage('os-2');
    const source = isoFileSource(d);
    assert.ok(await source.stat(d.kernel));
    const later = new Date(Date.now() + 120_000);
    await utimes(join(dir, 'os-2.iso'), later, later);
    await assert.rejects(source.stat(d.kernel), /changed .* since it was prepared/);
    await assert.rejects(collect(source.open(d.kernel)), /changed .* since it was prepared/);
  });

  test('unknown version: the error lists the known versions', async () => {
    const dir = await mkdtemp(join(scratch, 'lib-'));
    await copyFile(lib.isoPath, join(dir, 'rhel-9.4.iso'));
    await copyFile(lib.isoPath, join(dir, 'rhel-9.5.iso'));
    await assert.rejects(new IsoLibrary(dir).prepareImage('rhel-9.6'), (err: Error) => {
      assert.ok(err instanceof ImageError);
      assert.match(err.message, /unknown ISO version "rhel-9.6"; known versions: rhel-9.4, rhel-9.5/);
      return true;
    });
    await assert.rejects(new IsoLibrary(dir).prepareImage('../etc/passwd'), /bad ISO version/);
  });

  test('checksum mismatch (argument or SHA256SUMS) → error, nothing indexed', async () => {
    const dir = await mkdtemp(join(scratch, 'lib-'));
    await copyFile(lib.isoPath, join(dir, 'os-3.iso'));
    const wrong = 'ab'.repeat(32);
    await assert.rejects(
      new IsoLibrary(dir).prepareImage('os-3', { expectSha256: wrong }),
      /sha256 mismatch/,
    );
    assert.deepEqual(
      (await new IsoLibrary(dir).listImages()).map((l) => l.prepared),
      [false],
    );
    await writeFile(join(dir, 'SHA256SUMS'), `${wrong}  os-3.iso\n`);
    await assert.rejects(new IsoLibrary(dir).prepareImage('os-3'), /sha256 mismatch: expected abab/);
    const right = (await new IsoLibrary(join(lib.dir)).prepareImage(lib.version)).sha256;
    await writeFile(join(dir, 'SHA256SUMS'), `${right} *os-3.iso\n`);
    const d = await new IsoLibrary(dir).prepareImage('os-3');
    assert.equal(d.sha256, right);
    // an indexed image is still checked against a later expectation
    await assert.rejects(
      new IsoLibrary(dir).prepareImage('os-3', { expectSha256: wrong }),
      /disagrees with SHA256SUMS/,
    );
    await writeFile(join(dir, 'SHA256SUMS'), `${wrong}  os-3.iso\n`);
    await assert.rejects(new IsoLibrary(dir).prepareImage('os-3'), /sha256 mismatch/);
  });

  test('not an ISO, a truncated ISO, a .treeinfo naming a missing kernel → clear ImageErrors', async () => {
    const dir = await mkdtemp(join(scratch, 'lib-'));
    await writeFile(join(dir, 'junk.iso'), Buffer.alloc(200_000, 7));
    await writeFile(join(dir, 'tiny.iso'), 'hello');
    await copyFile(lib.isoPath, join(dir, 'cut.iso'));
    await truncate(join(dir, 'cut.iso'), Math.floor((await stat(lib.isoPath)).size / 2));
    await tinyIso(join(dir, 'nokernel.iso'), {
      '.treeinfo':
        '[general]\narch = x86_64\n[images-x86_64]\nkernel = images/pxeboot/vmlinuz\ninitrd = images/pxeboot/initrd.img\n',
      'images/pxeboot/initrd.img': 'initrd',
      'repodata/repomd.xml': '<repomd/>',
    });
    await tinyIso(join(dir, 'nolayout.iso'), { 'README.txt': 'nothing to boot' });
    const library = new IsoLibrary(dir);
    const expectError = async (version: string, pattern: RegExp) =>
      assert.rejects(library.prepareImage(version), (err: Error) => {
        assert.ok(err instanceof ImageError, `${version}: ${err}`);
        assert.match(err.message, pattern);
        assert.ok(
          err.message.includes(`${version}.iso`),
          `${version}: the error names the file: ${err.message}`,
        );
        return true;
      });
    await expectError('junk', /not an ISO 9660 image \(no CD001 signature/);
    await expectError('tiny', /not an ISO 9660 image: only 5 bytes/);
    await expectError('cut', /truncated/);
    await expectError('nokernel', /\.treeinfo: kernel=images\/pxeboot\/vmlinuz is not in the image/);
    await expectError('nolayout', /no \.treeinfo and no known installer layout/);
    assert.deepEqual(
      (await library.listImages()).filter((l) => l.prepared),
      [],
    );
  });
});
