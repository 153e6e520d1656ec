// Parses one line of dnsmasq's log stream (--log-facility=- --log-dhcp) into a typed record. Pure and total:
// any input, however malformed, yields a record (at worst { kind: 'other' }) and never throws.
//
// Shapes seen from dnsmasq 2.90 (see test/dhcp/log-parser.test.ts):
//   dnsmasq-dhcp[8003]: 2061410411 DHCPDISCOVER(br0) 52:54:00:00:00:01
//   dnsmasq-dhcp[8003]: 2061410411 DHCPOFFER(br0) 10.77.0.11 52:54:00:00:00:01
//   dnsmasq-dhcp[8003]: 2061410411 DHCPACK(br0) 10.77.0.11 52:54:00:00:00:01 node1
//   dnsmasq-dhcp[8003]: 313494321 DHCPDISCOVER(br0) 52:54:00:00:00:02 ignored
//   dnsmasq-dhcp[8003]: 3961103468 user class: iPXE      / vendor class: … / tags: a, b, c
//   dnsmasq-dhcp[8003]: DHCP, sockets bound exclusively to interface br0
//   dnsmasq-dhcp[8003]: read /state/hosts/525400000001
//   dnsmasq: failed to bind DHCP server socket: Address already in use
//   dnsmasq: unknown interface nope0

export const DHCP_MESSAGE_TYPES = [
  'DISCOVER',
  'OFFER',
  'REQUEST',
  'ACK',
  'NAK',
  'RELEASE',
  'DECLINE',
  'INFORM',
  'BOOTP',
  'PXE',
] as const;
export type DhcpMessageType = (typeof DHCP_MESSAGE_TYPES)[number];

export type DhcpStartFailure = 'port-in-use' | 'no-such-interface' | 'config' | 'permission' | 'other';

export type DnsmasqLogRecord =
  | {
      kind: 'dhcp';
      type: DhcpMessageType;
      /** transaction id (present with --log-dhcp) */
      xid?: string;
      iface: string;
      ip?: string;
      mac?: string;
      /** ACK: the client's host name; DISCOVER/NAK/…: dnsmasq's remark ("ignored", "no address available") */
      extra?: string;
    }
  | {
      kind: 'client';
      xid: string;
      field: 'vendor-class' | 'user-class' | 'tags' | 'client-name';
      value: string;
    }
  | { kind: 'read-file'; path: string }
  | { kind: 'cannot-read'; path: string; reason: string }
  | { kind: 'started'; version: string }
  | { kind: 'ready'; iface: string }
  | { kind: 'fatal'; failure: DhcpStartFailure; message: string }
  | { kind: 'exiting'; message: string }
  | { kind: 'other'; text: string };

const PREFIX = /^dnsmasq(?:-dhcp|-tftp|-script)?(?:\[\d+\])?: ?/;
const MESSAGE = /^(?:(\d+) )?(DHCP[A-Z]+|BOOTP|PXE)\(([^)\s]*)\)(.*)$/;
const IPV4 = /^\d{1,3}(?:\.\d{1,3}){3}$/;
const MAC = /^(?:\d+-)?[0-9a-f]{2}(?::[0-9a-f]{2}){5,19}$/i;
const CLIENT_FIELD = /^(\d+) (vendor class|user class|tags|client provides name): ?(.*)$/;

const FATAL: [RegExp, DhcpStartFailure][] = [
  [/failed to (?:bind|create) DHCP server socket: Address already in use/i, 'port-in-use'],
  [/Address already in use/i, 'port-in-use'],
  [/unknown interface /i, 'no-such-interface'],
  [
    /(?:bad|error|unsupported|missing|unknown).* at line \d+|bad (?:option|dhcp|command)|junk found/i,
    'config',
  ],
  [/Permission denied|Operation not permitted/i, 'permission'],
  [/FAILED to start up/i, 'other'],
];

function messageType(word: string): DhcpMessageType | undefined {
  const t = word.startsWith('DHCP') ? word.slice(4) : word;
  return (DHCP_MESSAGE_TYPES as readonly string[]).includes(t) ? (t as DhcpMessageType) : undefined;
}

export function parseDnsmasqLine(input: unknown): DnsmasqLogRecord {
  const raw = typeof input === 'string' ? input : String(input ?? '');
  // strip the trailing spaces dnsmasq leaves and any CR; keep the text bounded
  const line = raw.replace(/[\r\n]+$/g, '').slice(0, 4096);
  const prefixed = PREFIX.exec(line);
  const body = (prefixed ? line.slice(prefixed[0].length) : line).trimEnd();

  const m = MESSAGE.exec(body);
  if (m) {
    const type = messageType(m[2]);
    if (type) {
      const words = m[4].trim().split(/\s+/).filter(Boolean);
      let ip: string | undefined;
      let mac: string | undefined;
      if (words[0] && IPV4.test(words[0])) ip = words.shift();
      if (words[0] && MAC.test(words[0])) mac = words.shift()!.toLowerCase();
      const extra = words.join(' ') || undefined;
      return { kind: 'dhcp', type, xid: m[1], iface: m[3], ip, mac, extra };
    }
  }
  const c = CLIENT_FIELD.exec(body);
  if (c) {
    const field =
      c[2] === 'vendor class'
        ? 'vendor-class'
        : c[2] === 'user class'
          ? 'user-class'
          : c[2] === 'tags'
            ? 'tags'
            : 'client-name';
    return { kind: 'client', xid: c[1], field, value: c[3] };
  }
  if (body.startsWith('read ')) return { kind: 'read-file', path: body.slice(5) };
  const cannot = /^cannot read (.+?): (.*)$/.exec(body);
  if (cannot) return { kind: 'cannot-read', path: cannot[1], reason: cannot[2] };
  const started = /^started, version (\S+)/.exec(body);
  if (started) return { kind: 'started', version: started[1] };
  const ready = /^DHCP, sockets bound exclusively to interface (\S+)/.exec(body);
  if (ready) return { kind: 'ready', iface: ready[1] };
  if (/^exiting on receipt of/.test(body)) return { kind: 'exiting', message: body };
  // Fatal start-up errors come without a pid in the prefix ("dnsmasq: …").
  if (prefixed && !/\[\d+\]/.test(prefixed[0])) {
    for (const [re, failure] of FATAL) if (re.test(body)) return { kind: 'fatal', failure, message: body };
  }
  return { kind: 'other', text: body };
}

/** Client architecture from a PXE vendor class ("PXEClient:Arch:00007:UNDI:003016" → 7). */
export function archFromVendorClass(vendorClass: string | undefined): number | undefined {
  const m = /^PXEClient:Arch:(\d{5})/.exec(vendorClass ?? '');
  return m ? Number(m[1]) : undefined;
}
