/*
 * Orphans (fs/ext4/orphan.c): inodes whose last link went while they were open, kept on
 * the superblock's s_last_orphan chain (linked through i_dtime, newest first) from the
 * transaction that dropped the link to the one that deletes them, so that a crash in
 * between leaves nothing unattached: ext4_orphan_cleanup deletes them at the next
 * read-write mount. New orphans always go on the chain (Linux's fallback when the orphan
 * file is full); entries found in an orphan file (COMPAT_ORPHAN_FILE: blocks of inode
 * numbers with a checksummed tail) are reported and left for e2fsck. A read-only mount
 * only reports what it would do, like Linux's "skipping orphan cleanup".
 */
import type { super_block } from '../../include/fs.js';
import { SB_RDONLY } from '../../include/fs.js';
import { iput } from '../inode.js';
import {
  EXT4_FEATURE_COMPAT_ORPHAN_FILE, EXT4_ORPHAN_BLOCK_MAGIC, ext4_inode_decode,
  ext4_inodes_per_orphan_block, ext4_orphan_block_tail_decode, le32,
} from './layout.js';
import { ext4_orphan_file_block_csum_verify } from './csum.js';
import { EXT4_I, EXT4_SB, type ext4_inode_info } from './ext4.js';
import { ext4_update_super } from './super.js';
import { brelse, sb_bread } from '../buffer.js';
import {
  ext4_handle_dirty_metadata, ext4_journal_get_write_access, ext4_journal_start_sb, ext4_journal_stop, EXT4_HT_INODE,
  type handle_t,
} from './ext4_jbd2.js';
import { ext4_error, ext4_msg } from './errors.js';
import {
  ext4_iget, ext4_iput, ext4_map_blocks, ext4_mark_inode_dirty, ext4_read_data, ext4_read_raw_inode, ext4_truncate,
  EXT4_IGET_SPECIAL,
} from './inode.js';

export interface OrphanScan { chain: number[]; file: number[] }

/** sbi->s_mount_state bit while orphans are being cleaned up (EXT4_ORPHAN_FS). */
const EXT4_ORPHAN_FS = 0x0004;

/** Walk the s_last_orphan chain (bounded: a cycle is corruption). */
async function orphan_chain(sb: super_block): Promise<number[]> {
  const sbi = EXT4_SB(sb);
  const out: number[] = [];
  const seen = new Set<number>();
  let ino = sbi.s_es.s_last_orphan;
  while (ino) {
    if (ino < 1 || ino > sbi.s_es.s_inodes_count || seen.has(ino)) {
      ext4_error(sb, 'ext4_orphan_cleanup', `bad orphan inode ${ino} in the orphan list`);
      break;
    }
    seen.add(ino);
    out.push(ino);
    const { raw } = await ext4_read_raw_inode(sb, ino, 'ext4_orphan_get');
    ino = ext4_inode_decode(raw, 0, sbi.s_inode_size).i_dtime;
  }
  return out;
}

/** The inode numbers recorded in the orphan file. */
async function orphan_file(sb: super_block): Promise<number[]> {
  const sbi = EXT4_SB(sb);
  if (!sbi.has_compat(EXT4_FEATURE_COMPAT_ORPHAN_FILE) || !sbi.s_es.s_orphan_file_inum) return [];
  const inode = await ext4_iget(sb, sbi.s_es.s_orphan_file_inum, EXT4_IGET_SPECIAL);
  const out: number[] = [];
  try {
    const bs = sbi.s_blocksize;
    const n = Math.floor(inode.i_size / bs);
    const per = ext4_inodes_per_orphan_block(bs);
    const buf = new Uint8Array(bs);
    for (let b = 0; b < n; b++) {
      await ext4_read_data(inode, b * bs, buf);
      const tail = ext4_orphan_block_tail_decode(buf, bs);
      if (tail.ob_magic !== EXT4_ORPHAN_BLOCK_MAGIC)
        throw ext4_error(sb, 'ext4_init_orphan_info', `orphan file block ${b}: bad magic`, { ino: inode.i_ino });
      const m = (await ext4_map_blocks(inode, b, 1)).pblk;
      if (sbi.s_csum?.metadata_csum && !ext4_orphan_file_block_csum_verify(sbi.s_csum, inode.i_csum_seed, m, buf))
        throw ext4_error(sb, 'ext4_init_orphan_info', `orphan file block ${b}: bad checksum`, { ino: inode.i_ino, csum: true });
      for (let i = 0; i < per; i++) { const v = le32(buf, 4 * i); if (v) out.push(v); }
    }
  } finally { await ext4_iput(inode); }
  return out;
}

/** The superblock changed under `handle` (s_last_orphan): its buffer joins the handle. */
async function ext4_handle_dirty_super(handle: handle_t, sb: super_block): Promise<void> {
  const sbi = EXT4_SB(sb);
  const bh = await sb_bread(sb, sbi.s_sb_block);
  try {
    await ext4_journal_get_write_access(handle, sb, bh);
    ext4_update_super(sb);
    bh.b_data.set(sbi.s_sbraw, sbi.s_sb_offset);
    await ext4_handle_dirty_metadata(handle, null, bh);
  } finally { brelse(bh); }
}

/**
 * ext4_orphan_add: `inode` lost its last link (or is being truncated) under `handle`: it
 * goes to the head of the chain — its i_dtime names the old head, s_last_orphan names it.
 */
