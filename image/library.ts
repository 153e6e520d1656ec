// The ISO library: a folder of `<version>.iso` files plus `index.json`, a cache of verified descriptions.
// Version naming (chosen): the version IS the file name without `.iso` ("rhel-9.4-x86_64" ↔
// rhel-9.4-x86_64.iso). It is known without opening the ISO, unique within the folder, and chosen by the
// operator who drops the file in; the product name/version from .treeinfo is kept as `release`.
// An ISO is hashed (sha256, streamed) once; later prepares with the same size and mtime come from the index.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { ImageError, readIsoIndex } from './iso9660.ts';
import { detectLayout } from './layout.ts';

export { ImageError } from './iso9660.ts';

export const imageDescriptionSchema = z.object({
  version: z.string(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  isoPath: z.string(),
  isoSize: z.number().int().nonnegative(),
  isoMtimeMs: z.number(),
  family: z.string(),
  release: z.string().optional(),
  arch: z.string(),
  kernel: z.string(),
  initrd: z.string(),
  repoRoot: z.string(),
  hasRepodata: z.boolean(),
  repos: z.array(z.object({ id: z.string(), root: z.string(), hasRepodata: z.boolean() })),
  files: z.number().int().nonnegative(),
});
/** What a prepared ISO offers: JSON-serialisable (it travels through Temporal activities). */
export type ImageDescription = z.infer<typeof imageDescriptionSchema>;

const indexEntrySchema = z.object({
  file: z.string(),
  sha256: z.string(),
  size: z.number(),
  mtimeMs: z.number(),
  description: imageDescriptionSchema,
});
const indexSchema = z.object({ formatVersion: z.literal(1), images: z.record(z.string(), indexEntrySchema) });
type LibraryIndex = z.infer<typeof indexSchema>;

export interface ImageListing {
  version: string;
  file: string;
  size: number;
  mtimeMs: number;
  /** true when index.json holds a verified description for the file as it is now */
  prepared: boolean;
  sha256?: string;
}

export interface PrepareOptions {
  /** refuse the image unless its sha256 is this (also checked against SHA256SUMS in the folder) */
  expectSha256?: string;
}

export interface IsoLibraryOptions {
  /** called each time an ISO is hashed — lets tests see that a cached prepare did not re-hash */
  onHash?: (isoPath: string) => void;
}

const INDEX = 'index.json';
const SUMS = 'SHA256SUMS';
/** one preparation per ISO at a time in this process; index writes serialised per library folder */
const inflight = new Map<string, Promise<ImageDescription>>();
const indexLocks = new Map<string, Promise<unknown>>();

export class IsoLibrary {
  readonly dir: string;
  constructor(
    dir: string,
    private readonly options: IsoLibraryOptions = {},
  ) {
    this.dir = resolve(dir);
  }

  /** Every `*.iso` in the folder, sorted by version. */
  async listImages(): Promise<ImageListing[]> {
    const index = await this.readIndex();
    const names = await readdir(this.dir).catch((err: Error) => {
      throw new ImageError(this.dir, `cannot read the ISO library folder: ${err.message}`);
    });
    const out: ImageListing[] = [];
    for (const file of names.filter((n) => n.endsWith('.iso')).sort()) {
      const st = await stat(join(this.dir, file)).catch(() => undefined);
      if (!st?.isFile()) continue;
      const version = file.slice(0, -'.iso'.length);
      const entry = index.images[version];
      const prepared =
        !!entry && entry.file === file && entry.size === st.size && entry.mtimeMs === st.mtimeMs;
      out.push({
        version,
        file,
        size: st.size,
        mtimeMs: st.mtimeMs,
        prepared,
        sha256: prepared ? entry.sha256 : undefined,
      });
    }
    return out;
  }

  /** Finds, verifies and describes the ISO of `version`; instant when the index already knows the file. */
  prepareImage(version: string, options: PrepareOptions = {}): Promise<ImageDescription> {
    const key = `${this.dir}\0${version}\0${options.expectSha256 ?? ''}`;
    const running = inflight.get(key);
    if (running) return running;
    const work = this.prepare(version, options).finally(() => inflight.delete(key));
    inflight.set(key, work);
    return work;
  }

  private async prepare(version: string, options: PrepareOptions): Promise<ImageDescription> {
    if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(version)) {
      throw new ImageError(this.dir, `bad ISO version ${JSON.stringify(version)}`);
    }
    const file = `${version}.iso`;
    const isoPath = join(this.dir, file);
    const st = await stat(isoPath).catch(() => undefined);
    if (!st?.isFile()) {
      const known = (await this.listImages()).map((l) => l.version);
      throw new ImageError(
        this.dir,
        `unknown ISO version ${JSON.stringify(version)}; known versions: ${known.length ? known.join(', ') : '(none)'}`,
      );
    }
    const expected = await this.expectedSha256(file, options.expectSha256);
    const cached = (await this.readIndex()).images[version];
    if (cached && cached.file === file && cached.size === st.size && cached.mtimeMs === st.mtimeMs) {
      checkSha(isoPath, cached.sha256, expected);
      return { ...cached.description, isoPath };
    }

    // New or changed file: structure first (cheap, fails fast on non-ISOs), then the full hash.
    const iso = await readIsoIndex(isoPath);
    const layout = await detectLayout(iso);
    this.options.onHash?.(isoPath);
    const sha256 = await sha256File(isoPath);
    const after = await stat(isoPath);
    if (after.size !== st.size || after.mtimeMs !== st.mtimeMs) {
      throw new ImageError(isoPath, 'the file changed while it was being verified; try again');
    }
    checkSha(isoPath, sha256, expected);
    const description: ImageDescription = {
      version,
      sha256,
      isoPath,
      isoSize: st.size,
      isoMtimeMs: st.mtimeMs,
      ...layout,
      files: iso.files.size,
    };
    await this.updateIndex((index) => {
      index.images[version] = { file, sha256, size: st.size, mtimeMs: st.mtimeMs, description };
    });
    return description;
  }

  private async expectedSha256(file: string, given?: string): Promise<string | undefined> {
    if (given !== undefined && !/^[0-9a-fA-F]{64}$/.test(given)) {
      throw new ImageError(file, `expected sha256 ${JSON.stringify(given)} is not 64 hex digits`);
    }
    const sums = await readFile(join(this.dir, SUMS), 'utf8').catch(() => undefined);
    let listed: string | undefined;
    for (const line of sums?.split('\n') ?? []) {
      const m = /^([0-9a-fA-F]{64})\s+\*?(.+?)\s*$/.exec(line);
      if (m && basename(m[2]) === file) listed = m[1].toLowerCase();
    }
    if (given && listed && given.toLowerCase() !== listed) {
      throw new ImageError(file, `expected sha256 ${given} disagrees with ${SUMS} (${listed})`);
    }
    return given?.toLowerCase() ?? listed;
  }

  private async readIndex(): Promise<LibraryIndex> {
    const text = await readFile(join(this.dir, INDEX), 'utf8').catch(() => undefined);
    if (text === undefined) return { formatVersion: 1, images: {} };
    try {
      return indexSchema.parse(JSON.parse(text));
    } catch {
      // index.json is only a cache: a damaged one is rebuilt, every ISO is verified again
      return { formatVersion: 1, images: {} };
    }
  }

  /** read-modify-write of index.json, serialised in this process, atomic on disk (temp file + rename) */
  private updateIndex(change: (index: LibraryIndex) => void): Promise<void> {
    const previous = indexLocks.get(this.dir) ?? Promise.resolve();
    const next = previous
      .catch(() => undefined)
      .then(async () => {
        const index = await this.readIndex();
        change(index);
        const tmp = join(this.dir, `.${INDEX}.${process.pid}.${Date.now()}.tmp`);
        await writeFile(tmp, `${JSON.stringify(index, null, 2)}\n`);
        await rename(tmp, join(this.dir, INDEX));
      });
    indexLocks.set(this.dir, next);
    return next;
  }
}

function checkSha(isoPath: string, actual: string, expected: string | undefined): void {
  if (expected && expected !== actual) {
    throw new ImageError(
      isoPath,
      `sha256 mismatch: expected ${expected}, the file has ${actual}; not serving it`,
    );
  }
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path, { highWaterMark: 1024 * 1024 }), hash);
  return hash.digest('hex');
}
