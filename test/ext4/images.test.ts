/*
 * The codecs against images mke2fs makes: the superblock must decode to what dumpe2fs -h
 * prints, and every checksum e2fsprogs wrote must verify (and fail after a flipped bit).
 */
import t from 'tap';
import { join } from 'node:path';
import {
  EXT4_EXTENTS_FL, EXT4_FEATURE_INCOMPAT_CSUM_SEED, EXT4_INLINE_DATA_FL, EXT4_ROOT_INO, cstring,
  ext4_block_bitmap, ext4_blocks_count, ext4_check_dir_entry, ext4_dir_entry_decode,
  ext4_dir_tail_present, ext4_feature_names, ext4_first_ino, ext4_free_blocks_count,
  ext4_get_tstamp, ext4_group_desc_encode, ext4_inode_bitmap, ext4_inode_check_extra_isize,
  ext4_inode_decode, ext4_inode_encode, ext4_inode_get_time, ext4_inode_size, ext4_r_blocks_count,
  ext4_super_check, ext4_super_decode, ext4_super_encode, ext4_unknown_features, le32,
  uuidToString,
} from '../../lib/kernel/fs/ext4/layout.js';
import {
  EXT4_XATTR_INDEX_SYSTEM, EXT4_XATTR_MAGIC, EXT4_XATTR_SYSTEM_DATA, ext4_xattr_entries,
  ext4_xattr_ibody_offset,
} from '../../lib/kernel/fs/ext4/xattr.h.js';
import { ext4_ext_check, ext4_ext_space_root } from '../../lib/kernel/fs/ext4/ext4_extents.h.js';
import * as C from '../../lib/kernel/fs/ext4/csum.js';
import { Image, dumpe2fsH, rmrf, run, scratchDir } from './util.js';

const dir = scratchDir('images');
t.teardown(() => rmrf(dir));

interface Cfg { name: string; mkfs: string[]; size: string; after?: string[][] }
const configs: Cfg[] = [
  { name: 'ext4 4KiB blocks', mkfs: ['-t', 'ext4', '-b', '4096', '-L', 'vol4k'], size: '64M' },
  { name: 'ext4 1KiB blocks', mkfs: ['-t', 'ext4', '-b', '1024'], size: '32M' },
  { name: 'ext2', mkfs: ['-t', 'ext2'], size: '16M' },
  { name: 'ext3', mkfs: ['-t', 'ext3'], size: '16M' },
  { name: 'ext4 ^64bit,^extent', mkfs: ['-t', 'ext4', '-O', '^64bit,^extent'], size: '16M' },
  { name: 'ext4 -I 128', mkfs: ['-t', 'ext4', '-I', '128'], size: '16M' },
  { name: 'ext4 inline_data', mkfs: ['-t', 'ext4', '-O', 'inline_data', '-b', '4096'], size: '16M' },
  { name: 'ext4 uninit_bg (crc16), 64-bit descriptors', mkfs: ['-t', 'ext4', '-O', '^metadata_csum,uninit_bg'], size: '16M' },
  { name: 'ext4 uninit_bg (crc16), 32-bit descriptors', mkfs: ['-t', 'ext4', '-O', '^metadata_csum,^64bit,uninit_bg'], size: '16M' },
  { name: 'ext4 metadata_csum_seed, uuid changed afterwards', mkfs: ['-t', 'ext4', '-O', 'metadata_csum_seed'], size: '16M',
    after: [['tune2fs', '-U', 'random']] },
];

const hex = (n: number): string => '0x' + n.toString(16).padStart(8, '0');

