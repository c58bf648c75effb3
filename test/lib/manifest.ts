// Manifests: a canonical description of a directory tree, and their comparison.
//
// A manifest is what a reader makes of a tree: per path its type, mode, owner, size, link
// count, which paths share an inode, times in nanoseconds, device numbers, symlink target,
// the sha256 of the content, and the xattrs. The producers are separate from the
// comparison: hostManifest() reads through the HOST kernel, mtoolsManifest() through mtools,
// and lkl-ts will produce the same shape through its own syscalls. A field a producer does
// not know is absent; comparing a present field with an absent one is a difference, so
// cross-filesystem comparisons project first (projectToFat) and say what they drop.

import fs from 'node:fs';
import crypto from 'node:crypto';
import path from 'node:path';
import { run, which } from './sh.js';
import { mtoolsCopyOut } from './images.js';
import { scratchDir, removeScratch } from './scratch.js';

export type FileType = 'file' | 'dir' | 'symlink' | 'fifo' | 'chr' | 'blk' | 'sock';

export interface ManifestEntry {
  /** '.' for the root, else the relative path with '/' separators. */
  path: string;
  type: FileType;
  /** Permission bits with setuid/setgid/sticky (mode & 07777). */
  mode?: number;
  uid?: number;
  gid?: number;
  /** st_size (for directories compared under the field name 'dirSize'). */
  size?: number;
  nlink?: number;
  /** Every path of this manifest on the same inode (sorted, including this one), if more than one. */
  links?: string[];
  atimeNs?: bigint;
  mtimeNs?: bigint;
  ctimeNs?: bigint;
  /** 'major:minor' of a device node. */
  rdev?: string;
  /** Symlink target. */
  target?: string;
  /** sha256 (hex) of a regular file's content. */
  sha256?: string;
  /** xattr name → value in hex ('' for an empty value), including system.posix_acl_*. */
  xattrs?: Record<string, string>;
}

export interface Manifest {
  /** Who read the tree, for messages: 'host', 'mke2fs', 'mtools', 'lkl-ts', ... */
  producer: string;
  /** Sorted by the UTF-8 bytes of path; the root first. */
  entries: ManifestEntry[];
}

/** The fields diffManifests compares, by name. 'dirSize' is the size of directories. */
export const FIELDS = ['type', 'mode', 'uid', 'gid', 'size', 'dirSize', 'nlink', 'links',
  'atime', 'mtime', 'ctime', 'rdev', 'target', 'sha256', 'xattrs'] as const;
export type Field = typeof FIELDS[number];

export function comparePaths(a: string, b: string): number {
  if (a === b) return 0;
  if (a === '.') return -1;
  if (b === '.') return 1;
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Linux's encoding of dev_t (new style; the old 8:8 is a subset). */
export function rdevString(dev: bigint): string {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn);
  const minor = (dev & 0xffn) | ((dev >> 12n) & ~0xffn);
  return `${major}:${minor}`;
}

export type PathPattern = string | RegExp;

/** A string matches itself and everything under it; a RegExp is tested on the path. */
export function matchPath(p: string, pats: readonly PathPattern[] | undefined): boolean {
  if (!pats) return false;
  return pats.some(pat => typeof pat === 'string' ? p === pat || p.startsWith(`${pat}/`) : pat.test(p));
}

// ---------------------------------------------------------------------------------------
// The host producer

export interface HostManifestOptions {
  producer?: string;
  /** Paths (relative) not walked, e.g. 'lost+found'. */
  exclude?: PathPattern[];
  /** Hash regular files (default true). */
  hash?: boolean;
  /** Read xattrs with getfattr (default true; throws if getfattr is missing). */
  xattrs?: boolean;
  /**
   * Paths (and symlink targets) as byte strings, one char per byte (latin1), instead of
   * UTF-8: names that are not valid UTF-8 (a byte 0xff) stay distinct and exact.
   */
  bytePaths?: boolean;
}

