// HTTP benchmark (run: node --import tsx bench/http.bench.ts [--quick] [--only WORDS]; as root for nginx).
// --only range,kernel runs only the cases whose name contains one of the words (case-insensitive).
// 64 parallel connections (wrk) fetch the test ISO's kernel, initrd and package files — whole, and as 64 KiB Range
// requests at varying offsets (dnf reads rpm headers that way) — from
//   pxeflow's HTTP server (its own process, files read straight out of the ISO by byte range), and
//   nginx (Debian's nginx-light, sendfile on, worker_processes auto) serving the same files extracted from the ISO,
// both on 127.0.0.1. Figures: throughput, requests/s, p99 latency, server CPU seconds.
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { OUT_DIR, QUICK, r, ratio, startBench, cpuGroup } from './lib/report.ts';
import { extractIso, type RunningServer, startNginx, startPxeflowServer, testImage } from './lib/servers.ts';

const CONNECTIONS = 64;
const THREADS = Number(process.env.BENCH_HTTP_THREADS ?? 2);
const DURATION_S = Number(process.env.BENCH_HTTP_SECONDS ?? (QUICK ? 4 : 10));
const RANGE_BYTES = 64 * 1024;
const ONLY = (() => {
  const i = process.argv.indexOf('--only');
  return i >= 0 ? (process.argv[i + 1] ?? '').toLowerCase().split(',').filter(Boolean) : undefined;
})();

interface Case {
  name: string;
  paths: string[];
  /** Range requests of RANGE_BYTES at offsets cycling through each file */
  ranged?: { sizes: number[] };
}
interface WrkFigures {
  requests: number;
  bytes: number;
  seconds: number;
  errors: number;
  non2xx: number;
  p50Ms: number;
  p99Ms: number;
}

/** wrk script: cycles through the paths (and Range offsets); prints its summary as JSON. */
function wrkScript(c: Case): string {
  return `
local paths = {${c.paths.map((p) => `"${p}"`).join(',')}}
local sizes = {${(c.ranged?.sizes ?? []).join(',')}}
local ranged = ${c.ranged ? 'true' : 'false'}
local i = 0
request = function()
  i = i + 1
  local k = (i % #paths) + 1
  local headers = {}
  if ranged then
    local span = math.max(1, sizes[k] - ${RANGE_BYTES})
    local start = (i * 7919 * 4096) % span
    headers["Range"] = "bytes=" .. start .. "-" .. (start + ${RANGE_BYTES} - 1)
  end
  return wrk.format("GET", paths[k], headers)
end
done = function(summary, latency, requests)
  io.write(string.format('WRK {"requests":%d,"bytes":%d,"seconds":%f,"errors":%d,"non2xx":%d,"p50Ms":%f,"p99Ms":%f}\\n',
    summary.requests, summary.bytes, summary.duration / 1e6,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
`;
}

async function runWrk(script: string, url: string, seconds: number): Promise<WrkFigures> {
  const { stdout } = await execa('wrk', [
    ...['-t', String(THREADS), '-c', String(CONNECTIONS), '-d', `${seconds}s`, '--timeout', '10s'],
    ...['-s', script, url],
  ]);
  const line = stdout.split('\n').find((l) => l.startsWith('WRK '));
  if (!line) throw new Error(`wrk printed no summary: ${stdout}`);
  return JSON.parse(line.slice(4)) as WrkFigures;
}

