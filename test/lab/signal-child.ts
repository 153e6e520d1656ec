// Child process of signal-teardown.test.ts: starts a small lab (controller as its own child process, so this
// process has no Temporal runtime of its own), prints what the test needs to check, then waits to be killed.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { pino } from 'pino';
import { startLab } from '../../lab/lab.ts';

const address = process.env.TEMPORAL_ADDRESS!;
const connection = await Connection.connect({ address });
const stateDir = await mkdtemp(join(tmpdir(), 'pxeflow-lab-signal-'));
const lab = await startLab({
  nodes: 2,
  stateDir,
  temporal: { address, namespace: 'default', client: new Client({ connection }) },
  taskQueue: 'lab-signal',
  logger: pino({ level: 'silent' }),
  controllerProcess: true,
});
const bmcPids = lab.bmcs.bmcs.map((b) => b.simPid);
console.log(JSON.stringify({ id: lab.id, controller: lab.controller.pid, bmcs: bmcPids, stateDir }));
// like execa's subprocess cleanup (signal-exit): another listener that does not end the process by itself
if (process.env.OTHER_LISTENER) for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => {});
setInterval(() => {}, 60_000);
