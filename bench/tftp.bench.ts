// TFTP benchmark (run: node --import tsx bench/tftp.bench.ts [--quick] [--only CASES] [--pool]; as root).
// --pool adds pxeflow with its transfers on a worker-thread pool (PXEFLOW_TFTP_WORKERS=min(4, cores)) beside the default main-thread
// pool: a column to compare the two in one run (servers take turns case by case).
// --only kernel/8192/16,bootloader/1408/1/32 runs only the settings whose file/blksize/win/clients/loss key starts
// with one of the comma-separated prefixes (to measure one case against the peers without the whole run).
// The test ISO's 8 MB kernel and iPXE's bootloader (undionly.kpxe, 74 KB) fetched by atftp clients in a network
// namespace over a veth link, at blksize 512/1408/8192 × windowsize 1/16, 1 and 32 parallel clients, 0% and 1%
// packet loss each way (nftables `numgen random` drops inside the namespace: this kernel has no netem), from
//   pxeflow's TFTP server (its own process; kernel read straight out of the ISO, bootloader from Debian's ipxe),
//   atftpd and tftpd-hpa (the peers provisioning systems ship) and dnsmasq's TFTP (files extracted from the ISO).
// Figures: throughput (bytes of completed transfers / wall time of the case), server CPU seconds, completion.
// Under loss a case has a deadline; transfers still running then count as not completed.
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import dgram from 'node:dgram';
import { join } from 'node:path';
import { execa } from 'execa';
import { createLossyLink, type LossyLink } from '../test/tftp/helpers.ts';
import { type Cell, OUT_DIR, QUICK, r, ratio, startBench, cpuGroup } from './lib/report.ts';
import { tftpPoolSizeForHost } from '../netboot/tftp/server.ts';
import {
  extractIso,
  type RunningServer,
  startPxeflowServer,
  startTftpPeer,
  type TftpPeer,
  testImage,
  tftpPeerAvailable,
} from './lib/servers.ts';

type FileKey = 'kernel' | 'bootloader';
interface Setting {
  file: FileKey;
  blksize: number;
  windowsize: number;
  clients: number;
  loss: 0 | 1;
}
interface CaseResult extends Setting {
  server: string;
  wallS: number;
  completed: number;
  bytes: number;
  mbPerS: number;
  cpuS: number;
  negotiated: string;
  timedOut: boolean;
}

const FILES: Record<FileKey, { name: string; local: string }> = {
  kernel: { name: 'vmlinuz', local: 'images/pxeboot/vmlinuz' },
  bootloader: { name: 'undionly.kpxe', local: 'undionly.kpxe' },
};
const PEERS = (process.env.BENCH_TFTP_PEERS ?? (QUICK ? 'atftpd,dnsmasq' : 'atftpd,tftpd-hpa,dnsmasq'))
  .split(',')
  .filter(Boolean) as TftpPeer[];
const LOSS_DEADLINE_S = Number(process.env.BENCH_TFTP_LOSS_DEADLINE ?? (QUICK ? 15 : 20));
/** single-client cases without loss are short: the median of this many rounds */
const SINGLE_ROUNDS = 3;
const DEADLINE_S = 120;
const ONLY = (() => {
  const i = process.argv.indexOf('--only');
  return i >= 0 ? (process.argv[i + 1] ?? '').split(',').filter(Boolean) : undefined;
})();
/** --pool: also pxeflow with its transfers on a worker-thread pool (opt-in), for a same-run comparison */
const POOL = process.argv.includes('--pool');
const POOL_NAME = 'pxeflow-pool';
const settingKey = (s: Setting) => `${s.file}/${s.blksize}/${s.windowsize}/${s.clients}/${s.loss}`;

