/*
 * Everything a filesystem holds, through the tools and back (issue 16):
 *
 *   (1) host tree -> cptofs -p -> ext4 image (^has_journal) -> cpfromfs -p -> host tree
 *   (2) that image -> fs2tar -> tar --xattrs --xattrs-include='*' --acls -xpf -> host tree
 *
 * Each result is compared with the original tree by manifest (test/lib/manifest.ts): type,
 * mode, uid/gid, size, content, mtime to the nanosecond, xattrs (user.*, trusted.*), ACLs
 * (access and default, as system.posix_acl_* values), hard links, symlink targets, device
 * numbers and fifos; and the sparse files come back with few allocated blocks. The image
 * cptofs wrote passes e2fsck -fn and reads back identically through the host kernel. Step
 * (1) runs on ext2 with 1 KiB blocks too (indirect block maps instead of extents).
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { e2fsckClean, makeExtImage, withLoopMount } from '../lib/images.js';
import { diffManifests, hostManifest, type DiffOptions } from '../lib/manifest.js';
import { isRoot, run, whyNot, type RunResult } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { buildTree, type NodeSpec } from '../lib/tree.js';

const BIN = (n: string) => fileURLToPath(new URL(`../../bin/${n}.js`, import.meta.url));
const tool = (n: string, args: string[]): Promise<RunResult> =>
  run(process.execPath, [BIN(n), ...args], { allowFail: true, timeoutMs: 80_000 });

const S = 1_000_000_000n;
const T0 = 1_600_000_000n * S;
const MiB = 1024 * 1024;

/** The sparse files, with how many bytes of data each holds (for the block check). */
const SPARSE: Record<string, number> = {
  'sparse/holes': 4096 + 5000 + 1,
  'sparse/leading-hole': 50_000,
  'sparse/all-hole': 0,
  'sparse/trailing-hole': 8192,
};

function tree(): NodeSpec[] {
  return [
    { kind: 'dir', path: 'docs', mode: 0o750, uid: 1000, gid: 1000, mtimeNs: T0 + 111_111_111n },
    { kind: 'file', path: 'docs/a.txt', content: { kind: 'text', text: 'hello\n' }, mtimeNs: T0 + 123_456_789n, uid: 1000, gid: 100 },
    { kind: 'file', path: 'docs/empty', content: { kind: 'text', text: '' }, mode: 0o600, mtimeNs: T0 + 1n },
    { kind: 'file', path: 'docs/big', content: { kind: 'random', size: 2 * MiB + 5 }, mtimeNs: T0 - 999_999_999n },
    { kind: 'file', path: 'bin/setuid', content: { kind: 'text', text: '#!/bin/sh\n' }, mode: 0o4755 },
    { kind: 'dir', path: 'tmp', mode: 0o1777 },
    { kind: 'file', path: 'xattrs', content: { kind: 'text', text: 'x\n' },
      xattrs: { 'user.colour': 'blue', 'user.bin': new Uint8Array([0, 1, 2, 255]), 'user.empty': '', 'trusted.secret': 'root only' } },
    { kind: 'file', path: 'acl-file', content: { kind: 'text', text: 'acl\n' }, acl: 'u:1234:rwx,g:4321:r--,m::rwx', mtimeNs: T0 + 7n },
    { kind: 'dir', path: 'acl-dir', defaultAcl: 'u:99:r-x,g::r-x,m::rwx,o::---', acl: 'u:77:rwx', mtimeNs: T0 + 8n },
    { kind: 'file', path: 'acl-dir/inherits', content: { kind: 'text', text: 'inherited\n' }, keepCreatedMode: true },
    { kind: 'symlink', path: 'link-rel', target: 'docs/a.txt', mtimeNs: T0 + 42n },
    { kind: 'symlink', path: 'link-long', target: `${'x'.repeat(300)}/target` },
    { kind: 'symlink', path: 'link-abs', target: '/etc/passwd', xattrs: { 'trusted.on-link': 'yes' } },
    { kind: 'file', path: 'hard/orig', content: { kind: 'text', text: 'one inode\n' }, mtimeNs: T0 + 5n },
    { kind: 'hardlink', path: 'hard/second', target: 'hard/orig' },
    { kind: 'hardlink', path: 'docs/third', target: 'hard/orig' },
    { kind: 'chr', path: 'dev/null', major: 1, minor: 3, mode: 0o666 },
    { kind: 'chr', path: 'dev/big', major: 300, minor: 70000, mode: 0o600 },
    { kind: 'blk', path: 'dev/loop0', major: 7, minor: 0, mode: 0o660, gid: 6 },
    { kind: 'fifo', path: 'dev/fifo', mode: 0o640, mtimeNs: T0 + 3n },
    { kind: 'file', path: 'sparse/holes', content: { kind: 'sparse', size: MiB + 3, extents: [{ offset: 0, length: 4096 }, { offset: 300_000, length: 5000 }, { offset: 700_001, length: 1 }] } },
    { kind: 'file', path: 'sparse/leading-hole', content: { kind: 'sparse', size: 2 * MiB, extents: [{ offset: 2 * MiB - 50_000, length: 50_000 }] } },
    { kind: 'file', path: 'sparse/all-hole', content: { kind: 'sparse', size: 10 * MiB, extents: [] } },
    { kind: 'file', path: 'sparse/trailing-hole', content: { kind: 'sparse', size: 8 * MiB, extents: [{ offset: 0, length: 8192 }] } },
  ];
}

