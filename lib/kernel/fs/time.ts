/*
 * Inode timestamps (current_time, timestamp_truncate from fs/inode.c): "now" as the
 * filesystem can store it, truncated to s_time_gran and clamped to its range.
 */
import { ktime_get_real_ts64 } from '../kernel/timer.js';
import type { Inode, super_block } from '../include/fs.js';
import type { Timespec } from '../include/uapi.js';

export function timestamp_truncate(t: Timespec, sb: super_block): Timespec {
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
export function current_time(inode: Inode): Timespec {
  return timestamp_truncate(ktime_get_real_ts64(), inode.i_sb);
}
export function tsCompare(a: Timespec, b: Timespec): number {
  return a.sec !== b.sec ? a.sec - b.sec : a.nsec - b.nsec;
}
export function tsEqual(a: Timespec, b: Timespec): boolean { return a.sec === b.sec && a.nsec === b.nsec; }
