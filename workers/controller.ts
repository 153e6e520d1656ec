// The controller process: a Temporal worker on task queue `pxeflow` (+ the netboot services when configured).
// Graceful shutdown: SIGINT/SIGTERM stop polling, in-flight activities get `shutdownGraceTime` to finish.
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, type LogLevel, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { pino } from 'pino';
import { createActivities, type ControllerDeps } from '../activities/index.ts';
import { workflowBundle } from './bundle.ts';

export const TASK_QUEUE = 'pxeflow';
/** The SDK's default sizes the cache from the heap limit (thousands of executions at ~1 MB each on a big host):
 *  a 2,000-node install would keep every waiting node workflow in memory. A node workflow's history is ~100
 *  events, so replaying one that was evicted costs milliseconds. */
export const DEFAULT_MAX_CACHED_WORKFLOWS = 250;

export interface ControllerOptions {
  address: string;
  namespace: string;
  taskQueue?: string;
  shutdownGraceTime?: string;
  /** workflow executions kept in memory between their tasks (others replay their history on the next one) */
  maxCachedWorkflows?: number;
  deps?: Partial<ControllerDeps>;
}

export interface RunningController {
  worker: Worker;
  /** resolves when the worker has stopped */
  done: Promise<void>;
  shutdown(): Promise<void>;
}

let runtimeInstalled = false;

export async function startController(opts: ControllerOptions): Promise<RunningController> {
  if (!runtimeInstalled) {
    // The SDK's own shutdown-signal handling calls worker.shutdown() on SIGINT/SIGTERM.
    Runtime.install({
      shutdownSignals: ['SIGINT', 'SIGTERM'],
      logger: new DefaultLogger((process.env.PXEFLOW_SDK_LOG_LEVEL as LogLevel | undefined) ?? 'WARN'),
    });
    runtimeInstalled = true;
  }
  const logger = opts.deps?.logger ?? pino({ name: 'pxeflow-controller' });
  const connection = await NativeConnection.connect({ address: opts.address });
  const clientConnection = await Connection.connect({ address: opts.address });
  const client = new Client({ connection: clientConnection, namespace: opts.namespace });
  const worker = await Worker.create({
    connection,
    namespace: opts.namespace,
    taskQueue: opts.taskQueue ?? TASK_QUEUE,
    workflowBundle: await workflowBundle(),
    activities: createActivities({ logger, client, taskQueue: opts.taskQueue ?? TASK_QUEUE, ...opts.deps }),
    shutdownGraceTime: opts.shutdownGraceTime ?? '30s',
    maxCachedWorkflows: opts.maxCachedWorkflows ?? DEFAULT_MAX_CACHED_WORKFLOWS,
  });
  const done = worker.run().finally(async () => {
    await clientConnection.close();
    await connection.close();
  });
  return {
    worker,
    done,
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await done;
    },
  };
}

// `node --import tsx workers/controller.ts`: TEMPORAL_ADDRESS must name the server (the main command sets it).
if (import.meta.url === `file://${process.argv[1]}`) {
  const address = process.env.TEMPORAL_ADDRESS;
  if (!address) {
    console.error(
      'TEMPORAL_ADDRESS is not set (e.g. 127.0.0.1:7233); `npm run demo` starts a server for you',
    );
    process.exit(2);
  }
  const ctl = await startController({ address, namespace: process.env.TEMPORAL_NAMESPACE ?? 'default' });
  await ctl.done;
}