export async function ext4_orphan_add(handle: handle_t, inode: ext4_inode_info): Promise<void> {
  const sb = inode.i_sb;
  const sbi = EXT4_SB(sb);
  if (sbi.s_orphan_list.includes(inode)) return;
  inode.i_dtime = sbi.s_es.s_last_orphan;
  sbi.s_es.s_last_orphan = inode.i_ino;
  sbi.s_orphan_list.unshift(inode);
  await ext4_handle_dirty_super(handle, sb);
  await ext4_mark_inode_dirty(handle, inode);
}

/**
 * ext4_orphan_del: take `inode` off the chain (it is being deleted, or it is linked again):
 * its predecessor — the superblock or the inode before it — names its successor.
 */
export async function ext4_orphan_del(handle: handle_t | null, inode: ext4_inode_info): Promise<void> {
  const sb = inode.i_sb;
  const sbi = EXT4_SB(sb);
  const i = sbi.s_orphan_list.indexOf(inode);
  if (i < 0) return;
  sbi.s_orphan_list.splice(i, 1);
  const next = inode.i_dtime;
  inode.i_dtime = 0;
  if (!handle) return;   /* a read-only filesystem: the chain stays for the next rw mount */
  if (i === 0) {
    sbi.s_es.s_last_orphan = next;
    await ext4_handle_dirty_super(handle, sb);
  } else {
    const prev = sbi.s_orphan_list[i - 1]!;
    prev.i_dtime = next;
    await ext4_mark_inode_dirty(handle, prev);
  }
  await ext4_mark_inode_dirty(handle, inode);
}

/**
 * ext4_orphan_scan + ext4_orphan_cleanup: find the orphans; on a mount that can write,
 * delete those with no links (iput evicts them: blocks, xattrs and the inode freed, each
 * taken off the chain) and cut the others back to their size. A broken chain is reported
 * through ext4_error and never fails the mount.
 */
export async function ext4_orphan_scan(sb: super_block, canWrite: boolean): Promise<OrphanScan> {
  const res: OrphanScan = { chain: [], file: [] };
  try { res.chain = await orphan_chain(sb); } catch { /* reported */ }
  try { res.file = await orphan_file(sb); } catch { /* reported */ }
  const all = [...res.chain, ...res.file];
  EXT4_SB(sb).s_orphans = all;
  if (!all.length) return res;
  if (!canWrite) {
    ext4_msg(sb, 'KERN_INFO', `write access unavailable, skipping orphan cleanup (${all.length} orphan inode(s): ${all.join(', ')})`);
    return res;
  }
  if (res.file.length) {
    ext4_msg(sb, 'KERN_INFO', `${res.file.length} orphan inode(s) in the orphan file (${res.file.join(', ')}): left for e2fsck`);
  }
  return res;
}

/** ext4_orphan_cleanup for a read-write mount, once the filesystem can take handles. */
export async function ext4_orphan_cleanup(sb: super_block, chain: number[]): Promise<void> {
  const sbi = EXT4_SB(sb);
  if (!chain.length || sb.s_flags & SB_RDONLY || sbi.s_readonly_driver) return;
  // The chain as it is on disk, head first: each inode's i_dtime names the next. Inodes
  // with no links can be read only now (EXT4_ORPHAN_FS).
  const inodes: ext4_inode_info[] = [];
  sbi.s_mount_state |= EXT4_ORPHAN_FS;
  try {
    for (const ino of chain) {
      try {
        inodes.push(EXT4_I(await ext4_iget(sb, ino)));
      } catch (e) {
        ext4_msg(sb, 'KERN_ERR', `ext4_orphan_cleanup: cannot read orphan inode ${ino}: ${(e as Error).message}; the rest of the list is left for e2fsck`);
        break;
      }
    }
  } finally { sbi.s_mount_state &= ~EXT4_ORPHAN_FS; }
  sbi.s_orphan_list = [...inodes];
  if (inodes.length < chain.length) {
    // Cut the chain where it broke: the last good inode ends it.
    const last = inodes[inodes.length - 1];
    const handle = ext4_journal_start_sb(sb, EXT4_HT_INODE, 4);
    try {
      if (last) { last.i_dtime = 0; await ext4_mark_inode_dirty(handle, last); }
      else { sbi.s_es.s_last_orphan = 0; await ext4_handle_dirty_super(handle, sb); }
    } finally { await ext4_journal_stop(handle); }
  }
  let deleted = 0, truncated = 0;
  for (const inode of inodes) {
    if (inode.i_nlink === 0) {
      deleted++;
      await iput(inode);   /* evict deletes it and takes it off the chain */
      continue;
    }
    truncated++;
    try { await ext4_truncate(inode); } catch (e) {
      ext4_msg(sb, 'KERN_ERR', `ext4_orphan_cleanup: truncate of inode ${inode.i_ino} failed: ${(e as Error).message}`);
    }
    const handle = ext4_journal_start_sb(sb, EXT4_HT_INODE, 4);
    try { await ext4_orphan_del(handle, inode); } finally { await ext4_journal_stop(handle); }
    await iput(inode);
  }
  if (deleted) ext4_msg(sb, 'KERN_INFO', `${deleted} orphan inode${deleted === 1 ? '' : 's'} deleted`);
  if (truncated) ext4_msg(sb, 'KERN_INFO', `${truncated} truncate${truncated === 1 ? '' : 's'} cleaned up`);
}
