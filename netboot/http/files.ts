// Serves files of a FileSource with HEAD, Range (range-parser), ETag/Last-Modified and conditional GET.
// Hand-written on purpose: @fastify/static and `send` serve only the local file system, and image files
// come from a FileSource (an ISO, a directory...). The HTTP rules followed are RFC 9110 §13-14.
//
// Fast path: a source that also offers reader() (the ISO source) has its bodies copied by positional reads on
// one shared descriptor into pooled 1 MiB buffers, written straight to the socket (reply.hijack()) one chunk
// at a time: no stream, no open/close, no fresh buffer per request. Any other FileSource is streamed.
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { FastifyReply, FastifyRequest } from 'fastify';
import rangeParser from 'range-parser';
import type { FileSource } from '../types.ts';

/** Positional reads of one file; release() exactly once when done (it frees the shared descriptor). */
export interface PositionalReader {
  size: number;
  mtimeMs: number;
  /** reads `length` bytes at `position` (relative to the file's start) into buf[0..length) */
  read(
    buf: Buffer,
    length: number,
    position: number,
    cb: (err: NodeJS.ErrnoException | Error | null, bytesRead: number) => void,
  ): void;
  /** the same read done at once on the calling thread (blocks it: see syncReads); returns the bytes read */
  readSync(buf: Buffer, length: number, position: number): number;
  release(): void;
}

/** A FileSource that can also hand out positional readers (undefined: no such file). */
export interface PositionalFileSource {
  reader(path: string): Promise<PositionalReader | undefined>;
  /**
   * reader() without waiting, when the source can vouch for the file right now (its check done synchronously,
   * its descriptor already open); undefined when it cannot — absent file, changed ISO, nothing open yet — and
   * the caller takes reader(), which gives the authoritative answer.
   */
  readerNow(path: string): PositionalReader | undefined;
}

export function hasReader(source: FileSource): source is FileSource & PositionalFileSource {
  return typeof (source as Partial<PositionalFileSource>).reader === 'function';
}

/** Bytes read and written per step of a body (1 MiB measured best against 256/512 KiB: bench/http.bench.ts). */
export const BODY_CHUNK = 1024 * 1024;
/** Bodies up to this size (dnf's 64 KiB Range requests, small files) take a small buffer. */
export const SMALL_CHUNK = 64 * 1024;

/**
 * Free buffers of one size. Holds up to `max` (one per concurrent transfer at the bench's 64 connections:
 * allocating a fresh 1 MiB buffer per request costs page faults and GC, measured ~1.5× the CPU per GB);
 * buffers that stayed unused for a whole TRIM_MS interval are dropped, so an idle server gives them back.
 */
