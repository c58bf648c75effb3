import t from 'tap';
import {
  ACL_GROUP, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER, ACL_UNDEFINED_ID, ACL_USER, ACL_USER_OBJ,
  type posix_acl_entry, ext4_acl_from_disk, ext4_acl_to_disk, posix_acl_from_xattr,
  posix_acl_to_xattr,
} from '../../lib/kernel/fs/ext4/acl.h.js';
import {
  DX_HASH_HALF_MD4, DX_NODE_COUNT_OFFSET, DX_ROOT_COUNT_OFFSET, EXT4_FEATURE_COMPAT_HAS_JOURNAL,
  EXT4_FEATURE_INCOMPAT_64BIT, EXT4_FEATURE_INCOMPAT_EXTENTS, EXT4_FEATURE_RO_COMPAT_GDT_CSUM,
  EXT4_FT_REG_FILE, EXT4_HUGE_FILE_FL, EXT4_ORPHAN_BLOCK_MAGIC, EXT4_SB_OFF, dx_countlimit_decode,
  dx_countlimit_encode, dx_countlimit_offset, dx_entry_decode, dx_entry_encode, dx_node_check,
  dx_node_init, dx_node_limit, dx_root_check, dx_root_init, dx_root_limit, ext4_block_bitmap,
  ext4_blocks_count, ext4_blocks_count_set, ext4_check_dir_entry, ext4_decode_extra_time,
  ext4_dir_entry_decode, ext4_dir_entry_encode, ext4_dir_rec_len, ext4_dir_tail_init,
  ext4_dir_tail_present, ext4_encode_extra_time, ext4_feature_names, ext4_free_group_clusters,
  ext4_free_group_clusters_set, ext4_get_tstamp, ext4_group_desc_decode, ext4_group_desc_encode,
  ext4_inode_blocks, ext4_inode_blocks_set, ext4_inode_check_extra_isize, ext4_inode_decode,
  ext4_inode_encode, ext4_inode_file_acl, ext4_inode_file_acl_set, ext4_inode_get_time,
  ext4_inode_gid, ext4_inode_gid_set, ext4_inode_set_time, ext4_inode_uid, ext4_inode_uid_set,
  ext4_inodes_per_orphan_block, ext4_isize, ext4_isize_set, ext4_mmp_decode, ext4_mmp_encode,
  ext4_orphan_block_tail_decode, ext4_orphan_block_tail_encode, ext4_rec_len_from_disk,
  ext4_rec_len_to_disk, ext4_split_tstamp, ext4_super_decode, ext4_super_encode,
  ext4_unknown_features, le32, put_le16, put_le32,
} from '../../lib/kernel/fs/ext4/layout.js';
import {
  EXT4_EXT_MAGIC, type ext4_extent, ext4_ext_check, ext4_ext_header_decode, ext4_ext_header_encode,
  ext4_ext_space_block, ext4_extent_decode, ext4_extent_encode, ext4_extent_idx_decode,
  ext4_extent_idx_encode, ext4_extent_tail_offset,
} from '../../lib/kernel/fs/ext4/ext4_extents.h.js';
import {
  EXT4_XATTR_MAGIC, EXT4_XATTR_SIZE, type ext4_xattr_entry, ext4_xattr_block_hash,
  ext4_xattr_entries, ext4_xattr_entry_encode, ext4_xattr_full_name, ext4_xattr_hash_entry,
  ext4_xattr_header_decode, ext4_xattr_header_encode, ext4_xattr_split_name,
} from '../../lib/kernel/fs/ext4/xattr.h.js';

const rnd = (n: number, seed: number): Uint8Array => {
  const b = new Uint8Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) { x = (Math.imul(x, 1103515245) + 12345) >>> 0; b[i] = x >>> 16; }
  return b;
};

t.test('superblock: decode then encode reproduces every byte', async (t) => {
  const raw = rnd(1024, 1);
  /* u64 fields are numbers: keep their top bytes in the exact range */
  for (const o of [0x168, 0x178, 0x188, 0x1a0, 0x1d8]) raw[o + 7] = raw[o + 6] = 0;
  const sb = ext4_super_decode(raw);
  const out = new Uint8Array(1024);
  out.set(raw);
  out.fill(0, 0, 0x284); out.fill(0, 0x3fc);
  ext4_super_encode(sb, out);
  t.same(out, raw, 'all modelled fields written back, s_reserved untouched');
  t.equal(EXT4_SB_OFF.s_checksum, 0x3fc);
  t.equal(EXT4_SB_OFF.s_orphan_file_inum, 0x280);
  t.equal(EXT4_SB_OFF.s_checksum_seed, 0x270);
  t.equal(EXT4_SB_OFF.s_encoding, 0x27c);
  t.equal(EXT4_SB_OFF.s_log_groups_per_flex, 0x174);
  t.equal(sb.s_hash_seed.length, 4);
  t.equal(sb.s_jnl_blocks.length, 17);
});

