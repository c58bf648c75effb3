import t from 'tap';
import {
  ATTR_ARCH,
  ATTR_DIR,
  ATTR_EXT,
  ATTR_VOLUME,
  BS16_STATE,
  BS32_STATE,
  DELETED_FLAG,
  EOF_FAT32,
  FAT_ENT_EOF,
  FAT_FSINFO_SIG1,
  type fat_boot_sector,
  fat_boot_sector_decode,
  fat_boot_sector_encode,
  fat_fsinfo_decode,
  fat_fsinfo_encode,
  fat_fsinfo_new,
  LAST_LONG_ENTRY,
  msdos_dir_entry_decode,
  msdos_dir_entry_encode,
  msdos_dir_entry_new,
  msdos_dir_slot_decode,
  msdos_dir_slot_name,
} from '../../lib/kernel/fs/fat/layout.js';
import { fat_checksum, fat_get_start, fat_set_start } from '../../lib/kernel/fs/fat/fat.js';
import {
  fat_ent1_clean, fat_ent1_set_clean, fat_ent_get, fat_ent_get_raw, fat_ent_offset, fat_ent_set,
} from '../../lib/kernel/fs/fat/fatent.js';
import { fat_dir_records, fat_find_volume_label } from '../../lib/kernel/fs/fat/dir.js';
import { vfat_encode_record, vfat_split_long_name } from '../../lib/kernel/fs/fat/namei_vfat.js';
import {
  fat_fill_geometry, fat_fsinfo_check, fat_get_state_dirty, fat_set_state_bytes, fat_type_from_clusters,
} from '../../lib/kernel/fs/fat/super.js';
import { str_to_uni, uni_to_str } from '../../lib/kernel/fs/fat/names.js';
import type { super_block } from '../../lib/kernel/include/fs.js';
import { EINVAL } from '../../lib/kernel/include/uapi.js';
import { register_console, unregister_console } from '../../lib/kernel/kernel/printk.js';

/* The checks below run without a mounted volume: a super_block with just a name. */
const SB = { s_id: 'vda' } as unknown as super_block;

/** What the kernel printed while fn ran. */
function printed(fn: () => void): string[] {
  const out: string[] = [];
  const con = { write: (_level: number, text: string) => void out.push(text) };
  register_console(con);
  try { fn(); } finally { unregister_console(con); }
  return out;
}

const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

/** A FAT16 boot sector: 512-byte sectors, 4 per cluster, 1 reserved, 2 FATs of 64 sectors. */
function fat16Boot(): fat_boot_sector {
  const buf = new Uint8Array(512);
  buf.set([0xeb, 0x3c, 0x90]);
  const bs = fat_boot_sector_decode(buf);
  Object.assign(bs, {
    system_id: latin1('mkfs.fat'),
    sector_size: 512,
    sec_per_clus: 4,
    reserved: 1,
    fats: 2,
    dir_entries: 512,
    sectors: 0,
    media: 0xf8,
    fat_length: 64,
    secs_track: 32,
    heads: 8,
    hidden: 0,
    total_sect: 65536,
    boot_signature: 0xaa55,
  });
  Object.assign(bs.fat16, { drive_number: 0x80, signature: 0x29, vol_id: 0x1234abcd, vol_label: latin1('NO NAME    '), fs_type: latin1('FAT16   ') });
  return bs;
}

function fat32Boot(): fat_boot_sector {
  const bs = fat16Boot();
  Object.assign(bs, { sec_per_clus: 1, reserved: 32, dir_entries: 0, fat_length: 0, total_sect: 140000 });
  Object.assign(bs.fat32, { length: 1077, root_cluster: 2, info_sector: 1, backup_boot: 6, drive_number: 0x80, signature: 0x29, vol_id: 7, vol_label: latin1('NO NAME    '), fs_type: latin1('FAT32   ') });
  return bs;
}

t.test('boot sector encode/decode round trip', async (t) => {
  for (const [name, bs] of [['FAT16', fat16Boot()], ['FAT32', fat32Boot()]] as const) {
    const buf = new Uint8Array(512);
    fat_boot_sector_encode(bs, buf);
    const back = fat_boot_sector_decode(buf);
    const again = new Uint8Array(512);
    fat_boot_sector_encode(back, again);
    t.same(again, buf, `${name} bytes`);
    t.equal(back.boot_signature, 0xaa55);
  }
});

