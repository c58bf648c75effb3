/*
 * A populated image: an htree directory (built by e2fsck -D), an inline directory, block and
 * in-inode xattrs, an ACL; and directory hashes checked against debugfs's dx_hash.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER, ACL_UNDEFINED_ID, ACL_USER, ACL_USER_OBJ, EXT4_ACL_VERSION,
  type posix_acl_entry, ext4_acl_from_disk, ext4_acl_to_disk, posix_acl_to_xattr,
} from '../../lib/kernel/fs/ext4/acl.h.js';
import {
  DX_ROOT_COUNT_OFFSET, EXT4_INDEX_FL, EXT4_INLINE_DATA_FL, EXT4_ROOT_INO, dx_countlimit_decode,
  dx_countlimit_offset, dx_entry_decode, dx_root_check, dx_root_info_decode, dx_root_limit,
  ext4_dir_entry_decode, ext4_hash_unsigned, ext4_inode_file_acl, le32, uuidToString,
} from '../../lib/kernel/fs/ext4/layout.js';
import {
  EXT4_XATTR_HEADER_SIZE, EXT4_XATTR_INDEX_POSIX_ACL_ACCESS, EXT4_XATTR_INDEX_SYSTEM,
  EXT4_XATTR_MAGIC, ext4_xattr_block_hash, ext4_xattr_entries, ext4_xattr_full_name,
  ext4_xattr_hash_entry, ext4_xattr_header_decode, ext4_xattr_ibody_offset,
} from '../../lib/kernel/fs/ext4/xattr.h.js';
import * as C from '../../lib/kernel/fs/ext4/csum.js';
import { ext4fs_dirhash } from '../../lib/kernel/fs/ext4/hash.js';
import { Image, rmrf, run, scratchDir } from './util.js';

const dir = scratchDir('tree');
t.teardown(() => rmrf(dir));
const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const dec = (b: Uint8Array): string => new TextDecoder().decode(b);

/* Names with bytes >= 0x80 are where signed and unsigned hashes part ways. */
const bigNames = Array.from({ length: 400 }, (_, i) =>
  i % 5 === 0 ? `fïlé-${i}-ünïcödé` : `file-${i}-${'x'.repeat(i % 60)}`);
const src = join(dir, 'src');
mkdirSync(join(src, 'big'), { recursive: true });
mkdirSync(join(src, 'small'));
for (const n of bigNames) writeFileSync(join(src, 'big', n), '');
writeFileSync(join(src, 'small', 'a'), 'x');
writeFileSync(join(src, 'f1'), 'hello');
const img = join(dir, 'tree.img');
run('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-O', 'inline_data', '-d', src, img, '32M']);
const fsck = spawnSync('e2fsck', ['-fyD', img], { encoding: 'utf8' });
if (fsck.status !== 0 && fsck.status !== 1) throw new Error(`e2fsck -fyD: ${fsck.status} ${fsck.stdout}`);
const bigValue = new Uint8Array(1500).map((_, i) => (i * 37) & 0xff);
writeFileSync(join(dir, 'big.val'), bigValue);
const acl: posix_acl_entry[] = [
  { e_tag: ACL_USER_OBJ, e_perm: 6, e_id: ACL_UNDEFINED_ID },
  { e_tag: ACL_USER, e_perm: 4, e_id: 1000 },
  { e_tag: ACL_GROUP_OBJ, e_perm: 4, e_id: ACL_UNDEFINED_ID },
  { e_tag: ACL_MASK, e_perm: 4, e_id: ACL_UNDEFINED_ID },
  { e_tag: ACL_OTHER, e_perm: 0, e_id: ACL_UNDEFINED_ID },
];
writeFileSync(join(dir, 'acl.val'), posix_acl_to_xattr(acl));
writeFileSync(join(dir, 'cmds'), [
  `ea_set -f ${join(dir, 'big.val')} /f1 user.big`,
  'ea_set /f1 user.small hi',
  `ea_set -f ${join(dir, 'acl.val')} /f1 system.posix_acl_access`,
].join('\n') + '\n');
run('debugfs', ['-w', '-f', join(dir, 'cmds'), img]);
const check = spawnSync('e2fsck', ['-fn', img], { encoding: 'utf8' });

const im = new Image(img);
const ctx = C.ext4_csum_ctx(im.sb);

function lookup(dirIno: number, name: string): number {
  const d = im.inode(dirIno);
  for (const b of im.blocks(d)) {
    for (const de of im.dirents(im.block(b))) if (de.inode && dec(de.name) === name) return de.inode;
  }
  return 0;
}

t.test('image is clean', async (t) => { t.equal(check.status, 0, check.stdout); });

