// Serves files of a FileSource with HEAD, Range (range-parser), ETag/Last-Modified and conditional GET.
// Hand-written on purpose: @fastify/static and `send` serve only the local file system, and image files
// come from a FileSource (an ISO, a directory...). The HTTP rules followed are RFC 9110 §13-14.
import type { FastifyReply, FastifyRequest } from 'fastify';
import rangeParser from 'range-parser';
import type { FileSource } from '../types.ts';

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

function contentType(path: string): string {
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

function notModified(req: FastifyRequest, etag: string, mtimeMs: number): boolean {
  const inm = req.headers['if-none-match'];
  if (typeof inm === 'string') return etagMatches(inm, etag); // If-None-Match wins over If-Modified-Since
  const ims = req.headers['if-modified-since'];
  if (typeof ims !== 'string') return false;
  const since = Date.parse(ims);
  return !Number.isNaN(since) && Math.floor(mtimeMs / 1000) <= Math.floor(since / 1000);
}

/** If-Range: honour the Range only if the validator still matches (strong ETag or exact date). */
function rangeStillValid(req: FastifyRequest, etag: string, lastModified: string): boolean {
  const ifRange = req.headers['if-range'];
  if (typeof ifRange !== 'string') return true;
  return ifRange.startsWith('"') ? ifRange === etag : ifRange === lastModified;
}

/**
 * Replies with `path` from `source`; returns the HTTP status sent. Multiple ranges are answered with the
 * whole file (allowed by RFC 9110 §14.2; installers never ask for multipart ranges).
 */
export async function serveFile(
  req: FastifyRequest,
  reply: FastifyReply,
  source: FileSource,
  path: string,
): Promise<number> {
  let stat: { size: number; mtimeMs: number } | undefined;
  try {
    stat = await source.stat(path);
  } catch {
    stat = undefined; // unreadable counts as absent: never a 5xx for a client's path
  }
  if (!stat) {
    reply.code(404).send({ error: 'not found' });
    return 404;
  }
  const etag = `"${stat.size.toString(16)}-${Math.floor(stat.mtimeMs).toString(16)}"`;
  const lastModified = new Date(Math.floor(stat.mtimeMs / 1000) * 1000).toUTCString();
  reply.header('accept-ranges', 'bytes').header('etag', etag).header('last-modified', lastModified);

  if (notModified(req, etag, stat.mtimeMs)) {
    reply.code(304).send();
    return 304;
  }

  let range: { start: number; end: number } | undefined;
  const rangeHeader = req.headers.range;
  if (typeof rangeHeader === 'string' && rangeStillValid(req, etag, lastModified)) {
    const parsed = rangeParser(stat.size, rangeHeader, { combine: true });
    if (parsed === -1) {
      reply
        .code(416)
        .header('content-range', `bytes */${stat.size}`)
        .send({ error: 'range not satisfiable' });
      return 416;
    }
    if (parsed !== -2 && parsed.type === 'bytes' && parsed.length === 1) range = parsed[0];
    // a malformed Range header is ignored (RFC 9110 §14.2): the whole file follows
  }

  const status = range ? 206 : 200;
  const length = range ? range.end - range.start + 1 : stat.size;
  reply.code(status).header('content-type', contentType(path)).header('content-length', String(length));
  if (range) reply.header('content-range', `bytes ${range.start}-${range.end}/${stat.size}`);
  if (req.method === 'HEAD' || length === 0) {
    reply.send();
  } else {
    reply.send(source.open(path, range));
  }
  return status;
}
