// Pure parsers on output recorded from ipmitool 1.8.19 / ipmi_sim 2.0.33, and property tests for the
// subnet arithmetic and the RMCP reply parser (which must never throw on junk from the network).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  bootDeviceAccepted,
  classifyFailure,
  parseBootDeviceSelector,
  parseMcInfo,
  parsePowerStatus,
} from '../../power/ipmitool-output.ts';
import { getChannelAuthCapabilities, parseRmcpReply, presencePing } from '../../power/rmcp.ts';
import { compareEndpoints, hostsInSubnet, intToIpv4, ipv4ToInt, parseSubnet } from '../../power/subnet.ts';

const NOISE =
  'Loading IANA PEN Registry...\nRunning Get VSO Capabilities my_addr 0x20, transit 0, target 0x20\n' +
  'Invalid completion code received: Invalid command\nDiscovered IPMB address 0x0\n';

describe('ipmitool output', () => {
  it('classifies session failures', () => {
    const wrongPw =
      'Loading IANA PEN Registry...\n> RAKP 2 HMAC is invalid\nError: Unable to establish IPMI v2 / RMCP+ session';
    const wrongUser =
      'RAKP 2 message indicates an error : unauthorized name\nError: Unable to establish IPMI v2 / RMCP+ session';
    const dead =
      'Get Auth Capabilities error\nError issuing Get Channel Authentication Capabilities request\n' +
      'Error: Unable to establish IPMI v2 / RMCP+ session';
    assert.deepEqual(classifyFailure(wrongPw), { kind: 'auth' });
    assert.deepEqual(classifyFailure(wrongUser), { kind: 'auth' });
    assert.deepEqual(classifyFailure(dead), { kind: 'unreachable' });
    assert.deepEqual(classifyFailure(`${NOISE}Set Chassis Power Control to Up/On failed: Node busy`), {
      kind: 'command',
      retryable: true,
    });
    assert.deepEqual(classifyFailure(`${NOISE}Get Chassis Power Status failed: Unspecified error`), {
      kind: 'command',
      retryable: false,
    });
    assert.deepEqual(classifyFailure(NOISE), { kind: 'unknown' }, 'the -v noise alone is no failure');
  });

  it('parses power status, mc info and the boot flags', () => {
    assert.equal(parsePowerStatus('Chassis Power is on\n'), 'on');
    assert.equal(parsePowerStatus('Chassis Power is off'), 'off');
    assert.equal(parsePowerStatus('Chassis Power is unknown'), undefined);
    const info = parseMcInfo(
      'Device ID                 : 0\nDevice Revision           : 3\nFirmware Revision         : 9.08\n' +
        'IPMI Version              : 2.0\nManufacturer ID           : 4753\n' +
        'Manufacturer Name         : MontaVista Software, Inc.\nProduct ID                : 3842 (0x0f02)\n' +
        'Product Name              : Unknown (0xF02)\nDevice Available          : yes\n',
    );
    assert.deepEqual(info, {
      deviceId: 0,
      deviceRevision: 3,
      firmwareRevision: '9.08',
      ipmiVersion: '2.0',
      manufacturerId: 4753,
      manufacturerName: 'MontaVista Software, Inc.',
      productId: 3842,
      productName: 'Unknown (0xF02)',
    });
    assert.equal(parseMcInfo('garbage'), undefined);
    assert.equal(parseBootDeviceSelector('   - Boot Device Selector : Force PXE\n'), 'pxe');
    assert.equal(
      parseBootDeviceSelector('   - Boot Device Selector : Force Boot from default Hard-Drive'),
      'disk',
    );
    assert.equal(parseBootDeviceSelector('   - Boot Device Selector : No override'), 'other');
  });

  it('bootdev: success needs the "Set Boot Device" line and no parameter-5 failure', () => {
    assert.equal(bootDeviceAccepted('Set Boot Device to pxe\n', NOISE, 'pxe'), true);
    assert.equal(
      bootDeviceAccepted('', `${NOISE}Set Chassis Boot Parameter 5 failed: Unspecified error`, 'pxe'),
      false,
    );
    assert.equal(bootDeviceAccepted('Set Boot Device to disk\n', '', 'pxe'), false);
  });
});

describe('subnets', () => {
  it('enumerates exactly the hosts of a subnet, in order', () => {
    assert.deepEqual(hostsInSubnet('10.0.0.0/30'), ['10.0.0.1', '10.0.0.2']);
    assert.deepEqual(hostsInSubnet('10.0.0.5/32'), ['10.0.0.5']);
    assert.equal(hostsInSubnet('127.0.1.0/24').length, 254);
    assert.throws(() => parseSubnet('10.0.0.1/24'), /host bits set/);
    assert.throws(() => parseSubnet('10.0.0.0'), /expected CIDR/);
    assert.throws(() => parseSubnet('10.0.0.256/32'), /not an IPv4/);
    assert.throws(() => hostsInSubnet('10.0.0.0/8'), /more than the limit/);
  });

  it('property: every enumerated host is inside the subnet; count matches the prefix', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.integer({ min: 20, max: 32 }),
        (addr, prefix) => {
          const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
          const network = (addr & mask) >>> 0;
          const hosts = hostsInSubnet(`${intToIpv4(network)}/${prefix}`);
          const size = 2 ** (32 - prefix);
          assert.equal(hosts.length, prefix >= 31 ? size : size - 2);
          for (const h of hosts) assert.equal((ipv4ToInt(h) & mask) >>> 0, network);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('sorts endpoints numerically, then by port', () => {
    const sorted = [
      { address: '10.0.0.10', port: 623 },
      { address: '10.0.0.9', port: 624 },
      { address: '10.0.0.9', port: 623 },
    ].sort(compareEndpoints);
    assert.deepEqual(
      sorted.map((e) => `${e.address}:${e.port}`),
      ['10.0.0.9:623', '10.0.0.9:624', '10.0.0.10:623'],
    );
  });
});

describe('RMCP packets', () => {
  it('recognizes the replies ipmi_sim sends (recorded)', () => {
    const pong = Buffer.from('0600ff06000011be40010010000011be000000008100000000000000', 'hex');
    const caps = Buffer.from('0600ff0700000000000000000010811c6320003800019704030000000009', 'hex');
    assert.deepEqual(parseRmcpReply(pong), { kind: 'asf-pong', ipmiSupported: true });
    assert.deepEqual(parseRmcpReply(caps), { kind: 'auth-caps', completionCode: 0 });
    // our own requests are not replies
    assert.equal(parseRmcpReply(presencePing(2)), undefined);
    assert.equal(parseRmcpReply(getChannelAuthCapabilities()), undefined);
  });

  it('property: never throws on arbitrary datagrams', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.boolean(), (bytes, rmcpHeader) => {
        const b = Buffer.from(bytes);
        if (rmcpHeader && b.length > 3) b[0] = 0x06;
        parseRmcpReply(b);
      }),
      { numRuns: 2000 },
    );
  });
});
