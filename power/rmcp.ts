// The two unauthenticated RMCP packets BMC discovery sends (hand-written: no maintained npm library speaks
// RMCP/ASF, and these are fixed 12- and 23-byte packets):
//  - ASF Presence Ping (RMCP class 6) — the DMTF ASF 2.0 way to ask "is there a BMC here?";
//  - IPMI Get Channel Authentication Capabilities (RMCP class 7, session-less) — the first step of every
//    IPMI LAN session, so every BMC that can be managed answers it even with ASF ping disabled.
// Both verified against ipmi_sim 2.0.33 (it answers both).

const RMCP_VERSION = 0x06;
const RMCP_SEQ_NO_ACK = 0xff;
const RMCP_CLASS_ASF = 0x06;
const RMCP_CLASS_IPMI = 0x07;
const ASF_IANA = 0x000011be;
const ASF_PRESENCE_PING = 0x80;
const ASF_PRESENCE_PONG = 0x40;
const IPMI_CMD_GET_CHANNEL_AUTH_CAPS = 0x38;

export function presencePing(tag: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(RMCP_VERSION, 0);
  b.writeUInt8(0, 1);
  b.writeUInt8(RMCP_SEQ_NO_ACK, 2);
  b.writeUInt8(RMCP_CLASS_ASF, 3);
  b.writeUInt32BE(ASF_IANA, 4);
  b.writeUInt8(ASF_PRESENCE_PING, 8);
  b.writeUInt8(tag & 0xfe, 9); // 0xff is reserved for unidirectional messages
  b.writeUInt8(0, 10);
  b.writeUInt8(0, 11); // no data
  return b;
}

function checksum(bytes: number[]): number {
  return (0x100 - (bytes.reduce((a, b) => a + b, 0) & 0xff)) & 0xff;
}

/** Session-less IPMI 1.5 message: Get Channel Authentication Capabilities, current channel, admin level. */
export function getChannelAuthCapabilities(): Buffer {
  const header = [0x20, 0x06 << 2]; // rsAddr = BMC, netFn App / LUN 0
  const body = [0x81, 0x00, IPMI_CMD_GET_CHANNEL_AUTH_CAPS, 0x8e, 0x04]; // rqAddr, seq, cmd, ch 0xE + v2 bit, admin
  const msg = [...header, checksum(header), ...body, checksum(body)];
  return Buffer.from([
    RMCP_VERSION,
    0,
    RMCP_SEQ_NO_ACK,
    RMCP_CLASS_IPMI,
    0x00, // auth type none
    ...[0, 0, 0, 0], // session sequence
    ...[0, 0, 0, 0], // session id
    msg.length,
    ...msg,
  ]);
}

export type RmcpReply =
  | { kind: 'asf-pong'; ipmiSupported: boolean }
  | { kind: 'auth-caps'; completionCode: number };

/** Recognizes a presence pong or an auth-capabilities answer; anything else is undefined (never throws). */
export function parseRmcpReply(b: Buffer): RmcpReply | undefined {
  if (b.length < 4 || b[0] !== RMCP_VERSION) return undefined;
  if (b[3] === RMCP_CLASS_ASF) {
    if (b.length < 12 || b.readUInt32BE(4) !== ASF_IANA || b[8] !== ASF_PRESENCE_PONG) return undefined;
    // Data: IANA(4) OEM(4) supported entities(1): bit 7 = IPMI supported.
    const entities = b.length >= 21 ? b[20] : 0;
    return { kind: 'asf-pong', ipmiSupported: (entities & 0x80) !== 0 };
  }
  if (b[3] === RMCP_CLASS_IPMI) {
    // IPMI 1.5 session header is 10 bytes (no auth code with auth type none), then the message.
    if (b.length < 14 + 7 || b[4] !== 0x00) return undefined;
    const msg = b.subarray(14);
    const netFn = msg[1] >> 2;
    if (netFn !== 0x07 || msg[5] !== IPMI_CMD_GET_CHANNEL_AUTH_CAPS) return undefined;
    return { kind: 'auth-caps', completionCode: msg[6] };
  }
  return undefined;
}
