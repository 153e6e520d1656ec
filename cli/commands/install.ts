// `pxeflow install FILE`: validate locally, start the ClusterInstall workflow (id pxeflow/<name>, task queue
// pxeflow), then follow it live like `watch`. Ctrl-C detaches; the install goes on in Temporal.
import { readFileSync } from 'node:fs';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { Command } from 'commander';
import { parseSpecText } from '../../config/load.ts';
import { clusterWorkflowId, SpecError } from '../../config/schema.ts';
import { follow } from '../live.ts';
import { CliError, EXIT, examples, line, printJsonLine, stdoutOut } from '../output.ts';
import { loadSpec, SpecCliError } from '../spec.ts';
import {
  type GlobalOptions,
  reattachCommand,
  TASK_QUEUE,
  uiLink,
  WORKFLOW_TYPE,
  withTemporal,
} from '../temporal.ts';

interface InstallFlags extends GlobalOptions {
  detach?: boolean;
  workflowId?: string;
  taskQueue: string;
  json?: boolean;
  skipValidate?: boolean;
}

/** The document to send: validated here, or (--skip-validate) only parsed, leaving validation to the workflow. */
function specDocument(file: string, skipValidate: boolean): { raw: unknown; name: string | undefined } {
  if (!skipValidate) {
    const { raw, spec } = loadSpec(file);
    return { raw, name: spec.name };
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    const { raw } = parseSpecText(text, file);
    const name = (raw as { name?: unknown } | null)?.name;
    return { raw, name: typeof name === 'string' ? name : undefined };
  } catch (err) {
    if (err instanceof SpecError) throw new SpecCliError(err);
    throw err;
  }
}

export function registerInstall(program: Command): void {
  program
    .command('install')
    .description(
      'start the install of a cluster spec and follow it live (Ctrl-C detaches, the install goes on)',
    )
    .argument('<file>', 'cluster spec (YAML or JSON)')
    .option('--detach', 'start the install and return at once')
    .option('--workflow-id <id>', 'workflow id (default pxeflow/<name>)')
    .option('--task-queue <queue>', 'task queue of the controller', TASK_QUEUE)
    .option('--skip-validate', 'send the file as it is; the workflow validates it (e.g. a newer controller)')
    .option('--json', 'JSON lines instead of the live view')
    .addHelpText(
      'after',
      examples(
        'pxeflow install ceph-a.yaml',
        'pxeflow install ceph-a.yaml --detach && pxeflow watch ceph-a',
        'pxeflow install ceph-a.yaml --json | tee install.log',
      ),
    )
    .action(async (file: string, _flags: InstallFlags, cmd: Command) => {
      const flags = cmd.optsWithGlobals() as InstallFlags;
      const out = stdoutOut();
      const { raw, name } = specDocument(file, flags.skipValidate === true);
      const workflowId = flags.workflowId ?? (name ? clusterWorkflowId(name) : undefined);
      if (!workflowId) throw new CliError(`${file} has no cluster name; set "name" or pass --workflow-id`);
      process.exitCode = await withTemporal(flags, async ({ client, target }) => {
        let runId: string;
        try {
          const handle = await client.workflow.start(WORKFLOW_TYPE, {
            taskQueue: flags.taskQueue,
            workflowId,
            args: [raw],
          });
          runId = handle.firstExecutionRunId;
        } catch (err) {
          if (err instanceof WorkflowExecutionAlreadyStartedError) {
            throw new CliError(
              `an install ${workflowId} is already running; follow it with: ${reattachCommand(target, workflowId)}`,
              EXIT.usage,
            );
          }
          throw err;
        }
        const link = uiLink(target, workflowId);
        if (flags.json)
          printJsonLine(out, { type: 'started', workflowId, runId, ...(link ? { ui: link } : {}) });
        else
          line(
            out,
            `started ${workflowId} (run ${runId}) on ${target.address}${link ? `\n  web UI: ${link}` : ''}`,
          );
        if (flags.detach) {
          if (!flags.json) line(out, `follow it with: ${reattachCommand(target, workflowId)}`);
          return EXIT.ok;
        }
        return await follow(client, workflowId, {
          out,
          json: flags.json === true,
          reattach: reattachCommand(target, workflowId),
        });
      });
    });
}
