import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parse, parseDocument } from 'yaml';
import { generateClusterSpec } from '../../config/init.ts';
import { parseClusterSpec, SpecError } from '../../config/schema.ts';

function thrownBy(fn: () => unknown): SpecError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof SpecError, `expected SpecError, got ${error}`);
    return error;
  }
  assert.fail('expected a SpecError');
}

describe('generateClusterSpec', () => {
  const valueSets = [
    { ipmiSubnet: '10.10.0.0/24', ipSubnet: '10.20.0.0/24', isoVersion: 'storageos-7.9' },
    {
      ipmiSubnet: '172.16.0.0/16',
      ipSubnet: '10.20.0.0/16',
      isoVersion: 'rhel-9.4',
      name: 'big',
      interface: 'eno2',
    },
    {
      ipmiSubnet: '192.168.1.0/25',
      ipSubnet: '192.168.1.128/25',
      isoVersion: '7.10',
      credentialsEnv: 'BMC_PW',
    },
    { ipmiSubnet: '10.0.0.0/16', ipSubnet: '10.1.0.0/29', isoVersion: 'tiny', username: 'ADMIN' },
    { ipmiSubnet: '10.9.0.0/28', ipSubnet: '11.0.0.0/8', isoVersion: 'x_1+2' },
  ];

  for (const values of valueSets) {
    test(`round-trips ${values.ipmiSubnet} + ${values.ipSubnet}`, () => {
      const text = generateClusterSpec(values);
      const doc = parseDocument(text);
      assert.equal(doc.errors.length, 0);
      const spec = parseClusterSpec(parse(text));
      assert.equal(spec.ipmi.subnet, values.ipmiSubnet);
      assert.equal(spec.network.subnet, values.ipSubnet);
      assert.equal(spec.iso.version, values.isoVersion);
      assert.equal(spec.ipmi.passwordEnv, values.credentialsEnv ?? 'PXEFLOW_BMC_PASSWORD');
      assert.equal(spec.name, values.name ?? 'cluster');
      assert.equal(spec.network.interface, values.interface ?? 'br-prov');
      assert.equal(spec.timeouts.install, 20 * 60_000);
      assert.equal(spec.nodes, undefined);
      assert.match(text, /^# /m, 'the file is commented');
    });
  }

  test('derived values: controller is the first host, range is the upper half', () => {
    const spec = parseClusterSpec(parse(generateClusterSpec(valueSets[0])));
    assert.equal(spec.network.controller, '10.20.0.1');
    assert.deepEqual(spec.network.range, { start: '10.20.0.128', end: '10.20.0.254' });
    assert.deepEqual(spec.discovery, { maxNodes: 127 });
    const slash25 = parseClusterSpec(parse(generateClusterSpec(valueSets[2])));
    assert.equal(slash25.network.controller, '192.168.1.129');
    assert.deepEqual(slash25.network.range, { start: '192.168.1.192', end: '192.168.1.254' });
    const slash16 = parseClusterSpec(parse(generateClusterSpec(valueSets[1])));
    assert.deepEqual(slash16.network.range, { start: '10.20.128.0', end: '10.20.255.254' });
  });

  test('the version stays a string even when it looks like a number', () => {
    assert.equal(parseClusterSpec(parse(generateClusterSpec(valueSets[2]))).iso.version, '7.10');
  });

  test('bad inputs are clear errors named by option', () => {
    const notCidr = thrownBy(() =>
      generateClusterSpec({ ipmiSubnet: '10.10.0.0', ipSubnet: 'x', isoVersion: 'v' }),
    );
    assert.deepEqual(
      notCidr.issues.map((i) => i.path),
      ['ipmiSubnet', 'ipSubnet'],
    );
    const same = thrownBy(() =>
      generateClusterSpec({ ipmiSubnet: '10.10.0.0/24', ipSubnet: '10.10.0.0/24', isoVersion: 'v' }),
    );
    assert.match(same.message, /ipSubnet: .*overlaps the IPMI subnet/);
    const hostBits = thrownBy(() =>
      generateClusterSpec({ ipmiSubnet: '10.10.0.5/24', ipSubnet: '10.20.0.0/24', isoVersion: 'v' }),
    );
    assert.match(hostBits.message, /ipmiSubnet: .*host bits set; the network is 10\.10\.0\.0\/24/);
    const tooSmall = thrownBy(() =>
      generateClusterSpec({ ipmiSubnet: '10.10.0.0/24', ipSubnet: '10.20.0.0/30', isoVersion: 'v' }),
    );
    assert.match(tooSmall.message, /ipSubnet: .*\/29 or larger/);
    const badValues = thrownBy(() =>
      generateClusterSpec({
        ipmiSubnet: '10.10.0.0/24',
        ipSubnet: '10.20.0.0/24',
        isoVersion: 'has space',
        name: 'Upper',
        credentialsEnv: 'not a name',
      }),
    );
    assert.deepEqual(badValues.issues.map((i) => i.path).sort(), ['credentialsEnv', 'isoVersion', 'name']);
    const hugeDiscovery = thrownBy(() =>
      generateClusterSpec({ ipmiSubnet: '10.0.0.0/8', ipSubnet: '192.168.0.0/24', isoVersion: 'v' }),
    );
    assert.match(hugeDiscovery.message, /ipmiSubnet: .*larger than \/16/);
  });

  test('hostile values cannot break out of their YAML scalar', () => {
    const error = thrownBy(() =>
      generateClusterSpec({
        ipmiSubnet: '10.10.0.0/24',
        ipSubnet: '10.20.0.0/24',
        isoVersion: 'v"\nbootMode: bios\n#',
      }),
    );
    assert.deepEqual(
      error.issues.map((i) => i.path),
      ['isoVersion'],
    );
  });
});
