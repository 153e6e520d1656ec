// A small, read-only ISO 9660 reader: volume descriptors, Rock Ridge (NM) and Joliet names, directory walk.
// Hand-written because npm has no maintained ISO 9660 reader (iso9660-js, node-iso9660 and friends are
// abandoned or extract-only); we need only the file table: path → (offset, size, mtime), since every file on
// ISO 9660 is one contiguous extent that can be served straight from the ISO by byte range.
// Defensive by design: every offset and length is checked against the file size, every loop is bounded,
// and any malformed input becomes an ImageError naming the file and the problem.
import { open, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';

export class ImageError extends Error {
  readonly file: string;
  constructor(file: string, message: string) {
    super(`${file}: ${message}`);
    this.name = 'ImageError';
    this.file = file;
  }
}

export interface IsoFile {
  /** relative path inside the ISO, '/'-separated, no leading slash: "images/pxeboot/vmlinuz" */
  path: string;
  size: number;
  /** byte offset of the file's data inside the ISO */
  offset: number;
  mtimeMs: number;
}

export interface IsoIndex {
  isoPath: string;
  isoSize: number;
  volumeId: string;
  /** which naming the paths come from */
  names: 'rockridge' | 'joliet' | 'iso9660';
  files: Map<string, IsoFile>;
}

export interface ReadIsoOptions {
  /** stop with an error beyond this many directory entries (default 2,000,000) */
  maxEntries?: number;
}

const SECTOR = 2048;
const MAX_DEPTH = 64;
const MAX_DIR_BYTES = 64 * 1024 * 1024;
const MAX_TOTAL_DIR_BYTES = 1024 * 1024 * 1024;
const MAX_DESCRIPTORS = 64;
const MAX_CONTINUATIONS = 16;

interface DirRecord {
  extent: number;
  size: number;
  flags: number;
  mtimeMs: number;
  isoName: Buffer;
  systemUse: Buffer;
}

interface SuspInfo {
  name?: string;
  childLink?: number;
  relocated: boolean;
  symlink: boolean;
  hasSp: boolean;
  skip: number;
}

/** Reads the directory tree of an ISO 9660 image. Throws ImageError for anything that is not a sound ISO. */
export async function readIsoIndex(isoPath: string, options: ReadIsoOptions = {}): Promise<IsoIndex> {
  const maxEntries = options.maxEntries ?? 2_000_000;
  let isoSize: number;
  try {
    const st = await stat(isoPath);
    if (!st.isFile()) throw new ImageError(isoPath, 'not a regular file');
    isoSize = st.size;
  } catch (err) {
    if (err instanceof ImageError) throw err;
    throw new ImageError(isoPath, `cannot read: ${(err as Error).message}`);
  }
  const fh = await open(isoPath, 'r').catch((err: Error) => {
    throw new ImageError(isoPath, `cannot open: ${err.message}`);
  });
  try {
    const reader = new Reader(fh, isoPath, isoSize);
    return await walk(reader, maxEntries);
  } finally {
    await fh.close();
  }
}

/** Reads a whole (small) file out of the ISO, e.g. .treeinfo. */
export async function readIsoFileBytes(
  index: IsoIndex,
  path: string,
  maxBytes = 1024 * 1024,
): Promise<Buffer> {
  const file = index.files.get(path);
  if (!file) throw new ImageError(index.isoPath, `no file ${path} in the image`);
  if (file.size > maxBytes)
    throw new ImageError(index.isoPath, `${path} is ${file.size} bytes, over ${maxBytes}`);
  const fh = await open(index.isoPath, 'r').catch((err: Error) => {
    throw new ImageError(index.isoPath, `cannot open: ${err.message}`);
  });
  try {
    return await new Reader(fh, index.isoPath, index.isoSize).read(file.offset, file.size, path);
  } finally {
    await fh.close();
  }
}

class Reader {
  constructor(
    private readonly fh: FileHandle,
    readonly file: string,
    readonly size: number,
  ) {}

  fail(message: string): never {
    throw new ImageError(this.file, message);
  }

  async read(offset: number, length: number, what: string): Promise<Buffer> {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      this.fail(`${what}: bad offset ${offset} / length ${length}`);
    }
    if (offset + length > this.size) {
      this.fail(
        `${what} lies past the end of the file (bytes ${offset}+${length} of ${this.size}): truncated?`,
      );
    }
    const buf = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.fh.read(buf, done, length - done, offset + done);
      if (bytesRead === 0) this.fail(`${what}: unexpected end of file at ${offset + done}`);
      done += bytesRead;
    }
    return buf;
  }
}