t.test('superblock: 64-bit counts and times', async (t) => {
  const sb = ext4_super_decode(new Uint8Array(1024));
  sb.s_feature_incompat = EXT4_FEATURE_INCOMPAT_64BIT;
  ext4_blocks_count_set(sb, 0x1_2345_6789);
  t.equal(sb.s_blocks_count_lo, 0x23456789);
  t.equal(sb.s_blocks_count_hi, 1);
  t.equal(ext4_blocks_count(sb), 0x1_2345_6789);
  sb.s_feature_incompat = 0;
  t.equal(ext4_blocks_count(sb), 0x23456789, 'hi half ignored without 64bit');
  t.same(ext4_split_tstamp(2 ** 32 + 5), [5, 1]);
  t.equal(ext4_get_tstamp(5, 1), 2 ** 32 + 5);
});

t.test('feature names and unknown features', async (t) => {
  const sb = ext4_super_decode(new Uint8Array(1024));
  sb.s_feature_compat = EXT4_FEATURE_COMPAT_HAS_JOURNAL | 0x80000;
  sb.s_feature_incompat = EXT4_FEATURE_INCOMPAT_EXTENTS | 0x40000000;
  sb.s_feature_ro_compat = EXT4_FEATURE_RO_COMPAT_GDT_CSUM | 0x100000;
  t.same(ext4_feature_names(sb), ['has_journal', 'FEATURE_C19', 'extent', 'FEATURE_I30', 'uninit_bg', 'FEATURE_R20']);
  t.same(ext4_unknown_features(sb), { compat: 0x80000 | EXT4_FEATURE_COMPAT_HAS_JOURNAL, incompat: 0x40000000, ro_compat: 0x100000 });
  sb.s_feature_incompat = EXT4_FEATURE_INCOMPAT_EXTENTS;
  t.equal(ext4_unknown_features(sb, 'ext2').incompat, EXT4_FEATURE_INCOMPAT_EXTENTS, 'ext2 driver refuses extents');
  t.equal(ext4_unknown_features(sb, 'ext4').incompat, 0);
});

t.test('group descriptors: 32 and 64 bytes', async (t) => {
  const raw = rnd(64, 2);
  const g64 = ext4_group_desc_decode(raw, 0, 64);
  const g32 = ext4_group_desc_decode(raw, 0, 32);
  t.equal(g32.bg_block_bitmap_hi, 0, 'no hi half in 32-byte descriptors');
  t.equal(ext4_block_bitmap(g64), g64.bg_block_bitmap_hi * 2 ** 32 + g64.bg_block_bitmap_lo);
  const out = new Uint8Array(64);
  ext4_group_desc_encode(g64, out, 0, 64);
  t.same(out, raw);
  const out32 = new Uint8Array(64).fill(0xaa);
  ext4_group_desc_encode(g64, out32, 0, 32);
  t.same(out32.subarray(0, 32), raw.subarray(0, 32));
  t.ok(out32.subarray(32).every((b) => b === 0xaa), 'nothing written past a 32-byte descriptor');
  ext4_free_group_clusters_set(g64, 0x12345);
  t.equal(ext4_free_group_clusters(g64), 0x12345);
});

t.test('inode: 128 and large, extra_isize governs the large fields', async (t) => {
  const raw = rnd(256, 3);
  raw[0x80] = 32; raw[0x81] = 0;
  const ino = ext4_inode_decode(raw, 0, 256);
  t.equal(ino.i_extra_isize, 32);
  const out = new Uint8Array(256);
  out.set(raw.subarray(0xa0), 0xa0);
  ext4_inode_encode(ino, out, 0, 256);
  t.same(out, raw, 'round trip incl. i_projid');
  raw[0x80] = 24;
  const short = ext4_inode_decode(raw, 0, 256);
  t.equal(short.i_crtime, raw[0x90] | raw[0x91] << 8 | raw[0x92] << 16 | (raw[0x93] << 24 >>> 0), 'crtime within 24');
  t.equal(short.i_version_hi, 0, 'i_version_hi beyond extra_isize reads 0');
  const small = ext4_inode_decode(raw, 0, 128);
  t.equal(small.i_extra_isize, 0);
  t.equal(small.i_ctime_extra, 0);
  t.same(small.i_block, raw.subarray(0x28, 0x64), 'i_block is 60 raw bytes');
  t.equal(ext4_inode_check_extra_isize({ ...ino, i_extra_isize: 200 }, 256), 'iget: bad extra_isize 200 (inode size 256)');
  t.equal(ext4_inode_check_extra_isize({ ...ino, i_extra_isize: 30 }, 256), 'iget: bad extra_isize 30 (inode size 256)');
});