t.test('fat_fill_geometry refuses what Linux refuses', async (t) => {
  const rows: [string, (b: fat_boot_sector) => void, string][] = [
    ['zero reserved sectors', (b) => (b.reserved = 0), 'bogus number of reserved sectors'],
    ['zero FATs', (b) => (b.fats = 0), 'bogus number of FAT structure'],
    ['media 0x00', (b) => (b.media = 0), 'invalid media value (0x00)'],
    ['media 0xf7', (b) => (b.media = 0xf7), 'invalid media value (0xf7)'],
    ['sector size 256', (b) => (b.sector_size = 256), 'bogus logical sector size 256'],
    ['sector size 768', (b) => (b.sector_size = 768), 'bogus logical sector size 768'],
    ['sector size 8192', (b) => (b.sector_size = 8192), 'bogus logical sector size 8192'],
    ['3 sectors per cluster', (b) => (b.sec_per_clus = 3), 'bogus sectors per cluster 3'],
    ['0 sectors per cluster', (b) => (b.sec_per_clus = 0), 'bogus sectors per cluster 0'],
    ['no FAT length at all', (b) => ((b.fat_length = 0), (b.fat32.length = 0)), 'bogus number of FAT sectors'],
    ['root entries not filling a sector', (b) => (b.dir_entries = 500), 'bogus number of directory entries (500)'],
    ['FAT16 with too many clusters', (b) => ((b.sec_per_clus = 1), (b.fat_length = 256), (b.total_sect = 200000)), 'count of clusters too big (65534)'],
  ];
  for (const [name, mutate, error] of rows) {
    const bs = fat16Boot();
    mutate(bs);
    const said = printed(() => t.throws(() => fat_fill_geometry(SB, bs, false), { errno: EINVAL, message: error }, name));
    t.same(said, [`FAT-fs (vda): ${error}`], `${name}: Linux's message`);
    t.same(printed(() => t.throws(() => fat_fill_geometry(SB, bs, true), { errno: EINVAL, message: error }, `${name}, silent`)), [], `${name}: silent says nothing`);
  }
  for (const media of [0xf0, 0xf8, 0xff]) {
    const bs = fat16Boot();
    bs.media = media;
    t.doesNotThrow(() => fat_fill_geometry(SB, bs, false), `media 0x${media.toString(16)} accepted`);
  }
  const bs = fat16Boot();
  bs.secs_track = 0;
  bs.heads = 0;
  t.doesNotThrow(() => fat_fill_geometry(SB, bs, false), 'zero heads and sectors per track accepted');
});

t.test('geometry and FAT type', async (t) => {
  const g = fat_fill_geometry(SB, fat16Boot(), false);
  t.match(g, { fat_bits: 16, fat_start: 1, fat_length: 64, dir_start: 129, data_start: 161, totalClusters: 16343, max_cluster: 16345, cluster_size: 2048, dirty: false, vol_id: 0x1234abcd });

  const at = (clusters: number) => {
    const b = fat16Boot();
    b.sec_per_clus = 1;
    b.total_sect = 161 + clusters;
    try {
      return fat_fill_geometry(SB, b, true).fat_bits;
    } catch (e) {
      return (e as Error).message;
    }
  };
  t.equal(at(4084), 12, '4084 clusters: FAT12');
  t.equal(at(4085), 16, '4085 clusters: FAT16');
  t.equal(fat_type_from_clusters(4084), 12);
  t.equal(fat_type_from_clusters(4085), 16);
  t.equal(fat_type_from_clusters(65524), 16);
  t.equal(fat_type_from_clusters(65525), 32);

  const b = fat16Boot();
  b.fat_length = 1;
  const small = fat_fill_geometry(SB, b, false);
  t.equal(small.totalClusters, 254, 'clusters clamped to what a 1-sector FAT16 holds');

  const b32 = fat32Boot();
  b32.fat32.info_sector = 0;
  const g32 = fat_fill_geometry(SB, b32, false);
  t.match(g32, { fat_bits: 32, fat_length: 1077, root_cluster: 2, fsinfo_sector: 1, backupBoot: 6, data_start: 32 + 2 * 1077, dir_entries: 0 });
});

