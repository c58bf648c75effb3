/*
 * The File Allocation Table (fs/fat/fatent.c): the FAT12/16/32 entry codecs (on a FAT
 * held in memory, as tools and tests use them), reading and writing entries through
 * metadata buffers, every FAT copy written when mirroring, cluster allocation (from the
 * next-free hint, so files tend to be contiguous), freeing, the free-cluster count, and
 * the FAT32 FSInfo sector that summarises them.
 *
 * All changes to the FAT happen under sbi.fat_lock: a kernel thread sleeps on buffer reads
 * in the middle of an allocation, and another must not grab the same free clusters.
 */
import type { super_block } from '../../include/fs.js';
import { err } from '../../include/errno.js';
import { EIO, ENOSPC } from '../../include/uapi.js';
import { mark_inode_dirty } from '../fs-writeback.js';
import { MSDOS_SB, fat_valid_entry, type FatBuffer, type msdos_inode_info, type msdos_sb_info } from './fat.js';
import {
  BAD_FAT12, BAD_FAT16, BAD_FAT32, FAT_ENT_EOF, FAT_ENT_FREE, FAT_START_ENT, FAT16_CLN_SHUT_BIT, FAT32_CLN_SHUT_BIT,
  fat_fsinfo_decode, fat_fsinfo_encode, fat_is_fsinfo,
} from './layout.js';
import { fat_fs_error, fat_msg } from './misc.js';
import { fat_cache_inval_inode, fat_get_cluster } from './cache.js';

/* ---- Entries of a FAT held in memory (fat12/16/32_ent_get / _ent_put on a byte array) ---- */

/**
 * Byte offset of entry `entry` inside a FAT. A FAT12 entry is 1.5 bytes: even entries use
 * a byte and the low nibble of the next, odd entries the high nibble and the next byte, so
 * an entry may straddle a sector boundary (the driver must then hold both sectors).
 */
export function fat_ent_offset(fatBits: number, entry: number): number {
  if (fatBits === 12) return entry + (entry >> 1);
  return entry * (fatBits >> 3);
}

/** Bytes an entry touches starting at fat_ent_offset (2 for FAT12). */
export function fat_ent_bytes(fatBits: number): number {
  return fatBits === 32 ? 4 : 2;
}

/** The value as stored, masked to the entry width (FAT32: low 28 bits). */
export function fat_ent_get_raw(fat: Uint8Array, fatBits: number, entry: number): number {
  const off = fat_ent_offset(fatBits, entry);
  if (fatBits === 12) {
    const v = fat[off]! | (fat[off + 1]! << 8);
    return entry & 1 ? v >> 4 : v & 0xfff;
  }
  if (fatBits === 16) return fat[off]! | (fat[off + 1]! << 8);
  return (fat[off]! | (fat[off + 1]! << 8) | (fat[off + 2]! << 16) | (fat[off + 3]! << 24)) & 0x0fffffff;
}

/**
 * fat_ent_read's view: FAT_ENT_FREE, a next cluster, or FAT_ENT_EOF for anything from the
 * width's bad-cluster mark up (Linux folds "bad" and every end-of-chain value into EOF).
 */
export function fat_ent_get(fat: Uint8Array, fatBits: number, entry: number): number {
  const v = fat_ent_get_raw(fat, fatBits, entry);
  const bad = fatBits === 12 ? BAD_FAT12 : fatBits === 16 ? BAD_FAT16 : BAD_FAT32;
  return v >= bad ? FAT_ENT_EOF : v;
}

/**
 * Stores `value` (FAT_ENT_EOF / FAT_ENT_BAD are narrowed to the width). FAT12 keeps the
 * neighbour's nibble; FAT32 keeps the top 4 reserved bits of the old entry, as Microsoft
 * requires and Linux's fat32_ent_put does.
 */
export function fat_ent_set(fat: Uint8Array, fatBits: number, entry: number, value: number): void {
  const off = fat_ent_offset(fatBits, entry);
  if (fatBits === 12) {
    const v = value & 0xfff;
    if (entry & 1) {
      fat[off] = (fat[off]! & 0x0f) | ((v & 0x0f) << 4);
      fat[off + 1] = v >> 4;
    } else {
      fat[off] = v & 0xff;
      fat[off + 1] = (fat[off + 1]! & 0xf0) | (v >> 8);
    }
  } else if (fatBits === 16) {
    fat[off] = value & 0xff;
    fat[off + 1] = (value >> 8) & 0xff;
  } else {
    const v = ((value & 0x0fffffff) | ((fat[off + 3]! & 0xf0) << 24)) >>> 0;
    fat[off] = v & 0xff;
    fat[off + 1] = (v >>> 8) & 0xff;
    fat[off + 2] = (v >>> 16) & 0xff;
    fat[off + 3] = v >>> 24;
  }
}