/** Read a tree through the HOST kernel: lstat (ns), readlink, readdir, one getfattr -R. */
export async function hostManifest(root: string, opts: HostManifestOptions = {}): Promise<Manifest> {
  const entries: ManifestEntry[] = [];
  const byIno = new Map<string, ManifestEntry[]>();
  const large: { e: ManifestEntry; abs: string }[] = [];
  const enc: BufferEncoding = opts.bytePaths ? 'latin1' : 'utf8';
  const walk = (rel: string) => {
    const abs = rel === '.' ? root : path.join(root, rel);
    const fsPath = opts.bytePaths ? Buffer.concat([Buffer.from(root), Buffer.from(rel === '.' ? '' : `/${rel}`, 'latin1')]) : abs;
    const st = fs.lstatSync(fsPath, { bigint: true });
    const e: ManifestEntry = {
      path: rel,
      type: typeOf(st),
      mode: Number(st.mode & 0o7777n),
      uid: Number(st.uid),
      gid: Number(st.gid),
      size: Number(st.size),
      nlink: Number(st.nlink),
      atimeNs: st.atimeNs,
      mtimeNs: st.mtimeNs,
      ctimeNs: st.ctimeNs,
    };
    if (e.type === 'chr' || e.type === 'blk') e.rdev = rdevString(st.rdev);
    if (e.type === 'symlink') e.target = fs.readlinkSync(fsPath, enc);
    if (e.type === 'file' && opts.hash !== false) {
      if (e.size! >= SPARSE_AWARE_MIN && !opts.bytePaths) large.push({ e, abs }); else e.sha256 = hashFile(fsPath);
    }
    entries.push(e);
    if (e.type !== 'dir') {
      const key = `${st.dev}:${st.ino}`;
      const g = byIno.get(key);
      if (g) g.push(e); else byIno.set(key, [e]);
    }
    if (e.type === 'dir') {
      for (const name of fs.readdirSync(fsPath, { encoding: enc })) {
        const child = rel === '.' ? name : `${rel}/${name}`;
        if (!matchPath(child, opts.exclude)) walk(child);
      }
    }
  };
  walk('.');
  for (const { e, abs } of large) e.sha256 = await hashFileSparse(abs);
  for (const g of byIno.values()) {
    if (g.length < 2) continue;
    const paths = g.map(e => e.path).sort(comparePaths);
    for (const e of g) e.links = paths;
  }
  if (opts.xattrs !== false) {
    const xa = await readXattrs(root, enc);
    for (const e of entries) {
      const x = xa.get(e.path);
      e.xattrs = x ? sortedRecord(x) : {};
    }
  }
  entries.sort((a, b) => comparePaths(a.path, b.path));
  return { producer: opts.producer ?? 'host', entries };
}

function typeOf(st: fs.BigIntStats): FileType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isCharacterDevice()) return 'chr';
  if (st.isBlockDevice()) return 'blk';
  return 'sock';
}

