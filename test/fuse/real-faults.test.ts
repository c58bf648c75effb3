// Device faults through a real lklfuse mount, ext4 and vfat: the daemon's image store
// fails chosen reads or writes (LKLFUSE_TEST_FAULTS, a FaultyStore around the image), and
// host processes using the mount see what Linux's ext4 gives them — EIO for the failed
// read, EIO from fsync and then EROFS once the journal is aborted — while the daemon keeps
// serving, unmounts on fusermount -u and loses nothing that was reported written:
// e2fsck -fn and the host kernel (loop mount) judge the image afterwards.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  box, fuseSkip, isMounted, overTransports, startForeground, within, type Daemon,
} from './real-helpers.js';
import {
  e2fsckClean, fsckVfatClean, makeExtImage, makeVfatImage, mtools, mtoolsReadFile, withLoopMount,
} from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';
import type { Test } from 'tap';

const execFileP = promisify(execFile);
const skip = fuseSkip(['mke2fs', 'e2fsck', 'debugfs', 'dumpe2fs', 'losetup', 'mount', 'python3', 'mkfs.vfat', 'fsck.vfat', 'mcopy'])
  || whyNot([], { root: true });

/** A host process's view: exit status and stderr (never rejects). */
async function sh(cmd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  try {
    const r = await execFileP(cmd, args, { encoding: 'utf8', timeout: 60_000 });
    return { code: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof x.code === 'number' ? x.code : -1, out: x.stdout ?? '', err: x.stderr ?? '' };
  }
}

/** Writes `data` to `file` and fsyncs it in a host process: 'ok' or the errno name of the failing step. */
async function writeFsync(file: string, data: string): Promise<string> {
  const py = 'import os,sys\n' +
    'try:\n fd=os.open(sys.argv[1],os.O_WRONLY|os.O_CREAT|os.O_TRUNC,0o644)\nexcept OSError as e:\n print("open",os.strerror(e.errno)); sys.exit(0)\n' +
    'try:\n os.write(fd,sys.argv[2].encode())\nexcept OSError as e:\n print("write",os.strerror(e.errno)); sys.exit(0)\n' +
    'try:\n os.fsync(fd)\nexcept OSError as e:\n print("fsync",os.strerror(e.errno)); sys.exit(0)\n' +
    'os.close(fd)\nprint("ok")\n';
  const r = await sh('python3', ['-c', py, file, data]);
  return r.out.trim() || `python3 failed: ${r.err}`;
}

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/** Byte range of a file's blocks on the image (contiguous files from mke2fs -d). */
async function fileRange(img: string, name: string, bs: number): Promise<{ pos: number; len: number }> {
  const out = (await run('debugfs', ['-R', `blocks ${name}`, img])).stdout.trim().split(/\s+/).map(Number);
  const first = Math.min(...out), last = Math.max(...out);
  if (last - first + 1 !== out.length) throw new Error(`${name} is not contiguous: ${out.join(' ')}`);
  return { pos: first * bs, len: out.length * bs };
}

