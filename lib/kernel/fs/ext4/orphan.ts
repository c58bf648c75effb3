/*
 * Orphans (fs/ext4/orphan.c): inodes unlinked or truncated while open when the system
 * went down, recorded in the superblock's s_last_orphan chain (linked through i_dtime) and
 * in the orphan file (COMPAT_ORPHAN_FILE: blocks of inode numbers with a checksummed
 * tail). ext4_orphan_cleanup deletes or truncates them at a read-write mount. The read-only
 * driver finds them and reports what would be done, like Linux's "skipping orphan cleanup"
 * on a read-only device; processing them comes with the write side.
 */
import type { super_block } from '../../include/fs.js';
import {
  EXT4_FEATURE_COMPAT_ORPHAN_FILE, EXT4_ORPHAN_BLOCK_MAGIC, ext4_inode_decode,
  ext4_inodes_per_orphan_block, ext4_orphan_block_tail_decode, le32,
} from './layout.js';
import { ext4_orphan_file_block_csum_verify } from './csum.js';
import { EXT4_SB } from './ext4.js';
import { ext4_error, ext4_msg } from './errors.js';
import {
  ext4_iget, ext4_iput, ext4_map_blocks, ext4_read_data, ext4_read_raw_inode, EXT4_IGET_SPECIAL,
} from './inode.js';

export interface OrphanScan { chain: number[]; file: number[] }

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

/**
 * ext4_orphan_cleanup for a mount that cannot write: find the orphans and say what would
 * be done. Never fails the mount (a broken list is reported through ext4_error).
 */
export async function ext4_orphan_scan(sb: super_block, canWrite: boolean): Promise<OrphanScan> {
  const res: OrphanScan = { chain: [], file: [] };
  try { res.chain = await orphan_chain(sb); } catch { /* reported */ }
  try { res.file = await orphan_file(sb); } catch { /* reported */ }
  const all = [...res.chain, ...res.file];
  EXT4_SB(sb).s_orphans = all;
  if (all.length) {
    ext4_msg(sb, 'KERN_INFO', canWrite
      ? `${all.length} orphan inode(s) found (${all.join(', ')}): orphan processing needs the write side (not built yet); left for e2fsck or a later mount`
      : `write access unavailable, skipping orphan cleanup (${all.length} orphan inode(s): ${all.join(', ')})`);
  }
  return res;
}
