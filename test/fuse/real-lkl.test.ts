/*
 * LKL's own lklfuse test (tools/lkl/tests/lklfuse.sh), in spirit, against the real kernel:
 * on a fresh image, mount in the background, touch, rm, mkdir, rmdir through the mount; a
 * second lklfuse on the same image is refused (exit 2, one line); unmount; fsck is clean.
 * vfat read-write (FAT16 and FAT32); ext4 read-only (only reads apply; shared locks).
 */
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { e2fsckClean, fsckVfatClean, makeExtImage, makeVfatImage, mtoolsList, mtoolsReadFile } from '../lib/images.js';
import { box, daemonsFor, fatDirtyBit, fuseSkip, holdersOf, isMounted, lklfuse, sha256File, waitFor, overTransports } from './real-helpers.js';

const skip = fuseSkip(['mkfs.vfat', 'fsck.vfat', 'mdir', 'mcopy', 'mke2fs', 'e2fsck', 'touch', 'flock']);

/** Runs a command, like the shell script would; returns its status. */
const sh = (cmd: string, ...args: string[]) => spawnSync(cmd, args, { stdio: 'pipe' });

/** fusermount -u, then wait for the background daemon (and its lock helper) to go. */
async function unmount(t: Test, mnt: string, img: string, last = true): Promise<void> {
  t.equal(sh('fusermount', '-u', mnt).status, 0, `fusermount -u ${path.basename(mnt)}`);
  t.ok(await waitFor(() => daemonsFor(mnt).length === 0, 60_000), 'the daemon exits');
  t.notOk(await isMounted(mnt), 'no mount left');
  if (last) t.ok(await waitFor(() => holdersOf(img).length === 0, 5000), 'nothing holds the image open (lock released)');
}

