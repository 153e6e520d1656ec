// Path handling shared by both FileSources, and the plain-directory source (traversal, symlinks, ranges).
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { ImageError } from '../../image/iso9660.ts';
import { dirFileSource, normaliseSourcePath } from '../../image/source.ts';

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('file sources', () => {
  let base: string;
  let root: string;
  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'pxeflow-source-'));
    root = join(base, 'root');
    await mkdir(join(root, 'images/pxeboot'), { recursive: true });
    await writeFile(join(root, 'images/pxeboot/vmlinuz'), '0123456789');
    await writeFile(join(root, 'empty'), '');
    await writeFile(join(base, 'secret'), 'outside');
    await symlink(join(base, 'secret'), join(root, 'escape'));
    await symlink('images/pxeboot/vmlinuz', join(root, 'inside-link'));
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  test('normaliseSourcePath keeps clean relative paths and rejects the rest', () => {
    assert.equal(normaliseSourcePath('images/pxeboot/vmlinuz'), 'images/pxeboot/vmlinuz');
    assert.equal(normaliseSourcePath('./images//pxeboot/./vmlinuz'), 'images/pxeboot/vmlinuz');
    for (const bad of ['../etc/passwd', 'a/../../b', '/etc/passwd', 'a\0b', '', '.', '//']) {
      assert.throws(() => normaliseSourcePath(bad), ImageError, JSON.stringify(bad));
    }
  });

  test('dirFileSource serves files and byte ranges, refuses traversal and escaping symlinks', async () => {
    const source = dirFileSource(root);
    assert.equal((await source.stat('images/pxeboot/vmlinuz'))?.size, 10);
    assert.equal((await collect(source.open('images/pxeboot/vmlinuz'))).toString(), '0123456789');
    assert.equal(
      (await collect(source.open('images/pxeboot/vmlinuz', { start: 2, end: 4 }))).toString(),
      '234',
    );
    assert.equal((await collect(source.open('empty'))).length, 0);
    assert.equal((await source.stat('inside-link'))?.size, 10);
    for (const bad of ['escape', '../secret', '/etc/passwd', 'images', 'missing', 'a\0b']) {
      assert.equal(await source.stat(bad), undefined, bad);
      await assert.rejects(collect(source.open(bad)), ImageError, bad);
    }
    await assert.rejects(
      collect(source.open('images/pxeboot/vmlinuz', { start: 5, end: 10 })),
      /outside the file/,
    );
    await assert.rejects(
      collect(source.open('images/pxeboot/vmlinuz', { start: 5, end: 4 })),
      /outside the file/,
    );
  });
});
