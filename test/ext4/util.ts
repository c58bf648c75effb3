/* Helpers for the ext4 codec tests: make images with e2fsprogs, read them with the codecs. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EXT4_EXTENTS_FL, type ext4_dir_entry_2, type ext4_group_desc, type ext4_inode, type ext4_super_block,
  ext4_block_size, ext4_desc_size, ext4_dir_entry_decode, ext4_group_desc_decode,
  ext4_groups_count, ext4_i_block_words, ext4_inode_decode, ext4_inode_size, ext4_inode_table,
  ext4_super_decode, le32,
} from '../../lib/kernel/fs/ext4/layout.js';
import {
  ext4_ext_header_decode, ext4_extent_decode, ext4_extent_idx_decode,
} from '../../lib/kernel/fs/ext4/ext4_extents.h.js';

export function scratchDir(tag: string): string {
  const base = join(tmpdir(), 'ext4codec');
  mkdirSync(base, { recursive: true });
  return mkdtempSync(join(base, `${tag}-`));
}
export const rmrf = (p: string): void => rmSync(p, { recursive: true, force: true });

export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** `dumpe2fs -h` as key → value ("Block count" → "65536"). */
export function dumpe2fsH(img: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of run('dumpe2fs', ['-h', img]).split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) m.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return m;
}

export class Image {
  readonly data: Uint8Array;
  readonly sb: ext4_super_block;
  readonly bs: number;
  constructor(path: string) {
    this.data = new Uint8Array(readFileSync(path));
    this.sb = ext4_super_decode(this.data, 1024);
    this.bs = ext4_block_size(this.sb);
  }
  block(n: number): Uint8Array { return this.data.subarray(n * this.bs, (n + 1) * this.bs); }
  get descSize(): number { return ext4_desc_size(this.sb); }
  get groups(): number { return ext4_groups_count(this.sb); }
  /** Byte offset of group g's descriptor (no meta_bg in these tests). */
  gdOffset(g: number): number { return (this.sb.s_first_data_block + 1) * this.bs + g * this.descSize; }
  gd(g: number): ext4_group_desc { return ext4_group_desc_decode(this.data, this.gdOffset(g), this.descSize); }
  inodeOffset(ino: number): number {
    const g = Math.floor((ino - 1) / this.sb.s_inodes_per_group);
    const idx = (ino - 1) % this.sb.s_inodes_per_group;
    return ext4_inode_table(this.gd(g)) * this.bs + idx * ext4_inode_size(this.sb);
  }
  inode(ino: number): ext4_inode { return ext4_inode_decode(this.data, this.inodeOffset(ino), ext4_inode_size(this.sb)); }
  /** Physical block of each logical block of an inode, through extents or the block map. */
  blocks(inode: ext4_inode): number[] {
    const out: number[] = [];
    if (inode.i_flags & EXT4_EXTENTS_FL) {
      const walk = (buf: Uint8Array, off: number): void => {
        const h = ext4_ext_header_decode(buf, off);
        for (let i = 0; i < h.eh_entries; i++) {
          if (h.eh_depth === 0) {
            const e = ext4_extent_decode(buf, off, i);
            for (let k = 0; k < e.len; k++) out[e.ee_block + k] = e.start + k;
          } else walk(this.block(ext4_extent_idx_decode(buf, off, i).leaf), 0);
        }
      };
      walk(inode.i_block, 0);
      return out;
    }
    const w = ext4_i_block_words(inode);
    const per = this.bs / 4;
    const ind = (blk: number, level: number): void => {
      if (blk === 0) return;
      if (level === 0) { out.push(blk); return; }
      const b = this.block(blk);
      for (let i = 0; i < per; i++) ind(le32(b, 4 * i), level - 1);
    };
    for (let i = 0; i < 12; i++) if (w[i]) out.push(w[i]);
    ind(w[12], 1); ind(w[13], 2); ind(w[14], 3);
    return out;
  }
  /** Entries of a linear directory block. */
  dirents(blk: Uint8Array): ext4_dir_entry_2[] {
    const out: ext4_dir_entry_2[] = [];
    for (let o = 0; o < this.bs;) {
      const de = ext4_dir_entry_decode(blk, o, this.bs);
      if (de.rec_len < 12) break;
      out.push(de);
      o += de.rec_len;
    }
    return out;
  }
}
