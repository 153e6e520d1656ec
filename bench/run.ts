// `npm run bench` — runs every benchmark (each in its own process, one after another) and writes
// bench/RESULTS.md from their results in bench/out/*.json. Run as root on an otherwise idle machine.
//   npm run bench                      all benches (about 30 minutes on 2 cores)
//   npm run bench -- --quick           smaller counts, a few minutes
//   npm run bench -- --only dhcp,tftp  some of them; RESULTS.md keeps the other sections from their last run
//   npm run bench -- --render          only rewrite RESULTS.md from bench/out/
// Extra arguments after these go to every bench (e.g. `--only install --nodes 2000`).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { type BenchResult, type Goal, machineInfo, OUT_DIR, renderSection } from './lib/report.ts';

export const BENCHES = ['dhcp', 'tftp', 'http', 'image', 'install', 'ipmi'] as const;
const HERE = new URL('.', import.meta.url).pathname;
const RESULTS = join(HERE, 'RESULTS.md');
/** a bench that runs longer than this is stopped (its result says so) */
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_MINUTES ?? 40) * 60_000;

function parse(argv: string[]) {
  const args = [...argv];
  const take = (flag: string) => {
    const i = args.indexOf(flag);
    if (i < 0) return undefined;
    const v = args[i + 1];
    args.splice(i, 2);
    return v;
  };
  const only = take('--only');
  const render = args.includes('--render');
  const quick = args.includes('--quick');
  const names = only ? only.split(',').map((s) => s.trim()) : [...BENCHES];
  for (const n of names)
    if (!(BENCHES as readonly string[]).includes(n))
      throw new Error(`--only: unknown bench ${n} (known: ${BENCHES.join(', ')})`);
  return { names, render, quick, passOn: args.filter((a) => a !== '--render') };
}

async function runBench(name: string, passOn: string[]): Promise<{ ok: boolean; seconds: number }> {
  console.log(`\n===== bench ${name} ${passOn.join(' ')} =====`);
  const t = performance.now();
  const r = await execa(process.execPath, ['--import', 'tsx', join(HERE, `${name}.bench.ts`), ...passOn], {
    stdio: 'inherit',
    reject: false,
    timeout: TIMEOUT_MS,
    killSignal: 'SIGTERM',
  });
  const seconds = Math.round((performance.now() - t) / 1000);
  if (r.timedOut) console.log(`bench ${name}: stopped after ${TIMEOUT_MS / 60_000} min`);
  else if (r.exitCode !== 0) console.log(`bench ${name}: exit code ${r.exitCode}`);
  return { ok: r.exitCode === 0 && !r.timedOut, seconds };
}

async function load(name: string): Promise<BenchResult | undefined> {
  const text = await readFile(join(OUT_DIR, `${name}.json`), 'utf8').catch(() => undefined);
  if (!text) return undefined;
  const r = JSON.parse(text) as BenchResult;
  return r.tables ? r : undefined;
}

async function render(command: string, failures: string[]): Promise<void> {
  const results = (await Promise.all(BENCHES.map(load))).filter((x): x is BenchResult => !!x);
  const m = results[0]?.machine ?? (await machineInfo());
  const goals: Array<Goal & { bench: string }> = results.flatMap((x) =>
    (x.goals ?? []).map((g) => ({ ...g, bench: x.name })),
  );
  const lines = [
    '# pxeflow benchmark results',
    '',
    `Written by \`${command}\` (bench/run.ts) on ${new Date().toISOString().replace('T', ' ').slice(0, 19)} UTC — do not edit ` +
      'by hand; raw figures are in bench/out/*.json (not committed).',
    '',
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.os}, Linux ${m.kernel}, Node ${m.node}. Everything — ` +
      'servers, peers, clients, simulated nodes, Temporal — runs on this one machine, over veth pairs, bridges and ' +
      'loopback inside network namespaces, so figures are CPU-bound where a real network would be wire-bound. Each ' +
      'section says when and by which command it was measured; every pxeflow figure stands next to its peer measured in ' +
      'the same run.',
    '',
  ];
  if (failures.length)
    lines.push(`**Benches that failed or timed out in this run:** ${failures.join(', ')}.`, '');
  if (goals.length) {
    lines.push('## Goals at a glance', '', '| bench | goal | measured | met |', '|---|---|---|---|');
    for (const g of goals)
      lines.push(
        `| ${g.bench} | ${g.goal} | ${g.measured} | ${g.met === null ? '—' : g.met ? 'yes' : '**no**'} |`,
      );
    lines.push('');
  }
  for (const r of results) lines.push(renderSection(r));
  const missing = BENCHES.filter((b) => !results.some((x) => x.name === b));
  if (missing.length) lines.push(`Not measured yet: ${missing.join(', ')}.`, '');
  await writeFile(RESULTS, `${lines.join('\n').trimEnd()}\n`);
  console.log(`\nwritten ${RESULTS}`);
}

async function main(): Promise<void> {
  const { names, render: renderOnly, quick, passOn } = parse(process.argv.slice(2));
  const command = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  if (process.getuid?.() !== 0)
    throw new Error('the benchmarks need root (network namespaces, dnsmasq, port 69)');
  const failures: string[] = [];
  if (!renderOnly) {
    const t = performance.now();
    for (const name of names) {
      const { ok } = await runBench(name, passOn);
      if (!ok) failures.push(name);
    }
    console.log(
      `\nall benches done in ${Math.round((performance.now() - t) / 60_000)} min${quick ? ' (quick)' : ''}`,
    );
  }
  await render(command, failures);
  if (failures.length) process.exitCode = 1;
}

await main();
