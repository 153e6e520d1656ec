// Determinism across versions: histories recorded from a real lab install (test/fixtures/histories, refreshed by
// `PXEFLOW_RECORD_HISTORIES=<tag> node --import tsx --test test/e2e/install.test.ts`, which adds <name>-<tag>.json
// next to the older ones) must replay against today's
// workflow code. A change that breaks them needs `patched()` — running installs would otherwise fail on replay.
import { readdir, readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../../workers/bundle.ts';

const DIR = new URL('../fixtures/histories/', import.meta.url).pathname;

test('recorded ClusterInstall and NodeInstall histories replay against the current code', async () => {
  // file → the workflow id it was recorded under (child ids derive from it)
  const index = JSON.parse(await readFile(`${DIR}index.json`, 'utf8')) as Record<string, string>;
  const files = (await readdir(DIR)).filter((f) => f.endsWith('.json') && f !== 'index.json');
  if (files.length < 2) throw new Error(`expected recorded histories in ${DIR}`);
  const bundle = await workflowBundle();
  for (const f of files) {
    const history = historyFromJSON(JSON.parse(await readFile(`${DIR}${f}`, 'utf8')));
    await Worker.runReplayHistory({ workflowBundle: bundle }, history, index[f]);
  }
});
