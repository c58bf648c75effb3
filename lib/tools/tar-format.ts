/*
 * A POSIX tar writer (pax interchange format, IEEE Std 1003.1-2001 "pax"; ustar headers
 * with pax extended headers only where ustar cannot say it, as libarchive's
 * pax_restricted, which LKL's fs2tar uses): long path and link names, sizes of 8 GiB and
 * more, ids beyond 7 octal digits, times before 1970 or with nanoseconds (mtime, and atime /
 * ctime when given), xattrs as SCHILY.xattr.NAME records (as GNU tar --xattrs and star write
 * them), POSIX ACLs as SCHILY.acl.access / SCHILY.acl.default text records (GNU tar --acls,
 * star), and sparse files in GNU's pax sparse format 1.0 (GNU.sparse.major=1, minor=0,
 * GNU.sparse.name, GNU.sparse.realsize; the map opens the entry's data, see sparseMapBlock).
 * Pure and platform-free (Uint8Array, no Buffer): fs2tar uses it through tar.ts, the web
 * page (lib/web) directly. Produces byte arrays; the caller writes them.
 */

const utf8 = new TextEncoder();

/** The bytes of an ASCII string (digits, keys, magic). */
function ascii(s: string): Uint8Array {
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i) & 0xff;
  return b;
}

/** Writes the ASCII string s into h at off, at most len bytes (Buffer.write's latin1 form). */
function put(h: Uint8Array, s: string, off: number, len = s.length): void {
  for (let i = 0; i < Math.min(len, s.length); i++) h[off + i] = s.charCodeAt(i) & 0xff;
}

/** The arrays one after the other. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** Copies at most max bytes of src into h at off. */
function copyInto(h: Uint8Array, src: Uint8Array, off: number, max: number): void {
  h.set(src.subarray(0, Math.min(max, src.length)), off);
}

export const BLOCK = 512;
/** GNU tar's default record: 20 blocks. The archive is padded to a whole record. */
export const RECORD = 20 * BLOCK;

export type TarType = 'file' | 'hardlink' | 'symlink' | 'chr' | 'blk' | 'dir' | 'fifo';
const TYPEFLAG: Record<TarType, string> = { file: '0', hardlink: '1', symlink: '2', chr: '3', blk: '4', dir: '5', fifo: '6' };

export interface TarEntry {
  /** Path in the archive, raw bytes, relative, without a trailing slash. */
  path: Uint8Array;
  type: TarType;
  /** Permission bits (07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data that follow (regular files only). */
  size: number;
  mtime: { sec: number; nsec: number };
  /** Written as pax atime / ctime records when present (as GNU tar --format=pax does). */
  atime?: { sec: number; nsec: number };
  ctime?: { sec: number; nsec: number };
  /** Symlink target or hard-link target path. */
  linkpath?: Uint8Array;
  devmajor?: number;
  devminor?: number;
  /** name -> value, written as SCHILY.xattr.name. */
  xattrs?: Map<string, Uint8Array>;
  /** POSIX ACLs in text form (see acl.ts), written as SCHILY.acl.access / .default. */
  acl?: { access?: string; default?: string };
  /**
   * A sparse file (GNU pax sparse 1.0): `size` is then the file's real size and the data that
   * follows the header is sparseMapBlock(map, size) and the bytes of each extent in turn.
   */
  sparse?: { map: [number, number][] };
}

/**
 * The start of a sparse 1.0 entry's data: the number of extents, then each extent's offset
 * and length, decimal, one a line, padded with zeros to a whole block. A file that ends in a
 * hole gets a last extent of length 0 at its size (as GNU tar writes it), so readers learn
 * the real size from the map too.
 */
export function sparseMapBlock(map: readonly [number, number][], realsize: number): Uint8Array {
  const m = map.slice();
  const last = m[m.length - 1];
  if (!last || last[0] + last[1] < realsize) m.push([realsize, 0]);
  const text = [String(m.length), ...m.flatMap(([o, l]) => [String(o), String(l)])].join('\n') + '\n';
  const b = ascii(text);
  return concatBytes([b, padding(b.length)]);
}

/**
 * A data map made fit for GNU tar: extents widened to whole 512-byte blocks (the start
 * rounded down, the end up, but not past `realsize`) and merged where they then touch.
 * GNU tar reads each extent's data in whole blocks, so every extent but the last must be a
 * whole number of blocks long; the widened parts are read from the file (zeros in a hole).
 */
export function alignSparseMap(map: readonly [number, number][], realsize: number): [number, number][] {
  const out: [number, number][] = [];
  for (const [o, l] of map) {
    if (l <= 0) continue;
    const start = o - (o % BLOCK);
    const endRaw = o + l;
    const end = Math.min(realsize, endRaw % BLOCK ? endRaw + BLOCK - (endRaw % BLOCK) : endRaw);
    const last = out[out.length - 1];
    if (last && last[0] + last[1] >= start) last[1] = Math.max(last[0] + last[1], end) - last[0];
    else out.push([start, end - start]);
  }
  return out;
}

