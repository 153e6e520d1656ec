// FileSource implementations: files served straight out of an ISO by byte range (no copy), and a plain
// directory (used by tests and by anything that keeps boot files on disk). Both are traversal-safe.
import { close, createReadStream, fstat, open, read, readSync, type Stats, statSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { PositionalFileSource, PositionalReader } from '../netboot/http/files.ts';
import type { FileSource } from '../netboot/types.ts';
import { ImageError, readIsoIndex } from './iso9660.ts';
import type { IsoIndex } from './iso9660.ts';

/** Turns a requested path into the canonical relative form ("a/b/c"); throws on `..`, absolute paths, NUL. */
const READ_CHUNK = 1024 * 1024;

export function normaliseSourcePath(path: string): string {
  if (typeof path !== 'string' || path.length === 0) throw new ImageError(String(path), 'empty path');
  if (path.includes('\0')) throw new ImageError(JSON.stringify(path), 'path contains NUL');
  if (path.startsWith('/') || path.startsWith('\\'))
    throw new ImageError(path, 'absolute paths are not allowed');
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..')) throw new ImageError(path, '".." is not allowed');
  if (parts.length === 0) throw new ImageError(path, 'empty path');
  return parts.join('/');
}

function tryNormalise(path: string): string | undefined {
  try {
    return normaliseSourcePath(path);
  } catch {
    return undefined;
  }
}

type Range = { start: number; end: number } | undefined;

function checkRange(path: string, size: number, range: Range): { start: number; end: number } | undefined {
  if (!range) return undefined;
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end >= size) {
    throw new ImageError(path, `byte range ${start}-${end} is outside the file (${size} bytes)`);
  }
  return range;
}

/** A stream whose source is decided asynchronously; errors surface as stream errors. */
function deferredStream(make: () => Promise<Readable>): Readable {
  const out = new PassThrough();
  make()
    .then((src) => pipeline(src, out))
    .catch((err: Error) => out.destroy(err));
  return out;
}

export interface IsoSourceTarget {
  isoPath: string;
  isoSize: number;
  isoMtimeMs: number;
}

/**
 * Serves the files of a prepared ISO by byte range. Refuses to serve once the ISO on disk changed.
 *
 * Two ways to read: open() (a stream per call, for TFTP and tests) and reader() (positional reads on one
 * shared, pre-opened descriptor of the ISO, for the HTTP server's pooled buffers). The ISO is checked
 * against its prepared size and mtime on every stat/open/reader; calls that arrive while a stat() of it is
 * in flight share that one (under load: one stat per round trip, not two per request), so a call made after
 * a change was complete, with no check in flight, always sees the change.
 *
 * readerNow() is reader() without waiting, for the HTTP server's synchronous path: it answers only when the
 * index is loaded and the shared descriptor open, after checking the ISO with a synchronous stat (a statx of a
 * cached inode, ~2 µs). Calls made in one turn of the event loop share that stat (under load ~20 requests are
 * parsed per turn), the synchronous counterpart of sharing an in-flight check: a change complete before the
 * turn began is always seen. Otherwise it answers undefined and the caller takes reader(), whose check also
 * retires a stale descriptor.
 */
