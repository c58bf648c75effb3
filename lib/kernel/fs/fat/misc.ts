/*
 * Odds and ends of the vfat driver (fs/fat/misc.c): the one error function every check of
 * on-disk data reports through (fat_fs_error, honouring errors=), kernel messages
 * (fat_msg), and inode times <-> directory-entry times under the tz= / time_offset= options.
 *
 * Times: FAT keeps local time without a zone. Linux converts with tz=UTC / time_offset=
 * when given, else with sys_tz, which is UTC in our kernel (nobody calls settimeofday with
 * a zone). So the default here is UTC: an image written on a host with TZ=UTC by mtools
 * reads back with the same times.
 */
import { host } from '../../arch/cpu.js';
import { KERN_ERR, KERN_INFO, KERN_WARNING, printk } from '../../kernel/printk.js';
import { err, type Errno } from '../../include/errno.js';
import { SB_RDONLY, type inode, type super_block } from '../../include/fs.js';
import { EUCLEAN, type timespec64 } from '../../include/uapi.js';
import { MSDOS_SB } from './fat.js';
import type { msdos_dir_entry } from './layout.js';
import {
  fat_time_fat2unix, fat_time_unix2fat, fat_truncate_atime, fat_truncate_crtime,
  fat_truncate_mtime,
} from './time.js';

/** fat_msg: "FAT-fs (vda): ..." through printk. */
export function fat_msg(sb: super_block, level: 'error' | 'warn' | 'info', msg: string): void {
  const kern = level === 'error' ? KERN_ERR : level === 'warn' ? KERN_WARNING : KERN_INFO;
  printk(`${kern}FAT-fs (${sb.s_id}): ${msg}`);
}

/**
 * __fat_fs_error: report corruption found on disk and apply errors=: continue (just
 * report), remount-ro (the default: no more writes), panic. Returns the error for the
 * caller to throw (EUCLEAN "Structure needs cleaning", as fs/fat returns -EUCLEAN in
 * its checks, or EIO where Linux says EIO).
 */
export function fat_fs_error(sb: super_block, msg: string, errno = EUCLEAN): Errno {
  const sbi = MSDOS_SB(sb);
  const policy = sbi?.options.errors ?? 'remount-ro';
  if (!sbi?.options.quiet || policy !== 'continue') fat_msg(sb, 'error', `error, ${msg}`);
  if (policy === 'panic') host().panic(`FAT-fs (${sb.s_id}): fs panic from previous error`);
  else if (policy === 'remount-ro' && !(sb.s_flags & SB_RDONLY)) {
    sb.s_flags |= SB_RDONLY;
    fat_msg(sb, 'error', 'Filesystem has been set read-only');
  }
  return err(errno, msg);
}


/* ---- times (fat_time_fat2unix / fat_time_unix2fat / fat_truncate_time) ---- */

/** Inode times from an entry: mtime 2 s, atime a date, ctime = mtime, btime to 10 ms. */
export function fat_entry_times(sb: super_block, de: msdos_dir_entry): { mtime: timespec64; atime: timespec64; btime: timespec64 } {
  const tz = MSDOS_SB(sb).options.tz;
  const mtime = fat_time_fat2unix(tz, de.time, de.date, 0);
  const atime = fat_time_fat2unix(tz, 0, de.adate, 0);
  const btime = de.cdate ? fat_time_fat2unix(tz, de.ctime, de.cdate, de.ctime_cs) : { ...mtime };
  return { mtime, atime, btime };
}

/** Store an inode's times into an entry (creation time only when `withCreate`). */
export function fat_set_entry_times(sb: super_block, inode: inode, de: msdos_dir_entry, withCreate: boolean): void {
  const tz = MSDOS_SB(sb).options.tz;
  const m = fat_time_unix2fat(tz, inode.i_mtime.sec, inode.i_mtime.nsec);
  de.time = m.time;
  de.date = m.date;
  const a = fat_time_unix2fat(tz, inode.i_atime.sec, inode.i_atime.nsec);
  de.adate = a.date;
  if (withCreate) {
    const b = inode.i_btime ?? inode.i_mtime;
    const c = fat_time_unix2fat(tz, b.sec, b.nsec);
    de.ctime = c.time;
    de.cdate = c.date;
    de.ctime_cs = c.timeCs;
  }
}

/** fat_truncate_time for each kind: what the entry can hold of a time. */
export function fat_truncate_time(sb: super_block, t: timespec64, kind: 'mtime' | 'atime' | 'ctime' | 'crtime'): timespec64 {
  const tz = MSDOS_SB(sb).options.tz;
  switch (kind) {
    case 'mtime': return fat_truncate_mtime(t);
    /* Linux keeps ctime = mtime on disk; in core it is kept to 10 ms (s_time_gran). */
    case 'ctime':
    case 'crtime': return fat_truncate_crtime(t);
    case 'atime': return fat_truncate_atime(tz, t);
  }
}