t.test('htree directory: dx root, checksums, and every name hashes into its leaf', async (t) => {
  const ino = lookup(EXT4_ROOT_INO, 'big');
  t.ok(ino, 'found big');
  const d = im.inode(ino);
  t.ok(d.i_flags & EXT4_INDEX_FL, 'INDEX_FL set');
  const iseed = C.ext4_inode_csum_seed(ctx, ino, d.i_generation);
  const blocks = im.blocks(d);
  const root = im.block(blocks[0]);
  t.equal(dx_countlimit_offset(root, im.bs), DX_ROOT_COUNT_OFFSET, 'block 0 is a dx root');
  t.equal(dx_root_check(root, im.bs, true, false), null, 'dx_root_check');
  t.ok(C.ext4_dx_csum_verify(ctx, iseed, root), 'dx root checksum verifies');
  t.ok(C.ext4_dir_block_csum_verify(ctx, iseed, root), 'via the generic directory verify');
  const f = root.slice(); f[DX_ROOT_COUNT_OFFSET + 12] ^= 1;
  t.notOk(C.ext4_dx_csum_verify(ctx, iseed, f), 'flipped bit in a used dx_entry fails');
  const g = root.slice(); C.ext4_dx_csum_set(ctx, iseed, f);
  t.ok(C.ext4_dx_csum_verify(ctx, iseed, f), 'set makes it verify again');
  g[im.bs - 20] ^= 1;
  t.ok(C.ext4_dx_csum_verify(ctx, iseed, g) === (DX_ROOT_COUNT_OFFSET + dx_countlimit_decode(root, DX_ROOT_COUNT_OFFSET).count * 8 <= im.bs - 20 && im.bs - 20 < DX_ROOT_COUNT_OFFSET + dx_root_limit(im.bs, true) * 8), 'unused entries are outside the checksum');

  const info = dx_root_info_decode(root);
  t.equal(info.indirect_levels, 0);
  const version = info.hash_version + ext4_hash_unsigned(im.sb);
  const cl = dx_countlimit_decode(root, DX_ROOT_COUNT_OFFSET);
  const entries = Array.from({ length: cl.count }, (_, i) => dx_entry_decode(root, DX_ROOT_COUNT_OFFSET, i));
  t.ok(entries.length >= 2, `${entries.length} leaves`);
  const seen = new Set<string>();
  let misplaced = 0;
  entries.forEach((e, i) => {
    const leaf = im.block(blocks[e.block]);
    t.ok(C.ext4_dirblock_csum_verify(ctx, iseed, leaf), `leaf ${e.block} checksum`);
    const lo = (e.hash & ~1) >>> 0, hi = i + 1 < entries.length ? (entries[i + 1].hash & ~1) >>> 0 : 2 ** 32;
    for (const de of im.dirents(leaf)) {
      if (!de.inode) continue;
      const h = ext4fs_dirhash(de.name, version, im.sb.s_hash_seed)!;
      if (h.hash < lo || h.hash >= hi) misplaced++;
      seen.add(dec(de.name));
    }
  });
  t.equal(misplaced, 0, 'every name hashes into its leaf\'s range');
  t.equal(seen.size, bigNames.length, 'all names found');
});

t.test('inline directory', async (t) => {
  const ino = lookup(EXT4_ROOT_INO, 'small');
  const d = im.inode(ino);
  t.ok(d.i_flags & EXT4_INLINE_DATA_FL, 'INLINE_DATA_FL');
  t.ok(C.ext4_inode_csum_verify(ctx, ino, im.data, im.inodeOffset(ino)), 'inode checksum');
  t.equal(le32(d.i_block, 0), EXT4_ROOT_INO, 'parent in the first word');
  const de = ext4_dir_entry_decode(d.i_block, 4, 60);
  t.equal(dec(de.name), 'a');
  const ioff = im.inodeOffset(ino);
  const base = ioff + ext4_xattr_ibody_offset(d.i_extra_isize);
  t.equal(le32(im.data, base), EXT4_XATTR_MAGIC, 'ibody magic');
  const ents = ext4_xattr_entries(im.data, base + 4, ioff + ctx.inode_size, base + 4, ioff + ctx.inode_size);
  t.ok(Array.isArray(ents) && ents.some((e) => e.e_name_index === EXT4_XATTR_INDEX_SYSTEM && dec(e.e_name) === 'data'), 'system.data');
});

