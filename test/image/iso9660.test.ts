// The ISO 9660 reader on xorriso-made images (Rock Ridge, Joliet-only, plain ISO names), and a property
// test: corrupted and truncated images give an ImageError or a sane index, never another exception or a hang.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { ImageError, readIsoFileBytes, readIsoIndex } from '../../image/iso9660.ts';
import { detectLayout } from '../../image/layout.ts';
import { tinyIso } from './fixture.ts';

const LONG = 'a-very-long-package-name-with-more-than-31-characters-1.0-1.el9.x86_64.rpm';
const FILES = {
  '.treeinfo':
    '[general]\narch = x86_64\n[images-x86_64]\nkernel = images/pxeboot/vmlinuz\ninitrd = images/pxeboot/initrd.img\n',
  'images/pxeboot/vmlinuz': Buffer.alloc(5000, 1),
  'images/pxeboot/initrd.img': Buffer.alloc(3000, 2),
  'repodata/repomd.xml': '<repomd/>',
  [`Packages/${LONG}`]: 'rpm',
  'deep/a/b/c/d/e/f/g/h/i/j/file.txt': 'deep',
  'empty.txt': '',
};

describe('ISO 9660 reader', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pxeflow-iso9660-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('Rock Ridge names: long names, deep directories, offsets that point at the content', async () => {
    const iso = await tinyIso(join(dir, 'rr.iso'), FILES);
    const index = await readIsoIndex(iso);
    assert.equal(index.names, 'rockridge');
    assert.deepEqual([...index.files.keys()].sort(), Object.keys(FILES).sort());
    const bytes = await readFile(iso);
    for (const [path, content] of Object.entries(FILES)) {
      const f = index.files.get(path)!;
      assert.ok(bytes.subarray(f.offset, f.offset + f.size).equals(Buffer.from(content)), path);
      assert.ok(Math.abs(f.mtimeMs - Date.now()) < 24 * 3600_000, `${path}: plausible mtime`);
    }
    assert.equal((await readIsoFileBytes(index, 'repodata/repomd.xml')).toString(), '<repomd/>');
    const layout = await detectLayout(index);
    assert.equal(layout.kernel, 'images/pxeboot/vmlinuz');
    assert.equal(layout.repoRoot, '');
  });

  test('Joliet-only and plain ISO 9660 names', async () => {
    const joliet = await readIsoIndex(await tinyIso(join(dir, 'j.iso'), FILES, 'joliet'));
    assert.equal(joliet.names, 'joliet');
    assert.ok(joliet.files.has('.treeinfo'));
    assert.ok(joliet.files.has('images/pxeboot/initrd.img'));
    assert.equal(joliet.files.get('images/pxeboot/vmlinuz')?.size, 5000);
    const plain = await readIsoIndex(await tinyIso(join(dir, 'p.iso'), FILES, 'plain'));
    assert.equal(plain.names, 'iso9660');
    assert.equal(plain.files.get('IMAGES/PXEBOOT/VMLINUZ')?.size, 5000);
  });

  test('well-known layouts without .treeinfo', async () => {
    const casper = await readIsoIndex(
      await tinyIso(join(dir, 'c.iso'), {
        'casper/vmlinuz': 'k',
        'casper/initrd': 'i',
        'README.diskdefines': 'x',
      }),
    );
    assert.deepEqual(await detectLayout(casper).then((l) => [l.family, l.kernel, l.initrd]), [
      'ubuntu',
      'casper/vmlinuz',
      'casper/initrd',
    ]);
    const debian = await readIsoIndex(
      await tinyIso(join(dir, 'd.iso'), { 'install.amd/vmlinuz': 'k', 'install.amd/initrd.gz': 'i' }),
    );
    assert.equal((await detectLayout(debian)).family, 'debian');
  });

  test('property: corrupted or truncated images → ImageError or a sane index, never a crash or a hang', async () => {
    const isos = [
      await readFile(await tinyIso(join(dir, 'f-rr.iso'), FILES)),
      await readFile(await tinyIso(join(dir, 'f-j.iso'), FILES, 'joliet')),
    ];
    // flips land in the metadata (volume descriptors, path tables, directories, Rock Ridge areas) where they matter
    const metaEnd = await Promise.all(
      ['f-rr.iso', 'f-j.iso'].map(async (f) =>
        Math.min(...[...(await readIsoIndex(join(dir, f))).files.values()].map((x) => x.offset)),
      ),
    );
    const target = join(dir, 'fuzz.iso');
    const flip = fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) });
    let errors = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: 1 }),
        fc.array(flip, { minLength: 1, maxLength: 24 }),
        fc.option(fc.nat(), { nil: undefined }),
        async (which, flips, cut) => {
          const image = Buffer.from(isos[which]);
          const meta = metaEnd[which];
          for (const { at, value } of flips) image[16 * 2048 + (at % (meta - 16 * 2048))] = value;
          await writeFile(target, cut === undefined ? image : image.subarray(0, cut % image.length));
          let timer: NodeJS.Timeout | undefined;
          const outcome = await Promise.race([
            readIsoIndex(target, { maxEntries: 10_000 }).then(async (index) => {
              for (const f of index.files.values()) {
                assert.ok(
                  f.offset >= 0 && f.size >= 0 && (f.size === 0 || f.offset + f.size <= index.isoSize),
                  f.path,
                );
                assert.ok(f.path.length > 0 && !f.path.split('/').includes('..'), f.path);
              }
              await detectLayout(index).catch((err) => {
                if (!(err instanceof ImageError)) throw err;
              });
              return 'ok';
            }),
            new Promise((resolve) => {
              timer = setTimeout(resolve, 10_000, 'hang');
            }),
          ])
            .finally(() => clearTimeout(timer))
            .catch((err) => {
              if (err instanceof ImageError) {
                errors++;
                return 'error';
              }
              throw err;
            });
          assert.notEqual(outcome, 'hang');
        },
      ),
      { numRuns: 400, seed: Number(process.env.FC_SEED ?? 20261125) },
    );
    assert.ok(errors > 0, 'the corruption should have produced some ImageErrors');
  });
});
