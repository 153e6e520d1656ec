// Shared output helpers of the `pxeflow` command: exit codes, errors that carry one, TTY/colour detection,
// aligned tables, durations and ages for humans. Nothing here talks to Temporal.
import { styleText } from 'node:util';

/** The documented exit codes (docs/cli.md). */
export const EXIT = {
  /** every node succeeded, or the command did what it was asked */
  ok: 0,
  /** some nodes did not succeed (or the install has not finished) */
  incomplete: 1,
  /** bad usage or bad config: nothing was done */
  usage: 2,
  /** Temporal cannot be reached */
  unreachable: 3,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the command reports as one clear message (no stack) and turns into its exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode = EXIT.usage,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Where commands write; tests and the live view share it. */
export interface Out {
  write(text: string): void;
  /** true when stdout is a terminal: bars, colours, redraws allowed */
  tty: boolean;
  colour: boolean;
}

export function stdoutOut(): Out {
  const tty = process.stdout.isTTY === true;
  const colour = tty && process.env.NO_COLOR === undefined && process.env.TERM !== 'dumb';
  return { write: (text) => void process.stdout.write(text), tty, colour };
}

export function line(out: Out, text = ''): void {
  out.write(`${text}\n`);
}

export function printJson(out: Out, value: unknown): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** One JSON document per line (for `--json` streams). */
export function printJsonLine(out: Out, value: unknown): void {
  out.write(`${JSON.stringify(value)}\n`);
}

type Style = 'green' | 'red' | 'yellow' | 'cyan' | 'bold' | 'dim';
export function paint(out: Out, style: Style, text: string): string {
  return out.colour ? styleText(style, text) : text;
}

const OUTCOME_STYLE: Record<string, Style> = {
  success: 'green',
  failure: 'red',
  timeout: 'red',
  'power-error': 'red',
  skipped: 'yellow',
  cancelled: 'yellow',
};
export function paintOutcome(out: Out, outcome: string, text = outcome): string {
  return paint(out, OUTCOME_STYLE[outcome] ?? 'bold', text);
}

/** Width of the text as shown (ANSI colour codes take no room). */
function shownWidth(text: string): number {
  return text.replace(/\x1b\[[0-9;]*m/g, '').length;
}

/** Left-aligned columns separated by two spaces, with a header row. */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(shownWidth(h), ...rows.map((r) => shownWidth(r[i] ?? ''))));
  const fmt = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i] - shownWidth(c))))
      .join('  ')
      .trimEnd();
  return [fmt(headers), ...rows.map(fmt)].join('\n') + '\n';
}

/** 65_000 → "1m05s"; 3_600_000 → "1h00m"; 800 → "0s". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Text of `--help` examples: "Examples:\n  $ pxeflow …" (commander `addHelpText('after', …)`). */
export function examples(...lines: string[]): string {
  return `\nExamples:\n${lines.map((l) => (l.startsWith('#') ? `  ${l}` : `  $ ${l}`)).join('\n')}\n`;
}
