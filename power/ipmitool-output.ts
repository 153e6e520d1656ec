// Pure parsing of ipmitool 1.8.19 output (run with -v so that session failures say why). Kept apart from
// the process handling so it can be unit-tested on recorded output.
import type { BmcInfo, BootDevice, PowerState } from './driver.ts';

/** Lines ipmitool -v prints on every call; never a sign of failure. */
const NOISE = [
  /^Loading IANA PEN Registry/,
  /^Running Get VSO Capabilities/,
  /^Invalid completion code received: Invalid command$/, // the VSO probe above, answered "invalid command"
  /^Discovered IPMB address/,
];

export function meaningfulLines(text: string): string[] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !NOISE.some((re) => re.test(l)));
}

/** RAKP / activate-session answers that mean "wrong credentials": retrying cannot help. */
const AUTH_FAILURE = [
  /RAKP 2 HMAC is invalid/i,
  /RAKP \d message indicates an error : (unauthorized name|invalid name|invalid integrity check value|unauthorized role or privilege|invalid role)/i,
  /RAKP 4 HMAC is invalid/i,
  /Activate Session error:.*(Invalid user name|Invalid session ID|password|Authentication Type)/i,
  /Set Session Privilege Level to \w+ failed: (Requested privilege level exceeds limit|Insufficient privilege)/i,
  /Invalid user name/i,
];

/** Session could not even start: nobody answered, or the BMC is out of session slots. */
const UNREACHABLE = [
  /Get Auth Capabilities error/i,
  /Error issuing Get Channel Authentication Capabilities request/i,
  /No response from remote controller/i,
  /insufficient resources for session/i,
  /Unable to establish IPMI v2 \/ RMCP\+ session/i,
  /Unable to establish LAN session/i,
  /Unable to get Chassis Power Status/i, // session ok but the status request got no answer
  // a reply lost after the session was set up: ipmitool then also says "... failed" (Close Session), which must
  // not read as the BMC rejecting the command — a lost reply is retried like any unreachable BMC
  /No valid response received/i,
];

/** Completion codes a BMC uses for "try again later". */
const TRANSIENT_COMMAND = [
  /Node busy/i,
  /Timeout/i,
  /Command response could not be provided/i,
  /Out of space/i,
];

export type FailureKind =
  | { kind: 'auth' }
  | { kind: 'unreachable' }
  | { kind: 'command'; retryable: boolean }
  | { kind: 'unknown' };

/** Why a failed (or suspicious) ipmitool call failed, from its stderr/stdout. Auth is checked first. */
export function classifyFailure(stderr: string, stdout = ''): FailureKind {
  const text = `${stderr}\n${stdout}`;
  if (AUTH_FAILURE.some((re) => re.test(text))) return { kind: 'auth' };
  // Session-level trouble before any command ran.
  if (UNREACHABLE.some((re) => re.test(text))) return { kind: 'unreachable' };
  const lines = meaningfulLines(stderr);
  if (lines.some((l) => /failed|error|invalid|not supported|cannot/i.test(l))) {
    return { kind: 'command', retryable: lines.some((l) => TRANSIENT_COMMAND.some((re) => re.test(l))) };
  }
  return { kind: 'unknown' };
}

export function parsePowerStatus(stdout: string): PowerState | undefined {
  const m = /Chassis Power is (on|off)\b/i.exec(stdout);
  return m ? (m[1].toLowerCase() as PowerState) : undefined;
}

/** `power on|off|cycle` print "Chassis Power Control: Up/On" etc. */
export function powerControlAccepted(stdout: string, action: 'on' | 'off' | 'cycle'): boolean {
  const want = { on: 'Up/On', off: 'Down/Off', cycle: 'Cycle' }[action];
  return stdout.includes(`Chassis Power Control: ${want}`);
}

/**
 * `chassis bootdev` exits 0 even when the BMC refuses boot parameter 5 (the boot flags); success is the
 * "Set Boot Device to <dev>" line with no parameter-5 failure next to it.
 */
export function bootDeviceAccepted(stdout: string, stderr: string, device: BootDevice): boolean {
  if (/Set Chassis Boot Parameter 5 failed/i.test(stderr)) return false;
  return new RegExp(`^Set Boot Device to ${device}$`, 'm').test(stdout);
}

/** The device selector from `chassis bootparam get 5`, mapped to pxe/disk/other. */
export function parseBootDeviceSelector(stdout: string): BootDevice | 'other' | undefined {
  const m = /Boot Device Selector\s*:\s*(.+)$/m.exec(stdout);
  if (!m) return undefined;
  const selector = m[1].trim();
  if (/PXE/i.test(selector)) return 'pxe';
  if (/Hard[- ]Drive/i.test(selector)) return 'disk';
  return 'other';
}

function field(fields: Map<string, string>, key: string): string {
  return fields.get(key) ?? '';
}

/** Parses `mc info`; undefined when the essential fields are missing. */
export function parseMcInfo(stdout: string): BmcInfo | undefined {
  const fields = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^([A-Za-z][A-Za-z ]*?)\s*:\s*(.*)$/.exec(line);
    if (m) fields.set(m[1], m[2].trim());
  }
  const deviceId = Number.parseInt(field(fields, 'Device ID'), 10);
  const manufacturerId = Number.parseInt(field(fields, 'Manufacturer ID'), 10);
  const productId = Number.parseInt(field(fields, 'Product ID'), 10);
  if (!Number.isFinite(deviceId) || !Number.isFinite(manufacturerId) || !Number.isFinite(productId)) {
    return undefined;
  }
  return {
    deviceId,
    deviceRevision: Number.parseInt(field(fields, 'Device Revision'), 10) || 0,
    firmwareRevision: field(fields, 'Firmware Revision'),
    ipmiVersion: field(fields, 'IPMI Version'),
    manufacturerId,
    manufacturerName: field(fields, 'Manufacturer Name'),
    productId,
    productName: field(fields, 'Product Name'),
  };
}
