/*
 * The on-disk directory format (fs/fat/dir.c): reading a directory's entries through
 * metadata buffers, readdir with stable offsets (the byte position of a record's first
 * slot), searching by long or short name, adding a record (long-name slots + 8.3 entry)
 * into free slots or a new cluster, removing one (slots marked deleted), the "." / ".."
 * entries of a new directory, and counting subdirectories for nlink.
 *
 * namei_vfat.ts is the glue to the VFS; all knowledge of the directory layout is here.
 * Callers hold sbi.s_lock (directory changes) or the directory's i_rwsem (readdir).
 */
import type { dir_context, super_block } from '../../include/fs.js';
import { err } from '../../include/errno.js';
import { DT_DIR, DT_REG, EIO, ENOSPC } from '../../include/uapi.js';
import { bytesToBstr } from '../../lib/bstr.js';
import { mark_inode_dirty } from '../fs-writeback.js';
import {
  MSDOS_SB, MSDOS_ROOT_INO, fat_checksum, fat_make_ipos, fat_set_start, type msdos_inode_info, type msdos_sb_info,
} from './fat.js';
import {
  ATTR_DIR, ATTR_EXT, ATTR_VOLUME, DE_ATTR, DELETED_FLAG, DS_ATTR, FAT_LFN_CHARS_PER_SLOT, FAT_MAX_DIR_ENTRIES,
  FAT_MAX_LFN_SLOTS, LAST_LONG_ENTRY, MSDOS_DIR_ENTRY_SIZE, MSDOS_DOT, MSDOS_DOTDOT, MSDOS_NAME, fat_is_free,
  msdos_dir_entry_decode, msdos_dir_entry_encode, msdos_dir_entry_new, msdos_dir_slot_decode, msdos_dir_slot_name, type msdos_dir_entry,
} from './layout.js';
import { fat_parse_short, utf16s_to_utf8s, vfat_name_key, vfat_striptail_len } from './names.js';
import { fat_bmap } from './cache.js';
import { fat_add_clusters, fat_alloc_clusters } from './fatent.js';
import { fat_fs_error } from './misc.js';

/* ---- A directory's bytes: records (fat_parse_long, the walk of __fat_readdir) ---- */

/** The 8.3 name is "." or "..". */
export function fat_is_dot(name: Uint8Array): boolean {
  return bytesEqStr(name, MSDOS_DOT) || bytesEqStr(name, MSDOS_DOTDOT);
}

function bytesEqStr(b: Uint8Array, s: string): boolean {
  if (b.length < s.length) return false;
  for (let i = 0; i < s.length; i++) if (b[i] !== s.charCodeAt(i)) return false;
  return true;
}

/** One directory record as readdir/lookup see it: an 8.3 entry and its long name, if any. */
export interface FatDirRecord {
  /** Byte offset of the 8.3 entry in the directory. */
  offset: number;
  /** Byte offset of the record's first slot (= offset when there is no long name). */
  slotOffset: number;
  /** Long-name slots that belong to the entry (0: none, or they failed the checksum). */
  nrSlots: number;
  de: msdos_dir_entry;
  /** The long name up to its 0x0000 terminator, or null. */
  longName: Uint16Array | null;
}

export interface FatDirParseOptions {
  /** Treat long-name slots at all (vfat); msdos mode reads 8.3 entries only. */
  isvfat?: boolean;
  /**
   * Stop at the first entry whose name[0] is 0. Linux never stops there (it scans the whole
   * directory, treating 0 as free); DOS, mtools and fsck.fat do. Default false.
   */
  stopAtZero?: boolean;
}

/**
 * __fat_readdir / fat_search_long over a directory's bytes (all its clusters, or the
 * FAT12/16 root area, concatenated): yields each live 8.3 entry with its long name.
 * Free and deleted entries and volume labels are skipped. Long names are gathered exactly
 * as fat_parse_long does: the run must start with a LAST_LONG_ENTRY slot of 1..20, count
 * down with one checksum; a slot out of sequence restarts the parse at that slot (which is
 * dropped if it cannot start a run); a deleted, free or volume entry after the run drops
 * the record; an 8.3 entry whose checksum differs keeps only its short name.
 */
