// Property: whatever path, headers and body arrive, the HTTP service answers without crashing, never with
// a 5xx other than the documented 503, never with a file from outside the image, never echoing a token.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { type Fixture, startFixture, VERSION } from './fixture.ts';

interface Answer {
  status: number;
  body: string;
}

function send(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Answer | undefined> {
  return new Promise((resolve, reject) => {
    let req: ReturnType<typeof request>;
    try {
      // an explicit Content-Length: node sends OPTIONS/DELETE bodies unframed otherwise
      const framed =
        body === undefined ? headers : { ...headers, 'content-length': String(Buffer.byteLength(body)) };
      req = request(`${base}${path}`, { method, headers: framed, agent: false, timeout: 10_000 });
    } catch {
      resolve(undefined); // node's client refused to build it (bad characters): nothing was sent
      return;
    }
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('latin1') }),
      );
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout: ${method} ${path}`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      // the server may answer (403/413) and close before a large body is fully written
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') resolve(undefined);
      else reject(err);
    });
    if (body !== undefined) req.write(body);
    req.end();
  });
}

describe('HTTP service under random input (fast-check)', () => {
  let f: Fixture;
  before(async () => {
    f = await startFixture();
  });
  after(async () => {
    await f?.close();
  });

  it('never crashes, never 5xx except 503, never serves outside the image', async () => {
    const tokens = f.machines.list().map((m) => m.token);
    const segment = fc.oneof(
      fc.constantFrom(
        '..',
        '.',
        '',
        '%2e%2e',
        '%2E%2e',
        '%2F',
        '%2f..',
        '%00',
        '%zz',
        '%',
        '..%5c',
        'node1',
        'node2',
        'nobody',
      ),
      fc.constantFrom(
        VERSION,
        'images',
        'pxeboot',
        'vmlinuz',
        'initrd.img',
        'Packages',
        'repodata',
        '.treeinfo',
        'secret.txt',
      ),
      fc.constantFrom(...tokens),
      fc.string({ maxLength: 24 }).map(encodeURIComponent),
      fc.string({ maxLength: 12 }),
    );
    const path = fc.oneof(
      fc.array(segment, { maxLength: 7 }).map((s) => `/${s.join('/')}`),
      fc
        .tuple(
          fc.constantFrom('ipxe', 'ks', 'status', 'image', 'healthz'),
          fc.array(segment, { minLength: 0, maxLength: 5 }),
        )
        .map(([root, rest]) => `/${[root, ...rest].join('/')}`),
      fc
        .tuple(fc.constantFrom('/image/', '/ks/', '/status/'), fc.string({ maxLength: 60 }))
        .map(([a, b]) => a + b),
    );
    const headerValue = fc.oneof(
      fc.constantFrom(
        'bytes=0-10',
        'bytes=-5',
        'bytes=5-1',
        'bytes=0-0,2-3',
        'bytes=999999999-',
        'bytes=',
        'items=0-1',
      ),
      fc.constantFrom(
        'application/json',
        'text/plain',
        'application/json; charset=utf-8',
        '*',
        '"x"',
        'W/"y"',
      ),
      fc.constantFrom('Thu, 01 Jan 1970 00:00:00 GMT', 'Fri, 31 Dec 9999 23:59:59 GMT', 'not a date'),
      fc.string({ maxLength: 40 }),
    );
    const headers = fc.record(
      {
        range: headerValue,
        'if-none-match': headerValue,
        'if-modified-since': headerValue,
        'if-range': headerValue,
        'content-type': headerValue,
        accept: headerValue,
      },
      { requiredKeys: [] },
    );
    const body = fc.oneof(
      fc.constant(undefined),
      fc.string({ maxLength: 300 }),
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc
        .record({
          outcome: fc.constantFrom('success', 'failure', 'x'),
          detail: fc.string({ maxLength: 3000 }),
        })
        .map((v) => JSON.stringify(v)),
      fc.constant('<40 KB>'), // expanded below; keeps counterexamples readable
    );
    const method = fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH');

    let answered = 0;
    await fc.assert(
      fc.asyncProperty(method, path, headers, body, async (m, p, h, b) => {
        const answer = await send(
          f.server.url,
          m,
          p,
          h as Record<string, string>,
          m === 'GET' || m === 'HEAD' ? undefined : b,
        );
        if (!answer) return;
        answered++;
        assert.ok(
          answer.status < 500 || answer.status === 503,
          `${m} ${p} ${JSON.stringify(h)} → ${answer.status} ${answer.body}`,
        );
        assert.doesNotMatch(answer.body, /OUTSIDE-THE-IMAGE/, `${m} ${p}`);
      }),
      { numRuns: 400 },
    );
    assert.ok(answered > 300, `only ${answered} requests could be sent`);
    const health = await send(f.server.url, 'GET', '/healthz', {});
    assert.deepEqual(health, { status: 200, body: '{"ok":true}' });
    for (const line of f.logLines)
      for (const t of tokens) assert.ok(!line.includes(t), `token in log: ${line}`);
  });
});
