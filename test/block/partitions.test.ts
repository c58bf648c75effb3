/*
 * Partition-table scanning (lib/kernel/block/partitions) against the tools that wrote the
 * tables: images made here with sfdisk / sgdisk, read back by our scanner and compared with
 * what `sfdisk --json` and `partx` report. Then damaged and hostile tables: backup-GPT
 * fallback, CRC failures, EBR loops, absurd numbers, and a byte-flipping fuzz that must
 * produce only warnings and in-bounds partitions. Scratch images live in /tmp/parts.
 */
import t from 'tap';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { crc32_le, efi_crc32 } from '../../lib/kernel/lib/crc32.js';
import { scan_partitions } from '../../lib/kernel/block/partitions/check.js';
import type { Partition, PartitionSource, ScanOptions } from '../../lib/kernel/block/partitions/check.js';

mkdirSync(join(tmpdir(), 'lkl-ts-parts'), { recursive: true });
const dir = mkdtempSync(join(tmpdir(), 'lkl-ts-parts', 'test-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1 << 20;

function sh(cmd: string, args: string[], input?: string): string {
  return execFileSync(cmd, args, { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
}

/** An in-memory disk; counts what the scanner reads so runaway reads show up. */
function memSource(img: Uint8Array, ss = 512): PartitionSource & { bytesRead: number; reads: number } {
  const src = {
    sectorSize: ss,
    sectors: Math.floor(img.length / ss),
    bytesRead: 0,
    reads: 0,
    async read(lba: number, count: number): Promise<Uint8Array> {
      if (lba < 0 || count <= 0 || (lba + count) * ss > img.length) throw new Error(`read out of range ${lba}+${count}`);
      src.bytesRead += count * ss;
      src.reads++;
      return img.slice(lba * ss, (lba + count) * ss);
    },
  };
  return src;
}

async function scan(img: Uint8Array, ss = 512, opts?: ScanOptions): Promise<{ parts: Partition[]; warnings: string[] }> {
  const warnings: string[] = [];
  const parts = await scan_partitions(memSource(img, ss), (m) => warnings.push(m), opts);
  return { parts, warnings };
}

function newImage(name: string, bytes: number): string {
  const p = join(dir, name);
  writeFileSync(p, '');
  truncateSync(p, bytes);
  return p;
}

/** `partx -P` rows, keyed by NR. */
function partx(img: string): Map<number, Record<string, string>> {
  const out = sh('partx', ['-P', '-o', 'NR,START,SECTORS,TYPE,UUID', img]);
  const rows = new Map<number, Record<string, string>>();
  for (const line of out.trim().split('\n')) {
    const r: Record<string, string> = {};
    for (const m of line.matchAll(/(\w+)="([^"]*)"/g)) r[m[1]] = m[2];
    rows.set(Number(r.NR), r);
  }
  return rows;
}

interface SfdiskPart { node: string; start: number; size: number; type: string; uuid?: string; name?: string; attrs?: string; bootable?: boolean }
function sfdiskJson(dev: string): { sectorsize: number; partitions: SfdiskPart[]; id: string } {
  return JSON.parse(sh('sfdisk', ['--json', dev])).partitiontable;
}
const nodeNo = (node: string): number => Number(/(\d+)$/.exec(node)![1]);

/* GPT surgery: recompute the CRCs after changing fields, so validation past the CRC runs. */
const dv = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);
function fixGptCrcs(img: Uint8Array, lba: number, ss = 512, fixArray = true): void {
  const h = img.subarray(lba * ss, lba * ss + ss);
  const v = dv(h);
  if (fixArray) {
    const entLba = Number(v.getBigUint64(72, true));
    const n = v.getUint32(80, true) * v.getUint32(84, true);
    if (n > 0 && n <= 4 * MiB && (entLba * ss + n) <= img.length)
      v.setUint32(88, efi_crc32(img.subarray(entLba * ss, entLba * ss + n)), true);
  }
  const hs = Math.min(v.getUint32(12, true), ss);
  v.setUint32(16, 0, true);
  v.setUint32(16, efi_crc32(h.subarray(0, hs)), true);
}

t.test('crc32 known answers', async (t) => {
  const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
  t.equal(efi_crc32(enc('123456789')), 0xcbf43926);
  t.equal(efi_crc32(enc('')), 0);
  t.equal(efi_crc32(enc('a')), 0xe8b7be43);
  t.equal(efi_crc32(enc('The quick brown fox jumps over the lazy dog')), 0x414fa339);
  t.equal(efi_crc32(new Uint8Array(32)), 0x190a55ad, '32 zero bytes');
  t.equal(efi_crc32(new Uint8Array(32).fill(0xff)), 0xff6cab0b, '32 0xff bytes');
  const buf = new Uint8Array(10000);
  for (let i = 0; i < buf.length; i++) buf[i] = (i * 2654435761) >>> 24;
  t.equal(efi_crc32(buf), zlib.crc32(buf), 'agrees with zlib');
  const chained = crc32_le(crc32_le(0xffffffff, buf.subarray(0, 3333)), buf.subarray(3333)) ^ 0xffffffff;
  t.equal(chained >>> 0, efi_crc32(buf), 'crc32_le chains');
  t.equal(efi_crc32(buf, 100, 50), zlib.crc32(buf.subarray(100, 150)), 'offset/length');
});

/* 2 primaries + an extended partition holding 2 logical ones. */
const mbrImg = newImage('mbr.img', 64 * MiB);
sh('sfdisk', ['-q', mbrImg], 'label: dos\nlabel-id: 0x12345678\n,10MiB,L,*\n,10MiB,S\n,,E\n,5MiB,L\n,,L\n');
const mbr = readFileSync(mbrImg);

t.test('MBR from sfdisk matches partx', async (t) => {
  const { parts, warnings } = await scan(mbr);
  t.same(warnings, []);
  const ref = partx(mbrImg);
  t.same(parts.map((p) => p.no), [...ref.keys()], 'numbers 1-3 primary/extended, 5-6 logical');
  t.same(parts.map((p) => p.no), [1, 2, 3, 5, 6]);
  for (const p of parts) {
    const r = ref.get(p.no)!;
    t.equal(p.start, Number(r.START), `p${p.no} start`);
    t.equal(p.type, Number(r.TYPE), `p${p.no} type`);
    t.equal(p.uuid, r.UUID, `p${p.no} PARTUUID`);
    /* Linux exposes the extended partition as 1 KiB; partx shows its whole extent. */
    t.equal(p.size, p.no === 3 ? 2 : Number(r.SECTORS), `p${p.no} size`);
  }
  t.same(parts.map((p) => p.bootable), [true, false, false, false, false]);
  const sf = sfdiskJson(mbrImg);
  for (const s of sf.partitions) {
    const p = parts.find((q) => q.no === nodeNo(s.node))!;
    t.equal(p.start, s.start, `${s.node} start vs sfdisk`);
    if (p.no !== 3) t.equal(p.size, s.size, `${s.node} size vs sfdisk`);
  }
});

/* sgdisk: three named partitions in entries 1, 2 and 4 (entry 3 unused). */
const gptImg = newImage('gpt.img', 64 * MiB);
sh('sgdisk', ['-n', '1:2048:+10M', '-c', '1:EFI system', '-t', '1:ef00',
  '-n', '2:0:+20M', '-c', '2:root', '-t', '2:8300',
  '-n', '4:0:0', '-c', '4:données ü', '-t', '4:8200', gptImg]);
sh('sgdisk', ['-A', '1:set:2', gptImg]);
const gpt = readFileSync(gptImg);
const gptRef = sfdiskJson(gptImg);
let gptParts: Partition[] = [];

t.test('GPT from sgdisk matches sfdisk --json, sgdisk -p and partx', async (t) => {
  const { parts, warnings } = await scan(gpt);
  t.same(warnings, []);
  gptParts = parts;
  t.same(parts.map((p) => p.no), [1, 2, 4], 'numbered by entry index, gaps kept');
  for (const s of gptRef.partitions) {
    const p = parts.find((q) => q.no === nodeNo(s.node))!;
    t.equal(p.start, s.start, `${s.node} start`);
    t.equal(p.size, s.size, `${s.node} size`);
    t.equal(p.type, s.type.toLowerCase(), `${s.node} type GUID`);
    t.equal(p.uuid, s.uuid!.toLowerCase(), `${s.node} unique GUID`);
    t.equal(p.name, s.name, `${s.node} name`);
    t.equal(p.bootable, s.attrs === 'LegacyBIOSBootable', `${s.node} legacy bootable`);
  }
  t.equal(parts[2].name, 'données ü', 'UTF-16LE name decoded');
  const px = partx(gptImg);
  for (const p of parts) {
    t.equal(p.start, Number(px.get(p.no)!.START));
    t.equal(p.size, Number(px.get(p.no)!.SECTORS));
  }
  /* sgdisk -p: "   1            2048           22527   10.0 MiB    EF00  EFI system" */
  const rows = sh('sgdisk', ['-p', gptImg]).split('\n').filter((l) => /^\s+\d+\s+\d+\s+\d+/.test(l));
  t.equal(rows.length, 3);
  for (const row of rows) {
    const [no, start, end] = row.trim().split(/\s+/).map(Number);
    const p = parts.find((q) => q.no === no)!;
    t.equal(p.start, start);
    t.equal(p.start + p.size - 1, end);
  }
});

t.test('GPT: corrupt primary header falls back to the backup', async (t) => {
  const img = new Uint8Array(gpt);
  img.fill(0xa5, 512 + 24, 512 + 40); /* my_lba, alternate_lba: the header CRC no longer matches */
  const { parts, warnings } = await scan(img);
  t.same(parts, gptParts);
  t.equal(warnings.length, 1);
  t.match(warnings[0], /Primary GPT is invalid.*CRC.*using alternate GPT/);

  const img2 = new Uint8Array(gpt);
  img2.fill(0, 512, 1024); /* primary header wiped */
  const r2 = await scan(img2);
  t.same(r2.parts, gptParts);
  t.match(r2.warnings, [/Primary GPT is invalid \(header signature is wrong\), using alternate/]);
});

t.test('GPT: corrupt entry array CRC is detected', async (t) => {
  const img = new Uint8Array(gpt);
  img[2 * 512 + 56] ^= 0x20; /* first entry's name, primary array */
  const { parts, warnings } = await scan(img);
  t.same(parts, gptParts, 'backup array used');
  t.match(warnings, [/Primary GPT is invalid \(partition entry array CRC is wrong\)/]);

  /* Both arrays damaged: no GPT, and msdos must not read the protective MBR as a table. */
  const last = img.length / 512 - 1;
  img[(last - 32) * 512 + 56] ^= 0x20; /* backup array sits in the 32 blocks before the backup header */
  const r2 = await scan(img);
  t.same(r2.parts, []);
  t.match(r2.warnings, [/no valid GPT: primary: partition entry array CRC is wrong; alternate: partition entry array CRC is wrong/]);
});

t.test('GPT: corrupt backup header, primary used with a warning', async (t) => {
  const img = new Uint8Array(gpt);
  img[img.length - 512 + 40] ^= 1;
  const { parts, warnings } = await scan(img);
  t.same(parts, gptParts);
  t.match(warnings, [/Alternate GPT is invalid.*using primary GPT/]);
});

t.test('GPT: image grown after the table was written (backup no longer at the end)', async (t) => {
  const img = new Uint8Array(gpt.length + MiB);
  img.set(gpt);
  const { parts, warnings } = await scan(img);
  t.same(parts, gptParts);
  t.ok(warnings.some((w) => /not at the end of the disk/.test(w)), 'compare_gpts complains');
});

t.test('GPT: protective MBR required unless force_gpt', async (t) => {
  const img = new Uint8Array(gpt);
  img.fill(0, 0, 512);
  t.same((await scan(img)).parts, []);
  t.same((await scan(img, 512, { force_gpt: true })).parts, gptParts);
  /* A hybrid MBR (0xEE plus a real entry) still means GPT. */
  const hyb = new Uint8Array(gpt);
  hyb[0x1be + 16 + 4] = 0x83;
  dv(hyb).setUint32(0x1be + 16 + 8, 2048, true);
  dv(hyb).setUint32(0x1be + 16 + 12, 20480, true);
  t.same((await scan(hyb)).parts, gptParts);
});

t.test('GPT: hostile header values are rejected without exceptions', async (t) => {
  const cases: [string, (v: DataView) => void, RegExp][] = [
    ['entry size 0', (v) => v.setUint32(84, 0, true), /partition entry size 0/],
    ['entry size 256', (v) => v.setUint32(84, 256, true), /partition entry size 256/],
    ['huge entry count', (v) => v.setUint32(80, 0xffffffff, true), /too large/],
    ['zero entries', (v) => v.setUint32(80, 0, true), /empty/],
    ['entry array beyond the end', (v) => v.setBigUint64(72, 0xfffffffffff0n, true), /beyond the device/],
    ['entry array straddling the end', (v) => v.setBigUint64(72, BigInt(gpt.length / 512 - 2), true), /beyond the device/],
    ['header size 0xffffffff', (v) => v.setUint32(12, 0xffffffff, true), /larger than a block/],
    ['header size 10', (v) => v.setUint32(12, 10, true), /too small/],
    ['first usable beyond end', (v) => v.setBigUint64(40, 1n << 62n, true), /first_usable_lba/],
    ['last usable below first', (v) => v.setBigUint64(48, 10n, true), /below first_usable_lba/],
    ['my_lba wrong', (v) => v.setBigUint64(24, 7n, true), /my_lba/],
  ];
  for (const [name, poke, why] of cases) {
    const img = new Uint8Array(gpt);
    const hdr = dv(img.subarray(512, 1024));
    poke(hdr);
    fixGptCrcs(img, 1);
    const src = memSource(img);
    const warnings: string[] = [];
    const parts = await scan_partitions(src, (m) => warnings.push(m));
    t.same(parts, gptParts, `${name}: backup used`);
    t.match(warnings, [why], `${name}: reason given`);
    t.ok(src.bytesRead < 64 * 1024, `${name}: read only ${src.bytesRead} bytes`);
  }
});

t.test('GPT: hostile entries are skipped with warnings', async (t) => {
  const img = new Uint8Array(gpt);
  const v = dv(img);
  const e = (i: number): number => 2 * 512 + i * 128;
  const e3 = e(2); /* the unused entry 3: give it a type, start beyond end */
  img.set(img.subarray(e(0), e(0) + 16), e3);
  v.setBigUint64(e3 + 32, 1n << 60n, true);
  v.setBigUint64(e3 + 40, (1n << 60n) + 5n, true);
  v.setBigUint64(e(1) + 32, 64000n, true); /* entry 2 ends before it starts */
  v.setBigUint64(e(3) + 40, 0xffffffffffffffffn, true); /* entry 4 ends past the device */
  fixGptCrcs(img, 1);
  const { parts, warnings } = await scan(img);
  t.same(parts.map((p) => p.no), [1]);
  t.equal(warnings.filter((w) => /partition 3 .*beyond the end/.test(w)).length, 1);
  t.equal(warnings.filter((w) => /partition 2 ends .* before it starts/.test(w)).length, 1);
  t.equal(warnings.filter((w) => /partition 4 .*beyond the end/.test(w)).length, 1);
});

/* EBR positions in the sfdisk image: the extended partition starts at 43008 (from partx),
 * its first EBR there, the second at the link in the first. */
function ebrs(img: Uint8Array): number[] {
  const v = dv(img);
  const ext = v.getUint32(0x1be + 2 * 16 + 8, true);
  const second = ext + v.getUint32(ext * 512 + 0x1be + 16 + 8, true);
  return [ext, second];
}

t.test('MBR: looping EBR chains terminate', async (t) => {
  const [ext, second] = ebrs(mbr);
  /* Second EBR links back to the first. */
  const img = new Uint8Array(mbr);
  const o = second * 512 + 0x1be + 16;
  img[o + 4] = 0x05;
  dv(img).setUint32(o + 8, 0, true);
  dv(img).setUint32(o + 12, 100, true);
  const { parts, warnings } = await scan(img);
  t.same(parts.map((p) => p.no), [1, 2, 3, 5, 6]);
  t.match(warnings, [/EBR chain loops back to sector 43008/]);

  /* First EBR links to itself and has no data partition. */
  const img2 = new Uint8Array(mbr);
  const o2 = ext * 512 + 0x1be;
  img2.fill(0, o2, o2 + 16);
  dv(img2).setUint32(o2 + 16 + 8, 0, true);
  const r2 = await scan(img2);
  t.same(r2.parts.map((p) => p.no), [1, 2, 3]);
  t.match(r2.warnings, [/loops/]);
});

t.test('MBR: absurd values give warnings and a shorter list', async (t) => {
  const sectors = mbr.length / 512;
  const img = new Uint8Array(mbr);
  const v = dv(img);
  const p = (slot: number): number => 0x1be + 16 * (slot - 1);
  v.setUint32(p(1) + 8, sectors + 10, true); /* start beyond the end */
  v.setUint32(p(2) + 12, 0xffffffff, true); /* size beyond the end */
  const [, second] = ebrs(mbr);
  v.setUint32(second * 512 + 0x1be + 8, 0xfffffff0, true); /* logical 6 starts past the end */
  const { parts, warnings } = await scan(img);
  t.same(parts.map((q) => q.no), [2, 3, 5]);
  t.equal(parts[0].size, sectors - parts[0].start, 'p2 truncated at the end of the device');
  t.match(warnings, [/p1 start \d+ is beyond EOD/, /p2 size \d+ extends beyond EOD, truncated/, /p6 start \d+ is beyond EOD/]);

  /* Extended partition pointing past the device: primary entries survive. */
  const img2 = new Uint8Array(mbr);
  dv(img2).setUint32(p(3) + 8, 0xfffffff0, true);
  const r2 = await scan(img2);
  t.same(r2.parts.map((q) => q.no), [1, 2]);
  t.ok(r2.warnings.some((w) => /cannot read EBR/.test(w)));

  /* Garbage boot indicator: not a partition table at all. */
  const img3 = new Uint8Array(mbr);
  img3[p(2)] = 0x12;
  t.same((await scan(img3)).parts, []);
});

t.test('MBR: a bare FAT volume is not a partition table', async (t) => {
  const fat = newImage('fat.img', 8 * MiB);
  sh('mkfs.vfat', [fat]);
  const r = await scan(readFileSync(fat));
  t.same(r, { parts: [], warnings: [] });
});

t.test('sources that fail or lie', async (t) => {
  const warnings: string[] = [];
  const bad: PartitionSource = { sectorSize: 512, sectors: 1000, read: async () => { throw new Error('EIO'); } };
  t.same(await scan_partitions(bad, (m) => warnings.push(m)), []);
  t.ok(warnings.some((w) => /read error/.test(w)));
  const short: PartitionSource = { sectorSize: 512, sectors: 1000, read: async () => new Uint8Array(3) };
  t.same(await scan_partitions(short, () => {}), []);
  for (const [ss, n] of [[1000, 10], [256, 10], [512, -1], [512, 2 ** 60], [512, 1.5]]) {
    const w: string[] = [];
    t.same(await scan_partitions({ sectorSize: ss, sectors: n, read: bad.read }, (m) => w.push(m)), []);
    t.equal(w.length, 1, `sectorSize ${ss} sectors ${n} refused`);
  }
  t.same(await scan_partitions({ sectorSize: 512, sectors: 0, read: bad.read }, () => {}), []);
  /* A disk of a single sector holding the start of a GPT. */
  t.same((await scan(gpt.subarray(0, 512))).parts, []);
});

t.test('fuzz: flipped bytes never throw, parts stay on the device, reads stay small', async (t) => {
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return (seed >>> 8) % n;
  };
  /* Small images, so each round's copy is cheap. */
  const smallMbrImg = newImage('small-mbr.img', 4 * MiB);
  sh('sfdisk', ['-q', smallMbrImg], 'label: dos\n,1MiB,L\n,512KiB,S\n,,E\n,512KiB,L\n,,L\n');
  const smallGptImg = newImage('small-gpt.img', 4 * MiB);
  sh('sgdisk', ['-n', '1:2048:+1M', '-c', '1:a', '-n', '2:0:+1M', '-c', '2:b', '-n', '4:0:0', '-c', '4:c', smallGptImg]);
  const smallMbr = readFileSync(smallMbrImg);
  const smallGpt = readFileSync(smallGptImg);
  t.equal((await scan(smallMbr)).parts.length, 5);
  t.equal((await scan(smallGpt)).parts.length, 3);
  const [ext, second] = ebrs(smallMbr);
  const mbrHot = [0, ext, second];
  let failures = 0;
  for (let round = 0; round < 2000; round++) {
    const isGpt = round % 2 === 0;
    const img = new Uint8Array(isGpt ? smallGpt : smallMbr);
    const flips = 1 + rnd(8);
    for (let i = 0; i < flips; i++) {
      const byte = isGpt
        ? rnd(2) ? 512 + rnd(92) : (rnd(2) ? 0x1be + rnd(66) : 1024 + rnd(4 * 128))
        : mbrHot[rnd(3)] * 512 + 0x1be + rnd(66);
      img[byte] = rnd(2) ? rnd(256) : img[byte] ^ (1 << rnd(8));
    }
    if (isGpt && rnd(2)) fixGptCrcs(img, 1);
    const src = memSource(img);
    try {
      const parts = await scan_partitions(src, () => {});
      for (const p of parts)
        if (!(p.start >= 0 && p.size > 0 && p.start + p.size <= src.sectors && p.no >= 1 && p.no < 256)) failures++;
      if (src.bytesRead > 5 * MiB || src.reads > 30000) failures++;
    } catch (e) {
      failures++;
      t.fail(`round ${round} threw ${String(e)}`);
    }
  }
  t.equal(failures, 0);
});

t.test('4 KiB logical blocks (loop device, sfdisk)', async (t) => {
  const img = newImage('k.img', 64 * MiB);
  let loop = '';
  try {
    loop = sh('losetup', ['-b', '4096', '-f', '--show', img]).trim();
  } catch {
    t.comment("no loop devices: skipped");
    return;
  }
  t.teardown(() => { sh('losetup', ['-d', loop]); });
  for (const table of ['label: gpt\n,4MiB,L\n,8MiB,S\n,,L\n', 'label: dos\n,4MiB,L\n,,E\n,8MiB,L\n,,L\n']) {
    sh('sfdisk', ['-q', '--wipe', 'always', loop], table);
    const ref = sfdiskJson(loop);
    t.equal(ref.sectorsize, 4096);
    const { parts, warnings } = await scan(readFileSync(img), 4096);
    t.same(warnings, []);
    t.same(parts.map((p) => p.no), ref.partitions.map((s) => nodeNo(s.node)));
    for (const s of ref.partitions) {
      const p = parts.find((q) => q.no === nodeNo(s.node))!;
      t.equal(p.start, s.start * 8, `${s.node} start in 512-byte sectors`);
      /* The extended partition shows one logical block (8 sectors) on a 4 KiB disk. */
      t.equal(p.size, s.type === '5' ? 8 : s.size * 8, `${s.node} size`);
    }
  }
});