function settings(): Setting[] {
  const out: Setting[] = [];
  const blks = QUICK ? [1408] : [512, 1408, 8192];
  for (const loss of [0, 1] as const)
    for (const file of ['bootloader', 'kernel'] as const)
      for (const blksize of blks)
        for (const windowsize of [1, 16])
          for (const clients of [1, 32]) {
            // under loss: blksize 1408 (what PXE firmware asks for) only; lock-step kernel transfers wait one
            // timeout per lost packet (minutes with every server), so only one client tries that
            if (loss && blksize !== 1408) continue;
            if (loss && file === 'kernel' && windowsize === 1 && clients !== 1) continue;
            out.push({ file, blksize, windowsize, clients, loss });
          }
  return ONLY ? out.filter((s) => ONLY.some((prefix) => settingKey(s).startsWith(prefix))) : out;
}

/** Sends one RRQ with the setting's options and reads what the server agreed to (OACK), then aborts. */
async function probeOptions(address: string, port: number, s: Setting): Promise<string> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((res) => sock.bind(0, res));
  const opts = [FILES[s.file].name, 'octet', 'blksize', String(s.blksize), 'timeout', '1'];
  if (s.windowsize > 1) opts.push('windowsize', String(s.windowsize));
  const rrq = Buffer.concat([Buffer.from([0, 1]), Buffer.from(`${opts.join('\0')}\0`)]);
  try {
    const reply = await new Promise<{ msg: Buffer; port: number } | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 2000);
      sock.once('message', (msg, rinfo) => {
        clearTimeout(timer);
        resolve({ msg, port: rinfo.port });
      });
      sock.send(rrq, port, address);
    });
    if (!reply) return 'no answer';
    const op = reply.msg.readUInt16BE(0);
    sock.send(Buffer.concat([Buffer.from([0, 5, 0, 0]), Buffer.from('probe done\0')]), reply.port, address);
    if (op === 3) return 'blk 512 / win 1 (no OACK)';
    if (op !== 6) return `op ${op}`;
    const parts = reply.msg.toString('ascii', 2, reply.msg.length - 1).split('\0');
    const o: Record<string, string> = {};
    for (let i = 0; i + 1 < parts.length; i += 2) o[parts[i].toLowerCase()] = parts[i + 1];
    return `blk ${o.blksize ?? 512} / win ${o.windowsize ?? 1}`;
  } finally {
    sock.close();
  }
}

async function runCase(
  link: LossyLink,
  cpu: () => Promise<number>,
  server: RunningServer,
  s: Setting,
  outDir: string,
  size: number,
) {
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const args = (i: number) => [
    ...['netns', 'exec', link.ns, 'atftp', '--tftp-timeout', '1', '--option', 'timeout 1'],
    ...[
      '--option',
      `blksize ${s.blksize}`,
      ...(s.windowsize > 1 ? ['--option', `windowsize ${s.windowsize}`] : []),
    ],
    ...[
      '--get',
      '-r',
      FILES[s.file].name,
      '-l',
      join(outDir, `out-${i}`),
      link.hostAddress,
      String(server.port),
    ],
  ];
  const deadline = (s.loss ? LOSS_DEADLINE_S : DEADLINE_S) * 1000;
  const cpu0 = await cpu();
  const t0 = performance.now();
  const ends: number[] = [];
  let timedOut = false;
  const results = await Promise.all(
    Array.from({ length: s.clients }, async (_, i) => {
      for (let attempt = 0; attempt < 2; attempt++) {
        const left = deadline - (performance.now() - t0);
        if (left <= 0) break;
        const res = await execa('ip', args(i), { reject: false, timeout: left, stdin: 'ignore' });
        if (res.timedOut) timedOut = true;
        // atftp gives up when its ACK of the OACK was lost and the OACK comes again (a client defect, see
        // test/tftp/loss.test.ts): that handshake is retried once, as an operator's PXE ROM would retry
        if (res.exitCode !== 0 && /unexpected OACK/.test(String(res.stderr))) continue;
        const got = await stat(join(outDir, `out-${i}`)).catch(() => undefined);
        const ok = res.exitCode === 0 && got?.size === size;
        if (ok) ends.push(performance.now());
        return ok;
      }
      return false;
    }),
  );
  const wallS = ((ends.length ? Math.max(...ends) : performance.now()) - t0) / 1000;
  const cpuS = (await cpu()) - cpu0;
  const completed = results.filter(Boolean).length;
  return {
    wallS,
    completed,
    bytes: completed * size,
    mbPerS: (completed * size) / 1e6 / wallS,
    cpuS,
    timedOut,
  };
}

