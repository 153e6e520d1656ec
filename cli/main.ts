// The `pxeflow` command: one program, one file per command group under cli/commands/. Exit codes: 0 all nodes
// succeeded (or the command did what it was asked), 1 some nodes did not, 2 bad usage or config, 3 Temporal
// cannot be reached (docs/cli.md).
import { Command, CommanderError } from 'commander';
import { registerControls } from './commands/controls.ts';
import { registerDiscover } from './commands/discover.ts';
import { registerImages } from './commands/images.ts';
import { registerInit } from './commands/init.ts';
import { registerInstall } from './commands/install.ts';
import { registerReport } from './commands/report.ts';
import { registerStatus } from './commands/status.ts';
import { registerValidate } from './commands/validate.ts';
import { registerWatch } from './commands/watch.ts';
import { registerWorker } from './commands/worker.ts';
import { CliError, EXIT, examples } from './output.ts';
import { DEFAULT_ADDRESS } from './temporal.ts';

const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command('pxeflow')
    .description(
      'Bare-metal installs of storage clusters: PXE boot chain + IPMI, every install a Temporal workflow',
    )
    .version(VERSION)
    .option(
      '--address <host:port>',
      `Temporal frontend (default $TEMPORAL_ADDRESS, the server recorded by \`pxeflow worker\`, or ${DEFAULT_ADDRESS})`,
    )
    .option('--namespace <ns>', 'Temporal namespace (default $TEMPORAL_NAMESPACE or default)')
    .showHelpAfterError('(add --help for usage and examples)')
    .showSuggestionAfterError(true)
    .exitOverride()
    .addHelpText(
      'after',
      examples(
        'pxeflow init --ipmi-subnet 10.10.0.0/24 --ip-subnet 10.20.0.0/24 --iso storageos-7.9 --name ceph-a -o ceph-a.yaml',
        'pxeflow validate ceph-a.yaml',
        'pxeflow worker &            # the controller (or run it as a service)',
        'pxeflow install ceph-a.yaml # follows it live; Ctrl-C detaches',
        'pxeflow report ceph-a --format ansible > inventory.yml',
      ) +
        '\nExit codes: 0 all nodes installed / command done · 1 some nodes not installed · 2 bad usage or config · 3 Temporal unreachable\n',
    );
  registerInit(program);
  registerValidate(program);
  registerDiscover(program);
  registerImages(program);
  registerInstall(program);
  registerWatch(program);
  registerStatus(program);
  registerReport(program);
  registerControls(program);
  registerWorker(program);
  // subcommands inherit the exit override (usage errors → exit 2, not commander's 1)
  for (const cmd of allCommands(program)) cmd.exitOverride();
  return program;
}

function allCommands(cmd: Command): Command[] {
  return cmd.commands.flatMap((c) => [c, ...allCommands(c)]);
}

/** Runs the command line; resolves to the exit code (never calls process.exit itself). */
export async function runCli(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and --version end with a CommanderError too; usage errors were already printed by commander
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (err instanceof CliError) {
      process.stderr.write(`pxeflow: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`pxeflow: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT.incomplete;
  }
}

/** Runs the command line and exits with its code once stdout has drained (open connections cannot hold it). */
export async function main(argv: string[] = process.argv): Promise<never> {
  const code = await runCli(argv);
  process.exitCode = code;
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
  process.exit(code);
}

// `node --import tsx cli/main.ts …` works too
if (import.meta.url === `file://${process.argv[1]}`) await main();
