// Test fixture: the HTTP server on 127.0.0.1 over a temp image directory, with captured logs and events.
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { execa } from 'execa';
import { pino } from 'pino';
import { BootEventStream } from '../../netboot/events.ts';
import { type StatusReport, startHttpServer } from '../../netboot/http/server.ts';
import type { HttpServerHandle } from '../../netboot/http/server.ts';
import type { KickstartSettings } from '../../netboot/http/kickstart.ts';
import { MachineRegistry } from '../../netboot/machines.ts';
import type { BootEvent, FileSource } from '../../netboot/types.ts';

/**
 * A deliberately naive directory FileSource: it joins paths without any traversal check, so the tests
 * prove that the *server* never lets a path leave the image.
 */
export function naiveDirSource(root: string): FileSource {
  return {
    async stat(path) {
      try {
        const s = await stat(join(root, path));
        return s.isFile() ? { size: s.size, mtimeMs: s.mtimeMs } : undefined;
      } catch {
        return undefined;
      }
    },
    open(path, range) {
      return createReadStream(join(root, path), range);
    },
  };
}

export const VERSION = '9.4-test';
export const ROOT_HASH = `$6$saltsalt$${'A'.repeat(86)}`;

export interface Fixture {
  server: HttpServerHandle;
  machines: MachineRegistry;
  stream: BootEventStream;
  /** every event the server emitted (before dedup) */
  raw: BootEvent[];
  /** what subscribers of the stream saw */
  seen: BootEvent[];
  statusCalls: StatusReport[];
  logLines: string[];
  files: Record<string, Buffer>;
  tmp: string;
  /** make the next n onStatus calls reject */
  failStatus(n: number): void;
  close(): Promise<void>;
}

export async function startFixture(kickstart?: Partial<KickstartSettings>): Promise<Fixture> {
  const tmp = await mkdtemp(join(tmpdir(), 'pxeflow-http-'));
  const imageDir = join(tmp, 'image');
  const files: Record<string, Buffer> = {
    'images/pxeboot/vmlinuz': randomBytes(300_000),
    'images/pxeboot/initrd.img': randomBytes(500_000),
    'Packages/bash-5.1-1.x86_64.rpm': randomBytes(70_000),
    'Packages/curl-7.76-1.x86_64.rpm': randomBytes(40_000),
    'repodata/repomd.xml': Buffer.from('<repomd/>\n'),
    '.treeinfo': Buffer.from('[general]\nversion = 9.4\n'),
    'empty.txt': Buffer.alloc(0),
  };
  for (const [path, data] of Object.entries(files)) {
    await mkdir(dirname(join(imageDir, path)), { recursive: true });
    await writeFile(join(imageDir, path), data);
  }
  await writeFile(join(tmp, 'secret.txt'), 'OUTSIDE-THE-IMAGE\n');

  const logLines: string[] = [];
  const logger = pino({ level: 'trace' }, { write: (line: string) => logLines.push(line) });
  const machines = new MachineRegistry();
  machines.upsert({
    name: 'node1',
    hostname: 'node1.lab',
    mac: '52:54:00:aa:00:01',
    ip: '127.0.0.1',
    bootMode: 'auto',
  });
  machines.upsert({
    name: 'node2',
    hostname: 'node2.lab',
    mac: '52:54:00:aa:00:02',
    ip: '10.99.0.2',
    bootMode: 'uefi',
  });
  const stream = new BootEventStream();
  const raw: BootEvent[] = [];
  const seen: BootEvent[] = [];
  stream.subscribe((e) => seen.push(e));
  const statusCalls: StatusReport[] = [];
  let failures = 0;

  const server = await startHttpServer({
    address: '127.0.0.1',
    port: 0,
    machines,
    image: {
      version: VERSION,
      source: naiveDirSource(imageDir),
      kernel: 'images/pxeboot/vmlinuz',
      initrd: 'images/pxeboot/initrd.img',
      repoRoot: '',
    },
    onEvent: (e) => {
      raw.push(e);
      stream.publish(e);
    },
    onStatus: async (report) => {
      statusCalls.push(report);
      if (failures > 0) {
        failures--;
        throw new Error('workflow layer unavailable');
      }
    },
    kickstartVars: () => ({
      rootPasswordHash: ROOT_HASH,
      osDisk: 'sda',
      extraPackages: ['vim-enhanced'],
      ...kickstart,
    }),
    logger,
  });
  return {
    server,
    machines,
    stream,
    raw,
    seen,
    statusCalls,
    logLines,
    files,
    tmp,
    failStatus: (n) => {
      failures = n;
    },
    close: async () => {
      await server.close();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

export interface CurlResult {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  exitCode: number;
}

/** Runs the real curl binary; `-i` output is split into status, headers and body. */
export async function curl(args: string[]): Promise<CurlResult> {
  const r = await execa('curl', ['-sS', '-i', '--path-as-is', ...args], {
    encoding: 'buffer',
    stripFinalNewline: false,
    reject: false,
    stdin: 'ignore',
    timeout: 30_000,
  });
  const out = Buffer.from(r.stdout);
  const split = out.indexOf('\r\n\r\n');
  const head = (split >= 0 ? out.subarray(0, split) : out).toString('latin1').split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim();
  }
  return {
    status: Number(head[0]?.split(' ')[1] ?? 0),
    headers,
    body: split >= 0 ? out.subarray(split + 4) : Buffer.alloc(0),
    exitCode: r.exitCode ?? -1,
  };
}
