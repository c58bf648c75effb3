/*
 * The in-memory journal object (fs/jbd2/journal.c: journal_t, jbd2_journal_init_inode,
 * journal_get_superblock / load_superblock). For now it knows how to find and validate the
 * journal and how to map journal blocks to device blocks; recovery.ts replays it. The
 * write side (transactions, commit, checkpoint) adds to this object later.
 * Pure kernel code: the filesystem hands in block access (JournalDev).
 */
import { err } from '../../include/errno.js';
import { EFSBADCRC, EFSCORRUPTED, EINVAL } from '../../include/uapi.js';
import {
  JBD2_MIN_FC_BLOCKS, jbd2_has_feature_fast_commit, jbd2_journal_has_csum_v2or3, jbd2_superblock_check,
  jbd2_superblock_decode, type JournalSuperblock,
} from './layout.js';
import { jbd2_csum_seed, jbd2_superblock_csum_verify } from './csum.js';

/** How the journal reaches its blocks: logical journal block → device block, and I/O. */
export interface JournalDev {
  /** Journal block size (= filesystem block size for an internal journal). */
  readonly blockSize: number;
  /** Size of the journal in blocks (i_size of the journal inode). */
  readonly nrBlocks: number;
  /** bmap: device block of journal block `lblk` (0 if unmapped). */
  bmap(lblk: number): Promise<number>;
  /** Read a device block (the log lives on the filesystem's device). */
  bread(pblk: number): Promise<Uint8Array>;
}

export const JBD2_DEFAULT_FAST_COMMIT_BLOCKS = 256;

/** journal_t (read-side fields). */
export class Journal {
  j_sb!: JournalSuperblock;
  j_sbraw!: Uint8Array;
  j_blocksize = 0;
  /** The log area is [j_first, j_last); fast-commit blocks follow up to j_fc_last. */
  j_first = 0;
  j_last = 0;
  j_fc_first = 0;
  j_fc_last = 0;
  j_maxlen = 0;
  j_tail_sequence = 0;
  j_tail = 0;
  j_csum_seed = 0;
  /** Next transaction id after recovery. */
  j_transaction_sequence = 0;
  j_failed_commit = 0;
  j_head = 0;
  private bmapCache = new Map<number, number>();
  constructor(public readonly dev: JournalDev, public readonly devName: string) {}

  /** jbd2_journal_bmap. */
  async bmap(lblk: number): Promise<number> {
    const c = this.bmapCache.get(lblk);
    if (c !== undefined) return c;
    const p = await this.dev.bmap(lblk);
    if (!p) throw err(EFSCORRUPTED, `JBD2: bad block at offset ${lblk}`);
    this.bmapCache.set(lblk, p);
    return p;
  }
  /** jread: journal block `lblk`. */
  async jread(lblk: number): Promise<Uint8Array> {
    return this.dev.bread(await this.bmap(lblk));
  }
}

/**
 * jbd2_journal_init_inode + journal_get_superblock + load_superblock: read block 0 of the
 * journal and check it as Linux does (magic, block size, length, first block, features,
 * checksum). Throws with Linux's message on failure.
 */
export async function jbd2_journal_init(dev: JournalDev, devName: string, print: (m: string) => void): Promise<Journal> {
  const j = new Journal(dev, devName);
  j.j_blocksize = dev.blockSize;
  const raw = (await j.jread(0)).slice(0, 1024);
  const sb = jbd2_superblock_decode(raw, 0);
  const why = jbd2_superblock_check(sb, dev.blockSize, dev.nrBlocks);
  if (why) {
    print(`JBD2: ${why}`);
    throw err(EINVAL, `JBD2: ${why}`);
  }
  if (jbd2_journal_has_csum_v2or3(sb) && !jbd2_superblock_csum_verify(sb, raw, 0)) {
    print('JBD2: journal checksum error');
    throw err(EFSBADCRC, 'JBD2: journal checksum error');
  }
  j.j_sb = sb;
  j.j_sbraw = raw;
  j.j_maxlen = sb.s_maxlen;
  j.j_first = sb.s_first;
  j.j_last = sb.s_maxlen;
  if (jbd2_has_feature_fast_commit(sb)) {
    const nfc = sb.s_num_fc_blks || JBD2_DEFAULT_FAST_COMMIT_BLOCKS;
    if (sb.s_maxlen - nfc >= 1024 && nfc >= JBD2_MIN_FC_BLOCKS / 256) {
      j.j_fc_last = sb.s_maxlen;
      j.j_last = sb.s_maxlen - nfc;
      j.j_fc_first = j.j_last + 1;
    }
  }
  j.j_tail_sequence = sb.s_sequence;
  j.j_tail = sb.s_start;
  j.j_transaction_sequence = sb.s_sequence;
  if (jbd2_journal_has_csum_v2or3(sb)) j.j_csum_seed = jbd2_csum_seed(sb);
  return j;
}
