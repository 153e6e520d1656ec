// pxeflow's TFTP or HTTP server alone in a process, so a benchmark can read its CPU time and RSS from /proc and
// the load generator does not share its event loop. Started by the benches:
//   node --import tsx bench/lib/serve.ts tftp|http CONFIG_JSON     → prints "ready <port>", runs until SIGTERM
// CONFIG_JSON: { address, port, isoPath, isoSize, isoMtimeMs, version, kernel, initrd, repoRoot,
//                tftpNames?: { name: pathInIso }, maxBlksize? }
import { pino } from 'pino';
import { isoFileSource } from '../../image/source.ts';
import { startHttpServer } from '../../netboot/http/server.ts';
import { MachineRegistry } from '../../netboot/machines.ts';
import {
  bootFilesResolver,
  chainResolvers,
  fileSourceResolver,
  startTftpServer,
} from '../../netboot/tftp/index.ts';

export const SERVE = new URL('./serve.ts', import.meta.url).pathname;

export interface ServeConfig {
  address: string;
  port: number;
  isoPath: string;
  isoSize: number;
  isoMtimeMs: number;
  version: string;
  kernel: string;
  initrd: string;
  repoRoot: string;
  /** TFTP names served from the ISO (e.g. vmlinuz → images/pxeboot/vmlinuz); bootloaders come from Debian */
  tftpNames?: Record<string, string>;
  maxBlksize?: number;
}

async function main(): Promise<void> {
  const [kind, json] = process.argv.slice(2);
  const cfg = JSON.parse(json ?? '{}') as ServeConfig;
  const source = isoFileSource(cfg);
  let close: () => Promise<void>;
  let port: number;
  if (kind === 'tftp') {
    const names = cfg.tftpNames ?? {};
    const server = await startTftpServer({
      address: cfg.address,
      port: cfg.port,
      maxBlksize: cfg.maxBlksize,
      resolve: chainResolvers(
        bootFilesResolver(),
        fileSourceResolver(source, (p) => names[p]),
      ),
    });
    port = server.port;
    close = () => server.close();
  } else if (kind === 'http') {
    const server = await startHttpServer({
      address: cfg.address,
      port: cfg.port,
      machines: new MachineRegistry(),
      image: { version: cfg.version, source, kernel: cfg.kernel, initrd: cfg.initrd, repoRoot: cfg.repoRoot },
      onStatus: async () => {},
      kickstartVars: {
        rootPasswordHash: '',
        osDisk: 'sda',
        timezone: 'UTC',
        basePackages: [],
        extraPackages: [],
      },
      logger: pino({ level: 'warn' }),
    });
    port = server.port;
    close = () => server.close();
  } else {
    throw new Error(`serve: unknown kind ${kind} (tftp|http)`);
  }
  const stop = () => void close().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdout.write(`ready ${port}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
