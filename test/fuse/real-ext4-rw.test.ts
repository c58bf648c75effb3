/*
 * ext4 read-write through a real lklfuse mount (images without a journal: ext4
 * `-O ^has_journal` and ext2): `cp -a` of a tree, `tar -x` of an archive of it, an editor's
 * save loop (write a temporary file, fsync, rename over the original), `rm -rf` of a
 * subtree, a file grown past 4 GiB sparsely; then fusermount -u, and the judges: e2fsck -fn
 * clean, and the host kernel (loop mount) reads exactly the expected tree (contents, modes,
 * owners, link counts, symlinks, mtimes to the second, extended attributes and ACLs).
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { e2fsckClean, makeExtImage, withLoopMount } from '../lib/images.js';
import { diffManifests, hostManifest } from '../lib/manifest.js';
import { asNobody, box, daemonsFor, fuseSkip, isMounted, lklfuse, overTransports, waitFor } from './real-helpers.js';

const skip = fuseSkip(['mke2fs', 'e2fsck', 'cp', 'tar', 'losetup', 'mount', 'setfattr', 'setfacl', 'getfattr']);

const sh = (cmd: string, ...args: string[]) => spawnSync(cmd, args, { stdio: 'pipe', encoding: 'utf8' });

function buildSource(root: string): void {
  fs.mkdirSync(path.join(root, 'sub/deeper'), { recursive: true });
  fs.mkdirSync(path.join(root, 'empty-dir'));
  for (let i = 0; i < 40; i++) {
    const b = Buffer.alloc(i * 997 + (i % 3) * 4096);
    for (let j = 0; j < b.length; j++) b[j] = (i * 31 + j * 7) & 0xff;
    fs.writeFileSync(path.join(root, i % 2 ? 'sub' : 'sub/deeper', `file-${i}.bin`), b);
  }
  fs.writeFileSync(path.join(root, 'readme.txt'), 'hello ext4\n');
  fs.chmodSync(path.join(root, 'readme.txt'), 0o640);
  fs.chownSync(path.join(root, 'readme.txt'), 1000, 1000);
  fs.symlinkSync('sub/file-1.bin', path.join(root, 'link'));
  fs.symlinkSync('y'.repeat(200), path.join(root, 'long-link'));
  fs.linkSync(path.join(root, 'readme.txt'), path.join(root, 'hard'));
  const big = Buffer.alloc(3 * 1024 * 1024 + 5);
  for (let j = 0; j < big.length; j++) big[j] = (j * 13) & 0xff;
  fs.writeFileSync(path.join(root, 'big.bin'), big);
  // Extended attributes and ACLs: cp -a and tar --xattrs --acls carry them over.
  spawnSync('setfattr', ['-n', 'user.note', '-v', 'hello', path.join(root, 'readme.txt')]);
  spawnSync('setfattr', ['-n', 'user.big', '-v', '0x' + 'ab'.repeat(2000), path.join(root, 'sub/file-1.bin')]);
  spawnSync('setfacl', ['-m', 'u:1234:rwx,g:55:r-x', path.join(root, 'sub')]);
  spawnSync('setfacl', ['-d', '-m', 'u:1234:rwx', path.join(root, 'sub')]);
  spawnSync('setfacl', ['-m', 'u:4321:r--', path.join(root, 'big.bin')]);
  for (const p of ['sub/deeper', 'sub', 'empty-dir', '.']) fs.utimesSync(path.join(root, p), 1_500_000_000, 1_500_000_000);
}

overTransports(t, (t, transport) => {
for (const kind of [
  { name: 'ext4 -O ^has_journal', type: 'ext4' as const, features: ['^has_journal'] },
  { name: 'ext2', type: 'ext2' as const, features: [] },
]) {
  t.test(`${kind.name}: cp -a, tar -x, editor saves, rm -rf through lklfuse; e2fsck clean, the host reads the tree`, { skip }, async (t) => {
    const b = box(t, `lkl-rw-${kind.type}`);
    const src = b.path('src');
    fs.mkdirSync(src);
    buildSource(src);
    const tarball = b.path('src.tar');
    t.equal(sh('tar', '--xattrs', '--xattrs-include=*', '--acls', '-C', src, '-cf', tarball, '.').status, 0, 'tar -c of the source');
    const img = await makeExtImage({ type: kind.type, sizeMiB: 256, blockSize: 4096, features: kind.features, path: b.path('disk.img') });
    const mnt = b.mnt();
    const r = await lklfuse([img, mnt, ...(transport === 'kernel' ? ['-o', 'allow_other'] : [])]);
    t.equal(r.status, 0, 'lklfuse mounts the image read-write', { stderr: r.stderr });
    if (r.status !== 0) return;

    // Over the kernel transport each request runs with its caller's credentials: a file
    // another user creates is theirs, on disk too (fuse-native cannot tell who calls).
    if (transport === 'kernel') {
      fs.mkdirSync(path.join(mnt, 'shared'), { mode: 0o777 });
      fs.chmodSync(path.join(mnt, 'shared'), 0o777);
      const made = asNobody(['sh', '-c', `echo mine > ${path.join(mnt, 'shared', 'by-nobody')}`]);
      t.equal(made.status, 0, 'uid 65534 creates a file in a mode-777 directory', { stderr: made.stderr });
    }
    const cp = sh('cp', '-a', `${src}/.`, path.join(mnt, 'copy'));
    t.equal(cp.status, 0, 'cp -a', { stderr: cp.stderr });
    fs.mkdirSync(path.join(mnt, 'untar'));
    const x = sh('tar', '--xattrs', '--xattrs-include=*', '--acls', '-C', path.join(mnt, 'untar'), '-xpf', tarball);
    t.equal(x.status, 0, 'tar -x', { stderr: x.stderr });
    // An editor's save: new content to a temporary file, fsync, rename over the original.
    const doc = path.join(mnt, 'doc.txt');
    for (let i = 0; i < 30; i++) {
      const tmp = `${doc}.swp`;
      const fd = fs.openSync(tmp, 'w', 0o644);
      fs.writeSync(fd, `version ${i}\n`.repeat(i * 50 + 1));
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      fs.renameSync(tmp, doc);
    }
    t.equal(fs.readFileSync(doc, 'utf8'), 'version 29\n'.repeat(29 * 50 + 1), 'the last save reads back');
    t.equal(sh('rm', '-rf', path.join(mnt, 'copy', 'sub', 'deeper')).status, 0, 'rm -rf of a subtree');
    // Sparse past 4 GiB: the extent tree / block map addresses it; df does not move much.
    const fd = fs.openSync(path.join(mnt, 'sparse'), 'w');
    fs.writeSync(fd, 'far', 4 * 1024 ** 3 + 12345);
    fs.closeSync(fd);
    t.equal(fs.statSync(path.join(mnt, 'sparse')).size, 4 * 1024 ** 3 + 12348, 'sparse size past 4 GiB');

    t.equal(sh('fusermount', '-u', mnt).status, 0, 'fusermount -u');
    t.ok(await waitFor(() => daemonsFor(mnt).length === 0, 60_000), 'the daemon exits');
    t.notOk(await isMounted(mnt), 'no mount left');

    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn is clean', { output: ck.output });
    const want = await hostManifest(src, { producer: 'source' });
    const wantCopy = { ...want, entries: want.entries.filter((e) => !/^sub\/deeper(\/|$)/.test(e.path)) };
    await withLoopMount(img, { ro: true }, async (m) => {
      const opts = { ignore: ['atime', 'ctime'] as ('atime' | 'ctime')[], timePrecisionNs: 1_000_000_000n,
        ignoreAt: [{ path: '.', fields: ['mtime', 'nlink'] as ('mtime' | 'nlink')[], why: 'the copy\'s root was changed by rm -rf' },
          { path: 'sub', fields: ['mtime', 'nlink'] as ('mtime' | 'nlink')[], why: 'rm -rf removed sub/deeper' }] };
      const copy = await hostManifest(path.join(m, 'copy'), { producer: 'host: copy' });
      t.same(diffManifests(wantCopy, copy, opts), [], 'cp -a: the host kernel reads the source tree (without the removed subtree)');
      const untar = await hostManifest(path.join(m, 'untar'), { producer: 'host: untar' });
      // tar sets mtime with atime UTIME_OMIT: over fuse-native such a one-sided utimensat
      // does not arrive as asked (issue 12, item 2), so there tar's mtimes are not compared.
      const untarOpts = transport === 'kernel'
        ? { ...opts, ignoreAt: [{ path: '.', fields: ['mtime'] as 'mtime'[], why: 'tar -C sets it before the files' }] }
        : { ...opts, ignore: ['atime', 'ctime', 'mtime'] as ('atime' | 'ctime' | 'mtime')[] };
      t.same(diffManifests(want, untar, untarOpts), [], `tar -x: the host kernel reads the source tree${transport === 'kernel' ? '' : ' (mtimes aside)'}`);
      t.equal(fs.readFileSync(path.join(m, 'doc.txt'), 'utf8'), 'version 29\n'.repeat(29 * 50 + 1), 'the saved document');
      if (transport === 'kernel') {
        const st = fs.statSync(path.join(m, 'shared', 'by-nobody'));
        t.same([st.uid, st.gid], [65534, 65534], 'the file uid 65534 made is owned by 65534:65534 on disk');
      }
      t.notOk(fs.existsSync(path.join(m, 'doc.txt.swp')), 'no temporary file left');
      const sp = fs.openSync(path.join(m, 'sparse'), 'r');
      const tail = Buffer.alloc(3);
      fs.readSync(sp, tail, 0, 3, 4 * 1024 ** 3 + 12345);
      fs.closeSync(sp);
      t.equal(tail.toString(), 'far', 'the bytes past 4 GiB');
    });
  });
}
});
