// Transfers on a small pool of worker threads (worker.ts). Sending is the server's whole cost under load — the
// kernel's sendmsg, which over a veth also does the receiver's work, was 70–80% of a CPU profile — and one
// thread cannot use a second core; atftpd (a thread per transfer) and tftpd-hpa (a process per transfer) do.
//
// The main thread keeps the well-known port, request parsing, resolving (access checks), negotiation and the
// boot events; a worker gets the client, the negotiated options and the file (the bytes of an in-memory file,
// or a size whose bytes it pulls from the main thread chunk by chunk: the file's own open() runs here, so a
// FileSource's checks — the ISO unchanged since it was prepared — still apply), opens the transfer's socket,
// and reports started / ended. A worker that dies fails its transfers (the main thread counts them and emits
// their `failed` events) and is replaced; workers that cannot even start leave the server serving in-process.
import type { Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import type { Negotiated } from './packet.ts';
import type { Peer, TftpFile, TransferResult } from './transfer.ts';
import type { FromWorker, ToWorker } from './worker.ts';

export interface PoolJob {
  client: Peer;
  file: TftpFile;
  size: number;
  negotiated: Negotiated;
  timeoutMs: number;
  retries: number;
}

export interface JobHandlers {
  /** the transfer's socket is bound and the first packet is on its way */
  started(): void;
  /** no transfer socket could be opened: nothing was sent to the client */
  refused(err: Error): void;
  ended(result: TransferResult): void;
}

/** A transfer handed to the pool (or run in-process): abort it, wait for its end. */
export interface RunningTransfer {
  abort(reason: string): void;
  readonly ended: Promise<void>;
}

export interface PoolLogger {
  debug(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

interface Job {
  id: number;
  handlers: JobHandlers;
  client: Peer;
  started: boolean;
  file: TftpFile;
  size: number;
  stream?: Readable;
  iterator?: AsyncIterator<Buffer>;
  resolveEnded(): void;
}

interface Member {
  worker: Worker;
  jobs: Map<number, Job>;
  ready: boolean;
  /** resolves once the worker has answered `close` (all its sockets closed) */
  closed?: Promise<void>;
  syncs: Map<number, () => void>;
}

const WORKER_URL = new URL('./worker.ts', import.meta.url).href;

/**
 * The worker's first code: registers tsx, then loads worker.ts. A worker thread inherits neither the loader
 * that tsx's API registered in the main thread (bin/pxeflow.js) nor, on Node 20, the one `--import tsx` did.
 */
function bootstrap(): string {
  const tsx = import.meta.resolve('tsx/esm/api');
  return `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(WORKER_URL)}); });`;
}
/** workers that die before they are ready, in a row, after which the pool stops replacing them */
const MAX_FAILED_STARTS = 3;
const READY_TIMEOUT_MS = 15_000;
const CLOSE_TIMEOUT_MS = 5_000;

export class TransferPool {
  private readonly members: Member[] = [];
  private nextId = 1;
  private nextSeq = 1;
  private failedStarts = 0;
  private closing = false;
  private code = '';

  constructor(
    private readonly size: number,
    private readonly address: string,
    private readonly family: 4 | 6,
    private readonly logger: PoolLogger,
    private readonly debug: boolean,
  ) {}

  /** Starts the workers; resolves false (and leaves none running) when they cannot start. */
  async start(): Promise<boolean> {
    try {
      this.code = bootstrap();
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'tftp: cannot start transfer workers');
      return false;
    }
    let members: Member[];
    try {
      members = Array.from({ length: this.size }, () => this.spawn());
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'tftp: cannot start transfer workers');
      await this.close();
      return false;
    }
    const ready = await Promise.all(members.map((m) => this.whenReady(m)));
    if (ready.every(Boolean)) return true;
    await this.close();
    return false;
  }

  /** True while at least one worker runs (transfers can be handed over). */
  get usable(): boolean {
    return !this.closing && this.members.length > 0;
  }

  /** Threads and their transfers, for tests and diagnostics. */
  workers(): { worker: Worker; active: number; ready: boolean }[] {
    return this.members.map((m) => ({ worker: m.worker, active: m.jobs.size, ready: m.ready }));
  }

  run(job: PoolJob, handlers: JobHandlers): RunningTransfer {
    // the least busy worker (a replacement still loading only when no other is ready); the first of equals
    let member = this.members[0];
    for (const m of this.members) {
      if (m.ready !== member.ready ? m.ready : m.jobs.size < member.jobs.size) member = m;
    }
    const id = this.nextId++;
    let resolveEnded!: () => void;
    const ended = new Promise<void>((r) => {
      resolveEnded = r;
    });
    const state: Job = {
      id,
      handlers,
      client: job.client,
      started: false,
      file: job.file,
      size: job.size,
      resolveEnded,
    };
    member.jobs.set(id, state);
    const msg: ToWorker = {
      t: 'start',
      id,
      address: this.address,
      family: this.family,
      client: job.client,
      negotiated: job.negotiated,
      timeoutMs: job.timeoutMs,
      retries: job.retries,
      size: job.size,
      debug: this.debug,
    };
    if (Buffer.isBuffer(job.file)) msg.data = new Uint8Array(job.file); // a copy: the resolver may reuse its buffer
    member.worker.postMessage(msg);
    return {
      abort: (reason) => {
        if (member.jobs.has(id)) member.worker.postMessage({ t: 'abort', id, reason } satisfies ToWorker);
      },
      ended,
    };
  }

  /**
   * Resolves once every worker running a transfer for `ip` has reported what it did before now. A client that
   * fetches files one after another sends its last ACK before its next request; the ACK reaches the worker's
   * socket, the request the main thread: waiting here keeps the first file's `completed` event before the next
   * file's `started`, as in one thread (the controller's phase follows the latest event).
   */
  async sync(ip: string): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const m of this.members) {
      let busy = false;
      for (const job of m.jobs.values()) if (job.started && job.client.address === ip) busy = true;
      if (!busy) continue;
      const seq = this.nextSeq++;
      waits.push(new Promise((r) => m.syncs.set(seq, r)));
      m.worker.postMessage({ t: 'sync', seq } satisfies ToWorker);
    }
    await Promise.all(waits);
  }

  /** Aborts every transfer (ERROR 0 to its client), waits for the workers' sockets to close, ends the threads. */
  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(
      this.members.map(async (m) => {
        m.closed ??= new Promise<void>((resolve) => {
          const onMessage = (msg: FromWorker) => {
            if (msg.t === 'closed') resolve();
          };
          m.worker.on('message', onMessage);
          m.worker.once('exit', () => resolve());
          m.worker.postMessage({ t: 'close' } satisfies ToWorker);
          setTimeout(resolve, CLOSE_TIMEOUT_MS).unref();
        });
        await m.closed;
        await m.worker.terminate();
      }),
    );
  }

  private spawn(): Member {
    const worker = new Worker(this.code, { eval: true, stdout: false, stderr: false });
    const member: Member = { worker, jobs: new Map(), ready: false, syncs: new Map() };
    this.members.push(member);
    worker.on('message', (msg: FromWorker) => this.onMessage(member, msg));
    worker.on('error', (err) => this.logger.warn({ err: err.message }, 'tftp: transfer worker crashed'));
    worker.once('exit', (code) => this.onExit(member, code));
    return member;
  }

  private whenReady(member: Member): Promise<boolean> {
    if (member.ready) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onMessage = (msg: FromWorker) => {
        if (msg.t === 'ready') done(true);
      };
      const onExit = () => done(false);
      const timer = setTimeout(() => done(false), READY_TIMEOUT_MS);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        member.worker.off('message', onMessage);
        member.worker.off('exit', onExit);
        resolve(ok);
      };
      member.worker.on('message', onMessage);
      member.worker.once('exit', onExit);
    });
  }

  private onMessage(member: Member, msg: FromWorker): void {
    switch (msg.t) {
      case 'ready':
        member.ready = true;
        this.failedStarts = 0;
        return;
      case 'synced':
        member.syncs.get(msg.seq)?.();
        member.syncs.delete(msg.seq);
        return;
      case 'log':
        if (msg.level === 'warn') this.logger.warn(msg.obj, msg.msg);
        else this.logger.debug(msg.obj, msg.msg);
        return;
      case 'closed':
        return;
    }
    const job = member.jobs.get(msg.id);
    if (!job) return;
    switch (msg.t) {
      case 'started':
        job.started = true;
        job.handlers.started();
        return;
      case 'bind-failed':
        this.finishJob(member, job);
        job.handlers.refused(new Error(msg.message));
        return;
      case 'done':
        this.finishJob(member, job);
        job.handlers.ended(msg.result);
        return;
      case 'pull':
        this.feed(member, job);
        return;
    }
  }

  /** Reads the job's next chunk (opening its stream on the first pull) and posts it to the worker. */
  private feed(member: Member, job: Job): void {
    const file = job.file as Exclude<TftpFile, Buffer>;
    let next: Promise<IteratorResult<Buffer>>;
    try {
      if (!job.iterator) {
        job.stream = file.open({ start: 0, end: job.size - 1 });
        job.iterator = job.stream[Symbol.asyncIterator]();
      }
      next = job.iterator.next();
    } catch (err) {
      next = Promise.reject(err);
    }
    next.then(
      ({ value, done }) => {
        if (!member.jobs.has(job.id)) return;
        if (done) return member.worker.postMessage({ t: 'end', id: job.id } satisfies ToWorker);
        // a copy the worker takes over: the chunk may be a view into a buffer its source still uses
        const data = new Uint8Array(value as Uint8Array);
        member.worker.postMessage({ t: 'chunk', id: job.id, data } satisfies ToWorker, [data.buffer]);
      },
      (err: Error) => {
        if (!member.jobs.has(job.id)) return;
        member.worker.postMessage({ t: 'fail', id: job.id, message: err.message } satisfies ToWorker);
      },
    );
  }

  private finishJob(member: Member, job: Job): void {
    member.jobs.delete(job.id);
    job.stream?.destroy();
    job.resolveEnded();
  }

  /** A worker ended: its transfers fail (their sockets went with the thread); it is replaced unless closing. */
  private onExit(member: Member, code: number): void {
    const i = this.members.indexOf(member);
    if (i >= 0) this.members.splice(i, 1);
    for (const resolve of member.syncs.values()) resolve();
    for (const job of [...member.jobs.values()]) {
      this.finishJob(member, job);
      if (job.started) {
        job.handlers.ended({
          ok: false,
          reason: 'transfer worker died',
          bytes: 0,
          packets: 0,
          retransmits: 0,
        });
      } else job.handlers.refused(new Error('transfer worker died'));
    }
    if (this.closing) return;
    this.logger.warn(
      { code, threadId: member.worker.threadId },
      'tftp: transfer worker exited; replacing it',
    );
    if (!member.ready && ++this.failedStarts >= MAX_FAILED_STARTS) {
      this.logger.warn({}, 'tftp: transfer workers keep failing to start; serving in the main thread');
      return;
    }
    this.spawn();
  }
}
