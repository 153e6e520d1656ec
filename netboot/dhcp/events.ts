// Turns dnsmasq log records into BootEvents (phase 'dhcp'). With --log-dhcp, dnsmasq logs a client's vendor
// class and user class just before the message line and its tags just after, all keyed by the transaction
// id; the builder remembers them per xid (bounded) so every event carries what is known about the client.
import type { BootEvent } from '../types.ts';
import { archFromVendorClass, type DnsmasqLogRecord } from './log-parser.ts';

interface ClientContext {
  vendorClass?: string;
  userClass?: string;
  tags?: string[];
}

const MAX_CONTEXTS = 1024;
const clip = (s: string) => s.slice(0, 128);

export class DhcpEventBuilder {
  private readonly contexts = new Map<string, ClientContext>();

  /** `nodeOf` maps a MAC to the node name of its reservation, when there is one. */
  constructor(private readonly nodeOf: (mac: string) => string | undefined = () => undefined) {}

  /** The event for a DHCP message record (undefined for any other record). */
  accept(rec: DnsmasqLogRecord, at = Date.now()): BootEvent | undefined {
    if (rec.kind === 'client') {
      const ctx = this.context(rec.xid);
      if (rec.field === 'vendor-class') ctx.vendorClass = rec.value;
      else if (rec.field === 'user-class') ctx.userClass = rec.value;
      else if (rec.field === 'tags')
        ctx.tags = rec.value
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean);
      return undefined;
    }
    if (rec.kind !== 'dhcp') return undefined;
    const ctx = rec.xid ? this.context(rec.xid) : {};
    const detail: Record<string, string | number | boolean> = { type: rec.type, interface: rec.iface };
    if (rec.xid) detail.xid = rec.xid;
    const arch = archFromVendorClass(ctx.vendorClass) ?? archFromTags(ctx.tags);
    if (arch !== undefined) detail.arch = arch;
    if (ctx.userClass) detail.userClass = clip(ctx.userClass);
    if (ctx.vendorClass) detail.vendorClass = clip(ctx.vendorClass);
    if (ctx.userClass === 'iPXE' || ctx.tags?.includes('ipxe')) detail.ipxe = true;
    if (rec.type === 'ACK' && rec.extra) detail.hostname = clip(rec.extra);
    else if (rec.extra) {
      detail.note = clip(rec.extra);
      if (rec.extra === 'ignored') detail.ignored = true;
    }
    const event: BootEvent = { phase: 'dhcp', at, detail };
    if (rec.mac) event.mac = rec.mac;
    // a DISCOVER's address is only what the client would like to have
    if (rec.ip && rec.type === 'DISCOVER') detail.requestedIp = rec.ip;
    else if (rec.ip) event.ip = rec.ip;
    const node = rec.mac ? this.nodeOf(rec.mac) : undefined;
    if (node) event.node = node;
    return event;
  }

  private context(xid: string): ClientContext {
    let ctx = this.contexts.get(xid);
    if (!ctx) {
      if (this.contexts.size >= MAX_CONTEXTS) {
        const oldest = this.contexts.keys().next().value;
        if (oldest !== undefined) this.contexts.delete(oldest);
      }
      ctx = {};
      this.contexts.set(xid, ctx);
    }
    return ctx;
  }
}

function archFromTags(tags: string[] | undefined): number | undefined {
  if (!tags) return undefined;
  if (tags.includes('efi64')) return 7;
  if (tags.includes('bios')) return 0;
  return undefined;
}
