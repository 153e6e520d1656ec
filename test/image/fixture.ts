// Shared fixture: the test ISO (built once, cached in .tools/testiso) copied into a fresh library folder.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { buildTestIso } from '../../image/testiso/build.ts';

export async function freshLibrary(): Promise<{
  dir: string;
  version: string;
  isoPath: string;
  remove(): Promise<void>;
}> {
  const dir = await mkdtemp(join(tmpdir(), 'pxeflow-isolib-'));
  const { isoPath, version } = await buildTestIso({ outDir: dir });
  return { dir, version, isoPath, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** What xorriso itself extracts for `path` — the reference the reader is compared against. */
export async function xorrisoExtract(isoPath: string, path: string, outDir: string): Promise<string> {
  const out = join(outDir, path.replace(/\//g, '_'));
  await execa('xorriso', ['-osirrox', 'on', '-indev', isoPath, '-extract', `/${path}`, out], {
    stdin: 'ignore',
  });
  return out;
}

/** A tiny ISO made by xorriso from `files` (path → content); `mode` picks the name extensions. */
export async function tinyIso(
  outPath: string,
  files: Record<string, string | Buffer>,
  mode: 'rockridge' | 'joliet' | 'plain' = 'rockridge',
): Promise<string> {
  const src = `${outPath}.src`;
  await rm(src, { recursive: true, force: true });
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(src, path)), { recursive: true });
    await writeFile(join(src, path), content);
  }
  const names =
    mode === 'rockridge'
      ? ['-rockridge', 'on']
      : mode === 'joliet'
        ? ['-rockridge', 'off', '-joliet', 'on']
        : ['-rockridge', 'off'];
  await rm(outPath, { force: true });
  await execa('xorriso', ['-outdev', outPath, ...names, '-map', src, '/'], { stdin: 'ignore' });
  await rm(src, { recursive: true, force: true });
  return outPath;
}
