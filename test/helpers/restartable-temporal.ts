// A Temporal dev server a test can take down and bring back on the same SQLite file and port, to prove that
// installs survive a server restart. Clients keep their Connection: gRPC reconnects by itself.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { startDevServer, type TemporalEndpoint } from '../../temporal/devserver.ts';

export interface RestartableTemporal {
  /** address and namespace stay the same across restarts */
  endpoint: { address: string; namespace: string };
  client: Client;
  dir: string;
  /** PID of the server process running now */
  readonly pid: number | undefined;
  /** SIGKILL (crash: true, the default) or SIGTERM; resolves when the process is gone */
  stop(opts?: { crash?: boolean }): Promise<void>;
  /** starts it again on the same file and port */
  start(): Promise<void>;
  close(): Promise<void>;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

export async function startRestartableTemporal(): Promise<RestartableTemporal> {
  const dir = await mkdtemp(join(tmpdir(), 'pxeflow-temporal-restart-'));
  const opts = { dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'temporal.log'), headless: true };
  let server: TemporalEndpoint | undefined = await startDevServer(opts);
  const port = Number(server.address.split(':').at(-1));
  const endpoint = { address: server.address, namespace: server.namespace };
  const connection = await Connection.connect({ address: endpoint.address });
  const client = new Client({ connection, namespace: endpoint.namespace });
  return {
    endpoint,
    client,
    dir,
    get pid() {
      return server?.pid;
    },
    async stop({ crash = true } = {}) {
      const s = server;
      server = undefined;
      if (!s?.pid) return;
      if (crash) {
        process.kill(s.pid, 'SIGKILL');
        while (alive(s.pid)) await new Promise((r) => setTimeout(r, 20));
      }
      await s.stop();
    },
    async start() {
      if (server) throw new Error('the Temporal server is running');
      server = await startDevServer({ ...opts, port });
    },
    async close() {
      await connection.close();
      await server?.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
