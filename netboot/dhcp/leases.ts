// The dnsmasq lease file: "<expiry> <mac> <ip> <hostname|*> <client-id|*>" per line.

export interface Lease {
  mac: string;
  ip: string;
  hostname?: string;
  /** seconds since the epoch; 0 = infinite */
  expires: number;
}

/** Parses a dnsmasq lease file ("<expiry> <mac> <ip> <hostname|*> <client-id|*>" per line). */
export function parseLeaseFile(text: string): Lease[] {
  const out: Lease[] = [];
  for (const line of text.split('\n')) {
    const [expires, mac, ip, hostname] = line.trim().split(/\s+/);
    if (!mac || !ip || !/^\d+$/.test(expires ?? '') || !/^[0-9a-f:]{17}$/i.test(mac)) continue;
    out.push({
      mac: mac.toLowerCase(),
      ip,
      hostname: hostname && hostname !== '*' ? hostname : undefined,
      expires: Number(expires),
    });
  }
  return out;
}
