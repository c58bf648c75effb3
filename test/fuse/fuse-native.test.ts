/* The conversions between lkl-ts structures and fuse-native's uint32 arrays. */
import t from 'tap';
import { msFromU32s, statArray, statfsArray, timespecFromMs } from '../../lib/fuse/fuse-native.js';

t.test('statArray', async (t) => {
  const a = statArray({
    dev: 1, ino: 12, mode: 0o100644, nlink: 2, uid: 1000, gid: 100, rdev: 0, size: 2 ** 33 + 5,
    blksize: 4096, blocks: 8, atime: { sec: 1, nsec: 2_500_000 }, mtime: { sec: 2 ** 32, nsec: 999_999_999 },
    ctime: { sec: 0, nsec: 0 },
  });
  t.same([...a.subarray(0, 3)], [0o100644, 1000, 100], 'mode uid gid');
  t.same([a[3], a[4]], [5, 2], 'size as two halves');
  t.same([a[5], a[6], a[7], a[9]], [1, 2, 12, 4096], 'dev nlink ino blksize');
  t.same([a[12], a[13]], [1002, 0], 'atime in ms');
  const mtimeMs = a[14]! + a[15]! * 2 ** 32;
  t.equal(mtimeMs, 2 ** 32 * 1000 + 999, 'mtime in ms, above 2^32');
});

t.test('timespecFromMs', async (t) => {
  const rows: [number, { sec: number; nsec: number }][] = [
    [0, { sec: 0, nsec: 0 }],
    [1500, { sec: 1, nsec: 500_000_000 }],
    [2_000_000_000_987, { sec: 2_000_000_000, nsec: 987_000_000 }],
    // 1970-01-01 00:00:01.073: a real time, not UTIME_NOW (whose tv_nsec fuse-native would
    // also make 1073 ms; the kernel never sends it, see timespecFromMs)
    [1073, { sec: 1, nsec: 73_000_000 }],
  ];
  for (const [ms, want] of rows) t.same(timespecFromMs(ms), want, `${ms} ms`);
});

t.test('msFromU32s: utimens times as fuse-native hands them (a signed 64-bit count in two halves)', async (t) => {
  for (const v of [0, 1073, 2 ** 32 * 1000 + 999, -1, -1_000_000_000_000, -(2 ** 31) * 1000]) {
    const u = BigInt.asUintN(64, BigInt(v));
    t.equal(msFromU32s(Number(u & 0xffffffffn), Number(u >> 32n)), v, `${v} ms`);
  }
  t.same(timespecFromMs(-1_000_000_000_000), { sec: -1_000_000_000, nsec: 0 }, 'before 1970: a negative timespec');
  t.same(timespecFromMs(-1500), { sec: -2, nsec: 500_000_000 }, 'and its nanoseconds stay positive');
});

t.test('statfsArray scales block counts that do not fit 32 bits', async (t) => {
  const a = statfsArray({ type: 0, bsize: 4096, frsize: 4096, blocks: 2 ** 34, bfree: 2 ** 33, bavail: 2 ** 32,
    files: 100, ffree: 50, fsid: [1, 3], namelen: 255, flags: 1 });
  t.equal(a[1]! * a[2]!, 4096 * 2 ** 34, 'total bytes kept');
  t.ok(a[2]! <= 0xffffffff);
  t.equal(a[1]! * a[3]!, 4096 * 2 ** 33, 'free bytes kept');
  t.same([a[5], a[6], a[7], a[8], a[9], a[10]], [100, 50, 50, 2, 1, 255], 'files ffree favail fsid flag namemax');
});