async function walk(r: Reader, maxEntries: number): Promise<IsoIndex> {
  if (r.size < 17 * SECTOR) r.fail(`not an ISO 9660 image: only ${r.size} bytes`);
  let primary: Buffer | undefined;
  let joliet: Buffer | undefined;
  for (let i = 0; i < MAX_DESCRIPTORS; i++) {
    const pos = (16 + i) * SECTOR;
    if (pos + SECTOR > r.size) r.fail('volume descriptor set has no terminator before the end of the file');
    const vd = await r.read(pos, SECTOR, 'volume descriptor');
    if (vd.toString('latin1', 1, 6) !== 'CD001') {
      r.fail(
        i === 0 ? 'not an ISO 9660 image (no CD001 signature at sector 16)' : `bad volume descriptor ${i}`,
      );
    }
    const type = vd[0];
    if (type === 255) break;
    if (type === 1 && !primary) primary = vd;
    if (type === 2 && isJoliet(vd)) joliet ??= vd;
    if (i === MAX_DESCRIPTORS - 1) r.fail('too many volume descriptors');
  }
  if (!primary) r.fail('no primary volume descriptor');
  const blockSize = primary.readUInt16LE(128);
  if (blockSize !== 2048 && blockSize !== 1024 && blockSize !== 512)
    r.fail(`unsupported block size ${blockSize}`);
  const volumeBytes = primary.readUInt32LE(80) * blockSize;
  if (volumeBytes > r.size) {
    r.fail(`truncated: the volume is ${volumeBytes} bytes but the file has ${r.size}`);
  }
  const volumeId = primary.toString('latin1', 40, 72).trim();
  const ctx: WalkContext = {
    r,
    blockSize,
    maxEntries,
    entries: 0,
    dirBytes: 0,
    visited: new Set(),
    files: new Map(),
  };

  const root = parseRecord(primary.subarray(156, 190), 0, r, 'root directory record');
  if (!root) r.fail('missing root directory record');
  const rootDir = await readDir(ctx, root, '/');
  // Rock Ridge is announced by an SP entry in the root's "." record.
  const dot = firstRecord(rootDir, r);
  const sp = dot ? await parseSusp(ctx, dot.systemUse, 0) : undefined;
  if (sp?.hasSp) {
    ctx.suspSkip = sp.skip;
    await walkTree(ctx, rootDir, 'rockridge');
    return { isoPath: r.file, isoSize: r.size, volumeId, names: 'rockridge', files: ctx.files };
  }
  if (joliet) {
    const jroot = parseRecord(joliet.subarray(156, 190), 0, r, 'Joliet root record');
    if (!jroot) r.fail('missing Joliet root directory record');
    ctx.visited.clear();
    await walkTree(ctx, await readDir(ctx, jroot, '/'), 'joliet');
    return { isoPath: r.file, isoSize: r.size, volumeId, names: 'joliet', files: ctx.files };
  }
  await walkTree(ctx, rootDir, 'iso9660');
  return { isoPath: r.file, isoSize: r.size, volumeId, names: 'iso9660', files: ctx.files };
}

interface WalkContext {
  r: Reader;
  blockSize: number;
  maxEntries: number;
  entries: number;
  visited: Set<number>;
  dirBytes: number;
  files: Map<string, IsoFile>;
  suspSkip?: number;
}

function isJoliet(vd: Buffer): boolean {
  const esc = vd.toString('latin1', 88, 91);
  return esc === '%/@' || esc === '%/C' || esc === '%/E';
}

