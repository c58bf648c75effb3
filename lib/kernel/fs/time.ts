/*
 * Inode timestamps (current_time, timestamp_truncate from fs/inode.c): "now" as the
 * filesystem can store it, truncated to s_time_gran and clamped to its range.
 */
import { ktime_get_real_ts64 } from '../kernel/timer.js';
import type { inode, super_block } from '../include/fs.js';
import type { timespec64 } from '../include/uapi.js';

export function timestamp_truncate(t: timespec64, sb: super_block): timespec64 {
  let { sec, nsec } = t;
  if (sec < sb.s_time_min) { sec = sb.s_time_min; nsec = 0; }
  if (sec > sb.s_time_max) { sec = sb.s_time_max; nsec = 0; }
  const gran = sb.s_time_gran;
  if (gran === 1) return { sec, nsec };
  if (gran >= 1e9) {
    // Coarser than a second (FAT's 2 s): truncate seconds too.
    const gs = gran / 1e9;
    return { sec: Math.floor(sec / gs) * gs, nsec: 0 };
  }
  return { sec, nsec: nsec - (nsec % gran) };
}

/** current_time(inode). */
export function current_time(inode: inode): timespec64 {
  return timestamp_truncate(ktime_get_real_ts64(), inode.i_sb);
}
export function tsCompare(a: timespec64, b: timespec64): number {
  return a.sec !== b.sec ? a.sec - b.sec : a.nsec - b.nsec;
}
export function tsEqual(a: timespec64, b: timespec64): boolean { return a.sec === b.sec && a.nsec === b.nsec; }
