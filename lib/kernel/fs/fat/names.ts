/*
 * VFAT name rules, as Linux applies them (fs/fat/namei_vfat.c, fs/fat/dir.c, fs/nls):
 * which long names are legal, UTF-8 <-> UTF-16, the 8.3 alias of a long name
 * (vfat_create_shortname, with the four shortname= policies of
 * Documentation/filesystems/vfat.rst), how an 8.3 name is displayed, and case-insensitive
 * comparison for lookup. Pure functions: the caller says which aliases already exist.
 *
 * The on-disk code page of 8.3 names is cp437 (Linux's default codepage=437). Our table
 * is single-byte only, so the multibyte-codepage branches of Linux (cp932 etc.) do not
 * arise here.
 */

import { EEXIST, EINVAL, ENAMETOOLONG, ENOENT } from '../../include/uapi.js';
import { CASE_LOWER_BASE, CASE_LOWER_EXT, DELETED_FLAG, KANJI_ESCAPE, MSDOS_NAME } from './layout.js';

/** Longest long name, in UTF-16 units. */
export const FAT_LFN_LEN = 255;

/* ---- shortname= (struct fat_mount_options.shortname) ---- */

export const VFAT_SFN_DISPLAY_LOWER = 0x0001; /* show every 8.3 name in lower case */
export const VFAT_SFN_DISPLAY_WIN95 = 0x0002; /* show 8.3 names as stored (upper case) */
export const VFAT_SFN_DISPLAY_WINNT = 0x0004; /* honour the CASE_LOWER_* bits */
export const VFAT_SFN_CREATE_WIN95 = 0x0100; /* only all-upper 8.3 names go without a long name */
export const VFAT_SFN_CREATE_WINNT = 0x0200; /* all-lower parts are kept with CASE_LOWER_* bits */

export type VfatShortnameOption = 'lower' | 'win95' | 'winnt' | 'mixed';

/** Mount option value -> flags. `mixed` is Linux's default since 2.6.32. */
export function vfat_shortname_flags(opt: VfatShortnameOption): number {
  switch (opt) {
    case 'lower':
      return VFAT_SFN_DISPLAY_LOWER | VFAT_SFN_CREATE_WIN95;
    case 'win95':
      return VFAT_SFN_DISPLAY_WIN95 | VFAT_SFN_CREATE_WIN95;
    case 'winnt':
      return VFAT_SFN_DISPLAY_WINNT | VFAT_SFN_CREATE_WINNT;
    case 'mixed':
      return VFAT_SFN_DISPLAY_WINNT | VFAT_SFN_CREATE_WIN95;
  }
}

/* ---- cp437 (nls_cp437): bytes 0x80..0xFF to Unicode ---- */

const CP437_HIGH = [
  0x00c7, 0x00fc, 0x00e9, 0x00e2, 0x00e4, 0x00e0, 0x00e5, 0x00e7, 0x00ea, 0x00eb, 0x00e8, 0x00ef, 0x00ee, 0x00ec, 0x00c4, 0x00c5,
  0x00c9, 0x00e6, 0x00c6, 0x00f4, 0x00f6, 0x00f2, 0x00fb, 0x00f9, 0x00ff, 0x00d6, 0x00dc, 0x00a2, 0x00a3, 0x00a5, 0x20a7, 0x0192,
  0x00e1, 0x00ed, 0x00f3, 0x00fa, 0x00f1, 0x00d1, 0x00aa, 0x00ba, 0x00bf, 0x2310, 0x00ac, 0x00bd, 0x00bc, 0x00a1, 0x00ab, 0x00bb,
  0x2591, 0x2592, 0x2593, 0x2502, 0x2524, 0x2561, 0x2562, 0x2556, 0x2555, 0x2563, 0x2551, 0x2557, 0x255d, 0x255c, 0x255b, 0x2510,
  0x2514, 0x2534, 0x252c, 0x251c, 0x2500, 0x253c, 0x255e, 0x255f, 0x255a, 0x2554, 0x2569, 0x2566, 0x2560, 0x2550, 0x256c, 0x2567,
  0x2568, 0x2564, 0x2565, 0x2559, 0x2558, 0x2552, 0x2553, 0x256b, 0x256a, 0x2518, 0x250c, 0x2588, 0x2584, 0x258c, 0x2590, 0x2580,
  0x03b1, 0x00df, 0x0393, 0x03c0, 0x03a3, 0x03c3, 0x00b5, 0x03c4, 0x03a6, 0x0398, 0x03a9, 0x03b4, 0x221e, 0x03c6, 0x03b5, 0x2229,
  0x2261, 0x00b1, 0x2265, 0x2264, 0x2320, 0x2321, 0x00f7, 0x2248, 0x00b0, 0x2219, 0x00b7, 0x221a, 0x207f, 0x00b2, 0x25a0, 0x00a0,
];