async function readDir(ctx: WalkContext, dir: DirRecord, path: string): Promise<Buffer> {
  if (dir.size > MAX_DIR_BYTES) ctx.r.fail(`directory ${path} claims ${dir.size} bytes`);
  if (ctx.visited.has(dir.extent)) ctx.r.fail(`directory cycle at ${path}`);
  ctx.dirBytes += dir.size;
  if (ctx.dirBytes > MAX_TOTAL_DIR_BYTES)
    ctx.r.fail(`directories total more than ${MAX_TOTAL_DIR_BYTES} bytes`);
  ctx.visited.add(dir.extent);
  return ctx.r.read(dir.extent * ctx.blockSize, dir.size, `directory ${path}`);
}

function firstRecord(data: Buffer, r: Reader): DirRecord | undefined {
  return data.length > 0 ? parseRecord(data, 0, r, 'directory record') : undefined;
}

/** Parses one directory record at `pos`; undefined for a zero length byte (padding to the sector end). */
function parseRecord(data: Buffer, pos: number, r: Reader, what: string): DirRecord | undefined {
  const len = data[pos];
  if (len === 0 || len === undefined) return undefined;
  if (len < 34 || pos + len > data.length) r.fail(`${what}: bad record length ${len}`);
  const nameLen = data[pos + 32];
  if (33 + nameLen > len) r.fail(`${what}: name length ${nameLen} exceeds the record`);
  const suStart = 33 + nameLen + (nameLen % 2 === 0 ? 1 : 0);
  return {
    extent: data.readUInt32LE(pos + 2),
    size: data.readUInt32LE(pos + 10),
    mtimeMs: recordDate(data.subarray(pos + 18, pos + 25)),
    flags: data[pos + 25],
    isoName: data.subarray(pos + 33, pos + 33 + nameLen),
    systemUse: data.subarray(pos + Math.min(suStart, len), pos + len),
  };
}

function recordDate(b: Buffer): number {
  const [year, month, day, hour, minute, second] = b;
  const offsetMin = b.readInt8(6) * 15;
  if (month < 1 || month > 12 || day < 1 || day > 31) return 0;
  return Date.UTC(1900 + year, month - 1, day, hour, minute, second) - offsetMin * 60_000;
}

/** Iterates the records of one directory (records never cross a sector boundary). */
function* records(data: Buffer, r: Reader, blockSize: number, path: string): Generator<DirRecord> {
  let pos = 0;
  while (pos < data.length) {
    const rec = parseRecord(data, pos, r, `directory ${path}`);
    if (!rec) {
      pos = (Math.floor(pos / blockSize) + 1) * blockSize; // padding: skip to the next sector
      continue;
    }
    yield rec;
    pos += data[pos];
  }
}

async function walkTree(ctx: WalkContext, rootData: Buffer, names: IsoIndex['names']): Promise<void> {
  const { r } = ctx;
  const queue: Array<{ dir?: DirRecord; path: string; depth: number }> = [{ path: '', depth: 0 }];
  while (queue.length > 0) {
    const { dir, path, depth } = queue.shift()!;
    const data = dir ? await readDir(ctx, dir, path) : rootData;
    let index = 0;
    for (const rec of records(data, r, ctx.blockSize, path || '/')) {
      if (index++ < 2) continue; // "." and ".."
      if (++ctx.entries > ctx.maxEntries) r.fail(`more than ${ctx.maxEntries} directory entries`);
      const susp = names === 'rockridge' ? await parseSusp(ctx, rec.systemUse, ctx.suspSkip ?? 0) : undefined;
      if (susp?.relocated || susp?.symlink) continue;
      const name = entryName(rec, names, susp, r, path);
      const full = path ? `${path}/${name}` : name;
      const isDir = (rec.flags & 2) !== 0 || susp?.childLink !== undefined;
      if (isDir) {
        if (depth + 1 > MAX_DEPTH) r.fail(`directories nested deeper than ${MAX_DEPTH} at ${full}`);
        let dirRec = rec;
        if (susp?.childLink !== undefined) {
          // Rock Ridge deep-directory relocation: the real directory lives elsewhere; its "." record has its size.
          const at = susp.childLink * ctx.blockSize;
          const head = await r.read(at, Math.min(ctx.blockSize, r.size - at), `relocated directory ${full}`);
          dirRec =
            parseRecord(head, 0, r, `relocated directory ${full}`) ?? r.fail(`relocated ${full} has no "."`);
        }
        queue.push({ dir: dirRec, path: full, depth: depth + 1 });
        continue;
      }
      if (rec.flags & 0x80) r.fail(`${full} is a multi-extent file (over 4 GiB): not supported`);
      const offset = rec.extent * ctx.blockSize;
      if (rec.size > 0 && offset + rec.size > r.size) {
        r.fail(
          `${full} lies past the end of the file (bytes ${offset}+${rec.size} of ${r.size}): truncated?`,
        );
      }
      if (!ctx.files.has(full))
        ctx.files.set(full, { path: full, size: rec.size, offset, mtimeMs: rec.mtimeMs });
    }
  }
}