export function* fat_dir_records(buf: Uint8Array, opts: FatDirParseOptions = {}): Generator<FatDirRecord> {
  const isvfat = opts.isvfat ?? true;
  const n = Math.floor(buf.length / MSDOS_DIR_ENTRY_SIZE);
  let i = 0;
  while (i < n) {
    const off = i * MSDOS_DIR_ENTRY_SIZE;
    const name0 = buf[off]!;
    const attr = buf[off + DE_ATTR]!;
    if (name0 === 0 && opts.stopAtZero) return;
    if (isvfat) {
      if (name0 === DELETED_FLAG) { i++; continue; }
      if (attr !== ATTR_EXT && attr & ATTR_VOLUME) { i++; continue; }
      if (attr !== ATTR_EXT && fat_is_free(name0)) { i++; continue; }
    } else if (attr & ATTR_VOLUME || fat_is_free(name0)) {
      i++;
      continue;
    }
    if (!(isvfat && attr === ATTR_EXT)) {
      yield { offset: off, slotOffset: off, nrSlots: 0, de: msdos_dir_entry_decode(buf, off), longName: null };
      i++;
      continue;
    }
    const r = parseLong(buf, i, n);
    if (r.kind === 'eof') return;
    if (r.kind === 'invalid') { i = r.next; continue; }
    if (r.kind === 'notlong') { i = r.next; continue; /* re-parsed as an ordinary entry */ }
    yield r.record;
    i = r.next;
  }
}

type ParseLong =
  | { kind: 'ok'; record: FatDirRecord; next: number }
  | { kind: 'invalid'; next: number }
  | { kind: 'notlong'; next: number }
  | { kind: 'eof' };

/* fat_parse_long: i indexes an ATTR_EXT entry. On 'invalid', next skips the entry the parse
 * stopped on; on 'notlong', next is that entry, to be read as a record of its own. */
function parseLong(buf: Uint8Array, start: number, n: number): ParseLong {
  let i = start;
  restart: while (true) {
    const first = i;
    let ds = msdos_dir_slot_decode(buf, i * MSDOS_DIR_ENTRY_SIZE);
    if (!(ds.id & LAST_LONG_ENTRY)) return { kind: 'invalid', next: i + 1 };
    const slots = ds.id & ~LAST_LONG_ENTRY;
    if (slots > FAT_MAX_LFN_SLOTS || !slots) return { kind: 'invalid', next: i + 1 };
    const checksum = ds.alias_checksum;
    const unicode = new Uint16Array(slots * FAT_LFN_CHARS_PER_SLOT);
    let slot = slots;
    while (true) {
      slot--;
      unicode.set(msdos_dir_slot_name(ds), slot * FAT_LFN_CHARS_PER_SLOT);
      i++;
      if (i >= n) return { kind: 'eof' };
      if (slot === 0) break;
      const off = i * MSDOS_DIR_ENTRY_SIZE;
      if (buf[off + DS_ATTR] !== ATTR_EXT) return { kind: 'notlong', next: i };
      ds = msdos_dir_slot_decode(buf, off);
      if ((ds.id & ~LAST_LONG_ENTRY) !== slot || ds.alias_checksum !== checksum) continue restart;
    }
    const off = i * MSDOS_DIR_ENTRY_SIZE;
    const name0 = buf[off]!;
    const attr = buf[off + DE_ATTR]!;
    if (name0 === DELETED_FLAG) return { kind: 'invalid', next: i + 1 };
    if (attr === ATTR_EXT) continue restart;
    if (fat_is_free(name0) || attr & ATTR_VOLUME) return { kind: 'invalid', next: i + 1 };
    const de = msdos_dir_entry_decode(buf, off);
    if (fat_checksum(de.name) !== checksum)
      return { kind: 'ok', record: { offset: off, slotOffset: off, nrSlots: 0, de, longName: null }, next: i + 1 };
    let len = unicode.indexOf(0);
    if (len < 0) len = unicode.length;
    return {
      kind: 'ok',
      record: {
        offset: off,
        slotOffset: first * MSDOS_DIR_ENTRY_SIZE,
        nrSlots: slots,
        de,
        longName: unicode.slice(0, len),
      },
      next: i + 1,
    };
  }
}

