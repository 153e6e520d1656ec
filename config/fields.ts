// Field-level building blocks for the cluster spec schema: each validates one value and carries the
// description the config reference (config/reference.ts) prints. Pure and sandbox-safe (zod + config/*).
import { z } from 'zod';
import { durationProblem, parseDuration } from './duration.ts';
import { cidrProblem, ipv4Problem, parseCidr } from './ipv4.ts';
import { macProblem, normaliseMac } from './mac.ts';

/** Extra metadata the reference generator reads (besides `description`). */
export interface FieldDoc {
  /** how the type is shown in the reference, e.g. "IPv4 address", "duration" */
  docType?: string;
  /** how the default is shown, when it differs from the stored default value */
  docDefault?: string;
}

export function doc<T extends z.ZodType>(schema: T, description: string, extra: FieldDoc = {}): T {
  return schema.meta({ description, ...extra }) as T;
}

/** A value that must be a string; numbers get a YAML quoting hint (7.10 would read as 7.1). */
export function text() {
  return z.string({
    error: (issue) =>
      typeof issue.input === 'number' || typeof issue.input === 'boolean'
        ? `expected a string, got a ${typeof issue.input} (in YAML, quote values that look like numbers or booleans)`
        : undefined,
  });
}

export function pattern(regex: RegExp, message: string) {
  return text().regex(regex, { error: message });
}

export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const dnsLabel = () =>
  pattern(
    DNS_LABEL,
    'must be a DNS label: 1-63 lower-case letters, digits or "-", not starting or ending with "-"',
  );

export const domainName = () =>
  pattern(
    /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/,
    'must be a lower-case DNS domain like stor.example',
  );

export const ipv4 = () =>
  doc(
    text().superRefine((value, ctx) => {
      const problem = ipv4Problem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    }),
    '',
    { docType: 'IPv4 address' },
  );

/** A CIDR block with zero host bits and a prefix in [minPrefix, maxPrefix]. */
export const cidr = (minPrefix: number, maxPrefix: number) =>
  doc(
    text().superRefine((value, ctx) => {
      const problem = cidrProblem(value);
      if (problem) return ctx.addIssue({ code: 'custom', message: problem });
      const { prefix } = parseCidr(value)!;
      if (prefix < minPrefix || prefix > maxPrefix) {
        ctx.addIssue({
          code: 'custom',
          message: `prefix /${prefix} is outside /${minPrefix}../${maxPrefix}`,
        });
      }
    }),
    '',
    { docType: `IPv4 CIDR (/${minPrefix}../${maxPrefix})` },
  );

export const mac = () =>
  doc(
    text().transform((value, ctx) => {
      const problem = macProblem(value);
      if (problem) {
        ctx.addIssue({ code: 'custom', message: problem });
        return z.NEVER;
      }
      return normaliseMac(value)!;
    }),
    '',
    { docType: 'MAC address' },
  );

export const port = () => z.number().int().min(1).max(65535);

export const envName = () =>
  doc(
    pattern(
      /^[A-Za-z_][A-Za-z0-9_]*$/,
      'must be the NAME of an environment variable (letters, digits, "_"), not the secret itself',
    ),
    '',
    { docType: 'environment variable name' },
  );

export const absolutePath = () =>
  doc(
    text().refine((value) => value.startsWith('/') && !value.includes('\0') && !/[\r\n]/.test(value), {
      error: 'must be an absolute path (it is resolved on the controller host)',
    }),
    '',
    { docType: 'absolute path' },
  );

export const diskPath = () =>
  doc(
    pattern(
      /^\/dev\/[A-Za-z0-9._/:+-]+$/,
      'must be a block device path like /dev/sda or /dev/disk/by-path/…',
    ),
    '',
    {
      docType: 'device path',
    },
  );

/**
 * A duration: a string like "20m", "90s", "1h30m", "500ms", or a number of milliseconds (the normalised form,
 * so a parsed spec parses again). Output: milliseconds. `minMs` catches `install: 20` (20 ms, meant minutes).
 */
export function duration(defaultText: string, minMs: number) {
  const schema = z
    .union([z.string(), z.number()], {
      error: 'expected a duration like "20m", "90s" or "1h30m" (or a number of milliseconds)',
    })
    .transform((value, ctx) => {
      let ms: number;
      if (typeof value === 'number') {
        if (!Number.isSafeInteger(value) || value < 0) {
          ctx.addIssue({
            code: 'custom',
            message: 'a number duration must be a whole number of milliseconds >= 0',
          });
          return z.NEVER;
        }
        ms = value;
      } else {
        const problem = durationProblem(value);
        if (problem) {
          ctx.addIssue({ code: 'custom', message: problem });
          return z.NEVER;
        }
        ms = parseDuration(value);
      }
      if (ms < minMs) {
        const hint =
          typeof value === 'number' ? `; a bare number means milliseconds — did you mean "${value}m"?` : '';
        ctx.addIssue({ code: 'custom', message: `${ms} ms is below the minimum of ${minMs} ms${hint}` });
        return z.NEVER;
      }
      return ms;
    });
  return doc(schema.prefault(defaultText), '', { docType: 'duration', docDefault: defaultText });
}

export const bootMode = () => z.enum(['auto', 'bios', 'uefi']);
