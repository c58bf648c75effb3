/*
 * The codecs against real images: mkfs.vfat makes them, mtools fills them, our decoders must
 * see what mdir/mshowfat see; then our encoders write entries and chains that fsck.vfat
 * accepts and mtools reads back.
 */
import t from 'tap';
import { mkdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import {
  ATTR_ARCH,
  ATTR_DIR,
  DELETED_FLAG,
  EOF_FAT32,
  FAT_FSINFO_SIG1,
  FAT_FSINFO_SIG2,
  fat_boot_sector_decode,
  fat_fsinfo_decode,
  fat_fsinfo_encode,
  msdos_dir_entry_new,
  type msdos_dir_entry,
} from '../../lib/kernel/fs/fat/layout.js';
import { fat_get_start, fat_set_start } from '../../lib/kernel/fs/fat/fat.js';
import { fat_is_dot } from '../../lib/kernel/fs/fat/dir.js';
import { vfat_encode_record } from '../../lib/kernel/fs/fat/namei_vfat.js';
import { fat_fsinfo_check, fat_set_state_bytes } from '../../lib/kernel/fs/fat/super.js';
import {
  fat_parse_short,
  msdos_name_eq,
  str_to_uni,
  uni_to_str,
  vfat_create_shortname,
  vfat_shortname_flags,
  type VfatShortnameOption,
} from '../../lib/kernel/fs/fat/names.js';
import { FAT_TZ_UTC, fat_time_fat2unix, fat_time_unix2fat } from '../../lib/kernel/fs/fat/time.js';
import { FatImage, IMAGE_SB, fsck, mdir, type MdirEntry, mshowfat, run, scratch } from './fatimage.js';

const TYPES = [
  { name: 'FAT12', bits: 12, mkfs: ['-F', '12', '-s', '1'], kib: 2000 },
  { name: 'FAT16', bits: 16, mkfs: ['-F', '16', '-s', '2'], kib: 32768 },
  { name: 'FAT16, 2048-byte sectors', bits: 16, mkfs: ['-F', '16', '-S', '2048'], kib: 32768 },
  { name: 'FAT32', bits: 32, mkfs: ['-F', '32', '-s', '1'], kib: 70000 },
] as const;

const MTIME = 981173107; /* 2001-02-03 04:05:07 UTC: odd, so FAT keeps :06 */
const MIXED = vfat_shortname_flags('mixed');

function bytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

/* Source tree for mcopy: path (relative) -> content. */
const TREE: Record<string, Uint8Array> = {
  'A long file name.text': new TextEncoder().encode('long\n'),
  'readme.txt': new TextEncoder().encode('lower-case 8.3 name\n'),
  'Mixed.Txt': new TextEncoder().encode('mixed\n'),
  'café.txt': new TextEncoder().encode('non-ASCII 8.3\n'),
  '日本語ファイル名.txt': new TextEncoder().encode('CJK long name\n'),
  'a name that is much longer than thirteen units and spans several slots, really.dat': bytes(3000, 1),
  empty: new Uint8Array(0),
  'big.bin': bytes(200 * 1024, 2),
  'Sub Directory/inner.txt': new TextEncoder().encode('inner\n'),
  'Sub Directory/deeper/x.bin': bytes(5000, 3),
};

interface Seen {
  dir: string;
  de: msdos_dir_entry;
  long: string;
  short: string;
  path: string;
}

/** Walks the tree through our decoders, in directory order, like mdir -/ -a. */
function walk(img: FatImage): Seen[] {
  const out: Seen[] = [];
  const visit = (start: number, dir: string) => {
    const subdirs: [number, string][] = [];
    for (const r of img.records(start)) {
      const short = uni_to_str(fat_parse_short(r.de.name, r.de.lcase, MIXED));
      const long = r.longName ? uni_to_str(r.longName) : '';
      const path = `${dir === '/' ? '' : dir}/${long || short}`;
      out.push({ dir, de: r.de, long, short, path });
      if (r.de.attr & ATTR_DIR && !fat_is_dot(r.de.name)) subdirs.push([fat_get_start(r.de, img.sbi.fat_bits), path]);
    }
    for (const [s, p] of subdirs) visit(s, p);
  };
  visit(0, '/');
  return out;
}

function fatDate(de: msdos_dir_entry): { date: string; time: string } {
  const y = (de.date >> 9) + 1980;
  const m = (de.date >> 5) & 15;
  const d = de.date & 31;
  const p = (n: number) => String(n).padStart(2, '0');
  return { date: `${y}-${p(m)}-${p(d)}`, time: `${de.time >> 11}:${p((de.time >> 5) & 63)}` };
}

for (const type of TYPES) {
  t.test(`${type.name}: mkfs.vfat + mcopy, read with our codecs`, async (t) => {
    const dir = scratch(`read-${type.bits}-${type.mkfs.join('')}`);
    const img = `${dir}.img`;
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    t.teardown(() => rmSync(img, { force: true }));
    mkdirSync(`${dir}/Sub Directory/deeper`, { recursive: true });
    for (const [p, c] of Object.entries(TREE)) {
      writeFileSync(`${dir}/${p}`, c);
      utimesSync(`${dir}/${p}`, MTIME, MTIME);
    }
    writeFileSync(`${dir}.filler`, bytes(30 * 1024, 4));
    writeFileSync(`${dir}.frag`, bytes(60 * 1024, 5));
    t.teardown(() => rmSync(`${dir}.filler`, { force: true }));
    t.teardown(() => rmSync(`${dir}.frag`, { force: true }));

    run('mkfs.vfat', [...type.mkfs, '-C', img, String(type.kib)]);
    /* A hole in the middle, so frag.bin's chain is not contiguous. */
    run('mcopy', ['-i', img, `${dir}.filler`, '::filler']);
    run('mcopy', ['-s', '-m', '-i', img, ...Object.keys(TREE).filter((p) => !p.includes('/')).map((p) => `${dir}/${p}`), `${dir}/Sub Directory`, '::']);
    run('mdel', ['-i', img, '::filler']);
    if (type.bits === 32) {
      /* mtools allocates after the FSInfo hint: point it back at the hole (our encoder). */
      const raw = FatImage.load(img);
      const sec = raw.sector(raw.sbi.fsinfo_sector);
      fat_fsinfo_encode({ ...fat_fsinfo_decode(sec), next_cluster: 2 }, sec);
      writeFileSync(img, raw.img);
    }
    run('mcopy', ['-i', img, `${dir}.frag`, '::frag.bin']);
    t.equal(fsck(img).status, 0, 'fsck.vfat -n accepts the mtools image');

    const fi = FatImage.load(img);
    t.equal(fi.sbi.fat_bits, type.bits, `decided FAT${type.bits}`);

    t.test('boot sector, FATs, FSInfo', async (t) => {
      const boot = fat_boot_sector_decode(fi.img);
      t.equal(boot.boot_signature, 0xaa55);
      /* fsck.fat -v prints the geometry it derived: ours must agree field by field. */
      const info = fsck(img, ['-v']).out;
      const has = (re: string, what: string) => t.match(info, new RegExp(re), what);
      const g = fi.sbi;
      has(`\\b${g.sectorSize} bytes per logical sector`, 'sector size');
      has(`\\b${g.cluster_size} bytes per cluster`, 'cluster size');
      has(`\\b${g.fat_start} reserved sectors?\\b`, 'reserved sectors');
      has(`\\b${g.fats} FATs, ${g.fat_bits} bit entries`, 'FAT count and width');
      has(`\\(= ${g.fat_length} sectors\\)`, 'FAT length');
      has(`Data area starts at byte \\d+ \\(sector ${g.data_start}\\)`, 'data start');
      has(`\\b${g.totalClusters} data clusters`, 'cluster count');
      has(`\\b${g.totalSectors} sectors total`, 'total sectors');
      for (let i = 1; i < fi.sbi.fats; i++) t.same(fi.sector(fi.sbi.fat_start + i * fi.sbi.fat_length, fi.sbi.fat_length), fi.fat, `FAT copy ${i} equals FAT 0`);
      if (type.bits === 32) {
        has(`Root directory start at cluster ${g.root_cluster} `, 'root cluster');
        t.same(fi.sector(fi.sbi.backupBoot).subarray(0, 512), fi.img.subarray(0, 512), 'backup boot sector');
        const fsi = fat_fsinfo_decode(fi.sector(fi.sbi.fsinfo_sector));
        t.match(fsi, { signature1: FAT_FSINFO_SIG1, signature2: FAT_FSINFO_SIG2 });
        const c = fat_fsinfo_check(IMAGE_SB, fsi, fi.sbi, false);
        t.same(c.freeClusters, fi.countFree(), 'FSInfo free count = free FAT entries');
      } else {
        has(`Root directory starts at byte \\d+ \\(sector ${g.dir_start}\\)`, 'root directory start');
        has(`\\b${g.dir_entries} root directory entries`, 'root entries');
      }
    });

    const seen = walk(fi);
    const listed = mdir(img);

    t.test('directory listing equals mdir -/ -a', async (t) => {
      const ours: MdirEntry[] = seen.map((s) => ({
        dir: s.dir,
        short: s.short,
        size: s.de.attr & ATTR_DIR ? 'DIR' : s.de.size,
        ...fatDate(s.de),
        long: s.long,
      }));
      t.same(ours, listed);
      t.ok(seen.some((s) => s.long === '' && s.short === 'readme.txt' && s.de.lcase === 0x18), 'readme.txt: 8.3 with lcase bits, no long name');
      t.ok(seen.some((s) => s.long === 'A long file name.text' && s.short === 'ALONGF~1.TEX'), 'alias differs from long name');
      t.ok(seen.some((s) => s.long === '日本語ファイル名.txt'), 'CJK long name');
    });

    t.test('file contents by FAT chain', async (t) => {
      for (const [p, content] of Object.entries(TREE)) {
        const s = seen.find((x) => x.path === `/${p}`);
        if (!s) {
          t.fail(`missing /${p}`);
          continue;
        }
        const start = fat_get_start(s.de, fi.sbi.fat_bits);
        t.equal(s.de.size, content.length, `${p}: size`);
        t.same(fi.readFile(start, s.de.size), content, `${p}: content`);
        t.equal(start === 0 ? 0 : fi.chain(start).length, Math.ceil(content.length / fi.sbi.cluster_size), `${p}: chain length`);
        t.equal(fat_time_fat2unix(FAT_TZ_UTC, s.de.time, s.de.date).sec, MTIME - 1, `${p}: mtime`);
      }
      for (const name of ['big.bin', 'frag.bin']) {
        const s = seen.find((x) => x.path === `/${name}`)!;
        t.same(fi.chain(fat_get_start(s.de, fi.sbi.fat_bits)), mshowfat(img, `/${name}`), `${name}: chain equals mshowfat`);
      }
      const frag = seen.find((x) => x.path === '/frag.bin')!;
      const chain = fi.chain(fat_get_start(frag.de, fi.sbi.fat_bits));
      t.ok(chain.some((c, i) => i > 0 && c !== chain[i - 1]! + 1), 'frag.bin is fragmented');
      t.same(fi.readFile(chain[0]!, frag.de.size), readFileSync(`${dir}.frag`), 'frag.bin content');
      if (type.bits === 12) t.ok(fi.chain(fat_get_start(seen.find((x) => x.path === '/big.bin')!.de, 12)).includes(341), 'FAT12 chain crosses entry 341, which straddles FAT sectors 0 and 1');
    });
  });

  t.test(`${type.name}: entries written by our encoders pass fsck.vfat and mtools`, async (t) => {
    const img = `${scratch(`write-${type.bits}-${type.mkfs.join('')}`)}.img`;
    t.teardown(() => rmSync(img, { force: true }));
    t.teardown(() => rmSync(`${img}.out`, { force: true }));
    run('mkfs.vfat', [...type.mkfs, '-C', img, String(type.kib)]);
    const fi = FatImage.load(img);
    const { sbi } = fi;
    const now = fat_time_unix2fat(FAT_TZ_UTC, 1234567891, 250000000); /* 2009-02-13 23:31:31.25 */

    /* A directory we may write to: the FAT12/16 root area or the first cluster. */
    const dirView = (start: number) =>
      start === 0 && sbi.fat_bits !== 32 ? fi.sector(sbi.dir_start, (sbi.dir_entries * 32) / sbi.sectorSize) : fi.cluster(start === 0 ? sbi.root_cluster : start);

    const add = (dirStart: number, name: string, attr: number, start: number, size: number, opt: VfatShortnameOption = 'mixed') => {
      const buf = dirView(dirStart);
      const taken = fi.records(dirStart).map((r) => r.de.name);
      const uname = str_to_uni(name);
      const sn = vfat_create_shortname(uname, { shortname: vfat_shortname_flags(opt) }, (n) => taken.some((x) => msdos_name_eq(x, n)));
      if (typeof sn === 'number') throw new Error(`shortname ${sn}`);
      const de = msdos_dir_entry_new(sn.name, attr);
      Object.assign(de, { lcase: sn.lcase, time: now.time, date: now.date, ctime: now.time, cdate: now.date, ctime_cs: now.timeCs, adate: now.date, size });
      fat_set_start(de, start);
      const rec = vfat_encode_record(de, sn.isShortname ? null : uname);
      let run = 0;
      for (let off = 0; off < buf.length; off += 32) {
        run = buf[off] === 0 || buf[off] === DELETED_FLAG ? run + 1 : 0;
        if (run * 32 === rec.length) {
          buf.set(rec, off + 32 - rec.length);
          return sn;
        }
      }
      throw new Error('directory full');
    };
    const alloc = (n: number, skip = 0) => {
      const free = fi.freeClusters(n + skip);
      const chain = [free[0]!, ...free.slice(1 + skip)]; /* leave a hole after the first */
      chain.forEach((c, i) => fi.setEnt(c, i + 1 < chain.length ? chain[i + 1]! : EOF_FAT32));
      return chain;
    };
    const fill = (chain: number[], content: Uint8Array) =>
      chain.forEach((c, i) => fi.cluster(c).set(content.subarray(i * sbi.cluster_size, (i + 1) * sbi.cluster_size)));

    const big = bytes(Math.floor(3.5 * sbi.cluster_size), 9);
    const bigChain = alloc(4, 1);
    fill(bigChain, big);
    const bigSn = add(0, 'My Encoded Long File Name.txt', ATTR_ARCH, bigChain[0]!, big.length);
    const low = new TextEncoder().encode('lcase bits\n');
    const lowChain = alloc(1);
    fill(lowChain, low);
    const lowSn = add(0, 'lower.txt', ATTR_ARCH, lowChain[0]!, low.length, 'winnt');
    add(0, 'empty file', ATTR_ARCH, 0, 0);

    const dirChain = alloc(1);
    fi.cluster(dirChain[0]!).fill(0);
    add(0, 'Encoded Directory', ATTR_DIR, dirChain[0]!, 0);
    const dot = msdos_dir_entry_new('.          ', ATTR_DIR);
    const dotdot = msdos_dir_entry_new('..         ', ATTR_DIR);
    for (const d of [dot, dotdot]) Object.assign(d, { time: now.time, date: now.date, adate: now.date, cdate: now.date, ctime: now.time });
    fat_set_start(dot, dirChain[0]!);
    fat_set_start(dotdot, 0); /* the parent is the root: 0, also on FAT32 */
    fi.cluster(dirChain[0]!).set(vfat_encode_record(dot, null), 0);
    fi.cluster(dirChain[0]!).set(vfat_encode_record(dotdot, null), 32);
    const inner = bytes(sbi.cluster_size + 1, 10);
    const innerChain = alloc(2);
    fill(innerChain, inner);
    add(dirChain[0]!, 'inner file ünïcödé.bin', ATTR_ARCH, innerChain[0]!, inner.length);
    add(dirChain[0]!, 'emoji 😀 name.txt', ATTR_ARCH, 0, 0);

    if (sbi.fat_bits === 32) {
      const buf = fi.sector(sbi.fsinfo_sector);
      const fsi = fat_fsinfo_decode(buf);
      fat_fsinfo_encode({ ...fsi, free_clusters: fi.countFree(), next_cluster: innerChain[innerChain.length - 1]! }, buf);
    }
    writeFileSync(img, fi.img);

    const f = fsck(img);
    t.equal(f.status, 0, 'fsck.vfat -n exit status');
    t.equal(f.out.trim().split('\n').length, 2, `fsck.vfat -n reports nothing:\n${f.out}`);

    t.equal(String.fromCharCode(...bigSn.name), 'MYENCO~1TXT');
    t.ok(lowSn.isShortname && lowSn.lcase === 0x18, 'lower.txt needs no long name under winnt');

    const listed = mdir(img);
    const find = (dir: string, pred: (e: MdirEntry) => boolean) => listed.find((e) => e.dir === dir && pred(e));
    t.match(find('/', (e) => e.long === 'My Encoded Long File Name.txt'), { short: 'MYENCO~1.TXT', size: big.length, date: '2009-02-13', time: '23:31' });
    t.match(find('/', (e) => e.short === 'lower.txt'), { long: '', size: low.length });
    t.match(find('/', (e) => e.long === 'empty file'), { size: 0 });
    t.match(find('/', (e) => e.long === 'Encoded Directory'), { size: 'DIR' });
    t.match(find('/Encoded Directory', (e) => e.long === 'inner file ünïcödé.bin'), { size: inner.length });
    t.ok(find('/Encoded Directory', (e) => e.short === '.'), 'dot entry');

    run('mcopy', ['-n', '-i', img, '::/My Encoded Long File Name.txt', `${img}.out`]);
    t.same(new Uint8Array(readFileSync(`${img}.out`)), big, 'mcopy reads the content back');
    t.same(mshowfat(img, '/My Encoded Long File Name.txt'), bigChain, 'mshowfat sees our fragmented chain');
    run('mcopy', ['-o', '-n', '-i', img, '::/Encoded Directory/inner file ünïcödé.bin', `${img}.out`]);
    t.same(new Uint8Array(readFileSync(`${img}.out`)), inner, 'subdirectory file content');

    const back = walk(FatImage.load(img));
    t.ok(back.some((s) => s.path === '/Encoded Directory/emoji 😀 name.txt'), 'surrogate pair survives our own round trip');
    const mine = back.find((s) => s.long === 'My Encoded Long File Name.txt')!;
    t.same(fat_time_fat2unix(FAT_TZ_UTC, mine.de.ctime, mine.de.cdate, mine.de.ctime_cs), { sec: 1234567891, nsec: 250000000 }, 'creation time to 10 ms');

    t.test('dirty bit as fsck.vfat sees it', async (t) => {
      const raw = new Uint8Array(readFileSync(img));
      fat_set_state_bytes(raw, sbi.fat_bits, true);
      writeFileSync(img, raw);
      const dirty = fsck(img);
      /* fsck.fat reads only the state byte (0x25 / 0x41), so this proves where the bit is. */
      t.match(dirty.out, /Dirty bit is set/);
      fat_set_state_bytes(raw, sbi.fat_bits, false);
      writeFileSync(img, raw);
      t.equal(fsck(img).status, 0, 'clean again');
    });
  });
}