t.test('timestamps: epoch bits and nanoseconds, as ext4_{en,de}code_extra_time', async (t) => {
  const cases: [string, number, number][] = [
    ['epoch 0', 0, 0],
    ['pre-1970 time', -1, 999_999_999],
    ['oldest 32-bit time (1901)', -0x80000000, 0],
    ['Y2038 last second', 0x7fffffff, 1],
    ['Y2038 + 1 needs epoch bit 1', 0x80000000, 5],
    ['time with epoch bits = 2446', 0x7fffffff + 3 * 2 ** 32, 999_999_999],
    ['year 2242', 8_600_000_000, 123],
  ];
  for (const [name, sec, nsec] of cases) {
    const [base, extra] = ext4_encode_extra_time({ sec, nsec });
    t.ok(base >= 0 && base <= 0xffffffff && extra >= 0 && extra <= 0xffffffff, `${name}: u32 fields`);
    t.same(ext4_decode_extra_time(base, extra), { sec, nsec }, name);
  }
  t.same(ext4_encode_extra_time({ sec: -1, nsec: 0 }), [0xffffffff, 0], 'pre-1970 keeps epoch 0');
  t.same(ext4_decode_extra_time(0xffffffff, 3), { sec: 3 * 2 ** 32 - 1, nsec: 0 }, 'base -1 with epoch 3');
  t.same(ext4_decode_extra_time(0x80000000, 0), { sec: -0x80000000, nsec: 0 }, 'no epoch: signed base');

  const ino = ext4_inode_decode(new Uint8Array(256), 0, 256);
  ino.i_extra_isize = 32;
  ext4_inode_set_time(ino, 'mtime', { sec: 2 ** 33, nsec: 42 });
  t.same(ext4_inode_get_time(ino, 'mtime'), { sec: 2 ** 33, nsec: 42 });
  ext4_inode_set_time(ino, 'crtime', { sec: 100, nsec: 1 });
  t.same(ext4_inode_get_time(ino, 'crtime'), { sec: 100, nsec: 1 });
  ino.i_extra_isize = 0;
  ext4_inode_set_time(ino, 'atime', { sec: -5, nsec: 7 });
  t.same(ext4_inode_get_time(ino, 'atime'), { sec: -5, nsec: 0 }, 'small inode: seconds only');
});

t.test('inode: i_blocks with huge_file, size, file_acl, uid/gid', async (t) => {
  const ino = ext4_inode_decode(new Uint8Array(256), 0, 256);
  t.ok(ext4_inode_blocks_set(ino, 100, false, 4096));
  t.equal(ext4_inode_blocks(ino, false, 4096), 100);
  t.notOk(ext4_inode_blocks_set(ino, 2 ** 33, false, 4096), '2^32 sectors need huge_file');
  t.ok(ext4_inode_blocks_set(ino, 2 ** 40, true, 4096));
  t.equal(ino.i_flags & EXT4_HUGE_FILE_FL, 0, '48-bit sector count, no HUGE_FILE_FL');
  t.equal(ext4_inode_blocks(ino, true, 4096), 2 ** 40);
  t.ok(ext4_inode_blocks_set(ino, 2 ** 50, true, 4096));
  t.not(ino.i_flags & EXT4_HUGE_FILE_FL, 0, 'beyond 48 bits: counted in fs blocks');
  t.equal(ext4_inode_blocks(ino, true, 4096), 2 ** 50);
  ino.i_mode = 0o100644;
  ext4_isize_set(ino, 2 ** 40 + 3);
  t.equal(ext4_isize(ino), 2 ** 40 + 3);
  ino.i_mode = 0o040755;
  t.equal(ext4_isize(ino), 3, 'directory: size_high ignored without largedir');
  t.equal(ext4_isize(ino, true), 2 ** 40 + 3);
  ext4_inode_file_acl_set(ino, 2 ** 47 + 9);
  t.equal(ext4_inode_file_acl(ino, true), 2 ** 47 + 9);
  t.equal(ext4_inode_file_acl(ino, false), 9);
  ext4_inode_uid_set(ino, 0x12345678); ext4_inode_gid_set(ino, 0xfffffffe);
  t.equal(ext4_inode_uid(ino), 0x12345678);
  t.equal(ext4_inode_gid(ino), 0xfffffffe);
});

