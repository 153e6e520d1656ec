// Human durations ("20m", "90s", "1h30m", "500ms", "1.5h") → milliseconds. Pure (workflow-sandbox safe).
// Hand-written because the npm options (ms, parse-duration) accept far more than we want (e.g. "20 minutes ago",
// bare numbers as ms, repeated units) and a spec typo should be an error, not a surprise.

const UNIT_MS = { d: 86_400_000, h: 3_600_000, m: 60_000, s: 1_000, ms: 1 } as const;
type Unit = keyof typeof UNIT_MS;
const UNIT_ORDER: Unit[] = ['d', 'h', 'm', 's', 'ms'];

const COMPONENT = /([0-9]+(?:\.[0-9]+)?)(ms|d|h|m|s)/y;

/** Why `text` is not a duration, or undefined when it is. */
export function durationProblem(text: string): string | undefined {
  try {
    parseDuration(text);
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}

/**
 * Parses a duration made of components with units d, h, m, s, ms, largest first, each unit at most once:
 * "20m", "90s", "1h30m", "500ms", "1.5h". The result must be a whole number of milliseconds.
 * Throws an Error with a readable message otherwise.
 */
export function parseDuration(text: string): number {
  if (typeof text !== 'string') throw new Error('a duration must be a string like "20m"');
  const source = text.trim();
  const shown = JSON.stringify(text);
  if (source === '') throw new Error('empty duration; write e.g. "20m", "90s", "1h30m" or "500ms"');
  if (/^[0-9]+(\.[0-9]+)?$/.test(source)) {
    throw new Error(
      `duration ${shown} has no unit; write e.g. "${source}m" or "${source}s" (units: d h m s ms)`,
    );
  }
  let total = 0;
  let position = 0;
  let lastUnitIndex = -1;
  COMPONENT.lastIndex = 0;
  while (position < source.length) {
    COMPONENT.lastIndex = position;
    const match = COMPONENT.exec(source);
    if (!match) {
      throw new Error(
        `${shown} is not a duration; write e.g. "20m", "90s", "1h30m" or "500ms" (units: d h m s ms)`,
      );
    }
    const unit = match[2] as Unit;
    const unitIndex = UNIT_ORDER.indexOf(unit);
    if (unitIndex <= lastUnitIndex) {
      throw new Error(
        `${shown} is not a duration: units must appear once each, largest first (like "1h30m")`,
      );
    }
    lastUnitIndex = unitIndex;
    total += Number(match[1]) * UNIT_MS[unit];
    position = COMPONENT.lastIndex;
  }
  // Float arithmetic on decimals: accept tiny binary error, reject genuinely fractional milliseconds.
  const rounded = Math.round(total);
  if (Math.abs(total - rounded) > 1e-6) throw new Error(`${shown} is not a whole number of milliseconds`);
  if (!Number.isSafeInteger(rounded)) throw new Error(`${shown} is too long`);
  return rounded;
}

/** Milliseconds → the shortest canonical duration string ("1h30m", "500ms", "0s"). */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError(`not a duration in ms: ${ms}`);
  if (ms === 0) return '0s';
  let rest = ms;
  let out = '';
  for (const unit of UNIT_ORDER) {
    const count = Math.floor(rest / UNIT_MS[unit]);
    if (count > 0) {
      out += `${count}${unit}`;
      rest -= count * UNIT_MS[unit];
    }
  }
  return out;
}