/**
 * The volume label: the first entry with ATTR_VOLUME that is not a long-name slot (root
 * directory only). Returns its 11 bytes, or null.
 */
export function fat_find_volume_label(buf: Uint8Array): Uint8Array | null {
  for (let off = 0; off + MSDOS_DIR_ENTRY_SIZE <= buf.length; off += MSDOS_DIR_ENTRY_SIZE) {
    const name0 = buf[off]!;
    if (name0 === 0) return null;
    const attr = buf[off + DE_ATTR]!;
    if (name0 !== DELETED_FLAG && attr !== ATTR_EXT && attr & ATTR_VOLUME)
      return buf.slice(off, off + MSDOS_NAME);
  }
  return null;
}

/* ---- Directories through metadata buffers ---- */

/** A directory's bytes and, per block of it, the disk block (for i_pos and writes). */
export interface DirImage {
  buf: Uint8Array;
  blocks: number[];
}

/** Read every block of a directory (the FAT12/16 root: its fixed area). */
export async function fat_read_dir(dir: msdos_inode_info): Promise<DirImage> {
  const sbi = MSDOS_SB(dir.i_sb);
  const bs = sbi.blocksize;
  const nblocks = Math.floor(dir.i_size / bs);
  const buf = new Uint8Array(nblocks * bs);
  const blocks: number[] = [];
  for (let i = 0; i < nblocks;) {
    const m = await fat_bmap(dir, i);
    if (!m.pblk) {
      throw fat_fs_error(dir.i_sb, `directory ${dir.i_ino}: chain shorter than its size`, EIO);
    }
    for (let k = 0; k < m.len && i < nblocks; k++, i++) {
      const bh = await sbi.bops.bread(m.pblk + k);
      buf.set(bh.b_data, i * bs);
      sbi.bops.brelse(bh);
      blocks.push(m.pblk + k);
    }
  }
  return { buf, blocks };
}

export function fat_record_ipos(sbi: msdos_sb_info, img: DirImage, offset: number): number {
  const bs = sbi.blocksize;
  return fat_make_ipos(sbi, img.blocks[Math.floor(offset / bs)]!, offset % bs);
}

/** The inode number of the entry at i_pos: the in-core one, or one handed out for good. */
export function fat_ino_for_pos(sbi: msdos_sb_info, i_pos: number): number {
  let ino = sbi.ino_of_pos.get(i_pos);
  if (ino === undefined) {
    ino = sbi.next_ino++;
    sbi.ino_of_pos.set(i_pos, ino);
  }
  return ino;
}

/**
 * A directory's records, parsed once and indexed by name (long and displayed short, folded
 * as lookups compare them), by i_pos and by 8.3 alias. Valid until the directory's entries
 * change through this file (fat_dir_invalidate). fat_write_inode changes a child entry's
 * size, start cluster and times behind its back, so users needing those re-read the entry.
 */
export interface DirCache {
  img: DirImage;
  records: Array<FatDirRecord & { i_pos: number; keys: string[] }>;
  byName: Map<string, fat_slot_info>;
  byPos: Map<number, fat_slot_info>;
  aliases: Set<string>;
}

function nameKey(sbi: msdos_sb_info, u: ArrayLike<number>): string {
  if (sbi.options.name_check === 's') {
    let s = '';
    for (let i = 0; i < vfat_striptail_len(u); i++) s += String.fromCharCode(u[i]!);
    return s;
  }
  return vfat_name_key(u, sbi.options.fold);
}

