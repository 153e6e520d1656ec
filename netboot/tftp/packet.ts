// TFTP wire format (RFC 1350) and option negotiation (RFC 2347 options, 2348 blksize, 2349 timeout/tsize,
// 7440 windowsize). Pure functions: no sockets here, so the codec can be property-tested on its own.

export const OP = { RRQ: 1, WRQ: 2, DATA: 3, ACK: 4, ERROR: 5, OACK: 6 } as const;

export const ERR = {
  UNDEFINED: 0,
  NOT_FOUND: 1,
  ACCESS_VIOLATION: 2,
  DISK_FULL: 3,
  ILLEGAL_OPERATION: 4,
  UNKNOWN_TID: 5,
  FILE_EXISTS: 6,
  NO_SUCH_USER: 7,
  OPTION_REFUSED: 8,
} as const;

/** Requests above this size are refused: RFC 2347 keeps requests within 512 bytes; we allow some slack. */
export const MAX_REQUEST_BYTES = 1024;
/** More options than this in one request is an attack or a bug, not a PXE client. */
export const MAX_OPTIONS = 16;

export type Packet =
  | { op: 'rrq' | 'wrq'; file: string; mode: string; options: Map<string, string> }
  | { op: 'ack'; block: number }
  | { op: 'error'; code: number; message: string }
  | { op: 'data'; block: number }
  | { op: 'oack' };

/** A packet we cannot accept; `code` is the TFTP error code to answer with. */
export class TftpProtocolError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** Parses one datagram; throws TftpProtocolError naming the packet and the reason when it is malformed. */
export function parsePacket(buf: Buffer): Packet {
  if (buf.length < 2)
    throw new TftpProtocolError(ERR.ILLEGAL_OPERATION, `packet of ${buf.length} bytes is too short`);
  const opcode = buf.readUInt16BE(0);
  switch (opcode) {
    case OP.RRQ:
    case OP.WRQ:
      return parseRequest(buf, opcode === OP.RRQ ? 'rrq' : 'wrq');
    case OP.ACK:
    case OP.DATA:
      if (buf.length < 4)
        throw new TftpProtocolError(ERR.ILLEGAL_OPERATION, `truncated ${opcode === OP.ACK ? 'ACK' : 'DATA'}`);
      return { op: opcode === OP.ACK ? 'ack' : 'data', block: buf.readUInt16BE(2) };
    case OP.ERROR: {
      if (buf.length < 4) throw new TftpProtocolError(ERR.ILLEGAL_OPERATION, 'truncated ERROR');
      const end = buf.indexOf(0, 4);
      const message = buf.toString('utf8', 4, end === -1 ? Math.min(buf.length, 4 + 200) : end);
      return { op: 'error', code: buf.readUInt16BE(2), message };
    }
    case OP.OACK:
      return { op: 'oack' };
    default:
      throw new TftpProtocolError(ERR.ILLEGAL_OPERATION, `unknown opcode ${opcode}`);
  }
}

function parseRequest(buf: Buffer, op: 'rrq' | 'wrq'): Packet {
  if (buf.length > MAX_REQUEST_BYTES) {
    throw new TftpProtocolError(
      ERR.OPTION_REFUSED,
      `request of ${buf.length} bytes exceeds ${MAX_REQUEST_BYTES}`,
    );
  }
  if (buf[buf.length - 1] !== 0)
    throw new TftpProtocolError(ERR.ILLEGAL_OPERATION, 'request not NUL-terminated');
  const fields = buf.toString('utf8', 2, buf.length - 1).split('\0');
  if (fields.length < 2) throw new TftpProtocolError(ERR.ILLEGAL_OPERATION, 'request without a mode field');
  const [file, mode, ...rest] = fields;
  if (file === '') throw new TftpProtocolError(ERR.ILLEGAL_OPERATION, 'request with an empty file name');
  if (rest.length % 2 !== 0) throw new TftpProtocolError(ERR.OPTION_REFUSED, 'option without a value');
  if (rest.length / 2 > MAX_OPTIONS) {
    throw new TftpProtocolError(ERR.OPTION_REFUSED, `${rest.length / 2} options exceed ${MAX_OPTIONS}`);
  }
  const options = new Map<string, string>();
  for (let i = 0; i < rest.length; i += 2) {
    const name = rest[i].toLowerCase(); // RFC 2347: option names are case-insensitive
    if (!options.has(name)) options.set(name, rest[i + 1].toLowerCase());
  }
  return { op, file, mode: mode.toLowerCase(), options };
}

