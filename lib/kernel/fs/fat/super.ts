/*
 * vfat superblock (fs/fat/inode.c's super half, fs/fat/namei_vfat.c's registration):
 * mount options as Linux parses them, fat_fill_super (fat_read_bpb, the geometry, FSInfo,
 * the dirty bit through fat_set_state, the root inode), statfs, sync_fs, remount and
 * put_super. A boot sector it cannot use is refused with Linux's message and EINVAL.
 *
 * The dirty bit (bit 0 of the boot sector's state byte) is set while the volume is
 * mounted read-write and cleared at a clean unmount, as Linux's fat_set_state does; a
 * volume found dirty is mounted with Linux's warning and left dirty for fsck.
 */
import type { dentry, file_system_type, inode, super_block, super_operations } from '../../include/fs.js';
import { FS_REQUIRES_DEV, SB_RDONLY } from '../../include/fs.js';
import { err } from '../../include/errno.js';
import { EINVAL, EIO, type statfs } from '../../include/uapi.js';
import { mutex } from '../../kernel/wait.js';
import { d_make_root } from '../dcache.js';
import { register_filesystem } from '../super.js';
import { iput } from '../inode.js';
import {
  FAT_MAX_FILESIZE, MSDOS_SB, MSDOS_SUPER_MAGIC, msdos_inode_info, type fat_mount_options, type FatSbInfo, type msdos_sb_info,
} from './fat.js';
import {
  BS16_STATE, BS32_STATE, FAT_START_ENT, FAT_STATE_DIRTY, MAX_FAT12, MAX_FAT16, MAX_FAT32, MSDOS_DIR_ENTRY_SIZE,
  fat_boot_sector_decode, fat_fsinfo_decode, fat_is_fsinfo, fat_valid_media, type fat_boot_sector, type fat_boot_fsinfo,
} from './layout.js';
import { vfat_shortname_flags, type VfatShortnameOption } from './names.js';
import { fat_msg } from './misc.js';
import { fat_clusters_flush, fat_count_free_clusters } from './fatent.js';
import { fat_evict_inode, fat_read_root, fat_write_inode } from './inode.js';
import { bdevBlockOps } from './blockdev.js';
import { sb_min_blocksize, sb_set_blocksize } from '../../block/bdev.js';

/* ---- options (parse_options) ---- */

export function fat_default_options(): fat_mount_options {
  return {
    fs_uid: 0, fs_gid: 0, fs_fmask: 0o022, fs_dmask: 0o022, allow_utime: -1, allow_utime_set: false,
    codepage: 437, iocharset: 'utf8', shortname: vfat_shortname_flags('mixed'), shortname_name: 'mixed',
    name_check: 'n', errors: 'remount-ro', quiet: false, showexec: false, sys_immutable: false, dotsOK: true,
    isvfat: true, utf8: true, unicode_xlate: false, numtail: true, flush: false, nocase: false, usefree: false,
    tz: { tz_set: false, time_offset: 0, sysTzMinutesWest: 0 }, rodir: false, discard: false, nfs: false,
    dos1xfloppy: false, fold: 'ascii',
  };
}

function parseOct(v: string): number | null { return /^[0-7]+$/.test(v) ? parseInt(v, 8) : null; }
function parseDec(v: string): number | null { return /^-?\d+$/.test(v) ? parseInt(v, 10) : null; }