/** What the comparison leaves out, and why. */
const BASE: DiffOptions = {
  ignore: ['atime', 'ctime', 'dirSize'],
  ignoreAt: [
    { path: '.', fields: 'all', why: 'the root of the image is mke2fs\'s, not copied ("SRC/." copies what is inside)' },
    { path: 'lost+found', fields: 'all', why: 'made by mke2fs' },
  ],
};

/** The sparse files of `root` must hold few blocks: their data rounded up, plus metadata. */
function sparseProblems(root: string): string[] {
  const out: string[] = [];
  for (const [p, data] of Object.entries(SPARSE)) {
    const st = fs.statSync(path.join(root, p));
    const limit = data + 64 * 1024;
    if (st.blocks * 512 > limit) out.push(`${p}: ${st.blocks * 512} bytes allocated for ${st.size} (${data} of data)`);
  }
  return out;
}

const skip = whyNot(['mke2fs', 'e2fsck', 'tar', 'setfattr', 'getfattr', 'setfacl', 'touch', 'mknod', 'perl', 'losetup', 'mount'], { root: true });

t.test('host -> cptofs -p -> ext4 -> cpfromfs -p -> host, and ext4 -> fs2tar -> tar -x: all kept', { skip, timeout: 90_000 }, async (t) => {
  t.ok(isRoot());
  const dir = scratchDir(t, 'roundtrip');
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  await buildTree(src, { nodes: tree(), defaultTimeNs: T0 + 500_000_000n });
  const orig = await hostManifest(src, { producer: 'source' });
  t.ok(orig.entries.find((e) => e.path === 'acl-dir')?.xattrs?.['system.posix_acl_default'], 'the source has a default ACL');
  t.ok(sparseProblems(src).length === 0, 'the source sparse files are sparse');

  const img = await makeExtImage({ dir, type: 'ext4', sizeMiB: 64, blockSize: 4096, inodeSize: 256, features: ['^has_journal'] });
  const w = await tool('cptofs', ['-p', '-i', img, `${src}/.`, '/']);
  t.equal(w.code, 0, `cptofs exit 0 (${w.stderr})`);
  t.equal(w.stderr, '', 'cptofs: nothing on stderr');
  const fsck = await e2fsckClean(img);
  t.ok(fsck.clean, `e2fsck -fn clean: ${fsck.output}`);

  // The host kernel reads what cptofs wrote.
  await withLoopMount(img, { ro: true, type: 'ext4' }, async (mnt) => {
    const m = await hostManifest(mnt, { producer: 'host-kernel', exclude: ['lost+found'] });
    const d = diffManifests(orig, m, BASE);
    t.same(d, [], 'the image read through the host kernel equals the source');
    t.same(sparseProblems(mnt), [], 'the sparse files are sparse in the image');
  });

  // (1) back out with cpfromfs -p
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const r = await tool('cpfromfs', ['-p', '-i', img, '/', out]);
  t.equal(r.code, 0, `cpfromfs exit 0 (${r.stderr})`);
  t.equal(r.stderr, '', 'cpfromfs: nothing on stderr');
  const back = await hostManifest(out, { producer: 'cpfromfs', exclude: ['lost+found'] });
  t.same(diffManifests(orig, back, BASE), [], 'cpfromfs -p gives back the source');
  t.same(sparseProblems(out), [], 'the sparse files come back sparse');

  // (2) fs2tar, extracted by GNU tar
  const tarFile = path.join(dir, 'img.tar');
  const a = await tool('fs2tar', [img, tarFile]);
  t.equal(a.code, 0, `fs2tar exit 0 (${a.stderr})`);
  t.equal(a.stderr, '', 'fs2tar: nothing on stderr');
  const raw = fs.readFileSync(tarFile);
  t.ok(raw.includes('SCHILY.acl.access=user::rw-,user:1234:rwx,group::r--,group:4321:r--,mask::rwx,other::r--'), 'the access ACL in GNU tar\'s text form');
  t.ok(raw.includes('SCHILY.acl.default=user::rwx,user:99:r-x,group::r-x,mask::rwx,other::---'), 'the default ACL');
  t.ok(raw.includes('GNU.sparse.major=1') && raw.includes('GNU.sparse.realsize=10485760'), 'sparse 1.0 records');
  t.ok(raw.length < 8 * MiB, `holes are not stored (${raw.length} bytes)`);
  const list = await run('tar', ['-tvf', tarFile, '--full-time']);
  t.match(list.stdout, / 10485760 \S+ \S+ +sparse\/all-hole\n/, 'tar lists the sparse file under its name and real size');

  const x = path.join(dir, 'x');
  fs.mkdirSync(x);
  await run('tar', ['--xattrs', '--xattrs-include=*', '--acls', '-xpf', tarFile, '-C', x]);
  const ex = await hostManifest(x, { producer: 'tar-x', exclude: ['lost+found'] });
  const tarOpts: DiffOptions = {
    ...BASE,
    ignoreAt: [...BASE.ignoreAt!, { path: /^link-/, fields: ['mtime'], why: 'GNU tar does not restore the times of symbolic links' }],
  };
  t.same(diffManifests(orig, ex, tarOpts), [], 'tar -x of the fs2tar archive gives back the source');
  t.same(sparseProblems(x), [], 'tar extracts the sparse files sparse');
});

