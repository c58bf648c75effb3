/*
 * Long paths through a real lklfuse mount (issue 12, item 1), over both transports, on a
 * read-write ext4: a relative path argument of 4,095 bytes (PATH_MAX - 1) works as on Linux
 * and 4,096 is ENAMETOOLONG; and a tree deeper than 4 KiB below the mount root is reachable
 * step by step through a deep working directory, as on Linux, which has no depth limit:
 * over the kernel transport because it walks by node, over fuse-native (whose libfuse 2
 * hands the daemon whole paths from the root) because ops.ts walks such paths in pieces.
 * There, files are made, written, read, stat'ed, chmod'ed, renamed, given an xattr,
 * symlinked and deleted; then e2fsck and the host kernel check the image.
 */
import t from 'tap';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { e2fsckClean, makeExtImage, withLoopMount } from '../lib/images.js';
import { box, daemonsFor, fuseSkip, lklfuse, overTransports, waitFor } from './real-helpers.js';

const skip = fuseSkip(['mke2fs', 'e2fsck', 'mkdir', 'test', 'setfattr', 'getfattr']);

/** Components of `len` bytes joined by '/', `total` bytes long overall (the last one shorter). */
function pathOf(total: number, comp = 200): string {
  const parts: string[] = [];
  let used = 0;
  while (used < total) {
    const sep = parts.length ? 1 : 0;
    const n = Math.min(comp, total - used - sep);
    if (n <= 0) { parts[parts.length - 1] += 'z'.repeat(total - used); used = total; break; }
    parts.push(String.fromCharCode(97 + (parts.length % 26)).repeat(n));
    used += n + sep;
  }
  return parts.join('/');
}

/*
 * Run in the mount, with the deep path as argument: steps down (mkdir + relative chdir),
 * then works in the deep directory and prints what it saw as JSON. setfattr/getfattr are
 * run from there too (children inherit the deep working directory).
 */
const WALKER = `const fs = require('fs'); const { execFileSync } = require('child_process');
  for (const c of process.argv[1].split('/')) { fs.mkdirSync(c); process.chdir(c); }
  const out = {};
  fs.writeFileSync('old', 'deep\\n');
  fs.renameSync('old', 'file');
  out.read = fs.readFileSync('file', 'utf8');
  out.size = fs.statSync('file').size;
  fs.chmodSync('file', 0o640);
  out.mode = (fs.statSync('file').mode & 0o7777).toString(8);
  out.renamedGone = !fs.existsSync('old');
  execFileSync('setfattr', ['-n', 'user.deep', '-v', 'there', 'file']);
  out.xattr = execFileSync('getfattr', ['--absolute-names', '-n', 'user.deep', 'file'], { encoding: 'utf8' })
    .split('\\n').find((l) => l.startsWith('user.deep'));
  fs.symlinkSync('file', 'link');
  out.link = fs.readlinkSync('link');
  out.viaLink = fs.readFileSync('link', 'utf8');
  out.linkIsLink = fs.lstatSync('link').isSymbolicLink();
  fs.writeFileSync('gone', 'x'); fs.unlinkSync('gone'); out.goneGone = !fs.existsSync('gone');
  fs.mkdirSync('sub'); fs.rmdirSync('sub'); out.subGone = !fs.existsSync('sub');
  out.list = fs.readdirSync('.').sort();
  process.stdout.write(JSON.stringify(out));`;

/* The same tree read back through the host kernel's ext4 (loop mount). */
const HOST_READER = `const fs = require('fs'); const { execFileSync } = require('child_process');
  for (const c of process.argv[1].split('/')) process.chdir(c);
  process.stdout.write(JSON.stringify({
    read: fs.readFileSync('file', 'utf8'), mode: (fs.statSync('file').mode & 0o7777).toString(8),
    xattr: execFileSync('getfattr', ['--absolute-names', '-n', 'user.deep', 'file'], { encoding: 'utf8' })
      .split('\\n').find((l) => l.startsWith('user.deep')),
    link: fs.readlinkSync('link'), list: fs.readdirSync('.').sort(),
  }));`;

overTransports(t, (t, transport) => {
  t.test('PATH_MAX - 1 bytes work, PATH_MAX is ENAMETOOLONG; depth past 4 KiB', { skip }, async (t) => {
    const b = box(t, `lkl-long-${transport}`);
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 4096, features: ['^has_journal'], path: b.path('disk.img') });
    const mnt = b.mnt();
    const r = await lklfuse([img, mnt]);
    t.equal(r.status, 0, 'mounted', { stderr: r.stderr });
    if (r.status !== 0) return;
    const p4095 = pathOf(4095);
    t.equal(p4095.length, 4095);
    const parent = path.dirname(p4095);
    t.equal(spawnSync('mkdir', ['-p', parent], { cwd: mnt }).status, 0, 'mkdir -p of the parents');
    const ok = spawnSync('mkdir', [p4095], { cwd: mnt, encoding: 'utf8' });
    t.equal(ok.status, 0, 'mkdir of a 4,095-byte relative path', { stderr: ok.stderr });
    const tooLong = spawnSync('mkdir', [p4095 + 'x'], { cwd: mnt, encoding: 'utf8' });
    t.not(tooLong.status, 0, 'a 4,096-byte path fails');
    t.match(tooLong.stderr, /File name too long/, 'with ENAMETOOLONG');

    // 25 levels of 200-byte names: about 5 KiB below the root, reached relative to a deep
    // working directory (each step a relative chdir, as a shell user would cd down).
    const deepRel = Array.from({ length: 25 }, (_, i) => String.fromCharCode(65 + i).repeat(200)).join('/');
    t.ok(Buffer.byteLength(deepRel) > 5000, 'the tree is over 5,000 bytes deep');
    const deep = spawnSync(process.execPath, ['-e', WALKER, deepRel], { cwd: mnt, encoding: 'utf8' });
    t.equal(deep.status, 0, 'the deep work ran', { stderr: deep.stderr });
    const got = deep.status === 0 ? JSON.parse(deep.stdout) as Record<string, unknown> : {};
    t.same(got, {
      read: 'deep\n', size: 5, mode: '640', renamedGone: true, xattr: 'user.deep="there"',
      link: 'file', viaLink: 'deep\n', linkIsLink: true, goneGone: true, subGone: true,
      list: ['file', 'link'],
    }, 'made, written, read, stat, chmod, rename, xattr, symlink and delete 5 KiB deep');
    t.equal(spawnSync('fusermount', ['-u', mnt]).status, 0, 'fusermount -u');
    t.ok(await waitFor(() => daemonsFor(mnt).length === 0, 60_000), 'the daemon exits');
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn is clean', { output: ck.output });
    await withLoopMount(img, { ro: true }, async (m) => {
      t.equal(spawnSync('test', ['-d', p4095], { cwd: m }).status, 0, 'the host kernel finds the 4,095-byte path');
      const host = spawnSync(process.execPath, ['-e', HOST_READER, deepRel], { cwd: m, encoding: 'utf8' });
      t.equal(host.status, 0, 'the host reader ran', { stderr: host.stderr });
      t.same(host.status === 0 ? JSON.parse(host.stdout) : {}, {
        read: 'deep\n', mode: '640', xattr: 'user.deep="there"', link: 'file', list: ['file', 'link'],
      }, 'and the deep tree: the file, its mode and xattr, the symlink, nothing deleted left');
    });
  });
});