t.test('extents: header, index, leaf, unwritten length encoding', async (t) => {
  const b = new Uint8Array(60);
  ext4_ext_header_encode({ eh_magic: EXT4_EXT_MAGIC, eh_entries: 3, eh_max: 4, eh_depth: 0, eh_generation: 0 }, b);
  const exts: ext4_extent[] = [
    { ee_block: 0, len: 32768, unwritten: false, start: 2 ** 40 + 1 },
    { ee_block: 32768, len: 32767, unwritten: true, start: 5 },
    { ee_block: 70000, len: 1, unwritten: true, start: 6 },
  ];
  exts.forEach((e, i) => ext4_extent_encode(e, b, 0, i));
  t.equal(b[12 + 4] | b[12 + 5] << 8, 32768, 'initialized 32768 stored as 32768');
  t.equal(b[24 + 4] | b[24 + 5] << 8, 65535, 'unwritten 32767 stored as 65535');
  t.same(exts.map((_, i) => ext4_extent_decode(b, 0, i)), exts);
  t.equal(ext4_ext_check(b, 0, 0, 4), null);
  const bad = b.slice(); bad[0] = 0;
  t.equal(ext4_ext_check(bad, 0, 0, 4), 'invalid magic');
  t.equal(ext4_ext_check(b, 0, 1, 4), 'unexpected eh_depth');
  t.equal(ext4_ext_check(b, 0, 0, 2), 'too large eh_max');
  const over = b.slice(); ext4_extent_encode({ ee_block: 100, len: 1, unwritten: false, start: 9 }, over, 0, 2);
  t.equal(ext4_ext_check(over, 0, 0, 4), 'invalid extent entries', 'overlapping extents');
  const idx = new Uint8Array(4096);
  ext4_ext_header_encode({ eh_magic: EXT4_EXT_MAGIC, eh_entries: 1, eh_max: ext4_ext_space_block(4096), eh_depth: 1, eh_generation: 0 }, idx);
  ext4_extent_idx_encode({ ei_block: 7, leaf: 2 ** 45 + 3 }, idx, 0, 0);
  t.same(ext4_extent_idx_decode(idx, 0, 0), { ei_block: 7, leaf: 2 ** 45 + 3 });
  t.equal(ext4_ext_space_block(4096), 340);
  t.equal(ext4_extent_tail_offset(ext4_ext_header_decode(idx)), 12 + 340 * 12);
});

t.test('dir entries: rec_len encoding and named checks', async (t) => {
  const cases: [string, number, number, number][] = [
    ['rec_len 12 in 4KiB block', 12, 4096, 12],
    ['rec_len 4096 in 4KiB block', 4096, 4096, 4096],
    ['rec_len 65536 in 64KiB block', 65536, 65536, 65535],
    ['rec_len 65532 in 64KiB block', 65532, 65536, 65532],
    ['rec_len 131072 in 128KiB block', 131072, 131072, 0],
    ['rec_len 70000 in 256KiB block', 70000, 262144, (70000 & 65532) | 1],
  ];
  for (const [name, len, bs, disk] of cases) {
    t.equal(ext4_rec_len_to_disk(len, bs), disk, `${name}: to disk`);
    t.equal(ext4_rec_len_from_disk(disk, bs), len, `${name}: from disk`);
  }
  t.equal(ext4_rec_len_from_disk(0, 4096), 0, 'rec_len 0 in a 4KiB block stays 0 (corrupt)');

  const bs = 1024;
  const blk = new Uint8Array(bs);
  const name = new TextEncoder().encode('hello');
  ext4_dir_entry_encode({ inode: 12, rec_len: bs - 12, name_len: 5, file_type: EXT4_FT_REG_FILE, name }, blk, 0, bs);
  ext4_dir_tail_init(blk, bs);
  const de = ext4_dir_entry_decode(blk, 0, bs);
  t.same({ ...de, name: Array.from(de.name) }, { inode: 12, rec_len: bs - 12, name_len: 5, file_type: 1, name: Array.from(name) });
  t.ok(ext4_dir_tail_present(blk, bs));
  t.equal(ext4_check_dir_entry(blk, 0, bs, bs, 100), null);
  t.equal(ext4_check_dir_entry(blk, bs - 12, bs, bs, 100), null, 'the tail is a valid entry');
  const check = (mut: (b: Uint8Array) => void, size = bs): string | null => {
    const b = blk.slice(); mut(b); return ext4_check_dir_entry(b, 0, size, bs, 100);
  };
  t.equal(check((b) => put_le16(b, 4, 8)), 'rec_len is smaller than minimal');
  t.equal(check((b) => put_le16(b, 4, 14)), 'rec_len % 4 != 0');
  t.equal(check((b) => { put_le16(b, 4, 12); b[6] = 9; }), 'rec_len is too small for name_len');
  t.equal(check((b) => put_le16(b, 4, bs + 4)), 'directory entry overrun');
  t.equal(check((b) => put_le16(b, 4, bs - 8)), 'directory entry too close to block end');
  t.equal(check((b) => put_le32(b, 0, 101)), 'inode out of bounds');
  t.equal(check((b) => { put_le16(b, 4, bs); b[6] = 1; b[8] = 0x2e; }), "'.' directory cannot be the last in data block");
  t.equal(ext4_dir_rec_len(1), 12);
  t.equal(ext4_dir_rec_len(255), 264);
});

