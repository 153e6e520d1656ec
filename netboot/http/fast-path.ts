// The image files' fast path: plain GETs of /image/<version>/<path> answered 200/206 straight from the Node
// 'request' event, before fastify builds its request/reply objects, runs its router and hooks (measured ~40 %
// of the CPU of a 64 KiB Range request). Anything else — HEAD, 304, 416, 404, an odd URL (percent-escapes, a
// query, `.` or `..` segments, over fastify's parameter length), a file the source cannot vouch for without
// waiting, a server that is closing — is declined and fastify answers it exactly as before.
//
// Same answers as the fastify route: headers and bodies from planResponse() (shared with serveFile), the boot
// event per GET through onServed, and with a logger at info or below the same two lines fastify writes
// ('incoming request', 'request completed', same reqId sequence).
//
// Small bodies (≤ SMALL_CHUNK, dnf's 64 KiB Range reads) are read synchronously: see syncReads. Larger ones go
// through pumpBody (thread-pool reads, backpressure), as in serveFile.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { FileSource } from '../types.ts';
import {
  contentType,
  giveBuffer,
  hasReader,
  planResponse,
  pumpBody,
  type ResponsePlan,
  SMALL_CHUNK,
  safeRelativePath,
  takeBuffer,
} from './files.ts';