function recordKeys(sbi: msdos_sb_info, r: FatDirRecord): string[] {
  if (fat_is_dot(r.de.name)) return [];
  const keys = [nameKey(sbi, fat_parse_short(r.de.name, r.de.lcase, sbi.options.shortname))];
  if (r.longName) keys.unshift(nameKey(sbi, r.longName));
  return keys;
}

function cacheInsert(sbi: msdos_sb_info, c: DirCache, r: FatDirRecord, sorted: boolean): void {
  const rec = Object.assign(r, { i_pos: fat_record_ipos(sbi, c.img, r.offset), keys: recordKeys(sbi, r) });
  if (sorted) c.records.push(rec);
  else {
    let lo = 0, hi = c.records.length;
    while (lo < hi) { const mid = (lo + hi) >> 1; if (c.records[mid]!.offset < rec.offset) lo = mid + 1; else hi = mid; }
    c.records.splice(lo, 0, rec);
  }
  const slot = { record: rec, i_pos: rec.i_pos };
  c.byPos.set(rec.i_pos, slot);
  for (const key of rec.keys) if (!c.byName.has(key)) c.byName.set(key, slot);
  c.aliases.add(bytesToBstr(rec.de.name, 0, 11));
}

export async function fat_dir_cache(dir: msdos_inode_info): Promise<DirCache> {
  if (dir.dircache) return dir.dircache as DirCache;
  const sbi = MSDOS_SB(dir.i_sb);
  const img = await fat_read_dir(dir);
  const c: DirCache = { img, records: [], byName: new Map(), byPos: new Map(), aliases: new Set() };
  for (const r of fat_dir_records(img.buf)) cacheInsert(sbi, c, r, true);
  // Aliases of entries whose long name did not parse count too (fat_scan sees every 8.3 entry).
  const n = img.buf.length / MSDOS_DIR_ENTRY_SIZE;
  for (let i = 0; i < n; i++) {
    const off = i * MSDOS_DIR_ENTRY_SIZE;
    const c0 = img.buf[off]!;
    if (c0 === 0 || c0 === DELETED_FLAG || img.buf[off + 11] === 0x0f) continue;
    c.aliases.add(bytesToBstr(img.buf, off, off + 11));
  }
  dir.dircache = c;
  return c;
}

/** The record just written at [at, at+len) joins the cache. */
function cacheAdded(dir: msdos_inode_info, at: number, len: number): void {
  const c = dir.dircache as DirCache | null;
  if (!c) return;
  const sbi = MSDOS_SB(dir.i_sb);
  let added = false;
  for (const r of fat_dir_records(c.img.buf.subarray(at, at + len))) {
    r.offset += at;
    r.slotOffset += at;
    cacheInsert(sbi, c, r, false);
    added = true;
  }
  if (!added) fat_dir_invalidate(dir);
}

/** A removed record leaves the cache. */
function cacheRemoved(dir: msdos_inode_info, record: FatDirRecord): void {
  const c = dir.dircache as DirCache | null;
  if (!c) return;
  // Records are in offset order: find the one removed by bisection.
  let lo = 0, hi = c.records.length;
  while (lo < hi) { const mid = (lo + hi) >>> 1; if (c.records[mid]!.offset < record.offset) lo = mid + 1; else hi = mid; }
  const i = lo;
  if (i >= c.records.length || c.records[i]!.offset !== record.offset) { fat_dir_invalidate(dir); return; }
  const rec = c.records[i]!;
  c.records.splice(i, 1);
  c.byPos.delete(rec.i_pos);
  for (const key of rec.keys) {
    if (c.byName.get(key)?.record !== rec) continue;
    c.byName.delete(key);
    // Another record may answer to the same key (first one in directory order wins).
    for (const o of c.records) if (o.keys.includes(key)) { c.byName.set(key, { record: o, i_pos: o.i_pos }); break; }
  }
  c.aliases.delete(bytesToBstr(rec.de.name, 0, 11));
  for (let off = record.slotOffset; off <= record.offset; off += MSDOS_DIR_ENTRY_SIZE) c.img.buf[off] = DELETED_FLAG;
}

