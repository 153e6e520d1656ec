import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { formatDuration, parseDuration } from '../../config/duration.ts';
import {
  cidrContains,
  cidrProblem,
  cidrsOverlap,
  firstHost,
  formatIPv4,
  hostCount,
  lastHost,
  parseCidr,
  parseIPv4,
  rangeSize,
} from '../../config/ipv4.ts';
import { macProblem, normaliseMac } from '../../config/mac.ts';
import { levenshtein, suggestKey } from '../../config/suggest.ts';

describe('ipv4', () => {
  test('parse and format', () => {
    assert.equal(parseIPv4('10.20.0.1'), 0x0a140001);
    assert.equal(parseIPv4('255.255.255.255'), 0xffffffff);
    assert.equal(formatIPv4(0x0a140001), '10.20.0.1');
    for (const bad of [
      '1.2.3',
      '1.2.3.4.5',
      '1.2.3.256',
      '01.2.3.4',
      '1.2.3.-4',
      ' 1.2.3.4',
      '1.2.3.4/24',
      '',
    ]) {
      assert.equal(parseIPv4(bad), undefined, bad);
    }
    assert.throws(() => formatIPv4(2 ** 32));
  });

  test('parse/format round-trip for every 32-bit value', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => parseIPv4(formatIPv4(n)) === n));
  });

  test('CIDR blocks', () => {
    const net = parseCidr('10.20.0.0/24')!;
    assert.deepEqual(net, { network: 0x0a140000, prefix: 24, size: 256, broadcast: 0x0a1400ff });
    assert.equal(hostCount(net), 254);
    assert.equal(formatIPv4(firstHost(net)), '10.20.0.1');
    assert.equal(formatIPv4(lastHost(net)), '10.20.0.254');
    assert.ok(cidrContains(net, parseIPv4('10.20.0.77')!));
    assert.ok(!cidrContains(net, parseIPv4('10.20.1.0')!));
    assert.equal(hostCount(parseCidr('10.0.0.0/31')!), 2);
    assert.equal(parseCidr('0.0.0.0/0')!.size, 2 ** 32);
    assert.match(cidrProblem('10.20.0.1/24')!, /host bits set; the network is 10\.20\.0\.0\/24/);
    assert.match(cidrProblem('10.20.0.0/33')!, /prefix must be 0-32/);
    assert.match(cidrProblem('10.20.0.0/024')!, /prefix/);
    assert.equal(cidrProblem('10.20.0.0/16'), undefined);
  });

  test('overlap and range size', () => {
    const a = parseCidr('10.0.0.0/16')!;
    assert.ok(cidrsOverlap(a, parseCidr('10.0.5.0/24')!));
    assert.ok(!cidrsOverlap(a, parseCidr('10.1.0.0/24')!));
    assert.equal(rangeSize(10, 19), 10);
    assert.equal(rangeSize(10, 9), 0);
  });
});

describe('durations', () => {
  test('accepted forms', () => {
    assert.equal(parseDuration('20m'), 1_200_000);
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('1h30m'), 5_400_000);
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('1.5h'), 5_400_000);
    assert.equal(parseDuration('1d2h3m4s5ms'), 93_784_005);
    assert.equal(parseDuration('0s'), 0);
  });

  test('rejected forms have clear messages', () => {
    assert.throws(() => parseDuration('20'), /no unit; write e\.g\. "20m"/);
    assert.throws(() => parseDuration('20 minutes'), /is not a duration/);
    assert.throws(() => parseDuration('30m1h'), /largest first/);
    assert.throws(() => parseDuration('5m5m'), /once each/);
    assert.throws(() => parseDuration('0.5ms'), /whole number of milliseconds/);
    assert.throws(() => parseDuration(''), /empty duration/);
    assert.throws(() => parseDuration('-5m'), /is not a duration/);
  });

  test('format is the inverse of parse', () => {
    assert.equal(formatDuration(5_400_000), '1h30m');
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10 ** 12 }), (ms) => parseDuration(formatDuration(ms)) === ms),
    );
  });
});

describe('MAC addresses', () => {
  test('normalisation', () => {
    for (const form of [
      '52:54:00:AB:CD:EF',
      '52-54-00-ab-cd-ef',
      '5254.00ab.cdef',
      '525400ABCDEF',
      ' 52:54:00:ab:cd:ef ',
    ]) {
      assert.equal(normaliseMac(form), '52:54:00:ab:cd:ef', form);
    }
    for (const bad of [
      '52:54:00:ab:cd',
      '52:54-00:ab:cd:ef',
      '5254.00ab.cde',
      'gg:54:00:ab:cd:ef',
      '52:54:00:ab:cd:ef:00',
    ]) {
      assert.equal(normaliseMac(bad), undefined, bad);
    }
    assert.match(macProblem('ff:ff:ff:ff:ff:ff')!, /multicast\/broadcast/);
    assert.match(macProblem('00:00:00:00:00:00')!, /all-zero/);
    assert.equal(macProblem('02:00:00:00:00:01'), undefined);
  });
});

describe('did-you-mean', () => {
  test('levenshtein', () => {
    assert.equal(levenshtein('kitten', 'sitting'), 3);
    assert.equal(levenshtein('', 'abc'), 3);
    assert.equal(levenshtein('same', 'same'), 0);
    assert.equal(levenshtein('prot', 'port'), 1);
  });

  test('suggestions only for plausible typos', () => {
    const keys = ['subnet', 'username', 'passwordEnv', 'passwordFile', 'port'];
    assert.equal(suggestKey('usernme', keys), 'username');
    assert.equal(suggestKey('Subnet', keys), 'subnet');
    assert.equal(suggestKey('passwordenv', keys), 'passwordEnv');
    assert.equal(suggestKey('prot', keys), 'port');
    assert.equal(suggestKey('completely-different', keys), undefined);
    assert.equal(suggestKey('x', []), undefined);
  });
});
