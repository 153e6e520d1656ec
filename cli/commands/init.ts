// `pxeflow init`: the three values of the method (IPMI subnet, IP subnet, ISO version) → a commented spec.
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { generateClusterSpec } from '../../config/init.ts';
import { CliError, EXIT, examples, stdoutOut } from '../output.ts';
import { specErrorText } from '../spec.ts';
import { SpecError } from '../../config/schema.ts';

interface InitFlags {
  ipmiSubnet: string;
  ipSubnet: string;
  iso: string;
  credentialsEnv?: string;
  username?: string;
  name?: string;
  interface?: string;
  output?: string;
  force?: boolean;
}

export function registerInit(program: Command): void {
  program
    .command('init')
    .description('write a commented cluster spec from the IPMI subnet, the IP subnet and the ISO version')
    .requiredOption('--ipmi-subnet <cidr>', 'subnet of the BMCs, e.g. 10.10.0.0/24')
    .requiredOption('--ip-subnet <cidr>', 'provisioning subnet the nodes PXE-boot on, e.g. 10.20.0.0/24')
    .requiredOption('--iso <version>', 'ISO image version from the library, e.g. storageos-7.9')
    .option(
      '--credentials-env <VAR>',
      'environment variable holding the BMC password (default PXEFLOW_BMC_PASSWORD)',
    )
    .option('--username <user>', 'BMC user name (default admin)')
    .option('--name <cluster>', 'cluster name, a DNS label (default cluster)')
    .option('--interface <ifname>', 'controller interface on the provisioning network (default br-prov)')
    .option('-o, --output <file>', 'write the spec to this file instead of stdout')
    .option('--force', 'overwrite the output file if it exists')
    .addHelpText(
      'after',
      examples(
        'pxeflow init --ipmi-subnet 10.10.0.0/24 --ip-subnet 10.20.0.0/24 --iso storageos-7.9 --name ceph-a -o ceph-a.yaml',
        'pxeflow init --ipmi-subnet 10.10.0.0/24 --ip-subnet 10.20.0.0/24 --iso storageos-7.9 --credentials-env CEPH_A_BMC_PASSWORD',
      ),
    )
    .action((flags: InitFlags) => {
      let yaml: string;
      try {
        yaml = generateClusterSpec({
          ipmiSubnet: flags.ipmiSubnet,
          ipSubnet: flags.ipSubnet,
          isoVersion: flags.iso,
          credentialsEnv: flags.credentialsEnv,
          username: flags.username,
          name: flags.name,
          interface: flags.interface,
        });
      } catch (err) {
        if (err instanceof SpecError) throw new CliError(specErrorText(err, OPTION_FLAGS), EXIT.usage);
        throw err;
      }
      if (!flags.output || flags.output === '-') {
        stdoutOut().write(yaml);
        return;
      }
      try {
        writeFileSync(flags.output, yaml, { flag: flags.force ? 'w' : 'wx', mode: 0o644 });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EEXIST') throw new CliError(`${flags.output} exists; pass --force to overwrite it`);
        throw new CliError(`cannot write ${flags.output}: ${(err as Error).message}`);
      }
      process.stderr.write(`wrote ${flags.output}; next: pxeflow validate ${flags.output}\n`);
    });
}

/** generateClusterSpec names problems by option key; show them as the flags the operator typed. */
const OPTION_FLAGS: Record<string, string> = {
  ipmiSubnet: '--ipmi-subnet',
  ipSubnet: '--ip-subnet',
  isoVersion: '--iso',
  credentialsEnv: '--credentials-env',
  username: '--username',
  name: '--name',
  interface: '--interface',
};
