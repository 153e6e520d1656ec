// Runs the built command as a real subprocess (`node bin/pxeflow.js …`), isolated from any recorded or
// environment Temporal server: a fresh empty state folder, no TEMPORAL_ADDRESS.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';

export const BIN = new URL('../../bin/pxeflow.js', import.meta.url).pathname;
const emptyState = mkdtempSync(join(tmpdir(), 'pxeflow-cli-state-'));
process.once('exit', () => rmSync(emptyState, { recursive: true, force: true }));

export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PXEFLOW_STATE_DIR: emptyState, NO_COLOR: '1' };
  delete env.TEMPORAL_ADDRESS;
  delete env.TEMPORAL_NAMESPACE;
  return { ...env, ...extra };
}

export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout + stderr */
  all: string;
}

/** Runs pxeflow to completion (never rejects on a non-zero exit). */
export async function pxeflow(
  args: string[],
  opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {},
): Promise<CliResult> {
  const r = await execa('node', [BIN, ...args], {
    reject: false,
    env: cliEnv(opts.env),
    extendEnv: false,
    cwd: opts.cwd,
    stdin: 'ignore',
    all: true,
    timeout: opts.timeoutMs ?? 120_000,
  });
  return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, all: r.all ?? '' };
}

/** Starts pxeflow in the background (for live views and Ctrl-C). */
export function spawnPxeflow(args: string[], opts: { env?: Record<string, string> } = {}): ResultPromise {
  return execa('node', [BIN, ...args], {
    reject: false,
    env: cliEnv(opts.env),
    extendEnv: false,
    stdin: 'ignore',
    all: true,
    buffer: true,
    timeout: 300_000,
  });
}
