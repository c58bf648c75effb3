/*
 * Test helper: a whole FAT image in memory, read and written only through the vfat codecs,
 * plus wrappers for the judges (mkfs.vfat, mtools, fsck.vfat).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mkdirSync, readFileSync } from 'node:fs';
import type { super_block } from '../../lib/kernel/include/fs.js';
import { FAT_ENT_EOF, FAT_ENT_FREE, FAT_START_ENT, fat_boot_sector_decode } from '../../lib/kernel/fs/fat/layout.js';
import { fat_valid_entry, type FatSbInfo } from '../../lib/kernel/fs/fat/fat.js';
import { fat_ent_get, fat_ent_set } from '../../lib/kernel/fs/fat/fatent.js';
import { fat_dir_records, type FatDirRecord } from '../../lib/kernel/fs/fat/dir.js';
import { fat_fill_geometry } from '../../lib/kernel/fs/fat/super.js';

/** The super_block the geometry checks name in their messages when an image is read offline. */
export const IMAGE_SB = { s_id: 'image' } as unknown as super_block;

export const SCRATCH = join(tmpdir(), 'lkl-ts-vfatcodec');
export const TOOL_ENV = { ...process.env, MTOOLS_SKIP_CHECK: '1', LC_ALL: 'C.UTF-8', TZ: 'UTC' };

export function scratch(name: string): string {
  mkdirSync(SCRATCH, { recursive: true });
  return `${SCRATCH}/${process.pid}-${name}`;
}

export function run(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { env: TOOL_ENV, encoding: 'utf8' });
}

export function fsck(img: string, extra: string[] = []): { status: number; out: string } {
  const r = spawnSync('fsck.vfat', ['-n', ...extra, img], { env: TOOL_ENV, encoding: 'utf8' });
  return { status: r.status ?? -1, out: r.stdout + r.stderr };
}

export class FatImage {
  readonly sbi: FatSbInfo;
  /** FAT #0, a view into the image. */
  readonly fat: Uint8Array;

  constructor(readonly img: Uint8Array) {
    this.sbi = fat_fill_geometry(IMAGE_SB, fat_boot_sector_decode(img.subarray(0, 512)), true);
    const s = this.sbi;
    this.fat = img.subarray(s.fat_start * s.sectorSize, (s.fat_start + s.fat_length) * s.sectorSize);
  }

  static load(path: string): FatImage {
    return new FatImage(new Uint8Array(readFileSync(path)));
  }

  sector(n: number, count = 1): Uint8Array {
    const ss = this.sbi.sectorSize;
    return this.img.subarray(n * ss, (n + count) * ss);
  }

  cluster(c: number): Uint8Array {
    const s = this.sbi;
    return this.sector((c - FAT_START_ENT) * s.sec_per_clus + s.data_start, s.sec_per_clus);
  }

  /**
   * The clusters of the chain from `start`, or an Error saying why the chain is broken
   * (free entry or out-of-range link, as fat_get_cluster reports; a loop, which Linux only
   * catches by the chain outgrowing the volume).
   */
  chain(start: number): number[] {
    const out: number[] = [];
    let c = start;
    while (true) {
      if (!fat_valid_entry(this.sbi, c)) throw new Error(`invalid cluster chain (i_pos ${start}) at ${c}`);
      out.push(c);
      if (out.length > this.sbi.totalClusters) throw new Error(`cluster chain loops (start ${start})`);
      const next = fat_ent_get(this.fat, this.sbi.fat_bits, c);
      if (next === FAT_ENT_EOF) return out;
      if (next === FAT_ENT_FREE) throw new Error(`chain of cluster ${start} runs into a free cluster at ${c}`);
      c = next;
    }
  }

  /** A directory's bytes: the FAT12/16 root area, or its clusters joined. */
  dirBytes(start: number): Uint8Array {
    if (start === 0 && this.sbi.fat_bits !== 32) return this.sector(this.sbi.dir_start, (this.sbi.dir_entries * 32) / this.sbi.sectorSize);
    const c = this.chain(start === 0 ? this.sbi.root_cluster : start);
    const out = new Uint8Array(c.length * this.sbi.cluster_size);
    c.forEach((cl, i) => out.set(this.cluster(cl), i * this.sbi.cluster_size));
    return out;
  }

  records(start: number): FatDirRecord[] {
    return [...fat_dir_records(this.dirBytes(start))];
  }

  readFile(start: number, size: number): Uint8Array {
    if (start === 0) return new Uint8Array(0);
    const out = new Uint8Array(this.chain(start).length * this.sbi.cluster_size);
    this.chain(start).forEach((cl, i) => out.set(this.cluster(cl), i * this.sbi.cluster_size));
    return out.subarray(0, size);
  }

  /** Sets an entry in every FAT copy. */
  setEnt(entry: number, value: number): void {
    const s = this.sbi;
    for (let i = 0; i < s.fats; i++) fat_ent_set(this.sector(s.fat_start + i * s.fat_length, s.fat_length), s.fat_bits, entry, value);
  }

  /** n free clusters, lowest first. */
  freeClusters(n: number): number[] {
    const out: number[] = [];
    for (let c = FAT_START_ENT; c < this.sbi.max_cluster && out.length < n; c++) if (fat_ent_get(this.fat, this.sbi.fat_bits, c) === 0) out.push(c);
    if (out.length < n) throw new Error('volume full');
    return out;
  }

  countFree(): number {
    let n = 0;
    for (let c = FAT_START_ENT; c < this.sbi.max_cluster; c++) if (fat_ent_get(this.fat, this.sbi.fat_bits, c) === 0) n++;
    return n;
  }
}

/** One line of `mdir -/ -a`. */
export interface MdirEntry {
  dir: string;
  short: string;
  size: number | 'DIR';
  date: string;
  time: string;
  long: string;
}

export function mdir(img: string): MdirEntry[] {
  const out: MdirEntry[] = [];
  let dir = '';
  for (const line of run('mdir', ['-/', '-a', '-i', img, '::']).split('\n')) {
    const d = /^Directory for ::(.*)$/.exec(line);
    if (d) {
      dir = d[1]!.replace(/\/$/, '') || '/';
      continue;
    }
    const m = /^(.{8}) (.{3}) +(<DIR>|[\d ]+?) +(\d{4}-\d\d-\d\d) +(\d+:\d\d)(?: {2}(.*))? ?$/u.exec(line);
    if (!m) continue;
    const base = m[1]!.trimEnd();
    const ext = m[2]!.trimEnd();
    out.push({
      dir,
      short: ext ? `${base}.${ext}` : base,
      size: m[3] === '<DIR>' ? 'DIR' : Number(m[3]!.replace(/ /g, '')),
      date: m[4]!,
      time: m[5]!,
      long: m[6] ?? '',
    });
  }
  return out;
}

/** `mshowfat` cluster list of one file. */
export function mshowfat(img: string, path: string): number[] {
  const out = run('mshowfat', ['-i', img, `::${path}`]);
  const clusters: number[] = [];
  for (const m of out.matchAll(/<(\d+)(?:-(\d+))?>/g)) {
    const a = Number(m[1]);
    const b = m[2] ? Number(m[2]) : a;
    for (let c = a; c <= b; c++) clusters.push(c);
  }
  return clusters;
}