export function fat_dir_invalidate(dir: msdos_inode_info): void {
  dir.dircache = null;
}

/** Name of a record as the VFS sees it (UTF-8 or Latin-1 bytes). */
export function fat_record_name(sb: super_block, r: FatDirRecord): string {
  const sbi = MSDOS_SB(sb);
  const u = r.longName ?? fat_parse_short(r.de.name, r.de.lcase, sbi.options.shortname);
  if (sbi.options.utf8) return bytesToBstr(utf16s_to_utf8s(u));
  let s = '';
  for (const c of u) s += c < 0x100 ? String.fromCharCode(c) : '?';
  return s;
}

/**
 * fat_readdir: emit records from ctx.pos on. Positions are byte offsets of each record's
 * first slot; the root, which has no "." and "..", fakes them at 0 and 1 and shifts its
 * entries by 2, so every position stays stable while the directory changes.
 */
export async function fat_readdir(dir: msdos_inode_info, ctx: dir_context, parentIno: number): Promise<void> {
  const sb = dir.i_sb;
  const sbi = MSDOS_SB(sb);
  const isRoot = dir.i_ino === MSDOS_ROOT_INO;
  const base = isRoot ? 2 : 0;
  if (isRoot) {
    if (ctx.pos === 0) { if (!ctx.emit('.', dir.i_ino, DT_DIR)) return; ctx.pos = 1; }
    if (ctx.pos === 1) { if (!ctx.emit('..', parentIno, DT_DIR)) return; ctx.pos = 2; }
  }
  const cache = await fat_dir_cache(dir);
  for (const r of cache.records) {
    if (r.slotOffset + base < ctx.pos) continue;
    ctx.pos = r.slotOffset + base;
    let ok: boolean;
    if (fat_is_dot(r.de.name)) {
      const dotdot = r.de.name[1] === 0x2e;
      ok = ctx.emit(dotdot ? '..' : '.', dotdot ? parentIno : dir.i_ino, DT_DIR);
    } else {
      ok = ctx.emit(fat_record_name(sb, r), fat_ino_for_pos(sbi, r.i_pos), r.de.attr & ATTR_DIR ? DT_DIR : DT_REG);
    }
    if (!ok) return;
    ctx.pos = r.offset + MSDOS_DIR_ENTRY_SIZE + base;
  }
  ctx.pos = cache.img.buf.length + base;
}

/** A record found by name, with the i_pos of its 8.3 entry. */
export interface fat_slot_info {
  record: FatDirRecord;
  i_pos: number;
}

/**
 * fat_search_long: the record whose long name or displayed 8.3 name equals `uname`
 * (case-insensitively, trailing dots ignored). "." and ".." are not searched here.
 */
export async function fat_search_long(dir: msdos_inode_info, uname: Uint16Array): Promise<fat_slot_info | null> {
  const sbi = MSDOS_SB(dir.i_sb);
  const cache = await fat_dir_cache(dir);
  return cache.byName.get(nameKey(sbi, uname)) ?? null;
}

/** fat_scan for an alias: does any entry have this 8.3 name? */
export function fat_alias_exists(cache: DirCache, name11: Uint8Array): boolean {
  return cache.aliases.has(bytesToBstr(name11, 0, 11));
}

/** Write bytes at a byte offset of the directory, 32 at a time (records may span blocks). */
async function dirWrite(dir: msdos_inode_info, img: DirImage, offset: number, bytes: Uint8Array): Promise<void> {
  const sbi = MSDOS_SB(dir.i_sb);
  const bs = sbi.blocksize;
  for (let k = 0; k < bytes.length; k += MSDOS_DIR_ENTRY_SIZE) {
    const off = offset + k;
    const bh = await sbi.bops.bread(img.blocks[Math.floor(off / bs)]!);
    bh.b_data.set(bytes.subarray(k, k + MSDOS_DIR_ENTRY_SIZE), off % bs);
    img.buf.set(bytes.subarray(k, k + MSDOS_DIR_ENTRY_SIZE), off);
    sbi.bops.markDirty(bh, dir);
    sbi.bops.brelse(bh);
  }
}