function entryName(
  rec: DirRecord,
  names: IsoIndex['names'],
  susp: SuspInfo | undefined,
  r: Reader,
  dir: string,
) {
  let name: string;
  if (names === 'rockridge' && susp?.name !== undefined) name = susp.name;
  else if (names === 'joliet') name = ucs2be(rec.isoName).replace(/;\d+$/, '');
  else name = rec.isoName.toString('latin1').replace(/;\d+$/, '').replace(/\.$/, '');
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    r.fail(`bad file name ${JSON.stringify(name)} in directory /${dir}`);
  }
  return name;
}

function ucs2be(b: Buffer): string {
  const swapped = Buffer.from(b.subarray(0, b.length - (b.length % 2)));
  swapped.swap16();
  return swapped.toString('utf16le');
}

/** System Use Sharing Protocol entries we need: SP, NM, CL, RE, SL, and CE continuation areas. */
async function parseSusp(ctx: WalkContext, area: Buffer, skip: number): Promise<SuspInfo> {
  const info: SuspInfo = { relocated: false, symlink: false, hasSp: false, skip: 0 };
  let nameParts: string[] | undefined;
  let buf = area.subarray(Math.min(skip, area.length));
  const pending: Buffer[] = [];
  for (let areas = 0; areas <= MAX_CONTINUATIONS; areas++) {
    let pos = 0;
    while (pos + 4 <= buf.length) {
      const sig = buf.toString('latin1', pos, pos + 2);
      const len = buf[pos + 2];
      if (len < 4 || pos + len > buf.length) break; // malformed tail: ignore the rest, like Linux does
      const body = buf.subarray(pos + 4, pos + len);
      if (sig === 'SP' && body.length >= 3 && body[0] === 0xbe && body[1] === 0xef) {
        info.hasSp = true;
        info.skip = body[2];
      } else if (sig === 'NM' && body.length >= 1) {
        const flags = body[0];
        if ((flags & 6) === 0) {
          nameParts ??= [];
          nameParts.push(body.subarray(1).toString('utf8'));
        }
      } else if (sig === 'CL' && body.length >= 4) info.childLink = body.readUInt32LE(0);
      else if (sig === 'RE') info.relocated = true;
      else if (sig === 'SL') info.symlink = true;
      else if (sig === 'CE' && body.length >= 24) pending.push(body);
      else if (sig === 'ST') break;
      pos += len;
    }
    const ce = pending.shift();
    if (!ce) break;
    if (areas === MAX_CONTINUATIONS) ctx.r.fail('too many Rock Ridge continuation areas');
    const start = ce.readUInt32LE(0) * ctx.blockSize + ce.readUInt32LE(8);
    const length = ce.readUInt32LE(16);
    if (length > ctx.blockSize) ctx.r.fail(`Rock Ridge continuation area of ${length} bytes`);
    buf = await ctx.r.read(start, length, 'Rock Ridge continuation area');
  }
  if (nameParts) info.name = nameParts.join('');
  return info;
}
