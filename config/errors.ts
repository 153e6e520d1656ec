// Spec errors: every problem as { path: "nodes[3].mac", message }, all at once. Pure (workflow-sandbox safe).
import type { z } from 'zod';
import { suggestKey } from './suggest.ts';

export interface SpecIssue {
  /** where in the spec, e.g. "nodes[3].mac"; "" for the document itself */
  path: string;
  message: string;
  /** 1-based position in the source file, when the spec was loaded from one */
  line?: number;
  column?: number;
}

export type SafeParseResult<T> = { success: true; spec: T } | { success: false; error: SpecError };

export class SpecError extends Error {
  readonly issues: SpecIssue[];
  /** the file the spec came from, when known */
  readonly source?: string;

  constructor(issues: SpecIssue[], source?: string) {
    const list = issues.length > 0 ? issues : [{ path: '', message: 'invalid cluster spec' }];
    super(formatIssues(list, source));
    this.name = 'SpecError';
    this.issues = list;
    if (source !== undefined) this.source = source;
  }
}

function formatIssues(issues: SpecIssue[], source?: string): string {
  const head = `invalid cluster spec${source ? ` ${source}` : ''}: ${issues.length} problem${issues.length === 1 ? '' : 's'}`;
  const lines = issues.map((issue) => {
    const where = issue.line !== undefined ? `line ${issue.line}, column ${issue.column ?? 1}: ` : '';
    return `  - ${where}${issue.path || '(document)'}: ${issue.message}`;
  });
  return [head, ...lines].join('\n');
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

/** ["nodes", 3, "mac"] → "nodes[3].mac"; odd keys are quoted: variables["my key"]. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && IDENTIFIER.test(segment))
      out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}

/** Turns zod issues into SpecIssues; unknown keys become one issue each, with a did-you-mean. */
export function toSpecIssues(issues: readonly z.core.$ZodIssue[], root: z.ZodType): SpecIssue[] {
  const out: SpecIssue[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      const known = objectKeysAt(root, issue.path);
      for (const key of issue.keys) {
        const suggestion = suggestKey(key, known);
        const hint = suggestion
          ? ` (did you mean "${suggestion}"?)`
          : known.length
            ? ` (known keys: ${known.join(', ')})`
            : '';
        out.push({ path: formatPath([...issue.path, key]), message: `unknown key${hint}` });
      }
    } else {
      out.push({ path: formatPath(issue.path), message: issue.message });
    }
  }
  return out;
}

type Def = { type: string; [key: string]: unknown };
const defOf = (schema: unknown): Def => (schema as { _zod: { def: Def } })._zod.def;

/** Strips optional/default/pipe wrappers down to the schema that does the work. */
export function unwrapSchema(schema: unknown): unknown {
  let current = schema;
  for (;;) {
    const def = defOf(current);
    if (
      ['optional', 'nullable', 'default', 'prefault', 'readonly', 'nonoptional', 'catch'].includes(def.type)
    ) {
      current = def.innerType;
    } else if (def.type === 'pipe') {
      current = def.in;
    } else {
      return current;
    }
  }
}

/** The keys of the object schema found at `path` (array indexes step into the element schema). */
export function objectKeysAt(root: unknown, path: readonly PropertyKey[]): string[] {
  let current = unwrapSchema(root);
  for (const segment of path) {
    const def = defOf(current);
    if (def.type === 'object' && typeof segment === 'string') {
      const shape = def.shape as Record<string, unknown>;
      if (!(segment in shape)) return [];
      current = unwrapSchema(shape[segment]);
    } else if (def.type === 'array' && typeof segment === 'number') {
      current = unwrapSchema(def.element);
    } else {
      return [];
    }
  }
  const def = defOf(current);
  return def.type === 'object' ? Object.keys(def.shape as Record<string, unknown>) : [];
}

// Keys that are references to secrets, allowed by name.
const SECRET_REFERENCES = new Set([
  'passwordEnv',
  'passwordFile',
  'rootPasswordHashEnv',
  'rootPasswordHashFile',
]);
const SECRET_LOOKING = /password|passwd|^pass$|^pwd$|secret|^token$|apikey|api_key/i;

/**
 * Finds keys that look like a secret written in plain text (`password: hunter2`, `rootPasswordHash: $6$…`)
 * anywhere in the raw spec. These are reported with how to reference the secret instead — and never echoed.
 */
export function findSecretFields(raw: unknown): SpecIssue[] {
  const issues: SpecIssue[] = [];
  const seen = new Set<object>();
  const visit = (value: unknown, path: PropertyKey[]): void => {
    if (typeof value !== 'object' || value === null || seen.has(value) || path.length > 32) return;
    seen.add(value);
    if (Array.isArray(value)) {
      for (const [index, item] of value.entries()) visit(item, [...path, index]);
      return;
    }
    for (const key of Object.keys(value)) {
      const child = [...path, key];
      if (!SECRET_REFERENCES.has(key) && SECRET_LOOKING.test(key)) {
        issues.push({ path: formatPath(child), message: secretAdvice(path) });
      } else {
        visit((value as Record<string, unknown>)[key], child);
      }
    }
  };
  visit(raw, []);
  return issues;
}

function secretAdvice(parent: readonly PropertyKey[]): string {
  const base = 'secrets are never written in the spec (it ends up in files, logs and workflow history)';
  if (parent[0] === 'ipmi')
    return `${base}: put the BMC password in an environment variable or a file and set ipmi.passwordEnv or ipmi.passwordFile`;
  if (parent[0] === 'kickstart') {
    return `${base}: put the root password crypt(3) hash in an environment variable or a file and set kickstart.rootPasswordHashEnv or kickstart.rootPasswordHashFile`;
  }
  return `${base}: reference them with ipmi.passwordEnv / ipmi.passwordFile (BMC) or kickstart.rootPasswordHashEnv / rootPasswordHashFile (root)`;
}
