/*
 * pjdfstest-style checks through lklfuse and the real kernel, where the filesystem supports
 * them: NAME_MAX (enforced by the daemon, since FUSE passes names of up to 1024 bytes),
 * permission checks by the host kernel with allow_other + default_permissions (ext4 modes;
 * vfat modes from uid=/gid=/fmask=), and unlinked open files that stay readable without
 * any .fuse_hidden file in the directory or the image.
 */
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { e2fsckClean, fsckVfatClean, makeExtImage, makeVfatImage, mtools, mtoolsList, mtoolsReadFile } from '../lib/images.js';
import { asNobody, box, type Box, daemonsFor, type Daemon, fuseSkip, isMounted, startForeground, waitFor, within, overTransports } from './real-helpers.js';

const skip = fuseSkip(['mkfs.vfat', 'fsck.vfat', 'mdir', 'mcopy', 'mattrib', 'mke2fs', 'e2fsck', 'setpriv', 'cat', 'sh']);

/** fusermount -u and the daemon's exit status 0. */
async function stop(t: Test, d: Daemon, mnt: string): Promise<void> {
  t.equal(spawnSync('fusermount', ['-u', mnt]).status, 0, 'fusermount -u');
  const ex = await within(d.exited, 60_000);
  t.ok(ex.ok && ex.value === 0, `the daemon exits 0 (${ex.ok ? ex.value : 'still running'})`, { stderr: d.stderr() });
  t.notOk(await isMounted(mnt), 'no mount left');
  t.ok(await waitFor(() => daemonsFor(mnt).length === 0, 5000), 'no process left');
}

async function vfatImage(b: Box, name: string): Promise<string> {
  return makeVfatImage({ fat: 32, sizeMiB: 64, path: b.path(`${name}.img`) });
}

const EACCES_RE = /Permission denied/;

