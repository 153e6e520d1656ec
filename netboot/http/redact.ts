// Keeps per-node tokens out of log lines: URLs lose their token segment, messages lose long hex runs.
import { stdSerializers } from 'pino';

const TOKEN_SEGMENT = /(\/(?:ipxe|ks|status)\/[^/?#]*\/)[^/?#]*/g;
const LONG_HEX = /[0-9a-fA-F]{32,}/g;

export function redactUrl(url: string): string {
  return redactText(url.replace(TOKEN_SEGMENT, '$1[token]'));
}

export function redactText(text: string): string {
  return text.replace(LONG_HEX, '[redacted]');
}

/** pino serializers for the HTTP server's logger. */
export const redactingSerializers = {
  req(req: { method?: string; url?: string; ip?: string }) {
    return { method: req.method, url: redactUrl(req.url ?? ''), remoteAddress: req.ip };
  },
  err(err: Error) {
    const out = stdSerializers.err(err) as unknown as Record<string, unknown>;
    for (const key of ['message', 'stack'] as const) {
      if (typeof out[key] === 'string') out[key] = redactUrl(out[key] as string);
    }
    return out;
  },
};
