// The cluster spec: what an operator writes (YAML/JSON) and what workflows receive (its normalised, JSON-safe
// form). Imported inside the Temporal workflow sandbox: deterministic, no Node built-ins — only zod and the pure
// helpers in config/ (a test scans the import graph).
import { z } from 'zod';
import { checkClusterSpec } from './checks.ts';
import { findSecretFields, type SafeParseResult, SpecError, toSpecIssues } from './errors.ts';
import {
  absolutePath,
  bootMode,
  cidr,
  diskPath,
  dnsLabel,
  doc,
  domainName,
  duration,
  envName,
  ipv4,
  mac,
  pattern,
  port,
  text,
} from './fields.ts';

export { SpecError, type SpecIssue, type SafeParseResult } from './errors.ts';

export const API_VERSION = 'pxeflow/v1';
export const DEFAULT_ISO_LIBRARY = '/var/lib/pxeflow/isos';
export const DEFAULT_INSTALL_TIMEOUT = '20m';

const isoSchema = z.strictObject({
  version: doc(
    pattern(
      /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/,
      'must be a version name of letters, digits, ".", "_", "+", "-"',
    ),
    'ISO image version to install; looked up in the ISO library index (e.g. storageos-7.9).',
  ),
  library: doc(absolutePath().default(DEFAULT_ISO_LIBRARY), 'Folder holding the ISO files and their index.'),
});

const ipmiSchema = z
  .strictObject({
    subnet: doc(
      cidr(8, 30),
      'Subnet of the BMCs (IPMI interfaces). Every listed BMC must be inside it; without a node list pxeflow discovers BMCs here (then /16 or smaller).',
    ),
    username: doc(
      text().min(1).max(16, { error: 'IPMI user names are at most 16 characters' }),
      'BMC user name (IPMI v2, at most 16 characters).',
    ),
    passwordEnv: doc(
      envName().optional(),
      'Name of the environment variable (on the controller) holding the BMC password. Exactly one of passwordEnv / passwordFile.',
    ),
    passwordFile: doc(
      absolutePath().optional(),
      'Absolute path of a file (on the controller) holding the BMC password; one trailing newline is ignored.',
    ),
    port: doc(port().default(623), 'Default BMC UDP port (RMCP+); a node may override it with bmcPort.'),
    cipherSuite: doc(
      z
        .number()
        .int()
        .min(1, { error: 'cipher suite 0 authenticates nothing; use 3 (or 17 for newer BMCs)' })
        .max(17)
        .default(3),
      'IPMI v2 cipher suite (ipmitool -C). 3 = RAKP-HMAC-SHA1/AES; 17 = SHA256 on newer BMCs.',
    ),
    timeoutSeconds: doc(
      z.number().int().min(1).max(60).default(2),
      'Seconds to wait per IPMI request (ipmitool -N).',
    ),
    retries: doc(
      z.number().int().min(0).max(10).default(1),
      'Retransmissions per IPMI request (ipmitool -R).',
    ),
  })
  .superRefine((ipmi, ctx) => {
    if ((ipmi.passwordEnv === undefined) === (ipmi.passwordFile === undefined)) {
      ctx.addIssue({
        code: 'custom',
        message:
          'set exactly one of passwordEnv or passwordFile (a reference to the BMC password, never the password)',
        path: ipmi.passwordEnv === undefined ? [] : ['passwordFile'],
      });
    }
  });

const rangeSchema = z.strictObject({
  start: doc(ipv4(), 'First address of the dynamic range.'),
  end: doc(ipv4(), 'Last address of the dynamic range (inclusive).'),
});