async function main(): Promise<void> {
  const bench = await startBench('http', `HTTP: ${CONNECTIONS} parallel clients, pxeflow vs nginx`);
  const work = join(OUT_DIR, `http-work-${process.pid}`);
  const rows: Array<{ case: string; server: string } & WrkFigures & { cpuS: number }> = [];
  try {
    if ((await execa('which', ['wrk', 'nginx'], { reject: false })).exitCode !== 0)
      throw new Error('wrk or nginx is missing: run scripts/setup-bench.sh');
    const image = await testImage(join(work, 'library'));
    const prefix = `/image/${image.version}`;
    // nginx's root holds the same URL layout: <root>/image/<version>/<path in the ISO>
    const root = join(work, 'www');
    await extractIso(image.isoPath, join(root, 'image', image.version));
    const packages = [
      'Packages/pxeflow-data-0.9-2.noarch.rpm',
      'Packages/pxeflow-tools-2.3-1.x86_64.rpm',
      'Packages/pxeflow-base-1.0-1.x86_64.rpm',
    ];
    const sizeOf = async (p: string) => (await stat(join(root, 'image', image.version, p))).size;
    const pkgSizes = await Promise.all(packages.map(sizeOf));
    const allCases: Case[] = [
      {
        name: `kernel (${r((await sizeOf(image.kernel)) / 1e6, 1)} MB)`,
        paths: [`${prefix}/${image.kernel}`],
      },
      {
        name: `initrd (${r((await sizeOf(image.initrd)) / 1e6, 1)} MB)`,
        paths: [`${prefix}/${image.initrd}`],
      },
      {
        name: `packages, whole (${pkgSizes.map((s) => `${Math.round(s / 1024)} KiB`).join(', ')})`,
        paths: packages.map((p) => `${prefix}/${p}`),
      },
      {
        name: `packages, Range ${RANGE_BYTES / 1024} KiB at varying offsets`,
        paths: packages.map((p) => `${prefix}/${p}`),
        ranged: { sizes: pkgSizes },
      },
    ];
    const cases = allCases.filter((c) => !ONLY || ONLY.some((w) => c.name.toLowerCase().includes(w)));
    await mkdir(join(work, 'scripts'), { recursive: true });
    const starters: Array<[string, () => Promise<RunningServer>]> = [
      [
        'pxeflow',
        () =>
          startPxeflowServer('http', {
            address: '127.0.0.1',
            port: 0,
            isoPath: image.isoPath,
            isoSize: image.isoSize,
            isoMtimeMs: image.isoMtimeMs,
            version: image.version,
            kernel: image.kernel,
            initrd: image.initrd,
            repoRoot: image.repoRoot,
          }),
      ],
      ['nginx', async () => startNginx(join(work, 'nginx'), '127.0.0.1', 18000 + (process.pid % 1000), root)],
    ];
    // both servers run side by side and take turns case by case, so a case's two figures are measured minutes
    // (not a whole pass) apart: on a shared machine, background load then weighs on both alike
    const running: Array<{
      name: string;
      server: RunningServer;
      group: Awaited<ReturnType<typeof cpuGroup>>;
    }> = [];
    try {
      for (const [name, start] of starters) {
        const server = await start();
        const group = await cpuGroup(`http-${name}`);
        running.push({ name, server, group });
        await group.add(server.pid);
      }
      for (const [i, c] of cases.entries()) {
        const script = join(work, 'scripts', `case-${i}.lua`);
        await writeFile(script, wrkScript(c));
        for (const { name, server, group } of running) {
          const url = `http://127.0.0.1:${server.port}`;
          await runWrk(script, url, 1); // warm-up: page cache, JIT, connections
          const cpu0 = await group.seconds();
          const w = await runWrk(script, url, DURATION_S);
          const cpuS = (await group.seconds()) - cpu0;
          rows.push({ case: c.name, server: name, ...w, cpuS });
          console.log(
            `${name} ${c.name}: ${(w.bytes / 1e6 / w.seconds).toFixed(0)} MB/s, ${(w.requests / w.seconds).toFixed(0)} req/s, ` +
              `p99 ${w.p99Ms.toFixed(1)} ms, errors ${w.errors}, non-2xx ${w.non2xx}, cpu ${cpuS.toFixed(2)} s`,
          );
        }
      }
    } finally {
      for (const { server, group } of running) {
        await server.stop();
        await group.close();
      }
    }
    const t = bench.table(
      `${CONNECTIONS} connections (wrk -t${THREADS}), ${DURATION_S} s per case, 127.0.0.1; ratio = pxeflow ÷ nginx (goal ≥ 0.8×)`,
      [
        'files',
        'MB/s pxeflow / nginx',
        'ratio',
        'req/s pxeflow / nginx',
        'p99 ms pxeflow / nginx',
        'server CPU s per GB pxeflow / nginx',
        'errors+non-2xx pxeflow / nginx',
      ],
    );
    for (const c of cases) {
      const p = rows.find((x) => x.server === 'pxeflow' && x.case === c.name);
      const n = rows.find((x) => x.server === 'nginx' && x.case === c.name);
      if (!p || !n) continue;
      const mbs = (x: WrkFigures) => x.bytes / 1e6 / x.seconds;
      t.rows.push([
        c.name,
        `${r(mbs(p), 0)} / ${r(mbs(n), 0)}`,
        ratio(mbs(p), mbs(n)),
        `${r(p.requests / p.seconds, 0)} / ${r(n.requests / n.seconds, 0)}`,
        `${r(p.p99Ms, 1)} / ${r(n.p99Ms, 1)}`,
        `${r(p.cpuS / (p.bytes / 1e9), 2)} / ${r(n.cpuS / (n.bytes / 1e9), 2)}`,
        `${p.errors + p.non2xx} / ${n.errors + n.non2xx}`,
      ]);
    }
    const ratios = cases.flatMap((c) => {
      const p = rows.find((x) => x.server === 'pxeflow' && x.case === c.name);
      const n = rows.find((x) => x.server === 'nginx' && x.case === c.name);
      return p && n ? [{ c: c.name, v: p.bytes / p.seconds / (n.bytes / n.seconds) }] : [];
    });
    if (ratios.length) {
      const worst = ratios.sort((a, b) => a.v - b.v)[0];
      bench.goal('HTTP ≥ 0.8× nginx', `lowest ${worst.v.toFixed(2)}× (${worst.c})`, worst.v >= 0.8);
    }
    bench.reading(
      'Everything runs on one 2-core machine: wrk, the server and the kernel’s loopback copy share the cores, so these are ' +
        'CPU-bound figures, not network ones (a 10 Gb/s NIC carries ~1,200 MB/s). nginx uses sendfile (no copy through user ' +
        'space) and a worker per core; pxeflow is one Node process that reads each byte range from one shared descriptor of ' +
        'the ISO into pooled 1 MiB buffers (libuv thread pool; ≤ 64 KiB bodies in place) and writes them to the socket with backpressure — a copy ' +
        'through user space per chunk, so large files still cost it more CPU per GB than nginx.',
    );
    bench.reading(
      'Small Range requests measure per-request cost rather than bandwidth. pxeflow answers plain GETs of image files ' +
        'before fastify (netboot/http/fast-path.ts: no router, hooks or request/reply objects) and reads bodies ≤ 64 KiB ' +
        'in place rather than through the thread pool (it backs off to the pool for a second after two slow reads in a ' +
        'row). Per request its one event-loop thread then makes three syscalls — read of the request, pread of the range, ' +
        'one writev of headers and body — and the pread and writev (a 64 KiB copy each and, on loopback, the receiving ' +
        'side’s TCP work) take ~55 % of that thread; Node’s HTTP parser and response plumbing most of the rest. nginx does ' +
        'the same kernel work without the copies (sendfile) in two worker processes, and with the cores shared (wrk, other ' +
        'load) two processes get a larger share than one thread. Measured on a busy machine, same runs: ~1.3–1.5× the ' +
        'requests/s of the previous fastify path, ~0.55–0.65× nginx (was ~0.4–0.5×). Closing the rest would take a second ' +
        'serving thread or process (Node 20 has no SO_REUSEPORT; worker threads cannot own sockets) or sendfile.',
    );
  } catch (err) {
    bench.note(`failed: ${(err as Error).message ?? err}`);
    console.error(err);
    process.exitCode = 1;
  } finally {
    await rm(work, { recursive: true, force: true });
    await bench.finish({ rows });
  }
}

await main();
// results are written: nothing left running may keep the process (e.g. a native Temporal runtime) alive
process.exit(process.exitCode ?? 0);