/** the logger calls the fast path makes (pino's; fastify's no-op logger has no isLevelEnabled) */
export interface FastPathLogger {
  isLevelEnabled?(level: string): boolean;
  child(bindings: Record<string, unknown>): FastPathLogger;
  info(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface ImageFastPathOptions {
  /** `/image/<version>/` exactly as it appears in URLs */
  prefix: string;
  source: FileSource;
  /** the longest file path taken (fastify's router refuses longer parameters: those stay with it) */
  maxPathLength: number;
  /** called once the response is under way (headers and body handed to the socket) */
  onServed(req: IncomingMessage, path: string, status: number, url: string): void;
  /** the server's logger (read per request: fastify builds it after the server) */
  log(): FastPathLogger;
  /** fastify's request-id generator, shared so both paths number requests in one sequence */
  nextReqId(): string;
}

/**
 * Synchronous reads of small bodies, bounded.
 *
 * Why at all: a 64 KiB body read through the thread pool costs a hand-off each way (futex wake, eventfd, a
 * context switch that on a 2-core machine often preempts the event loop): measured +25–30 % requests/s when
 * read in place (bench/http.bench.ts, Range row). When the pages are cached the read is a ~10 µs memcpy.
 *
 * Why bounded: there is no portable "is it cached?" check, and a cold read blocks the event loop for the
 * disk's latency — ~0.1 ms on SSD/NVMe, up to ~10 ms on a spinning disk (a network file system: more). One
 * such stall is harmless to everything else this process does (iPXE scripts, kickstarts and status posts
 * have clients with timeouts of seconds, TFTP retransmits after ≥ 1 s). What must not happen is every request
 * stalling: the event loop turned into a one-at-a-time disk reader. So each synchronous read (with the ISO's
 * stat) is timed, and SLOW_IN_A_ROW consecutive ones slower than SLOW_MS send small bodies back to the thread
 * pool (fastify's path, as before) for BACKOFF_MS; then requests probe again. Two in a row, because on a busy
 * machine a single cached read is now and then preempted for milliseconds (seen a few times a minute under
 * the bench), while reads of cold data are all slow. Worst case: two blocking disk reads per second. An
 * install's steady state (every node reading the same packages, served from cache) reads in place.
 */
export const syncReads = {
  /** a synchronous stat+read slower than this is taken for a disk read (a cached 64 KiB read: ~10–50 µs) */
  SLOW_MS: 2,
  SLOW_IN_A_ROW: 2,
  BACKOFF_MS: 1000,
  /** consecutive slow reads so far */
  streak: 0,
  /** performance.now() before which small bodies are read through the thread pool */
  asyncUntil: 0,
  /** synchronous reads done, and how many of them were slow (diagnostics, tests) */
  count: 0,
  slow: 0,
  /** times small bodies were sent back to the thread pool */
  backoffs: 0,
  allowed(now: number): boolean {
    return now >= this.asyncUntil;
  },
  record(startedAt: number): void {
    this.count++;
    const now = performance.now();
    if (now - startedAt <= this.SLOW_MS) {
      this.streak = 0;
      return;
    }
    this.slow++;
    if (++this.streak >= this.SLOW_IN_A_ROW) {
      this.streak = 0;
      this.asyncUntil = now + this.BACKOFF_MS;
      this.backoffs++;
    }
  },
};

/** path characters taken as they are; anything else (%, ?, #, ;, spaces...) is left to fastify's decoding */
const PLAIN_PATH = /^[A-Za-z0-9._~+-]+(?:\/[A-Za-z0-9._~+-]+)*$/;

/**
 * A 'request' listener for the image fast path: returns true when it answered the request, false when the
 * caller must hand it to fastify (nothing has been written then). Undefined when the source offers no
 * synchronous readers.
 */
export function imageFastPath(
  o: ImageFastPathOptions,
): ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined {
  const { prefix, source } = o;
  if (!hasReader(source)) return undefined;
  return (req, res) => {
    const url = req.url;
    if (req.method !== 'GET' || url === undefined || !url.startsWith(prefix)) return false;
    const rest = url.slice(prefix.length);
    if (rest.length > o.maxPathLength || !PLAIN_PATH.test(rest)) return false;
    const path = safeRelativePath(rest);
    if (path === undefined) return false;
    const startedAt = performance.now();
    if (!syncReads.allowed(startedAt)) return false;
    const reader = source.readerNow(path);
    if (!reader) return false;
    let plan: ResponsePlan;
    try {
      plan = planResponse(req.headers, reader);
    } catch (err) {
      reader.release();
      throw err;
    }
    const { status, start, length } = plan;
    if ((status !== 200 && status !== 206) || length === 0) {
      reader.release();
      return false;
    }
    let body: Buffer | undefined;
    if (length <= SMALL_CHUNK) {
      const buf = takeBuffer(length);
      let got = -1;
      try {
        got = reader.readSync(buf, length, start);
      } catch {
        // fastify's path reads it again and answers as it does for any read error
      }
      syncReads.record(startedAt);
      if (got !== length) {
        giveBuffer(buf);
        reader.release();
        return false;
      }
      reader.release();
      body = buf;
    }

    const log = o.log();
    let reqLog: FastPathLogger | undefined;
    if (log.isLevelEnabled?.('info')) {
      reqLog = log.child({ reqId: o.nextReqId() });
      reqLog.info(
        { req: { method: req.method, url, ip: req.socket.remoteAddress, headers: req.headers } },
        'incoming request',
      );
      const logged = reqLog;
      res.once('finish', () =>
        logged.info(
          { res: { statusCode: res.statusCode }, responseTime: performance.now() - startedAt },
          'request completed',
        ),
      );
    }
    const headers: OutgoingHttpHeaders = {
      'accept-ranges': 'bytes',
      etag: plan.etag,
      'last-modified': plan.lastModified,
      'content-type': contentType(path),
      'content-length': String(length),
    };
    if (plan.contentRange) headers['content-range'] = plan.contentRange;
    res.writeHead(status, headers);
    if (body) {
      // one writev of headers and body; the pooled buffer goes back once the socket is done with it (never
      // after an error: a write the socket may still hold keeps it, the garbage collector frees it)
      const buf = body;
      res.end(length === buf.length ? buf : buf.subarray(0, length), (err?: Error | null) => {
        if (!err) giveBuffer(buf);
      });
    } else {
      pumpBody(res, reader, start, length, (err) => {
        if (err) (reqLog ?? log).debug({ err: err.message }, 'file transfer ended early');
      });
    }
    o.onServed(req, path, status, url);
    return true;
  };
}