/** parse_options: returns the options or throws EINVAL after Linux's message. */
export function fat_parse_options(sb: super_block, data: string, silent: boolean, base?: fat_mount_options): fat_mount_options {
  const o = base ? { ...base, tz: { ...base.tz } } : fat_default_options();
  const bad = (p: string): never => {
    if (!silent) fat_msg(sb, 'error', `Unrecognized mount option "${p}" or missing value`);
    throw err(EINVAL);
  };
  for (const p of (data ?? '').split(',')) {
    if (!p) continue;
    const eq = p.indexOf('=');
    const key = eq < 0 ? p : p.slice(0, eq);
    const val = eq < 0 ? null : p.slice(eq + 1);
    const need = (): string => (val === null || val === '' ? bad(p) : val);
    switch (key) {
      case 'uid': { const n = parseDec(need()); if (n === null || n < 0) bad(p); o.fs_uid = n!; break; }
      case 'gid': { const n = parseDec(need()); if (n === null || n < 0) bad(p); o.fs_gid = n!; break; }
      case 'umask': { const n = parseOct(need()); if (n === null) bad(p); o.fs_fmask = o.fs_dmask = n! & 0o777; break; }
      case 'dmask': { const n = parseOct(need()); if (n === null) bad(p); o.fs_dmask = n! & 0o777; break; }
      case 'fmask': { const n = parseOct(need()); if (n === null) bad(p); o.fs_fmask = n! & 0o777; break; }
      case 'allow_utime': { const n = parseOct(need()); if (n === null) bad(p); o.allow_utime = n! & 0o022; o.allow_utime_set = true; break; }
      case 'codepage': { const n = parseDec(need()); if (n !== 437) { if (!silent) fat_msg(sb, 'error', `IO charset cp${val} not found`); throw err(EINVAL); } o.codepage = n; break; }
      case 'iocharset': {
        const v = need().toLowerCase();
        if (v === 'utf8' || v === 'utf-8') { o.iocharset = 'utf8'; o.utf8 = true; }
        else if (v === 'iso8859-1' || v === 'ascii' || v === 'default') { o.iocharset = v; o.utf8 = false; }
        else { if (!silent) fat_msg(sb, 'error', `IO charset ${val} not found`); throw err(EINVAL); }
        break;
      }
      case 'utf8':
        if (val === null || val === '1' || val === 'yes' || val === 'true') o.utf8 = true;
        else if (val === '0' || val === 'no' || val === 'false') o.utf8 = false;
        else bad(p);
        break;
      case 'shortname': {
        const v = need() as VfatShortnameOption;
        if (!['lower', 'win95', 'winnt', 'mixed'].includes(v)) bad(p);
        o.shortname = vfat_shortname_flags(v); o.shortname_name = v;
        break;
      }
      case 'tz': if (need() !== 'UTC') bad(p); o.tz = { tz_set: true, time_offset: 0 }; break;
      case 'time_offset': {
        const n = parseDec(need());
        if (n === null || n < -24 * 60 || n > 24 * 60) bad(p);
        o.tz = { tz_set: true, time_offset: n! };
        break;
      }
      case 'errors': {
        const v = need();
        if (v !== 'continue' && v !== 'remount-ro' && v !== 'panic') bad(p);
        o.errors = v as fat_mount_options['errors'];
        break;
      }
      case 'check': {
        const v = need();
        if (/^(r|relaxed)$/.test(v)) o.name_check = 'r';
        else if (/^(n|normal)$/.test(v)) o.name_check = 'n';
        else if (/^(s|strict)$/.test(v)) o.name_check = 's';
        else bad(p);
        break;
      }
      case 'flush': o.flush = true; break;
      case 'quiet': o.quiet = true; break;
      case 'showexec': o.showexec = true; break;
      case 'sys_immutable': o.sys_immutable = true; break;
      case 'nonumtail': o.numtail = val === '0'; break;
      case 'numtail': o.numtail = true; break;
      case 'rodir': o.rodir = true; break;
      case 'uni_xlate': o.unicode_xlate = true; break;
      case 'usefree': o.usefree = true; break;
      case 'discard': o.discard = true; break;
      case 'nfs': o.nfs = true; break;
      case 'dos1xfloppy': o.dos1xfloppy = true; break;
      case 'debug': break;
      /* generic options that reach us in the data string */
      case 'rw': case 'ro': case 'defaults': case 'noatime': case 'relatime': case 'nodiratime':
      case 'nosuid': case 'nodev': case 'noexec': case 'sync': case 'async': break;
      default: bad(p);
    }
  }
  if (o.unicode_xlate) o.utf8 = false;
  return o;
}

export function fat_show_options(sb: super_block): string {
  const o = MSDOS_SB(sb).options;
  const parts = [`uid=${o.fs_uid}`, `gid=${o.fs_gid}`, `fmask=${o.fs_fmask.toString(8).padStart(4, '0')}`,
    `dmask=${o.fs_dmask.toString(8).padStart(4, '0')}`];
  if (o.allow_utime_set) parts.push(`allow_utime=${o.allow_utime.toString(8).padStart(4, '0')}`);
  parts.push(`codepage=${o.codepage}`, `iocharset=${o.iocharset}`, `shortname=${o.shortname_name}`);
  if (o.tz.tz_set) parts.push(o.tz.time_offset ? `time_offset=${o.tz.time_offset}` : 'tz=UTC');
  if (o.utf8) parts.push('utf8');
  if (!o.numtail) parts.push('nonumtail');
  for (const k of ['quiet', 'showexec', 'flush', 'rodir', 'usefree', 'discard', 'sys_immutable'] as const) if (o[k]) parts.push(k);
  parts.push(`errors=${o.errors}`);
  return parts.join(',');
}