/** Grow a directory by one zeroed cluster (fat_add_new_entries). */
async function fat_extend_dir(dir: msdos_inode_info, img: DirImage): Promise<void> {
  const sb = dir.i_sb;
  const sbi = MSDOS_SB(sb);
  if (dir.i_ino === MSDOS_ROOT_INO && sbi.fat_bits !== 32) throw err(ENOSPC);
  if ((dir.i_size + sbi.cluster_size) / MSDOS_DIR_ENTRY_SIZE > FAT_MAX_DIR_ENTRIES) throw err(ENOSPC);
  const [c] = await fat_add_clusters(dir, 1);
  const first = (c! - 2) * sbi.sec_per_clus + sbi.data_start;
  const nbuf = new Uint8Array(img.buf.length + sbi.cluster_size);
  nbuf.set(img.buf);
  for (let b = 0; b < sbi.sec_per_clus; b++) {
    const bh = await sbi.bops.getblkZero(first + b);
    sbi.bops.markDirty(bh, dir);
    sbi.bops.brelse(bh);
    img.blocks.push(first + b);
  }
  img.buf = nbuf;
  dir.i_size += sbi.cluster_size;
  dir.mmu_private = dir.i_size;
  await mark_inode_dirty(dir);
}

/**
 * fat_add_entries: place a record (slots + 8.3 entry) in the first run of free entries
 * long enough, growing the directory when there is none. Free entries after the last used
 * one count (they reach into the new cluster). Returns the i_pos and offset of the 8.3 entry.
 */
export async function fat_add_entries(dir: msdos_inode_info, record: Uint8Array): Promise<{ i_pos: number; offset: number }> {
  const sbi = MSDOS_SB(dir.i_sb);
  const img = (await fat_dir_cache(dir)).img;
  try {
    const r = await addEntries(dir, sbi, img, record);
    cacheAdded(dir, r.offset + MSDOS_DIR_ENTRY_SIZE - record.length, record.length);
    return r;
  } catch (e) {
    fat_dir_invalidate(dir);
    throw e;
  }
}

async function addEntries(dir: msdos_inode_info, sbi: msdos_sb_info, img: DirImage, record: Uint8Array): Promise<{ i_pos: number; offset: number }> {
  const need = record.length / MSDOS_DIR_ENTRY_SIZE;
  const find = (): number => {
    const n = img!.buf.length / MSDOS_DIR_ENTRY_SIZE;
    let run = 0;
    for (let i = 0; i < n; i++) {
      const c0 = img!.buf[i * MSDOS_DIR_ENTRY_SIZE]!;
      if (c0 === 0 || c0 === DELETED_FLAG) {
        if (++run === need) return (i - need + 1) * MSDOS_DIR_ENTRY_SIZE;
      } else run = 0;
    }
    return -1;
  };
  let at = find();
  while (at < 0) {
    await fat_extend_dir(dir, img);
    at = find();
  }
  await dirWrite(dir, img, at, record);
  const offset = at + record.length - MSDOS_DIR_ENTRY_SIZE;
  return { i_pos: fat_record_ipos(sbi, img, offset), offset };
}

/** fat_remove_entries: mark a record's slots and 8.3 entry deleted. */
export async function fat_remove_entries(dir: msdos_inode_info, record: FatDirRecord): Promise<void> {
  const sbi = MSDOS_SB(dir.i_sb);
  const bs = sbi.blocksize;
  const img = (await fat_dir_cache(dir)).img;
  try {
    for (let off = record.slotOffset; off <= record.offset; off += MSDOS_DIR_ENTRY_SIZE) {
      const bh = await sbi.bops.bread(img.blocks[Math.floor(off / bs)]!);
      bh.b_data[off % bs] = DELETED_FLAG;
      sbi.bops.markDirty(bh, dir);
      sbi.bops.brelse(bh);
    }
  } catch (e) {
    fat_dir_invalidate(dir);
    throw e;
  }
  cacheRemoved(dir, record);
}