/** sha256 of a file, streamed in 4 MiB reads (sparse files of several GiB included). */
export function hashFile(abs: string | Buffer): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(abs, 'r');
  try {
    const buf = Buffer.allocUnsafe(4 * 1024 * 1024);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** Files from this size on are hashed with their hole map, when the filesystem gives one. */
const SPARSE_AWARE_MIN = 64 * 1024 * 1024;

/**
 * sha256 of a (large, maybe sparse) file without reading its holes: FIEMAP (through
 * `filefrag -v -s`) lists the mapped extents; holes and unwritten extents are fed to the
 * hash as zeros, computed in user space. Reading GiB of holes through the page cache costs
 * 5-15 s here; this costs only the hashing. Same result as hashFile(); falls back to it when
 * the filesystem has no FIEMAP (tmpfs, FUSE) or the output is not understood.
 */
export async function hashFileSparse(abs: string): Promise<string> {
  const size = fs.statSync(abs).size;
  const map = which('filefrag') ? await dataExtents(abs, size) : null;
  if (!map) return hashFile(abs);
  const h = crypto.createHash('sha256');
  const zeros = Buffer.alloc(EXTENT_CHUNK);
  let pos = 0;
  const feedZeros = (end: number) => {
    while (pos < end) { const n = Math.min(EXTENT_CHUNK, end - pos); h.update(zeros.subarray(0, n)); pos += n; }
  };
  readExtents(abs, [...map, [size, size]], size, (start) => feedZeros(start), (bytes) => { h.update(bytes); pos += bytes.length; });
  return h.digest('hex');
}

const EXTENT_CHUNK = 4 * 1024 * 1024;

/**
 * Reads the data extents of `abs` in order, in chunks: `atExtent(start, end)` before each,
 * `data(bytes)` for each chunk (the buffer is reused). Extents are clipped to `size`.
 */
function readExtents(abs: string, map: [number, number][], size: number,
  atExtent: (start: number, end: number) => void, data: (bytes: Buffer) => void): void {
  const buf = Buffer.allocUnsafe(EXTENT_CHUNK);
  const fd = fs.openSync(abs, 'r');
  try {
    for (const [start, end] of map) {
      const from = Math.min(start, size), stop = Math.min(end, size);
      atExtent(from, stop);
      for (let pos = from; pos < stop;) {
        const n = fs.readSync(fd, buf, 0, Math.min(EXTENT_CHUNK, stop - pos), pos);
        if (n <= 0) throw new Error(`${abs}: short read at ${pos}`);
        data(buf.subarray(0, n));
        pos += n;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A fingerprint of a (large, sparse) image for "unchanged" checks: sha256 over its size, its
 * data extents and their bytes, with holes named, not hashed. Two files with the same bytes
 * but other hole maps differ here (for an image that a read-only mount must not touch, any
 * new allocation is a change). Streams; falls back to hashFile() without FIEMAP.
 */
export async function fingerprintFile(abs: string): Promise<string> {
  const size = fs.statSync(abs).size;
  const map = which('filefrag') ? await dataExtents(abs, size) : null;
  if (!map) return hashFile(abs);
  const h = crypto.createHash('sha256').update(`size ${size}\n`);
  readExtents(abs, map, size, (start, end) => h.update(`extent ${start} ${end}\n`), (bytes) => h.update(bytes));
  return h.digest('hex');
}

/** Byte ranges [start, end) holding data, sorted and merged; null when unknown. */
async function dataExtents(abs: string, size: number): Promise<[number, number][] | null> {
  const r = await run('filefrag', ['-v', '-s', abs], { allowFail: true });
  if (r.code !== 0) return null;
  const unit = /blocks of (\d+) bytes/.exec(r.stdout);
  if (!unit) return null;
  const bs = Number(unit[1]);
  const out: [number, number][] = [];
  let inTable = false;
  for (const line of r.stdout.split('\n')) {
    if (/^\s*ext:\s+logical_offset:/.test(line)) { inTable = true; continue; }
    if (!inTable || line.trim() === '' || /extents? found/.test(line)) continue;
    const m = /^\s*\d+:\s+(\d+)\.\.\s*(\d+):.*?:\s+(\d+):\s+(\d*):?\s*(.*)$/.exec(line);
    if (!m) return null;
    const flags = m[5]!.split(',').map(f => f.trim());
    if (flags.includes('unwritten')) continue; // reads as zeros
    const start = Number(m[1]) * bs;
    const end = Math.min((Number(m[2]) + 1) * bs, Math.max(size, start));
    const last = out[out.length - 1];
    if (last && start < last[1]) return null; // overlapping or unsorted: do not guess
    if (last && start === last[1]) last[1] = end; else out.push([start, end]);
  }
  return out;
}

function sortedRecord(m: Map<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of [...m.keys()].sort()) out[k] = m.get(k)!;
  return out;
}

/** getfattr's escapes (\ooo for backslash, control characters) back to bytes, then `enc` (UTF-8). */
function unescapeGetfattr(s: string, enc: BufferEncoding = 'utf8'): string {
  if (!s.includes('\\')) return s;
  const bytes: number[] = [];
  const raw = Buffer.from(s, enc);
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === 0x5c && i + 3 < raw.length && /^[0-7]{3}$/.test(raw.subarray(i + 1, i + 4).toString('latin1'))) {
      bytes.push(parseInt(raw.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else {
      bytes.push(raw[i]!);
    }
  }
  return Buffer.from(bytes).toString(enc);
}

/** All xattrs under root (no symlink following), as relative path → name → hex (paths in `enc`, as hostManifest's). */
export async function readXattrs(root: string, enc: BufferEncoding = 'utf8'): Promise<Map<string, Map<string, string>>> {
  if (!which('getfattr')) throw new Error('getfattr is missing (apt-get install attr)');
  const r = await run('getfattr', ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '.'],
    { cwd: root, allowFail: true, timeoutMs: 600_000 });
  if (r.code !== 0 && r.stdout === '') throw new Error(`getfattr failed: ${r.stderr}`);
  return parseGetfattr(r.stdoutBuf.toString(enc), enc);
}

/** Parse `getfattr -d -e hex` output of paths given relative to '.' (exported for tests). */
export function parseGetfattr(text: string, enc: BufferEncoding = 'utf8'): Map<string, Map<string, string>> {
  const out = new Map<string, Map<string, string>>();
  let cur: Map<string, string> | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith('# file: ')) {
      let p = unescapeGetfattr(line.slice('# file: '.length), enc);
      if (p === '.' || p === './') p = '.';
      else p = p.replace(/^\.\//, '');
      cur = new Map();
      out.set(p, cur);
      continue;
    }
    if (!cur || line === '') continue;
    const eq = line.indexOf('=');
    if (eq < 0) { cur.set(unescapeGetfattr(line, enc), ''); continue; }
    const name = unescapeGetfattr(line.slice(0, eq), enc);
    const v = line.slice(eq + 1);
    if (!v.startsWith('0x')) throw new Error(`getfattr value not in hex: ${line}`);
    cur.set(name, v.slice(2).toLowerCase());
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The FAT producer and projection

const TWO_S = 2_000_000_000n;

/**
 * What FAT holds of a manifest: directories and regular files only, with size (files),
 * sha256 and mtime truncated to 2 s (not for the root, which has no directory entry).
 * Hard links become independent files; owners, modes, xattrs, ns, atime/ctime are gone.
 */
export function projectToFat(m: Manifest): Manifest {
  const entries: ManifestEntry[] = [];
  for (const e of m.entries) {
    if (e.type !== 'file' && e.type !== 'dir') continue;
    const p: ManifestEntry = { path: e.path, type: e.type };
    if (e.type === 'file') {
      if (e.size !== undefined) p.size = e.size;
      if (e.sha256 !== undefined) p.sha256 = e.sha256;
    }
    if (e.path !== '.' && e.mtimeNs !== undefined) p.mtimeNs = floorTo(e.mtimeNs, TWO_S);
    entries.push(p);
  }
  return { producer: `${m.producer}→fat`, entries };
}

function floorTo(ns: bigint, unit: bigint): bigint {
  const q = ns / unit;
  return (ns % unit !== 0n && ns < 0n ? q - 1n : q) * unit;
}

/**
 * A FAT image as mtools sees it, in manifest shape: everything copied out with
 * `mcopy -s -m` (mtimes preserved, 2 s resolution), read back on the host, projected.
 */
export async function mtoolsManifest(img: string, opts: { producer?: string } = {}): Promise<Manifest> {
  const tmp = scratchDir(undefined, 'mtools-out');
  try {
    const out = path.join(tmp, 'root');
    await mtoolsCopyOut(img, out);
    const host = await hostManifest(out, { xattrs: false });
    return { ...projectToFat(host), producer: opts.producer ?? 'mtools' };
  } finally {
    removeScratch(tmp);
  }
}

// ---------------------------------------------------------------------------------------
// Comparison

export interface DiffOptions {
  /** Fields never compared. */
  ignore?: Field[];
  /** Fields not compared at some paths; 'all' leaves the paths out entirely. `why` is documentation. */
  ignoreAt?: { path: PathPattern | PathPattern[]; fields: Field[] | 'all'; why?: string }[];
  /** Compare times after truncation to this many ns (1_000_000_000n = whole seconds). */
  timePrecisionNs?: bigint | Partial<Record<'atime' | 'mtime' | 'ctime', bigint>>;
  /**
   * Times outside [min, max] (ns) on either side are not compared: one writer cannot hold
   * them (mke2fs -d keeps 32-bit seconds; ext with 128-byte inodes ends in 2038).
   */
  timeRange?: { min?: bigint; max?: bigint };
  /** xattr names left out of the comparison. */
  ignoreXattrs?: PathPattern[];
  /** Stop after this many differences (a last line says how many more). Default 200. */
  maxDiffs?: number;
}

function fmtTime(ns: bigint): string {
  // Seconds floored, fraction non-negative: -0.25 s is 1969-12-31T23:59:59.750000000Z.
  const sec = floorTo(ns, 1_000_000_000n) / 1_000_000_000n;
  const frac = String(ns - sec * 1_000_000_000n).padStart(9, '0');
  const d = new Date(Number(sec) * 1000);
  const iso = Number.isNaN(d.getTime()) ? `${sec} s` : d.toISOString().replace(/\.000Z$/, `.${frac}Z`);
  return `${iso} (${ns} ns)`;
}

function fmt(field: Field, v: unknown): string {
  if (v === undefined) return '(absent)';
  if (field === 'mode' && typeof v === 'number') return `0${v.toString(8).padStart(4, '0')}`;
  if ((field === 'atime' || field === 'mtime' || field === 'ctime') && typeof v === 'bigint') return fmtTime(v);
  if (field === 'links' && Array.isArray(v)) return `[${v.join(', ')}]`;
  if (typeof v === 'string') return JSON.stringify(v.length > 120 ? `${v.slice(0, 100)}…(${v.length} chars)` : v);
  return String(v);
}

function fmtHex(hex: string | undefined): string {
  if (hex === undefined) return '(absent)';
  const n = hex.length / 2;
  return n > 32 ? `0x${hex.slice(0, 32)}… (${n} bytes, sha256 ${crypto.createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex').slice(0, 12)})` : `0x${hex} (${n} bytes)`;
}

function getField(e: ManifestEntry, f: Field): unknown {
  switch (f) {
    case 'size': return e.type === 'dir' ? undefined : e.size;
    case 'dirSize': return e.type === 'dir' ? e.size : undefined;
    case 'atime': return e.atimeNs;
    case 'mtime': return e.mtimeNs;
    case 'ctime': return e.ctimeNs;
    default: return e[f];
  }
}

/**
 * The differences between two manifests as readable lines (empty = equal), for
 * `t.strictSame(diffManifests(a, b), [])` or `t.equal(d.length, 0, d.join('\n'))`.
 */
export function diffManifests(a: Manifest, b: Manifest, opts: DiffOptions = {}): string[] {
  const out: string[] = [];
  const max = opts.maxDiffs ?? 200;
  let extra = 0;
  const add = (s: string) => { if (out.length < max) out.push(s); else extra++; };
  const A = a.producer, B = b.producer;
  const ignoreAt = (opts.ignoreAt ?? []).map(r => ({ pats: Array.isArray(r.path) ? r.path : [r.path], fields: r.fields }));
  const skipAll = (p: string) => ignoreAt.some(r => r.fields === 'all' && matchPath(p, r.pats));
  const skipField = (p: string, f: Field) => opts.ignore?.includes(f) ||
    ignoreAt.some(r => r.fields !== 'all' && r.fields.includes(f) && matchPath(p, r.pats));
  const prec = (f: 'atime' | 'mtime' | 'ctime'): bigint | undefined =>
    typeof opts.timePrecisionNs === 'bigint' ? opts.timePrecisionNs : opts.timePrecisionNs?.[f];
  const ignoredLink = (p: string) => skipAll(p);

  const mb = new Map(b.entries.map(e => [e.path, e]));
  const ma = new Map(a.entries.map(e => [e.path, e]));
  for (const ea of a.entries) {
    if (skipAll(ea.path)) continue;
    const eb = mb.get(ea.path);
    if (!eb) { add(`${ea.path}: only in ${A} (${ea.type})`); continue; }
    if (ea.type !== eb.type) { add(`${ea.path}: type ${ea.type} [${A}] ≠ ${eb.type} [${B}]`); continue; }
    for (const f of FIELDS) {
      if (f === 'type' || skipField(ea.path, f)) continue;
      let va = getField(ea, f), vb = getField(eb, f);
      if (f === 'xattrs') {
        diffXattrs(ea.path, ea.xattrs, eb.xattrs, opts.ignoreXattrs, A, B, add);
        continue;
      }
      if (f === 'links') {
        // Paths left out of the comparison do not count as link partners.
        va = (va as string[] | undefined)?.filter(p => !ignoredLink(p));
        vb = (vb as string[] | undefined)?.filter(p => !ignoredLink(p));
        if ((va as string[] | undefined)?.length === 1) va = undefined;
        if ((vb as string[] | undefined)?.length === 1) vb = undefined;
        if (JSON.stringify(va) !== JSON.stringify(vb)) add(`${ea.path}: hard-link group ${fmt(f, va ?? [ea.path])} [${A}] ≠ ${fmt(f, vb ?? [ea.path])} [${B}]`);
        continue;
      }
      if ((f === 'atime' || f === 'mtime' || f === 'ctime') && typeof va === 'bigint' && typeof vb === 'bigint') {
        const p = prec(f);
        if (p && floorTo(va, p) === floorTo(vb, p)) continue;
        const r = opts.timeRange;
        if (r && [va, vb].some(v => (r.min !== undefined && v < r.min) || (r.max !== undefined && v > r.max))) continue;
      }
      if (va !== vb) add(`${ea.path}: ${f} ${fmt(f, va)} [${A}] ≠ ${fmt(f, vb)} [${B}]`);
    }
  }
  for (const eb of b.entries) {
    if (!skipAll(eb.path) && !ma.has(eb.path)) add(`${eb.path}: only in ${B} (${eb.type})`);
  }
  if (extra) out.push(`… and ${extra} more differences`);
  return out;
}

function diffXattrs(p: string, xa: Record<string, string> | undefined, xb: Record<string, string> | undefined,
  ignore: PathPattern[] | undefined, A: string, B: string, add: (s: string) => void): void {
  if (xa === undefined && xb === undefined) return;
  if (xa === undefined || xb === undefined) {
    add(`${p}: xattrs ${xa ? 'read' : '(absent)'} [${A}] ≠ ${xb ? 'read' : '(absent)'} [${B}]`);
    return;
  }
  const keep = (n: string) => !(ignore ?? []).some(pat => typeof pat === 'string' ? n === pat : pat.test(n));
  const names = [...new Set([...Object.keys(xa), ...Object.keys(xb)])].filter(keep).sort();
  for (const n of names) {
    if (xa[n] !== xb[n]) add(`${p}: xattr ${n} ${fmtHex(xa[n])} [${A}] ≠ ${fmtHex(xb[n])} [${B}]`);
  }
}

const S = 1_000_000_000n;

/** The range of 32-bit signed seconds (ext inodes of 128 bytes, mke2fs -d), in ns. */
export const TIME32_RANGE = { min: -(2n ** 31n) * S, max: (2n ** 31n - 1n) * S } as const;

/**
 * What `mke2fs -d` (e2fsprogs 1.47.0) loses when it copies a tree, measured against the
 * tree as the host kernel wrote it: nanoseconds (times come back truncated to seconds), times
 * outside 32-bit seconds (2042 came back as 1906), its own ctime, the image root's time and
 * link count (lost+found, which the walk leaves out), and directory sizes (it lays out
 * directories differently from the kernel: a 2,000-entry directory took 72 KiB, not 108).
 * Everything else — content, holes, modes, owners, links, rdev, symlinks, xattrs, ACLs —
 * must come through.
 */
export const MKE2FS_D_LOSSES: DiffOptions = {
  ignore: ['ctime', 'dirSize'],
  timePrecisionNs: S,
  timeRange: TIME32_RANGE,
  ignoreAt: [{ path: '.', fields: ['nlink', 'mtime', 'atime'], why: 'image root: lost+found, mke2fs time' }],
};

// ---------------------------------------------------------------------------------------
// Helpers for tests

/** Keep only the entries for which `keep` is true (e.g. to look at one subtree). */
export function filterManifest(m: Manifest, keep: (e: ManifestEntry) => boolean): Manifest {
  return { producer: m.producer, entries: m.entries.filter(keep) };
}

/** JSON with bigints as decimal strings (for saving a manifest next to a failing test). */
export function manifestToJSON(m: Manifest): string {
  return JSON.stringify(m, (_k, v: unknown) => typeof v === 'bigint' ? { $bigint: String(v) } : v, 1);
}

export function manifestFromJSON(text: string): Manifest {
  return JSON.parse(text, (_k, v: unknown) => {
    const b = (v as { $bigint?: unknown } | null)?.$bigint;
    return typeof b === 'string' ? BigInt(b) : v;
  }) as Manifest;
}

/** Find one entry by path. */
export function entryAt(m: Manifest, p: string): ManifestEntry | undefined {
  return m.entries.find(e => e.path === p);
}