const networkSchema = z.strictObject({
  interface: doc(
    pattern(
      /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,15}$/,
      'must be a Linux interface name (1-15 letters, digits, ".", "_", "-")',
    ),
    'Controller network interface on the provisioning network (DHCP, TFTP and HTTP listen only here).',
  ),
  subnet: doc(cidr(8, 30), 'The provisioning network. Must not overlap ipmi.subnet.'),
  controller: doc(
    ipv4(),
    "The controller's address on that interface: next-server, TFTP and HTTP URLs point here. Inside the subnet, outside the range.",
  ),
  httpPort: doc(
    port().default(8080),
    'Port of the controller HTTP server (iPXE script, kernel, kickstart, packages, status).',
  ),
  range: doc(
    rangeSchema.optional(),
    'Dynamic DHCP range for discovery and nodes without a fixed IP (required in authoritative mode, not allowed in proxy mode). Must hold one address per node without a fixed ip or mac (or discovery.maxNodes).',
  ),
  gateway: doc(
    ipv4().optional(),
    'Default gateway handed out by DHCP (optional; provisioning networks are often isolated).',
  ),
  dns: doc(z.array(ipv4()).max(8).default([]), 'DNS servers handed out by DHCP.'),
  domain: doc(domainName().optional(), 'DNS domain of the nodes (hostname = node name).'),
  dhcpMode: doc(
    z.enum(['authoritative', 'proxy']).default('authoritative'),
    'authoritative: pxeflow assigns addresses. proxy: a DHCP server already runs on this network; pxeflow only adds the boot information (proxyDHCP), for the listed nodes only, so every node needs its mac (docs/proxy-dhcp.md).',
  ),
});

const nodeSchema = z.strictObject({
  name: doc(dnsLabel(), 'Node name, also its hostname; unique. Its workflow id is pxeflow/<cluster>/<name>.'),
  bmc: doc(ipv4(), 'Address of the node BMC; inside ipmi.subnet.'),
  bmcPort: doc(port().optional(), 'BMC UDP port when it differs from ipmi.port.', {
    docDefault: 'ipmi.port',
  }),
  mac: doc(
    mac().optional(),
    'MAC of the NIC that PXE-boots; any of aa:bb:cc:dd:ee:ff, AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff. Unknown: learned when the node first asks for DHCP after its power-on.',
  ),
  ip: doc(
    ipv4().optional(),
    'Fixed address on the provisioning network; unset: an address from network.range.',
  ),
  role: doc(
    pattern(
      /^[a-z0-9][a-z0-9_-]{0,31}$/,
      'must be a short lower-case word (letters, digits, "_", "-")',
    ).default('storage'),
    'Free-form role, passed to the kickstart template.',
  ),
  osDisk: doc(diskPath().optional(), 'Disk to install on, when it differs from kickstart.osDisk.', {
    docDefault: 'kickstart.osDisk',
  }),
  bootMode: doc(bootMode().optional(), 'Firmware boot mode, when it differs from the cluster bootMode.', {
    docDefault: 'bootMode',
  }),
});

const powerSchema = z.strictObject({
  order: doc(
    z.enum(['listed', 'bmc-address']).default('listed'),
    'Power-on order: as listed, or by BMC address (discovery always goes by address).',
  ),
  interval: doc(duration('5s', 0), 'Pause between two power-ons.'),
  maxBooting: doc(
    z.number().int().min(1).max(2000).default(20),
    'Most nodes between power-on and final status at any time.',
  ),
});

const timeoutsSchema = z.strictObject({
  install: doc(
    duration(DEFAULT_INSTALL_TIMEOUT, 1000),
    'Time from power-on to the final install status; past it the node is reported as "install timeout".',
  ),
  dhcpSeen: doc(
    duration('5m', 1000),
    'Time from power-on to the first DHCP request of the node; past it the attempt fails (BMC or cabling problem).',
  ),
});

const retrySchema = z.strictObject({
  attempts: doc(
    z.number().int().min(1).max(10).default(2),
    'Total install attempts per node (1 = no retry).',
  ),
  powerCycleOnRetry: doc(z.boolean().default(true), 'Power-cycle the node before another attempt.'),
});

const variableValue = z.union([text(), z.number(), z.boolean()], {
  error: 'a kickstart variable must be a string, number or boolean',
});

