// Runs the DHCP supervisor in this process (start it inside a network namespace with `ip netns exec`) and
// speaks JSON lines: requests on stdin, replies/events/state changes on stdout. Tests and the lab drive it
// through dhcp-remote.ts. Options and reservations come over stdin, never argv (boot URLs carry tokens).
import { createInterface } from 'node:readline';
import { type DhcpService, DhcpStartError, startDhcp } from '../../netboot/dhcp/supervisor.ts';

type Request = { id: number; op: string; args?: unknown[] };

const send = (msg: unknown) => process.stdout.write(`${JSON.stringify(msg)}\n`);
let service: DhcpService | undefined;

async function handle(req: Request): Promise<unknown> {
  const args = (req.args ?? []) as never[];
  switch (req.op) {
    case 'start':
      if (service) throw new Error('already started');
      service = await startDhcp({
        ...(args[0] as object as Parameters<typeof startDhcp>[0]),
        onEvent: (event) => send({ event }),
        onStateChange: (state, d) => send({ state, restarts: d.restarts, error: d.error?.message }),
        logger: {
          debug: (obj, msg) => send({ log: { level: 'debug', msg, ...obj } }),
          info: (obj, msg) => send({ log: { level: 'info', msg, ...obj } }),
          warn: (obj, msg) => send({ log: { level: 'warn', msg, ...obj } }),
          error: (obj, msg) =>
            send({ log: { level: 'error', msg, ...obj, err: String((obj as { err?: unknown }).err ?? '') } }),
        },
      });
      return { pid: service.pid };
    case 'pid':
      return service?.pid;
    case 'status':
      return {
        pid: service?.pid,
        state: service?.state,
        restarts: service?.restarts,
        reloads: service?.reloads,
      };
    case 'setReservation':
    case 'removeReservation':
    case 'openDiscoveryWindow':
    case 'closeDiscoveryWindow':
    case 'leases':
    case 'reservations': {
      if (!service) throw new Error('not started');
      const fn = service[req.op] as (...a: unknown[]) => unknown;
      return await fn(...args);
    }
    case 'stop': {
      await service?.stop();
      service = undefined;
      return null;
    }
    default:
      throw new Error(`unknown op ${req.op}`);
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  let req: Request;
  try {
    req = JSON.parse(line);
  } catch {
    send({ error: { message: 'bad request line' } });
    return;
  }
  handle(req).then(
    (result) => send({ id: req.id, ok: true, result: result ?? null }),
    (e: Error) =>
      send({
        id: req.id,
        ok: false,
        error: {
          name: e.name,
          message: e.message,
          failure: e instanceof DhcpStartError ? e.failure : undefined,
        },
      }),
  );
});

// Stop dnsmasq with us: SIGTERM from the test, or stdin closing because the test process went away.
const shutdown = async () => {
  await service?.stop().catch(() => {});
  process.exit(0);
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
process.stdin.on('end', shutdown);
