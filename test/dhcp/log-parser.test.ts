import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { DhcpEventBuilder } from '../../netboot/dhcp/events.ts';
import { archFromVendorClass, parseDnsmasqLine } from '../../netboot/dhcp/log-parser.ts';

// Lines captured from dnsmasq 2.90 in the test namespaces.
const REAL = [
  'dnsmasq[8003]: started, version 2.90 DNS disabled',
  'dnsmasq-dhcp[8003]: DHCP, sockets bound exclusively to interface br-exp1',
  'dnsmasq-dhcp[8003]: read /tmp/exp1/hosts/node1',
  'dnsmasq-dhcp[8003]: 2061410411 vendor class: PXEClient:Arch:00007:UNDI:003016',
  'dnsmasq-dhcp[8003]: 2061410411 user class: iPXE',
  'dnsmasq-dhcp[8003]: 2061410411 DHCPDISCOVER(br-exp1) 52:54:00:00:00:01 ',
  'dnsmasq-dhcp[8003]: 2061410411 tags: prov, node1, known, ipxe, efi64, br-exp1',
  'dnsmasq-dhcp[8003]: 2061410411 DHCPOFFER(br-exp1) 10.77.0.11 52:54:00:00:00:01 ',
  'dnsmasq-dhcp[8003]: 2061410411 DHCPREQUEST(br-exp1) 10.77.0.11 52:54:00:00:00:01 ',
  'dnsmasq-dhcp[8003]: 2061410411 DHCPACK(br-exp1) 10.77.0.11 52:54:00:00:00:01 node1',
  'dnsmasq-dhcp[8003]: 2061410411 sent size:  4 option: 54 server-identifier  10.77.0.1',
  'dnsmasq-dhcp[8247]: 313494321 DHCPDISCOVER(br-exp1) 52:54:00:00:00:02 ignored',
  'dnsmasq-dhcp[8247]: DHCPNAK(br-exp1) 10.77.0.50 52:54:00:00:00:02 wrong network',
  'dnsmasq-dhcp[8247]: DHCPRELEASE(br-exp1) 10.77.0.11 52:54:00:00:00:01',
  'dnsmasq[8247]: inotify: /tmp/exp1/hosts/discovery new or modified',
  'dnsmasq[8247]: cannot read /tmp/exp1/hosts/discovery: No such file or directory',
  'dnsmasq: failed to bind DHCP server socket: Address already in use',
  'dnsmasq: unknown interface nope0',
  'dnsmasq: bad dhcp-range at line 12 of /x/dnsmasq.conf',
  'dnsmasq[1]: exiting on receipt of SIGTERM',
];