t.test('xattrs: block with checksum and hashes, ibody entries, ACL in ext4 form', async (t) => {
  const ino = lookup(EXT4_ROOT_INO, 'f1');
  const d = im.inode(ino);
  const blk = ext4_inode_file_acl(d, true);
  t.ok(blk > 0, 'has an xattr block');
  const b = im.block(blk);
  const h = ext4_xattr_header_decode(b);
  t.equal(h.h_magic, EXT4_XATTR_MAGIC);
  t.equal(h.h_blocks, 1);
  t.ok(C.ext4_xattr_block_csum_verify(ctx, blk, b), 'xattr block checksum');
  t.notOk(C.ext4_xattr_block_csum_verify(ctx, blk + 1, b), 'block number is part of the checksum');
  const ents = ext4_xattr_entries(b, EXT4_XATTR_HEADER_SIZE, im.bs, 0, im.bs);
  if (!Array.isArray(ents)) { t.fail(ents); return; }
  const big = ents.find((e) => dec(e.e_name) === 'big')!;
  t.ok(big, 'user.big in the block');
  t.equal(ext4_xattr_full_name(big.e_name_index, dec(big.e_name)), 'user.big');
  t.same(b.subarray(big.e_value_offs, big.e_value_offs + big.e_value_size), bigValue, 'value');
  for (const e of ents) {
    const v = b.subarray(e.e_value_offs, e.e_value_offs + e.e_value_size);
    t.equal(e.e_hash, ext4_xattr_hash_entry(e.e_name, v), `entry hash of ${dec(e.e_name)}`);
  }
  /* e2fsprogs leaves h_hash 0 (the kernel fills it in when it next rewrites the block) */
  if (h.h_hash !== 0) t.equal(h.h_hash, ext4_xattr_block_hash(ents.map((e) => e.e_hash)), 'block hash');

  const ioff = im.inodeOffset(ino);
  const base = ioff + ext4_xattr_ibody_offset(d.i_extra_isize);
  const ib = ext4_xattr_entries(im.data, base + 4, ioff + ctx.inode_size, base + 4, ioff + ctx.inode_size);
  if (!Array.isArray(ib)) { t.fail(ib); return; }
  const all = [...ib.map((e) => ({ e, v: im.data.subarray(base + 4 + e.e_value_offs, base + 4 + e.e_value_offs + e.e_value_size) })),
    ...ents.map((e) => ({ e, v: b.subarray(e.e_value_offs, e.e_value_offs + e.e_value_size) }))];
  const small = all.find(({ e }) => dec(e.e_name) === 'small');
  t.equal(small && dec(small.v), 'hi', 'user.small');
  const a = all.find(({ e }) => e.e_name_index === EXT4_XATTR_INDEX_POSIX_ACL_ACCESS);
  t.ok(a, 'ACL stored');
  if (a) {
    t.equal(le32(a.v, 0), EXT4_ACL_VERSION, 'ext4 ACL version 1 on disk');
    t.same(ext4_acl_from_disk(a.v), acl, 'decodes to the ACL written');
    t.same(a.v, ext4_acl_to_disk(acl), 'our encoding is byte-identical to e2fsprogs\'');
    t.same(posix_acl_to_xattr(ext4_acl_from_disk(a.v) as posix_acl_entry[]), posix_acl_to_xattr(acl), 'back to the xattr form');
  }
});

t.test('ext4fs_dirhash agrees with debugfs dx_hash', async (t) => {
  const names = ['hello', 'lost+found', '.', 'a', 'x'.repeat(255), 'exactly-16-bytes', 'exactly-thirty-two-bytes-long!!!',
    'fïlé-ünïcödé', '\u00ff\u00fe\u00fd', 'abcdefghijklmnopqrstuvwxyz0123456789'];
  const seedStr = uuidToString(new Uint8Array(new Uint32Array(im.sb.s_hash_seed).buffer));
  const seeds: [string, number[] | null][] = [[seedStr, im.sb.s_hash_seed], ['00000000-0000-0000-0000-000000000000', null]];
  const lines: string[] = [];
  const want: [string, number, number[] | null][] = [];
  for (const [s, seed] of seeds) {
    for (let v = 0; v <= 5; v++) {
      for (const n of names) {
        lines.push(`dx_hash -h ${v <= 2 ? ['legacy', 'half_md4', 'tea'][v] : `HASHALG_${v}`} -s ${s} "${n}"`);
        want.push([n, v, seed]);
      }
    }
  }
  writeFileSync(join(dir, 'hashcmds'), lines.join('\n') + '\n');
  const out = run('debugfs', ['-f', join(dir, 'hashcmds'), img]).split('\n').filter((l) => l.startsWith('Hash of'));
  t.equal(out.length, want.length, 'one answer per question');
  let bad = 0;
  out.forEach((line, i) => {
    const m = /is 0x([0-9a-f]+) \(minor 0x([0-9a-f]+)\)/.exec(line)!;
    const [n, v, seed] = want[i];
    const h = ext4fs_dirhash(enc(n), v, seed)!;
    if (h.hash !== parseInt(m[1], 16) || h.minor_hash !== parseInt(m[2], 16)) {
      bad++;
      t.comment(`${JSON.stringify(n)} v${v}: got ${h.hash.toString(16)}/${h.minor_hash.toString(16)}, debugfs ${line}`);
    }
  });
  t.equal(bad, 0, `${out.length} hashes match (legacy/half_md4/tea x signed/unsigned x 2 seeds)`);
  t.equal(ext4fs_dirhash(enc('x'), 6, null), null, 'siphash not implemented');
});
