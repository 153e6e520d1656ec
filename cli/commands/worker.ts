// `pxeflow worker`: the controller in the foreground (Temporal worker on task queue pxeflow). Temporal is
// --address / TEMPORAL_ADDRESS when given, else the embedded dev server (SQLite under the state folder), whose
// address is recorded in <state>/temporal.json so the other commands find it.
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { TemporalEndpoint } from '../../temporal/devserver.ts';
import { CliError, EXIT, examples } from '../output.ts';
import { type GlobalOptions, stateDir, TASK_QUEUE } from '../temporal.ts';

interface WorkerFlags extends GlobalOptions {
  taskQueue: string;
  interface?: string;
  listen?: string;
  httpPort: string;
  tftpPort: string;
  legacyPxelinux?: boolean;
  isoLibrary?: string;
  workflowCache?: string;
}

async function temporalFor(flags: WorkerFlags, state: string): Promise<TemporalEndpoint> {
  // imported here: the worker SDK and the server manager are heavy, and only this command needs them
  const { connectOrStart, externalServer } = await import('../../temporal/devserver.ts');
  try {
    if (flags.address) {
      const ep = await externalServer({
        ...process.env,
        TEMPORAL_ADDRESS: flags.address,
        TEMPORAL_NAMESPACE: flags.namespace,
      });
      return ep!;
    }
    return await connectOrStart({
      dbFile: join(state, 'temporal.db'),
      logFile: join(state, 'temporal.log'),
      namespace: flags.namespace,
      // its own process group: Ctrl-C reaches the worker, which drains, and then stops the server itself
      detached: true,
    });
  } catch (err) {
    const where = flags.address ?? process.env.TEMPORAL_ADDRESS;
    throw new CliError(
      where
        ? `cannot reach Temporal at ${where}: ${(err as Error).message}`
        : `cannot start the Temporal dev server: ${(err as Error).message}`,
      EXIT.unreachable,
    );
  }
}

function cacheSize(raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw new CliError(`--workflow-cache ${raw}: expected a whole number ≥ 0`, EXIT.usage);
  return n;
}

export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('run the controller (Temporal worker) in the foreground; Ctrl-C stops it gracefully')
    .option('--task-queue <queue>', 'task queue to serve', TASK_QUEUE)
    .option('--interface <if>', 'provisioning interface: also run DHCP (dnsmasq), TFTP and HTTP on it')
    .option('--listen <ip>', "the controller's address on the provisioning interface")
    .option('--http-port <port>', 'HTTP port of the netboot services', '8080')
    .option('--tftp-port <port>', 'TFTP port of the netboot services', '69')
    .option('--legacy-pxelinux', 'BIOS clients get pxelinux.0 (kernel/initrd over TFTP) instead of iPXE')
    .option('--iso-library <dir>', "ISO library folder (overrides the specs' iso.library)")
    .option(
      '--workflow-cache <n>',
      'workflow executions kept in memory (default 250); more = less replay, more memory',
    )
    .addHelpText(
      'after',
      examples(
        '# embedded Temporal dev server, state in $PXEFLOW_STATE_DIR (default /var/lib/pxeflow as root, ./.state otherwise):',
        'pxeflow worker',
        '# an existing Temporal server:',
        'TEMPORAL_ADDRESS=temporal.example:7233 pxeflow worker',
        '# with the netboot services on the provisioning network:',
        'PXEFLOW_BMC_PASSWORD=… pxeflow worker --interface br-prov --listen 10.20.0.1',
      ),
    )
    .action(async (_f, cmd: Command) => {
      const flags = cmd.optsWithGlobals() as WorkerFlags;
      const state = stateDir();
      const endpoint = await temporalFor(flags, state);
      const record = join(state, 'temporal.json');
      if (!endpoint.external) {
        const { address, namespace, uiUrl, pid } = endpoint;
        writeFileSync(record, `${JSON.stringify({ address, namespace, uiUrl, pid }, null, 2)}\n`);
      }
      process.stderr.write(
        `pxeflow worker: Temporal ${endpoint.address} (namespace ${endpoint.namespace}${endpoint.external ? '' : `, dev server pid ${endpoint.pid}`})${endpoint.uiUrl ? `, web UI ${endpoint.uiUrl}` : ''}; task queue ${flags.taskQueue}\n`,
      );
      if (flags.interface && !flags.listen) throw new CliError('--interface needs --listen <ip>', EXIT.usage);
      const { runController } = await import('../../workers/run.ts');
      try {
        const proc = await runController({
          temporal: { address: endpoint.address, namespace: endpoint.namespace },
          taskQueue: flags.taskQueue,
          stateDir: state,
          isoLibrary: flags.isoLibrary,
          netboot: flags.interface
            ? {
                interface: flags.interface,
                address: flags.listen!,
                httpPort: Number(flags.httpPort),
                tftpPort: Number(flags.tftpPort),
                legacyPxelinux: flags.legacyPxelinux,
              }
            : undefined,
          logLevel: process.env.PXEFLOW_LOG_LEVEL ?? 'info',
          maxCachedWorkflows: flags.workflowCache === undefined ? undefined : cacheSize(flags.workflowCache),
        });
        await proc.controller.done;
        await proc.netboot?.close();
      } finally {
        if (!endpoint.external) rmSync(record, { force: true });
        await endpoint.stop();
      }
    });
}