function startServer(
  name: string,
  link: LossyLink,
  port: number,
  image: Awaited<ReturnType<typeof testImage>>,
  root: string,
): Promise<RunningServer> {
  if (!name.startsWith('pxeflow')) return startTftpPeer(name as TftpPeer, link.hostAddress, port, root);
  const before = process.env.PXEFLOW_TFTP_WORKERS;
  // the child inherits the environment when it is spawned (synchronously, inside startPxeflowServer)
  process.env.PXEFLOW_TFTP_WORKERS = name === POOL_NAME ? String(tftpPoolSizeForHost()) : '0';
  try {
    return startPxeflowServer('tftp', {
      address: link.hostAddress,
      port,
      isoPath: image.isoPath,
      isoSize: image.isoSize,
      isoMtimeMs: image.isoMtimeMs,
      version: image.version,
      kernel: image.kernel,
      initrd: image.initrd,
      repoRoot: image.repoRoot,
      tftpNames: { vmlinuz: image.kernel },
      maxBlksize: 8192, // the default cap is 1468 (no IP fragmentation); raised to take part at 8192
    });
  } finally {
    if (before === undefined) delete process.env.PXEFLOW_TFTP_WORKERS;
    else process.env.PXEFLOW_TFTP_WORKERS = before;
  }
}

async function main(): Promise<void> {
  const bench = await startBench(
    'tftp',
    'TFTP: kernel (8 MB) and bootloader over a veth, pxeflow vs atftpd, tftpd-hpa, dnsmasq',
  );
  const work = join(OUT_DIR, `tftp-work-${process.pid}`);
  const links: LossyLink[] = [];
  const results: CaseResult[] = [];
  try {
    const image = await testImage(join(work, 'library'));
    const root = join(work, 'root');
    await extractIso(image.isoPath, root);
    await writeFile(join(root, FILES.bootloader.local), await readFile('/usr/lib/ipxe/undionly.kpxe'));
    await writeFile(join(root, FILES.kernel.name), await readFile(join(root, FILES.kernel.local)));
    const sizes: Record<FileKey, number> = {
      kernel: (await stat(join(root, FILES.kernel.name))).size,
      bootloader: (await stat(join(root, FILES.bootloader.local))).size,
    };
    const peers: TftpPeer[] = [];
    for (const p of PEERS) {
      if (await tftpPeerAvailable(p)) peers.push(p);
      else bench.note(`${p} is not installed (scripts/setup-bench.sh): skipped`);
    }
    // every server runs for the whole loss level, each on its own port, and they take turns case by case: a
    // case's figures are measured close together (other load on the machine shifts them alike)
    const names = ['pxeflow', ...(POOL ? [POOL_NAME] : []), ...peers];
    for (const loss of [0, 1] as const) {
      if (!settings().some((s) => s.loss === loss)) continue;
      const link = await createLossyLink(loss);
      links.push(link);
      const running: { name: string; server: RunningServer; group: Awaited<ReturnType<typeof cpuGroup>> }[] =
        [];
      try {
        for (const [i, name] of names.entries()) {
          // dnsmasq's TFTP always listens on 69 (no option for another port): the others take their own
          const port = name === 'dnsmasq' ? 69 : 1069 + i;
          const server = await startServer(name, link, port, image, root).catch((err: Error) => {
            // a server that cannot start is reported and left out; the others are still measured
            bench.note(`${name} did not start at ${loss}% loss: ${err.message}`);
            return undefined;
          });
          if (!server) continue;
          const group = await cpuGroup(`tftp-${name}`);
          running.push({ name, server, group });
          await group.add(server.pid);
        }
        for (const s of settings().filter((x) => x.loss === loss)) {
          for (const { name, server, group } of running) {
            const negotiated = await probeOptions(link.hostAddress, server.port, s);
            const rounds = s.clients === 1 && !s.loss ? SINGLE_ROUNDS : 1;
            const tries: Awaited<ReturnType<typeof runCase>>[] = [];
            for (let i = 0; i < rounds; i++)
              tries.push(await runCase(link, group.seconds, server, s, join(work, 'out'), sizes[s.file]));
            const c = tries.sort((a, b) => a.wallS - b.wallS)[Math.floor(tries.length / 2)];
            const res: CaseResult = { ...s, server: name, negotiated, ...c };
            results.push(res);
            console.log(
              `${name} ${s.file} blk ${s.blksize} win ${s.windowsize} ×${s.clients} loss ${s.loss}%: ` +
                `${c.completed}/${s.clients} in ${c.wallS.toFixed(2)} s, ${c.mbPerS.toFixed(1)} MB/s, cpu ${c.cpuS.toFixed(2)} s [${negotiated}]`,
            );
          }
        }
      } finally {
        for (const { server, group } of running) {
          await server.stop();
          await group.close();
        }
      }
    }
    report(bench, results, POOL ? [POOL_NAME, ...peers] : peers);
  } catch (err) {
    bench.note(`failed: ${(err as Error).message ?? err}`);
    console.error(err);
    process.exitCode = 1;
  } finally {
    for (const l of links) await l.destroy().catch(() => {});
    await rm(work, { recursive: true, force: true });
    await bench.finish({ results });
  }
}