overTransports(t, (t, transport) => {
  t.test('NAME_MAX on vfat: 256 bytes is ENAMETOOLONG, 255 bytes (and 255 UTF-8 bytes) work', { skip }, async (t) => {
    const b = box(t, 'posix-names-fat');
    const img = await vfatImage(b, 'names');
    const mnt = b.mnt();
    const d = await startForeground(img, mnt);

    const a256 = 'a'.repeat(256);
    t.throws(() => fs.writeFileSync(path.join(mnt, a256), ''), { code: 'ENAMETOOLONG' }, 'create, 256 bytes');
    t.throws(() => fs.mkdirSync(path.join(mnt, a256)), { code: 'ENAMETOOLONG' }, 'mkdir, 256 bytes');
    t.throws(() => fs.statSync(path.join(mnt, a256)), { code: 'ENAMETOOLONG' }, 'lookup, 256 bytes');
    t.throws(() => fs.writeFileSync(path.join(mnt, 'é'.repeat(128)), ''), { code: 'ENAMETOOLONG' }, '128 characters, 256 bytes');
    fs.writeFileSync(path.join(mnt, 'short'), 'x');
    t.throws(() => fs.renameSync(path.join(mnt, 'short'), path.join(mnt, a256)), { code: 'ENAMETOOLONG' }, 'rename to 256 bytes');
    t.ok(fs.existsSync(path.join(mnt, 'short')), 'the source of the refused rename is still there');

    const names = ['L'.repeat(255), `${'é'.repeat(127)}x`, '日'.repeat(85)];
    for (const n of names) {
      fs.writeFileSync(path.join(mnt, n), `content of ${Buffer.byteLength(n)}-byte name ${n.length} units\n`);
      t.equal(fs.readFileSync(path.join(mnt, n), 'utf8'), `content of 255-byte name ${n.length} units\n`, `create and read: ${n.slice(0, 3)}… (${n.length} UTF-16 units)`);
    }
    fs.mkdirSync(path.join(mnt, 'D'.repeat(255)));
    fs.writeFileSync(path.join(mnt, 'D'.repeat(255), 'inside'), 'in\n');
    t.strictSame(fs.readdirSync(mnt).sort(), ['D'.repeat(255), ...names, 'short'].sort(), 'readdir shows the long names');
    await stop(t, d, mnt);

    const ck = await fsckVfatClean(img);
    t.ok(ck.clean, 'fsck.vfat -n clean', { output: ck.output });
    const seen = (await mtoolsList(img)).entries.map((e) => e.path).sort();
    t.strictSame(seen, ['D'.repeat(255), `${'D'.repeat(255)}/inside`, ...names, 'short'].sort(), 'mtools reads the same long names');
    t.equal((await mtoolsReadFile(img, '日'.repeat(85))).toString(), 'content of 255-byte name 85 units\n', 'and the content');
  });

  t.test('ext4 read-only: lookups of 255-byte names work, 256 bytes is ENAMETOOLONG; modes with allow_other', { skip }, async (t) => {
    const b = box(t, 'posix-ext4');
    const src = b.path('src');
    fs.mkdirSync(path.join(src, 'closed'), { recursive: true });
    fs.writeFileSync(path.join(src, 'L'.repeat(255)), 'long\n');
    fs.writeFileSync(path.join(src, `${'é'.repeat(127)}x`), 'long utf8\n');
    fs.writeFileSync(path.join(src, 'private'), 'secret\n', { mode: 0o600 });
    fs.chmodSync(path.join(src, 'private'), 0o600);
    fs.writeFileSync(path.join(src, 'public'), 'for all\n');
    fs.chmodSync(path.join(src, 'public'), 0o644);
    fs.writeFileSync(path.join(src, 'closed', 'inner'), 'inner\n');
    fs.chmodSync(path.join(src, 'closed', 'inner'), 0o644);
    fs.chmodSync(path.join(src, 'closed'), 0o700);
    fs.writeFileSync(path.join(src, 'nobodys'), 'mine\n');
    fs.chmodSync(path.join(src, 'nobodys'), 0o600);
    fs.chownSync(path.join(src, 'nobodys'), 65534, 65534);
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 16, fromDir: src, path: b.path('ext4.img') });
    const mnt = b.mnt();
    const d = await startForeground(img, mnt, ['-o', 'ro,allow_other']);

    t.equal(fs.readFileSync(path.join(mnt, 'L'.repeat(255)), 'utf8'), 'long\n', '255 ASCII bytes');
    t.equal(fs.readFileSync(path.join(mnt, `${'é'.repeat(127)}x`), 'utf8'), 'long utf8\n', '255 UTF-8 bytes');
    t.throws(() => fs.statSync(path.join(mnt, 'L'.repeat(256))), { code: 'ENAMETOOLONG' }, '256 bytes: ENAMETOOLONG, not ENOENT');
    t.throws(() => fs.statSync(path.join(mnt, 'x'.repeat(1000))), { code: 'ENAMETOOLONG' }, '1000 bytes: ENAMETOOLONG');

    t.equal(fs.statSync(path.join(mnt, 'private')).mode & 0o7777, 0o600, 'private is 0600 through the mount');
    const priv = asNobody(['cat', path.join(mnt, 'private')]);
    t.not(priv.status, 0, 'uid 65534 cannot read a root file of mode 0600');
    t.match(priv.stderr, EACCES_RE, 'EACCES');
    const pub = asNobody(['cat', path.join(mnt, 'public')]);
    t.equal(pub.status, 0, 'uid 65534 reads a file of mode 0644', { stderr: pub.stderr });
    t.equal(pub.stdout, 'for all\n');
    const own = asNobody(['cat', path.join(mnt, 'nobodys')]);
    t.equal(own.status, 0, 'uid 65534 reads its own file of mode 0600', { stderr: own.stderr });
    const ls = asNobody(['ls', path.join(mnt, 'closed')]);
    t.not(ls.status, 0, 'uid 65534 cannot list a root directory of mode 0700');
    t.match(ls.stderr, EACCES_RE, 'EACCES');
    const inner = asNobody(['cat', path.join(mnt, 'closed', 'inner')]);
    t.not(inner.status, 0, 'nor reach a file in it');
    t.match(inner.stderr, EACCES_RE, 'EACCES');

    // Without allow_other, FUSE keeps other users out entirely (a shared read-only mount).
    const mnt2 = b.mnt('mnt2');
    const d2 = await startForeground(img, mnt2, ['-o', 'ro']);
    const out = asNobody(['cat', path.join(mnt2, 'public')]);
    t.not(out.status, 0, 'without allow_other, uid 65534 cannot read even a 0644 file');
    t.match(out.stderr, EACCES_RE, 'EACCES');
    await stop(t, d2, mnt2);
    await stop(t, d, mnt);
    t.ok((await e2fsckClean(img)).clean, 'e2fsck -fn clean');
  });

  t.test('vfat with allow_other: modes come from uid=/gid=/fmask=; the host kernel enforces them', { skip }, async (t) => {
    const b = box(t, 'posix-perm-fat');
    const img = await vfatImage(b, 'perm');
    const mnt = b.mnt();
    let d = await startForeground(img, mnt, ['-o', 'allow_other,opts=uid=0\\,gid=0\\,fmask=0077']);
    const f = path.join(mnt, 'file');
    fs.writeFileSync(f, 'fat content\n');
    fs.mkdirSync(path.join(mnt, 'dir'));
    let st = fs.statSync(f);
    t.equal(st.mode, 0o100700, 'a file is 0700 with fmask=0077');
    t.equal(st.uid, 0, 'owned by uid=0');
    t.equal(fs.statSync(path.join(mnt, 'dir')).mode, 0o40755, 'a directory is 0755 (dmask defaults to 022)');
    let r = asNobody(['cat', f]);
    t.not(r.status, 0, 'uid 65534 cannot read it');
    t.match(r.stderr, EACCES_RE, 'EACCES');
    t.equal(asNobody(['ls', path.join(mnt, 'dir')]).status, 0, 'but lists the 0755 directory');

    // Linux's fat_setattr: a mode the masks cannot express is ignored, and chmod succeeds.
    fs.chmodSync(f, 0o644);
    t.equal(fs.statSync(f).mode, 0o100700, 'chmod 644 succeeds and leaves 0700 (FAT cannot hold it)');
    t.match(asNobody(['cat', f]).stderr, EACCES_RE, 'still EACCES for uid 65534');
    // Dropping the w bits is what FAT can hold: the read-only attribute.
    fs.chmodSync(f, 0o500);
    t.equal(fs.statSync(f).mode, 0o100500, 'chmod 500 sets the read-only attribute (mode 0500)');
    fs.writeFileSync(path.join(mnt, 'stays'), 'x');
    await stop(t, d, mnt);
    const attrib = await mtools('mattrib', ['-i', img, '::/file']);
    t.match(attrib.stdout, /^\s*A?\s*R\s+::\/file/m, 'mtools sees the read-only attribute', { out: attrib.stdout });

    // Remounted with fmask=0022: the same file is readable by all; with uid=65534 it is theirs.
    d = await startForeground(img, mnt, ['-o', 'allow_other,opts=uid=0\\,gid=0\\,fmask=0022']);
    st = fs.statSync(f);
    t.equal(st.mode, 0o100555, 'fmask=0022: 0555 (the read-only attribute clears the w bits)');
    r = asNobody(['cat', f]);
    t.equal(r.status, 0, 'uid 65534 reads it now', { stderr: r.stderr });
    t.equal(r.stdout, 'fat content\n');
    t.equal(fs.statSync(path.join(mnt, 'stays')).mode, 0o100755, 'a writable file is 0755');
    await stop(t, d, mnt);

    d = await startForeground(img, mnt, ['-o', 'allow_other,opts=uid=65534\\,gid=65534\\,fmask=0077']);
    st = fs.statSync(path.join(mnt, 'stays'));
    t.strictSame([st.uid, st.gid, st.mode], [65534, 65534, 0o100700], 'uid=65534,gid=65534,fmask=0077: owned by 65534, 0700');
    r = asNobody(['cat', path.join(mnt, 'stays')]);
    t.equal(r.status, 0, 'its owner reads it', { stderr: r.stderr });
    await stop(t, d, mnt);
    const ck = await fsckVfatClean(img);
    t.ok(ck.clean, 'fsck.vfat -n clean', { output: ck.output });
  });

  t.test('vfat: unlinked open files stay readable; no .fuse_hidden anywhere', { skip }, async (t) => {
    const b = box(t, 'posix-unlink');
    const img = await vfatImage(b, 'unlink');
    const mnt = b.mnt();
    const d = await startForeground(img, mnt);
    const hidden = (dir: string) => fs.readdirSync(dir).filter((n) => n.startsWith('.fuse_hidden'));

    // In the test process: open, unlink, keep reading and writing through the fd.
    const big = Buffer.alloc(300_000);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + 3) & 0xff;
    fs.writeFileSync(path.join(mnt, 'open-me'), big);
    const fd = fs.openSync(path.join(mnt, 'open-me'), 'r+');
    fs.unlinkSync(path.join(mnt, 'open-me'));
    t.notOk(fs.existsSync(path.join(mnt, 'open-me')), 'the name is gone');
    t.strictSame(hidden(mnt), [], 'no .fuse_hidden file in the directory');
    const back = Buffer.alloc(big.length);
    t.equal(fs.readSync(fd, back, 0, back.length, 0), big.length, 'the whole file reads through the open fd');
    t.ok(back.equals(big), 'with the right content');
    t.equal(fs.writeSync(fd, Buffer.from('appended'), 0, 8, big.length), 8, 'it takes a write');
    t.equal(fs.fstatSync(fd).size, big.length + 8, 'it grows when written');
    const tail = Buffer.alloc(8);
    fs.readSync(fd, tail, 0, 8, big.length);
    t.equal(tail.toString(), 'appended', 'and reads back what was written');
    fs.closeSync(fd);

    // Its directory can be removed while it is open.
    fs.mkdirSync(path.join(mnt, 'dir'));
    fs.writeFileSync(path.join(mnt, 'dir', 'inner'), 'inner content\n');
    const fd2 = fs.openSync(path.join(mnt, 'dir', 'inner'), 'r');
    fs.unlinkSync(path.join(mnt, 'dir', 'inner'));
    t.strictSame(fs.readdirSync(path.join(mnt, 'dir')), [], 'the directory looks empty');
    fs.rmdirSync(path.join(mnt, 'dir'));
    t.notOk(fs.existsSync(path.join(mnt, 'dir')), 'rmdir of its directory works');
    // POSIX and Linux say fd2 still reads. Over fuse-native it does not: libfuse 2's
    // high-level API finds a file's path through its parent's node, which rmdir unhashed, so
    // read() fails ENOENT inside libfuse before lklfuse sees it (only flag_nullpath_ok in
    // fuse_operations avoids that, and fuse-native's native code does not set it: a limit of
    // the FUSE binding, listed in the README). The kernel transport reads by handle.
    if (transport === 'kernel') {
      const inner = Buffer.alloc(64);
      const n = fs.readSync(fd2, inner, 0, 64, 0);
      t.equal(inner.subarray(0, n).toString(), 'inner content\n', 'the file still reads after its directory is gone');
    }
    fs.closeSync(fd2);

    // In a child process: open on fd 3, rm, cat from fd 3.
    fs.writeFileSync(path.join(mnt, 'child'), 'read by a child after rm\n');
    const sh = spawnSync('sh', ['-c', 'exec 3<"$1"; rm -- "$1" || exit 9; ls -a "$(dirname "$1")"; echo ---; cat <&3', 'sh', path.join(mnt, 'child')], { encoding: 'utf8' });
    t.equal(sh.status, 0, 'the child ran', { stderr: sh.stderr });
    const [listing, content] = sh.stdout.split('---\n');
    t.notMatch(listing!, /child|\.fuse_hidden/, 'while open: neither the name nor a .fuse_hidden file is listed');
    t.equal(content, 'read by a child after rm\n', 'the child reads it through its fd');

    fs.writeFileSync(path.join(mnt, 'kept'), 'kept\n');
    t.strictSame(fs.readdirSync(mnt), ['kept'], 'only the kept file is left');
    await stop(t, d, mnt);

    const ck = await fsckVfatClean(img);
    t.ok(ck.clean, 'fsck.vfat -n clean (the unlinked files\' clusters were freed)', { output: ck.output });
    const list = (await mtoolsList(img)).entries.map((e) => e.path);
    t.strictSame(list, ['kept'], 'mtools: only the kept file, no .fuse_hidden file in the image');
  });
});
