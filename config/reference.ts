// Generates docs/config-reference.md from the zod schema, so the reference never drifts from the code:
//   node --import tsx config/reference.ts > docs/config-reference.md
// (test/config/reference.test.ts fails when the committed file differs from this output).
import { pathToFileURL } from 'node:url';
import { z } from 'zod';
import { unwrapSchema } from './errors.ts';
import type { FieldDoc } from './fields.ts';
import { clusterSpecObject } from './schema.ts';

type Def = { type: string; [key: string]: unknown };
type Meta = { description?: string } & FieldDoc;
const defOf = (schema: unknown): Def => (schema as { _zod: { def: Def } })._zod.def;

/** Metadata of a field: every wrapper level (optional, default, …) merged, outermost wins. */
function metaOf(schema: unknown): Meta {
  const levels: Meta[] = [];
  let current = schema;
  for (;;) {
    levels.push((z.globalRegistry.get(current as z.ZodType) ?? {}) as Meta);
    const def = defOf(current);
    if (def.innerType) current = def.innerType;
    else if (def.type === 'pipe') current = def.in;
    else break;
  }
  const merged: Meta = {};
  for (const level of levels.reverse()) {
    for (const [key, value] of Object.entries(level))
      if (value !== '' && value !== undefined) Object.assign(merged, { [key]: value });
  }
  return merged;
}

function typeOf(schema: unknown): string {
  const docType = metaOf(schema).docType;
  if (docType) return docType;
  const inner = unwrapSchema(schema);
  const def = defOf(inner);
  switch (def.type) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'boolean';
    case 'number':
      return numberType(def);
    case 'enum':
      return Object.values(def.entries as Record<string, string>)
        .map((v) => `\`${v}\``)
        .join(' | ');
    case 'literal':
      return (def.values as unknown[]).map((v) => `\`${String(v)}\``).join(' | ');
    case 'array':
      return `list of ${typeOf(def.element)}`;
    case 'object':
      return 'mapping';
    case 'record':
      return `mapping: ${typeOf(def.keyType)} → ${typeOf(def.valueType)}`;
    case 'union':
      return (def.options as unknown[]).map(typeOf).join(' or ');
    default:
      return def.type;
  }
}

function numberType(def: Def): string {
  let integer = false;
  let min: number | undefined;
  let max: number | undefined;
  for (const check of (def.checks ?? []) as { _zod: { def: Record<string, unknown> } }[]) {
    const c = check._zod.def;
    if (c.check === 'number_format' && c.format === 'safeint') integer = true;
    if (c.check === 'greater_than') min = c.value as number;
    if (c.check === 'less_than') max = c.value as number;
  }
  const bounds =
    min !== undefined && max !== undefined ? ` ${min}–${max}` : min !== undefined ? ` ≥ ${min}` : '';
  return (integer ? 'integer' : 'number') + bounds;
}

function defaultOf(schema: unknown): string {
  const meta = metaOf(schema);
  if (meta.docDefault) return `\`${meta.docDefault}\``;
  let current = schema;
  for (;;) {
    const def = defOf(current);
    if (def.type === 'default' || def.type === 'prefault') {
      const value = def.defaultValue;
      if (
        typeof value === 'object' &&
        value !== null &&
        !Array.isArray(value) &&
        Object.keys(value).length === 0
      ) {
        return defOf(unwrapSchema(def.innerType)).type === 'object' ? 'see below' : '`{}`';
      }
      return `\`${typeof value === 'string' ? value : JSON.stringify(value)}\``;
    }
    if (def.type === 'optional') return 'optional';
    if (!def.innerType) return '**required**';
    current = def.innerType;
  }
}

const cell = (text: string) =>
  text.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\n/g, ' ');

const TOP = '';