/** The value FAT[0] holds on a fresh volume: the media byte with all other bits set. */
export function fat_ent0_value(fatBits: number, media: number): number {
  const mask = fatBits === 12 ? 0xfff : fatBits === 16 ? 0xffff : 0x0fffffff;
  return (mask & ~0xff) | media;
}

/** Microsoft's FAT[1] "clean shutdown" flag (set = clean). FAT12 has none: always true. */
export function fat_ent1_clean(fat: Uint8Array, fatBits: number): boolean {
  if (fatBits === 12) return true;
  const v = fat_ent_get_raw(fat, fatBits, 1);
  return (v & (fatBits === 32 ? FAT32_CLN_SHUT_BIT : FAT16_CLN_SHUT_BIT)) !== 0;
}

export function fat_ent1_set_clean(fat: Uint8Array, fatBits: number, clean: boolean): void {
  if (fatBits === 12) return;
  const bit = fatBits === 32 ? FAT32_CLN_SHUT_BIT : FAT16_CLN_SHUT_BIT;
  const v = fat_ent_get_raw(fat, fatBits, 1);
  fat_ent_set(fat, fatBits, 1, clean ? v | bit : v & ~bit);
}

/* ---- The FAT on the device, through metadata buffers ---- */

/** Where the bytes of `entry` live in FAT copy `copy`: one block, or two for a straddling FAT12 entry. */
function entPlace(sbi: msdos_sb_info, copy: number, entry: number): { blk: number; off: number; straddle: boolean } {
  const off = fat_ent_offset(sbi.fat_bits, entry);
  const blk = sbi.fat_start + copy * sbi.fat_length + Math.floor(off / sbi.blocksize);
  const o = off % sbi.blocksize;
  return { blk, off: o, straddle: sbi.fat_bits === 12 && o === sbi.blocksize - 1 };
}

async function entBuffers(sb: super_block, blk: number, straddle: boolean): Promise<FatBuffer[]> {
  const sbi = MSDOS_SB(sb);
  const cached = straddle ? null : sbi.bops.findGetBlock?.(blk);
  if (cached) return [cached];
  const a = await sbi.bops.bread(blk);
  if (!straddle) return [a];
  try {
    return [a, await sbi.bops.bread(blk + 1)];
  } catch (e) {
    sbi.bops.brelse(a);
    throw e;
  }
}

function releaseAll(sb: super_block, bhs: FatBuffer[]): void {
  for (const bh of bhs) MSDOS_SB(sb).bops.brelse(bh);
}

/** fat_ent_read: FAT_ENT_FREE, the next cluster, or FAT_ENT_EOF (bad and end marks alike). */
export async function fat_ent_read(sb: super_block, entry: number): Promise<number> {
  const sbi = MSDOS_SB(sb);
  if (!fat_valid_entry(sbi, entry)) {
    throw fat_fs_error(sb, `invalid access to FAT (entry 0x${entry.toString(16).padStart(8, '0')})`, EIO);
  }
  const p = entPlace(sbi, sbi.fatActive, entry);
  const bhs = await entBuffers(sb, p.blk, p.straddle);
  const d0 = bhs[0]!.b_data;
  let v: number;
  if (sbi.fat_bits === 12) {
    const lo = d0[p.off]!;
    const hi = p.straddle ? bhs[1]!.b_data[0]! : d0[p.off + 1]!;
    const w = lo | (hi << 8);
    v = entry & 1 ? w >> 4 : w & 0xfff;
    if (v >= BAD_FAT12) v = FAT_ENT_EOF;
  } else if (sbi.fat_bits === 16) {
    v = d0[p.off]! | (d0[p.off + 1]! << 8);
    if (v >= BAD_FAT16) v = FAT_ENT_EOF;
  } else {
    v = (d0[p.off]! | (d0[p.off + 1]! << 8) | (d0[p.off + 2]! << 16) | (d0[p.off + 3]! << 24)) & 0x0fffffff;
    if (v >= BAD_FAT32) v = FAT_ENT_EOF;
  }
  releaseAll(sb, bhs);
  return v;
}

