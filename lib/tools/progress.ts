/*
 * The progress line of cptofs, cpfromfs and fs2tar: on standard error, only when it is a
 * terminal and -q was not given, and only once the work has run for a second (so quick
 * copies print nothing). It shows entries done of the total, bytes done of the total, the
 * rate over the last few seconds and the time left:
 *
 *   cptofs: [##########..........]   52%  1204/2310 files  310.2/596.0 MiB  ETA 0:06  48.1 MiB/s
 *
 * The totals come from a scan of the sources made before the copy, only when the line is
 * shown (a readdir and an lstat per entry: a small part of what copying the entry costs);
 * while the scan runs the line says how far it got. The line is redrawn at most ten times a
 * second, fits the terminal's width (process.stderr.columns; pieces are left out from the
 * right when it is narrow) and is cleared when the work ends. Other messages (warnings, -v)
 * go through write(), which clears the line first.
 *
 * LKL_TOOLS_PROGRESS_DELAY_MS (default 1000) changes the second before the line appears;
 * tests set it to 0.
 */

export const PROGRESS_DELAY_ENV = 'LKL_TOOLS_PROGRESS_DELAY_MS';
const REDRAW_MS = 100;
/** The rate is measured over this many milliseconds. */
const RATE_WINDOW_MS = 5000;
const RATE_MIN_MS = 500;

/** What a progress line writes to: process.stderr, or a stand-in in tests. */
export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