/** Rewrite the 8.3 entry at i_pos (fat_sync_inode's write; also for '..' fixes). */
export async function fat_update_entry(dir: msdos_inode_info | null, sbi: msdos_sb_info, i_pos: number, fn: (de: Uint8Array, off: number) => void): Promise<void> {
  const blk = Math.floor(i_pos / sbi.dir_per_block);
  const off = (i_pos % sbi.dir_per_block) * MSDOS_DIR_ENTRY_SIZE;
  const bh = await sbi.bops.bread(blk);
  fn(bh.b_data, off);
  sbi.bops.markDirty(bh, dir);
  sbi.bops.brelse(bh);
}

/** fat_subdirs: entries with ATTR_DIR, "." and ".." included (the nlink of a directory). */
export async function fat_subdirs(dir: msdos_inode_info): Promise<number> {
  let n = 0;
  for (const r of (await fat_dir_cache(dir)).records) if (r.de.attr & ATTR_DIR) n++;
  return n;
}

/** fat_dir_empty: nothing but "." and "..". */
export async function fat_dir_empty(dir: msdos_inode_info): Promise<boolean> {
  for (const r of (await fat_dir_cache(dir)).records) if (!fat_is_dot(r.de.name)) return false;
  return true;
}

/**
 * fat_alloc_new_dir: a zeroed cluster with "." (itself) and ".." (the parent's start
 * cluster, 0 for the root) stamped with the creation time. Returns the cluster.
 */
export async function fat_alloc_new_dir(dir: msdos_inode_info, stamp: msdos_dir_entry): Promise<number> {
  const sb = dir.i_sb;
  const sbi = MSDOS_SB(sb);
  const [c] = await fat_alloc_clusters(sb, 1);
  const first = (c! - 2) * sbi.sec_per_clus + sbi.data_start;
  for (let b = 0; b < sbi.sec_per_clus; b++) {
    const bh = await sbi.bops.getblkZero(first + b);
    if (b === 0) {
      const dot = msdos_dir_entry_new(MSDOS_DOT, ATTR_DIR);
      const dotdot = msdos_dir_entry_new(MSDOS_DOTDOT, ATTR_DIR);
      for (const d of [dot, dotdot]) {
        d.time = stamp.time; d.date = stamp.date; d.ctime = stamp.ctime; d.cdate = stamp.cdate;
        d.ctime_cs = stamp.ctime_cs; d.adate = stamp.adate;
      }
      fat_set_start(dot, c!);
      fat_set_start(dotdot, dir.i_ino === MSDOS_ROOT_INO ? 0 : dir.i_logstart);
      msdos_dir_entry_encode(dot, bh.b_data, 0);
      msdos_dir_entry_encode(dotdot, bh.b_data, MSDOS_DIR_ENTRY_SIZE);
    }
    sbi.bops.markDirty(bh, null);
    sbi.bops.brelse(bh);
  }
  return c!;
}

/** Point a directory's ".." at a new parent (rename across directories). */
export async function fat_set_dotdot(dir: msdos_inode_info, parent: msdos_inode_info): Promise<void> {
  const sbi = MSDOS_SB(dir.i_sb);
  const cache = await fat_dir_cache(dir);
  for (const r of cache.records) {
    if (r.de.name[0] === 0x2e && r.de.name[1] === 0x2e && fat_is_dot(r.de.name)) {
      const start = parent.i_ino === MSDOS_ROOT_INO ? 0 : parent.i_logstart;
      await fat_update_entry(dir, sbi, r.i_pos, (b, off) => {
        b[off + 26] = start & 0xff; b[off + 27] = (start >> 8) & 0xff;
        b[off + 20] = (start >>> 16) & 0xff; b[off + 21] = (start >>> 24) & 0xff;
      });
      return;
    }
  }
}
