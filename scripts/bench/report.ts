/*
 * The benchmark's results: rows of cells (a number or "n/a (reason)") per mounter, the
 * lklfuse ratios (lklfuse is the kernel transport; kernel/fn compares it with lklfuse over
 * fuse-native, the lklfuse-fn column), and their rendering as a text table with footnotes, or as JSON.
 */
import type { MounterName } from './mounters.js';
import { MOUNTERS } from './mounters.js';

export type Cell = { value: number; note?: string } | { na: string };

export interface Row {
  id: string;
  fs: 'ext4' | 'vfat';
  label: string;
  unit: string;
  /** Which direction is better for this row's values. */
  better: 'higher' | 'lower';
  cells: Record<MounterName, Cell>;
}

export interface Ratios { lklfuse_fuse2fs: number | null; lklfuse_host: number | null; lklfuse_fn: number | null }

const num = (c: Cell | undefined) => (c && 'value' in c ? c.value : undefined);

export function ratios(r: Row): Ratios {
  const l = num(r.cells.lklfuse), f = num(r.cells.fuse2fs), h = num(r.cells.host), n = num(r.cells['lklfuse-fn']);
  const q = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : null);
  return { lklfuse_fuse2fs: q(l, f), lklfuse_host: q(l, h), lklfuse_fn: q(l, n) };
}

function fmtValue(v: number, unit: string): string {
  if (unit === 's') return v < 10 ? v.toFixed(2) : v.toFixed(1);
  if (v >= 10000) return Math.round(v).toLocaleString('en-US');
  if (v >= 100) return v.toFixed(0);
  if (v >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

const fmtRatio = (x: number | null) => (x === null ? '—' : x >= 10 ? `${x.toFixed(1)}×` : `${x.toFixed(2)}×`);

/** The table, with n/a reasons and notes as numbered footnotes below it. */
export function renderTable(rows: Row[]): string {
  const notes: string[] = [];
  const ref = (text: string) => {
    let i = notes.indexOf(text);
    if (i < 0) { notes.push(text); i = notes.length - 1; }
    return `[${i + 1}]`;
  };
  const head = ['', 'unit', ...MOUNTERS, 'lkl/fuse2fs', 'lkl/host', 'kernel/fn', 'better'];
  const body = rows.map((r) => {
    const rt = ratios(r);
    return [
      `${r.fs} ${r.label}`, r.unit,
      ...MOUNTERS.map((m) => {
        const c = r.cells[m];
        if ('na' in c) return `n/a ${ref(`${m}: ${c.na}`)}`;
        return fmtValue(c.value, r.unit) + (c.note ? ` ${ref(`${m}: ${c.note}`)}` : '');
      }),
      fmtRatio(rt.lklfuse_fuse2fs), fmtRatio(rt.lklfuse_host), fmtRatio(rt.lklfuse_fn), r.better,
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cols: string[]) => cols.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  const out = [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)];
  if (notes.length) out.push('', ...notes.map((n, i) => `[${i + 1}] ${n}`));
  return out.join('\n');
}

export function rowsToJson(rows: Row[]): unknown[] {
  return rows.map((r) => ({
    id: `${r.fs}.${r.id}`, fs: r.fs, label: r.label, unit: r.unit, better: r.better,
    values: Object.fromEntries(MOUNTERS.map((m) => [m, r.cells[m]])),
    ratios: ratios(r),
  }));
}