/** A single-byte on-disk code page, in the shape of Linux's struct nls_table. */
export interface nls_table {
  /** Unicode -> byte, or -1 when the code page has no such character. */
  uni2char(u: number): number;
  /** Byte -> Unicode, or -1 (byte 0). */
  char2uni(c: number): number;
  toupper(c: number): number;
  tolower(c: number): number;
}

function buildCp437(): nls_table {
  const toUni = new Int32Array(256);
  const fromUni = new Map<number, number>();
  for (let c = 0; c < 256; c++) {
    const u = c < 0x80 ? c : CP437_HIGH[c - 0x80]!;
    toUni[c] = c === 0 ? -1 : u;
    if (c !== 0 && !fromUni.has(u)) fromUni.set(u, c);
  }
  /* Linux's charset2upper/lower tables for cp437 are exactly "case-map the Unicode
   * character, keep the byte if the result is not in the code page", which is how we
   * build them; single-unit mappings only (ß stays ß). */
  const upper = new Uint8Array(256);
  const lower = new Uint8Array(256);
  for (let c = 0; c < 256; c++) {
    upper[c] = c;
    lower[c] = c;
    const u = toUni[c]!;
    if (u < 0) continue;
    const s = String.fromCharCode(u);
    const up = s.toUpperCase();
    const lo = s.toLowerCase();
    if (up.length === 1 && fromUni.has(up.charCodeAt(0))) upper[c] = fromUni.get(up.charCodeAt(0))!;
    if (lo.length === 1 && fromUni.has(lo.charCodeAt(0))) lower[c] = fromUni.get(lo.charCodeAt(0))!;
  }
  return {
    uni2char: (u) => fromUni.get(u) ?? -1,
    char2uni: (c) => toUni[c & 0xff]!,
    toupper: (c) => upper[c & 0xff]!,
    tolower: (c) => lower[c & 0xff]!,
  };
}

export const nls_cp437: nls_table = buildCp437();

/* ---- UTF-8 <-> UTF-16 (fs/nls/nls_base.c) ---- */

/**
 * utf8s_to_utf16s: malformed UTF-8 (bad continuation, overlong form, surrogate code point,
 * above U+10FFFF, truncated) is -EINVAL; characters above U+FFFF become surrogate pairs.
 * Conversion stops after maxout units.
 */
export function utf8s_to_utf16s(s: Uint8Array, maxout = Infinity): Uint16Array | number {
  const out: number[] = [];
  let i = 0;
  while (i < s.length && out.length < maxout) {
    const c0 = s[i]!;
    let u: number;
    let n: number;
    if (c0 < 0x80) {
      u = c0;
      n = 1;
    } else if ((c0 & 0xe0) === 0xc0) {
      u = c0 & 0x1f;
      n = 2;
    } else if ((c0 & 0xf0) === 0xe0) {
      u = c0 & 0x0f;
      n = 3;
    } else if ((c0 & 0xf8) === 0xf0) {
      u = c0 & 0x07;
      n = 4;
    } else return -EINVAL;
    if (i + n > s.length) return -EINVAL;
    for (let k = 1; k < n; k++) {
      const c = s[i + k]!;
      if ((c & 0xc0) !== 0x80) return -EINVAL;
      u = (u << 6) | (c & 0x3f);
    }
    const min = n === 1 ? 0 : n === 2 ? 0x80 : n === 3 ? 0x800 : 0x10000;
    if (u < min || u > 0x10ffff || (u >= 0xd800 && u <= 0xdfff)) return -EINVAL;
    i += n;
    if (u >= 0x10000) {
      if (out.length + 2 > maxout) break;
      u -= 0x10000;
      out.push(0xd800 | (u >> 10), 0xdc00 | (u & 0x3ff));
    } else out.push(u);
  }
  return Uint16Array.from(out);
}