overTransports(t, (t) => {
  for (const fat of [16, 32] as const) {
    t.test(`vfat (FAT${fat}): touch, rm, mkdir, rmdir; the lock; fsck clean`, { skip }, async (t) => {
      const b = box(t, `lkl-fat${fat}`);
      const img = await makeVfatImage({ fat, sizeMiB: fat === 16 ? 32 : 64, path: b.path('disk.img') });
      const mnt = b.mnt();
      const r = await lklfuse([img, mnt]);
      t.equal(r.status, 0, 'lklfuse IMAGE MNT exits 0 once mounted');
      t.equal(r.stderr, '', 'and says nothing');
      t.ok(await isMounted(mnt), 'mounted');

      const f = path.join(mnt, 'file');
      t.equal(sh('touch', f).status, 0, 'touch');
      t.ok(fs.statSync(f).isFile(), 'the file exists');
      t.equal(fs.statSync(f).size, 0, 'empty');
      t.equal(sh('rm', f).status, 0, 'rm');
      t.notOk(fs.existsSync(f), 'gone');
      const d = path.join(mnt, 'dir');
      t.equal(sh('mkdir', d).status, 0, 'mkdir');
      t.ok(fs.statSync(d).isDirectory(), 'the directory exists');
      t.equal(sh('touch', path.join(d, 'inner')).status, 0, 'touch in the directory');
      t.equal(sh('rmdir', d).status !== 0, true, 'rmdir of a non-empty directory fails');
      t.equal(sh('rm', path.join(d, 'inner')).status, 0, 'rm inner');
      t.equal(sh('rmdir', d).status, 0, 'rmdir');
      t.notOk(fs.existsSync(d), 'gone');
      t.strictSame(fs.readdirSync(mnt), [], 'the root is empty again');
      // Something to find afterwards.
      fs.mkdirSync(path.join(mnt, 'kept'));
      fs.writeFileSync(path.join(mnt, 'kept', 'hello.txt'), 'hello from lklfuse\n');

      const other = b.mnt('mnt2');
      for (const extra of [[], ['-o', 'ro']]) {
        const second = await lklfuse([img, other, ...extra]);
        t.equal(second.status, 2, `a second lklfuse ${extra.join(' ')} on the image exits 2`);
        const lines = second.stderr.split('\n').filter(Boolean);
        t.equal(lines.length, 1, 'one line', { stderr: second.stderr });
        t.match(lines[0], /^lklfuse: .*disk\.img: image is locked by another lklfuse/, 'saying the image is locked');
        t.notOk(await isMounted(other), 'nothing mounted');
      }

      await unmount(t, mnt, img);
      const ck = await fsckVfatClean(img);
      t.ok(ck.clean, 'fsck.vfat -n is clean', { output: ck.output });
      t.notOk(fatDirtyBit(img), 'dirty bit clear');
      const list = await mtoolsList(img);
      t.strictSame(list.entries.map((e) => `${e.type} ${e.path}`).sort(), ['dir kept', 'file kept/hello.txt'], 'mtools sees what was left');
      t.equal((await mtoolsReadFile(img, 'kept/hello.txt')).toString(), 'hello from lklfuse\n', 'with its content');

      // The lock is gone with the daemon: the image mounts again.
      const again = await lklfuse([img, other]);
      t.equal(again.status, 0, 'mounts again after the unmount', { stderr: again.stderr });
      t.equal(fs.readFileSync(path.join(other, 'kept', 'hello.txt'), 'utf8'), 'hello from lklfuse\n', 'and reads back');
      await unmount(t, other, img);
      t.ok((await fsckVfatClean(img)).clean, 'still clean');
    });
  }

  t.test('ext4 read-only: reads, writes refused, shared lock, exclusive refused; image untouched', { skip }, async (t) => {
    const b = box(t, 'lkl-ext4');
    const src = b.path('src');
    fs.mkdirSync(path.join(src, 'dir'), { recursive: true });
    fs.writeFileSync(path.join(src, 'dir', 'file'), 'ext4 content\n');
    fs.writeFileSync(path.join(src, 'top'), Buffer.alloc(300_000, 0x61));
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 32, fromDir: src, path: b.path('disk.img') });
    const before = { sha: sha256File(img), mtimeMs: fs.statSync(img).mtimeMs };
    const mnt = b.mnt();
    const r = await lklfuse([img, mnt, '-o', 'ro']);
    t.equal(r.status, 0, 'lklfuse IMAGE MNT -o ro exits 0', { stderr: r.stderr });
    t.equal(fs.readFileSync(path.join(mnt, 'dir', 'file'), 'utf8'), 'ext4 content\n', 'read a file');
    t.equal(fs.statSync(path.join(mnt, 'top')).size, 300_000, 'stat');
    t.strictSame(fs.readdirSync(mnt).sort(), ['dir', 'lost+found', 'top'], 'readdir');
    for (const [what, fn] of [
      ['touch', () => fs.writeFileSync(path.join(mnt, 'new'), '')],
      ['rm', () => fs.unlinkSync(path.join(mnt, 'top'))],
      ['mkdir', () => fs.mkdirSync(path.join(mnt, 'newdir'))],
      ['rmdir', () => fs.rmdirSync(path.join(mnt, 'lost+found'))],
    ] as const) {
      t.throws(fn, { code: 'EROFS' }, `${what} fails with EROFS`);
    }

    const ro2 = b.mnt('mnt2');
    const shared = await lklfuse([img, ro2, '-o', 'ro']);
    t.equal(shared.status, 0, 'a second read-only lklfuse shares the image', { stderr: shared.stderr });
    t.equal(fs.readFileSync(path.join(ro2, 'dir', 'file'), 'utf8'), 'ext4 content\n', 'and reads it');
    const rw = await lklfuse([img, b.mnt('mnt3')]);
    t.equal(rw.status, 2, 'a read-write lklfuse on it exits 2');
    const lines = rw.stderr.split('\n').filter(Boolean);
    t.equal(lines.length, 1, 'one line', { stderr: rw.stderr });
    t.match(lines[0], /^lklfuse: .*disk\.img: image is locked by another lklfuse/, 'saying the image is locked');

    await unmount(t, ro2, img, false);
    await unmount(t, mnt, img);
    t.equal(sha256File(img), before.sha, 'the image bytes are unchanged');
    t.equal(fs.statSync(img).mtimeMs, before.mtimeMs, 'the image mtime is unchanged');
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn is clean', { output: ck.output });
  });
});