t.test('the dirty bit lives where fat_set_state puts it', async (t) => {
  for (const [bits, off] of [[12, BS16_STATE], [16, BS16_STATE], [32, BS32_STATE]] as const) {
    const boot = new Uint8Array(512);
    boot[off] = 0x40;
    t.notOk(fat_get_state_dirty(boot, bits));
    fat_set_state_bytes(boot, bits, true);
    t.equal(boot[off], 0x41, `FAT${bits}: set at 0x${off.toString(16)}, other bits kept`);
    t.ok(fat_get_state_dirty(boot, bits));
    fat_set_state_bytes(boot, bits, false);
    t.equal(boot[off], 0x40, `FAT${bits}: cleared`);
  }
  const bs = fat32Boot();
  bs.fat32.state = 1;
  t.ok(fat_fill_geometry(SB, bs, false).dirty, 'geometry reports a dirty FAT32 volume');
  const fat = new Uint8Array(8);
  fat_ent_set(fat, 32, 1, 0x0fffffff);
  t.ok(fat_ent1_clean(fat, 32));
  fat_ent1_set_clean(fat, 32, false);
  t.equal(fat_ent_get_raw(fat, 32, 1), 0x07ffffff, 'FAT32 FAT[1] clean-shutdown bit');
});

t.test('FSInfo', async (t) => {
  const buf = new Uint8Array(512);
  fat_fsinfo_encode(fat_fsinfo_new(1000, 17), buf);
  t.same([...buf.subarray(0, 4)], [0x52, 0x52, 0x61, 0x41], 'RRaA');
  t.same([...buf.subarray(484, 488)], [0x72, 0x72, 0x41, 0x61], 'rrAa');
  t.same([...buf.subarray(508, 512)], [0, 0, 0x55, 0xaa], 'trail');
  const fsi = fat_fsinfo_decode(buf);
  t.match(fsi, { signature1: FAT_FSINFO_SIG1, free_clusters: 1000, next_cluster: 17 });
  const sbi = fat_fill_geometry(SB, fat32Boot(), false);
  const check = (f: typeof fsi) => {
    let r: ReturnType<typeof fat_fsinfo_check> | undefined;
    const said = printed(() => (r = fat_fsinfo_check(SB, f, sbi, false)));
    return { ...r!, said };
  };
  t.same(check(fsi), { freeClusters: 1000, prevFree: 17, said: [] });
  t.same(check({ ...fsi, free_clusters: sbi.totalClusters + 1 }), { freeClusters: -1, prevFree: 17, said: [] }, 'free count above cluster count is unknown');
  t.same(check({ ...fsi, free_clusters: 0xffffffff, next_cluster: 0xffffffff }), { freeClusters: -1, prevFree: 0xffffffff % sbi.max_cluster, said: [] }, 'unknown hints');
  t.same(check({ ...fsi, next_cluster: sbi.max_cluster + 1 }), { freeClusters: 1000, prevFree: 2, said: [] }, 'next free wraps and is raised to 2');
  const bad = check({ ...fsi, signature2: 0 });
  t.same(bad, { freeClusters: -1, prevFree: 2, said: ['FAT-fs (vda): Invalid FSINFO signature: 0x41615252, 0x00000000 (sector = 1)'] }, 'a wrong signature: the warning, and both hints ignored');
  t.same(check({ ...fsi, trail_signature: 0 }), { freeClusters: 1000, prevFree: 17, said: [] }, 'trail signature is not checked');
});