/** Bytes of data a sparse entry stores: the map block and every extent. */
export function sparseDataSize(map: readonly [number, number][], realsize: number): number {
  return sparseMapBlock(map, realsize).length + map.reduce((n, [, l]) => n + l, 0);
}

/** One pax record: "LEN key=value\n", LEN counting the whole record in decimal. */
export function paxRecord(key: string, value: Uint8Array | string): Uint8Array {
  const v = typeof value === 'string' ? utf8.encode(value) : value;
  const k = utf8.encode(key);
  const body = k.length + v.length + 3; // ' ', '=', '\n'
  let len = body + String(body).length;
  if (String(len).length !== String(len - body).length) len = body + String(len).length;
  return concatBytes([ascii(`${len} `), k, ascii('='), v, ascii('\n')]);
}

/** pax time: seconds with an optional fraction, negative times as a whole negative value. */
export function paxTime(t: { sec: number; nsec: number }): string {
  if (t.nsec === 0) return String(t.sec);
  let sec = t.sec, nsec = t.nsec;
  let sign = '';
  if (sec < 0) { // -1.25 s is sec -2, nsec 750000000
    sign = '-';
    sec = -(sec + 1);
    nsec = 1_000_000_000 - nsec;
  }
  return `${sign}${sec}.${String(nsec).padStart(9, '0').replace(/0+$/, '')}`;
}

/** Writes `v` as an octal field of `len` bytes (len-1 digits and a NUL); false if it does not fit. */
function octal(h: Uint8Array, off: number, len: number, v: number): boolean {
  if (!Number.isSafeInteger(v) || v < 0) return false;
  const s = v.toString(8);
  if (s.length > len - 1) return false;
  put(h, s.padStart(len - 1, '0') + '\0', off, len);
  return true;
}

/** GNU's base-256 encoding for numbers an octal field cannot hold (GNU tar and bsdtar read it). */
function base256(h: Uint8Array, off: number, len: number, v: number): void {
  let n = BigInt(Math.trunc(v));
  if (n < 0n) n += 1n << BigInt(8 * len - 1) << 1n; // two's complement over the field
  for (let i = len - 1; i >= 1; i--) { h[off + i] = Number(n & 0xffn); n >>= 8n; }
  h[off] = v < 0 ? 0xff : 0x80;
}

function numField(h: Uint8Array, off: number, len: number, v: number): boolean {
  if (octal(h, off, len, v)) return true;
  base256(h, off, len, v);
  return false;
}

/** Splits a path into ustar prefix (<= 155 bytes) and name (<= 100 bytes), or null. */
function splitUstar(p: Uint8Array): { prefix: Uint8Array; name: Uint8Array } | null {
  if (p.length <= 100) return { prefix: new Uint8Array(0), name: p };
  for (let i = Math.min(p.length - 1, 155); i > 0; i--) {
    if (p[i] === 0x2f && p.length - i - 1 <= 100 && p.length - i - 1 > 0) return { prefix: p.subarray(0, i), name: p.subarray(i + 1) };
  }
  return null;
}

