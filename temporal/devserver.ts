// The one place pxeflow gets a Temporal server from: the main command, the tests and the benchmarks all call
// `connectOrStart`. External server when TEMPORAL_ADDRESS is set; otherwise the embedded default,
// `temporal server start-dev` with a SQLite file, on free (or given) ports, web UI on.
import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { Connection } from '@temporalio/client';
import { execa } from 'execa';
import { resolveTemporalCli } from './cli-path.ts';
import { SEARCH_ATTRIBUTES } from './search-attributes.ts';

export interface TemporalEndpoint {
  /** host:port of the frontend gRPC service */
  address: string;
  namespace: string;
  /** web UI URL, when we started the server with its UI */
  uiUrl?: string;
  /** PID of the dev server we started (undefined for an external server) */
  pid?: number;
  external: boolean;
  /** Stops the server if we started it (no-op for an external one). Idempotent. */
  stop(): Promise<void>;
}

export interface DevServerOptions {
  /** SQLite file; kept across restarts. Required: pxeflow never runs an in-memory server by accident. */
  dbFile: string;
  /** where the server's own log goes */
  logFile: string;
  ip?: string;
  port?: number;
  uiPort?: number;
  headless?: boolean;
  namespace?: string;
  /** how long the frontend may take to answer */
  startTimeoutMs?: number;
  /** keep running after this process exits (the main command); tests leave this off */
  detached?: boolean;
  cli?: string;
  extraArgs?: string[];
}

export class TemporalServerError extends Error {}

/** A free TCP port on `ip`, or a clear error when `wanted` is taken. */
export async function freePort(ip: string, wanted?: number): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        new TemporalServerError(
          err.code === 'EADDRINUSE'
            ? `port ${wanted} on ${ip} is already in use (choose another with --port / TEMPORAL_PORT)`
            : `cannot bind ${ip}:${wanted ?? 0}: ${err.message}`,
        ),
      );
    });
    srv.listen({ host: ip, port: wanted ?? 0, exclusive: true }, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trim().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Polls until the frontend answers for `namespace`; throws when `alive()` turns false or time is up. */
export async function waitForFrontend(
  address: string,
  namespace: string,
  timeoutMs: number,
  alive: () => boolean = () => true,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = 'no answer';
  while (Date.now() < deadline) {
    if (!alive()) throw new TemporalServerError(`the Temporal server process exited while starting`);
    try {
      const conn = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await conn.workflowService.describeNamespace({ namespace });
        return;
      } finally {
        await conn.close();
      }
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new TemporalServerError(
    `Temporal at ${address} did not become healthy within ${timeoutMs} ms: ${lastError}`,
  );
}

async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      await res.body?.cancel();
      if (res.status === 200) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new TemporalServerError(
    `the Temporal web UI at ${url} did not answer 200 within ${timeoutMs} ms: ${last}`,
  );
}

/** Registers pxeflow's search attributes; idempotent (flags on start-dev are ignored for an existing DB file). */
export async function registerSearchAttributes(address: string, namespace: string): Promise<void> {
  const conn = await Connection.connect({ address });
  try {
    const have = await conn.operatorService.listSearchAttributes({ namespace });
    const existing = new Set(Object.keys(have.customAttributes ?? {}));
    const missing = Object.keys(SEARCH_ATTRIBUTES).filter((n) => !existing.has(n));
    if (missing.length === 0) return;
    // IndexedValueType.KEYWORD = 2 in temporal.api.enums.v1
    await conn.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((n) => [n, 2])),
    });
  } finally {
    await conn.close();
  }
}

export async function startDevServer(opts: DevServerOptions): Promise<TemporalEndpoint> {
  const ip = opts.ip ?? '127.0.0.1';
  const namespace = opts.namespace ?? 'default';
  const cli = opts.cli ?? resolveTemporalCli();
  const port = await freePort(ip, opts.port);
  const uiPort = opts.headless ? undefined : await freePort(ip, opts.uiPort);
  await mkdir(dirname(opts.dbFile), { recursive: true });
  await mkdir(dirname(opts.logFile), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--db-filename',
    opts.dbFile,
    '--ip',
    ip,
    '--port',
    String(port),
    '--log-level',
    'warn',
    ...(uiPort ? ['--ui-port', String(uiPort), '--ui-disable-news-fetch'] : ['--headless']),
    ...(namespace !== 'default' ? ['--namespace', namespace] : []),
    ...Object.entries(SEARCH_ATTRIBUTES).flatMap(([k, v]) => ['--search-attribute', `${k}=${v}`]),
    ...(opts.extraArgs ?? []),
  ];
  const child = execa(cli, args, {
    stdin: 'ignore',
    stdout: { file: opts.logFile, append: true },
    stderr: { file: opts.logFile, append: true },
    detached: opts.detached ?? false,
    cleanup: !opts.detached,
    reject: false,
  });
  const pid = child.pid;
  if (pid === undefined) {
    throw new TemporalServerError(`could not start ${cli}: ${(await child).message ?? 'spawn failed'}`);
  }
  let exited = false;
  void child.then(() => {
    exited = true;
  });
  if (opts.detached) child.unref();
  const address = `${ip}:${port}`;
  const endpoint: TemporalEndpoint = {
    address,
    namespace,
    uiUrl: uiPort ? `http://${ip}:${uiPort}` : undefined,
    pid,
    external: false,
    stop: () => stopPid(pid),
  };
  try {
    await waitForFrontend(address, namespace, opts.startTimeoutMs ?? 30_000, () => !exited && isAlive(pid));
    await registerSearchAttributes(address, namespace);
    if (endpoint.uiUrl) await waitForHttp(endpoint.uiUrl, opts.startTimeoutMs ?? 30_000);
  } catch (err) {
    await endpoint.stop();
    const msg = err instanceof Error ? err.message : String(err);
    throw new TemporalServerError(`${msg}\n--- ${opts.logFile} (last lines) ---\n${tail(opts.logFile)}`);
  }
  return endpoint;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
export async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    while (isAlive(pid)) await new Promise((r) => setTimeout(r, 20));
  }
}

/** The external server named by TEMPORAL_ADDRESS (+ TEMPORAL_NAMESPACE), if any. */
export async function externalServer(
  env: NodeJS.ProcessEnv = process.env,
): Promise<TemporalEndpoint | undefined> {
  const address = env.TEMPORAL_ADDRESS;
  if (!address) return undefined;
  const namespace = env.TEMPORAL_NAMESPACE ?? 'default';
  await waitForFrontend(address, namespace, Number(env.TEMPORAL_CONNECT_TIMEOUT_MS ?? 10_000));
  await registerSearchAttributes(address, namespace);
  return { address, namespace, uiUrl: env.TEMPORAL_UI_URL, external: true, stop: async () => {} };
}

/** TEMPORAL_ADDRESS wins; otherwise start the embedded dev server. */
export async function connectOrStart(opts: DevServerOptions): Promise<TemporalEndpoint> {
  return (await externalServer()) ?? (await startDevServer(opts));
}