t.test('FAT entries', async (t) => {
  t.test('FAT12 entry straddling a byte', async (t) => {
    const fat = new Uint8Array(12);
    fat_ent_set(fat, 12, 2, 0x123);
    fat_ent_set(fat, 12, 3, 0x456);
    t.same([...fat.subarray(3, 6)], [0x23, 0x61, 0x45], 'even entry low, odd entry high nibble of the shared byte');
    t.equal(fat_ent_get_raw(fat, 12, 2), 0x123);
    t.equal(fat_ent_get_raw(fat, 12, 3), 0x456);
    fat_ent_set(fat, 12, 2, 0xabc);
    t.equal(fat_ent_get_raw(fat, 12, 3), 0x456, 'odd neighbour kept');
    fat_ent_set(fat, 12, 3, 0x000);
    t.equal(fat_ent_get_raw(fat, 12, 2), 0xabc, 'even neighbour kept');
  });
  t.test('FAT12 entry 341 straddles a 512-byte sector', async (t) => {
    t.equal(fat_ent_offset(12, 341), 511);
    const fat = new Uint8Array(1024);
    fat_ent_set(fat, 12, 341, 0xfed);
    t.equal(fat[511]! >> 4, 0xd);
    t.equal(fat[512], 0xfe);
    t.equal(fat_ent_get_raw(fat, 12, 341), 0xfed);
  });
  t.test('EOF and bad marks normalise to FAT_ENT_EOF', async (t) => {
    const rows: [12 | 16 | 32, number, number][] = [
      [12, 0xff6, 0xff6], [12, 0xff7, FAT_ENT_EOF], [12, 0xff8, FAT_ENT_EOF], [12, 0xfff, FAT_ENT_EOF],
      [16, 0xfff6, 0xfff6], [16, 0xfff7, FAT_ENT_EOF], [16, 0xffff, FAT_ENT_EOF],
      [32, 0x0ffffff6, 0x0ffffff6], [32, 0x0ffffff7, FAT_ENT_EOF], [32, 0x0ffffff8, FAT_ENT_EOF],
      [12, 0, 0], [16, 0, 0], [32, 0, 0],
    ];
    for (const [bits, raw, want] of rows) {
      const fat = new Uint8Array(64);
      fat_ent_set(fat, bits, 5, raw);
      t.equal(fat_ent_get(fat, bits, 5), want, `FAT${bits} 0x${raw.toString(16)}`);
    }
  });
  t.test('FAT32 keeps the top 4 bits', async (t) => {
    const fat = new Uint8Array(16);
    fat[11] = 0xa0;
    fat_ent_set(fat, 32, 2, EOF_FAT32);
    t.equal(fat[11], 0xaf);
    t.equal(fat_ent_get_raw(fat, 32, 2), EOF_FAT32, 'read masks them off');
    fat_ent_set(fat, 32, 2, 0x01234567);
    t.same([...fat.subarray(8, 12)], [0x67, 0x45, 0x23, 0xa1]);
  });
  t.test('FAT16 little-endian', async (t) => {
    const fat = new Uint8Array(16);
    fat_ent_set(fat, 16, 3, 0xbeef);
    t.same([...fat.subarray(6, 8)], [0xef, 0xbe]);
  });
});

t.test('directory entries', async (t) => {
  const de = msdos_dir_entry_new('README  TXT', ATTR_ARCH);
  Object.assign(de, { lcase: 0x18, ctime_cs: 199, ctime: 0x1234, cdate: 0x5678, adate: 0x9abc, time: 0xdef0, date: 0x1357, size: 0xfffffffe });
  fat_set_start(de, 0x0abcdef1);
  const buf = new Uint8Array(64);
  msdos_dir_entry_encode(de, buf, 32);
  t.same(msdos_dir_entry_decode(buf, 32), de, 'round trip');
  t.same([...buf.subarray(32 + 20, 32 + 22)], [0xbc, 0x0a], 'starthi at 20');
  t.same([...buf.subarray(32 + 26, 32 + 28)], [0xf1, 0xde], 'start at 26');
  t.equal(fat_get_start(de, 32), 0x0abcdef1);
  t.equal(fat_get_start(de, 16), 0xdef1, 'starthi ignored below FAT32');
  t.equal(fat_checksum('VMLINUX    '), 44);
  t.equal(fat_checksum('README  TXT'), 115);
  t.equal(fat_checksum('ABCDEFGHA  '), 98);
});

