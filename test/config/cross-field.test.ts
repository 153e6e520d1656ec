// Every cross-field rule of the cluster spec: one case that fails, one that passes.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { discoverySpec, expectIssue, expectValid, validSpec } from './fixtures.ts';

describe('addresses inside their subnets', () => {
  test('BMCs inside the IPMI subnet', () => {
    const raw = validSpec();
    raw.nodes[1].bmc = '10.10.1.12';
    expectIssue(raw, 'nodes[1].bmc', /outside ipmi\.subnet 10\.10\.0\.0\/24/);
    raw.nodes[1].bmc = '10.10.0.254';
    expectValid(raw);
  });

  test('fixed IPs inside the provisioning subnet', () => {
    const raw = validSpec();
    raw.nodes[0].ip = '10.20.1.11';
    expectIssue(raw, 'nodes[0].ip', /outside network\.subnet/);
    raw.nodes[0].ip = '10.20.0.254';
    expectValid(raw);
  });

  test('range inside the provisioning subnet, start before end', () => {
    const raw = validSpec();
    raw.network.range = { start: '10.20.0.100', end: '10.20.1.10' };
    expectIssue(raw, 'network.range.end', /outside network\.subnet/);
    raw.network.range = { start: '10.20.0.199', end: '10.20.0.100' };
    expectIssue(raw, 'network.range', /before start/);
    raw.network.range = { start: '10.20.0.200', end: '10.20.0.254' };
    expectValid(raw);
  });

  test('controller inside the provisioning subnet', () => {
    const raw = validSpec();
    raw.network.controller = '10.30.0.1';
    expectIssue(raw, 'network.controller', /outside network\.subnet/);
    raw.network.controller = '10.20.0.254';
    expectValid(raw);
  });

  test('gateway inside the provisioning subnet and outside the range', () => {
    const raw = validSpec();
    raw.network.gateway = '10.30.0.1';
    expectIssue(raw, 'network.gateway', /outside network\.subnet/);
    raw.network.gateway = '10.20.0.120';
    expectIssue(raw, 'network.gateway', /inside the dynamic range/);
    raw.network.gateway = '10.20.0.1';
    expectValid(raw);
  });

  test('network and broadcast addresses are not host addresses', () => {
    const cases: [string, (raw: ReturnType<typeof validSpec>) => void, RegExp][] = [
      ['network.controller', (r) => (r.network.controller = '10.20.0.0'), /network address/],
      ['network.controller', (r) => (r.network.controller = '10.20.0.255'), /broadcast address/],
      ['nodes[0].ip', (r) => (r.nodes[0].ip = '10.20.0.255'), /broadcast address/],
      ['nodes[0].bmc', (r) => (r.nodes[0].bmc = '10.10.0.0'), /network address/],
      ['network.range.end', (r) => (r.network.range.end = '10.20.0.255'), /broadcast address/],
    ];
    for (const [path, mutate, message] of cases) {
      const raw = validSpec();
      mutate(raw);
      expectIssue(raw, path, message);
    }
    const raw = validSpec();
    raw.nodes[0].ip = '10.20.0.254';
    raw.nodes[0].bmc = '10.10.0.1';
    expectValid(raw);
  });
});

describe('no overlaps', () => {
  test('IPMI and provisioning subnets are distinct', () => {
    const raw = validSpec();
    raw.network.subnet = '10.10.0.0/16';
    raw.network.controller = '10.10.200.1';
    raw.network.range = { start: '10.10.200.100', end: '10.10.200.199' };
    raw.nodes[0].ip = '10.10.200.11';
    raw.nodes[1].ip = '10.10.200.12';
    expectIssue(raw, 'network.subnet', /overlaps ipmi\.subnet/);
    raw.ipmi.subnet = '10.11.0.0/24';
    raw.nodes[0].bmc = '10.11.0.11';
    raw.nodes[1].bmc = '10.11.0.12';
    expectValid(raw);
  });

  test('fixed IPs are outside the range', () => {
    const raw = validSpec();
    raw.nodes[0].ip = '10.20.0.150';
    expectIssue(raw, 'nodes[0].ip', /inside the dynamic range 10\.20\.0\.100-10\.20\.0\.199/);
    raw.nodes[0].ip = '10.20.0.99';
    expectValid(raw);
  });

  test('controller outside the range and not a node IP', () => {
    const raw = validSpec();
    raw.network.controller = '10.20.0.100';
    expectIssue(raw, 'network.controller', /inside the dynamic range/);
    raw.network.controller = '10.20.0.11';
    expectIssue(raw, 'nodes[0].ip', /controller address/);
    raw.network.controller = '10.20.0.2';
    expectValid(raw);
  });

  test('a node IP is not the gateway', () => {
    const raw = validSpec();
    raw.network.gateway = '10.20.0.12';
    expectIssue(raw, 'nodes[1].ip', /gateway address/);
    raw.network.gateway = '10.20.0.254';
    expectValid(raw);
  });
});

