// The main job on the embedded default: the Temporal dev server (SQLite, web UI), the controller and a virtual
// lab of simulated nodes, one cluster install followed live, then the table and the report.
//   npm run demo [-- --nodes 8] [--qemu N] [--mode ipxe|pxelinux] [--keep] [--stop]
// --qemu N: the first N nodes are qemu VMs (iPXE firmware, the real installer) instead of simulated nodes.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { pino } from 'pino';
import { clusterWorkflowId } from '../config/schema.ts';
import { type Behaviour, startLab } from '../lab/lab.ts';
import { startDevServer, stopPid, type TemporalEndpoint, waitForFrontend } from '../temporal/devserver.ts';
import type { ClusterReport, TableView } from '../workflows/messages.ts';
import { follow } from './live.ts';
import { stdoutOut } from './output.ts';

const ROOT = new URL('..', import.meta.url).pathname;
const STATE = join(ROOT, '.state');
const SERVER_FILE = join(STATE, 'temporal.json');

interface SavedServer {
  address: string;
  namespace: string;
  uiUrl?: string;
  pid: number;
}

async function savedServer(): Promise<SavedServer | undefined> {
  try {
    return JSON.parse(await readFile(SERVER_FILE, 'utf8')) as SavedServer;
  } catch {
    return undefined;
  }
}

/** The demo's dev server: reused while it runs, started (detached, SQLite under .state/) otherwise. */
async function demoServer(): Promise<TemporalEndpoint> {
  if (process.env.TEMPORAL_ADDRESS) {
    const address = process.env.TEMPORAL_ADDRESS;
    const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
    await waitForFrontend(address, namespace, 10_000);
    return { address, namespace, external: true, uiUrl: process.env.TEMPORAL_UI_URL, stop: async () => {} };
  }
  const saved = await savedServer();
  if (saved) {
    try {
      process.kill(saved.pid, 0);
      await waitForFrontend(saved.address, saved.namespace, 5000);
      return { ...saved, external: false, stop: () => stopPid(saved.pid) };
    } catch {
      // gone or unhealthy: start a new one on the same database file
    }
  }
  const s = await startDevServer({
    dbFile: join(STATE, 'temporal.db'),
    logFile: join(STATE, 'temporal.log'),
    detached: true,
  });
  await mkdir(STATE, { recursive: true });
  await writeFile(
    SERVER_FILE,
    JSON.stringify({ address: s.address, namespace: s.namespace, uiUrl: s.uiUrl, pid: s.pid }, null, 2),
  );
  return s;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      nodes: { type: 'string', default: '8' },
      mode: { type: 'string', default: 'ipxe' },
      keep: { type: 'boolean', default: false },
      stop: { type: 'boolean', default: false },
      qemu: { type: 'string', default: '0' },
      // default 25s, 90s with qemu nodes (a VM under TCG takes ~10 s alone, longer while others boot)
      'install-timeout': { type: 'string' },
    },
  });
  if (values.stop) {
    const saved = await savedServer();
    if (saved) await stopPid(saved.pid);
    console.log(saved ? `stopped the Temporal dev server (pid ${saved.pid})` : 'no demo server recorded');
    return 0;
  }
  if (process.getuid?.() !== 0) {
    console.error('the demo builds network namespaces and runs DHCP: run it as root');
    return 2;
  }
  const count = Number(values.nodes);
  if (!Number.isInteger(count) || count < 1 || count > 200) {
    console.error('--nodes must be a whole number between 1 and 200');
    return 2;
  }
  const vms = Number(values.qemu);
  if (!Number.isInteger(vms) || vms < 0 || vms > count) {
    console.error(`--qemu must be a whole number between 0 and --nodes (${count})`);
    return 2;
  }
  const logger = pino({ level: process.env.PXEFLOW_LOG_LEVEL ?? 'warn' });
  console.log('starting the Temporal dev server…');
  const server = await demoServer();
  console.log(`Temporal ${server.address} · web UI ${server.uiUrl ?? '(external server)'}`);
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection, namespace: server.namespace });

  // one node fails once (retry visible), one never reports (timeout visible)
  const behaviours: Record<string, Behaviour> = {};
  // (on simulated nodes: a VM runs the real installer, which succeeds)
  const failOnce = Math.max(3, vms + 1);
  if (count >= failOnce) behaviours[String(failOnce)] = 'fail-once:disk /dev/sda not found';
  if (count >= 5 && count - 1 > failOnce) behaviours[String(count - 1)] = 'hang';
  // each demo builds its lab from scratch (the Temporal server and its history are what persist)
  const labDir = join(STATE, 'lab');
  await rm(labDir, { recursive: true, force: true });
  console.log(
    `building the lab: ${count - vms} simulated nodes${vms ? `, ${vms} qemu VMs` : ''}, ipmi_sim BMCs, provisioning bridge…`,
  );
  const lab = await startLab({
    nodes: count,
    qemu: Array.from({ length: vms }, (_, i) => i + 1),
    behaviours,
    mode: values.mode === 'pxelinux' ? 'pxelinux' : 'ipxe',
    stateDir: labDir,
    temporal: { address: server.address, namespace: server.namespace, client },
    logger,
    timeouts: { install: values['install-timeout'] ?? (vms ? '90s' : '25s'), dhcpSeen: '60s' },
    power: { interval: '1s', maxBooting: 20 },
    attempts: 2,
    clusterName: 'demo',
  });
  let code = 1;
  try {
    const workflowId = `${clusterWorkflowId(lab.spec.name)}-${lab.id}`;
    const handle = await client.workflow.start('ClusterInstall', {
      taskQueue: 'pxeflow',
      workflowId,
      args: [lab.spec],
      staticSummary: `install ${lab.spec.name} · ${count} nodes · ${lab.spec.iso.version}`,
    });
    console.log(`install started: ${workflowId}`);
    console.log(
      `  ${server.uiUrl ?? ''}/namespaces/${server.namespace}/workflows/${encodeURIComponent(workflowId)}`,
    );
    // the same live view as `pxeflow install` / `pxeflow watch` (bars on a terminal, lines otherwise)
    await follow(client, workflowId, {
      out: stdoutOut(),
      json: false,
      reattach: `pxeflow watch ${workflowId}`,
    });
    const report = (await handle.result()) as ClusterReport;
    const table = await handle.query<TableView>('table');
    console.log('\nIPMI-IP ↔ DHCP-IP correspondence table (every entry, kept after the monitor dropped it):');
    for (const e of report.table)
      console.log(`  ${e.node}\t${e.bmcIp}\t${e.mac}\t${e.dhcpIp}\tattempt ${e.attempt}`);
    console.log(`  still open: controller ${table.controller.length}, monitor ${table.monitor.length}`);
    console.log(`\noutcomes: ${JSON.stringify(report.counts)}`);
    console.log(`web UI: ${server.uiUrl ?? '(external)'} — search: PxeflowCluster="${lab.spec.name}"`);
    code = 0;
  } finally {
    if (values.keep) {
      console.log('--keep: the lab and controller keep running; Ctrl-C to stop them');
      await new Promise<void>((r) => process.once('SIGINT', () => r()));
    }
    await lab.stop();
    await connection.close();
    if (!server.external)
      console.log('the Temporal dev server keeps running; `npm run demo -- --stop` stops it');
  }
  return code;
}

process.exitCode = await main();
