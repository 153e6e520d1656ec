// Typed BMC errors. Every error names the BMC (address:port) and the operation, never the password, and
// says whether retrying can help: the workflow layer maps `retryable: false` to
// ApplicationFailure.nonRetryable (a wrong password must never be retried — it can lock the account).

export type BmcErrorCode = 'BMC_AUTH' | 'BMC_UNREACHABLE' | 'BMC_COMMAND' | 'BMC_OUTPUT' | 'BMC_CONFIG';

export interface BmcErrorContext {
  /** "address:port" of the BMC */
  bmc: string;
  /** driver operation, e.g. "powerOn", "setBootDevice" */
  operation: string;
  /** secret-free excerpt of what ipmitool said, for diagnosis */
  detail?: string;
}

export abstract class BmcError extends Error {
  abstract readonly code: BmcErrorCode;
  abstract readonly retryable: boolean;
  readonly bmc: string;
  readonly operation: string;
  readonly detail?: string;

  constructor(summary: string, ctx: BmcErrorContext) {
    super(`BMC ${ctx.bmc}: ${ctx.operation}: ${summary}${ctx.detail ? ` (${ctx.detail})` : ''}`);
    this.name = new.target.name;
    this.bmc = ctx.bmc;
    this.operation = ctx.operation;
    this.detail = ctx.detail;
  }

  /** Plain, secret-free shape for logs, workflow payloads and ApplicationFailure details. */
  toJSON(): { code: BmcErrorCode; retryable: boolean; bmc: string; operation: string; message: string } {
    return {
      code: this.code,
      retryable: this.retryable,
      bmc: this.bmc,
      operation: this.operation,
      message: this.message,
    };
  }
}

/** Wrong user name or password (or a privilege the user lacks). Never retried. */
export class BmcAuthError extends BmcError {
  readonly code = 'BMC_AUTH';
  readonly retryable = false;
  constructor(ctx: BmcErrorContext) {
    super('authentication failed (wrong user name or password?)', ctx);
  }
}

/** No answer within the bound (nothing listening, network down, BMC hung). Retry with backoff. */
export class BmcUnreachableError extends BmcError {
  readonly code = 'BMC_UNREACHABLE';
  readonly retryable = true;
  constructor(ctx: BmcErrorContext, summary = 'no answer from the BMC') {
    super(summary, ctx);
  }
}

/** The BMC answered but refused or failed the command. Retryable only for transient refusals (busy). */
export class BmcCommandError extends BmcError {
  readonly code = 'BMC_COMMAND';
  readonly retryable: boolean;
  constructor(ctx: BmcErrorContext, summary = 'the BMC rejected the command', retryable = false) {
    super(summary, ctx);
    this.retryable = retryable;
  }
}

/** ipmitool reported success but its output is not what the operation must produce. */
export class BmcOutputError extends BmcError {
  readonly code = 'BMC_OUTPUT';
  readonly retryable = false;
  constructor(ctx: BmcErrorContext, summary = 'unexpected output from ipmitool') {
    super(summary, ctx);
  }
}

/** The target or the local tooling is unusable (bad address, ipmitool missing). Fix the config, not retry. */
export class BmcConfigError extends BmcError {
  readonly code = 'BMC_CONFIG';
  readonly retryable = false;
  constructor(ctx: BmcErrorContext, summary: string) {
    super(summary, ctx);
  }
}

export function isBmcError(err: unknown): err is BmcError {
  return err instanceof BmcError;
}