t.test('the same through ext2 (block maps, no extents): cptofs -p, e2fsck, host kernel, cpfromfs -p', { skip, timeout: 90_000 }, async (t) => {
  const dir = scratchDir(t, 'roundtrip-ext2');
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  await buildTree(src, { nodes: tree(), defaultTimeNs: T0 + 500_000_000n });
  const orig = await hostManifest(src, { producer: 'source' });
  const img = await makeExtImage({ dir, type: 'ext2', sizeMiB: 64, blockSize: 1024, inodeSize: 256 });
  const w = await tool('cptofs', ['-p', '-i', img, `${src}/.`, '/']);
  t.equal(w.code, 0, `cptofs exit 0 (${w.stderr})`);
  t.equal(w.stderr, '', 'cptofs: nothing on stderr');
  const fsck = await e2fsckClean(img);
  t.ok(fsck.clean, `e2fsck -fn clean: ${fsck.output}`);
  await withLoopMount(img, { ro: true, type: 'ext2' }, async (mnt) => {
    const m = await hostManifest(mnt, { producer: 'host-kernel', exclude: ['lost+found'] });
    t.same(diffManifests(orig, m, BASE), [], 'the image read through the host kernel equals the source');
    t.same(sparseProblems(mnt), [], 'the sparse files are sparse in the image');
  });
  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const r = await tool('cpfromfs', ['-p', '-i', img, '/', out]);
  t.equal(r.code, 0, `cpfromfs exit 0 (${r.stderr})`);
  t.same(diffManifests(orig, await hostManifest(out, { producer: 'cpfromfs', exclude: ['lost+found'] }), BASE), [], 'cpfromfs -p gives back the source');
  t.same(sparseProblems(out), [], 'the sparse files come back sparse');
});
