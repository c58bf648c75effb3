/*
 * What only the kernel transport (lklfuse speaking the FUSE protocol on /dev/fuse) can do,
 * through real mounts against the real lkl-ts kernel:
 *  - ext4 times exactly as the host kernel reads them: nanoseconds, before 1970, after 2038
 *    (trees written by the host kernel through a loop mount, compared with `stat` there);
 *  - each request runs with its caller's uid, gid and supplementary groups: with
 *    allow_other and no default_permissions the lkl-ts kernel makes the permission
 *    decisions (EACCES for uid 65534 on a root 0600 file, access through a supplementary
 *    group), and new files get the caller's uid (on vfat, where the owner is the uid=
 *    option, the test can only show creation allowed and refused by the caller's rights;
 *    the ownership-on-create test is complete once ext4 is writable);
 *  - one-sided time updates (touch -m -d, touch -a -d) on vfat;
 *  - SEEK_DATA/SEEK_HOLE, copy_file_range, fallocate's answers, flock and fcntl locks.
 */
import t from 'tap';
import type { Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fsckVfatClean, makeExtImage, makeVfatImage, withLoopMount } from '../lib/images.js';
import { box, daemonsFor, fuseSkip, isMounted, startForeground, stopDaemon, transportSkip, waitFor, within } from './real-helpers.js';

const skip = fuseSkip(['mke2fs', 'mkfs.vfat', 'losetup', 'mount', 'umount', 'touch', 'stat', 'setpriv', 'python3', 'flock', 'fallocate', 'chown', 'chgrp', 'ln', 'lsattr'])
  || transportSkip('kernel');
const KERNEL = ['-o', 'transport=kernel'];