describe('dnsmasq log parser', () => {
  test('parses the lines dnsmasq 2.90 writes', () => {
    const r = REAL.map(parseDnsmasqLine);
    assert.deepEqual(r[0], { kind: 'started', version: '2.90' });
    assert.deepEqual(r[1], { kind: 'ready', iface: 'br-exp1' });
    assert.deepEqual(r[2], { kind: 'read-file', path: '/tmp/exp1/hosts/node1' });
    assert.deepEqual(r[3], {
      kind: 'client',
      xid: '2061410411',
      field: 'vendor-class',
      value: 'PXEClient:Arch:00007:UNDI:003016',
    });
    assert.deepEqual(r[5], {
      kind: 'dhcp',
      type: 'DISCOVER',
      xid: '2061410411',
      iface: 'br-exp1',
      ip: undefined,
      mac: '52:54:00:00:00:01',
      extra: undefined,
    });
    assert.deepEqual(r[9], {
      kind: 'dhcp',
      type: 'ACK',
      xid: '2061410411',
      iface: 'br-exp1',
      ip: '10.77.0.11',
      mac: '52:54:00:00:00:01',
      extra: 'node1',
    });
    assert.equal(r[10].kind, 'other');
    assert.equal(r[11].kind === 'dhcp' && r[11].extra, 'ignored');
    assert.equal(r[12].kind === 'dhcp' && r[12].type === 'NAK' && r[12].extra, 'wrong network');
    assert.equal(r[13].kind === 'dhcp' && r[13].type, 'RELEASE');
    assert.deepEqual(r[15], {
      kind: 'cannot-read',
      path: '/tmp/exp1/hosts/discovery',
      reason: 'No such file or directory',
    });
    assert.equal(r[16].kind === 'fatal' && r[16].failure, 'port-in-use');
    assert.equal(r[17].kind === 'fatal' && r[17].failure, 'no-such-interface');
    assert.equal(r[18].kind === 'fatal' && r[18].failure, 'config');
    assert.equal(r[19].kind, 'exiting');
    assert.equal(archFromVendorClass('PXEClient:Arch:00009:UNDI:003016'), 9);
    assert.equal(archFromVendorClass('udhcp 1.35.0'), undefined);
  });

  test('the event builder carries class, arch, node and the message type', () => {
    const b = new DhcpEventBuilder((mac) => (mac === '52:54:00:00:00:01' ? 'node1' : undefined));
    const events = REAL.map((l) => b.accept(parseDnsmasqLine(l), 1000)).filter((e) => e !== undefined);
    assert.deepEqual(
      events.map((e) => e.detail?.type),
      ['DISCOVER', 'OFFER', 'REQUEST', 'ACK', 'DISCOVER', 'NAK', 'RELEASE'],
    );
    const ack = events[3];
    assert.deepEqual(ack, {
      phase: 'dhcp',
      at: 1000,
      mac: '52:54:00:00:00:01',
      ip: '10.77.0.11',
      node: 'node1',
      detail: {
        type: 'ACK',
        interface: 'br-exp1',
        xid: '2061410411',
        arch: 7,
        userClass: 'iPXE',
        vendorClass: 'PXEClient:Arch:00007:UNDI:003016',
        ipxe: true,
        hostname: 'node1',
      },
    });
    assert.equal(events[4].detail?.ignored, true);
    assert.equal(events[4].node, undefined);
  });

  test('fuzz: random and mutated lines never throw and always give a record', () => {
    const mutated = fc
      .tuple(fc.constantFrom(...REAL), fc.nat(200), fc.string({ maxLength: 40 }), fc.nat(200))
      .map(([line, at, insert, cut]) =>
        (line.slice(0, at) + insert + line.slice(at)).slice(0, line.length + 40 - (cut % 40)),
      );
    const structured = fc
      .tuple(
        fc.option(fc.stringMatching(/^\d{1,12}$/)),
        fc.constantFrom('DHCPDISCOVER', 'DHCPACK', 'DHCPNAK', 'PXE', 'BOOTP', 'DHCPFOO', 'DHCP'),
        fc.string({ maxLength: 20 }),
        fc.array(
          fc.oneof(fc.ipV4(), fc.stringMatching(/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){0,7}$/), fc.string()),
          { maxLength: 6 },
        ),
      )
      .map(
        ([xid, word, iface, rest]) =>
          `dnsmasq-dhcp[1]: ${xid ? `${xid} ` : ''}${word}(${iface}) ${rest.join(' ')}`,
      );
    const anything = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ unit: 'binary', maxLength: 300 }),
      mutated,
      structured,
    );
    const builder = new DhcpEventBuilder();
    fc.assert(
      fc.property(anything, (line) => {
        const rec = parseDnsmasqLine(line);
        assert.equal(typeof rec.kind, 'string');
        const event = builder.accept(rec);
        if (event) assert.equal(event.phase, 'dhcp');
      }),
      { numRuns: 5000 },
    );
    for (const odd of [undefined, null, 42, {}, '\u0000'.repeat(10_000), 'dnsmasq-dhcp[1]: 1 DHCPACK() ']) {
      assert.equal(typeof parseDnsmasqLine(odd).kind, 'string');
    }
  });
});
