// `pxeflow discover`: the BMCs answering in an IPMI subnet, with product and power state when credentials are
// given (by reference: an environment variable or a file, never on the command line).
import type { Command } from 'commander';
import { resolveSecretRef } from '../../config/load.ts';
import { type DiscoveredBmc, discoverBmcs } from '../../power/index.ts';
import { CliError, EXIT, examples, formatTable, line, printJson, stdoutOut } from '../output.ts';

interface DiscoverFlags {
  ipmiSubnet: string;
  port: string;
  username: string;
  passwordEnv?: string;
  passwordFile?: string;
  json?: boolean;
}

export function registerDiscover(program: Command): void {
  program
    .command('discover')
    .description('find the BMCs in an IPMI subnet (address, product, power state)')
    .requiredOption('--ipmi-subnet <cidr>', 'subnet to probe (at most a /20), e.g. 10.10.0.0/24')
    .option('--port <port>', 'BMC UDP port', '623')
    .option('--username <user>', 'BMC user name (with a password)', 'admin')
    .option('--password-env <VAR>', 'environment variable holding the BMC password')
    .option('--password-file <file>', 'file holding the BMC password')
    .option('--json', 'print the BMCs as JSON')
    .addHelpText(
      'after',
      examples(
        '# which addresses answer RMCP (no login):',
        'pxeflow discover --ipmi-subnet 10.10.0.0/24',
        '# with product and power state (password from the environment):',
        'read -rs BMC_PW && export BMC_PW',
        'pxeflow discover --ipmi-subnet 10.10.0.0/24 --username admin --password-env BMC_PW --json',
      ),
    )
    .action(async (flags: DiscoverFlags) => {
      const port = Number(flags.port);
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        throw new CliError(`--port: ${flags.port} is not a UDP port (1-65535)`);
      }
      if (flags.passwordEnv && flags.passwordFile) {
        throw new CliError('give at most one of --password-env and --password-file');
      }
      let password: string | undefined;
      if (flags.passwordEnv || flags.passwordFile) {
        try {
          password = resolveSecretRef(
            flags.passwordEnv ? { env: flags.passwordEnv } : { file: flags.passwordFile },
            'BMC password',
          );
        } catch (err) {
          throw new CliError((err as Error).message);
        }
      }
      let found: DiscoveredBmc[];
      try {
        found = await discoverBmcs({
          subnet: flags.ipmiSubnet,
          ports: [port],
          credentials: () => (password === undefined ? undefined : { username: flags.username, password }),
        });
      } catch (err) {
        if (err instanceof RangeError || err instanceof TypeError) {
          throw new CliError(`--ipmi-subnet: ${(err as Error).message}`);
        }
        throw err;
      }
      const out = stdoutOut();
      // some BMC refused the credentials (or failed otherwise): exit 1, like an install with failed nodes
      if (found.some((b) => b.error)) process.exitCode = EXIT.incomplete;
      if (flags.json) {
        printJson(out, found);
        return;
      }
      if (found.length === 0) {
        line(out, `no BMC answered in ${flags.ipmiSubnet} on port ${port}`);
        return;
      }
      out.write(
        formatTable(
          ['ADDRESS', 'PORT', 'PRODUCT', 'POWER', 'NOTE'],
          found.map((b) => [
            b.address,
            String(b.port),
            b.info ? `${b.info.manufacturerName} ${b.info.productName}`.trim() : '-',
            b.powerState ?? '-',
            b.error ? b.error.message : password === undefined ? 'no credentials given' : '',
          ]),
        ),
      );
    });
}
