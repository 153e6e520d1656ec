// The Temporal server manager against the real `temporal` binary installed by setup.
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Connection } from '@temporalio/client';
import { resolveTemporalCli } from '../../temporal/cli-path.ts';
import { connectOrStart, startDevServer, TemporalServerError } from '../../temporal/devserver.ts';
import { SEARCH_ATTRIBUTES } from '../../temporal/search-attributes.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pxeflow-devserver-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('starts the dev server with SQLite and the web UI, registers search attributes, stops cleanly', async () => {
  const dbFile = join(dir, 'a.db');
  const s = await startDevServer({ dbFile, logFile: join(dir, 'a.log') });
  try {
    assert.ok(s.pid && alive(s.pid));
    const ui = await fetch(s.uiUrl!);
    assert.equal(ui.status, 200);
    const conn = await Connection.connect({ address: s.address });
    const attrs = await conn.operatorService.listSearchAttributes({ namespace: 'default' });
    for (const name of Object.keys(SEARCH_ATTRIBUTES))
      assert.ok(name in (attrs.customAttributes ?? {}), name);
    await conn.close();
  } finally {
    await s.stop();
  }
  assert.ok(!alive(s.pid!), 'server process gone after stop');
  // the same DB file again: attributes are still there (re-registration is idempotent)
  const again = await startDevServer({ dbFile, logFile: join(dir, 'a.log'), headless: true });
  await again.stop();
});

test('a wrong TEMPORAL_CLI path is a clear error', () => {
  assert.throws(
    () => resolveTemporalCli({ ...process.env, TEMPORAL_CLI: '/nonexistent/temporal' }),
    /TEMPORAL_CLI=\/nonexistent\/temporal is not an executable file/,
  );
});

test('a port already taken is a clear error and starts nothing', async () => {
  const blocker = createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  const port = (blocker.address() as { port: number }).port;
  try {
    await assert.rejects(
      startDevServer({ dbFile: join(dir, 'b.db'), logFile: join(dir, 'b.log'), port }),
      (err: Error) => err instanceof TemporalServerError && err.message.includes(`port ${port}`),
    );
  } finally {
    blocker.close();
  }
});

test('a server that never becomes healthy: clear error within the bound, no orphan process', async () => {
  // A stand-in binary that accepts the arguments and never serves: the honest way to get a "never healthy" server.
  const fake = join(dir, 'never-healthy');
  const pidFile = join(dir, 'never-healthy.pid');
  await writeFile(fake, `#!/bin/sh\necho $$ > ${pidFile}\nexec sleep 600\n`);
  await chmod(fake, 0o755);
  const t0 = Date.now();
  await assert.rejects(
    startDevServer({
      dbFile: join(dir, 'c.db'),
      logFile: join(dir, 'c.log'),
      cli: fake,
      startTimeoutMs: 2000,
    }),
    /did not become healthy within 2000 ms/,
  );
  assert.ok(Date.now() - t0 < 15_000, 'error came within seconds');
  const { readFile } = await import('node:fs/promises');
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  assert.ok(!alive(pid), 'the stand-in server was stopped');
});

test('TEMPORAL_ADDRESS names an external server: it is used and nothing is started', async () => {
  const s = await startDevServer({ dbFile: join(dir, 'd.db'), logFile: join(dir, 'd.log'), headless: true });
  const saved = process.env.TEMPORAL_ADDRESS;
  try {
    process.env.TEMPORAL_ADDRESS = s.address;
    const ext = await connectOrStart({ dbFile: join(dir, 'never.db'), logFile: join(dir, 'never.log') });
    assert.equal(ext.external, true);
    assert.equal(ext.address, s.address);
    assert.equal(ext.pid, undefined);
    await ext.stop(); // no-op
    const conn = await Connection.connect({ address: s.address });
    await conn.workflowService.getSystemInfo({});
    await conn.close();
  } finally {
    if (saved === undefined) delete process.env.TEMPORAL_ADDRESS;
    else process.env.TEMPORAL_ADDRESS = saved;
    await s.stop();
  }
});