for (const cfg of configs) {
  t.test(cfg.name, async (t) => {
    const img = join(dir, cfg.name.replace(/[^a-z0-9]+/gi, '_') + '.img');
    run('mke2fs', ['-q', '-F', ...cfg.mkfs, img, cfg.size]);
    for (const [cmd, ...args] of cfg.after ?? []) run(cmd, [...args, img]);
    const d = dumpe2fsH(img);
    const im = new Image(img);
    const sb = im.sb;

    t.equal(ext4_super_check(sb), null, 'ext4_super_check passes');
    const unk = ext4_unknown_features(sb);
    t.same([unk.incompat, unk.ro_compat], [0, 0], 'Linux ext4 knows every incompat/ro_compat feature');

    /* What dumpe2fs -h prints */
    t.equal(hex(sb.s_magic).replace(/^0x0000/, '0x'), d.get('Filesystem magic number')?.toLowerCase(), 'magic');
    t.equal(uuidToString(sb.s_uuid), d.get('Filesystem UUID'), 'uuid');
    t.equal(cstring(sb.s_volume_name) || '<none>', d.get('Filesystem volume name'), 'volume name');
    t.equal(ext4_feature_names(sb).join(' '), d.get('Filesystem features'), 'features list');
    t.equal(String(sb.s_inodes_count), d.get('Inode count'), 'inode count');
    t.equal(String(ext4_blocks_count(sb)), d.get('Block count'), 'block count');
    t.equal(String(ext4_r_blocks_count(sb)), d.get('Reserved block count'), 'reserved block count');
    t.equal(String(ext4_free_blocks_count(sb)), d.get('Free blocks'), 'free blocks');
    t.equal(String(sb.s_free_inodes_count), d.get('Free inodes'), 'free inodes');
    t.equal(String(sb.s_first_data_block), d.get('First block'), 'first block');
    t.equal(String(im.bs), d.get('Block size'), 'block size');
    t.equal(String(sb.s_blocks_per_group), d.get('Blocks per group'), 'blocks per group');
    t.equal(String(sb.s_inodes_per_group), d.get('Inodes per group'), 'inodes per group');
    t.equal(String(ext4_inode_size(sb)), d.get('Inode size'), 'inode size');
    t.equal(String(ext4_first_ino(sb)), d.get('First inode'), 'first inode');
    t.equal(String(sb.s_reserved_gdt_blocks), d.get('Reserved GDT blocks') ?? '0', 'reserved gdt blocks');
    t.equal(uuidToString(new Uint8Array(new Uint32Array(sb.s_hash_seed).buffer)), d.get('Directory Hash Seed'), 'hash seed');
    t.equal(['legacy', 'half_md4', 'tea'][sb.s_def_hash_version], d.get('Default directory hash'), 'default hash');
    if (d.has('Group descriptor size')) t.equal(String(sb.s_desc_size), d.get('Group descriptor size'), 'descriptor size');
    if (d.has('Flex block group size')) t.equal(String(2 ** sb.s_log_groups_per_flex), d.get('Flex block group size'), 'flex bg size');
    if (d.has('Journal inode')) t.equal(String(sb.s_journal_inum), d.get('Journal inode'), 'journal inode');
    if (d.has('Required extra isize')) t.equal(String(sb.s_min_extra_isize), d.get('Required extra isize'), 'min extra isize');
    if (d.has('Checksum seed')) t.equal(hex(sb.s_checksum_seed), d.get('Checksum seed'), 'checksum seed');
    if (d.has('Checksum')) t.equal(hex(sb.s_checksum), d.get('Checksum'), 'superblock checksum field');
    t.equal(String(ext4_get_tstamp(sb.s_mkfs_time, sb.s_mkfs_time_hi) > 1.6e9), 'true', 'mkfs time is recent');

    const raw = im.data.slice(1024, 2048);
    const enc = raw.slice();
    ext4_super_encode(ext4_super_decode(raw), enc);
    t.same(enc, raw, 'superblock re-encodes to the same bytes');

    const ctx = C.ext4_csum_ctx(sb);
    const csum = ctx.metadata_csum;
    if (sb.s_feature_incompat & EXT4_FEATURE_INCOMPAT_CSUM_SEED)
      t.not(ctx.csum_seed, C.ext4_csum_seed({ ...sb, s_feature_incompat: 0 }), 'seed no longer follows the uuid');

    /* superblock checksum */
    t.ok(C.ext4_superblock_csum_verify(im.data, 1024), 'superblock checksum verifies');
    if (csum) {
      const f = im.data.slice(0, 2048); f[1024 + 0x10] ^= 1;
      t.notOk(C.ext4_superblock_csum_verify(f, 1024), 'flipped bit: superblock checksum fails');
      C.ext4_superblock_csum_set(f, 1024);
      t.ok(C.ext4_superblock_csum_verify(f, 1024), 'set makes it verify again');
    }

    /* group descriptors */
    let bad = 0;
    for (let g = 0; g < im.groups; g++) {
      if (!C.ext4_group_desc_csum_verify(ctx, g, im.data, im.gdOffset(g))) bad++;
      const gd = im.gd(g);
      const b = new Uint8Array(im.descSize);
      ext4_group_desc_encode(gd, b, 0, im.descSize);
      if (!b.every((x, i) => x === im.data[im.gdOffset(g) + i])) bad += 1000;
    }
    t.equal(bad, 0, `all ${im.groups} group descriptor checksums verify and re-encode`);
    if (csum || ctx.gdt_csum) {
      t.not(C.ext4_group_desc_csum(ctx, 0, im.data, im.gdOffset(0)), 0, 'descriptor checksum is live');
      const f = im.data.slice(0, im.gdOffset(im.groups));
      f[im.gdOffset(im.groups - 1) + 2] ^= 0x10;
      t.notOk(C.ext4_group_desc_csum_verify(ctx, im.groups - 1, f, im.gdOffset(im.groups - 1)), 'flipped bit: descriptor checksum fails');
      t.notOk(C.ext4_group_desc_csum_verify(ctx, 1, im.data, im.gdOffset(0)), 'group number is part of the checksum');
    }

    /* bitmaps of group 0 */
    const gd0 = im.gd(0);
    if (csum) {
      t.ok(C.ext4_block_bitmap_csum_verify(ctx, im.data, im.gdOffset(0), im.block(ext4_block_bitmap(gd0))), 'block bitmap checksum');
      t.ok(C.ext4_inode_bitmap_csum_verify(ctx, im.data, im.gdOffset(0), im.block(ext4_inode_bitmap(gd0))), 'inode bitmap checksum');
      const bm = im.block(ext4_inode_bitmap(gd0)).slice(); bm[0] ^= 0x80;
      t.notOk(C.ext4_inode_bitmap_csum_verify(ctx, im.data, im.gdOffset(0), bm), 'flipped bit: inode bitmap fails');
    }

    /* root inode */
    const ioff = im.inodeOffset(EXT4_ROOT_INO);
    const root = im.inode(EXT4_ROOT_INO);
    t.equal(root.i_mode & 0o170000, 0o040000, 'root is a directory');
    t.equal(ext4_inode_check_extra_isize(root, ctx.inode_size), null, 'extra_isize sane');
    t.ok(C.ext4_inode_csum_verify(ctx, EXT4_ROOT_INO, im.data, ioff), 'root inode checksum verifies');
    const ib = im.data.slice(ioff, ioff + ctx.inode_size);
    const re = ib.slice();
    ext4_inode_encode(ext4_inode_decode(ib, 0, ctx.inode_size), re, 0, ctx.inode_size);
    t.same(re, ib, 'root inode re-encodes to the same bytes');
    if (csum) {
      const f = ib.slice(); f[0x10] ^= 4;
      t.notOk(C.ext4_inode_csum_verify(ctx, EXT4_ROOT_INO, f, 0), 'flipped bit: inode checksum fails');
      t.notOk(C.ext4_inode_csum_verify(ctx, 3, ib, 0), 'inode number is part of the checksum');
      C.ext4_inode_csum_set(ctx, EXT4_ROOT_INO, f, 0);
      t.ok(C.ext4_inode_csum_verify(ctx, EXT4_ROOT_INO, f, 0), 'set makes it verify again');
    }
    const ctime = ext4_inode_get_time(root, 'ctime');
    t.ok(Math.abs(ctime.sec - ext4_get_tstamp(sb.s_mkfs_time, sb.s_mkfs_time_hi)) < 5, 'root ctime near mkfs time');

    const iseed = C.ext4_inode_csum_seed(ctx, EXT4_ROOT_INO, root.i_generation);
    const names: string[] = [];
    if (root.i_flags & EXT4_INLINE_DATA_FL) {
      /* inline directory: parent inode in the first 4 bytes, entries after; system.data in ibody */
      t.equal(le32(root.i_block, 0), EXT4_ROOT_INO, 'inline dir starts with the parent inode');
      const base = ioff + ext4_xattr_ibody_offset(root.i_extra_isize);
      t.equal(le32(im.data, base), EXT4_XATTR_MAGIC, 'ibody xattr magic');
      const ents = ext4_xattr_entries(im.data, base + 4, ioff + ctx.inode_size, base + 4, ioff + ctx.inode_size);
      t.ok(Array.isArray(ents), 'ibody entries parse');
      if (Array.isArray(ents)) {
        const e = ents.find((x) => x.e_name_index === EXT4_XATTR_INDEX_SYSTEM);
        t.equal(e && new TextDecoder().decode(e.e_name), EXT4_XATTR_SYSTEM_DATA, 'system.data present');
      }
      for (let o = 4; o < 60;) {
        const de = ext4_dir_entry_decode(root.i_block, o, 60);
        if (de.rec_len < 8) break;
        if (de.inode) names.push(new TextDecoder().decode(de.name));
        o += de.rec_len;
      }
    } else {
      if (root.i_flags & EXT4_EXTENTS_FL) t.equal(ext4_ext_check(root.i_block, 0, 0, ext4_ext_space_root()), null, 'root extent header');
      const blocks = im.blocks(root);
      t.ok(blocks.length >= 1, 'root has a block');
      const blk = im.block(blocks[0]);
      t.ok(C.ext4_dir_block_csum_verify(ctx, iseed, blk), 'root dir block checksum verifies');
      if (csum) {
        const f = blk.slice(); f[9] ^= 1;
        t.notOk(C.ext4_dir_block_csum_verify(ctx, iseed, f), 'flipped bit: dir block checksum fails');
        t.ok(ext4_dir_tail_present(blk, im.bs), 'dir tail present');
      }
      for (let o = 0; o < im.bs;) {
        t.equal(ext4_check_dir_entry(blk, o, im.bs, im.bs, sb.s_inodes_count), null, `dirent at ${o} valid`);
        const de = ext4_dir_entry_decode(blk, o, im.bs);
        if (de.inode) names.push(new TextDecoder().decode(de.name));
        o += de.rec_len;
      }
    }
    t.ok(names.includes('lost+found'), 'root lists lost+found');

    /* lost+found: several blocks, each checksummed */
    if (!(root.i_flags & EXT4_INLINE_DATA_FL)) {
      const lfIno = 11;
      const lf = im.inode(lfIno);
      const lseed = C.ext4_inode_csum_seed(ctx, lfIno, lf.i_generation);
      const lb = im.blocks(lf);
      t.ok(lb.every((b) => C.ext4_dir_block_csum_verify(ctx, lseed, im.block(b))), `all ${lb.length} lost+found blocks verify`);
      t.ok(C.ext4_inode_csum_verify(ctx, lfIno, im.data, im.inodeOffset(lfIno)), 'lost+found inode checksum');
    }
  });
}
