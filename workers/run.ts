// The controller as a process: the Temporal worker plus, when a provisioning interface is configured, the
// netboot services and their bridge. `pxeflow worker` and the lab's controller process both start it here.
//   node --import tsx workers/run.ts CONFIG.json     (secrets come from the environment, never the file)
import { readFile } from 'node:fs/promises';
import { Client, Connection } from '@temporalio/client';
import { type Logger, pino } from 'pino';
import { z } from 'zod';
import { type RunningController, startController, TASK_QUEUE } from './controller.ts';
import { NetbootServices } from './netboot.ts';

/** printed on stdout once the worker polls and the netboot services listen */
export const READY_LINE = 'pxeflow-controller: ready';

export const controllerConfigSchema = z.strictObject({
  temporal: z.strictObject({ address: z.string().min(1), namespace: z.string().default('default') }),
  taskQueue: z.string().default(TASK_QUEUE),
  stateDir: z.string().min(1),
  isoLibrary: z.string().optional(),
  netboot: z
    .strictObject({
      interface: z.string().min(1),
      address: z.string().min(1),
      httpPort: z.number().int().min(1).max(65535),
      tftpPort: z.number().int().min(1).max(65535).optional(),
      legacyPxelinux: z.boolean().optional(),
    })
    .optional(),
  logLevel: z.string().default('info'),
  maxCachedWorkflows: z.number().int().min(0).optional(),
});
export type ControllerConfig = z.input<typeof controllerConfigSchema>;

export interface ControllerProcess {
  controller: RunningController;
  netboot?: NetbootServices;
  stop(): Promise<void>;
}

export async function runController(input: ControllerConfig, logger?: Logger): Promise<ControllerProcess> {
  const cfg = controllerConfigSchema.parse(input);
  const log = logger ?? pino({ name: 'pxeflow-controller', level: cfg.logLevel });
  const connection = await Connection.connect({ address: cfg.temporal.address });
  const client = new Client({ connection, namespace: cfg.temporal.namespace });
  let netboot: NetbootServices | undefined;
  try {
    if (cfg.netboot) {
      netboot = await NetbootServices.start({
        stateDir: `${cfg.stateDir}/controller`,
        ...cfg.netboot,
        client,
        logger: log,
      });
    }
    const controller = await startController({
      address: cfg.temporal.address,
      namespace: cfg.temporal.namespace,
      taskQueue: cfg.taskQueue,
      maxCachedWorkflows: cfg.maxCachedWorkflows,
      deps: { logger: log, netboot, isoLibrary: cfg.isoLibrary },
    });
    return {
      controller,
      netboot,
      async stop() {
        await controller.shutdown();
        await netboot?.close();
        await connection.close();
      },
    };
  } catch (err) {
    await netboot?.close();
    await connection.close();
    throw err;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (!file) {
    console.error('usage: workers/run.ts CONFIG.json');
    process.exit(2);
  }
  const config = controllerConfigSchema.parse(JSON.parse(await readFile(file, 'utf8')));
  // logs go to stderr: stdout carries only the ready line for whoever supervises this process
  const logger = pino({ name: 'pxeflow-controller', level: config.logLevel }, pino.destination(2));
  const proc = await runController(config, logger);
  process.stdout.write(`${READY_LINE}\n`);
  // the SDK stops the worker on SIGINT/SIGTERM; then the netboot services go down
  await proc.controller.done;
  await proc.netboot?.close();
  process.exit(0);
}