/**
 * utf16s_to_utf8s: stops at a 0x0000 unit; lone surrogates are dropped (a high surrogate
 * with nothing after it ends the string), as Linux drops them.
 */
export function utf16s_to_utf8s(w: ArrayLike<number>): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < w.length; i++) {
    let u = w[i]!;
    if (u === 0) break;
    if (u >= 0xd800 && u <= 0xdfff) {
      if (u >= 0xdc00) continue;
      if (i + 1 >= w.length) break;
      const u2 = w[i + 1]!;
      if (u2 < 0xdc00 || u2 > 0xdfff) continue;
      u = 0x10000 + ((u - 0xd800) << 10) + (u2 - 0xdc00);
      i++;
    }
    if (u < 0x80) out.push(u);
    else if (u < 0x800) out.push(0xc0 | (u >> 6), 0x80 | (u & 0x3f));
    else if (u < 0x10000) out.push(0xe0 | (u >> 12), 0x80 | ((u >> 6) & 0x3f), 0x80 | (u & 0x3f));
    else out.push(0xf0 | (u >> 18), 0x80 | ((u >> 12) & 0x3f), 0x80 | ((u >> 6) & 0x3f), 0x80 | (u & 0x3f));
  }
  return Uint8Array.from(out);
}

/** UTF-16 units of a JS string (for tests and callers that hold strings). */
export function str_to_uni(s: string): Uint16Array {
  return Uint16Array.from({ length: s.length }, (_, i) => s.charCodeAt(i));
}

export function uni_to_str(u: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < u.length; i++) s += String.fromCharCode(u[i]!);
  return s;
}

/* ---- Long-name validity ---- */

/** Characters no long name may hold: controls and * ? < > | " : / \ (vfat_bad_char). */
export function vfat_bad_char(u: number): boolean {
  return (
    u < 0x20 || u === 0x2a || u === 0x3f || u === 0x3c || u === 0x3e || u === 0x7c || u === 0x22 ||
    u === 0x3a || u === 0x2f || u === 0x5c
  );
}

/** Legal in a long name but not in an 8.3 one: become '_' in the alias. */
export function vfat_replace_char(u: number): boolean {
  return u === 0x5b || u === 0x5d || u === 0x3b || u === 0x2c || u === 0x2b || u === 0x3d;
}

/** Dropped when making an alias. */
export function vfat_skip_char(u: number): boolean {
  return u === 0x2e || u === 0x20;
}

/**
 * vfat_striptail_len: Linux ignores trailing dots of a name everywhere (create, lookup,
 * hash, compare), so "a." and "a" are the same name. Trailing spaces are not stripped:
 * they make the name invalid (vfat_is_used_badchars).
 */
export function vfat_striptail_len(name: ArrayLike<number>, len = name.length): number {
  while (len && name[len - 1] === 0x2e) len--;
  return len;
}

/** vfat_is_used_badchars: 0 or -EINVAL. */
export function vfat_is_used_badchars(uname: ArrayLike<number>): number {
  for (let i = 0; i < uname.length; i++) if (vfat_bad_char(uname[i]!)) return -EINVAL;
  if (uname.length && uname[uname.length - 1] === 0x20) return -EINVAL;
  return 0;
}

export interface VfatIoOptions {
  /** utf8 mount option: names are UTF-8; else iocharset iso8859-1 (byte = code point). */
  utf8: boolean;
}

/**
 * xlate_to_uni for a name already stripped of trailing dots: -EINVAL for malformed UTF-8,
 * -ENAMETOOLONG above 255 units.
 */