export interface ProgressOptions {
  prog: string;
  stream?: ProgressStream;
  /** -q: never draw. */
  quiet?: boolean;
  /** Before the first draw (default: $LKL_TOOLS_PROGRESS_DELAY_MS, else 1000). */
  delayMs?: number;
  /** The clock, in milliseconds (tests). */
  now?: () => number;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1536 -> "1.5 KiB"; the unit of `scale` (default: n's own). */
export function formatBytes(n: number, scale = n): string {
  let u = 0;
  let d = 1;
  while (u < UNITS.length - 1 && scale >= d * 1024) { d *= 1024; u++; }
  return u === 0 ? `${n} B` : `${(n / d).toFixed(1)} ${UNITS[u]}`;
}

/** Seconds as M:SS or H:MM:SS. */
export function formatDuration(sec: number): string {
  const s = Math.max(0, Math.round(sec));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const two = (x: number) => String(x).padStart(2, '0');
  return h ? `${h}:${two(m)}:${two(r)}` : `${m}:${two(r)}`;
}

function delayFromEnv(): number {
  const v = process.env[PROGRESS_DELAY_ENV];
  if (v === undefined || !/^\d+$/.test(v)) return 1000;
  return Number(v);
}

export class Progress {
  /** Whether the line may be drawn at all (a terminal, no -q). */
  readonly enabled: boolean;
  files = 0;
  bytes = 0;
  totalFiles: number | undefined;
  totalBytes: number | undefined;
  /** While the pre-scan runs: how many entries it has seen. */
  private scanning = false;
  private readonly stream: ProgressStream;
  private readonly now: () => number;
  private readonly start: number;
  /** When the copy proper began (after the scan). */
  private copyStart: number;
  private readonly delay: number;
  private lastDraw = -Infinity;
  private drawn = false;
  private timer: ReturnType<typeof setInterval> | undefined;
  private samples: [number, number][] = [];
  private done = false;

  constructor(readonly o: ProgressOptions) {
    this.stream = o.stream ?? process.stderr;
    this.enabled = !o.quiet && this.stream.isTTY === true;
    this.now = o.now ?? (() => performance.now());
    this.start = this.copyStart = this.now();
    this.delay = o.delayMs ?? delayFromEnv();
    if (this.enabled) {
      // Also while one large file is being copied (no per-entry calls come then).
      this.timer = setInterval(() => this.tick(), REDRAW_MS);
      this.timer.unref?.();
    }
  }

  /** The pre-scan starts (its entries are counted by scanned()). */
  beginScan(): void { this.scanning = true; this.totalFiles = 0; this.totalBytes = 0; }
  scanned(bytes: number): void {
    this.totalFiles! += 1;
    this.totalBytes! += bytes;
    this.tick();
  }
  endScan(): void { this.scanning = false; this.copyStart = this.now(); this.samples = []; this.tick(); }

  /** One entry finished (its bytes were counted with addBytes, or are `rest`). */
  fileDone(rest = 0): void {
    this.files++;
    this.bytes += rest;
    this.tick();
  }
  addBytes(n: number): void {
    this.bytes += n;
    this.tick();
  }

  /** Writes a message line, clearing the progress line first (it is redrawn at the next tick). */
  write(text: string): void {
    this.clear();
    this.stream.write(text);
  }

  /** The work has ended: stop and clear the line. */
  finish(): void {
    this.done = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.clear();
  }

  private clear(): void {
    if (!this.drawn) return;
    this.stream.write('\r\x1b[K');
    this.drawn = false;
  }

  private tick(): void {
    if (!this.enabled || this.done) return;
    const t = this.now();
    if (t - this.start < this.delay || t - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = t;
    this.samples.push([t, this.bytes]);
    while (this.samples.length > 2 && t - this.samples[0]![0] > RATE_WINDOW_MS) this.samples.shift();
    const width = Math.max(20, (this.stream.columns || 80) - 1);
    this.stream.write(`\r${fit(this.pieces(t), width)}\x1b[K`);
    this.drawn = true;
  }

  /**
   * Bytes per second over the last few seconds; over the whole copy while it has run less
   * than that; undefined in its first half second (too early to say).
   */
  private rate(t: number): number | undefined {
    if (t - this.copyStart < RATE_MIN_MS) return undefined;
    const first = this.samples[0]!;
    if (t - first[0] >= RATE_MIN_MS) return (this.bytes - first[1]) / ((t - first[0]) / 1000);
    return this.bytes / ((t - this.copyStart) / 1000);
  }

  /** The line's pieces, in order; fit() leaves out the bar, then pieces from the right. */
  private pieces(t: number): Piece[] {
    const head = `${this.o.prog}:`;
    if (this.scanning) return [head, `counting: ${this.totalFiles} files, ${formatBytes(this.totalBytes!)}`];
    const tf = this.totalFiles, tb = this.totalBytes;
    const rate = this.rate(t);
    const out: Piece[] = [head];
    // How far: by bytes when there are any to copy, else by entries.
    const byBytes = tb !== undefined && tb > 0;
    const frac = byBytes ? Math.min(1, this.bytes / tb) : tf ? Math.min(1, this.files / tf) : undefined;
    if (frac !== undefined) out.push({ bar: frac }, `${String(Math.floor(frac * 100)).padStart(3)}%`);
    out.push(tf !== undefined ? `${this.files}/${tf} files` : `${this.files} files`);
    out.push(tb !== undefined ? `${formatBytes(this.bytes, tb).split(' ')[0]}/${formatBytes(tb)}` : formatBytes(this.bytes));
    // The time left before the rate: on a narrow terminal it is the one kept.
    if (byBytes && rate !== undefined && rate > 0) {
      out.push(`ETA ${formatDuration(Math.max(0, tb - this.bytes) / rate)}`);
    } else if (!byBytes && tf && this.files > 0 && t - this.copyStart >= RATE_MIN_MS) {
      out.push(`ETA ${formatDuration(((t - this.copyStart) / 1000) * Math.max(0, tf - this.files) / this.files)}`);
    }
    if (rate !== undefined) out.push(`${formatBytes(Math.round(rate))}/s`);
    return out;
  }
}

/** A piece of the line: text, or the bar (how far, 0 to 1), as wide as there is room for. */
export type Piece = string | { bar: number };

const BAR_MIN = 10, BAR_MAX = 30;

/**
 * The line from its pieces, no wider than `width`: the bar gets the room the text leaves
 * (BAR_MIN to BAR_MAX), or is left out; then pieces are left out from the right; the first
 * piece alone is cut to fit.
 */
export function fit(pieces: readonly Piece[], width: number): string {
  const join = (a: string[]) => a.length > 1 ? `${a[0]} ${a.slice(1).join('  ')}` : a.join('');
  let text = pieces.filter((p): p is string => typeof p === 'string');
  while (join(text).length > width && text.length > 2) text = text.slice(0, -1);
  const line = join(text);
  if (line.length > width) return line.slice(0, width);
  const at = pieces.findIndex((p) => typeof p !== 'string');
  const room = width - line.length - 2 - 2; // two spaces and the brackets
  if (at < 1 || room < BAR_MIN) return line;
  const frac = (pieces[at] as { bar: number }).bar;
  const size = Math.min(BAR_MAX, room);
  const n = Math.round(frac * size);
  const bar = `[${'#'.repeat(n)}${'.'.repeat(size - n)}]`;
  const withBar = [...text];
  withBar.splice(at, 0, bar);
  return join(withBar);
}