t.test('long-name slots', async (t) => {
  t.test('13 units fill one slot exactly: no terminator', async (t) => {
    const s = vfat_split_long_name(str_to_uni('abcdefghijklm'), 0x42);
    t.equal(s.length, 1);
    t.equal(s[0]!.id, 1 | LAST_LONG_ENTRY);
    t.equal(s[0]!.attr, ATTR_EXT);
    t.equal(uni_to_str(msdos_dir_slot_name(s[0]!)), 'abcdefghijklm');
  });
  t.test('14 units: 0x0000 then 0xFFFF padding', async (t) => {
    const s = vfat_split_long_name(str_to_uni('abcdefghijklmn'), 0x42);
    t.same(s.map((x) => x.id), [0x42, 0x01], 'last slot first on disk');
    t.same([...msdos_dir_slot_name(s[0]!)], [0x6e, 0, ...Array(11).fill(0xffff)]);
  });
  t.test('255 units take 20 slots', async (t) => {
    const s = vfat_split_long_name(str_to_uni('x'.repeat(255)), 0);
    t.equal(s.length, 20);
    t.equal(s[0]!.id, 20 | LAST_LONG_ENTRY);
  });

  const de = msdos_dir_entry_new('ALONGF~1TXT', ATTR_ARCH);
  const name = 'A long file name.txt';
  const rec = vfat_encode_record(de, str_to_uni(name));

  t.test('slot byte layout', async (t) => {
    t.equal(rec.length, 3 * 32);
    t.equal(rec[0], 0x42);
    t.equal(rec[11], ATTR_EXT);
    t.equal(rec[13], fat_checksum(de.name));
    t.same([...rec.subarray(26, 28)], [0, 0], 'start 0');
    t.same([...rec.subarray(1, 5)], [0x61, 0, 0x6d, 0], 'name0_4 of the last slot: "am"');
    t.same(msdos_dir_slot_name(msdos_dir_slot_decode(rec, 32)), str_to_uni('A long file n'));
  });

  const dir = (...parts: Uint8Array[]) => {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0) + 64);
    let o = 0;
    for (const p of parts) (out.set(p, o), (o += p.length));
    return out;
  };
  const records = (buf: Uint8Array) =>
    [...fat_dir_records(buf)].map((r) => ({ short: String.fromCharCode(...r.de.name), long: r.longName && uni_to_str(r.longName), slots: r.nrSlots }));

  t.test('reassembly', async (t) => {
    t.same(records(dir(rec)), [{ short: 'ALONGF~1TXT', long: name, slots: 2 }], 'round trip');

    const swapped = dir(rec.slice(32, 64), rec.slice(0, 32), rec.slice(64));
    t.same(records(swapped), [{ short: 'ALONGF~1TXT', long: null, slots: 0 }], 'slots out of order: short name only');

    const badsum = rec.slice();
    badsum[64] = 0x42; /* 'B' instead of 'A': the alias no longer matches */
    t.same(records(dir(badsum)), [{ short: 'BLONGF~1TXT', long: null, slots: 0 }], 'checksum mismatch: short name only');

    const deleted = rec.slice();
    deleted[64] = DELETED_FLAG;
    t.same(records(dir(deleted)), [], 'deleted 8.3 entry drops the record');

    const plain = vfat_encode_record(msdos_dir_entry_new('PLAIN   TXT', ATTR_ARCH), null);
    t.same(records(dir(rec.slice(0, 32), plain)), [{ short: 'PLAIN   TXT', long: null, slots: 0 }], 'orphan slot before a plain entry');

    const other = vfat_encode_record(msdos_dir_entry_new('OTHER   TXT', ATTR_ARCH), str_to_uni('other file.txt'));
    t.same(records(dir(rec.slice(0, 32), other)), [{ short: 'OTHER   TXT', long: 'other file.txt', slots: 2 }], 'interrupted run restarts at the next LAST slot');

    const gap = new Uint8Array(32);
    t.same(records(dir(plain, gap, rec)).length, 2, 'a zero entry does not end the directory for Linux');
    t.same([...fat_dir_records(dir(plain, gap, rec), { stopAtZero: true })].length, 1, 'but does with stopAtZero');

    const label = vfat_encode_record(msdos_dir_entry_new('MY VOLUME  ', ATTR_VOLUME), null);
    const dotdir = vfat_encode_record(msdos_dir_entry_new('.          ', ATTR_DIR), null);
    t.same(records(dir(label, dotdir, rec)).map((r) => r.short), ['.          ', 'ALONGF~1TXT'], 'volume label skipped');
    t.same(fat_find_volume_label(dir(label, rec)), latin1('MY VOLUME  '));
    t.same([...fat_dir_records(dir(rec), { isvfat: false })].map((r) => r.longName), [null], 'msdos mode ignores slots');
  });
});
