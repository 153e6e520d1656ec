// Where a secret could leak, read back: every process's command line (sampled while an install runs), text
// files, and every payload of a workflow history (decoded from its bytes, as the server stores it).
import { readdir, readFile } from 'node:fs/promises';
import type { Client } from '@temporalio/client';

export interface CmdlineSamples {
  /** distinct command lines seen (NULs as spaces) */
  texts: Map<string, string>;
  /** process names seen (argv[0] basename) */
  commands: Set<string>;
  sweeps: number;
}

/** Reads /proc/<pid>/cmdline of every process, over and over (a sweep every ~10 ms), until stop(). */
export function startCmdlineSampler(): { stop(): Promise<CmdlineSamples> } {
  const samples: CmdlineSamples = { texts: new Map(), commands: new Set(), sweeps: 0 };
  let running = true;
  const loop = (async () => {
    while (running) {
      const pids = (await readdir('/proc')).filter((e) => /^\d+$/.test(e));
      await Promise.all(
        pids.map(async (pid) => {
          const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
          if (!raw) return;
          const text = raw.replaceAll('\0', ' ').trim();
          if (!samples.texts.has(text)) samples.texts.set(text, `pid ${pid}: ${text.slice(0, 300)}`);
          samples.commands.add(raw.split('\0')[0].split('/').at(-1) ?? '');
        }),
      );
      samples.sweeps++;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return samples;
    },
  };
}

/** "<where>: contains secret #i" for every text that contains a secret (never the secret itself). */
export function secretHits(
  texts: Map<string, string> | Iterable<[string, string]>,
  secrets: string[],
): string[] {
  const hits: string[] = [];
  for (const [where, text] of texts) {
    secrets.forEach((s, i) => {
      if (s && text.includes(s)) hits.push(`${where.slice(0, 200)}: contains secret #${i}`);
    });
  }
  return hits;
}

/** Every string and every payload (bytes decoded as UTF-8) anywhere in a workflow's history. */
export async function historyTexts(client: Client, workflowId: string): Promise<string[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const out: string[] = [];
  const seen = new Set<unknown>();
  const walk = (v: unknown): void => {
    if (v === null || v === undefined) return;
    if (typeof v === 'string') out.push(v);
    else if (v instanceof Uint8Array) out.push(Buffer.from(v).toString('utf8'));
    else if (typeof v === 'object') {
      if (seen.has(v)) return;
      seen.add(v);
      for (const x of Object.values(v as Record<string, unknown>)) walk(x);
    }
  };
  walk(history);
  return out;
}