function sh(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
/** Runs argv as uid/gid 65534 with the given supplementary groups. */
function asUser(groups: number[], argv: string[]) {
  const g = groups.length ? [`--groups=${groups.join(',')}`] : ['--clear-groups'];
  return sh('setpriv', ['--reuid=65534', '--regid=65534', ...g, '--', ...argv]);
}


const TIMES = [
  ['pre1970', '1960-01-01 00:00:00.123456789'],
  ['epoch-1ns', '1969-12-31 23:59:59.999999999'],
  ['y2038', '2038-01-19 03:14:08.000000001'],
  ['post2038', '2242-03-16 12:56:31.987654321'],
  ['recent', '2024-02-29 13:37:42.000000007'],
] as const;

t.test('ext4 times through the kernel transport equal the host kernel\'s, to the nanosecond', { skip }, async (t) => {
  const b = box(t, 'ktimes');
  const img = await makeExtImage({ path: b.path('times.img'), type: 'ext4', sizeMiB: 32, blockSize: 4096 });
  // The host kernel writes the tree (mke2fs -d drops nanoseconds and mangles post-2038 times).
  await withLoopMount(img, {}, async (dir) => {
    fs.mkdirSync(path.join(dir, 'd'));
    for (const [name, when] of TIMES) {
      fs.writeFileSync(path.join(dir, 'd', name), name);
      t.equal(sh('touch', ['-m', '-d', when, path.join(dir, 'd', name)]).status, 0, `touch -m ${name}`);
      t.equal(sh('touch', ['-a', '-d', TIMES[(TIMES.findIndex((x) => x[0] === name) + 1) % TIMES.length]![1], path.join(dir, 'd', name)]).status, 0, `touch -a ${name}`);
    }
    fs.symlinkSync('pre1970', path.join(dir, 'd', 'link'));
    t.equal(sh('touch', ['-h', '-d', TIMES[0][1], path.join(dir, 'd', 'link')]).status, 0, 'touch -h on a symlink');
    t.equal(sh('touch', ['-d', TIMES[3][1], path.join(dir, 'd')]).status, 0, 'a directory after 2038');
  });
  const names = ['d', ...TIMES.map((x) => `d/${x[0]}`), 'd/link'];
  const FMT = '%n ino=%i mode=%a size=%s nlink=%h uid=%u gid=%g atime=%x mtime=%y ctime=%z';
  const statAll = (root: string) => names.map((n) => {
    const r = sh('stat', ['-c', FMT, path.join(root, n)]);
    return r.stdout.trim().replace(root + '/', '');
  });
  // (Lines sorted: directory order may differ, lsattr lists in readdir order.)
  const lsattr = (root: string) => sh('lsattr', ['-v', path.join(root, 'd')]).stdout.split(root + '/').join('').split('\n').sort().join('\n');
  const [host, hostAttrs] = await withLoopMount(img, { ro: true, noload: true }, async (dir) => [statAll(dir), lsattr(dir)] as const);
  t.match(host.find((l) => l.startsWith('d/pre1970 ')) ?? '', /mtime=1960-01-01 00:00:00\.123456789/, 'the host sees the pre-1970 time');

  const mnt = b.mnt();
  const d = await startForeground(img, mnt, ['-o', 'ro', ...KERNEL]);
  const fuse = statAll(mnt);
  for (let i = 0; i < names.length; i++) t.equal(fuse[i], host[i], `${names[i]}: stat through lklfuse equals the host kernel's`);
  // Seconds as signed numbers, too (stat -c %Y prints them without a calendar).
  const secs = sh('stat', ['-c', '%X %Y', path.join(mnt, 'd', 'pre1970')]).stdout.trim();
  t.equal(secs, '-1 -315619200', 'times before 1970 are negative seconds (atime 1969-12-31 23:59:59.999999999, mtime 1960)');
  // The inode flags and generations (FS_IOC_GETFLAGS, FS_IOC_GETVERSION) too: real-chattr.test.ts changes them.
  t.equal(lsattr(mnt), hostAttrs, 'lsattr -v through lklfuse equals the host kernel\'s');
  t.match(hostAttrs, /e-+ d\/pre1970/, 'which shows the extents flag');
  await stopDaemon(t, mnt, d);
});

t.test('allow_other: the lkl-ts kernel decides with the caller\'s uid, gid and groups', { skip }, async (t) => {
  const b = box(t, 'kcreds');
  const img = await makeExtImage({ path: b.path('creds.img'), type: 'ext4', sizeMiB: 16, blockSize: 4096 });
  await withLoopMount(img, {}, async (dir) => {
    const w = (n: string, mode: number, uid: number, gid: number) => {
      fs.writeFileSync(path.join(dir, n), `${n}\n`);
      fs.chownSync(path.join(dir, n), uid, gid);
      fs.chmodSync(path.join(dir, n), mode);
    };
    w('secret', 0o600, 0, 0);
    w('group-readable', 0o640, 0, 4242);
    w('nobodys', 0o600, 65534, 65534);
    fs.writeFileSync(path.join(dir, 'owner-exec'), '#!/bin/sh\necho ran\n', { mode: 0o744 });
    fs.chmodSync(path.join(dir, 'owner-exec'), 0o744);
    fs.writeFileSync(path.join(dir, 'all-exec'), '#!/bin/sh\necho ran\n', { mode: 0o755 });
    fs.chmodSync(path.join(dir, 'all-exec'), 0o755);
    fs.mkdirSync(path.join(dir, 'private'));
    fs.writeFileSync(path.join(dir, 'private', 'inside'), 'x');
    fs.chmodSync(path.join(dir, 'private'), 0o700);
    fs.mkdirSync(path.join(dir, 'groupdir'));
    fs.writeFileSync(path.join(dir, 'groupdir', 'inside'), 'y');
    fs.chownSync(path.join(dir, 'groupdir'), 0, 4242);
    fs.chmodSync(path.join(dir, 'groupdir'), 0o750);
  });
  const mnt = b.mnt();
  // No default_permissions: every decision is the lkl-ts kernel's (on ext4, which keeps ACLs,
  // allow_other makes lklfuse ask for FUSE_POSIX_ACL, which turns the host's checks on too:
  // both are Linux's, and agree).
  const d = await startForeground(img, mnt, ['-o', 'ro,allow_other', ...KERNEL]);
  const m = (n: string) => path.join(mnt, n);
  const denied = (r: { status: number | null; stderr: string }) => r.status !== 0 && /Permission denied/.test(r.stderr);

  t.ok(denied(asUser([], ['cat', m('secret')])), 'uid 65534: cat of a root 0600 file is EACCES');
  t.equal(asUser([], ['cat', m('nobodys')]).stdout, 'nobodys\n', 'uid 65534 reads its own 0600 file');
  t.ok(denied(asUser([], ['cat', m('group-readable')])), 'uid 65534 without group 4242: EACCES on a 0640 root:4242 file');
  t.equal(asUser([4242], ['cat', m('group-readable')]).stdout, 'group-readable\n', 'with supplementary group 4242: readable');
  t.ok(denied(asUser([], ['ls', m('private')])), 'uid 65534: ls of a root 0700 directory is EACCES');
  t.ok(denied(asUser([], ['cat', m('groupdir/inside')])), 'without group 4242: no search permission in a 0750 root:4242 directory');
  t.equal(asUser([4242], ['cat', m('groupdir/inside')]).stdout, 'y', 'with group 4242: the directory can be searched');
  t.equal(sh('cat', [m('secret')]).stdout, 'secret\n', 'root reads everything');
  t.equal(asUser([], ['test', '-r', m('secret')]).status, 1, 'access(R_OK) for uid 65534 on the secret says no');
  t.equal(asUser([4242], ['test', '-r', m('group-readable')]).status, 0, 'access(R_OK) through the group says yes');
  t.ok(denied(asUser([], [m('owner-exec')])), 'uid 65534 cannot execute a root 0744 file');
  t.equal(asUser([], [m('all-exec')]).stdout, 'ran\n', 'but executes a 0755 one');
  t.equal(sh(m('owner-exec'), []).stdout, 'ran\n', 'root executes the 0744 one');
  await stopDaemon(t, mnt, d);
});

t.test('vfat, allow_other: creating needs the caller\'s write permission; new files are the caller\'s', { skip }, async (t) => {
  const b = box(t, 'kcreate');
  const img = await makeVfatImage({ path: b.path('c.img'), fat: 32, sizeMiB: 64 });
  let mnt = b.mnt('m1');
  let d = await startForeground(img, mnt, ['-o', 'allow_other,opts=uid=0\\,gid=0\\,dmask=022\\,fmask=022', ...KERNEL]);
  t.ok(asUser([], ['touch', path.join(mnt, 'by-nobody')]).stderr.includes('Permission denied'), 'uid 65534 cannot create in a root 0755 directory');
  t.notOk(fs.existsSync(path.join(mnt, 'by-nobody')), 'and nothing was created');
  t.ok(asUser([], ['mkdir', path.join(mnt, 'dir-by-nobody')]).stderr.includes('Permission denied'), 'nor mkdir there');
  t.equal(sh('touch', [path.join(mnt, 'by-root')]).status, 0, 'root creates');
  await stopDaemon(t, mnt, d);

  mnt = b.mnt('m2');
  d = await startForeground(img, mnt, ['-o', 'allow_other,opts=uid=65534\\,gid=65534\\,dmask=022\\,fmask=022', ...KERNEL]);
  const r = asUser([], ['touch', path.join(mnt, 'by-nobody')]);
  t.equal(r.status, 0, `uid 65534 creates in a directory it owns ${r.stderr}`);
  const st = fs.statSync(path.join(mnt, 'by-nobody'));
  // vfat has no owners: the kernel reports the uid= option. (On ext4 rw the owner would be
  // the caller's fsuid; that part of the test waits for ext4 write support.)
  t.same([st.uid, st.gid], [65534, 65534], 'the new file belongs to 65534');
  t.ok(sh('setpriv', ['--reuid=1000', '--regid=1000', '--clear-groups', '--', 'touch', path.join(mnt, 'by-1000')]).stderr.includes('Permission denied'),
    'uid 1000 cannot create in a 0755 directory of uid 65534');
  await stopDaemon(t, mnt, d);
});

t.test('vfat: touch -m -d and touch -a -d change one time each', { skip }, async (t) => {
  const b = box(t, 'ktouch');
  const img = await makeVfatImage({ path: b.path('t.img'), fat: 32, sizeMiB: 64 });
  const mnt = b.mnt();
  const d = await startForeground(img, mnt, KERNEL);
  const f = path.join(mnt, 'f');
  fs.writeFileSync(f, 'x');
  // FAT keeps mtime in 2-second steps and atime as a date: pick times it can hold.
  t.equal(sh('touch', ['-d', '2010-05-06 07:08:10', f]).status, 0, 'touch -d sets both');
  t.equal(sh('touch', ['-m', '-d', '2001-02-03 04:05:06', f]).status, 0, 'touch -m -d');
  let st = fs.statSync(f);
  t.equal(st.mtime.toISOString(), '2001-02-03T04:05:06.000Z', 'mtime changed');
  t.equal(st.atime.toISOString().slice(0, 10), '2010-05-06', 'atime kept');
  t.equal(sh('touch', ['-a', '-d', '1999-12-31 00:00:00', f]).status, 0, 'touch -a -d');
  st = fs.statSync(f);
  t.equal(st.atime.toISOString().slice(0, 10), '1999-12-31', 'atime changed');
  t.equal(st.mtime.toISOString(), '2001-02-03T04:05:06.000Z', 'mtime kept');
  await stopDaemon(t, mnt, d);
  // And the image says so, read back by a fresh mount.
  const mnt2 = b.mnt('again');
  const d2 = await startForeground(img, mnt2, ['-o', 'ro', ...KERNEL]);
  st = fs.statSync(path.join(mnt2, 'f'));
  t.equal(st.mtime.toISOString(), '2001-02-03T04:05:06.000Z', 'mtime on disk');
  t.equal(st.atime.toISOString().slice(0, 10), '1999-12-31', 'atime on disk');
  await stopDaemon(t, mnt2, d2);
});

const PY_IO = String.raw`
import os, sys, errno
m = sys.argv[1]
out = []
fd = os.open(m + '/sparse', os.O_RDWR | os.O_CREAT, 0o644)
os.pwrite(fd, b'tail', 3 << 20)
out.append('size=%d' % os.fstat(fd).st_size)
out.append('data=%d' % os.lseek(fd, 0, os.SEEK_DATA))
out.append('hole=%d' % os.lseek(fd, 0, os.SEEK_HOLE))
try:
    os.lseek(fd, (3 << 20) + 4, os.SEEK_DATA); out.append('data-past-eof=ok')
except OSError as e: out.append('data-past-eof=' + errno.errorcode[e.errno])
src = os.open(m + '/src', os.O_RDWR | os.O_CREAT, 0o644)
payload = bytes(range(256)) * 4096
os.write(src, payload)
dst = os.open(m + '/dst', os.O_RDWR | os.O_CREAT, 0o644)
n = 0
while n < len(payload):
    k = os.copy_file_range(src, dst, len(payload) - n, n, n)
    if k == 0: break
    n += k
out.append('copied=%d' % n)
out.append('same=%s' % (os.pread(dst, len(payload) + 1, 0) == payload))
try:
    os.posix_fallocate(dst, 0, 8 << 20); out.append('fallocate=ok fsize=%d' % os.fstat(dst).st_size)
except OSError as e: out.append('fallocate=' + errno.errorcode[e.errno])
print(' '.join(out))
`;

t.test('vfat: SEEK_DATA/SEEK_HOLE, copy_file_range, fallocate; flock and fcntl locks', { skip }, async (t) => {
  const b = box(t, 'kio');
  const img = await makeVfatImage({ path: b.path('io.img'), fat: 32, sizeMiB: 64 });
  const mnt = b.mnt();
  const d = await startForeground(img, mnt, KERNEL);
  const r = sh('python3', ['-c', PY_IO, mnt]);
  t.equal(r.status, 0, `the I/O script runs ${r.stderr}`);
  t.comment(r.stdout);
  const got = Object.fromEntries(r.stdout.trim().split(' ').map((kv) => kv.split('=') as [string, string]));
  t.equal(got.size, String((3 << 20) + 4), 'a write past the end extends the file');
  // FAT has no holes: all data up to the end, the only hole at EOF (Linux's generic answer).
  t.equal(got.data, '0', 'SEEK_DATA from 0 is 0');
  t.equal(got.hole, String((3 << 20) + 4), 'SEEK_HOLE from 0 is the end of the file');
  t.equal(got['data-past-eof'], 'ENXIO', 'SEEK_DATA at the end is ENXIO');
  t.equal(got.copied, String(256 * 4096), 'copy_file_range copies every byte');
  t.equal(got.same, 'True', 'and the copy equals the source');
  // The lkl-ts vfat's fallocate is Linux's fat_fallocate: mode 0 grows the file, hole
  // punching is EOPNOTSUPP (FAT has no holes); both answers come through the transport.
  t.equal(got.fallocate, 'ok', `posix_fallocate: ${got.fallocate}`);
  const fa = sh('fallocate', ['-l', '1M', path.join(mnt, 'fa')]);
  t.equal(fa.status, 0, 'fallocate(2) mode 0 works', { stderr: fa.stderr });
  t.equal(fs.statSync(path.join(mnt, 'fa')).size, 1 << 20, 'and the file is 1 MiB');
  const punch = sh('fallocate', ['-p', '-o', '0', '-l', '4096', path.join(mnt, 'fa')]);
  // util-linux words EOPNOTSUPP of a punch as "keep size mode is unsupported".
  t.match(punch.stderr, /unsupported|not supported/, 'hole punching answers EOPNOTSUPP, as Linux vfat does');

  // Locks are kept by the host kernel for this mount (the lkl-ts kernel has none).
  const lockFile = path.join(mnt, 'lock');
  fs.writeFileSync(lockFile, '');
  const holder = spawnSync('flock', ['-x', lockFile, 'sh', '-c', `flock -n -x ${lockFile} true; echo inner=$?`], { encoding: 'utf8' });
  t.match(holder.stdout, /inner=1/, 'a second flock -n on a held file fails');
  t.equal(sh('flock', ['-n', '-x', lockFile, 'true']).status, 0, 'and succeeds once released');
  const py = String.raw`
import fcntl, os, sys, time
f = os.open(sys.argv[1], os.O_RDWR)
fcntl.lockf(f, fcntl.LOCK_EX)
pid = os.fork()
if pid == 0:
    g = os.open(sys.argv[1], os.O_RDWR)
    try:
        fcntl.lockf(g, fcntl.LOCK_EX | fcntl.LOCK_NB); os._exit(0)
    except OSError: os._exit(7)
_, st = os.waitpid(pid, 0)
print('child=%d' % os.waitstatus_to_exitcode(st))
`;
  t.match(sh('python3', ['-c', py, lockFile]).stdout, /child=7/, 'an fcntl lock held by one process blocks another');
  await stopDaemon(t, mnt, d);
});

const PY_LOAD = String.raw`
import os, sys, hashlib, random
m = sys.argv[1]
kids = []
for w in range(4):
    pid = os.fork()
    if pid == 0:
        rnd = random.Random(w)
        d = '%s/w%d' % (m, w)
        os.mkdir(d)
        bad = 0
        for i in range(30):
            data = rnd.randbytes(rnd.choice([1, 4096, 65537, 300000, 1 << 20]))
            p = '%s/f%d' % (d, i)
            with open(p, 'wb') as f: f.write(data)
            os.stat(p)
            os.rename(p, p + '.r')
            with open(p + '.r', 'rb') as f: back = f.read()
            if back != data: bad += 1
            if i % 3 == 0: os.unlink(p + '.r')
        os._exit(1 if bad else 0)
    kids.append(pid)
# A stat loop in this process meanwhile.
for _ in range(2000):
    os.listdir(m); os.stat(m)
codes = [os.waitstatus_to_exitcode(os.waitpid(k, 0)[1]) for k in kids]
print(' '.join(map(str, codes)), sum(len(os.listdir('%s/w%d' % (m, w))) for w in range(4)))
`;

t.test('under load: four writers and a stat loop at once, every byte back, nothing lost', { skip }, async (t) => {
  const b = box(t, 'kload');
  const img = await makeVfatImage({ path: b.path('l.img'), fat: 32, sizeMiB: 256 });
  const mnt = b.mnt();
  const d = await startForeground(img, mnt, ['-o', 'mb=128', ...KERNEL]);
  const run = spawnSync('python3', ['-c', PY_LOAD, mnt], { encoding: 'utf8', timeout: 240_000 });
  t.equal(run.status, 0, `the load ran to its end (no request lost: nothing hung) ${run.stderr ?? ''}`);
  t.equal(run.stdout.trim(), '0 0 0 0 80', 'every writer read back what it wrote; 80 files left (20 per writer)');
  await stopDaemon(t, mnt, d);
  const ck = await fsckVfatClean(img);
  t.ok(ck.clean, 'fsck.vfat -n clean', { output: ck.output });
});

t.test('the daemon ends cleanly on SIGTERM and on an external umount', { skip }, async (t) => {
  const b = box(t, 'kstop');
  const img = await makeVfatImage({ path: b.path('s.img'), fat: 32, sizeMiB: 64 });
  let mnt = b.mnt('a');
  let d = await startForeground(img, mnt, KERNEL);
  fs.writeFileSync(path.join(mnt, 'x'), 'data');
  d.child.kill('SIGTERM');
  let r = await within(d.exited, 20000);
  t.ok(r.ok && r.value === 0, 'SIGTERM: exit 0');
  t.ok(await waitFor(async () => !(await isMounted(mnt))), 'SIGTERM: unmounted');
  mnt = b.mnt('b');
  d = await startForeground(img, mnt, KERNEL);
  t.equal(fs.readFileSync(path.join(mnt, 'x'), 'utf8'), 'data', 'what was written is there');
  t.equal(sh('fusermount', ['-u', mnt]).status, 0, 'fusermount -u exits 0');
  r = await within(d.exited, 20000);
  t.ok(r.ok && r.value === 0, 'fusermount -u: exit 0');
  t.same(daemonsFor(mnt), [], 'no daemon left');
});
