// The differential machinery on ext4, judged against itself: the standard tree written by
// the host kernel on a loop-mounted ext4 image, its manifest, the same source copied by
// `mke2fs -d` into a second image, both images checked by e2fsck and compared through
// loop mounts. Shows what mke2fs -d loses (MKE2FS_D_LOSSES) and that a changed byte shows.
//
// LKL_TEST_BIGDIR sets the size of the big directory (default 2,000; the full tree has 50,000).

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { e2fsckClean, makeExtImage, withLoopMount } from '../lib/images.js';
import { buildTree, contentBytes, manyNames, sha256, standardTree, xattrValueBytes, type TreeSpec } from '../lib/tree.js';
import { diffManifests, entryAt, hostManifest, MKE2FS_D_LOSSES, type Manifest } from '../lib/manifest.js';
import { run, whyNot } from '../lib/sh.js';
import { leftovers, scratchDir } from '../lib/scratch.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'losetup', 'mount', 'getfattr', 'setfattr', 'setfacl', 'mknod', 'touch', 'filefrag'], { root: true });
const N = Number(process.env.LKL_TEST_BIGDIR ?? 2000);

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'diff-ext');
  const spec: TreeSpec = standardTree({ bigDirCount: N });
  const imageOpts = { type: 'ext4', sizeMiB: 160, blockSize: 4096, inodes: N + 4096, dir } as const;
  let imgA = '';
  let imgB = '';
  let kernel: Manifest | undefined;
  let mke2fs: Manifest | undefined;

  t.test('build the standard tree through the host kernel', async t => {
    imgA = await makeExtImage(imageOpts);
    await withLoopMount(imgA, { options: ['noatime'] }, async mnt => {
      const root = path.join(mnt, 'tree');
      fs.mkdirSync(root);
      const t0 = Date.now();
      await buildTree(root, spec);
      const t1 = Date.now();
      kernel = await hostManifest(root, { producer: 'kernel' });
      t.comment(`built ${kernel.entries.length} entries in ${t1 - t0} ms, manifest in ${Date.now() - t1} ms`);
    });
    const ck = await e2fsckClean(imgA);
    t.ok(ck.clean, 'image written by the host kernel passes e2fsck -fn', { output: ck.output });
  });

  t.test('the built tree is what the spec says', async t => {
    const m = kernel!;
    for (const node of spec.nodes) {
      const e = entryAt(m, node.path);
      if (!e) { t.fail(`${node.path} missing`); continue; }
      const name = node.path.length > 60 ? `${node.path.slice(0, 57)}...` : node.path;
      switch (node.kind) {
        case 'file':
          t.equal(e.type, 'file', `${name} is a file`);
          if (node.content && node.content.kind !== 'text' && node.content.size > 64 * 1024 * 1024) {
            t.equal(e.size, node.content.size, `${name} size`);
          } else if (node.content) {
            t.equal(e.sha256, sha256(contentBytes(node.path, node.content)), `${name} content`);
          }
          break;
        case 'symlink': t.equal(e.target, node.target, `${name} target`); break;
        case 'hardlink': t.ok(e.links?.includes(node.target), `${name} shares the inode of ${node.target}`); break;
        case 'chr': case 'blk': t.equal(`${e.type} ${e.rdev}`, `${node.kind} ${node.major}:${node.minor}`, `${name} device`); break;
        case 'fifo': t.equal(e.type, 'fifo', `${name} is a fifo`); break;
        case 'socket': t.equal(e.type, 'sock', `${name} is a socket`); break;
        case 'many': t.equal(m.entries.filter(x => x.path.startsWith(`${node.path}/`)).length, node.count, `${name} has ${node.count} entries`); break;
        case 'dir': t.equal(e.type, 'dir', `${name} is a dir`); break;
      }
      if (node.kind === 'hardlink' || node.kind === 'many') continue;
      if (node.mtimeNs !== undefined) t.equal(e.mtimeNs, node.mtimeNs, `${name} mtime to the ns`);
      if (node.atimeNs !== undefined) t.equal(e.atimeNs, node.atimeNs, `${name} atime to the ns`);
      if ('uid' in node && node.uid !== undefined) t.equal(e.uid, node.uid, `${name} uid`);
      if ('gid' in node && node.gid !== undefined) t.equal(e.gid, node.gid, `${name} gid`);
      if ('mode' in node && node.mode !== undefined && !('acl' in node && node.acl)) t.equal(e.mode, node.mode, `${name} mode`);
      for (const [k, v] of Object.entries(node.xattrs ?? {})) {
        t.equal(e.xattrs?.[k], xattrValueBytes(node.path, k, v).toString('hex'), `${name} xattr ${k}`);
      }
      if ('acl' in node && node.acl) t.ok(e.xattrs?.['system.posix_acl_access'], `${name} has an access ACL`);
      if (node.kind === 'dir' && node.defaultAcl) t.ok(e.xattrs?.['system.posix_acl_default'], `${name} has a default ACL`);
    }
    const inherited = entryAt(m, 'acl/dir/inherited');
    t.ok(inherited?.xattrs?.['system.posix_acl_access'], 'a file made in a dir with a default ACL inherits an access ACL');
    t.equal(entryAt(m, `bigdir/${manyNames(N).at(-1)}`)?.type, 'file', 'last big-dir entry present');
  });

  t.test('a second ro mount reads the same manifest', async t => {
    await withLoopMount(imgA, { ro: true, noload: true }, async mnt => {
      const again = await hostManifest(path.join(mnt, 'tree'), { producer: 'kernel-again' });
      t.strictSame(diffManifests(kernel!, again), [], 'identical, atime and ctime included');
    });
  });

  t.test('mke2fs -d copy of the same source', async t => {
    await withLoopMount(imgA, { ro: true, noload: true }, async mnt => {
      imgB = await makeExtImage({ ...imageOpts, fromDir: path.join(mnt, 'tree') });
    });
    const ck = await e2fsckClean(imgB);
    t.ok(ck.clean, 'image written by mke2fs -d passes e2fsck -fn', { output: ck.output });
    await withLoopMount(imgB, { ro: true, noload: true }, async mnt => {
      mke2fs = await hostManifest(mnt, { producer: 'mke2fs -d', exclude: ['lost+found'] });
    });

    const full = diffManifests(kernel!, mke2fs!, { ignore: ['ctime'], maxDiffs: 10_000 });
    t.comment(`what mke2fs -d loses (${full.length} differences, ctime not compared):\n${full.join('\n')}`);
    // Each loss is one of the known kinds, at the paths where the spec asks for it.
    const unexpected = full.filter(line => {
      const m = /^(.*?): (\w+) /.exec(line);
      if (!m) return true;
      const [, p, field] = m;
      if (p === '.') return !['nlink', 'mtime', 'atime'].includes(field!);
      if (field === 'dirSize') return false;
      if (field === 'mtime' || field === 'atime') return !p!.startsWith('times/');
      return true;
    });
    t.strictSame(unexpected, [], 'no loss beyond times, the root and directory sizes');
    t.ok(full.some(l => l.startsWith('times/ns: mtime')), 'nanoseconds lost');
    t.ok(full.some(l => l.startsWith('times/post2038: mtime') && l.includes('1906-')), 'a 2042 time comes back as 1906');
    t.strictSame(diffManifests(kernel!, mke2fs!, MKE2FS_D_LOSSES), [], 'equal once MKE2FS_D_LOSSES are allowed for');
  });

  t.test('a difference is detected: one byte, one mode bit, one xattr byte, one link', async t => {
    const imgC = path.join(dir, 'changed.img');
    fs.copyFileSync(imgB, imgC);
    let changed: Manifest | undefined;
    await withLoopMount(imgC, {}, async mnt => {
      const fd = fs.openSync(path.join(mnt, 'sizes/f4097'), 'r+');
      const b = Buffer.alloc(1);
      fs.readSync(fd, b, 0, 1, 4096);
      b[0] = b[0]! ^ 1;
      fs.writeSync(fd, b, 0, 1, 4096);
      fs.closeSync(fd);
      fs.chmodSync(path.join(mnt, 'modes/private'), 0o601);
      const big = Buffer.from(entryAt(mke2fs!, 'xattrs/large')!.xattrs!['user.large']!, 'hex');
      big[2999] = big[2999]! ^ 0x80;
      await run('setfattr', ['-n', 'user.large', '-v', `0x${big.toString('hex')}`, path.join(mnt, 'xattrs/large')]);
      fs.unlinkSync(path.join(mnt, 'links/pair-b'));
      fs.writeFileSync(path.join(mnt, 'links/pair-b'), 'pair\n');
      await run('touch', ['-d', '@1577836800', path.join(mnt, 'links/pair-b'), path.join(mnt, 'links/pair-a'), path.join(mnt, 'links'), path.join(mnt, 'sizes/f4097'), path.join(mnt, 'sizes')]);
      changed = await hostManifest(mnt, { producer: 'changed', exclude: ['lost+found'] });
    });
    const d = diffManifests(mke2fs!, changed!, { ignore: ['ctime', 'atime'] });
    t.comment(d.join('\n'));
    t.ok(d.some(l => l.startsWith('sizes/f4097: sha256 ')), 'changed byte shows as sha256');
    t.ok(d.some(l => l.startsWith('modes/private: mode 00600 [mke2fs -d] ≠ 00601 [changed]')), 'changed mode shows');
    t.ok(d.some(l => l.startsWith('xattrs/large: xattr user.large ')), 'changed xattr shows');
    t.ok(d.some(l => l.startsWith('links/pair-a: hard-link group [links/pair-a, links/pair-b] [mke2fs -d] ≠ [links/pair-a]')), 'broken hard link shows');
    t.ok(d.some(l => l.startsWith('links/pair-a: nlink 2 [mke2fs -d] ≠ 1 [changed]')), 'nlink shows');
    t.equal(d.length, 7, 'and nothing else (pair-a and pair-b: links + nlink each)');
  });

  t.test('nothing left behind', async t => {
    t.same(leftovers(), { loops: [], mounts: [], active: 0 }, 'no loop device or mount of ours remains');
  });
}
