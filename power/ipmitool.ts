// PowerDriver through ipmitool (execa 9). Safety rules, each from a field failure:
//  - the password only ever travels in the child's environment (IPMITOOL_PASSWORD + -E), never on argv;
//  - -C 3 (without it each call first waits 10 s probing cipher suites), bounded -N/-R, plus a hard kill
//    timeout per process, so a dead BMC costs seconds, not minutes;
//  - stdin closed, so ipmitool can never stop and prompt for a password;
//  - output is parsed as well as the exit code: `chassis bootdev` exits 0 when the BMC refuses it;
//  - an auth failure is never retried.
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import {
  type BmcInfo,
  type BootDevice,
  type BootDeviceOptions,
  type BmcTarget,
  bmcName,
  type PowerAction,
  type PowerDriver,
  type PowerState,
  validateTarget,
} from './driver.ts';
import {
  BmcAuthError,
  BmcCommandError,
  BmcConfigError,
  type BmcError,
  type BmcErrorContext,
  BmcOutputError,
  BmcUnreachableError,
  isBmcError,
} from './errors.ts';
import {
  bootDeviceAccepted,
  classifyFailure,
  meaningfulLines,
  parseBootDeviceSelector,
  parseMcInfo,
  parsePowerStatus,
  powerControlAccepted,
} from './ipmitool-output.ts';
import { type BmcLimiter, type KeyedMutex, sharedBmcLimiter, sharedBmcMutex } from './limit.ts';
import { type SpawnServer, sharedSpawnServer } from './spawn-server.ts';

/** One ipmitool process, as reported to `onCall` (no secret in it). */
export interface IpmitoolCallEvent {
  bmc: string;
  operation: string;
  /** ipmitool arguments after the connection options, e.g. ["power", "status"] */
  command: string[];
  attempt: number;
  durationMs: number;
  outcome: 'ok' | BmcError['code'];
}

export interface IpmitoolOptions {
  /** ipmitool -N: seconds between retransmissions (default 1) */
  timeoutSeconds?: number;
  /** ipmitool -R: retransmissions per request (default 1) */
  retries?: number;
  /** hard kill per ipmitool process (default: 4 × N × (R+1) s, at least 5 s) */
  killTimeoutMs?: number;
  /** driver-level attempts for retryable failures (default 1: Temporal retries with backoff) */
  attempts?: number;
  /** first backoff between driver-level attempts, doubled each time (default 250 ms) */
  retryDelayMs?: number;
  /** RMCP+ cipher suite (default 3: HMAC-SHA1 + AES-128) */
  cipherSuite?: number;
  /** read the boot flags back after setting them (default true): some BMCs accept and forget */
  verifyBootDevice?: boolean;
  ipmitoolPath?: string;
  /** process-wide cap on running ipmitool processes (default: the shared controller limiter) */
  limiter?: BmcLimiter;
  /** per-BMC serialization (default: the shared one) */
  mutex?: KeyedMutex;
  /** where ipmitool processes are started (default: the shared small helper process, see spawn-server.ts) */
  spawner?: SpawnServer;
  onCall?: (event: IpmitoolCallEvent) => void;
}

interface RunResult {
  stdout: string;
  stderr: string;
}

export class IpmitoolDriver implements PowerDriver {
  readonly name: string;
  private readonly target: BmcTarget;
  private readonly opts: Required<Omit<IpmitoolOptions, 'onCall' | 'limiter' | 'mutex' | 'spawner'>>;
  private readonly spawner: SpawnServer;
  private readonly limiter: BmcLimiter;
  private readonly mutex: KeyedMutex;
  private readonly onCall?: (event: IpmitoolCallEvent) => void;

