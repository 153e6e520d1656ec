// `pxeflow watch [CLUSTER]`: re-attach to an install and follow it live until its final report.
import type { Command } from 'commander';
import { follow } from '../live.ts';
import { examples, stdoutOut } from '../output.ts';
import { type GlobalOptions, pickCluster, reattachCommand, withTemporal } from '../temporal.ts';

export function registerWatch(program: Command): void {
  program
    .command('watch')
    .description(
      'follow an install live: bars per phase, outcomes, the nodes stuck longest, ETA; then the report',
    )
    .argument('[cluster]', 'cluster name or workflow id (default: the only running install)')
    .option('--json', 'JSON lines: progress records, then the report (no bars, no colours)')
    .addHelpText(
      'after',
      examples(
        'pxeflow watch ceph-a',
        'pxeflow watch            # the only running install',
        'pxeflow watch ceph-a --json | jq -c "select(.type==\\"report\\")"',
      ),
    )
    .action(async (cluster: string | undefined, _flags, cmd: Command) => {
      const flags = cmd.optsWithGlobals() as GlobalOptions & { json?: boolean };
      process.exitCode = await withTemporal(flags, async ({ client, target }) => {
        const workflowId = await pickCluster(client, cluster);
        return await follow(client, workflowId, {
          out: stdoutOut(),
          json: flags.json === true,
          reattach: reattachCommand(target, workflowId),
        });
      });
    });
}
