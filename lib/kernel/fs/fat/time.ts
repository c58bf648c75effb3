/*
 * FAT timestamps <-> Unix time, with Linux's semantics (fs/fat/misc.c: fat_time_fat2unix,
 * fat_time_unix2fat, fat_truncate_*). Pure arithmetic; the driver supplies the offset.
 *
 *   date: bits 0-4 day (1-31), 5-8 month (1-12), 9-15 year since 1980 (0-127)
 *   time: bits 0-4 seconds / 2 (0-29), 5-10 minutes, 11-15 hours
 *   ctime_cs: centiseconds 0..199 added to the creation time (the odd second lives here)
 *
 * FAT stores local time with no zone. Linux converts with one fixed offset, never with DST
 * rules: `tz=UTC` or `time_offset=MIN` (local = UTC + MIN minutes) when given at mount,
 * else the kernel's sys_tz.tz_minuteswest (set by settimeofday; 0 = UTC in LKL).
 */

const SECS_PER_MIN = 60;
const SECS_PER_HOUR = 60 * 60;
const SECS_PER_DAY = SECS_PER_HOUR * 24;
/* Days between 1970-01-01 and 1980-01-01 (two leap days). */
const DAYS_DELTA = 365 * 10 + 2;
/* 2100 - 1980: not a leap year, the only such year in FAT's range. */
const YEAR_2100 = 120;

/* Days before the 1st of each month in a non-leap year, indexed by FAT month (1-12).
 * Months 13-15 are not valid dates; Linux's table gives them 0, and so does ours. */
const DAYS_IN_YEAR = [0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 0, 0, 0];

function isLeapYear(y: number): boolean {
  return (y & 3) === 0 && y !== YEAR_2100;
}

/** The options that decide the FAT <-> UTC offset (struct fat_mount_options subset). */
export interface FatTzOptions {
  /** tz=UTC or time_offset= was given. */
  tz_set: boolean;
  /** Minutes east of UTC of the times on disk (tz=UTC sets 0). */
  time_offset: number;
  /** The kernel's sys_tz.tz_minuteswest, used when tz_set is false. */
  sysTzMinutesWest?: number;
}

export const FAT_TZ_UTC: FatTzOptions = { tz_set: true, time_offset: 0 };

/** fat_tz_offset: seconds to add to an on-disk (local) time to get UTC. */
export function fat_tz_offset(o: FatTzOptions): number {
  return (o.tz_set ? -o.time_offset : (o.sysTzMinutesWest ?? 0)) * SECS_PER_MIN;
}

export interface FatTimespec {
  sec: number;
  nsec: number;
}

/**
 * fat_time_fat2unix. Nonsense fields are not refused: month 0 and day 0 read as 1, as in
 * Linux, so a zeroed date (as adate often is) reads as 1980-01-01 local.
 */
export function fat_time_fat2unix(o: FatTzOptions, time: number, date: number, timeCs = 0): FatTimespec {
  const year = date >> 9;
  const month = Math.max(1, (date >> 5) & 0xf);
  const day = Math.max(1, date & 0x1f) - 1;

  let leapDay = Math.floor((year + 3) / 4);
  if (year > YEAR_2100) leapDay--;
  if (isLeapYear(year) && month > 2) leapDay++;

  let second = (time & 0x1f) << 1;
  second += ((time >> 5) & 0x3f) * SECS_PER_MIN;
  second += (time >> 11) * SECS_PER_HOUR;
  second += (year * 365 + leapDay + DAYS_IN_YEAR[month]! + day + DAYS_DELTA) * SECS_PER_DAY;
  second += fat_tz_offset(o);

  if (timeCs) return { sec: second + Math.floor(timeCs / 100), nsec: (timeCs % 100) * 10000000 };
  return { sec: second, nsec: 0 };
}

export interface FatTime {
  time: number;
  date: number;
  /** Centiseconds 0..199: meaningful for the creation time only. */
  timeCs: number;
}

/** Civil date from days since 1970-01-01 (proleptic Gregorian). */
function civilFromDays(z: number): { y: number; m: number; d: number } {
  z += 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return { y: yoe + era * 400 + (m <= 2 ? 1 : 0), m, d };
}

/**
 * fat_time_unix2fat. FAT holds 1980-01-01 00:00:00 .. 2107-12-31 23:59:58 local; earlier
 * times clamp to the first (cs 0), later ones to the last with cs 199, as Linux clamps.
 * The 2-second field drops the odd second; timeCs keeps it: (sec & 1) * 100 + nsec / 10ms.
 */
export function fat_time_unix2fat(o: FatTzOptions, sec: number, nsec = 0): FatTime {
  const local = sec - fat_tz_offset(o);
  const days = Math.floor(local / SECS_PER_DAY);
  const rem = local - days * SECS_PER_DAY;
  const { y, m, d } = civilFromDays(days);
  if (y < 1980) return { time: 0, date: (0 << 9) | (1 << 5) | 1, timeCs: 0 };
  if (y > 2107) return { time: (23 << 11) | (59 << 5) | 29, date: (127 << 9) | (12 << 5) | 31, timeCs: 199 };
  const hour = Math.floor(rem / SECS_PER_HOUR);
  const min = Math.floor((rem % SECS_PER_HOUR) / SECS_PER_MIN);
  const s = rem % SECS_PER_MIN;
  return {
    time: (hour << 11) | (min << 5) | (s >> 1),
    date: ((y - 1980) << 9) | (m << 5) | d,
    /* Linux uses tv_sec's parity, not the local second's: the same for whole-minute offsets. */
    timeCs: (((sec % 2) + 2) % 2) * 100 + Math.floor(nsec / 10000000),
  };
}

/** fat_truncate_mtime: modification time has 2-second granularity. */
export function fat_truncate_mtime(ts: FatTimespec): FatTimespec {
  return { sec: ts.sec - (((ts.sec % 2) + 2) % 2), nsec: 0 };
}

/** fat_truncate_crtime: vfat keeps creation time to 10 ms (msdos: 2 s). */
export function fat_truncate_crtime(ts: FatTimespec, isvfat = true): FatTimespec {
  if (!isvfat) return fat_truncate_mtime(ts);
  return { sec: ts.sec, nsec: ts.nsec - (ts.nsec % 10000000) };
}

/** fat_truncate_atime: access time is a date only: local midnight, back in Unix time. */
export function fat_truncate_atime(o: FatTzOptions, ts: FatTimespec): FatTimespec {
  const off = fat_tz_offset(o);
  const local = ts.sec - off;
  /* div_s64_rem truncates toward zero, so times before 1970 keep a negative remainder. */
  const remainder = local % SECS_PER_DAY;
  return { sec: local + off - remainder, nsec: 0 };
}
