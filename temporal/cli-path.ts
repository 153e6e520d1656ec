// Where the `temporal` binary is: $TEMPORAL_CLI, then what scripts/setup.sh recorded, then PATH.
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;

export class TemporalCliError extends Error {}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

export function resolveTemporalCli(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TEMPORAL_CLI) {
    if (!isExecutable(env.TEMPORAL_CLI)) {
      throw new TemporalCliError(`TEMPORAL_CLI=${env.TEMPORAL_CLI} is not an executable file`);
    }
    return env.TEMPORAL_CLI;
  }
  try {
    const recorded = readFileSync(join(ROOT, '.tools', 'temporal-path'), 'utf8').trim();
    if (recorded && isExecutable(recorded)) return recorded;
  } catch {
    // not set up yet: fall through to PATH
  }
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'temporal');
    if (dir && isExecutable(candidate)) return candidate;
  }
  throw new TemporalCliError(
    'no temporal CLI found: run `npm run setup` (or set TEMPORAL_CLI to the binary)',
  );
}