/** fat_ent_write: store `value` in every FAT copy we maintain. Caller holds fat_lock. */
export async function fat_ent_write(sb: super_block, entry: number, value: number): Promise<void> {
  const sbi = MSDOS_SB(sb);
  for (const copy of sbi.fatCopies) {
    const p = entPlace(sbi, copy, entry);
    const bhs = await entBuffers(sb, p.blk, p.straddle);
    const d0 = bhs[0]!.b_data;
    if (sbi.fat_bits === 12) {
      const v = value & 0xfff;
      const hiBuf = p.straddle ? bhs[1]!.b_data : d0;
      const hiOff = p.straddle ? 0 : p.off + 1;
      if (entry & 1) {
        d0[p.off] = (d0[p.off]! & 0x0f) | ((v & 0x0f) << 4);
        hiBuf[hiOff] = v >> 4;
      } else {
        d0[p.off] = v & 0xff;
        hiBuf[hiOff] = (hiBuf[hiOff]! & 0xf0) | (v >> 8);
      }
    } else if (sbi.fat_bits === 16) {
      d0[p.off] = value & 0xff;
      d0[p.off + 1] = (value >> 8) & 0xff;
    } else {
      const v = ((value & 0x0fffffff) | ((d0[p.off + 3]! & 0xf0) << 24)) >>> 0;
      d0[p.off] = v & 0xff;
      d0[p.off + 1] = (v >>> 8) & 0xff;
      d0[p.off + 2] = (v >>> 16) & 0xff;
      d0[p.off + 3] = v >>> 24;
    }
    for (const bh of bhs) sbi.bops.markDirty(bh, null);
    releaseAll(sb, bhs);
  }
}

/**
 * fat_alloc_clusters: take `nr` free clusters, chained together and ended with EOF, and
 * return them in chain order. All or nothing: ENOSPC leaves the FAT as it was.
 */
export async function fat_alloc_clusters(sb: super_block, nr: number): Promise<number[]> {
  const sbi = MSDOS_SB(sb);
  await sbi.fat_lock.lock();
  try {
    if (sbi.free_clusters !== -1 && sbi.free_clus_valid && sbi.free_clusters < nr) throw err(ENOSPC);
    const got: number[] = [];
    let c = sbi.prev_free + 1;
    for (let scanned = 0; scanned < sbi.totalClusters && got.length < nr; scanned++, c++) {
      if (c >= sbi.max_cluster) c = FAT_START_ENT;
      if ((await fat_ent_read(sb, c)) === FAT_ENT_FREE) got.push(c);
    }
    if (got.length < nr) {
      // The scan went over every cluster, so what it found is the free count. (Linux has
      // taken the clusters it found by now and sets 0, then gives them back one by one
      // through fat_free_clusters; we never took them, so the count is got.length.)
      sbi.free_clusters = got.length;
      sbi.free_clus_valid = true;
      sbi.fsinfo_dirty = true;
      throw err(ENOSPC);
    }
    for (let i = 0; i < got.length; i++) {
      await fat_ent_write(sb, got[i]!, i + 1 < got.length ? got[i + 1]! : FAT_ENT_EOF);
    }
    sbi.prev_free = got[got.length - 1]!;
    if (sbi.free_clusters !== -1) sbi.free_clusters -= got.length;
    sbi.fsinfo_dirty = true;
    return got;
  } finally { sbi.fat_lock.unlock(); }
}

/**
 * fat_free_clusters: free the chain starting at `cluster`. A chain that runs into a free
 * or out-of-range entry is corruption: report it and stop there (what is freed stays freed).
 * `isDir`: the freed blocks held directory entries; forget their buffers.
 */
export async function fat_free_clusters(sb: super_block, cluster: number, isDir = false): Promise<void> {
  const sbi = MSDOS_SB(sb);
  await sbi.fat_lock.lock();
  try {
    let c = cluster;
    let n = 0;
    while (c !== FAT_ENT_EOF) {
      if (c < FAT_START_ENT || c >= sbi.max_cluster) {
        throw fat_fs_error(sb, `fat_free_clusters: invalid cluster chain (cluster ${c})`, EIO);
      }
      const next = await fat_ent_read(sb, c);
      if (next === FAT_ENT_FREE) {
        throw fat_fs_error(sb, `fat_free_clusters: deleting FAT entry beyond EOF`, EIO);
      }
      await fat_ent_write(sb, c, FAT_ENT_FREE);
      if (isDir) {
        const first = (c - FAT_START_ENT) * sbi.sec_per_clus + sbi.data_start;
        for (let b = 0; b < sbi.sec_per_clus; b++) sbi.bops.forget(first + b);
      }
      if (sbi.free_clusters !== -1) sbi.free_clusters++;
      if (++n > sbi.totalClusters) throw fat_fs_error(sb, 'fat_free_clusters: detected the cluster chain loop', EIO);
      c = next;
    }
    sbi.fsinfo_dirty = true;
  } finally { sbi.fat_lock.unlock(); }
}

