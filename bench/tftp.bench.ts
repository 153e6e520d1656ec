// TFTP benchmark (run: node --import tsx bench/tftp.bench.ts): a 30 MiB file fetched by atftp from our server
// on 127.0.0.1, from disk and from memory, windowed (blksize 1468, windowsize 16, what atftp can do) and
// lock-step (blksize 1408, no window: what PXE firmware does). Median of ROUNDS runs; writes bench/out/tftp.json.
// NOTES.md has the peers measured the same way: atftpd ~163 ms, dnsmasq ~1,262 ms (windowed, 30 MiB).
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { chainResolvers, dirResolver, memoryResolver, startTftpServer } from '../netboot/tftp/index.ts';
import { makeFiles } from '../test/tftp/helpers.ts';

const ROUNDS = Number(process.env.BENCH_TFTP_ROUNDS ?? 5);
const SIZE = 30 * 1024 * 1024;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main(): Promise<void> {
  const files = await makeFiles({ 'disk.bin': SIZE });
  const server = await startTftpServer({
    address: '127.0.0.1',
    port: 0,
    resolve: chainResolvers(
      memoryResolver({ 'memory.bin': files.files['disk.bin'] }),
      dirResolver(files.dir),
    ),
  });
  const results: Record<string, { medianMs: number; mbPerS: number }> = {};
  try {
    const cases = {
      'disk, blksize 1468, windowsize 16': ['disk.bin', ['blksize 1468', 'windowsize 16']],
      'memory, blksize 1468, windowsize 16': ['memory.bin', ['blksize 1468', 'windowsize 16']],
      'disk, blksize 1408, lock-step': ['disk.bin', ['blksize 1408']],
    } as const;
    for (const [name, [remote, options]] of Object.entries(cases)) {
      const times: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const out = join(files.dir, 'out.bin');
        const t = performance.now();
        await execa('atftp', [
          '--get',
          '-r',
          remote,
          '-l',
          out,
          ...options.flatMap((o) => ['--option', o]),
          '127.0.0.1',
          String(server.port),
        ]);
        times.push(performance.now() - t);
      }
      const ms = median(times);
      results[name] = { medianMs: Math.round(ms), mbPerS: Math.round(SIZE / 1e6 / (ms / 1000)) };
      console.log(`${name}: ${Math.round(ms)} ms (${results[name].mbPerS} MB/s)`);
    }
  } finally {
    await server.close();
    await files.cleanup();
  }
  const outDir = new URL('./out/', import.meta.url).pathname;
  await mkdir(outDir, { recursive: true });
  await writeFile(
    join(outDir, 'tftp.json'),
    JSON.stringify({ sizeBytes: SIZE, rounds: ROUNDS, results }, null, 2),
  );
}

await main();
