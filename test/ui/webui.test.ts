// The Temporal web UI as the operator's window: a small lab install on a dev server with its UI, then headless
// Chromium (Debian's, driven by playwright-core) finds a node's workflow by search attribute, opens it and reads
// the static summary and the phase timeline in the current details. Screenshots go to test-artifacts/ui/.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import type { NodeTimeline } from '../../workflows/messages.ts';
import { type OperateEnv, progressOf, startOperateEnv, until } from './../operate/fixture.ts';

const ARTIFACTS = new URL('../../test-artifacts/ui/', import.meta.url).pathname;
// NOTES.md "Browser tests": as root, and without background networking (the network here is closed)
const CHROMIUM_FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

let env: OperateEnv;
let install: WorkflowHandle;
let profile: string;
let browser: BrowserContext | undefined;
const cluster = 'ui';
const id = `pxeflow/${cluster}`;

before(async () => {
  // node 3 hangs in its install: the "stuck node" an operator looks for
  env = await startOperateEnv(cluster, {
    headless: false,
    nodes: 3,
    behaviours: { '3': 'hang' },
    timeouts: { install: '10m', dhcpSeen: '60s' },
  });
  install = await env.t.client.workflow.start('ClusterInstall', {
    taskQueue: env.taskQueue,
    workflowId: id,
    args: [env.lab.spec],
  });
  await until(
    'nodes 1 and 2 installed',
    async () => (await progressOf(install)).outcomes.success === 2,
    90_000,
  );
  await mkdir(ARTIFACTS, { recursive: true });
  profile = await mkdtemp(join(tmpdir(), 'pxeflow-chromium-'));
});
after(async () => {
  await browser?.close();
  await install?.cancel().catch(() => {});
  await env?.close();
  if (profile) await rm(profile, { recursive: true, force: true });
});

const hungPhase = async () =>
  (await env.t.client.workflow.getHandle(`${id}/ui-003`).query<NodeTimeline>('timeline')).phase;

/** Text of the page and of its frames (the UI renders markdown summaries/details in sandboxed iframes). */
async function pageText(page: Page): Promise<string> {
  const parts = await Promise.all(
    page.frames().map((f) =>
      f
        .locator('body')
        // biome-ignore lint/performance/useDomNodeTextContent: the rendered text keeps list items on their own lines
        .innerText()
        .catch(() => ''),
    ),
  );
  return parts.join('\n');
}

/** The workflows list filtered by a visibility query; returns the link to `workflowId` once it is listed. */
async function openList(page: Page, query: string, workflowId: string) {
  const row = page.getByRole('link', { name: workflowId }).first();
  for (let i = 0; ; i++) {
    await page.goto(
      `${env.t.endpoint.uiUrl}/namespaces/default/workflows?query=${encodeURIComponent(query)}`,
    );
    try {
      await row.waitFor({ timeout: 10_000 });
      return row;
    } catch (err) {
      if (i === 2) throw err; // the list page loads once per visit: try a fresh load twice more
    }
  }
}

/** Workflow ids a visibility query finds (visibility is eventually consistent: poll until `expect` holds). */
async function listIds(query: string, expect: (ids: string[]) => boolean): Promise<string[]> {
  return until(`visibility: ${query}`, async () => {
    const ids: string[] = [];
    for await (const w of env.t.client.workflow.list({ query })) ids.push(w.workflowId);
    ids.sort();
    return expect(ids) && ids;
  });
}

test('the search attributes find workflows by cluster, phase, node, BMC and outcome', async () => {
  const done = await listIds(
    `PxeflowCluster="${cluster}" AND PxeflowPhase="success"`,
    (ids) => ids.length === 2,
  );
  assert.deepEqual(done, [`${id}/ui-001`, `${id}/ui-002`]);
  // the stuck node: still running, in the phase it stopped at
  const phase = await hungPhase();
  assert.ok(!['power-on', 'dhcp', 'success'].includes(phase), `node 3 stopped at ${phase}`);
  const stuck = await listIds(
    `PxeflowCluster="${cluster}" AND PxeflowPhase="${phase}" AND ExecutionStatus="Running"`,
    (ids) => ids.length === 1,
  );
  assert.deepEqual(stuck, [`${id}/ui-003`]);
  const bmc = env.lab.bmcs.bmcs[2].address;
  assert.deepEqual(await listIds(`PxeflowBmc="${bmc}"`, (ids) => ids.length === 1), [`${id}/ui-003`]);
  const mac = env.lab.network.nodes[1].mac;
  assert.deepEqual(await listIds(`PxeflowMac="${mac}"`, (ids) => ids.length === 1), [`${id}/ui-002`]);
  const outcome = await listIds(
    `PxeflowCluster="${cluster}" AND PxeflowOutcome="success"`,
    (ids) => ids.length === 2,
  );
  assert.deepEqual(outcome, done);
  // the install itself carries the cluster's state
  assert.deepEqual(
    await listIds(`PxeflowCluster="${cluster}" AND PxeflowPhase="installing"`, (ids) => ids.length === 1),
    [id],
  );
});

test('headless Chromium finds the stuck node by search attribute and shows its summary and timeline', async () => {
  const uiUrl = env.t.endpoint.uiUrl;
  assert.ok(uiUrl, 'the dev server was started with its web UI');
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1400, height: 1000 },
  });
  const page = await browser.newPage();
  const node = 'ui-003';
  const query = `PxeflowCluster="${cluster}" AND PxeflowNode="${node}"`;
  try {
    // the stuck-node search an operator types: the cluster and the phase it stopped at
    const phase = await hungPhase();
    await openList(page, `PxeflowCluster="${cluster}" AND PxeflowPhase="${phase}"`, `${id}/${node}`);
    await page.screenshot({ path: join(ARTIFACTS, 'workflows-stuck-in-phase.png'), fullPage: true });

    const row = await openList(page, query, `${id}/${node}`);
    assert.equal(
      await page.getByRole('link', { name: `${id}/ui-001` }).count(),
      0,
      'the query did not filter',
    );
    await page.screenshot({ path: join(ARTIFACTS, 'workflows-by-node.png'), fullPage: true });

    await row.click();
    await page.waitForURL(/\/workflows\/pxeflow%2Fui%2Fui-003\//, { timeout: 30_000 });
    // the workflow's summary and current details live on the "User Metadata" tab
    await page.getByText('User Metadata', { exact: true }).first().click();
    const summary = `install ${node} · BMC ${env.lab.bmcs.bmcs[2].address} · ${env.lab.spec.iso.version}`;
    const shown = await until(
      'summary and details on the page',
      async () => {
        const text = await pageText(page);
        return (
          text.includes(summary) && text.includes(`phase ${phase}`) && /attempt 1: dhcp/.test(text) && text
        );
      },
      30_000,
    );
    for (const p of ['power-on', 'dhcp', 'kernel', 'initrd', 'kickstart'])
      assert.match(shown, new RegExp(`attempt 1: ${p}\\b`));
  } catch (err) {
    // keep what the page showed: the artifact explains the failure
    await page.screenshot({ path: join(ARTIFACTS, 'node-workflow-failed.png'), fullPage: true });
    await writeFile(join(ARTIFACTS, 'node-workflow-failed.txt'), `${page.url()}\n\n${await pageText(page)}`);
    throw err;
  }
  await page.screenshot({ path: join(ARTIFACTS, 'node-workflow.png'), fullPage: true });
});