export function vfat_xlate_to_uni(name: Uint8Array, io: VfatIoOptions): Uint16Array | number {
  if (io.utf8) {
    const u = utf8s_to_utf16s(name, FAT_LFN_LEN + 2);
    if (typeof u === 'number') return u;
    if (u.length > FAT_LFN_LEN) return -ENAMETOOLONG;
    return u;
  }
  if (name.length > FAT_LFN_LEN) return -ENAMETOOLONG;
  return Uint16Array.from(name);
}

/**
 * The whole check a new name goes through in vfat_add_entry / vfat_build_slots: trailing
 * dots stripped (nothing left: -ENOENT), converted to UTF-16, bad characters and a trailing
 * space refused (-EINVAL), over 255 units refused (-ENAMETOOLONG). Returns the long name.
 */
export function vfat_valid_longname(name: Uint8Array, io: VfatIoOptions): Uint16Array | number {
  const len = vfat_striptail_len(name);
  if (len === 0) return -ENOENT;
  const u = vfat_xlate_to_uni(name.subarray(0, len), io);
  if (typeof u === 'number') return u;
  const bad = vfat_is_used_badchars(u);
  if (bad) return bad;
  return u;
}

/* ---- 8.3 alias creation (vfat_create_shortname) ---- */

interface ShortnameInfo {
  lower: boolean;
  upper: boolean;
  valid: boolean;
}

/* to_shortname_char: the alias byte for one unit, or -1 when the unit is skipped. Bytes
 * >= 0x7F make that part neither "all lower" nor "all upper", so it needs a long name. */
function toShortnameChar(cp: nls_table, u: number, info: ShortnameInfo): number {
  if (vfat_skip_char(u)) {
    info.valid = false;
    return -1;
  }
  if (vfat_replace_char(u)) {
    info.valid = false;
    return 0x5f;
  }
  const c = cp.uni2char(u);
  if (c < 0) {
    info.valid = false;
    return 0x5f;
  }
  if (c >= 0x7f) {
    info.lower = false;
    info.upper = false;
  }
  const up = cp.toupper(c);
  if ((up >= 0x41 && up <= 0x5a) || (up >= 0x61 && up <= 0x7a)) {
    if (up === c) info.lower = false;
    else info.upper = false;
  }
  return up;
}

export interface VfatShortnameOptions {
  /** vfat_shortname_flags(...) value. */
  shortname: number;
  /** false with the nonumtail option: try the bare alias before adding ~1. Default true. */
  numtail?: boolean;
  /** On-disk code page; default cp437. */
  codepage?: nls_table;
  /**
   * Start of the hashed tail after ~1..~9 are taken. Linux uses jiffies (so the alias is
   * not reproducible); pass something deterministic in tests.
   */
  seed?: number;
}

export interface VfatShortname {
  /** The 11-byte alias, space padded, 0xE5 at name[0] escaped as 0x05. */
  name: Uint8Array;
  /** CASE_LOWER_BASE / CASE_LOWER_EXT to store with it. */
  lcase: number;
  /** The alias alone stands for the name: no long-name slots are written. */
  isShortname: boolean;
}

/**
 * vfat_create_shortname. `exists(name11)` says whether the directory already holds an
 * entry with that 8.3 name (fat_scan). Returns -EINVAL when nothing of the name survives
 * for the alias (e.g. "..."), -EEXIST when the name is itself a valid alias that exists.
 */
