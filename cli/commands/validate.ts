// `pxeflow validate FILE`: every problem with its field path (exit 2), or what an install would do.
import type { Command } from 'commander';
import { examples, printJson, stdoutOut } from '../output.ts';
import { loadSpec, SpecCliError, summarizeSpec, summaryText } from '../spec.ts';

export function registerValidate(program: Command): void {
  program
    .command('validate')
    .description('check a cluster spec: every error with its field path, or a summary of the install')
    .argument('<file>', 'cluster spec (YAML or JSON)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      examples('pxeflow validate ceph-a.yaml', 'pxeflow validate ceph-a.yaml --json | jq .eta'),
    )
    .action((file: string, flags: { json?: boolean }) => {
      const out = stdoutOut();
      try {
        const { spec } = loadSpec(file);
        const summary = summarizeSpec(spec);
        if (flags.json) printJson(out, { valid: true, file, ...summary });
        else out.write(summaryText(summary));
      } catch (err) {
        if (err instanceof SpecCliError && flags.json) {
          printJson(out, { valid: false, file, issues: err.spec.issues });
          process.exitCode = err.exitCode;
          return;
        }
        throw err;
      }
    });
}
