// The controller's in-memory view of the machines the netboot services answer for.
// One registry is shared by DHCP, TFTP and HTTP; it owns each machine's boot target and callback token.
import { isIPv4 } from 'node:net';
import { newToken, tokenMatches } from './tokens.ts';
import type { NetbootMachine } from './types.ts';

/** What a caller supplies; a missing token is generated, a missing target defaults to 'install'. */
export type MachineInput = Omit<NetbootMachine, 'token' | 'target'> &
  Partial<Pick<NetbootMachine, 'token' | 'target'>>;

export type MachineChange =
  | { kind: 'upsert' | 'target' | 'token'; machine: Readonly<NetbootMachine> }
  | { kind: 'remove'; name: string };
export type MachineChangeListener = (change: MachineChange) => void;

/**
 * Which URLs a token check is for. 'callback' (kickstart, status) accepts only the live token.
 * 'boot-script' (the iPXE script) also accepts the token retired by the final status while the machine is
 * in local boot: DHCP may still hand out the old script URL after success, and the answer is then `exit`,
 * which carries no secret and changes nothing.
 */
export type TokenPurpose = 'callback' | 'boot-script';

interface MachineRecord {
  machine: NetbootMachine;
  attempt: number;
  retiredToken: string;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const DUMMY_TOKEN = '0'.repeat(64);

export class MachineRegistry {
  private readonly records = new Map<string, MachineRecord>();
  private readonly macIndex = new Map<string, string>();
  private readonly ipIndex = new Map<string, string>();
  private readonly listeners = new Set<MachineChangeListener>();

  /** Adds or replaces a machine (by name). Keeps the existing token and target unless given. */
  upsert(input: MachineInput): Readonly<NetbootMachine> {
    const mac = input.mac?.toLowerCase();
    if (!NAME_RE.test(input.name))
      throw new Error(`machine.name ${JSON.stringify(input.name)}: expected 1-63 of [A-Za-z0-9._-]`);
    if (mac !== undefined && !MAC_RE.test(mac))
      throw new Error(`machine ${input.name}: mac ${JSON.stringify(input.mac)} is not aa:bb:cc:dd:ee:ff`);
    if (input.ip !== undefined && !isIPv4(input.ip))
      throw new Error(`machine ${input.name}: ip ${JSON.stringify(input.ip)} is not an IPv4 address`);
    if (input.token !== undefined && input.token.length < 32)
      throw new Error(`machine ${input.name}: token is shorter than 128 bits of hex`);
    const macOwner = mac && this.macIndex.get(mac);
    if (macOwner && macOwner !== input.name)
      throw new Error(`machine ${input.name}: mac ${mac} already belongs to ${macOwner}`);
    const ipOwner = input.ip && this.ipIndex.get(input.ip);
    if (ipOwner && ipOwner !== input.name)
      throw new Error(`machine ${input.name}: ip ${input.ip} already belongs to ${ipOwner}`);

    const old = this.records.get(input.name);
    if (old) this.unindex(old.machine);
    const machine: NetbootMachine = {
      ...input,
      mac,
      token: input.token ?? old?.machine.token ?? newToken(),
      target: input.target ?? old?.machine.target ?? 'install',
    };
    const record: MachineRecord = {
      machine,
      attempt: old?.attempt ?? 1,
      retiredToken: old?.retiredToken ?? '',
    };
    if (input.token !== undefined && old && input.token !== old.machine.token) record.attempt++;
    this.records.set(machine.name, record);
    if (machine.mac) this.macIndex.set(machine.mac, machine.name);
    if (machine.ip) this.ipIndex.set(machine.ip, machine.name);
    return this.emit('upsert', record);
  }

  remove(name: string): boolean {
    const record = this.records.get(name);
    if (!record) return false;
    this.unindex(record.machine);
    this.records.delete(name);
    this.notify({ kind: 'remove', name });
    return true;
  }

  get(name: string): Readonly<NetbootMachine> | undefined {
    const record = this.records.get(name);
    return record && snapshot(record.machine);
  }

  byMac(mac: string): Readonly<NetbootMachine> | undefined {
    const name = this.macIndex.get(mac.toLowerCase());
    return name === undefined ? undefined : this.get(name);
  }

  byIp(ip: string): Readonly<NetbootMachine> | undefined {
    const name = this.ipIndex.get(ip.startsWith('::ffff:') ? ip.slice(7) : ip);
    return name === undefined ? undefined : this.get(name);
  }

  list(): Readonly<NetbootMachine>[] {
    return [...this.records.values()].map((r) => snapshot(r.machine));
  }

  /** The install attempt number (1-based); it grows with every rotateToken. */
  attempt(name: string): number | undefined {
    return this.records.get(name)?.attempt;
  }

  setTarget(name: string, target: NetbootMachine['target']): Readonly<NetbootMachine> {
    const record = this.require(name);
    record.machine.target = target;
    return this.emit('target', record);
  }

  /** Starts a new attempt: a fresh token; every URL carrying the old one stops working. */
  rotateToken(name: string): string {
    const record = this.require(name);
    record.machine.token = newToken();
    record.retiredToken = '';
    record.attempt++;
    this.emit('token', record);
    return record.machine.token;
  }

  /**
   * Ends the current attempt's callbacks (after its final status). With `onlyIf`, revokes only when that is
   * still the live token (a concurrent rotation wins). Returns whether a token was revoked.
   */
  revokeToken(name: string, onlyIf?: string): boolean {
    const record = this.require(name);
    const live = record.machine.token;
    if (live === '' || (onlyIf !== undefined && !tokenMatches(live, onlyIf))) return false;
    record.retiredToken = live;
    record.machine.token = '';
    this.emit('token', record);
    return true;
  }

  /** The machine when `given` is valid for `purpose`; undefined for an unknown name or a wrong token. */
  checkToken(name: string, given: string, purpose: TokenPurpose): Readonly<NetbootMachine> | undefined {
    const record = this.records.get(name);
    if (!record) {
      tokenMatches(DUMMY_TOKEN, given); // same work as a known node: no enumeration by timing
      return undefined;
    }
    const live = tokenMatches(record.machine.token, given);
    const retired =
      purpose === 'boot-script' &&
      record.machine.target === 'localboot' &&
      tokenMatches(record.retiredToken, given);
    return live || retired ? snapshot(record.machine) : undefined;
  }

  /** Called after every change (e.g. DHCP rewrites a reservation's script URL on a new token). */
  onChange(listener: MachineChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private require(name: string): MachineRecord {
    const record = this.records.get(name);
    if (!record) throw new Error(`unknown machine ${JSON.stringify(name)}`);
    return record;
  }

  private unindex(machine: NetbootMachine): void {
    if (machine.mac && this.macIndex.get(machine.mac) === machine.name) this.macIndex.delete(machine.mac);
    if (machine.ip && this.ipIndex.get(machine.ip) === machine.name) this.ipIndex.delete(machine.ip);
  }

  private emit(kind: 'upsert' | 'target' | 'token', record: MachineRecord): Readonly<NetbootMachine> {
    const machine = snapshot(record.machine);
    this.notify({ kind, machine });
    return machine;
  }

  private notify(change: MachineChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch {
        // a failing listener must not undo or block a registry change
      }
    }
  }
}

function snapshot(machine: NetbootMachine): Readonly<NetbootMachine> {
  return Object.freeze({ ...machine });
}
