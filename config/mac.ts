// MAC address normalisation (pure; workflow-sandbox safe). Everything in pxeflow compares MACs in one form:
// lower-case, colon-separated ("52:54:00:00:00:01"), the form BootEvent.mac uses.

const SEPARATED =
  /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/;
const DOTTED = /^([0-9a-f]{4})\.([0-9a-f]{4})\.([0-9a-f]{4})$/;
const BARE = /^[0-9a-f]{12}$/;

/**
 * Accepts "52:54:00:AB:CD:EF", "52-54-00-ab-cd-ef", "5254.00ab.cdef" (Cisco) and "525400abcdef";
 * returns "52:54:00:ab:cd:ef", or undefined when the text is none of these.
 */
export function normaliseMac(text: string): string | undefined {
  if (typeof text !== 'string') return undefined;
  const lower = text.trim().toLowerCase();
  let hex: string | undefined;
  const separated = SEPARATED.exec(lower);
  if (separated) hex = [1, 3, 4, 5, 6, 7].map((i) => separated[i]).join('');
  const dotted = DOTTED.exec(lower);
  if (dotted) hex = dotted[1] + dotted[2] + dotted[3];
  if (BARE.test(lower)) hex = lower;
  if (hex === undefined) return undefined;
  return hex.match(/../g)!.join(':');
}

/** Why `text` is not a usable NIC MAC address, or undefined when it is. */
export function macProblem(text: string): string | undefined {
  const mac = normaliseMac(text);
  if (mac === undefined) {
    return `${JSON.stringify(text)} is not a MAC address (expected e.g. 52:54:00:12:34:56, 52-54-00-12-34-56 or 5254.0012.3456)`;
  }
  if (mac === '00:00:00:00:00:00') return `${mac} is the all-zero MAC, not a NIC address`;
  // The I/G bit: group (multicast/broadcast) addresses never belong to a NIC — almost always a typo.
  if (Number.parseInt(mac.slice(0, 2), 16) & 1)
    return `${mac} is a multicast/broadcast MAC, not a NIC address`;
  return undefined;
}
