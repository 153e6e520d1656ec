// The servers the benches start: pxeflow's (bench/lib/serve.ts in a child process) and the peers (atftpd,
// tftpd-hpa, dnsmasq's TFTP, nginx), each on a test address, each stopped by its own PID.
import { access, link, mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { type ImageDescription, IsoLibrary } from '../../image/library.ts';
import { buildTestIso } from '../../image/testiso/build.ts';
import { SERVE, type ServeConfig } from './serve.ts';
import { sleep } from './report.ts';

export const ATFTPD = new URL('../../.tools/bench/atftpd/usr/sbin/atftpd', import.meta.url).pathname;

export interface RunningServer {
  name: string;
  pid: number | undefined;
  port: number;
  stop(): Promise<void>;
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

/** The test ISO (real Debian kernel, busybox initrd, fake packages), prepared in a library under `dir`. */
export async function testImage(dir: string): Promise<ImageDescription> {
  const iso = await buildTestIso();
  await mkdir(dir, { recursive: true });
  const target = join(dir, `${iso.version}.iso`);
  await rm(target, { force: true });
  await link(iso.isoPath, target);
  return await new IsoLibrary(dir).prepareImage(iso.version);
}

/** Extracts the ISO's files into `dir` (what the peers serve). */
export async function extractIso(isoPath: string, dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  await execa('xorriso', ['-osirrox', 'on', '-indev', isoPath, '-extract', '/', dir], { stdin: 'ignore' });
  await execa('chmod', ['-R', 'a+rX,u+w', dir]);
}

async function stopChild(child: ResultPromise): Promise<void> {
  if (child.exitCode !== null && child.exitCode !== undefined) return;
  child.kill('SIGTERM');
  const done = await Promise.race([child.then(() => true), sleep(5000).then(() => false)]);
  if (!done) {
    child.kill('SIGKILL');
    await child;
  }
}

/** pxeflow's TFTP or HTTP server in its own process. */
export async function startPxeflowServer(kind: 'tftp' | 'http', cfg: ServeConfig): Promise<RunningServer> {
  const child = execa(process.execPath, ['--import', 'tsx', SERVE, kind, JSON.stringify(cfg)], {
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'inherit',
    reject: false,
  });
  const port = await new Promise<number>((resolve, reject) => {
    let seen = '';
    child.stdout?.on('data', (d: Buffer) => {
      seen += d.toString();
      const m = /ready (\d+)/.exec(seen);
      if (m) resolve(Number(m[1]));
    });
    void child.then((r) => reject(new Error(`pxeflow ${kind} server exited at start (${r.exitCode})`)));
  });
  return { name: 'pxeflow', pid: child.pid, port, stop: () => stopChild(child) };
}

/** Waits until something listens on udp/tcp `port` at `address` (ss), or the child died. */
async function waitListening(proto: 'udp' | 'tcp', address: string, port: number, child: ResultPromise) {
  for (let i = 0; i < 200; i++) {
    const { stdout } = await execa('ss', [proto === 'udp' ? '-Hlun' : '-Hltn', 'sport', `= :${port}`]);
    if (stdout.includes(`${address}:${port}`)) return;
    if (child.exitCode !== null && child.exitCode !== undefined) {
      const r = await child;
      throw new Error(
        `${String(child.spawnargs?.[0] ?? 'server')} exited at start (${r.exitCode}): ${String(r.stderr ?? '').trim()}`,
      );
    }
    await sleep(25);
  }
  throw new Error(`nothing listens on ${proto} ${address}:${port}`);
}

export type TftpPeer = 'atftpd' | 'tftpd-hpa' | 'dnsmasq';

export async function tftpPeerAvailable(peer: TftpPeer): Promise<boolean> {
  if (peer === 'atftpd') return exists(ATFTPD);
  if (peer === 'tftpd-hpa') return exists('/usr/sbin/in.tftpd');
  return (await execa('which', ['dnsmasq'], { reject: false })).exitCode === 0;
}

/** A TFTP peer serving `root` on address:port (dnsmasq always listens on 69). */
export async function startTftpPeer(
  peer: TftpPeer,
  address: string,
  port: number,
  root: string,
): Promise<RunningServer> {
  let child: ResultPromise;
  // logs and dnsmasq's (empty) config live beside the served folder, never in /dev/null: a client that deletes
  // its local file on a failed fetch (atftp, busybox tftp) can turn /dev/null into a regular file
  const side = dirname(root);
  const emptyConf = join(side, `${peer}-empty.conf`);
  await writeFile(emptyConf, '');
  if (peer === 'atftpd') {
    child = execa(
      ATFTPD,
      [
        ...['--daemon', '--no-fork', '--port', String(port), '--bind-address', address],
        ...[
          '--logfile',
          join(side, 'atftpd.log'),
          '--user',
          'root',
          '--group',
          'root',
          '--maxthread',
          '200',
          root,
        ],
      ],
      { stdin: 'ignore', reject: false },
    );
  } else if (peer === 'tftpd-hpa') {
    // -L: stay in the foreground; forks one process per transfer (counted through the bench's cpuacct group)
    child = execa('/usr/sbin/in.tftpd', ['-L', '-a', `${address}:${port}`, '-u', 'root', '-s', root], {
      stdin: 'ignore',
      reject: false,
    });
  } else {
    child = execa(
      'dnsmasq',
      [
        ...[
          '--keep-in-foreground',
          `--conf-file=${emptyConf}`,
          '--port=0',
          '--enable-tftp',
          `--tftp-root=${root}`,
        ],
        ...[
          `--listen-address=${address}`,
          '--bind-interfaces',
          '--user=root',
          '--pid-file',
          `--log-facility=${join(side, 'dnsmasq-tftp.log')}`,
        ],
        '--tftp-max=200',
      ],
      { stdin: 'ignore', reject: false },
    );
  }
  await waitListening('udp', address, port, child);
  return { name: peer, pid: child.pid, port, stop: () => stopChild(child) };
}

/** nginx serving `root` on address:port with Debian's defaults that matter (sendfile on, workers = cores), except
 *  tcp_nopush: Debian turns it on, and on loopback it holds back the end of small responses (64 KiB Range requests
 *  at ~4,700 req/s with nginx idle, against ~30,000–45,000 without it): the peer is measured at its best. */
export async function startNginx(
  dir: string,
  address: string,
  port: number,
  root: string,
): Promise<RunningServer> {
  await mkdir(dir, { recursive: true });
  const conf = join(dir, 'nginx.conf');
  await writeFile(
    conf,
    [
      'worker_processes auto;',
      `pid ${join(dir, 'nginx.pid')};`,
      'daemon off;',
      'master_process on;',
      `error_log ${join(dir, 'error.log')} warn;`,
      'events { worker_connections 1024; }',
      'http {',
      '  include /etc/nginx/mime.types;',
      '  sendfile on; tcp_nopush off; keepalive_requests 100000;',
      '  access_log off;',
      `  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;`,
      `  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;`,
      `  server { listen ${address}:${port}; root ${root}; }`,
      '}',
    ].join('\n'),
  );
  const child = execa('nginx', ['-c', conf, '-p', dir], { stdin: 'ignore', reject: false });
  await waitListening('tcp', address, port, child);
  return { name: 'nginx', pid: child.pid, port, stop: () => stopChild(child) };
}