/** fusermount -u; the daemon exits within 60 s; the mount is gone. */
async function unmount(t: Test, d: Daemon, mnt: string): Promise<number | null> {
  const u = await sh('fusermount', ['-u', mnt]);
  t.equal(u.code, 0, 'fusermount -u', { stderr: u.err });
  const ex = await within(d.exited, 60_000);
  t.ok(ex.ok, 'the daemon exits', { stderr: d.stderr() });
  t.notOk(await isMounted(mnt), 'no mount left');
  return ex.ok ? ex.value : null;
}

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  overTransports(t, (t) => {
    t.test('a failed data read: EIO for that file only, the rest served, nothing damaged', async (t) => {
      const b = box(t, 'faults-read');
      const src = b.path('src');
      fs.mkdirSync(src);
      const bad = crypto.randomBytes(256 * 1024), good = crypto.randomBytes(256 * 1024);
      fs.writeFileSync(path.join(src, 'bad.bin'), bad);
      fs.writeFileSync(path.join(src, 'good.bin'), good);
      const img = await makeExtImage({ type: 'ext4', sizeMiB: 32, blockSize: 4096, fromDir: src, path: b.path('r.img') });
      const range = await fileRange(img, '/bad.bin', 4096);
      const mnt = b.mnt();
      const d = await startForeground(img, mnt, [], { LKLFUSE_TEST_FAULTS: JSON.stringify([{ op: 'read', ...range }]) });
      const c = await sh('cat', [path.join(mnt, 'bad.bin')]);
      t.not(c.code, 0, 'reading the file whose blocks fail fails');
      t.match(c.err, /Input\/output error/, 'with EIO, as Linux reports a failed data read');
      const g = await sh('sha256sum', [path.join(mnt, 'good.bin')]);
      t.equal(g.out.split(' ')[0], sha(good), 'the other file reads back intact');
      t.equal(await writeFsync(path.join(mnt, 'new.txt'), 'written after the failure\n'), 'ok', 'writes still work (a data read error is not a filesystem error)');
      const ls = await sh('ls', [mnt]);
      t.strictSame(ls.out.split('\n').filter(Boolean).sort(), ['bad.bin', 'good.bin', 'lost+found', 'new.txt'], 'the daemon still lists the root');
      t.equal(d.child.exitCode, null, 'the daemon is alive');
      t.equal(await unmount(t, d, mnt), 0, 'and exits 0 on unmount');
      const f = await e2fsckClean(img);
      t.ok(f.clean, 'e2fsck -fn clean', { output: f.output });
      await withLoopMount(img, { ro: true }, async (m) => {
        t.equal(sha(fs.readFileSync(path.join(m, 'bad.bin'))), sha(bad), 'the host kernel reads the file that failed: its data were never touched');
        t.equal(fs.readFileSync(path.join(m, 'new.txt'), 'utf8'), 'written after the failure\n', 'the host kernel reads the file written through the mount');
      });
    });

    t.test('journal writes fail: fsync says EIO, then the filesystem is read-only; what was synced before survives', async (t) => {
      const b = box(t, 'faults-journal');
      const src = b.path('src');
      fs.mkdirSync(src);
      const kept = crypto.randomBytes(64 * 1024);
      fs.writeFileSync(path.join(src, 'kept.bin'), kept);
      const img = await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 4096, fromDir: src, path: b.path('j.img') });
      // The journal's blocks past its superblock: every commit writes there.
      const jblocks = (await run('debugfs', ['-R', 'blocks <8>', img])).stdout.trim().split(/\s+/).map(Number);
      const first = Math.min(...jblocks), n = jblocks.length;
      const faults = [{ op: 'write', pos: (first + 1) * 4096, len: (n - 1) * 4096 }];
      const mnt = b.mnt();
      const d = await startForeground(img, mnt, ['-o', 'opts=errors=remount-ro'], { LKLFUSE_TEST_FAULTS: JSON.stringify(faults) });
      t.equal(await writeFsync(path.join(mnt, 'lost.txt'), 'never committed\n'), 'fsync Input/output error', 'fsync of a new file fails with EIO (its commit could not be written)');
      const after = await writeFsync(path.join(mnt, 'later.txt'), 'x');
      t.equal(after, 'open Read-only file system', 'the journal is aborted: the next create fails with EROFS');
      const k = await sh('sha256sum', [path.join(mnt, 'kept.bin')]);
      t.equal(k.out.split(' ')[0], sha(kept), 'files already on disk still read');
      t.equal(d.child.exitCode, null, 'the daemon is alive');
      await unmount(t, d, mnt);
      const h = (await run('dumpe2fs', ['-h', img])).stdout;
      t.match(h, /Filesystem state:\s+\S*\s*(with errors|not clean with errors)|FS Error count:\s+[1-9]/, 'the error is recorded on disk');
      const f = await e2fsckClean(img);
      // Besides the error state, the superblock's summary free counts may be off by what the
      // lost commit allocated: Linux's ext4_commit_super writes the in-memory counters too
      // (ext4_update_super), and e2fsck corrects them silently when preening.
      const text = f.output.replace(/^Free (blocks|inodes) count wrong \(\d+, counted=\d+\)\.\n+Fix\? no\n/gm, '');
      const findings = text.split('\n').filter((l) => /\?|Fix|Clear|differences|error/i.test(l) && !/contains a file system with errors|check forced/.test(l));
      t.same(findings, [], 'e2fsck -fn finds nothing but the recorded error state (and the summary counts)', { output: f.output });
      await withLoopMount(img, { ro: true, noload: true }, async (m) => {
        t.equal(sha(fs.readFileSync(path.join(m, 'kept.bin'))), sha(kept), 'the host kernel reads the file that was there before');
        t.notOk(fs.existsSync(path.join(m, 'later.txt')), 'nothing was created after the abort');
      });
    });

    t.test('vfat: a failed cluster read is EIO for that file only; the rest is served and written', async (t) => {
      const b = box(t, 'faults-vfat');
      const img = await makeVfatImage({ fat: 32, sizeMiB: 40, path: b.path('v.img') });
      const bad = crypto.randomBytes(128 * 1024), good = crypto.randomBytes(128 * 1024);
      fs.writeFileSync(b.path('bad.bin'), bad);
      fs.writeFileSync(b.path('good.bin'), good);
      await mtools('mcopy', ['-i', img, b.path('bad.bin'), b.path('good.bin'), '::/']);
      // Where bad.bin's clusters are: its (random, so unique) bytes in the image.
      const at = fs.readFileSync(img).indexOf(bad.subarray(0, 4096));
      t.ok(at > 0 && at % 512 === 0, `bad.bin's first cluster found at byte ${at}`);
      const mnt = b.mnt();
      const d = await startForeground(img, mnt, [], { LKLFUSE_TEST_FAULTS: JSON.stringify([{ op: 'read', pos: at, len: bad.length }]) });
      const c = await sh('cat', [path.join(mnt, 'bad.bin')]);
      t.not(c.code, 0, 'reading the file whose clusters fail fails');
      t.match(c.err, /Input\/output error/, 'with EIO');
      const g = await sh('sha256sum', [path.join(mnt, 'good.bin')]);
      t.equal(g.out.split(' ')[0], sha(good), 'the other file reads back intact');
      t.equal(await writeFsync(path.join(mnt, 'new.txt'), 'written after the failure\n'), 'ok', 'writes still work');
      t.equal(d.child.exitCode, null, 'the daemon is alive');
      t.equal(await unmount(t, d, mnt), 0, 'and exits 0 on unmount');
      const f = await fsckVfatClean(img);
      t.ok(f.clean, 'fsck.vfat -n clean', { output: f.output });
      t.equal(sha(await mtoolsReadFile(img, '::/bad.bin')), sha(bad), 'mtools reads the file that failed: its data were never touched');
      t.equal((await mtoolsReadFile(img, '::/new.txt')).toString(), 'written after the failure\n', 'mtools reads the file written through the mount');
    });
  });
}