  constructor(target: BmcTarget, options: IpmitoolOptions = {}) {
    this.target = { ...target };
    this.name = bmcName(target);
    const timeoutSeconds = options.timeoutSeconds ?? 1;
    const retries = options.retries ?? 1;
    if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1) {
      throw new RangeError('timeoutSeconds: must be an integer >= 1');
    }
    if (!Number.isInteger(retries) || retries < 0) throw new RangeError('retries: must be an integer >= 0');
    this.opts = {
      timeoutSeconds,
      retries,
      killTimeoutMs: options.killTimeoutMs ?? Math.max(5000, 4 * timeoutSeconds * (retries + 1) * 1000),
      attempts: Math.max(1, options.attempts ?? 1),
      retryDelayMs: options.retryDelayMs ?? 250,
      cipherSuite: options.cipherSuite ?? 3,
      verifyBootDevice: options.verifyBootDevice ?? true,
      ipmitoolPath: options.ipmitoolPath ?? 'ipmitool',
    };
    this.limiter = options.limiter ?? sharedBmcLimiter();
    this.mutex = options.mutex ?? sharedBmcMutex();
    this.spawner = options.spawner ?? sharedSpawnServer();
    this.onCall = options.onCall;
  }

  async validate(): Promise<void> {
    validateTarget(this.target);
    const probe = await execa(this.opts.ipmitoolPath, ['-V'], {
      stdin: 'ignore',
      reject: false,
      timeout: 5000,
    });
    if (probe.exitCode !== 0 || !/ipmitool version/i.test(`${probe.stdout}${probe.stderr}`)) {
      throw new BmcConfigError(
        { bmc: this.name, operation: 'validate' },
        `cannot run ${this.opts.ipmitoolPath} (is the ipmitool package installed?)`,
      );
    }
  }

  powerState(): Promise<PowerState> {
    return this.locked(() => this.readPowerState('powerState'));
  }

  powerOn(): Promise<PowerAction> {
    return this.locked(async () => {
      if ((await this.readPowerState('powerOn')) === 'on') return 'none';
      await this.control('powerOn', 'on');
      return 'on';
    });
  }

  powerOff(): Promise<PowerAction> {
    return this.locked(async () => {
      if ((await this.readPowerState('powerOff')) === 'off') return 'none';
      await this.control('powerOff', 'off');
      return 'off';
    });
  }

  powerCycle(): Promise<PowerAction> {
    return this.locked(() => this.cycleOrOn('powerCycle'));
  }

  setBootDevice(device: BootDevice, options: BootDeviceOptions): Promise<void> {
    return this.locked(() => this.writeBootDevice('setBootDevice', device, options));
  }

  powerOnForPxe(options: { uefi: boolean }): Promise<PowerAction> {
    return this.locked(async () => {
      await this.writeBootDevice('powerOnForPxe', 'pxe', { once: true, uefi: options.uefi });
      return this.cycleOrOn('powerOnForPxe');
    });
  }

  info(): Promise<BmcInfo> {
    return this.locked(async () => {
      const { stdout } = await this.run('info', ['mc', 'info']);
      const info = parseMcInfo(stdout);
      if (!info)
        throw new BmcOutputError(this.ctx('info', stdout), 'mc info: no Device/Manufacturer/Product ID');
      return info;
    });
  }

  // --- internals (called with the per-BMC lock held) ---

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    return this.mutex.run(this.name, async () => {
      validateTarget(this.target);
      return fn();
    });
  }

  private async readPowerState(operation: string): Promise<PowerState> {
    const { stdout } = await this.run(operation, ['power', 'status']);
    const state = parsePowerStatus(stdout);
    if (!state)
      throw new BmcOutputError(this.ctx(operation, stdout), 'power status: no "Chassis Power is on|off"');
    return state;
  }

  private async control(operation: string, action: 'on' | 'off' | 'cycle'): Promise<void> {
    // A cycle is not retried by the driver: if the first one was executed but its answer lost, a second
    // one would cut the fresh boot.
    const { stdout, stderr } = await this.run(
      operation,
      ['power', action],
      action === 'cycle' ? 1 : undefined,
    );
    if (!powerControlAccepted(stdout, action)) {
      throw new BmcCommandError(this.ctx(operation, stderr || stdout), `power ${action} not acknowledged`);
    }
  }

  private async cycleOrOn(operation: string): Promise<PowerAction> {
    if ((await this.readPowerState(operation)) === 'off') {
      await this.control(operation, 'on');
      return 'on';
    }
    await this.control(operation, 'cycle');
    return 'cycle';
  }

  private async writeBootDevice(operation: string, device: BootDevice, options: BootDeviceOptions) {
    const flags = [...(options.once ? [] : ['persistent']), ...(options.uefi ? ['efiboot'] : [])];
    const args = ['chassis', 'bootdev', device, ...(flags.length ? [`options=${flags.join(',')}`] : [])];
    let { stdout, stderr } = await this.run(operation, args);
    if (!bootDeviceAccepted(stdout, stderr, device)) {
      // Once more after a pause: a BMC answers "Error setting Chassis Boot Parameter" while a set-in-progress
      // lock is held — by a retransmission of our own request when ipmitool's -N timer fired under load (seen
      // with 250 nodes booting on 2 cores), or by another session. A BMC that really refuses refuses again.
      await sleep(this.opts.retryDelayMs * 4);
      ({ stdout, stderr } = await this.run(operation, args));
    }
    if (!bootDeviceAccepted(stdout, stderr, device)) {
      throw new BmcCommandError(
        this.ctx(operation, stderr || stdout),
        `boot device ${device} refused by the BMC`,
      );
    }
    if (!this.opts.verifyBootDevice) return;
    const readBack = await this.run(operation, ['chassis', 'bootparam', 'get', '5']);
    const selected = parseBootDeviceSelector(readBack.stdout);
    if (selected !== device) {
      throw new BmcCommandError(
        this.ctx(operation, readBack.stdout),
        `boot device read back as ${selected ?? 'nothing'} after setting ${device}`,
      );
    }
  }

  /** One ipmitool command with driver-level retries of retryable failures (never of auth failures). */
  private async run(operation: string, command: string[], attempts = this.opts.attempts): Promise<RunResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.limiter(() => this.spawnOnce(operation, command, attempt));
      } catch (err) {
        if (!isBmcError(err) || !err.retryable || attempt >= attempts) throw err;
        const backoff = this.opts.retryDelayMs * 2 ** (attempt - 1);
        await sleep(backoff / 2 + Math.random() * (backoff / 2));
      }
    }
  }

  private async spawnOnce(operation: string, command: string[], attempt: number): Promise<RunResult> {
    const t = this.target;
    const args = [
      ...['-I', 'lanplus', '-C', String(this.opts.cipherSuite)],
      ...['-N', String(this.opts.timeoutSeconds), '-R', String(this.opts.retries)],
      ...['-E', '-H', t.address, '-p', String(t.port), '-U', t.username, '-v'],
      ...command,
    ];
    const started = performance.now();
    const report = (outcome: IpmitoolCallEvent['outcome']) =>
      this.onCall?.({
        bmc: this.name,
        operation,
        command,
        attempt,
        durationMs: performance.now() - started,
        outcome,
      });
    const result = await this.spawner.run({
      file: this.opts.ipmitoolPath,
      args,
      // Only what ipmitool needs: no inherited secrets, C locale for stable output.
      env: {
        PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
        LC_ALL: 'C',
        IPMITOOL_PASSWORD: t.password,
      },
      timeoutMs: this.opts.killTimeoutMs,
    });
    const stdout = typeof result.stdout === 'string' ? result.stdout : '';
    const stderr = typeof result.stderr === 'string' ? result.stderr : '';
    let error: BmcError | undefined;
    if (result.timedOut) {
      error = new BmcUnreachableError(
        this.ctx(operation, stderr),
        `no answer within ${this.opts.killTimeoutMs} ms (ipmitool killed)`,
      );
    } else if (result.exitCode === undefined) {
      error = new BmcConfigError(
        this.ctx(operation),
        `cannot run ${this.opts.ipmitoolPath}${result.error ? `: ${result.error}` : ''}`,
      );
    } else if (result.exitCode !== 0) {
      error = this.classify(operation, stdout, stderr);
    } else {
      // Exit 0 with a session error on stderr happens too; let the caller's output check decide otherwise.
      const kind = classifyFailure(stderr).kind;
      if (kind === 'auth' || kind === 'unreachable') error = this.classify(operation, stdout, stderr);
    }
    report(error ? error.code : 'ok');
    if (error) throw error;
    return { stdout, stderr };
  }

  private classify(operation: string, stdout: string, stderr: string): BmcError {
    const failure = classifyFailure(stderr, stdout);
    const ctx = this.ctx(operation, stderr || stdout);
    switch (failure.kind) {
      case 'auth':
        return new BmcAuthError(ctx);
      case 'unreachable':
        return new BmcUnreachableError(ctx);
      case 'command':
        return new BmcCommandError(ctx, 'the BMC rejected the command', failure.retryable);
      default:
        return new BmcOutputError(ctx, 'ipmitool failed without a recognizable reason');
    }
  }

  /** Error context with a short, noise-free, secret-scrubbed excerpt of ipmitool's output. */
  private ctx(operation: string, output = ''): BmcErrorContext {
    let detail = meaningfulLines(output).slice(-2).join(' | ').slice(0, 240);
    const pw = this.target.password;
    if (pw.length >= 4) detail = detail.split(pw).join('***');
    return { bmc: this.name, operation, detail: detail || undefined };
  }
}

export function createIpmitoolDriver(target: BmcTarget, options?: IpmitoolOptions): IpmitoolDriver {
  return new IpmitoolDriver(target, options);
}