function header(name: Uint8Array, prefix: Uint8Array, typeflag: string, e: {
  mode: number; uid: number; gid: number; size: number; mtime: number; linkname?: Uint8Array; devmajor?: number; devminor?: number;
}): Uint8Array {
  const h = new Uint8Array(BLOCK);
  copyInto(h, name, 0, 100);
  octal(h, 100, 8, e.mode & 0o7777);
  numField(h, 108, 8, e.uid);
  numField(h, 116, 8, e.gid);
  numField(h, 124, 12, e.size);
  numField(h, 136, 12, e.mtime);
  put(h, typeflag, 156, 1);
  if (e.linkname) copyInto(h, e.linkname, 157, 100);
  put(h, 'ustar\0' + '00', 257, 8);
  if (e.devmajor !== undefined) octal(h, 329, 8, e.devmajor);
  if (e.devminor !== undefined) octal(h, 337, 8, e.devminor);
  copyInto(h, prefix, 345, 155);
  h.fill(0x20, 148, 156); // checksum computed with its field as spaces
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += h[i]!;
  put(h, sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}

/** Zero bytes that pad `size` bytes of data to a whole block. */
export function padding(size: number): Uint8Array {
  const r = size % BLOCK;
  return new Uint8Array(r ? BLOCK - r : 0);
}

const MAX_OCTAL_7 = 0o7777777;
const MAX_OCTAL_11 = 0o77777777777;

/**
 * The header blocks of one entry: a pax extended header (typeflag 'x') and its records when
 * needed, then the ustar header. The entry's data (file content, padded) follows.
 */
export function entryHeader(e: TarEntry, opts: { paxName?: (p: Uint8Array) => Uint8Array } = {}): Uint8Array {
  const isDir = e.type === 'dir';
  const full = isDir ? concatBytes([e.path, ascii('/')]) : e.path;
  const recs: Uint8Array[] = [];
  const sparse = e.type === 'file' && e.sparse ? e.sparse : undefined;
  // Data stored after the header: the file's bytes, or a sparse file's map and extents.
  const stored = e.type !== 'file' ? 0 : sparse ? sparseDataSize(sparse.map, e.size) : e.size;
  let split: { prefix: Uint8Array; name: Uint8Array } | null;
  if (sparse) {
    // GNU tar: the header names DIR/GNUSparseFile.PID/BASE and GNU.sparse.name the file (no
    // 'path' record: readers take the name from GNU.sparse.name).
    recs.push(paxRecord('GNU.sparse.major', '1'), paxRecord('GNU.sparse.minor', '0'),
      paxRecord('GNU.sparse.name', full), paxRecord('GNU.sparse.realsize', String(e.size)));
    const slash = full.lastIndexOf(0x2f);
    const fake = concatBytes([slash >= 0 ? full.subarray(0, slash + 1) : new Uint8Array(0), ascii('GNUSparseFile.0/'),
      slash >= 0 ? full.subarray(slash + 1) : full]);
    split = splitUstar(fake) ?? { prefix: new Uint8Array(0), name: fake.subarray(fake.length - Math.min(100, fake.length)) };
  } else {
    split = splitUstar(full);
    if (!split) {
      recs.push(paxRecord('path', full));
      // ustar fields keep a truncated name (what readers that ignore pax would use)
      split = { prefix: new Uint8Array(0), name: full.subarray(full.length - Math.min(100, full.length)) };
    }
  }
  let linkname = e.linkpath;
  if (linkname && linkname.length > 100) {
    recs.push(paxRecord('linkpath', linkname));
    linkname = linkname.subarray(0, 100);
  }
  if (stored > MAX_OCTAL_11) recs.push(paxRecord('size', String(stored)));
  if (e.uid > MAX_OCTAL_7) recs.push(paxRecord('uid', String(e.uid)));
  if (e.gid > MAX_OCTAL_7) recs.push(paxRecord('gid', String(e.gid)));
  if (e.mtime.nsec !== 0 || e.mtime.sec < 0 || e.mtime.sec > MAX_OCTAL_11) recs.push(paxRecord('mtime', paxTime(e.mtime)));
  if (e.atime) recs.push(paxRecord('atime', paxTime(e.atime)));
  if (e.ctime) recs.push(paxRecord('ctime', paxTime(e.ctime)));
  if (e.acl?.access !== undefined) recs.push(paxRecord('SCHILY.acl.access', e.acl.access));
  if (e.acl?.default !== undefined) recs.push(paxRecord('SCHILY.acl.default', e.acl.default));
  if (e.xattrs) {
    for (const [k, v] of e.xattrs) recs.push(paxRecord(`SCHILY.xattr.${k}`, v));
  }
  // Floor the header mtime to whole seconds: pre-1970 times with a fraction round down.
  const mtime = e.mtime.sec;
  const main = header(split.name, split.prefix, TYPEFLAG[e.type], {
    mode: e.mode, uid: e.uid, gid: e.gid, size: stored, mtime,
    linkname, devmajor: e.devmajor ?? (e.type === 'chr' || e.type === 'blk' ? 0 : undefined),
    devminor: e.devminor ?? (e.type === 'chr' || e.type === 'blk' ? 0 : undefined),
  });
  if (!recs.length) return main;
  const data = concatBytes(recs);
  const paxName = (opts.paxName ?? defaultPaxName)(full);
  const x = header(paxName.subarray(0, 100), new Uint8Array(0), 'x', {
    mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: Math.max(0, Math.min(MAX_OCTAL_11, e.mtime.sec)),
  });
  return concatBytes([x, data, padding(data.length), main]);
}

/** GNU tar's name for a pax header: DIR/PaxHeaders/BASE. */
function defaultPaxName(p: Uint8Array): Uint8Array {
  const s = p[p.length - 1] === 0x2f ? p.subarray(0, p.length - 1) : p;
  const slash = s.lastIndexOf(0x2f);
  const dir = slash >= 0 ? s.subarray(0, slash) : ascii('.');
  const base = slash >= 0 ? s.subarray(slash + 1) : s;
  const out = concatBytes([dir, ascii('/PaxHeaders/'), base]);
  return out.length <= 100 ? out : concatBytes([ascii('PaxHeaders/'), base]).subarray(0, 100);
}

/** The end of an archive: two zero blocks, then zeros up to a whole record. */
export function trailer(written: number): Uint8Array {
  let n = written + 2 * BLOCK;
  const r = n % RECORD;
  if (r) n += RECORD - r;
  return new Uint8Array(n - written);
}
