// Prebuilt workflow bundle: webpack runs once per source change, not on every worker start.
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';

const ROOT = new URL('..', import.meta.url).pathname;
export const WORKFLOWS_PATH = join(ROOT, 'workflows', 'index.ts');
/** Source folders the workflow bundle is built from (the sandbox-safe ones). */
const SOURCES = ['workflows', 'config', 'temporal'];

async function sourceDigest(): Promise<string> {
  const h = createHash('sha256');
  for (const dir of SOURCES) {
    const files = (await readdir(join(ROOT, dir), { recursive: true }))
      .filter((f) => f.endsWith('.ts'))
      .sort();
    for (const f of files) {
      h.update(`${dir}/${f}\0`);
      h.update(await readFile(join(ROOT, dir, f)));
    }
  }
  return h.digest('hex').slice(0, 16);
}

/** Returns `{ code }` for Worker.create({ workflowBundle }), cached under .state/bundles keyed by source digest. */
export async function workflowBundle(cacheDir = join(ROOT, '.state', 'bundles')): Promise<{ code: string }> {
  const file = join(cacheDir, `workflows-${await sourceDigest()}.js`);
  try {
    return { code: await readFile(file, 'utf8') };
  } catch {
    // not built yet
  }
  const { code } = await bundleWorkflowCode({ workflowsPath: WORKFLOWS_PATH, logger: quietLogger });
  await mkdir(cacheDir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, code);
  await rename(tmp, file);
  return { code };
}

const noop = () => {};
const quietLogger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: console.warn,
  error: console.error,
  log: noop,
};