class BufferPool {
  private readonly free: Buffer[] = [];
  private lowWater = 0;
  private timer: NodeJS.Timeout | undefined;
  constructor(
    readonly size: number,
    private readonly max: number,
  ) {}
  take(): Buffer {
    const buf = this.free.pop();
    if (this.free.length < this.lowWater) this.lowWater = this.free.length;
    return buf ?? Buffer.allocUnsafeSlow(this.size);
  }
  give(buf: Buffer): void {
    if (this.free.length >= this.max) return;
    this.free.push(buf);
    this.timer ??= setInterval(() => this.trim(), TRIM_MS).unref();
  }
  /** drops the buffers nobody needed since the last trim */
  trim(): void {
    this.free.splice(0, this.lowWater);
    this.lowWater = this.free.length;
    if (this.free.length === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
  get idle(): number {
    return this.free.length;
  }
}
const TRIM_MS = 30_000;
export const bufferPools = { small: new BufferPool(SMALL_CHUNK, 256), large: new BufferPool(BODY_CHUNK, 64) };
export const takeBuffer = (length: number): Buffer =>
  length <= SMALL_CHUNK ? bufferPools.small.take() : bufferPools.large.take();
export const giveBuffer = (buf: Buffer): void =>
  (buf.length === SMALL_CHUNK ? bufferPools.small : bufferPools.large).give(buf);

/**
 * Copies bytes [start, start+length) of `reader` to `res`: read a chunk, write it, wait until the socket took
 * it (backpressure), repeat. A client that goes away ends it at once; the reader is always released, and a
 * buffer the socket may still reference is never put back into the pool.
 */
export function pumpBody(
  res: ServerResponse,
  reader: PositionalReader,
  start: number,
  length: number,
  onDone?: (err?: Error) => void,
): void {
  let pos = start;
  let left = length;
  let buf: Buffer | undefined; // ours between writes; while a write is pending the socket may hold it
  let done = false;
  const finish = (err?: Error) => {
    if (done) return;
    done = true;
    res.off('close', onClose);
    reader.release();
    if (err) {
      buf = undefined; // it may still sit in a pending socket write: left to the garbage collector
      res.destroy();
    } else {
      if (buf) giveBuffer(buf);
      buf = undefined;
      res.end();
    }
    onDone?.(err);
  };
  // node never calls a write's callback once the socket is gone: 'close' is what ends a pending write
  const onClose = () => finish(new Error('connection closed before the body was sent'));
  const step = (): void => {
    if (left === 0) {
      finish();
      return;
    }
    if (res.destroyed) {
      finish(new Error('connection closed before the body was sent'));
      return;
    }
    if (!buf) buf = takeBuffer(left);
    const chunk = buf;
    reader.read(chunk, Math.min(left, chunk.length), pos, (err, got) => {
      if (done) {
        giveBuffer(chunk); // no socket write was issued with it since the read began
        return;
      }
      if (err || got <= 0) {
        finish(err ?? new Error(`short read at byte ${pos}`));
        return;
      }
      res.write(got === chunk.length ? chunk : chunk.subarray(0, got), (werr) => {
        if (done) return;
        if (werr) {
          finish(werr);
          return;
        }
        pos += got;
        left -= got;
        step();
      });
    });
  };
  res.on('close', onClose);
  step();
}

/** A safe relative path inside the image, or undefined when it could leave it (.., empty, NUL, \). */
export function safeRelativePath(raw: string): string | undefined {
  if (raw.length === 0 || raw.length > 1024 || /[\0\\]/.test(raw)) return undefined;
  const segments = raw.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) return undefined;
  return segments.join('/');
}

const CONTENT_TYPES: Record<string, string> = {
  rpm: 'application/x-rpm',
  xml: 'application/xml',
  gz: 'application/gzip',
  treeinfo: 'text/plain; charset=utf-8',
  txt: 'text/plain; charset=utf-8',
  cfg: 'text/plain; charset=utf-8',
};

export function contentType(path: string): string {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const ext = name.includes('.') ? name.slice(name.lastIndexOf('.') + 1).toLowerCase() : '';
  return CONTENT_TYPES[ext] ?? 'application/octet-stream';
}

function etagMatches(header: string, etag: string): boolean {
  return header
    .split(',')
    .map((t) => t.trim().replace(/^W\//, ''))
    .some((t) => t === '*' || t === etag);
}

function notModified(headers: IncomingHttpHeaders, etag: string, mtimeMs: number): boolean {
  const inm = headers['if-none-match'];
  if (typeof inm === 'string') return etagMatches(inm, etag); // If-None-Match wins over If-Modified-Since
  const ims = headers['if-modified-since'];
  if (typeof ims !== 'string') return false;
  const since = Date.parse(ims);
  return !Number.isNaN(since) && Math.floor(mtimeMs / 1000) <= Math.floor(since / 1000);
}

/** If-Range: honour the Range only if the validator still matches (strong ETag or exact date). */
function rangeStillValid(headers: IncomingHttpHeaders, etag: string, lastModified: string): boolean {
  const ifRange = headers['if-range'];
  if (typeof ifRange !== 'string') return true;
  return ifRange.startsWith('"') ? ifRange === etag : ifRange === lastModified;
}

/** What to answer for a file: the status, validators and the body's byte span. */
export interface ResponsePlan {
  status: 200 | 206 | 304 | 416;
  etag: string;
  lastModified: string;
  /** the body is bytes [start, start + length) of the file (200, 206) */
  start: number;
  length: number;
  /** 206: the range sent; 416: `bytes *\/size` */
  contentRange?: string;
}

let lastModifiedCache = { seconds: Number.NaN, text: '' };
function httpDate(mtimeMs: number): string {
  const seconds = Math.floor(mtimeMs / 1000);
  if (seconds !== lastModifiedCache.seconds)
    lastModifiedCache = { seconds, text: new Date(seconds * 1000).toUTCString() };
  return lastModifiedCache.text;
}

/**
 * The HTTP rules for one file (RFC 9110 §13-14), shared by serveFile and the image fast path. Multiple ranges
 * are answered with the whole file (allowed by RFC 9110 §14.2; installers never ask for multipart ranges).
 */
export function planResponse(
  headers: IncomingHttpHeaders,
  stat: { size: number; mtimeMs: number },
): ResponsePlan {
  const etag = `"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
  const lastModified = httpDate(stat.mtimeMs);
  const plan: ResponsePlan = { status: 200, etag, lastModified, start: 0, length: stat.size };
  if (notModified(headers, etag, stat.mtimeMs)) {
    plan.status = 304;
    plan.length = 0;
    return plan;
  }
  const rangeHeader = headers.range;
  if (typeof rangeHeader === 'string' && rangeStillValid(headers, etag, lastModified)) {
    const parsed = rangeParser(stat.size, rangeHeader, { combine: true });
    if (parsed === -1) {
      plan.status = 416;
      plan.length = 0;
      plan.contentRange = `bytes */${stat.size}`;
    } else if (parsed !== -2 && parsed.type === 'bytes' && parsed.length === 1) {
      const { start, end } = parsed[0];
      plan.status = 206;
      plan.start = start;
      plan.length = end - start + 1;
      plan.contentRange = `bytes ${start}-${end}/${stat.size}`;
    }
    // a malformed Range header is ignored (RFC 9110 §14.2): the whole file follows
  }
  return plan;
}

/** Replies with `path` from `source`; returns the HTTP status sent. */
export async function serveFile(
  req: FastifyRequest,
  reply: FastifyReply,
  source: FileSource,
  path: string,
): Promise<number> {
  let stat: { size: number; mtimeMs: number } | undefined;
  let reader: PositionalReader | undefined;
  try {
    if (hasReader(source)) stat = reader = await source.reader(path);
    else stat = await source.stat(path);
  } catch {
    stat = undefined; // unreadable counts as absent: never a 5xx for a client's path
  }
  if (!stat) {
    reply.code(404).send({ error: 'not found' });
    return 404;
  }
  const plan = planResponse(req.headers, stat);
  reply.header('accept-ranges', 'bytes').header('etag', plan.etag).header('last-modified', plan.lastModified);
  if (plan.status === 304) {
    reader?.release();
    reply.code(304).send();
    return 304;
  }
  if (plan.status === 416) {
    reader?.release();
    reply.code(416).header('content-range', plan.contentRange).send({ error: 'range not satisfiable' });
    return 416;
  }

  const { status, start, length } = plan;
  reply.code(status).header('content-type', contentType(path)).header('content-length', String(length));
  if (plan.contentRange) reply.header('content-range', plan.contentRange);
  if (req.method === 'HEAD' || length === 0) {
    reader?.release();
    reply.send();
  } else if (reader) {
    // the body bypasses fastify's send: headers as fastify would have written them, then the pump
    reply.hijack();
    const res = reply.raw;
    res.writeHead(status, reply.getHeaders() as OutgoingHttpHeaders);
    pumpBody(res, reader, start, length, (err) => {
      if (err) req.log.debug({ err: err.message }, 'file transfer ended early');
    });
  } else {
    reply.send(source.open(path, status === 206 ? { start, end: start + length - 1 } : undefined));
  }
  return status;
}