const kickstartSchema = z
  .strictObject({
    template: doc(absolutePath().optional(), 'Kickstart template file to use instead of the built-in one.', {
      docDefault: 'built-in',
    }),
    rootPasswordHashEnv: doc(
      envName().optional(),
      'Environment variable holding the root password as a crypt(3) hash ($6$…). At most one of the two; none: root login locked.',
    ),
    rootPasswordHashFile: doc(absolutePath().optional(), 'File holding the root password crypt(3) hash.'),
    timezone: doc(
      pattern(
        /^[A-Za-z0-9_+-]+(\/[A-Za-z0-9_+-]+)*$/,
        'must be a time zone like UTC or Europe/Paris',
      ).default('UTC'),
      'Time zone of the installed system.',
    ),
    osDisk: doc(diskPath().default('/dev/sda'), 'Default disk to install on.'),
    extraPackages: doc(
      z
        .array(
          pattern(/^-?@?[A-Za-z0-9][A-Za-z0-9._+*:@-]*$/, 'must be a package or @group name (no spaces)'),
        )
        .default([]),
      'Packages (or @groups, or -excluded packages) added to the kickstart %packages section.',
    ),
    variables: doc(
      z
        .record(
          pattern(/^[A-Za-z_][A-Za-z0-9_]*$/, 'variable names are identifiers (letters, digits, "_")'),
          variableValue,
        )
        .default({}),
      'Extra values for the kickstart template (it.variables.<name>). Never secrets.',
    ),
  })
  .superRefine((ks, ctx) => {
    if (ks.rootPasswordHashEnv !== undefined && ks.rootPasswordHashFile !== undefined) {
      ctx.addIssue({
        code: 'custom',
        message: 'set at most one of rootPasswordHashEnv or rootPasswordHashFile',
        path: ['rootPasswordHashFile'],
      });
    }
  });

const discoverySchema = z.strictObject({
  maxNodes: doc(
    z.number().int().min(1),
    'Most nodes discovery may find; network.range must hold this many addresses.',
    { docDefault: 'hosts in ipmi.subnet' },
  ),
});

/** The spec before node defaults are filled (what the cross-field checks see). */
export const clusterSpecObject = z.strictObject({
  apiVersion: doc(z.literal(API_VERSION), 'Spec format version; always pxeflow/v1.'),
  name: doc(dnsLabel(), 'Cluster name (DNS label). The install workflow id is pxeflow/<name>.'),
  iso: doc(isoSchema, 'The image to install.'),
  ipmi: doc(ipmiSchema, 'How the controller reaches the BMCs. Credentials by reference only.'),
  network: doc(networkSchema, 'The provisioning network the nodes PXE-boot on.'),
  nodes: doc(
    z
      .array(nodeSchema)
      .min(1, {
        error: 'empty node list: remove "nodes" to discover BMCs in ipmi.subnet, or list at least one node',
      })
      .optional(),
    'Known nodes. Absent: BMCs are discovered in ipmi.subnet and powered on one by one by address.',
    { docDefault: 'discover' },
  ),
  discovery: doc(discoverySchema.optional(), 'Discovery limits; only without a node list.'),
  power: doc(powerSchema.prefault({}), 'Power-on pacing.'),
  timeouts: doc(timeoutsSchema.prefault({}), 'Deadlines per node attempt.'),
  retry: doc(retrySchema.prefault({}), 'What happens after a failed or timed-out attempt.'),
  bootMode: doc(
    bootMode().default('auto'),
    'Firmware boot mode: auto answers BIOS and UEFI clients by their DHCP client architecture.',
  ),
  kickstart: doc(kickstartSchema.prefault({}), 'The kickstart file each node installs from.'),
});

/** The spec after field validation, before node defaults are filled (input of the cross-field checks). */
export type SpecObject = z.output<typeof clusterSpecObject>;
type ListedNode = NonNullable<SpecObject['nodes']>[number];

/** A listed node with the cluster-wide defaults applied (bmcPort, osDisk, bootMode always set). */
export type ClusterNode = ListedNode & { bmcPort: number; osDisk: string; bootMode: BootMode };
/** The normalised spec: durations in ms, MACs lower-case colon form, every default filled. JSON-safe. */
export type ClusterSpec = Omit<SpecObject, 'nodes'> & { nodes?: ClusterNode[] };
export type BootMode = SpecObject['bootMode'];
/** A secret by reference: an environment variable name or a file path on the controller. */
export type SecretRef = { env?: string; file?: string };