describe('uniqueness', () => {
  const withDuplicate = (field: 'name' | 'mac' | 'ip' | 'bmc', value: string) => {
    const raw = validSpec();
    raw.nodes[1][field] = value;
    return raw;
  };

  test('unique node names', () => {
    expectIssue(withDuplicate('name', 'stor-001'), 'nodes[1].name', /already the name of nodes\[0\]/);
    expectValid(withDuplicate('name', 'stor-003'));
  });

  test('unique MACs, compared after normalisation', () => {
    expectIssue(
      withDuplicate('mac', '52-54-00-00-00-01'),
      'nodes[1].mac',
      /already the MAC of nodes\[0\] \(stor-001\)/,
    );
    expectValid(withDuplicate('mac', '52-54-00-00-00-03'));
  });

  test('unique fixed IPs', () => {
    expectIssue(withDuplicate('ip', '10.20.0.11'), 'nodes[1].ip', /already the address of nodes\[0\]/);
    expectValid(withDuplicate('ip', '10.20.0.13'));
  });

  test('unique BMC address + port pairs', () => {
    const raw = withDuplicate('bmc', '10.10.0.11');
    expectIssue(raw, 'nodes[1].bmc', /BMC 10\.10\.0\.11 port 623 is already used by nodes\[0\]/);
    raw.nodes[1].bmcPort = 9002; // same address, other port: two simulated BMCs on one host
    expectValid(raw);
    raw.nodes[0].bmcPort = 9002;
    expectIssue(raw, 'nodes[1].bmc', /port 9002 is already used/);
  });
});

describe('range size', () => {
  test('the range holds the nodes without a fixed IP or without a MAC', () => {
    const raw = validSpec();
    raw.network.range = { start: '10.20.0.100', end: '10.20.0.101' };
    raw.nodes = [
      { name: 'a', bmc: '10.10.0.1' },
      { name: 'b', bmc: '10.10.0.2', ip: '10.20.0.12' },
      { name: 'c', bmc: '10.10.0.3', mac: '52:54:00:00:00:03' },
      { name: 'd', bmc: '10.10.0.4', mac: '52:54:00:00:00:04', ip: '10.20.0.14' },
    ];
    expectIssue(raw, 'network.range', /holds 2 addresses but 3 nodes need one/);
    raw.network.range.end = '10.20.0.102';
    expectValid(raw);
  });

  test('without a node list the range holds every BMC the IPMI subnet can hold', () => {
    const raw = discoverySpec();
    raw.network.range = { start: '10.20.1.1', end: '10.20.1.253' };
    expectIssue(raw, 'network.range', /holds 253 addresses but discovery may find up to 254 BMCs/);
    raw.network.range = { start: '10.20.1.1', end: '10.20.1.254' };
    expectValid(raw);
  });

  test('discovery.maxNodes lowers what the range must hold', () => {
    const raw = discoverySpec();
    raw.network.range = { start: '10.20.1.1', end: '10.20.1.100' };
    raw.discovery = { maxNodes: 101 };
    expectIssue(raw, 'network.range', /discovery\.maxNodes is 101/);
    raw.discovery.maxNodes = 100;
    expectValid(raw);
  });

  test('discovery settings are refused next to a node list', () => {
    const raw = validSpec();
    raw.discovery = { maxNodes: 10 };
    expectIssue(raw, 'discovery', /only applies without a node list/);
    delete raw.discovery;
    expectValid(raw);
  });

  test('discovery needs an IPMI subnet of /16 or smaller', () => {
    const raw = discoverySpec();
    raw.ipmi.subnet = '10.0.0.0/15';
    raw.discovery = { maxNodes: 10 };
    expectIssue(raw, 'ipmi.subnet', /larger than \/16/);
    raw.ipmi.subnet = '10.0.0.0/16';
    expectValid(raw);
  });

  test('an empty node list is an error, not silent discovery', () => {
    const raw = validSpec();
    raw.nodes = [];
    expectIssue(raw, 'nodes', /remove "nodes" to discover/);
  });
});

describe('DHCP modes', () => {
  test('authoritative mode requires a range', () => {
    const raw = validSpec();
    delete raw.network.range;
    expectIssue(raw, 'network.range', /required in authoritative mode/);
  });

  test('proxy mode takes no range and no fixed IPs', () => {
    const raw = validSpec();
    raw.network.dhcpMode = 'proxy';
    expectIssue(raw, 'network.range', /not used in proxy mode/);
    expectIssue(raw, 'nodes[0].ip', /proxy mode/);
    delete raw.network.range;
    for (const node of raw.nodes) delete node.ip;
    const spec = expectValid(raw);
    assert.equal(spec.network.dhcpMode, 'proxy');
  });
});