export function vfat_create_shortname(
  uname: Uint16Array,
  opts: VfatShortnameOptions,
  exists: (name11: Uint8Array) => boolean,
): VfatShortname | number {
  const cp = opts.codepage ?? nls_cp437;
  const ulen = uname.length;
  const baseInfo: ShortnameInfo = { lower: true, upper: true, valid: true };
  const extInfo: ShortnameInfo = { lower: true, upper: true, valid: true };
  let isShortname = true;

  /* The extension starts after the last dot, unless that dot ends the name or everything
   * before it is dots and spaces (".profile": Win95 makes that the base, no extension). */
  let sz = ulen;
  let extStart = -1;
  let dot = ulen - 1;
  while (dot >= 0 && uname[dot] !== 0x2e) dot--;
  if (dot >= 0 && dot !== ulen - 1) {
    let p = 0;
    while (p < dot && vfat_skip_char(uname[p]!)) p++;
    if (p !== dot) {
      sz = dot;
      extStart = dot + 1;
    }
  }

  const base: number[] = [];
  for (let i = 0; i < sz; i++) {
    const c = toShortnameChar(cp, uname[i]!, baseInfo);
    if (c < 0) continue;
    base.push(c);
    if (base.length >= 8) {
      if (i + 1 < sz) isShortname = false;
      break;
    }
  }
  if (base.length === 0) return -EINVAL;

  const ext: number[] = [];
  if (extStart >= 0) {
    for (let i = extStart; ext.length < 3 && i < ulen; i++) {
      const c = toShortnameChar(cp, uname[i]!, extInfo);
      if (c < 0) continue;
      ext.push(c);
      if (ext.length >= 3) {
        if (i + 1 !== ulen) isShortname = false;
        break;
      }
    }
  }

  /* ".\xe5" can get here: 0xE5 first would read as a deleted entry. */
  if (base[0] === DELETED_FLAG) base[0] = KANJI_ESCAPE;

  const name = new Uint8Array(MSDOS_NAME).fill(0x20);
  name.set(base, 0);
  name.set(ext, 8);
  let lcase = 0;

  if (isShortname && baseInfo.valid && extInfo.valid) {
    if (exists(name.slice())) return -EEXIST;
    if (opts.shortname & VFAT_SFN_CREATE_WIN95) {
      return { name, lcase: 0, isShortname: baseInfo.upper && extInfo.upper };
    }
    /* WINNT: a part that is all upper or all lower case needs no long name. */
    if ((baseInfo.upper || baseInfo.lower) && (extInfo.upper || extInfo.lower)) {
      if (!baseInfo.upper && baseInfo.lower) lcase |= CASE_LOWER_BASE;
      if (!extInfo.upper && extInfo.lower) lcase |= CASE_LOWER_EXT;
      return { name, lcase, isShortname: true };
    }
    return { name, lcase: 0, isShortname: false };
  }

  if (opts.numtail === false && !exists(name.slice())) return { name, lcase: 0, isShortname: false };

  /* ~1..~9 after at most 6 base characters, as Windows does first. */
  let baselen = base.length;
  if (baselen > 6) {
    baselen = 6;
    name[7] = 0x20;
  }
  name[baselen] = 0x7e;
  for (let i = 1; i < 10; i++) {
    name[baselen + 1] = 0x30 + i;
    if (!exists(name.slice())) return { name, lcase: 0, isShortname: false };
  }

  /* Then 2 base characters, 4 hex digits counting down from a pseudo-random start, and
   * ~1..~8 (also pseudo-random): Windows' trick to avoid scanning thousands of tails. */
  const seed = (opts.seed ?? 0) | 0;
  let i = seed;
  const tail = (seed >>> 16) & 0x7;
  if (baselen > 2) {
    baselen = 2;
    name[7] = 0x20;
  }
  name[baselen + 4] = 0x7e;
  name[baselen + 5] = 0x31 + tail;
  for (;;) {
    const hex = (i & 0xffff).toString(16).toUpperCase().padStart(4, '0');
    for (let k = 0; k < 4; k++) name[baselen + k] = hex.charCodeAt(k);
    if (!exists(name.slice())) break;
    i = (i - 11) | 0;
  }
  return { name, lcase: 0, isShortname: false };
}

/* ---- Displaying an 8.3 name (fat_parse_short, vfat flavour) ---- */

/**
 * The name readdir shows for an 8.3 entry, as UTF-16: base and extension with trailing
 * spaces dropped, joined by '.' when there is an extension, cased per shortname= (lower:
 * always lower; win95: as stored; winnt/mixed: lower where the lcase bit says so).
 * An empty result (name[0] == 0) means "no name".
 */