/* ---- the boot sector: fat_read_bpb and fat_fill_super's geometry ---- */

function isPowerOf2(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/**
 * A boot sector fat_fill_super cannot use: Linux's message (unless `silent`) and EINVAL,
 * as fat_read_bpb and fat_fill_super do. The errno carries the message too.
 */
function fat_bogus(sb: super_block, silent: boolean, msg: string): never {
  if (!silent) fat_msg(sb, 'error', msg);
  throw err(EINVAL, msg);
}

/**
 * fat_read_bpb: the sanity checks Linux applies to a boot sector before trusting any
 * geometry in it, in Linux's order and with Linux's messages. Throws EINVAL.
 */
export function fat_read_bpb(sb: super_block, bs: fat_boot_sector, silent: boolean): void {
  if (!bs.reserved) fat_bogus(sb, silent, 'bogus number of reserved sectors');
  if (!bs.fats) fat_bogus(sb, silent, 'bogus number of FAT structure');
  /* Zero sectors-per-track or heads is legal: real volumes have it. */
  if (!fat_valid_media(bs.media)) fat_bogus(sb, silent, `invalid media value (0x${hex2(bs.media)})`);
  if (!isPowerOf2(bs.sector_size) || bs.sector_size < 512 || bs.sector_size > 4096)
    fat_bogus(sb, silent, `bogus logical sector size ${bs.sector_size}`);
  if (!isPowerOf2(bs.sec_per_clus)) fat_bogus(sb, silent, `bogus sectors per cluster ${bs.sec_per_clus}`);
  if (bs.fat_length === 0 && bs.fat32.length === 0) fat_bogus(sb, silent, 'bogus number of FAT sectors');
}

/**
 * fat_fill_super's geometry: validates with fat_read_bpb, then decides FAT32 the way Linux
 * does (16-bit FAT length is 0 and the 32-bit one is not) and FAT12 vs FAT16 by cluster
 * count (> MAX_FAT12 = 4084 clusters is FAT16), which agrees with Microsoft's rule
 * (fat_type_from_clusters) for every volume a conforming formatter made. A boot sector it
 * refuses: Linux's message (unless `silent`) and EINVAL.
 */
export function fat_fill_geometry(sb: super_block, bs: fat_boot_sector, silent: boolean): FatSbInfo {
  fat_read_bpb(sb, bs, silent);

  const isFat32 = bs.fat_length === 0 && bs.fat32.length !== 0;
  const sectorSize = bs.sector_size;
  const fatLength = isFat32 ? bs.fat32.length : bs.fat_length;
  const fatStart = bs.reserved;
  const dirStart = fatStart + bs.fats * fatLength;
  const dirEntries = bs.dir_entries;
  const dirPerBlock = sectorSize / MSDOS_DIR_ENTRY_SIZE;
  if (dirEntries % dirPerBlock) fat_bogus(sb, silent, `bogus number of directory entries (${dirEntries})`);

  const rootdirSectors = (dirEntries * MSDOS_DIR_ENTRY_SIZE) / sectorSize;
  const dataStart = dirStart + rootdirSectors;
  const totalSectors = bs.sectors !== 0 ? bs.sectors : bs.total_sect;
  /* Linux computes this in unsigned 32-bit arithmetic: a data area past the end wraps and
   * is then clamped by the FAT size below. Reproduce that rather than invent a check. */
  // bits32: u32 arithmetic, as fat_fill_super does it (a data start past the end wraps and fails below)
  let totalClusters = Math.floor(((totalSectors - dataStart) >>> 0) / bs.sec_per_clus);

  const fatBits: 12 | 16 | 32 = isFat32 ? 32 : totalClusters > MAX_FAT12 ? 16 : 12;
  const fatClusters = fat_calc_fat_clusters(fatBits, fatLength, sectorSize);
  totalClusters = Math.min(totalClusters, fatClusters - FAT_START_ENT);
  const maxFat = fatBits === 32 ? MAX_FAT32 : fatBits === 16 ? MAX_FAT16 : MAX_FAT12;
  if (totalClusters > maxFat) fat_bogus(sb, silent, `count of clusters too big (${totalClusters})`);

  let fsinfoSector = 0;
  if (isFat32) fsinfoSector = bs.fat32.info_sector === 0 ? 1 : bs.fat32.info_sector;
  const ext = isFat32 ? bs.fat32 : bs.fat16;
  return {
    sectorSize,
    sec_per_clus: bs.sec_per_clus,
    cluster_size: sectorSize * bs.sec_per_clus,
    fats: bs.fats,
    fat_bits: fatBits,
    fat_start: fatStart,
    fat_length: fatLength,
    dir_start: dirStart,
    dir_entries: dirEntries,
    data_start: dataStart,
    totalSectors,
    totalClusters,
    max_cluster: totalClusters + FAT_START_ENT,
    root_cluster: isFat32 ? bs.fat32.root_cluster : 0,
    fsinfo_sector: fsinfoSector,
    backupBoot: isFat32 ? bs.fat32.backup_boot : 0,
    fat32Flags: isFat32 ? bs.fat32.flags : 0,
    dirty: (ext.state & FAT_STATE_DIRTY) !== 0,
    vol_id: ext.vol_id,
    media: bs.media,
  };
}

/** calc_fat_clusters: how many entries the FAT can hold (12-bit entries divide last). */
export function fat_calc_fat_clusters(fatBits: number, fatLength: number, sectorSize: number): number {
  if (fatBits !== 12) return Math.floor((sectorSize * 8) / fatBits) * fatLength;
  return Math.floor((fatLength * sectorSize * 8) / 12);
}

/** Microsoft's rule (fatgen103): the FAT type is decided by the count of data clusters alone. */
export function fat_type_from_clusters(clusters: number): 12 | 16 | 32 {
  if (clusters < 4085) return 12;
  if (clusters < 65525) return 16;
  return 32;
}

/**
 * What fat_fill_super takes from the FSInfo sector: IS_FSINFO decides whether the two hints
 * are used at all (a wrong signature is a warning, unless `silent`, and the hints are
 * ignored: free count unknown, next-free search from the start). A free count above the
 * volume's cluster count becomes unknown, and the next-free hint is reduced modulo
 * max_cluster and raised to 2.
 */
export function fat_fsinfo_check(
  sb: super_block,
  fsi: fat_boot_fsinfo,
  sbi: FatSbInfo,
  silent: boolean,
): { freeClusters: number; prevFree: number } {
  if (!fat_is_fsinfo(fsi)) {
    if (!silent)
      fat_msg(
        sb,
        'warn',
        `Invalid FSINFO signature: 0x${fsi.signature1.toString(16).padStart(8, '0')}, ` +
          `0x${fsi.signature2.toString(16).padStart(8, '0')} (sector = ${sbi.fsinfo_sector})`,
      );
    return { freeClusters: -1, prevFree: FAT_START_ENT };
  }
  let freeClusters = fsi.free_clusters === 0xffffffff ? -1 : fsi.free_clusters;
  if (freeClusters !== -1 && freeClusters > sbi.totalClusters) freeClusters = -1;
  let prevFree = fsi.next_cluster % sbi.max_cluster;
  if (prevFree < FAT_START_ENT) prevFree = FAT_START_ENT;
  return { freeClusters, prevFree };
}

/* ---- the dirty bit (fat_set_state) ---- */

/**
 * Where Linux (fat_set_state) and fsck.fat keep "mounted, not cleanly unmounted": bit 0 of
 * the BPB state byte, 0x25 on FAT12/16 and 0x41 on FAT32. Linux never touches the FAT[1]
 * flags (fatent.ts's fat_ent1_* are for Windows-made volumes only).
 */
export function fat_state_offset(fatBits: number): number {
  return fatBits === 32 ? BS32_STATE : BS16_STATE;
}

export function fat_get_state_dirty(boot: Uint8Array, fatBits: number): boolean {
  return (boot[fat_state_offset(fatBits)]! & FAT_STATE_DIRTY) !== 0;
}

/** fat_set_state's change to the boot-sector bytes: the dirty bit set or cleared. */
export function fat_set_state_bytes(boot: Uint8Array, fatBits: number, set: boolean): void {
  const off = fat_state_offset(fatBits);
  if (set) boot[off] = boot[off]! | FAT_STATE_DIRTY;
  else boot[off] = boot[off]! & ~FAT_STATE_DIRTY;
}

/**
 * fat_set_state: the dirty bit in the boot sector, written through at once. Called with
 * set=true at a read-write mount and set=false at unmount, but a volume that was already
 * dirty at mount time is left alone: only fsck may clear someone else's dirt.
 */
export async function fat_set_state(sb: super_block, set: boolean): Promise<void> {
  const sbi = MSDOS_SB(sb);
  if (sbi.dirty) return;
  const bh = await sbi.bops.bread(0);
  const off = fat_state_offset(sbi.fat_bits);
  const before = bh.b_data[off];
  fat_set_state_bytes(bh.b_data, sbi.fat_bits, set);
  const changed = bh.b_data[off] !== before;
  if (changed) sbi.bops.markDirty(bh, null);
  sbi.bops.brelse(bh);
  if (changed) await sbi.bops.syncBuffers(null);
}

/* ---- super operations ---- */

async function fat_statfs(dentry: dentry): Promise<statfs> {
  const sb = dentry.d_sb;
  const sbi = MSDOS_SB(sb);
  if (sbi.free_clusters === -1 || !sbi.free_clus_valid) await fat_count_free_clusters(sb);
  const free = sbi.free_clusters;
  return {
    type: MSDOS_SUPER_MAGIC, bsize: sbi.cluster_size, blocks: sbi.totalClusters, bfree: free, bavail: free,
    // f_namelen: FAT_LFN_LEN (255) UTF-16 units times NLS_MAX_CHARSET_SIZE (6) bytes, as Linux's.
    files: 0, ffree: 0, fsid: [sbi.vol_id & 0xffff, (sbi.vol_id >>> 16) & 0xffff], namelen: 255 * 6,
    frsize: sbi.cluster_size, flags: 0,
  };
}

async function fat_sync_fs(sb: super_block, wait: boolean): Promise<void> {
  const sbi = MSDOS_SB(sb);
  if (sb.s_flags & SB_RDONLY) return;
  await fat_clusters_flush(sb);
  await sbi.bops.syncBuffers(null);
  if (wait) await sbi.bops.flush();
}

async function fat_put_super(sb: super_block): Promise<void> {
  const sbi = MSDOS_SB(sb);
  if (!(sb.s_flags & SB_RDONLY)) {
    try {
      await fat_clusters_flush(sb);
      await sbi.bops.syncBuffers(null);
      await fat_set_state(sb, false);
      await sbi.bops.flush();
    } catch (e) {
      fat_msg(sb, 'error', `unable to write the volume state at unmount: ${(e as Error).message}`);
    }
  }
  sbi.bops.invalidate();
}

async function fat_remount(sb: super_block, flags: number, data: string): Promise<number> {
  const sbi = MSDOS_SB(sb);
  sbi.options = fat_parse_options(sb, data, false, sbi.options);
  const wasRo = (sb.s_flags & SB_RDONLY) !== 0;
  const willRo = (flags & SB_RDONLY) !== 0;
  if (!wasRo && willRo) {
    await fat_sync_fs(sb, true);
    await fat_set_state(sb, false);
  } else if (wasRo && !willRo) {
    await fat_set_state(sb, true);
  }
  return flags;
}

export const fat_sops: super_operations = {
  alloc_inode: (sb: super_block) => new msdos_inode_info(sb),
  write_inode: fat_write_inode,
  evict_inode: fat_evict_inode,
  put_super: fat_put_super,
  sync_fs: fat_sync_fs,
  statfs: fat_statfs,
  remount_fs: fat_remount,
  show_options: fat_show_options,
};

/* ---- fill_super ---- */

/** fat_fill_super for vfat. */
export async function fat_fill_super(sb: super_block, data: string, silent: boolean): Promise<void> {
  const bdev = sb.s_bdev;
  if (!bdev) throw err(EINVAL);
  const options = fat_parse_options(sb, data, silent);
  // sb_min_blocksize: the device's logical block size, at least 512. The device's buffer
  // cache must use the same size as our buffers (set_blocksize).
  const lbs = await sb_min_blocksize(sb, 512);
  if (!lbs) {
    fat_msg(sb, 'error', 'unable to set blocksize');
    throw err(EINVAL);
  }
  const mkOps = (bs: number) => bdevBlockOps(bdev, bs);
  let bops = mkOps(lbs);
  let boot: Uint8Array;
  try {
    const bh = await bops.bread(0);
    boot = bh.b_data.slice();
    bops.brelse(bh);
  } catch {
    fat_msg(sb, 'error', 'unable to read boot sector');
    throw err(EIO);
  }
  const g = fat_fill_geometry(sb, fat_boot_sector_decode(boot), silent);
  if (g.totalClusters < 1) fat_bogus(sb, silent, 'bogus number of clusters');
  if (g.sectorSize !== lbs) {
    if (!(await sb_set_blocksize(sb, g.sectorSize))) {
      fat_msg(sb, 'error', `unable to set blocksize ${g.sectorSize}`);
      throw err(EINVAL);
    }
    bops = mkOps(g.sectorSize);
  }
  if (g.totalSectors * g.sectorSize > bdev.bd_nr_sectors * 512 && !silent) {
    fat_msg(sb, 'warn', `FAT volume (${g.totalSectors} sectors) is bigger than the device`);
  }
  const mirrorOff = g.fat_bits === 32 && (g.fat32Flags & 0x80) !== 0;
  const active = mirrorOff ? Math.min(g.fat32Flags & 0xf, g.fats - 1) : 0;
  const sbi: msdos_sb_info = {
    ...g,
    options,
    bops,
    blocksize: g.sectorSize,
    blocksizeBits: Math.log2(g.sectorSize),
    dir_per_block: g.sectorSize / 32,
    dir_per_block_bits: Math.log2(g.sectorSize / 32),
    free_clusters: -1,
    free_clus_valid: false,
    prev_free: FAT_START_ENT,
    fsinfo_dirty: false,
    fatCopies: mirrorOff ? [active] : Array.from({ length: g.fats }, (_, i) => i),
    fatActive: active,
    fat_lock: new mutex('fat_lock'),
    s_lock: new mutex('s_lock'),
    inode_hashtable: new Map(),
    ino_of_pos: new Map(),
    next_ino: 2,
    tailSeed: (g.vol_id ^ 0x5a5a) >>> 0,
  };
  sb.s_fs_info = sbi;
  sb.s_blocksize = g.sectorSize;
  sb.s_blocksize_bits = sbi.blocksizeBits;
  sb.s_magic = MSDOS_SUPER_MAGIC;
  sb.s_op = fat_sops;
  sb.s_maxbytes = FAT_MAX_FILESIZE;
  sb.s_time_gran = 10_000_000; // creation time: 10 ms; mtime and atime are truncated further
  sb.s_time_min = 315532800 - (options.tz.tz_set ? options.tz.time_offset * 60 : 0);
  sb.s_time_max = 4354819198 - (options.tz.tz_set ? options.tz.time_offset * 60 : 0);
  if (g.fat_bits === 32) {
    try {
      const fbh = await bops.bread(g.fsinfo_sector);
      const fsi = fat_fsinfo_decode(fbh.b_data);
      bops.brelse(fbh);
      const c = fat_fsinfo_check(sb, fsi, g, silent);
      sbi.free_clusters = c.freeClusters;
      sbi.prev_free = c.prevFree;
      if (options.usefree && sbi.free_clusters !== -1) sbi.free_clus_valid = true;
    } catch {
      fat_msg(sb, 'error', 'bread failed, FSINFO block');
      throw err(EIO);
    }
  }
  if (g.dirty && !silent) {
    fat_msg(sb, 'warn', 'Volume was not properly unmounted. Some data may be corrupt. Please run fsck.');
  }
  let root: inode | null = null;
  try {
    root = await fat_read_root(sb);
    if (!(sb.s_flags & SB_RDONLY)) await fat_set_state(sb, true);
    sb.s_root = d_make_root(root);
  } catch (e) {
    if (root) await iput(root);
    if (!silent) fat_msg(sb, 'error', 'get root inode failed');
    throw e;
  }
}

export const vfat_fs_type: file_system_type = {
  name: 'vfat',
  fs_flags: FS_REQUIRES_DEV,
  fill_super: fat_fill_super,
};

register_filesystem(vfat_fs_type);