export function encodeData(block: number, payload: Buffer): Buffer {
  const buf = Buffer.allocUnsafe(4 + payload.length);
  buf.writeUInt16BE(OP.DATA, 0);
  buf.writeUInt16BE(block & 0xffff, 2);
  payload.copy(buf, 4);
  return buf;
}

/** The 4-byte header of DATA `block`, for sending beside the payload without copying it into one buffer. */
export function encodeDataHeader(block: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf.writeUInt16BE(OP.DATA, 0);
  buf.writeUInt16BE(block & 0xffff, 2);
  return buf;
}

export function encodeAck(block: number): Buffer {
  const buf = Buffer.allocUnsafe(4);
  buf.writeUInt16BE(OP.ACK, 0);
  buf.writeUInt16BE(block & 0xffff, 2);
  return buf;
}

export function encodeError(code: number, message: string): Buffer {
  const text = Buffer.from(message.slice(0, 200), 'utf8');
  const buf = Buffer.alloc(5 + text.length);
  buf.writeUInt16BE(OP.ERROR, 0);
  buf.writeUInt16BE(code, 2);
  text.copy(buf, 4);
  return buf;
}

export function encodeOack(options: Record<string, string | number>): Buffer {
  const parts = [Buffer.from([0, OP.OACK])];
  for (const [name, value] of Object.entries(options))
    parts.push(Buffer.from(`${name}\0${value}\0`, 'ascii'));
  return Buffer.concat(parts);
}

export function encodeRequest(
  op: 'rrq' | 'wrq',
  file: string,
  mode: string,
  options: Record<string, string | number> = {},
) {
  const head = Buffer.from([0, op === 'rrq' ? OP.RRQ : OP.WRQ]);
  const opts = Object.entries(options)
    .map(([k, v]) => `${k}\0${v}\0`)
    .join('');
  return Buffer.concat([head, Buffer.from(`${file}\0${mode}\0${opts}`, 'utf8')]);
}

export interface NegotiationLimits {
  maxBlksize: number;
  maxWindowsize: number;
  /** cap on blksize × windowsize, the payload one window puts in flight (see startTftpServer's maxWindowBytes) */
  maxWindowBytes: number;
}

export interface Negotiated {
  blksize: number;
  windowsize: number;
  /** retransmission timeout in ms, when the client set one */
  timeoutMs?: number;
  /** options to echo in the OACK; empty = no OACK, data starts at once */
  oack: Record<string, number>;
}

/** Strict decimal parse: no signs, no exponents, no hex; undefined when not a plain integer. */
function toInt(value: string | undefined): number | undefined {
  if (value === undefined || !/^[0-9]{1,10}$/.test(value)) return undefined;
  return Number(value);
}

/**
 * Picks the options we accept. Unknown options and out-of-range values are ignored (RFC 2347 lets a server
 * leave an option out of its OACK), so an odd client still gets its file with the defaults.
 */
export function negotiate(options: Map<string, string>, size: number, limits: NegotiationLimits): Negotiated {
  const result: Negotiated = { blksize: 512, windowsize: 1, oack: {} };
  const blksize = toInt(options.get('blksize'));
  if (blksize !== undefined && blksize >= 8 && blksize <= 65464) {
    result.blksize = Math.min(blksize, limits.maxBlksize);
    result.oack.blksize = result.blksize;
  }
  const tsize = toInt(options.get('tsize'));
  if (tsize !== undefined) result.oack.tsize = size;
  const timeout = toInt(options.get('timeout'));
  if (timeout !== undefined && timeout >= 1 && timeout <= 255) {
    result.timeoutMs = timeout * 1000;
    result.oack.timeout = timeout;
  }
  const windowsize = toInt(options.get('windowsize'));
  if (windowsize !== undefined && windowsize >= 1 && windowsize <= 65535) {
    // RFC 7440 lets the server answer a smaller window than asked for; never below one block
    const byBytes = Math.max(1, Math.floor(limits.maxWindowBytes / result.blksize));
    result.windowsize = Math.min(windowsize, limits.maxWindowsize, byBytes);
    result.oack.windowsize = result.windowsize;
  }
  return result;
}