/** Sections (nested mappings) rendered after their parent table. */
function renderObject(title: string, schema: unknown, description: string | undefined, out: string[]): void {
  const shape = defOf(unwrapSchema(schema)).shape as Record<string, unknown>;
  out.push(title === TOP ? '## Top level' : `## \`${title}\``, '');
  if (description) out.push(description, '');
  out.push('| Key | Type | Default | Description |', '|---|---|---|---|');
  const nested: [string, unknown, string | undefined][] = [];
  for (const [key, field] of Object.entries(shape)) {
    const inner = defOf(unwrapSchema(field));
    const meta = metaOf(field);
    let type = typeOf(field);
    if (inner.type === 'object') {
      nested.push([title === TOP ? key : `${title}.${key}`, field, meta.description]);
      type = `mapping, see [\`${nested.at(-1)![0]}\`](#${anchor(nested.at(-1)![0])})`;
    } else if (inner.type === 'array' && defOf(unwrapSchema(inner.element)).type === 'object') {
      const name = `${title === TOP ? key : `${title}.${key}`}[]`;
      nested.push([name, inner.element, meta.description]);
      type = `list of mappings, see [\`${name}\`](#${anchor(name)})`;
    }
    out.push(`| \`${key}\` | ${cell(type)} | ${cell(defaultOf(field))} | ${cell(meta.description ?? '')} |`);
  }
  out.push('');
  for (const [name, field, desc] of nested) renderObject(name, field, desc, out);
}

/** GitHub-style heading anchor of "`network.range`". */
const anchor = (name: string) => name.toLowerCase().replace(/[^a-z0-9 -]/g, '');

const RULES = [
  'BMC addresses are inside `ipmi.subnet`; fixed node IPs, `network.controller`, `network.gateway` and the range are inside `network.subnet`; none of them is the network or broadcast address.',
  '`ipmi.subnet` and `network.subnet` do not overlap.',
  'Fixed node IPs, the controller and the gateway are outside the dynamic range; no node IP is the controller or gateway address.',
  'Node names, MACs, fixed IPs and BMC address + port pairs are unique.',
  'The range holds one address per node without a fixed `ip` or without a `mac` (its first lease comes from the range); without a node list, one per possible BMC in `ipmi.subnet` (or `discovery.maxNodes`).',
  'Discovery (no node list) needs `ipmi.subnet` of /16 or smaller.',
  'One install holds as many nodes as fit in one Temporal payload (its results and table travel through every continue-as-new and the final report): about 3,000 listed nodes. A larger node list, or a discovery that may find more BMCs (`ipmi.subnet` without `discovery.maxNodes`), is rejected with the most that fit; split the cluster into several installs (they power on one after another).',
  '`dhcpMode: proxy` takes no `range` and no fixed node IPs (the existing DHCP server assigns addresses); `authoritative` requires a `range`. With `proxy`, every node is listed with its `mac` (pxeflow answers reserved MACs only; no discovery) — see [proxy-dhcp.md](proxy-dhcp.md).',
  'Exactly one of `ipmi.passwordEnv` / `ipmi.passwordFile`; at most one of `kickstart.rootPasswordHashEnv` / `rootPasswordHashFile`. A key that looks like a plain secret (`password:`, `rootPasswordHash:`, `token:`…) anywhere is rejected.',
  'Unknown keys are rejected (with a did-you-mean).',
];

export function renderConfigReference(): string {
  const out: string[] = [
    '# Cluster spec reference',
    '',
    '<!-- Generated by `node --import tsx config/reference.ts > docs/config-reference.md`; do not edit by hand. -->',
    '',
    'A cluster spec is a YAML or JSON file (`pxeflow init` writes a commented one; see',
    '`config/examples/cluster.example.yaml`). pxeflow validates it completely before anything starts and reports',
    'every problem at once, each with its path (`nodes[3].mac`), the reason and, for files, line and column.',
    '',
    '**Durations** are written like `20m`, `90s`, `1h30m`, `500ms` or `1.5h` (units d, h, m, s, ms, largest first);',
    'a bare number means milliseconds. **MAC addresses** may be written `aa:bb:cc:dd:ee:ff`, `AA-BB-CC-DD-EE-FF`,',
    '`aabb.ccdd.eeff` or `aabbccddeeff`. **Secrets** are never written in the spec, only referenced (an environment',
    'variable name or a file path on the controller).',
    '',
    'The validated spec is normalised — durations in milliseconds, MACs lower-case with colons, every default',
    'filled in, node `bmcPort` / `osDisk` / `bootMode` resolved — and is itself a valid spec: it is the JSON input',
    'of the `ClusterInstall` workflow (`temporal workflow start --input-file`).',
    '',
    '## Cross-field rules',
    '',
    ...RULES.map((rule) => `- ${rule}`),
    '',
  ];
  renderObject(TOP, clusterSpecObject, undefined, out);
  return `${out.join('\n').trimEnd()}\n`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.stdout.write(renderConfigReference());
}
