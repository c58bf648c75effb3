// Where the fields of an ext2/3/4 image are: parses the superblock, group descriptors,
// inode tables, extent trees, directory blocks (linear and htree), xattr blocks and the
// jbd2 journal of a small image and lists its metadata fields, each with a way to recompute
// the checksum that covers it (metadata_csum crc32c, gdt_csum crc16, jbd2 v3 crc32c), so a
// mutation can either be caught by a checksum or get past it into the deeper code.
import { crc32c } from '../../../lib/kernel/lib/crc32c.js';
import { crc16 } from '../../../lib/kernel/lib/crc16.js';

export type FieldKind = string;

export interface Field {
  kind: FieldKind;
  name: string;
  off: number;
  size: 1 | 2 | 4;
  /** Big-endian (jbd2). */
  be?: boolean;
  /** Recompute the checksum(s) covering this field after it changed. */
  fix?: () => void;
  /** The one value this mutation writes (then always fixed up), e.g. to revive a journal. */
  only?: number;
}

const le32 = (v: number): Uint8Array => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, v >>> 0, true); return b; };

export function getField(img: Uint8Array, f: { off: number; size: number; be?: boolean }): number {
  const dv = new DataView(img.buffer, img.byteOffset, img.byteLength);
  if (f.size === 1) return dv.getUint8(f.off);
  if (f.size === 2) return dv.getUint16(f.off, !f.be);
  return dv.getUint32(f.off, !f.be);
}

export function setField(img: Uint8Array, f: { off: number; size: number; be?: boolean }, v: number): void {
  const dv = new DataView(img.buffer, img.byteOffset, img.byteLength);
  if (f.size === 1) dv.setUint8(f.off, v % 256);
  else if (f.size === 2) dv.setUint16(f.off, v % 65536, !f.be);
  else dv.setUint32(f.off, v % 4294967296, !f.be);
}

interface Sb {
  bs: number; fdb: number; ngroups: number; ipg: number; isz: number; descSize: number;
  csum: boolean; gdtCsum: boolean; seed: number; gdOff: number; blocks: number; bpg: number;
  extents: boolean; incompat: number; journalIno: number;
}