export function isoFileSource(description: IsoSourceTarget): FileSource & PositionalFileSource {
  const { isoPath } = description;
  let loading: Promise<IsoIndex> | undefined;
  let loaded: IsoIndex | undefined; // what `loading` resolved to, for readerNow()
  let checking: Promise<Stats> | undefined;
  const handles = new SharedFd(isoPath);
  // this event-loop turn's stat of the ISO (readerNow), null: not taken yet in this turn
  let turnStat: Stats | undefined | null = null;
  const endTurn = () => {
    turnStat = null;
  };
  const statThisTurn = (): Stats | undefined => {
    if (turnStat === null) {
      try {
        turnStat = statSync(isoPath, { throwIfNoEntry: false });
      } catch {
        turnStat = undefined; // EACCES, ENOTDIR...: unusable now; reader() gives the real answer
      }
      setImmediate(endTurn);
    }
    return turnStat;
  };
  const check = (): Promise<Stats> => {
    checking ??= stat(isoPath)
      .catch(() => undefined)
      .then((st) => {
        if (!st || st.size !== description.isoSize || st.mtimeMs !== description.isoMtimeMs) {
          loading = undefined;
          loaded = undefined;
          handles.retire();
          throw new ImageError(
            isoPath,
            'the ISO changed (or vanished) since it was prepared; prepare it again',
          );
        }
        return st;
      })
      .finally(() => {
        checking = undefined;
      });
    return checking;
  };
  const checkedIndex = async (): Promise<{ st: Stats; idx: IsoIndex }> => {
    const st = await check();
    if (!loading) {
      const p = readIsoIndex(isoPath);
      loading = p;
      p.then(
        (idx) => {
          if (loading === p) loaded = idx;
        },
        () => {},
      );
    }
    const idx = await loading.catch((err) => {
      loading = undefined;
      throw err;
    });
    return { st, idx };
  };
  const index = async (): Promise<IsoIndex> => (await checkedIndex()).idx;
  return {
    async stat(path) {
      const p = tryNormalise(path);
      const file = p === undefined ? undefined : (await index()).files.get(p);
      return file ? { size: file.size, mtimeMs: file.mtimeMs } : undefined;
    },
    open(path, range) {
      return deferredStream(async () => {
        const p = normaliseSourcePath(path);
        const file = (await index()).files.get(p);
        if (!file) throw new ImageError(isoPath, `no file ${p} in the image`);
        const r = checkRange(p, file.size, range) ?? { start: 0, end: file.size - 1 };
        if (file.size === 0) return emptyStream();
        return createReadStream(isoPath, {
          start: file.offset + r.start,
          end: file.offset + r.end,
          // kernels, initrds and packages are read whole: 1 MiB reads mean 16× fewer syscalls and socket writes
          highWaterMark: READ_CHUNK,
        });
      });
    },
    async reader(path) {
      const p = tryNormalise(path);
      if (p === undefined) return undefined;
      const { st, idx } = await checkedIndex();
      const file = idx.files.get(p);
      if (!file) return undefined;
      return positionalReader(p, file, await handles.acquire(st), handles);
    },
    readerNow(path) {
      const idx = loaded;
      if (!idx || !handles.ready) return undefined;
      // a path found as it is is canonical (the index holds canonical names only): no normalising needed
      const p = idx.files.has(path) ? path : tryNormalise(path);
      const file = p === undefined ? undefined : idx.files.get(p);
      if (!file || p === undefined) return undefined;
      const st = statThisTurn();
      if (!st || st.size !== description.isoSize || st.mtimeMs !== description.isoMtimeMs) return undefined;
      const fd = handles.acquireNow(st);
      return fd ? positionalReader(p, file, fd, handles) : undefined;
    },
  };
}

function positionalReader(
  p: string,
  file: { offset: number; size: number; mtimeMs: number },
  fd: FdRef,
  handles: SharedFd,
): PositionalReader {
  const base = file.offset;
  let released = false;
  const outside = (position: number, length: number) =>
    position < 0 || length < 0 || position + length > file.size;
  return {
    size: file.size,
    mtimeMs: file.mtimeMs,
    read(buf, length, position, cb) {
      if (released) return cb(new Error('reader released'), 0);
      if (outside(position, length))
        return cb(new ImageError(p, `read ${position}+${length} is outside the file`), 0);
      read(fd.fd, buf, 0, length, base + position, cb);
    },
    readSync(buf, length, position) {
      if (released) throw new Error('reader released');
      if (outside(position, length))
        throw new ImageError(p, `read ${position}+${length} is outside the file`);
      return readSync(fd.fd, buf, 0, length, base + position);
    },
    release() {
      if (released) return;
      released = true;
      handles.release(fd);
    },
  };
}

interface FdRef {
  fd: number;
  dev: number;
  ino: number;
  users: number;
  retired: boolean;
}

/**
 * One read-only descriptor of a file shared by every transfer, counted: a descriptor whose file was replaced
 * (another inode at the path) or that failed its check is retired and closed once its last reader is done;
 * an unused one is closed after IDLE_CLOSE_MS, so a source nobody reads holds no descriptor.
 */
const IDLE_CLOSE_MS = 10_000;
class SharedFd {
  private current: FdRef | undefined;
  private opening: Promise<FdRef> | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private lastUse = 0;

