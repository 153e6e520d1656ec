// config/schema.ts runs inside the Temporal workflow sandbox: no Node built-ins in its import graph, nothing
// non-deterministic, and it actually parses a spec in a real worker against a real dev server.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import { startTestTemporal, type TestTemporal } from '../helpers/temporal.ts';
import { validSpec } from './fixtures.ts';

const ROOT = new URL('../../', import.meta.url).pathname;
const SANDBOX_WORKFLOWS = new URL('./sandbox/workflows.ts', import.meta.url).pathname;
const IMPORT =
  /^\s*(?:import|export)\s[^'"]*?from\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;

/** Every module reachable from `entry` through import/export statements: relative files and bare specifiers. */
function importGraph(entry: string): { files: string[]; bare: Set<string> } {
  const files: string[] = [];
  const bare = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.shift()!;
    if (files.includes(file)) continue;
    files.push(file);
    for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const specifier = match[1] ?? match[2] ?? match[3];
      if (specifier.startsWith('.')) queue.push(resolve(dirname(file), specifier));
      else bare.add(specifier);
    }
  }
  return { files, bare };
}

describe('config/schema.ts in the workflow sandbox', () => {
  test('its import graph holds no Node built-in and no package but zod', () => {
    const { files, bare } = importGraph(join(ROOT, 'config/schema.ts'));
    assert.ok(files.length >= 6, `scanned ${files.join(', ')}`);
    for (const specifier of bare) {
      assert.ok(!isBuiltin(specifier), `${specifier} is a Node built-in`);
      assert.equal(specifier, 'zod', `unexpected package ${specifier}`);
    }
  });

  test('the scanner does see built-ins (config/load.ts imports node:fs)', () => {
    const { bare } = importGraph(join(ROOT, 'config/load.ts'));
    assert.ok([...bare].some((s) => isBuiltin(s)));
  });

  test('no clock, randomness or process access in the sandboxed files', () => {
    for (const file of importGraph(join(ROOT, 'config/schema.ts')).files) {
      const source = readFileSync(file, 'utf8');
      for (const forbidden of [/Date\.now\(/, /new Date\(/, /Math\.random\(/, /\bprocess\./, /\brequire\(/]) {
        assert.ok(!forbidden.test(source), `${file} uses ${forbidden}`);
      }
    }
  });

  test('the Temporal bundler accepts it', async () => {
    const { code } = await bundleWorkflowCode({ workflowsPath: SANDBOX_WORKFLOWS, logger: quietLogger });
    assert.ok(code.includes('parseSpecInSandbox'));
  });
});

describe('parsing inside a real workflow', () => {
  let temporal: TestTemporal;
  before(async () => {
    temporal = await startTestTemporal();
  });
  after(async () => {
    await temporal?.close();
  });

  test('the sandbox gives the same result as Node, errors included', async () => {
    const taskQueue = `config-sandbox-${Math.random().toString(36).slice(2, 8)}`;
    const connection = await NativeConnection.connect({ address: temporal.endpoint.address });
    try {
      await runInWorker(temporal, connection, taskQueue);
    } finally {
      await connection.close();
    }
  });
});

async function runInWorker(
  temporal: TestTemporal,
  connection: NativeConnection,
  taskQueue: string,
): Promise<void> {
  const worker = await Worker.create({
    connection,
    namespace: temporal.endpoint.namespace,
    taskQueue,
    workflowBundle: await bundleWorkflowCode({ workflowsPath: SANDBOX_WORKFLOWS, logger: quietLogger }),
  });
  const bad = validSpec();
  bad.nodes[1].mac = '52-54-00-00-00-01';
  await worker.runUntil(async () => {
    const run = (raw: unknown, n: number) =>
      temporal.client.workflow.execute('parseSpecInSandbox', {
        taskQueue,
        workflowId: `${taskQueue}-${n}`,
        args: [raw],
      });
    const good = (await run(validSpec(), 1)) as { ok: boolean; spec: { timeouts: { install: number } } };
    assert.equal(good.ok, true);
    assert.equal(good.spec.timeouts.install, 1_200_000);
    const rejected = (await run(bad, 2)) as { ok: boolean; issues: { path: string; message: string }[] };
    assert.equal(rejected.ok, false);
    assert.ok(rejected.issues.some((i) => i.path === 'nodes[1].mac' && /already the MAC/.test(i.message)));
  });
}

const noop = () => {};
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: console.error, log: noop };
