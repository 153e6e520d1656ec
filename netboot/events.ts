// One stream of boot events from DHCP, TFTP and HTTP, reduced to what a node workflow cares about:
// phase changes. Every package GET comes in; only the first (per attempt) and a derived `packages-done`
// (just before the status) go out.
import type { MachineRegistry } from './machines.ts';
import type { BootEvent, BootEventListener, BootPhase } from './types.ts';

export interface BootEventStreamOptions {
  /** How many nodes' dedup state to keep (least recently seen dropped first). Default 10,000. */
  maxNodes?: number;
  /** Told about a listener that threw; the event still reaches every other listener. */
  onListenerError?: (error: unknown, event: BootEvent) => void;
}

interface NodeState {
  phase?: BootPhase;
  packagesSeen: boolean;
  packagesDone: boolean;
  packageCount: number;
  lastPackage?: string | number | boolean;
}

export class BootEventStream {
  private readonly nodes = new Map<string, NodeState>();
  private readonly listeners = new Set<BootEventListener>();
  private readonly maxNodes: number;
  private readonly onListenerError: (error: unknown, event: BootEvent) => void;

  constructor(options: BootEventStreamOptions = {}) {
    this.maxNodes = Math.max(1, options.maxNodes ?? 10_000);
    this.onListenerError = options.onListenerError ?? (() => {});
  }

  /** Feed one raw event; listeners get it only if it is news for its node. */
  publish(event: BootEvent): void {
    const key = nodeKey(event);
    if (key === undefined) {
      this.forward(event); // cannot be attributed: nothing to dedup against
      return;
    }
    const state = this.touch(key);
    switch (event.phase) {
      case 'packages':
        state.packageCount++;
        state.lastPackage = event.detail?.file;
        if (state.packagesSeen) return;
        state.packagesSeen = true;
        break;
      case 'packages-done':
        if (state.packagesDone) return;
        state.packagesDone = true;
        break;
      case 'status':
        if (state.packagesSeen && !state.packagesDone) {
          state.packagesDone = true;
          const detail: Record<string, string | number | boolean> = { count: state.packageCount };
          if (state.lastPackage !== undefined) detail.file = state.lastPackage;
          this.forward({ ...pick(event), phase: 'packages-done', at: event.at, detail });
        }
        break; // a status always goes out
      default:
        if (state.phase === event.phase) return;
    }
    state.phase = event.phase;
    this.forward(event);
  }

  /** Listen to deduplicated events; returns the function that stops listening. */
  subscribe(listener: BootEventListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Forget a node's history: call it when a new attempt starts (its first package is news again). */
  resetNode(node: string): void {
    this.nodes.delete(node);
  }

  /** The last phase forwarded for a node (by name, or `mac:<mac>` / `ip:<ip>` when unattributed). */
  lastPhase(key: string): BootPhase | undefined {
    return this.nodes.get(key)?.phase;
  }

  private touch(key: string): NodeState {
    let state = this.nodes.get(key);
    if (state) {
      this.nodes.delete(key); // re-insert: Map order is our LRU order
    } else {
      state = { packagesSeen: false, packagesDone: false, packageCount: 0 };
      while (this.nodes.size >= this.maxNodes) {
        const oldest = this.nodes.keys().next().value;
        if (oldest === undefined) break;
        this.nodes.delete(oldest);
      }
    }
    this.nodes.set(key, state);
    return state;
  }

  private forward(event: BootEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        const result: unknown = listener(event);
        if (result instanceof Promise) result.catch((error) => this.reportListenerError(error, event));
      } catch (error) {
        this.reportListenerError(error, event);
      }
    }
  }

  private reportListenerError(error: unknown, event: BootEvent): void {
    try {
      this.onListenerError(error, event);
    } catch {
      // the error reporter itself failed; the stream must keep going
    }
  }
}

function nodeKey(event: BootEvent): string | undefined {
  if (event.node) return event.node;
  if (event.mac) return `mac:${event.mac}`;
  if (event.ip) return `ip:${event.ip}`;
  return undefined;
}

function pick(event: BootEvent): Pick<BootEvent, 'node' | 'mac' | 'ip'> {
  const out: Pick<BootEvent, 'node' | 'mac' | 'ip'> = {};
  if (event.node !== undefined) out.node = event.node;
  if (event.mac !== undefined) out.mac = event.mac;
  if (event.ip !== undefined) out.ip = event.ip;
  return out;
}

/** Resets a node's dedup state whenever the registry gives it a new token (a new attempt). */
export function resetOnNewAttempt(
  machines: Pick<MachineRegistry, 'onChange'>,
  stream: BootEventStream,
): () => void {
  return machines.onChange((change) => {
    if (change.kind === 'token' && change.machine.token !== '') stream.resetNode(change.machine.name);
  });
}
