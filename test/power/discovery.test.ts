// BMC discovery against 20 real ipmi_sim BMCs on a loopback /24, plus one outside it that must not be found.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { type BmcLab, randomLoopbackSubnet, startBmcs } from '../../lab/bmc/index.ts';
import { discoverBmcs, scanForBmcs } from '../../power/index.ts';

describe('BMC discovery', () => {
  let lab: BmcLab;
  let outsider: BmcLab;
  // Addresses spread over the subnet (not just .1–.20), so sorting and enumeration are really exercised.
  const hostNumbers = [2, 3, 5, 9, 10, 11, 17, 33, 64, 65, 99, 100, 101, 128, 129, 150, 200, 201, 250, 254];

  before(async () => {
    const subnet = randomLoopbackSubnet();
    const prefix = subnet.split('.').slice(0, 3).join('.');
    lab = await startBmcs(
      hostNumbers.map((n) => ({ address: `${prefix}.${n}` })),
      { subnet },
    );
    // A neighbour one /24 up: discovery of `subnet` must never probe it.
    const [a, b, c] = prefix.split('.').map(Number);
    outsider = await startBmcs(1, { subnet: `${a}.${b}.${(c + 1) % 256}.0/24` });
  });
  after(async () => {
    await lab?.stop();
    await outsider?.stop();
  });

  it('scan finds exactly the 20 sims, sorted numerically, and nothing outside the subnet', async () => {
    const found = await scanForBmcs({ subnet: lab.subnet });
    assert.deepEqual(
      found.map((r) => r.address),
      lab.bmcs.map((b) => b.address),
    );
    assert.ok(found.every((r) => r.port === 623));
    assert.ok(!found.some((r) => r.address === outsider.bmcs[0].address));
  });

  it('discoverBmcs adds info and power state per responder; a wrong password is reported, not fatal', async () => {
    const byAddress = new Map(lab.bmcs.map((b) => [b.address, b]));
    const wrongFor = lab.bmcs[5].address;
    await lab.bmcs[3].stop(); // a BMC that went away does not show up
    const results = await discoverBmcs({
      subnet: lab.subnet,
      credentials: (r) => {
        const bmc = byAddress.get(r.address)!;
        return {
          username: bmc.username,
          password: r.address === wrongFor ? 'not-the-password' : bmc.password,
        };
      },
    });
    const expected = lab.bmcs.filter((_, i) => i !== 3).map((b) => b.address);
    assert.deepEqual(
      results.map((r) => r.address),
      expected,
    );
    for (const r of results) {
      if (r.address === wrongFor) {
        assert.equal(r.error?.code, 'BMC_AUTH');
        assert.equal(r.error?.retryable, false);
        assert.equal(r.info, undefined);
        assert.ok(!r.error?.message.includes('not-the-password'));
      } else {
        assert.equal(r.error, undefined, `${r.address}: ${r.error?.message}`);
        assert.equal(r.info?.manufacturerId, 0x1291);
        assert.equal(r.powerState, 'off');
      }
    }
  });

  it('probes only the configured ports', async () => {
    assert.deepEqual(await scanForBmcs({ subnet: lab.subnet, ports: [624] }), []);
  });

  it('rejects a bad subnet with a clear error', async () => {
    await assert.rejects(scanForBmcs({ subnet: '10.0.0.1/24' }), /host bits set/);
    await assert.rejects(scanForBmcs({ subnet: '10.0.0.0/8' }), /more than the limit/);
  });
});