/** Set the entry of `cluster` (end a truncated chain with EOF). */
export async function fat_ent_set_locked(sb: super_block, cluster: number, value: number): Promise<void> {
  const sbi = MSDOS_SB(sb);
  await sbi.fat_lock.with(() => fat_ent_write(sb, cluster, value));
}

/** fat_count_free_clusters: a scan of the whole FAT (statfs when the count is unknown). */
export async function fat_count_free_clusters(sb: super_block): Promise<number> {
  const sbi = MSDOS_SB(sb);
  if (sbi.free_clusters !== -1 && sbi.free_clus_valid) return sbi.free_clusters;
  await sbi.fat_lock.lock();
  try {
    let free = 0;
    for (let c = FAT_START_ENT; c < sbi.max_cluster; c++) if ((await fat_ent_read(sb, c)) === FAT_ENT_FREE) free++;
    sbi.free_clusters = free;
    sbi.free_clus_valid = true;
    sbi.fsinfo_dirty = true;
    return free;
  } finally { sbi.fat_lock.unlock(); }
}

/**
 * fat_chain_add: append the new clusters (already chained among themselves) to the file.
 * An empty file gets its start cluster; the inode is dirtied so the entry follows.
 */
export async function fat_chain_add(inode: msdos_inode_info, newClusters: number[]): Promise<void> {
  const sb = inode.i_sb;
  const first = newClusters[0]!;
  if (inode.i_start === 0) {
    inode.i_start = first;
    inode.i_logstart = first;
    fat_cache_inval_inode(inode);
    await mark_inode_dirty(inode);
  } else {
    const last = await fat_get_cluster(inode, Number.MAX_SAFE_INTEGER);
    await fat_ent_set_locked(sb, last.dclus, first);
  }
  inode.i_blocks += newClusters.length * (MSDOS_SB(sb).cluster_size / 512);
}

/** fat_add_cluster(s): allocate `nr` clusters and append them to the inode's chain. */
export async function fat_add_clusters(inode: msdos_inode_info, nr: number): Promise<number[]> {
  const got = await fat_alloc_clusters(inode.i_sb, nr);
  try {
    await fat_chain_add(inode, got);
  } catch (e) {
    await fat_free_clusters(inode.i_sb, got[0]!).catch(() => {});
    throw e;
  }
  return got;
}

/** Clusters allocated to an inode (i_blocks is kept in 512-byte units of whole clusters). */
export function fat_nr_clusters(inode: msdos_inode_info): number {
  return Math.round(inode.i_blocks / (MSDOS_SB(inode.i_sb).cluster_size / 512));
}

/* ---- FSInfo ---- */

/** fat_clusters_flush: write the free count and next-free hint into FSInfo (FAT32). */
export async function fat_clusters_flush(sb: super_block): Promise<void> {
  const sbi = MSDOS_SB(sb);
  if (sbi.fat_bits !== 32 || !sbi.fsinfo_dirty || !sbi.fsinfo_sector) return;
  const bh = await sbi.bops.bread(sbi.fsinfo_sector);
  const fsi = fat_fsinfo_decode(bh.b_data);
  if (!fat_is_fsinfo(fsi)) {
    fat_msg(sb, 'error', `Invalid FSINFO signature: 0x${fsi.signature1.toString(16).padStart(8, '0')}, ` +
      `0x${fsi.signature2.toString(16).padStart(8, '0')} (sector = ${sbi.fsinfo_sector})`);
    sbi.bops.brelse(bh);
    return;
  }
  if (sbi.free_clusters !== -1) fsi.free_clusters = sbi.free_clusters;
  if (sbi.prev_free !== -1) fsi.next_cluster = sbi.prev_free;
  fat_fsinfo_encode(fsi, bh.b_data);
  sbi.bops.markDirty(bh, null);
  sbi.bops.brelse(bh);
  sbi.fsinfo_dirty = false;
}

