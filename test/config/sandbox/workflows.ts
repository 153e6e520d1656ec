// A workflow that parses a spec inside the Temporal sandbox (used by test/config/sandbox.test.ts).
import { safeParseClusterSpec } from '../../../config/schema.ts';

export async function parseSpecInSandbox(raw: unknown) {
  const result = safeParseClusterSpec(raw);
  return result.success ? { ok: true, spec: result.spec } : { ok: false, issues: result.error.issues };
}
