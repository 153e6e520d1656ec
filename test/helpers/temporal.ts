// A real Temporal dev server for a test file: started by the same manager as the main command, on free
// ports with a temp SQLite file, stopped in after(). TEMPORAL_ADDRESS, when set, is used instead.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { connectOrStart, type TemporalEndpoint } from '../../temporal/devserver.ts';

export interface TestTemporal {
  endpoint: TemporalEndpoint;
  client: Client;
  dir: string;
  close(): Promise<void>;
}

export async function startTestTemporal(opts: { headless?: boolean } = {}): Promise<TestTemporal> {
  const dir = await mkdtemp(join(tmpdir(), 'pxeflow-temporal-'));
  const endpoint = await connectOrStart({
    dbFile: join(dir, 'temporal.db'),
    logFile: join(dir, 'temporal.log'),
    headless: opts.headless ?? true,
  });
  const connection = await Connection.connect({ address: endpoint.address });
  const client = new Client({ connection, namespace: endpoint.namespace });
  return {
    endpoint,
    client,
    dir,
    async close() {
      await connection.close();
      await endpoint.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
