import t from 'tap';
import {
  FAT_TZ_UTC,
  fat_time_fat2unix,
  fat_time_unix2fat,
  fat_truncate_atime,
  fat_truncate_crtime,
  fat_truncate_mtime,
  fat_tz_offset,
  type FatTzOptions,
} from '../../lib/kernel/fs/fat/time.js';

const tz = (min: number): FatTzOptions => ({ tz_set: true, time_offset: min });

/* Both directions must agree with these (the cases of Linux's fs/fat/fat_test.c, plus ours). */
const cases: { name: string; sec: number; nsec: number; time: number; date: number; cs: number; off: number }[] = [
  { name: 'earliest possible UTC (1980-01-01 00:00:00)', sec: 315532800, nsec: 0, time: 0, date: 33, cs: 0, off: 0 },
  { name: '2107-12-31 23:59:58 (latest possible UTC)', sec: 4354819198, nsec: 0, time: 49021, date: 65439, cs: 0, off: 0 },
  { name: 'earliest possible at UTC+11', sec: 315493200, nsec: 0, time: 0, date: 33, cs: 0, off: 11 * 60 },
  { name: 'latest possible at UTC-11', sec: 4354858798, nsec: 0, time: 49021, date: 65439, cs: 0, off: -11 * 60 },
  { name: 'leap day 1996-02-29', sec: 825552000, nsec: 0, time: 0, date: 8285, cs: 0, off: 0 },
  { name: 'year 2000 is a leap year (2000-02-29)', sec: 951782400, nsec: 0, time: 0, date: 10333, cs: 0, off: 0 },
  { name: 'year 2100 not leap year (2100-03-01)', sec: 4107542400, nsec: 0, time: 0, date: 61537, cs: 0, off: 0 },
  { name: 'leap year at UTC+1 (2004-02-29 00:30 UTC)', sec: 1078014600, nsec: 0, time: 48064, date: 12380, cs: 0, off: -60 },
  { name: 'leap year at UTC-1 (2004-02-29 23:30 UTC)', sec: 1078097400, nsec: 0, time: 960, date: 12385, cs: 0, off: 60 },
  { name: 'odd second goes to ctime_cs (1999-12-31 23:59:59)', sec: 946684799, nsec: 0, time: 49021, date: 10143, cs: 100, off: 0 },
  { name: '10 ms resolution (1980-01-01 00:00:00.01)', sec: 315532800, nsec: 10000000, time: 0, date: 33, cs: 1, off: 0 },
  { name: 'ctime_cs 199 (2001-02-03 04:05:07.99)', sec: 981173107, nsec: 990000000, time: (4 << 11) | (5 << 5) | 3, date: (21 << 9) | (2 << 5) | 3, cs: 199, off: 0 },
  { name: 'half-hour offset (UTC+5:30)', sec: 981173106 - 5.5 * 3600, nsec: 0, time: (4 << 11) | (5 << 5) | 3, date: (21 << 9) | (2 << 5) | 3, cs: 0, off: 330 },
];

t.test('fat_time_unix2fat and fat_time_fat2unix', async (t) => {
  for (const c of cases) {
    t.test(c.name, async (t) => {
      const f = fat_time_unix2fat(tz(c.off), c.sec, c.nsec);
      t.same(f, { time: c.time, date: c.date, timeCs: c.cs }, 'unix2fat');
      const u = fat_time_fat2unix(tz(c.off), c.time, c.date, c.cs);
      t.same(u, { sec: c.sec, nsec: c.nsec }, 'fat2unix');
    });
  }
});

t.test('out of range clamps as Linux clamps', async (t) => {
  t.same(fat_time_unix2fat(FAT_TZ_UTC, 0), { time: 0, date: 33, timeCs: 0 }, '1970 -> 1980-01-01');
  t.same(fat_time_unix2fat(FAT_TZ_UTC, 315532799, 999999999), { time: 0, date: 33, timeCs: 0 }, 'one ns before 1980');
  t.same(fat_time_unix2fat(FAT_TZ_UTC, -1e9), { time: 0, date: 33, timeCs: 0 }, 'before 1970');
  const max = { time: (23 << 11) | (59 << 5) | 29, date: (127 << 9) | (12 << 5) | 31, timeCs: 199 };
  t.same(fat_time_unix2fat(FAT_TZ_UTC, 4354819200), max, '2108-01-01 -> max with cs 199');
  t.same(fat_time_unix2fat(FAT_TZ_UTC, 2 ** 40), max, 'far future');
  t.same(fat_time_unix2fat(FAT_TZ_UTC, 4354819199), { time: 49021, date: 65439, timeCs: 100 }, '2107-12-31 23:59:59');
});

t.test('nonsense on-disk fields read as Linux reads them', async (t) => {
  t.same(fat_time_fat2unix(FAT_TZ_UTC, 0, 0), { sec: 315532800, nsec: 0 }, 'zero date = 1980-01-01');
  t.same(fat_time_fat2unix(FAT_TZ_UTC, 0, (10 << 9) | (0 << 5) | 0), fat_time_fat2unix(FAT_TZ_UTC, 0, (10 << 9) | (1 << 5) | 1), 'month 0 / day 0 = 1');
  t.equal(fat_time_fat2unix(FAT_TZ_UTC, 29, 33).sec, 315532800 + 58, 'seconds field 29 = 58 s');
});

t.test('round trip of every even second sampled 1980..2107', async (t) => {
  let bad = 0;
  for (let s = 315532800; s < 4354819198; s += 86400 * 37 + 7322) {
    const even = s - (s % 2);
    const f = fat_time_unix2fat(FAT_TZ_UTC, even);
    if (fat_time_fat2unix(FAT_TZ_UTC, f.time, f.date).sec !== even) bad++;
  }
  t.equal(bad, 0);
});

t.test('time zone selection', async (t) => {
  t.equal(fat_tz_offset({ tz_set: true, time_offset: 120 }), -7200, 'time_offset=120: disk is UTC+2');
  t.equal(fat_tz_offset({ tz_set: false, time_offset: 0, sysTzMinutesWest: 300 }), 18000, 'sys_tz minuteswest');
  t.equal(fat_tz_offset({ tz_set: false, time_offset: 0 }), 0, 'no sys_tz: UTC');
});

t.test('truncation', async (t) => {
  t.same(fat_truncate_mtime({ sec: 1001, nsec: 5 }), { sec: 1000, nsec: 0 }, 'mtime: 2 s');
  t.same(fat_truncate_crtime({ sec: 1001, nsec: 123456789 }), { sec: 1001, nsec: 120000000 }, 'crtime: 10 ms');
  t.same(fat_truncate_crtime({ sec: 1001, nsec: 123456789 }, false), { sec: 1000, nsec: 0 }, 'msdos crtime: 2 s');
  t.same(fat_truncate_atime(FAT_TZ_UTC, { sec: 981173107, nsec: 9 }), { sec: 981158400, nsec: 0 }, 'atime: UTC midnight');
  t.same(fat_truncate_atime(tz(120), { sec: 981173107, nsec: 0 }), { sec: 981158400 - 7200, nsec: 0 }, 'atime: local midnight at UTC+2');
});