/** Per-node values with the cluster-wide defaults applied, so consumers never re-derive them. */
function fillNodeDefaults(spec: SpecObject): ClusterSpec {
  if (spec.nodes === undefined) return spec as ClusterSpec;
  return {
    ...spec,
    nodes: spec.nodes.map((node) => ({
      ...node,
      bmcPort: node.bmcPort ?? spec.ipmi.port,
      osDisk: node.osDisk ?? spec.kickstart.osDisk,
      bootMode: node.bootMode ?? spec.bootMode,
    })),
  };
}

// Cross-field checks also run when only unrelated fields failed (all errors at once), but never on sections
// that are themselves invalid: their values would be half-parsed.
const CHECKED_SECTIONS = new Set<PropertyKey>(['ipmi', 'network', 'nodes', 'discovery']);
const crossChecksCanRun = (payload: z.core.ParsePayload): boolean =>
  payload.issues.every(
    (issue) =>
      issue.code === 'unrecognized_keys' ||
      (issue.path !== undefined && issue.path.length > 0 && !CHECKED_SECTIONS.has(issue.path[0])),
  );

export const clusterSpecSchema = clusterSpecObject
  .superRefine(checkClusterSpec, { when: crossChecksCanRun })
  .transform(fillNodeDefaults);

/** What the operator writes (YAML/JSON): durations as text, most fields optional. */
export type ClusterSpecInput = z.input<typeof clusterSpecSchema>;

/** Validates and normalises a spec; throws SpecError listing every problem (path + reason). */
export function parseClusterSpec(raw: unknown): ClusterSpec {
  const result = safeParseClusterSpec(raw);
  if (!result.success) throw result.error;
  return result.spec;
}

export function safeParseClusterSpec(raw: unknown): SafeParseResult<ClusterSpec> {
  const secretIssues = findSecretFields(raw);
  const parsed = clusterSpecSchema.safeParse(raw, { error: genericMessage });
  const zodIssues = parsed.success ? [] : toSpecIssues(parsed.error.issues, clusterSpecObject);
  const reported = new Set(secretIssues.map((issue) => issue.path));
  const issues = [...secretIssues, ...zodIssues.filter((issue) => !reported.has(issue.path))];
  if (issues.length > 0 || !parsed.success) return { success: false, error: new SpecError(issues) };
  return { success: true, spec: parsed.data };
}

/** Friendlier defaults than zod's for the common cases; never echoes the input value (it may be a secret). */
function genericMessage(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code === 'invalid_type') {
    if (issue.input === undefined)
      return issue.path?.length ? 'required' : 'expected a cluster spec (a mapping), got nothing';
    const got = Array.isArray(issue.input)
      ? 'a list'
      : issue.input === null
        ? 'null'
        : `a ${typeof issue.input}`;
    return `expected ${issue.expected === 'object' ? 'a mapping' : issue.expected === 'array' ? 'a list' : `a ${issue.expected}`}, got ${got}`;
  }
  return undefined;
}

export const clusterWorkflowId = (specName: string): string => `pxeflow/${specName}`;
export const nodeWorkflowId = (specName: string, nodeName: string): string =>
  `pxeflow/${specName}/${nodeName}`;

/** The BMC password reference of a spec, in the shape resolveSecretRef takes. */
export function bmcPasswordRef(spec: ClusterSpec): SecretRef {
  return spec.ipmi.passwordEnv !== undefined
    ? { env: spec.ipmi.passwordEnv }
    : { file: spec.ipmi.passwordFile };
}

/** The root password hash reference, or undefined when root login stays locked. */
export function rootPasswordHashRef(spec: ClusterSpec): SecretRef | undefined {
  const { rootPasswordHashEnv: env, rootPasswordHashFile: file } = spec.kickstart;
  if (env !== undefined) return { env };
  if (file !== undefined) return { file };
  return undefined;
}