  constructor(private readonly path: string) {}

  /** a descriptor of the file `st` describes (the path's current inode) */
  async acquire(st: Stats): Promise<FdRef> {
    let ref = this.current;
    if (ref && (st.ino !== ref.ino || st.dev !== ref.dev)) {
      this.retire();
      ref = undefined;
    }
    if (!ref) {
      this.opening ??= openShared(this.path).finally(() => {
        this.opening = undefined;
      });
      const opened = await this.opening;
      if (this.current !== opened) {
        if (this.current) this.retire();
        this.current = opened;
      }
      ref = opened;
      if (st.ino !== ref.ino || st.dev !== ref.dev) {
        this.retire(); // replaced between the check and open(): the next request checks it afresh
        throw new ImageError(this.path, 'the ISO changed while being opened; prepare it again');
      }
    }
    ref.users++;
    this.lastUse = Date.now();
    this.idleTimer ??= setInterval(() => this.closeIfIdle(), IDLE_CLOSE_MS).unref();
    return ref;
  }

  /** an open descriptor can be had without waiting (acquireNow may still refuse it for another inode) */
  get ready(): boolean {
    return this.current !== undefined;
  }

  /** the current descriptor if it is the file `st` describes, else undefined (acquire() sorts that out) */
  acquireNow(st: Stats): FdRef | undefined {
    const ref = this.current;
    if (!ref || st.ino !== ref.ino || st.dev !== ref.dev) return undefined;
    ref.users++;
    this.lastUse = Date.now();
    this.idleTimer ??= setInterval(() => this.closeIfIdle(), IDLE_CLOSE_MS).unref();
    return ref;
  }

  release(ref: FdRef): void {
    ref.users--;
    this.lastUse = Date.now();
    if (ref.retired && ref.users === 0) close(ref.fd, () => {});
  }

  /** the current descriptor takes no new readers; it is closed when its last reader is done */
  retire(): void {
    const ref = this.current;
    if (!ref) return;
    this.current = undefined;
    ref.retired = true;
    if (ref.users === 0) close(ref.fd, () => {});
  }

  private closeIfIdle(): void {
    if (this.current && this.current.users === 0 && Date.now() - this.lastUse >= IDLE_CLOSE_MS) this.retire();
    if (!this.current && this.idleTimer) {
      clearInterval(this.idleTimer);
      this.idleTimer = undefined;
    }
  }
}

function openShared(path: string): Promise<FdRef> {
  return new Promise((resolve, reject) => {
    open(path, 'r', (err, fd) => {
      if (err) return reject(err);
      fstat(fd, (err2, st) => {
        if (err2) {
          close(fd, () => {});
          return reject(err2);
        }
        resolve({ fd, dev: st.dev, ino: st.ino, users: 0, retired: false });
      });
    });
  });
}

function emptyStream(): Readable {
  const s = new PassThrough();
  s.end();
  return s;
}

/** Serves regular files below `root`; symlinks that lead outside it are refused. */
export function dirFileSource(root: string): FileSource {
  const base = resolve(root);
  const locate = async (
    path: string,
  ): Promise<{ real: string; size: number; mtimeMs: number } | undefined> => {
    const p = tryNormalise(path);
    if (p === undefined) return undefined;
    const real = await realpath(join(base, p)).catch(() => undefined);
    const realBase = await realpath(base).catch(() => base);
    if (!real || !(real === realBase || real.startsWith(realBase + sep))) return undefined;
    const st = await stat(real).catch(() => undefined);
    return st?.isFile() ? { real, size: st.size, mtimeMs: st.mtimeMs } : undefined;
  };
  return {
    async stat(path) {
      const f = await locate(path);
      return f ? { size: f.size, mtimeMs: f.mtimeMs } : undefined;
    },
    open(path, range) {
      return deferredStream(async () => {
        const p = normaliseSourcePath(path);
        const f = await locate(p);
        if (!f) throw new ImageError(base, `no file ${p}`);
        const r = checkRange(p, f.size, range);
        if (f.size === 0) return emptyStream();
        return createReadStream(f.real, {
          ...(r ? { start: r.start, end: r.end } : {}),
          highWaterMark: READ_CHUNK,
        });
      });
    },
  };
}
