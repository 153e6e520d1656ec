// Random junk must never make the parser throw anything but SpecError, and valid specs must round-trip.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseClusterSpec, SpecError, safeParseClusterSpec } from '../../config/schema.ts';
import { validSpec } from './fixtures.ts';

const SPEC_KEYS = [
  'apiVersion',
  'name',
  'iso',
  'ipmi',
  'network',
  'nodes',
  'power',
  'timeouts',
  'retry',
  'kickstart',
  'bootMode',
  'discovery',
  'subnet',
  'range',
  'start',
  'end',
  'mac',
  'ip',
  'bmc',
  'install',
  'password',
  'variables',
];

/** Junk that looks a bit like a spec, so the parser gets past the first type check. */
const junk = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    fc.anything(),
    fc.constantFrom('10.20.0.1', '10.20.0.0/24', '20m', '52:54:00:00:00:01', 'pxeflow/v1', '', '__proto__'),
    fc.integer(),
    fc.double(),
    tie('object'),
    fc.array(tie('value'), { maxLength: 4 }),
  ),
  object: fc.dictionary(fc.oneof(fc.constantFrom(...SPEC_KEYS), fc.string()), tie('value'), { maxKeys: 6 }),
}));

function assertOnlySpecError(raw: unknown): void {
  try {
    parseClusterSpec(raw);
  } catch (error) {
    if (!(error instanceof SpecError)) throw error;
    assert.ok(error.issues.length > 0);
    for (const issue of error.issues) assert.equal(typeof issue.path, 'string');
  }
}

test('random junk never throws anything but SpecError', () => {
  fc.assert(fc.property(junk.value, assertOnlySpecError), { numRuns: 2000 });
});

test('a valid spec with random sections replaced by junk only ever fails with SpecError', () => {
  const sections = [
    'iso',
    'ipmi',
    'network',
    'nodes',
    'power',
    'timeouts',
    'retry',
    'kickstart',
    'discovery',
  ];
  fc.assert(
    fc.property(
      fc.constantFrom(...sections),
      junk.value,
      fc.constantFrom(...SPEC_KEYS),
      junk.value,
      (section, a, key, b) => {
        const raw = validSpec();
        raw[section] = a;
        assertOnlySpecError(raw);
        const nested = validSpec();
        nested.network[key] = b;
        nested.nodes[0][key] = b;
        assertOnlySpecError(nested);
      },
    ),
    { numRuns: 1000 },
  );
});

test('cyclic input is an error, not a hang or a crash', () => {
  const raw = validSpec();
  raw.kickstart = { variables: {} };
  raw.kickstart.variables.self = raw;
  raw.extra = raw;
  const result = safeParseClusterSpec(raw);
  assert.equal(result.success, false);
});

test('valid generated specs parse, and the normalised spec parses to itself', () => {
  const octet = fc.integer({ min: 1, max: 250 });
  fc.assert(
    fc.property(
      fc.uniqueArray(octet, { minLength: 1, maxLength: 20 }),
      fc.constantFrom('20m', '1h', '90s', '1h30m', 600_000),
      fc.boolean(),
      (hosts, install, withMac) => {
        const raw = validSpec();
        raw.timeouts = { install };
        raw.nodes = hosts.map((h, i) => ({
          name: `n${h}`,
          bmc: `10.10.0.${h}`,
          ...(withMac
            ? {
                mac: `52:54:00:00:${(i >> 8).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`,
              }
            : {}),
          ...(h < 100 && h > 1 ? { ip: `10.20.0.${h}` } : {}),
        }));
        const spec = parseClusterSpec(raw);
        assert.deepEqual(parseClusterSpec(JSON.parse(JSON.stringify(spec))), spec);
      },
    ),
    { numRuns: 300 },
  );
});
