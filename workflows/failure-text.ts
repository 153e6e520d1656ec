// The reason a failure gives an operator: the innermost cause, with its type and the activity it came from
// ("finishNode: BmcUnreachable: no answer from 10.10.0.17:623"), never the SDK's "Activity task failed".
// Sandbox-safe: @temporalio/workflow only.
import { ActivityFailure, ApplicationFailure } from '@temporalio/workflow';

export function failureText(err: unknown): string {
  let e: unknown = err;
  let activity: string | undefined;
  for (let depth = 0; e instanceof Error && depth < 10; depth++) {
    if (e instanceof ActivityFailure) activity ??= e.activityType;
    const next = (e as { cause?: unknown }).cause;
    if (!(next instanceof Error)) break;
    e = next;
  }
  const inner =
    e instanceof ApplicationFailure && e.type
      ? `${e.type}: ${e.message}`
      : e instanceof Error
        ? e.message
        : String(e);
  return activity ? `${activity}: ${inner}` : inner;
}