export function fat_parse_short(
  name: Uint8Array,
  lcase: number,
  shortnameFlags: number,
  cp: nls_table = nls_cp437,
): Uint16Array {
  const work = name.slice(0, MSDOS_NAME);
  if (work[0] === KANJI_ESCAPE) work[0] = DELETED_FLAG;
  const toUni = (c: number, lower: boolean): number => {
    let lowered = false;
    if (shortnameFlags & VFAT_SFN_DISPLAY_LOWER) lowered = true;
    else if (shortnameFlags & VFAT_SFN_DISPLAY_WIN95) lowered = false;
    else if (shortnameFlags & VFAT_SFN_DISPLAY_WINNT) lowered = lower;
    const u = cp.char2uni(lowered ? cp.tolower(c) : c);
    return u < 0 ? 0x3f : u;
  };
  const uni: number[] = [];
  let uniLen = 0;
  for (let i = 0; i < 8; i++) {
    const c = work[i]!;
    if (!c) break;
    uni.push(toUni(c, (lcase & CASE_LOWER_BASE) !== 0));
    if (c !== 0x20) uniLen = uni.length;
  }
  uni.length = uniLen;
  uni.push(0x2e);
  for (let k = 8; k < MSDOS_NAME; k++) {
    const c = work[k]!;
    if (!c) break;
    uni.push(toUni(c, (lcase & CASE_LOWER_EXT) !== 0));
    if (c !== 0x20) uniLen = uni.length;
  }
  return Uint16Array.from(uni.slice(0, uniLen));
}

/* ---- Comparison for lookup ---- */

/**
 * How names are folded for case-insensitive lookup. 'simple': per-unit Unicode simple case
 * mapping (ASCII, Latin-1, Greek, Cyrillic... whatever maps one unit to one unit).
 * 'ascii': only A-Z, which is what Linux effectively does with utf8=1 (its iocharset
 * tables see UTF-8 bytes).
 */
export type VfatFold = 'simple' | 'ascii';

const foldCache = new Map<number, number>();

/** Upper-case form of one UTF-16 unit used for comparisons. */
export function vfat_fold_unit(u: number, fold: VfatFold = 'simple'): number {
  if (u < 0x80 || fold === 'ascii') return u >= 0x61 && u <= 0x7a ? u - 0x20 : u;
  if (u >= 0xd800 && u <= 0xdfff) return u;
  let f = foldCache.get(u);
  if (f === undefined) {
    const up = String.fromCharCode(u).toUpperCase();
    f = up.length === 1 ? up.charCodeAt(0) : u;
    foldCache.set(u, f);
  }
  return f;
}

/**
 * vfat_cmpi / fat_name_match on UTF-16 names: trailing dots ignored on both sides, then
 * equal length and equal folded units. `caseSensitive` mirrors check=strict ('s').
 */
export function vfat_name_eq(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  fold: VfatFold = 'simple',
  caseSensitive = false,
): boolean {
  const alen = vfat_striptail_len(a);
  const blen = vfat_striptail_len(b);
  if (alen !== blen) return false;
  for (let i = 0; i < alen; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (caseSensitive || vfat_fold_unit(x, fold) !== vfat_fold_unit(y, fold)) return false;
  }
  return true;
}

/** vfat_hashi's counterpart: a key equal for names vfat_name_eq calls equal. */
export function vfat_name_key(u: ArrayLike<number>, fold: VfatFold = 'simple'): string {
  const len = vfat_striptail_len(u);
  let s = '';
  for (let i = 0; i < len; i++) s += String.fromCharCode(vfat_fold_unit(u[i]!, fold));
  return s;
}

/** 8.3 names compare as stored bytes (fat_scan): aliases are upper case already. */
export function msdos_name_eq(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < MSDOS_NAME; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** An 11-byte alias as "BASE.EXT" text (raw, no casing), for messages and tests. */
export function msdos_name_str(name: Uint8Array): string {
  const b = String.fromCharCode(...name.subarray(0, 8)).replace(/ +$/, '');
  const e = String.fromCharCode(...name.subarray(8, 11)).replace(/ +$/, '');
  return e ? `${b}.${e}` : b;
}