function report(bench: Awaited<ReturnType<typeof startBench>>, results: CaseResult[], peers: string[]) {
  const servers = ['pxeflow', ...peers];
  for (const loss of [0, 1]) {
    const t = bench.table(
      `${loss}% loss each way — MB/s (completed/started), server CPU s; ratio = pxeflow ÷ best peer` +
        (loss ? `; deadline ${LOSS_DEADLINE_S} s per case` : ''),
      [
        'file',
        'blksize',
        'win',
        'clients',
        ...servers.map((s) => `${s} MB/s`),
        'ratio',
        ...servers.map((s) => `${s} CPU s`),
        'negotiated (pxeflow; peers)',
      ],
    );
    for (const s of settings().filter((x) => x.loss === loss)) {
      const row = servers.map((name) =>
        results.find(
          (x) =>
            x.server === name &&
            x.file === s.file &&
            x.blksize === s.blksize &&
            x.windowsize === s.windowsize &&
            x.clients === s.clients &&
            x.loss === s.loss,
        ),
      );
      if (!row[0]) continue;
      // the best real peer (the pool pxeflow of --pool is no peer)
      const best = Math.max(
        ...row.slice(1).map((x, i) => (servers[i + 1].startsWith('pxeflow') ? 0 : (x?.mbPerS ?? 0))),
      );
      const cells: Cell[] = [
        s.file,
        s.blksize,
        s.windowsize,
        s.clients,
        ...row.map((x) => (x ? `${r(x.mbPerS, 1)} (${x.completed}/${s.clients})` : null)),
        ratio(row[0].mbPerS, best || null),
        ...row.map((x) => r(x?.cpuS, 2)),
        row.map((x) => x?.negotiated ?? '—').join('; '),
      ];
      t.rows.push(cells);
    }
  }
  const windowed = settings().filter((x) => x.windowsize > 1);
  let atLeast = 0;
  let compared = 0;
  for (const s of windowed) {
    const same = results.filter(
      (x) =>
        x.file === s.file &&
        x.blksize === s.blksize &&
        x.windowsize === s.windowsize &&
        x.clients === s.clients &&
        x.loss === s.loss,
    );
    const ours = same.find((x) => x.server === 'pxeflow');
    const best = Math.max(...same.filter((x) => !x.server.startsWith('pxeflow')).map((x) => x.mbPerS));
    if (!ours || !Number.isFinite(best)) continue;
    compared++;
    if (ours.mbPerS >= best) atLeast++;
  }
  bench.goal(
    'TFTP ≥ the best peer at every setting with windowsize',
    `${atLeast} of ${compared} windowed settings`,
    compared ? atLeast === compared : null,
  );
  const lossy = results.filter((x) => x.server === 'pxeflow' && x.loss === 1 && x.windowsize > 1);
  const done = lossy.reduce((a, x) => a + x.completed, 0);
  const started = lossy.reduce((a, x) => a + x.clients, 0);
  bench.goal(
    'TFTP transfers complete under 1% loss (windowed)',
    `${done} of ${started} within ${LOSS_DEADLINE_S} s per case`,
    started ? done === started : null,
  );
  bench.reading(
    'Lock-step TFTP (windowsize 1, what PXE ROMs do) moves one block per round trip: throughput is blksize ÷ (RTT + the ' +
      'server’s per-packet work), so a Node server (one event loop, a read + a send per block) pays its per-packet cost on ' +
      'every block while the C servers pay a system call. With windowsize 16 the server streams 16 blocks per ACK and the ' +
      'limit becomes per-packet CPU; pxeflow reads the kernel straight out of the ISO with no copy on disk.',
  );
  bench.reading(
    'Under 1% loss, a lost block or ACK in lock-step costs one retransmission timeout (1 s asked through the timeout ' +
      'option), so an 8 MB kernel at blksize 1408 (~5,900 blocks, ~120 losses) needs minutes with every server — why pxeflow ' +
      'sends only the bootloader over TFTP and the kernel over HTTP. With a window, a server that implements RFC 7440 ' +
      'recovery (pxeflow, atftpd) resends from the gap at once; tftpd-hpa and dnsmasq ignore windowsize (see the negotiated ' +
      'column) and fall back to lock-step.',
  );
  bench.reading(
    'The client is atftp (one process per transfer, started through `ip netns exec`): single-client figures for the 74 KB ' +
      'bootloader are dominated by its start-up and are the median of 3 rounds. Under loss with a window, atftp waits for ' +
      'its own 1 s timeout after a gap more often than a PXE ROM with RFC 7440 would, which caps every server equally.',
  );
  bench.reading(
    'blksize 8192 with windowsize 16 puts 128 KiB in flight as ~100 IP fragments per window, but the atftp client’s ' +
      'default receive buffer holds only 15 such datagrams: whenever the client does not run during the burst the last ' +
      'block is dropped and costs a 1 s timeout — atftpd collapses to ~2 MB/s in most rounds. pxeflow answers with a ' +
      'smaller window (blksize × windowsize ≤ 64 KiB, RFC 7440 allows it: see the negotiated column), so it does not. ' +
      'Single-client cases under loss are one sample each: whether a packet of a 74 KB transfer is dropped at all is luck.',
  );
  bench.reading(
    'pxeflow runs its transfers in its main thread by default (with iPXE, TFTP carries only the bootloader). ' +
      'PXEFLOW_TFTP_WORKERS=N moves them to N worker threads (the main thread keeps the well-known port, resolving and ' +
      'the boot events): sending is the cost under load (the kernel’s sendmsg, which over a veth also does the ' +
      'receiver’s work), and one thread cannot use a second core. Measured with --pool on 2 busy cores, 32 clients: ' +
      '1.1–1.5× the main-thread server at blksize 1408 × 16 and 8192 × 1, 1.0–1.4× at 512 × 16 (per-packet ' +
      'JavaScript cost stays), for ~10% more CPU and ~30 MB per thread.',
  );
  bench.reading(
    '32 parallel clients share 2 cores with the 32 atftp client processes and the server; blksize 8192 needs IP ' +
      'fragmentation on a 1500-byte MTU (one lost fragment loses the whole block) and is refused or capped by some servers.',
  );
}

await main();
// results are written: nothing left running may keep the process (e.g. a native Temporal runtime) alive
process.exit(process.exitCode ?? 0);