t.test('dx root and node', async (t) => {
  const bs = 4096;
  const b = new Uint8Array(bs);
  dx_root_init(b, bs, 2, 2, DX_HASH_HALF_MD4);
  const lim = dx_root_limit(bs, true);
  t.equal(lim, (4096 - 32 - 8) / 8);
  dx_countlimit_encode({ limit: lim, count: 2 }, b, DX_ROOT_COUNT_OFFSET);
  dx_entry_encode({ hash: 0, block: 1 }, b, DX_ROOT_COUNT_OFFSET, 0);
  dx_entry_encode({ hash: 0x80000000, block: 2 }, b, DX_ROOT_COUNT_OFFSET, 1);
  t.equal(dx_countlimit_offset(b, bs), DX_ROOT_COUNT_OFFSET);
  t.same(dx_countlimit_decode(b, DX_ROOT_COUNT_OFFSET), { limit: lim, count: 2 });
  t.same(dx_entry_decode(b, DX_ROOT_COUNT_OFFSET, 0), { hash: 0, block: 1 });
  t.same(dx_entry_decode(b, DX_ROOT_COUNT_OFFSET, 1), { hash: 0x80000000, block: 2 });
  t.equal(dx_root_check(b, bs, true, false), null);
  t.equal(dx_root_check(b, bs, false, false), `dx entry: limit ${lim} != root limit ${lim + 1}`);
  const fake = ext4_dir_entry_decode(b, 12, bs);
  t.equal(fake.rec_len, bs - 12, 'dotdot spans the block');
  const deep = b.slice(); deep[0x1e] = 2;
  t.equal(dx_root_check(deep, bs, true, false), 'htree depth 2 exceed supported value');
  t.equal(dx_root_check(deep, bs, true, true), null, 'largedir allows 3 levels');
  const hv = b.slice(); hv[0x1c] = 9;
  t.equal(dx_root_check(hv, bs, true, false), 'Unrecognised inode hash code 9');

  const n = new Uint8Array(65536);
  dx_node_init(n, 65536);
  t.equal(dx_countlimit_offset(n, 65536), DX_NODE_COUNT_OFFSET, '64KiB node recognised through rec_len 65535');
  dx_countlimit_encode({ limit: dx_node_limit(65536, false), count: 1 }, n, 8);
  t.equal(dx_node_check(n, 65536, false), null);
  t.equal(dx_countlimit_offset(new Uint8Array(bs), bs), -1, 'zeroed block is no dx block');
});

