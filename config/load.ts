// Node side of the spec: read a YAML/JSON file, validate it, point errors at lines; resolve secret references.
// Never import this from workflow code (it uses fs).
import { readFileSync, statSync } from 'node:fs';
import { type Document, isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import {
  type ClusterSpec,
  type SecretRef,
  SpecError,
  type SpecIssue,
  safeParseClusterSpec,
} from './schema.ts';
import { installSizeProblem } from './capacity.ts';
import { unsupportedProblems } from './unsupported.ts';

/** Larger than any real spec (2,000 nodes ≈ 300 KB); stops a wrong path (an ISO…) from being slurped. */
const MAX_SPEC_BYTES = 16 * 1024 * 1024;

export interface LoadedSpec {
  spec: ClusterSpec;
  /** the document as written (plain JSON-compatible data), before validation and defaults */
  raw: unknown;
}

/**
 * Reads and validates a cluster spec file. YAML and JSON are both read with the YAML 1.2 parser (JSON is a
 * subset of it), so every syntax or validation error carries a line and column. Throws SpecError.
 */
export function loadClusterSpec(path: string): LoadedSpec {
  const text = readSpecFile(path);
  const { raw, doc, lineCounter } = parseSpecText(text, path);
  const result = safeParseClusterSpec(raw);
  // valid, but more than one install can carry, or something pxeflow cannot do yet
  const refused = result.success
    ? [
        installSizeProblem(result.spec, JSON.stringify(raw).length),
        ...unsupportedProblems(result.spec),
      ].filter((issue) => issue !== undefined)
    : [];
  if (result.success && refused.length === 0) return { spec: result.spec, raw };
  const issues = (result.success ? refused : result.error.issues).map((issue) => ({
    ...issue,
    ...positionOf(doc, lineCounter, issue.path),
  }));
  throw new SpecError(issues, path);
}

/** Parses spec text (YAML or JSON) to plain data; syntax errors become a SpecError with line and column. */
export function parseSpecText(text: string, source?: string) {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const issues: SpecIssue[] = doc.errors.map((error) => ({
      path: '',
      // prettyErrors appends " at line L, column C:" and a source excerpt; keep the plain reason.
      message: `syntax error: ${error.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '')}`,
      ...(error.linePos ? { line: error.linePos[0].line, column: error.linePos[0].col } : {}),
    }));
    throw new SpecError(issues, source);
  }
  if (doc.contents === null) throw new SpecError([{ path: '', message: 'the file is empty' }], source);
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  return { raw, doc, lineCounter };
}

function readSpecFile(path: string): string {
  try {
    const stats = statSync(path);
    if (!stats.isFile()) throw new SpecError([{ path: '', message: `${path} is not a regular file` }], path);
    if (stats.size > MAX_SPEC_BYTES) {
      throw new SpecError(
        [{ path: '', message: `${path} is ${stats.size} bytes; a cluster spec is YAML or JSON text` }],
        path,
      );
    }
    return readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof SpecError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String(error);
    throw new SpecError([{ path: '', message: `cannot read ${path}: ${reason}` }], path);
  }
}

const SEGMENT = /([A-Za-z_$][A-Za-z0-9_$-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]|\./g;

/** "nodes[3].mac" → ["nodes", 3, "mac"] (inverse of formatPath). */
export function parsePath(path: string): (string | number)[] {
  const out: (string | number)[] = [];
  for (const match of path.matchAll(SEGMENT)) {
    if (match[1] !== undefined) out.push(match[1]);
    else if (match[2] !== undefined) out.push(Number(match[2]));
    else if (match[3] !== undefined) out.push(JSON.parse(match[3]) as string);
  }
  return out;
}

/**
 * Where a spec path sits in the source: the key of the deepest existing entry (for a missing key, its parent
 * mapping; for an unknown key, that key).
 */
function positionOf(
  doc: Document,
  lineCounter: LineCounter,
  path: string,
): { line?: number; column?: number } {
  let node: unknown = doc.contents;
  let offset = (doc.contents as Node | null)?.range?.[0];
  for (const segment of parsePath(path)) {
    if (isMap(node)) {
      const pair = node.items.find(
        (item) => isScalar(item.key) && String(item.key.value) === String(segment),
      );
      if (!pair) break;
      offset = (pair.key as Node).range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number' && segment < node.items.length) {
      node = node.items[segment];
      offset = (node as Node | null)?.range?.[0] ?? offset;
    } else {
      break;
    }
  }
  if (offset === undefined) return {};
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}

/**
 * Reads a secret by reference: the environment variable `ref.env` or the file `ref.file` (one trailing newline
 * removed). `what` names the secret in errors ("BMC password"); errors name the reference, never the value.
 */
export function resolveSecretRef(ref: SecretRef, what: string, env: NodeJS.ProcessEnv = process.env): string {
  if ((ref.env === undefined) === (ref.file === undefined)) {
    throw new Error(`${what}: give exactly one of an environment variable or a file`);
  }
  if (ref.env !== undefined) {
    const value = env[ref.env];
    if (value === undefined) throw new Error(`${what}: environment variable ${ref.env} is not set`);
    if (value === '') throw new Error(`${what}: environment variable ${ref.env} is empty`);
    return value;
  }
  const file = ref.file!;
  let content: string;
  try {
    content = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? 'unreadable');
    throw new Error(`${what}: cannot read file ${file}: ${reason}`);
  }
  const value = content.replace(/\r?\n$/, '');
  if (value === '') throw new Error(`${what}: file ${file} is empty`);
  return value;
}