/** The metadata fields of an ext image (empty if the superblock does not parse). */
export function extFields(img: Uint8Array): Field[] {
  if (img.length < 2048) return [];
  const dv = new DataView(img.buffer, img.byteOffset, img.byteLength);
  const S = 1024;
  const u32 = (o: number) => dv.getUint32(o, true), u16 = (o: number) => dv.getUint16(o, true);
  if (u16(S + 56) !== 0xef53) return [];
  const logbs = u32(S + 24);
  if (logbs > 6) return [];
  const bs = 1024 * 2 ** logbs;
  const incompat = u32(S + 96), roCompat = u32(S + 100);
  const csum = (roCompat & 0x400) !== 0;
  const is64 = (incompat & 0x80) !== 0;
  const uuid = img.subarray(S + 104, S + 120);
  const sb: Sb = {
    bs, fdb: u32(S + 20), ipg: u32(S + 40), isz: u32(S + 76) >= 1 ? u16(S + 88) : 128,
    descSize: is64 ? u16(S + 254) : 32, csum, gdtCsum: (roCompat & 0x10) !== 0,
    seed: (incompat & 0x2000) ? u32(S + 0x270) : crc32c(0xffffffff, uuid),
    ngroups: 0, gdOff: 0, blocks: u32(S + 4), bpg: u32(S + 32), extents: (incompat & 0x40) !== 0, incompat,
    journalIno: u32(S + 224),
  };
  if (sb.bpg === 0 || sb.ipg === 0 || sb.isz < 128 || sb.descSize < 32) return [];
  sb.ngroups = Math.ceil((sb.blocks - sb.fdb) / sb.bpg);
  sb.gdOff = (sb.fdb + 1) * bs;
  const fields: Field[] = [];
  const blk = (n: number) => n * bs;
  const inRange = (n: number) => n > 0 && blk(n) + bs <= img.length;

  // ---- superblock
  const fixSb = () => { if (csum) dv.setUint32(S + 0x3fc, crc32c(0xffffffff, img, S, 0x3fc), true); };
  const sbf: [string, number, 1 | 2 | 4][] = [
    ['s_inodes_count', 0, 4], ['s_blocks_count_lo', 4, 4], ['s_r_blocks_count_lo', 8, 4], ['s_free_blocks_count_lo', 12, 4],
    ['s_free_inodes_count', 16, 4], ['s_first_data_block', 20, 4], ['s_log_block_size', 24, 4], ['s_log_cluster_size', 28, 4],
    ['s_blocks_per_group', 32, 4], ['s_clusters_per_group', 36, 4], ['s_inodes_per_group', 40, 4], ['s_mnt_count', 52, 2],
    ['s_state', 58, 2], ['s_errors', 60, 2], ['s_rev_level', 76, 4], ['s_first_ino', 84, 4], ['s_inode_size', 88, 2],
    ['s_feature_compat', 92, 4], ['s_feature_incompat', 96, 4], ['s_feature_ro_compat', 100, 4],
    ['s_reserved_gdt_blocks', 206, 2], ['s_journal_inum', 224, 4], ['s_last_orphan', 232, 4], ['s_def_hash_version', 252, 1],
    ['s_desc_size', 254, 2], ['s_first_meta_bg', 260, 4], ['s_blocks_count_hi', 336, 4], ['s_min_extra_isize', 348, 2],
    ['s_want_extra_isize', 350, 2], ['s_log_groups_per_flex', 372, 1], ['s_checksum_type', 373, 1], ['s_checksum', 0x3fc, 4],
  ];
  for (const [name, o, size] of sbf) fields.push({ kind: 'superblock', name, off: S + o, size, fix: name === 's_checksum' ? undefined : fixSb });

  // ---- group descriptors (and bitmaps)
  const gdAt = (g: number) => sb.gdOff + g * sb.descSize;
  const fixGd = (g: number) => () => {
    const o = gdAt(g);
    if (csum) {
      let c = crc32c(sb.seed, le32(g));
      c = crc32c(c, img, o, 0x1e);
      c = crc32c(c, new Uint8Array(2));
      if (sb.descSize > 0x20) c = crc32c(c, img, o + 0x20, sb.descSize - 0x20);
      dv.setUint16(o + 0x1e, c % 65536, true);
    } else if (sb.gdtCsum) {
      let c = crc16(0xffff, uuid);
      c = crc16(c, le32(g));
      c = crc16(c, img, o, 0x1e);
      if (sb.descSize > 0x20) c = crc16(c, img, o + 0x20, sb.descSize - 0x20);
      dv.setUint16(o + 0x1e, c, true);
    }
  };
  const itable: number[] = [];
  for (let g = 0; g < sb.ngroups && gdAt(g) + sb.descSize <= img.length; g++) {
    const o = gdAt(g);
    const hi = (x: number) => (sb.descSize >= 64 ? u32(o + x) * 4294967296 : 0);
    itable.push(u32(o + 8) + hi(0x28));
    const fix = fixGd(g);
    const gdf: [string, number, 1 | 2 | 4][] = [
      ['bg_block_bitmap_lo', 0, 4], ['bg_inode_bitmap_lo', 4, 4], ['bg_inode_table_lo', 8, 4], ['bg_free_blocks_count_lo', 12, 2],
      ['bg_free_inodes_count_lo', 14, 2], ['bg_used_dirs_count_lo', 16, 2], ['bg_flags', 18, 2], ['bg_block_bitmap_csum_lo', 0x18, 2],
      ['bg_inode_bitmap_csum_lo', 0x1a, 2], ['bg_itable_unused_lo', 0x1c, 2], ['bg_checksum', 0x1e, 2],
    ];
    if (sb.descSize >= 64) gdf.push(['bg_block_bitmap_hi', 0x20, 4], ['bg_inode_table_hi', 0x28, 4], ['bg_free_blocks_count_hi', 0x2c, 2]);
    for (const [name, x, size] of gdf) fields.push({ kind: 'group-desc', name: `group ${g} ${name}`, off: o + x, size, fix: name === 'bg_checksum' ? undefined : fix });
    // Bitmaps: a few words of each, with their checksums (in the descriptor) recomputed.
    const bb = u32(o) + hi(0x20), ib = u32(o + 4) + hi(0x24);
    for (const [which, b, nbytes, csLo, csHi] of [['block', bb, sb.bpg / 8, 0x18, 0x38], ['inode', ib, sb.ipg / 8, 0x1a, 0x3a]] as const) {
      if (!inRange(b)) continue;
      const fixBm = () => {
        if (csum) {
          const c = crc32c(sb.seed, img, blk(b), Math.min(nbytes, bs));
          dv.setUint16(o + csLo, c % 65536, true);
          if (sb.descSize >= 64) dv.setUint16(o + csHi, Math.floor(c / 65536), true);
        }
        fix();
      };
      for (let w = 0; w < 4; w++) fields.push({ kind: 'bitmap', name: `group ${g} ${which} bitmap word ${w}`, off: blk(b) + w * 4, size: 4, fix: fixBm });
    }
  }

  // ---- inodes
  const inodeOff = (ino: number): number => {
    const g = Math.floor((ino - 1) / sb.ipg);
    if (g >= itable.length || !inRange(itable[g]!)) return -1;
    const o = blk(itable[g]!) + ((ino - 1) % sb.ipg) * sb.isz;
    return o + sb.isz <= img.length ? o : -1;
  };
  const inodeSeed = (ino: number): number => {
    const o = inodeOff(ino);
    return crc32c(crc32c(sb.seed, le32(ino)), img, o + 0x64, 4);
  };
  const fixInode = (ino: number) => () => {
    if (!csum) return;
    const o = inodeOff(ino);
    const extra = sb.isz > 128 ? u16(o + 0x80) : 0;
    const hiFits = sb.isz > 128 && extra >= 4;
    const copy = img.slice(o, o + sb.isz);
    copy[0x7c] = 0; copy[0x7d] = 0;
    if (hiFits) { copy[0x82] = 0; copy[0x83] = 0; }
    const c = crc32c(crc32c(crc32c(sb.seed, le32(ino)), img, o + 0x64, 4), copy);
    dv.setUint16(o + 0x7c, c % 65536, true);
    if (hiFits) dv.setUint16(o + 0x82, Math.floor(c / 65536), true);
  };

  /** The physical blocks of an inode's first logical blocks (extents or block map), capped. */
  const blocksOf = (ino: number, cap: number, extentBlocks: { b: number; ino: number }[]): number[] => {
    const o = inodeOff(ino);
    if (o < 0) return [];
    const flags = u32(o + 0x20);
    const out: number[] = [];
    if (flags & 0x10000000) return out; // inline data
    if (flags & 0x80000) {
      const walk = (node: number, depthLeft: number): void => {
        if (u16(node) !== 0xf30a) return;
        const n = Math.min(u16(node + 2), 340), depth = u16(node + 6);
        for (let i = 0; i < n && out.length < cap; i++) {
          const e = node + 12 + i * 12;
          if (depth === 0) {
            const len = u16(e + 4) > 32768 ? u16(e + 4) - 32768 : u16(e + 4);
            const start = u16(e + 6) * 4294967296 + u32(e + 8);
            for (let j = 0; j < len && out.length < cap; j++) out.push(start + j);
          } else if (depthLeft > 0) {
            const child = u16(e + 8) * 4294967296 + u32(e + 4);
            if (inRange(child)) { extentBlocks.push({ b: child, ino }); walk(blk(child), depthLeft - 1); }
          }
        }
      };
      walk(o + 0x28, 3);
    } else {
      for (let i = 0; i < 12 && out.length < cap; i++) { const b = u32(o + 0x28 + i * 4); if (b) out.push(b); }
      const ind = u32(o + 0x28 + 48);
      if (inRange(ind)) for (let i = 0; i < bs / 4 && out.length < cap; i++) { const b = u32(blk(ind) + i * 4); if (b) out.push(b); }
    }
    return out;
  };

  const seen = new Set<number>();
  const dirBlocks: { b: number; ino: number; first: boolean; htree: boolean }[] = [];
  const extentBlocks: { b: number; ino: number }[] = [];
  const xattrBlocks = new Set<number>();
  const queue = [2];
  const inodes: number[] = [];
  while (queue.length && inodes.length < 400) {
    const ino = queue.shift()!;
    if (seen.has(ino) || inodeOff(ino) < 0) continue;
    seen.add(ino);
    inodes.push(ino);
    const o = inodeOff(ino);
    const acl = u32(o + 0x68);
    if (inRange(acl)) xattrBlocks.add(acl);
    if ((u16(o) & 0xf000) !== 0x4000) { blocksOf(ino, 0, extentBlocks); continue; }
    const htree = (u32(o + 0x20) & 0x1000) !== 0;
    const bl = blocksOf(ino, 64, extentBlocks);
    bl.forEach((b, i) => {
      if (!inRange(b)) return;
      dirBlocks.push({ b, ino, first: i === 0, htree });
      // entries of this block
      for (let p = 0; p + 8 <= bs;) {
        const e = blk(b) + p;
        const child = u32(e), rl = u16(e + 4);
        if (rl < 8 || p + rl > bs) break;
        if (child && child !== ino && !seen.has(child) && u16(e + 6) % 256 > 0) queue.push(child);
        p += rl;
      }
    });
  }
  if (sb.journalIno && !seen.has(sb.journalIno)) inodes.push(sb.journalIno);

  const inodeFields: [string, number, 1 | 2 | 4][] = [
    ['i_mode', 0, 2], ['i_size_lo', 4, 4], ['i_links_count', 0x1a, 2], ['i_blocks_lo', 0x1c, 4], ['i_flags', 0x20, 4],
    ['i_generation', 0x64, 4], ['i_file_acl_lo', 0x68, 4], ['i_size_high', 0x6c, 4], ['i_dtime', 0x14, 4],
    ['l_i_blocks_high', 0x74, 2], ['l_i_file_acl_high', 0x76, 2], ['i_checksum_lo', 0x7c, 2],
  ];
  for (const ino of inodes) {
    const o = inodeOff(ino);
    if (o < 0) continue;
    const fix = fixInode(ino);
    for (const [name, x, size] of inodeFields) fields.push({ kind: 'inode', name: `inode ${ino} ${name}`, off: o + x, size, fix: name === 'i_checksum_lo' ? undefined : fix });
    if (sb.isz > 128) fields.push({ kind: 'inode', name: `inode ${ino} i_extra_isize`, off: o + 0x80, size: 2, fix });
    const flags = u32(o + 0x20);
    if (flags & 0x80000) {
      const h = o + 0x28;
      for (const [name, x, size] of [['eh_magic', 0, 2], ['eh_entries', 2, 2], ['eh_max', 4, 2], ['eh_depth', 6, 2]] as const)
        fields.push({ kind: 'extent', name: `inode ${ino} ${name}`, off: h + x, size, fix });
      for (let i = 0; i < Math.min(u16(h + 2), 4); i++) {
        const e = h + 12 + i * 12;
        for (const [name, x, size] of [['ee_block', 0, 4], ['ee_len', 4, 2], ['ee_start_hi', 6, 2], ['ee_start_lo', 8, 4]] as const)
          fields.push({ kind: 'extent', name: `inode ${ino} extent[${i}] ${name}`, off: e + x, size, fix });
      }
    } else if ((flags & 0x10000000) === 0) {
      for (let i = 0; i < 15; i++) fields.push({ kind: 'blockmap', name: `inode ${ino} i_block[${i}]`, off: o + 0x28 + i * 4, size: 4, fix });
    } else {
      for (let i = 0; i < 15; i++) fields.push({ kind: 'inline', name: `inode ${ino} i_block word ${i} (inline data)`, off: o + 0x28 + i * 4, size: 4, fix });
    }
  }

  // ---- extent tree blocks
  for (const { b, ino } of extentBlocks) {
    const h = blk(b);
    const fix = () => {
      if (!csum) return;
      const max = u16(h + 4), t = 12 + max * 12;
      if (t + 4 <= bs) dv.setUint32(h + t, crc32c(inodeSeed(ino), img, h, t), true);
    };
    for (const [name, x, size] of [['eh_magic', 0, 2], ['eh_entries', 2, 2], ['eh_max', 4, 2], ['eh_depth', 6, 2], ['entry[0] word 0', 12, 4], ['entry[0] len', 16, 2], ['entry[0] start', 20, 4]] as const)
      fields.push({ kind: 'extent', name: `extent block ${b} (inode ${ino}) ${name}`, off: h + x, size, fix });
  }

  // ---- directory blocks (linear leaves and htree nodes)
  for (const d of dirBlocks) {
    const h = blk(d.b);
    const isDxRoot = d.first && d.htree && u16(h + 4) === 12;
    const isDxNode = !d.first && d.htree && u32(h) === 0 && u16(h + 4) === bs;
    if (isDxRoot || isDxNode) {
      const co = isDxRoot ? 0x20 : 8;
      const fix = () => {
        if (!csum) return;
        const limit = u16(h + co), count = u16(h + co + 2);
        const t = co + limit * 8;
        if (t + 8 > bs || count > limit) return;
        let c = crc32c(inodeSeed(d.ino), img, h, co + count * 8);
        c = crc32c(c, img, h + t, 4);
        c = crc32c(c, new Uint8Array(4));
        dv.setUint32(h + t + 4, c, true);
      };
      const nf: [string, number, 1 | 2 | 4][] = [['dx limit', co, 2], ['dx count', co + 2, 2], ['dx block[0]', co + 4, 4], ['dx hash[1]', co + 8, 4], ['dx block[1]', co + 12, 4]];
      if (isDxRoot) nf.push(['dx_root hash_version', 0x1c, 1], ['dx_root info_length', 0x1d, 1], ['dx_root indirect_levels', 0x1e, 1], ['dotdot rec_len', 16, 2], ['dot inode', 0, 4]);
      for (const [name, x, size] of nf) fields.push({ kind: 'htree', name: `dir ${d.ino} block ${d.b} ${name}`, off: h + x, size, fix });
      continue;
    }
    const fix = () => {
      if (!csum) return;
      if (u16(h + bs - 8) !== 12 || img[h + bs - 5] !== 0xde) return;
      dv.setUint32(h + bs - 4, crc32c(inodeSeed(d.ino), img, h, bs - 12), true);
    };
    let n = 0;
    for (let p = 0; p + 8 <= bs && n < 6;) {
      const e = h + p, rl = u16(e + 4);
      for (const [name, x, size] of [['inode', 0, 4], ['rec_len', 4, 2], ['name_len', 6, 1], ['file_type', 7, 1], ['name[0]', 8, 1]] as const)
        fields.push({ kind: 'dirent', name: `dir ${d.ino} block ${d.b} entry@${p} ${name}`, off: e + x, size, fix });
      if (rl < 8 || p + rl > bs) break;
      p += rl; n++;
    }
  }

  // ---- xattr blocks
  for (const b of xattrBlocks) {
    const h = blk(b);
    const fix = () => {
      if (!csum) return;
      const copy = img.slice(h, h + bs); copy.fill(0, 0x10, 0x14);
      const n64 = new Uint8Array(8); new DataView(n64.buffer).setUint32(0, b % 4294967296, true); new DataView(n64.buffer).setUint32(4, Math.floor(b / 4294967296), true);
      dv.setUint32(h + 0x10, crc32c(crc32c(sb.seed, n64), copy), true);
    };
    const xf: [string, number, 1 | 2 | 4][] = [['h_magic', 0, 4], ['h_refcount', 4, 4], ['h_blocks', 8, 4], ['h_hash', 12, 4], ['h_checksum', 16, 4]];
    for (let p = 32, i = 0; i < 4 && p + 16 <= bs; i++) {
      const nl = img[h + p]!;
      if (nl === 0 && u32(h + p) === 0) break;
      xf.push([`entry[${i}] e_name_len`, p, 1], [`entry[${i}] e_name_index`, p + 1, 1], [`entry[${i}] e_value_offs`, p + 2, 2],
        [`entry[${i}] e_value_inum`, p + 4, 4], [`entry[${i}] e_value_size`, p + 8, 4], [`entry[${i}] e_hash`, p + 12, 4]);
      p += Math.ceil((16 + nl) / 4) * 4;
    }
    for (const [name, x, size] of xf) fields.push({ kind: 'xattr', name: `xattr block ${b} ${name}`, off: h + x, size, fix: name === 'h_checksum' ? undefined : fix });
  }
  // In-inode xattrs (ibody): the header magic and first entry.
  if (sb.isz > 128) for (const ino of inodes.slice(0, 40)) {
    const o = inodeOff(ino);
    const x = o + 0x80 + u16(o + 0x80);
    if (x + 20 > o + sb.isz || u32(x) !== 0xea020000) continue;
    const fix = fixInode(ino);
    for (const [name, d, size] of [['ibody h_magic', 0, 4], ['ibody e_name_len', 4, 1], ['ibody e_value_offs', 6, 2], ['ibody e_value_size', 12, 4]] as const)
      fields.push({ kind: 'xattr', name: `inode ${ino} ${name}`, off: x + d, size, fix });
  }

  // ---- the journal: superblock, and descriptor / commit / revoke blocks still in the log
  if (sb.journalIno && inodeOff(sb.journalIno) >= 0) {
    const jb = blocksOf(sb.journalIno, 4096, []);
    if (jb.length && inRange(jb[0]!)) {
      const j = blk(jb[0]!);
      const be32 = (x: number) => dv.getUint32(x, false);
      if (be32(j) === 0xc03b3998) {
        const jcsum = (be32(j + 0x28) & 0x18) !== 0; // CSUM_V2 | CSUM_V3
        const fixJsb = () => {
          if (!jcsum) return;
          const copy = img.slice(j, j + 1024); copy.fill(0, 0xfc, 0x100);
          dv.setUint32(j + 0xfc, crc32c(0xffffffff, copy), false);
        };
        const jf: [string, number][] = [['h_blocktype', 4], ['s_blocksize', 12], ['s_maxlen', 16], ['s_first', 20], ['s_sequence', 24], ['s_start', 28],
          ['s_errno', 32], ['s_feature_compat', 36], ['s_feature_incompat', 40], ['s_feature_ro_compat', 44], ['s_nr_users', 64], ['s_num_fc_blks', 84], ['s_checksum', 0xfc]];
        for (const [name, x] of jf) fields.push({ kind: 'journal', name: `journal sb ${name}`, off: j + x, size: 4, be: true, fix: name === 's_checksum' ? undefined : fixJsb });
        const jseed = crc32c(0xffffffff, img, j + 48, 16);
        for (let i = 1; i < jb.length; i++) {
          const b = jb[i]!;
          if (!inRange(b) || be32(blk(b)) !== 0xc03b3998) continue;
          const h = blk(b), type = be32(h + 4), seq = be32(h + 8);
          const fixDesc = () => {
            if (!jcsum || (type !== 1 && type !== 5)) return;
            const copy = img.slice(h, h + bs); copy.fill(0, bs - 4, bs);
            dv.setUint32(h + bs - 4, crc32c(jseed, copy), false);
          };
          const name = `journal block ${i} (type ${type}, seq ${seq})`;
          fields.push({ kind: 'journal-log', name: `${name} h_blocktype`, off: h + 4, size: 4, be: true, fix: fixDesc });
          fields.push({ kind: 'journal-log', name: `${name} h_sequence`, off: h + 8, size: 4, be: true, fix: fixDesc });
          if (type === 1) for (let k = 0; k < 3; k++) fields.push({ kind: 'journal-log', name: `${name} tag[${k}] word`, off: h + 12 + k * 4, size: 4, be: true, fix: fixDesc });
          if (type === 5) fields.push({ kind: 'journal-log', name: `${name} r_count`, off: h + 12, size: 4, be: true, fix: fixDesc });
          // Revive the log: point s_start at this transaction so mount replays it.
          if (type === 1) fields.push({ kind: 'journal-revive', name: `journal sb s_start -> block ${i} seq ${seq}`, off: j + 28, size: 4, be: true, only: i, fix: () => { dv.setUint32(j + 24, seq, false); fixJsb(); } });
        }
      }
    }
  }
  return fields;
}