t.test('xattr names, entries and hashes', async (t) => {
  const cases: [string, number, string][] = [
    ['user.foo', 1, 'foo'], ['trusted.x', 4, 'x'], ['security.selinux', 6, 'selinux'],
    ['system.posix_acl_access', 2, ''], ['system.posix_acl_default', 3, ''], ['system.data', 7, 'data'],
    ['system.richacl', 8, ''],
  ];
  for (const [full, idx, suf] of cases) {
    t.same(ext4_xattr_split_name(full), { index: idx, suffix: suf }, `split ${full}`);
    t.equal(ext4_xattr_full_name(idx, suf), full, `join ${full}`);
  }
  t.equal(ext4_xattr_split_name('user.'), null, 'empty suffix');
  t.equal(ext4_xattr_split_name('os2.x'), null);

  const blk = new Uint8Array(1024);
  ext4_xattr_header_encode({ h_magic: EXT4_XATTR_MAGIC, h_refcount: 1, h_blocks: 1, h_hash: 0, h_checksum: 0 }, blk);
  const name = new TextEncoder().encode('foo');
  const value = new TextEncoder().encode('bar!x');
  const vo = 1024 - EXT4_XATTR_SIZE(value.length);
  blk.set(value, vo);
  const e: ext4_xattr_entry = { e_name_len: 3, e_name_index: 1, e_value_offs: vo, e_value_inum: 0,
    e_value_size: value.length, e_hash: ext4_xattr_hash_entry(name, value), e_name: name };
  ext4_xattr_entry_encode(e, blk, 32);
  const got = ext4_xattr_entries(blk, 32, 1024, 0, 1024);
  t.ok(Array.isArray(got));
  t.same(got, [e]);
  t.same(ext4_xattr_header_decode(blk), { h_magic: EXT4_XATTR_MAGIC, h_refcount: 1, h_blocks: 1, h_hash: 0, h_checksum: 0 });
  const bad = blk.slice(); put_le16(bad, 32 + 2, 1022);
  t.equal(ext4_xattr_entries(bad, 32, 1024, 0, 1024), 'corrupted xattr value');
  t.equal(ext4_xattr_block_hash([1, 0, 3]), 0, 'a zero entry hash makes the block unshareable');
  const hi = new Uint8Array([0xe9]);
  t.not(ext4_xattr_hash_entry(hi, null), ext4_xattr_hash_entry(hi, null, true), 'signed and unsigned name hashes differ for high bytes');
});

t.test('ACL: ext4 disk form <-> POSIX xattr form', async (t) => {
  const acl: posix_acl_entry[] = [
    { e_tag: ACL_USER_OBJ, e_perm: 6, e_id: ACL_UNDEFINED_ID },
    { e_tag: ACL_USER, e_perm: 4, e_id: 1000 },
    { e_tag: ACL_GROUP_OBJ, e_perm: 4, e_id: ACL_UNDEFINED_ID },
    { e_tag: ACL_GROUP, e_perm: 5, e_id: 100 },
    { e_tag: ACL_MASK, e_perm: 7, e_id: ACL_UNDEFINED_ID },
    { e_tag: ACL_OTHER, e_perm: 0, e_id: ACL_UNDEFINED_ID },
  ];
  const disk = ext4_acl_to_disk(acl);
  t.equal(disk.length, 4 + 4 * 4 + 2 * 8, 'short entries for the four *_OBJ/MASK/OTHER');
  t.same(ext4_acl_from_disk(disk), acl);
  const x = posix_acl_to_xattr(acl);
  t.equal(x.length, 4 + 6 * 8);
  t.equal(le32(x, 0), 2);
  t.equal(le32(x, 4 + 4), 0xffffffff, 'USER_OBJ id undefined in xattr form');
  t.same(posix_acl_from_xattr(x), acl);
  t.equal(ext4_acl_from_disk(new Uint8Array([2, 0, 0, 0])), 'bad acl version');
  t.equal(ext4_acl_from_disk(Uint8Array.from([1, 0, 0, 0, 2, 0, 4, 0])), 'truncated acl entry');
  t.equal(ext4_acl_from_disk(Uint8Array.from([1, 0, 0, 0, 0x40, 0, 4, 0])), 'unknown acl tag 64');
});

t.test('MMP and orphan block tail', async (t) => {
  const raw = rnd(1024, 9);
  raw[0xf] = raw[0xe] = 0;
  const m = ext4_mmp_decode(raw);
  const out = raw.slice(); out.fill(0, 0, 0x74); out.fill(0, 0x3fc);
  ext4_mmp_encode(m, out);
  t.same(out, raw);
  const b = new Uint8Array(4096);
  ext4_orphan_block_tail_encode({ ob_magic: EXT4_ORPHAN_BLOCK_MAGIC, ob_checksum: 0xdeadbeef }, b, 4096);
  t.same(ext4_orphan_block_tail_decode(b, 4096), { ob_magic: EXT4_ORPHAN_BLOCK_MAGIC, ob_checksum: 0xdeadbeef });
  t.equal(ext4_inodes_per_orphan_block(4096), 1022);
});
