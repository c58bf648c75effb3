// Setting and removing extended attributes on read-write ext4 (nojournal) and ext2 mounts,
// judged by e2fsck -fn and by the host kernel's reading of the image.
//
// For each kind (ext4 -O ^has_journal with 256-byte inodes and 4 KiB blocks; the same with
// 128-byte inodes, where nothing fits in the inode; with 1 KiB blocks; without
// metadata_csum; ext2) the host kernel first writes files whose xattr blocks it shares
// between inodes (mbcache: identical blocks get one copy with h_refcount > 1, checked with
// debugfs) and a file with a block of its own. Then lkl-ts: small values (in the inode
// where there is room), large ones (to the block), replacements that move a value between
// inode and block, removal, empty values, attributes until ENOSPC, XATTR_CREATE/REPLACE
// errors, name and size limits, trusted./security., ACLs as system.posix_acl_access and
// _default (an ACL equal to the mode bits becomes the mode; the mask becomes the group
// bits), a change to each sharing inode (copy-on-write: the others keep the old block and
// values) and unlinks of files with xattr blocks (released, freed with the last
// reference). A model of what each file should hold is kept along the way and checked
// through lkl-ts; after unmount e2fsck -fn must be clean and the host kernel (getfattr,
// getfacl, stat) must read exactly the model.

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, withLoopMount, e2fsckClean, dumpe2fsHeader, type ExtImageOptions } from '../lib/images.js';
import { readXattrs } from '../lib/manifest.js';
import { parseDebugfsDump } from '../lib/debugfs.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { startKernel, O_CREAT, O_WRONLY, type Kernel } from '../../lib/index.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'debugfs', 'losetup', 'mount', 'getfattr', 'setfattr', 'getfacl'], { root: true });

const XATTR_CREATE = 1, XATTR_REPLACE = 2;
const EACCES = 13, EEXIST = 17, EINVAL = 22, E2BIG = 7, ENOSPC = 28, ERANGE = 34, ENODATA = 61,
  EOPNOTSUPP = 95;

function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0;
  for (let i = 0; i < n; i++) { x = (x * 1103515245 + 12345) >>> 0; b[i] = x >>> 24; }
  return b;
}
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/* ACL tags and the posix_acl_xattr form (version 2, 8-byte entries) built by hand. */
const USER_OBJ = 0x01, USER = 0x02, GROUP_OBJ = 0x04, GROUP = 0x08, MASK = 0x10, OTHER = 0x20;
function aclXattr(entries: [tag: number, perm: number, id?: number][], version = 2): Uint8Array {
  const b = Buffer.alloc(4 + 8 * entries.length);
  b.writeUInt32LE(version, 0);
  entries.forEach(([tag, perm, id], i) => {
    b.writeUInt16LE(tag, 4 + 8 * i);
    b.writeUInt16LE(perm, 6 + 8 * i);
    b.writeUInt32LE(id ?? 0xffffffff, 8 + 8 * i);
  });
  return new Uint8Array(b);
}

interface Case { name: string; fsType: string; image: Omit<ExtImageOptions, 'path' | 'dir'>; bs: number; inode: number }
const CASES: Case[] = [
  { name: 'ext4 4k 256-byte inodes', fsType: 'ext4', bs: 4096, inode: 256,
    image: { type: 'ext4', sizeMiB: 32, blockSize: 4096, inodeSize: 256, features: ['^has_journal'] } },
  { name: 'ext4 4k 128-byte inodes', fsType: 'ext4', bs: 4096, inode: 128,
    image: { type: 'ext4', sizeMiB: 32, blockSize: 4096, inodeSize: 128, features: ['^has_journal'] } },
  { name: 'ext4 1k', fsType: 'ext4', bs: 1024, inode: 256,
    image: { type: 'ext4', sizeMiB: 16, blockSize: 1024, inodeSize: 256, features: ['^has_journal'] } },
  { name: 'ext4 4k no metadata_csum', fsType: 'ext4', bs: 4096, inode: 256,
    image: { type: 'ext4', sizeMiB: 32, blockSize: 4096, inodeSize: 256, features: ['^has_journal', '^metadata_csum'] } },
  { name: 'ext2 4k', fsType: 'ext2', bs: 4096, inode: 256,
    image: { type: 'ext2', sizeMiB: 32, blockSize: 4096, inodeSize: 256 } },
];

/** debugfs's "File ACL:" (the xattr block) of a path in the image. */
async function fileAcl(img: string, p: string): Promise<number> {
  const r = await run('debugfs', ['-R', `stat /${p}`, img], { allowFail: true });
  const m = /File ACL:\s*(\d+)/.exec(r.stdout);
  if (!m) throw new Error(`debugfs stat /${p}: ${r.stdout} ${r.stderr}`);
  return Number(m[1]);
}
const parseDump = parseDebugfsDump;

/** h_refcount of an xattr block, from debugfs's hex dump of its first 16 bytes. */
async function blockRefcount(img: string, blk: number): Promise<number> {
  const r = await run('debugfs', ['-R', `bd ${blk}`, img], { allowFail: true });
  const m = /^0000\s+((?:[0-9a-f]{4} ){8})/m.exec(r.stdout);
  if (!m) throw new Error(`debugfs bd ${blk}: ${r.stdout} ${r.stderr}`);
  const b = Buffer.from(m[1]!.replace(/ /g, ''), 'hex');
  if (b.readUInt32LE(0) !== 0xea020000) throw new Error(`block ${blk} is not an xattr block`);
  return b.readUInt32LE(4);
}

/** path → name → hex value: what every file must hold. */
type Model = Map<string, Map<string, string>>;

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'ext4-xattr');
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 128 }); });
  t.teardown(async () => { await k?.halt(); });

  for (const c of CASES) {
    t.test(c.name, async (t) => {
      const img = path.join(dir, `${c.name.replace(/\W+/g, '_')}.img`);
      await makeExtImage({ ...c.image, path: img });
      const model: Model = new Map();
      const put = (p: string, n: string, v: Uint8Array | null) => {
        let m = model.get(p);
        if (!m) { m = new Map(); model.set(p, m); }
        if (v) m.set(n, hex(v)); else m.delete(n);
        if (m.size === 0) model.delete(p);
      };
      /* both too big for the inode body, so both go to the block */
      const shared1 = pattern(c.bs / 8, 1), shared2 = pattern(Math.max(c.bs / 16, 120), 2), own = pattern(c.bs / 4, 3);

      /* The host writes the sharing files and one with a block of its own. */
      await withLoopMount(img, {}, async (mnt) => {
        for (const f of ['s1', 's2', 's3', 's4', 'del1']) fs.writeFileSync(path.join(mnt, f), f);
        fs.mkdirSync(path.join(mnt, 'd'));
        for (const f of ['s1', 's2', 's3', 's4']) {
          await run('setfattr', ['-n', 'user.shared1', '-v', `0x${hex(shared1)}`, path.join(mnt, f)]);
          await run('setfattr', ['-n', 'user.shared2', '-v', `0x${hex(shared2)}`, path.join(mnt, f)]);
        }
        await run('setfattr', ['-n', 'user.own', '-v', `0x${hex(own)}`, path.join(mnt, 'del1')]);
      });
      for (const f of ['s1', 's2', 's3', 's4']) { put(f, 'user.shared1', shared1); put(f, 'user.shared2', shared2); }
      const sharedBlk = await fileAcl(img, 's1');
      t.ok(sharedBlk > 0, 'the host put s1\'s attributes in a block');
      t.equal(await blockRefcount(img, sharedBlk), 4, 'with h_refcount 4');
      const blks = await Promise.all(['s2', 's3', 's4'].map((f) => fileAcl(img, f)));
      t.same(blks, [sharedBlk, sharedBlk, sharedBlk], 'the host shares that block between s1..s4');
      t.ok(await fileAcl(img, 'del1') > 0, 'del1 has a block of its own');

      const id = await k.diskAdd({ path: img });
      const mnt = await k.mountDev(id, 0, c.fsType, 0, '');
      t.type(mnt, 'string', `mounted read-write as ${c.fsType}`);
      if (typeof mnt !== 'string') return;
      const sys = k.sys;
      const P = (p: string) => `${mnt}/${p}`;
      const set = async (p: string, n: string, v: Uint8Array, flags = 0) => {
        const r = await sys.setxattr(P(p), n, v, flags);
        if (r === 0 && !n.startsWith('system.')) put(p, n, v);
        return r;
      };
      const rm = async (p: string, n: string) => {
        const r = await sys.removexattr(P(p), n);
        if (r === 0) put(p, n, null);
        return r;
      };
      const mk = async (p: string) => {
        const fd = await sys.open(P(p), O_WRONLY | O_CREAT, 0o644);
        t.ok(fd >= 0, `create ${p}`);
        await sys.close(fd);
      };
      try {
        for (const f of ['f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'gone']) await mk(f);
        t.equal(await sys.mkdir(P('d2'), 0o755), 0);

        /* small values, one large, then replacements moving between inode and block */
        t.equal(await set('f1', 'user.small', pattern(10, 10)), 0, 'small value');
        t.equal(await set('f1', 'user.a2', pattern(30, 11)), 0, 'second small value');
        t.equal(await set('f1', 'user.empty', new Uint8Array(0)), 0, 'empty value');
        const g = await sys.getxattr(P('f1'), 'user.empty');
        t.ok(g instanceof Uint8Array && g.length === 0, 'the empty value reads back empty');
        t.equal(await set('f1', 'user.big', pattern(c.bs / 4, 12)), 0, 'a value only a block holds');
        t.equal(await set('f1', 'user.small', pattern(c.bs / 8, 13)), 0, 'small replaced by a large one (to the block)');
        t.equal(await set('f1', 'user.big', pattern(20, 14)), 0, 'big replaced by a small one');
        t.equal(await set('f1', 'user.a2', pattern(31, 15)), 0, 'same padded size, in place');
        t.equal(await rm('f1', 'user.a2'), 0, 'removal');
        t.equal(await rm('f1', 'user.a2'), -ENODATA, 'removing again: ENODATA');
        t.equal(await set('f1', 'user.small', pattern(c.bs / 8, 13)), 0, 'the same value again');

        /* only small ones: in the inode when it has room */
        t.equal(await set('f6', 'user.x', pattern(16, 16)), 0);
        t.equal(await set('f6', 'user.y', pattern(8, 17)), 0);

        /* many until ENOSPC */
        let n = 0, last = 0;
        for (; n < 1000; n++) {
          last = await set('f2', `user.many${String(n).padStart(3, '0')}`, pattern(40, 100 + n));
          if (last !== 0) break;
        }
        t.equal(last, -ENOSPC, `ENOSPC after ${n} attributes`);
        t.ok(n > 5, 'several fitted first');
        const names = await sys.listxattr(P('f2'));
        t.ok(Array.isArray(names) && names.length === n, 'listxattr shows the ones that fitted');
        t.equal(await rm('f2', 'user.many001'), 0, 'remove one of them');
        t.equal(await set('f2', 'user.many001', pattern(40, 101)), 0, 'and it fits again');

        /* flags and limits */
        t.equal(await set('f3', 'user.c', pattern(5, 20), XATTR_CREATE), 0, 'XATTR_CREATE of a new name');
        t.equal(await set('f3', 'user.c', pattern(5, 21), XATTR_CREATE), -EEXIST, 'XATTR_CREATE of an existing name: EEXIST');
        t.equal(await set('f3', 'user.r', pattern(5, 22), XATTR_REPLACE), -ENODATA, 'XATTR_REPLACE of a missing name: ENODATA');
        t.equal(await set('f3', 'user.c', pattern(7, 23), XATTR_REPLACE), 0, 'XATTR_REPLACE of an existing name');
        t.equal(await set('f3', 'user.' + 'n'.repeat(251), pattern(3, 24)), -ERANGE, 'a 256-byte name: ERANGE');
        t.equal(await set('f3', 'user.' + 'n'.repeat(250), pattern(3, 25)), 0, 'a 255-byte name');
        t.equal(await set('f3', 'user.huge', pattern(65537, 26)), -E2BIG, 'over 64 KiB: E2BIG');
        t.equal(await set('f3', 'user.huge', pattern(c.bs, 27)), -ENOSPC, 'a block-sized value: ENOSPC');
        t.equal(await set('f3', 'trusted.t', pattern(12, 28)), 0, 'trusted.');
        t.equal(await set('f3', 'security.s', pattern(12, 29)), 0, 'security.');
        t.equal(await set('d2', 'user.dir', pattern(100, 30)), 0, 'on a directory');

        /* ACLs */
        const rwx = 7, rw = 6, r = 4;
        const named = aclXattr([[USER_OBJ, rw], [USER, r, 1000], [GROUP_OBJ, r], [MASK, rw], [OTHER, 0]]);
        t.equal(await sys.setxattr(P('f4'), 'system.posix_acl_access', named, 0), 0, 'access ACL with a named user');
        put('f4', 'system.posix_acl_access', named);
        const ga = await sys.getxattr(P('f4'), 'system.posix_acl_access');
        t.same(ga instanceof Uint8Array ? hex(ga) : ga, hex(named), 'it reads back');
        const st4 = await sys.stat(P('f4'));
        t.equal(typeof st4 === 'number' ? st4 : st4.mode & 0o777, 0o660, 'the group bits are the mask');
        const equiv = aclXattr([[USER_OBJ, rw], [GROUP_OBJ, r], [OTHER, 0]]);
        t.equal(await sys.setxattr(P('f5'), 'system.posix_acl_access', equiv, 0), 0, 'an ACL equal to a mode');
        const st5 = await sys.stat(P('f5'));
        t.equal(typeof st5 === 'number' ? st5 : st5.mode & 0o777, 0o640, 'becomes the mode');
        t.equal(await sys.getxattr(P('f5'), 'system.posix_acl_access'), -ENODATA, 'and is not stored');
        const dflt = aclXattr([[USER_OBJ, rwx], [GROUP_OBJ, rwx], [GROUP, r, 50], [MASK, rwx], [OTHER, r]]);
        t.equal(await sys.setxattr(P('d'), 'system.posix_acl_default', dflt, 0), 0, 'default ACL on a directory');
        put('d', 'system.posix_acl_default', dflt);
        t.equal(await sys.setxattr(P('f4'), 'system.posix_acl_default', dflt, 0), -EACCES, 'default ACL on a file: EACCES');
        t.equal(await sys.removexattr(P('f4'), 'system.posix_acl_default'), 0, 'removing a file\'s default ACL: nothing to do');
        t.equal(await sys.setxattr(P('f6'), 'system.posix_acl_access',
          aclXattr([[USER_OBJ, rw], [USER, r, 7], [GROUP_OBJ, r], [OTHER, 0]]), 0), -EINVAL, 'named entry without a mask: EINVAL');
        t.equal(await sys.setxattr(P('f6'), 'system.posix_acl_access',
          aclXattr([[GROUP_OBJ, r], [USER_OBJ, rw], [OTHER, 0]]), 0), -EINVAL, 'out of order: EINVAL');
        t.equal(await sys.setxattr(P('f6'), 'system.posix_acl_access',
          aclXattr([[USER_OBJ, 8], [GROUP_OBJ, r], [OTHER, 0]]), 0), -EINVAL, 'bad permission bits: EINVAL');
        t.equal(await sys.setxattr(P('f6'), 'system.posix_acl_access', new Uint8Array([2, 0, 0, 0, 1]), 0), -EINVAL, 'bad size: EINVAL');
        t.equal(await sys.setxattr(P('f6'), 'system.posix_acl_access',
          aclXattr([[USER_OBJ, rw], [GROUP_OBJ, r], [OTHER, 0]], 3), 0), -EOPNOTSUPP, 'another version: EOPNOTSUPP');

        /* the shared block: every change copies; the last holder keeps the original */
        t.equal(await set('s1', 'user.shared1', pattern(c.bs / 8, 40)), 0, 's1: a shared value replaced');
        t.equal(await rm('s3', 'user.shared2'), 0, 's3: a shared value removed');
        t.equal(await set('s3', 'user.shared1', pattern(c.bs / 8, 1)), 0, 's3: unchanged value set again');
        t.equal(await sys.unlink(P('s4')), 0, 's4 unlinked');
        model.delete('s4');
        const s2v = await sys.getxattr(P('s2'), 'user.shared1');
        t.equal(s2v instanceof Uint8Array ? hex(s2v) : s2v, hex(shared1), 's2 still reads the old value');

        /* files with blocks deleted */
        t.equal(await set('gone', 'user.big', pattern(c.bs / 2, 41)), 0);
        t.equal(await sys.unlink(P('gone')), 0, 'a file with an lkl-ts xattr block unlinked');
        model.delete('gone');
        t.equal(await sys.unlink(P('del1')), 0, 'a file with a host xattr block unlinked');

        /* and one file emptied completely */
        t.equal(await rm('f6', 'user.x'), 0);
        t.equal(await rm('f6', 'user.y'), 0);

        /* lkl-ts reads back exactly the model */
        for (const [p, m] of model) {
          const l = await sys.listxattr(P(p));
          t.same(Array.isArray(l) ? [...l].sort() : l, [...m.keys()].sort(), `lkl-ts lists ${p}'s attributes`);
          for (const [nm, v] of m) {
            const got = await sys.getxattr(P(p), nm);
            if ((got instanceof Uint8Array ? hex(got) : got) !== v) t.fail(`lkl-ts reads ${p} ${nm}`);
          }
        }
      } finally {
        t.equal(await k.umountDev(id, 0), 0, 'unmounted');
      }

      const ck = await e2fsckClean(img);
      t.ok(ck.clean, 'e2fsck -fn is clean', { output: ck.output });

      /* the host reads the model, no more, no less */
      const host = await withLoopMount(img, { ro: true }, async (m) => {
        const xa = await readXattrs(m);
        const facl = (await run('getfacl', ['-n', '-p', 'f4', 'd'], { cwd: m })).stdout;
        const modes = Object.fromEntries(['f4', 'f5'].map((f) => [f, fs.statSync(path.join(m, f)).mode & 0o777]));
        return { xa, facl, modes };
      });
      const want: Record<string, Record<string, string>> = {};
      for (const [p, m] of model) want[p] = Object.fromEntries([...m].sort());
      const got: Record<string, Record<string, string>> = {};
      for (const [p, m] of host.xa) if (m.size) got[p] = Object.fromEntries([...m].sort());
      t.same(got, want, 'the host kernel reads exactly the attributes expected');
      t.same(host.modes, { f4: 0o660, f5: 0o640 }, 'modes as the ACLs set them');
      t.match(host.facl, /# file: f4\n[^]*user:1000:r--\n[^]*mask::rw-\n/, 'getfacl reads the named user and mask');
      t.match(host.facl, /# file: d\n[^]*default:group:50:r--\n/, 'getfacl reads the default ACL');

      /* where things went: inode first, shared block copied, not freed while in use */
      const acls = Object.fromEntries(await Promise.all(['f1', 'f3', 'f6', 's1', 's2', 's3'].map(async (f) => [f, await fileAcl(img, f)])));
      if (c.inode > 128) t.equal(acls.f6, 0, 'small values stayed in the inode');
      t.equal(acls.f6, 0, 'an emptied file has no block');
      t.equal(acls.s2, sharedBlk, 's2 keeps the shared block');
      t.not(acls.s1, sharedBlk, 's1 has a copy');
      t.not(acls.s3, sharedBlk, 's3 has a copy');
      t.equal(await blockRefcount(img, sharedBlk), 1, 'the shared block has one reference left (s2\'s)');
      t.equal(await blockRefcount(img, acls.s1), 1, 's1\'s copy is its own');
    });
  }

  /*
   * The same changes made by the host kernel to one file and by lkl-ts to another leave
   * the same bytes: the in-inode area (entries in order, values packed from the end) and
   * the block (sorted entries, hashes), all but the block checksum (it covers the block
   * number).
   */
  for (const lc of [{ name: '4k', bs: 4096 }, { name: '1k', bs: 1024 }]) {
    t.test(`layout as Linux's (${lc.name} blocks)`, async (t) => {
      const img = await makeExtImage({ type: 'ext4', sizeMiB: 16, blockSize: lc.bs, inodeSize: 256, features: ['^has_journal'], dir });
      const script: [name: string, value: Uint8Array | null][] = [
        ['user.a', pattern(8, 1)], ['user.bb', pattern(30, 2)], ['user.ccc', pattern(300, 3)],
        ['user.a', pattern(200, 4)], ['user.bb', pattern(5, 5)], ['trusted.t', pattern(12, 6)],
        ['user.ccc', null], ['user.empty', new Uint8Array(0)], ['user.dd', pattern(150, 7)],
        ['user.a', pattern(6, 8)], ['security.s', pattern(40, 9)], ['user.bb', pattern(7, 10)],
        ['user.dd', pattern(152, 11)], ['user.bb', null], ['user.zz', pattern(100, 12)],
      ];
      await withLoopMount(img, {}, async (m) => {
        fs.writeFileSync(path.join(m, 'host'), 'h');
        fs.writeFileSync(path.join(m, 'lkl'), 'l');
        for (const [n, v] of script) {
          if (v) await run('setfattr', ['-n', n, '-v', v.length ? `0x${hex(v)}` : '""', 'host'], { cwd: m });
          else await run('setfattr', ['-x', n, 'host'], { cwd: m });
        }
      });
      const id = await k.diskAdd({ path: img });
      const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
      if (typeof mnt !== 'string') { t.fail('mount'); return; }
      try {
        for (const [n, v] of script) {
          const r = v ? await k.sys.setxattr(`${mnt}/lkl`, n, v, 0) : await k.sys.removexattr(`${mnt}/lkl`, n);
          if (r !== 0) t.fail(`${n}: errno ${-r}`);
        }
      } finally { t.equal(await k.umountDev(id, 0), 0, 'unmounted'); }
      t.ok((await e2fsckClean(img)).clean, 'e2fsck -fn is clean');
      const ibody = async (f: string) => {
        const raw = parseDump((await run('debugfs', ['-R', `id /${f}`, img])).stdout, 256);
        return raw.subarray(128 + raw.readUInt16LE(128)).toString('hex');
      };
      t.equal(await ibody('lkl'), await ibody('host'), 'the in-inode area is the host\'s byte for byte');
      const [hb, lb] = [await fileAcl(img, 'host'), await fileAcl(img, 'lkl')];
      t.ok(hb > 0 && lb > 0, 'both have a block');
      const block = async (b: number) => {
        const d = parseDump((await run('debugfs', ['-R', `bd ${b}`, img])).stdout, lc.bs);
        d.fill(0, 16, 20);
        return d.toString('hex');
      };
      if (hb > 0 && lb > 0) t.equal(await block(lb), await block(hb), 'the block is the host\'s but for its checksum');
    });
  }

  t.test('user_xattr off: user.* is EOPNOTSUPP; others still work', async (t) => {
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 16, blockSize: 4096, features: ['^has_journal'], dir });
    const id = await k.diskAdd({ path: img });
    const mnt = await k.mountDev(id, 0, 'ext4', 0, 'nouser_xattr');
    t.type(mnt, 'string', 'mounted');
    if (typeof mnt !== 'string') return;
    try {
      const fd = await k.sys.open(`${mnt}/f`, O_WRONLY | O_CREAT, 0o644);
      await k.sys.close(fd);
      t.equal(await k.sys.setxattr(`${mnt}/f`, 'user.a', new Uint8Array([1]), 0), -EOPNOTSUPP, 'user.a: EOPNOTSUPP');
      t.equal(await k.sys.setxattr(`${mnt}/f`, 'trusted.a', new Uint8Array([1]), 0), 0, 'trusted.a is set');
      t.equal(await k.sys.setxattr(`${mnt}/f`, 'other.a', new Uint8Array([1]), 0), -EOPNOTSUPP, 'an unknown namespace: EOPNOTSUPP');
    } finally {
      t.equal(await k.umountDev(id, 0), 0);
    }
    t.ok((await e2fsckClean(img)).clean, 'e2fsck -fn is clean');
  });

  /*
   * Identical blocks are shared, as Linux shares them through mbcache: the same steps by
   * the host on one copy and by lkl-ts on another (128-byte inodes, so every attribute is in
   * a block) leave the same files sharing the same number of blocks with the same refcounts,
   * and the same free block count; with nombcache lkl-ts gives each file its own.
   */
  for (const opts of ['', 'nombcache']) {
    t.test(`identical blocks shared as the host shares them${opts ? ` (${opts}: not shared)` : ''}`, async (t) => {
      const base = path.join(dir, `share${opts}.img`);
      await makeExtImage({ type: 'ext4', path: base, sizeMiB: 16, blockSize: 4096, inodeSize: 128, features: ['^has_journal'] });
      await withLoopMount(base, {}, async (m) => {
        for (const f of ['a', 'b', 'c', 'd', 'e']) fs.writeFileSync(path.join(m, f), f);
      });
      const hostImg = `${base}.host`, lklImg = `${base}.lkl`;
      fs.copyFileSync(base, hostImg);
      fs.copyFileSync(base, lklImg);
      const v1 = pattern(100, 1), v2 = pattern(200, 2), v3 = pattern(50, 3);
      /* a..d get the same two values (one block, four references); c then changes one (its
         own block); d changes to what c has now (shares c's); e gets a..b's set (shares it) */
      const steps: [string, string, Uint8Array][] = [
        ['a', 'user.x', v1], ['a', 'user.y', v2], ['b', 'user.x', v1], ['b', 'user.y', v2],
        ['c', 'user.x', v1], ['c', 'user.y', v2], ['d', 'user.x', v1], ['d', 'user.y', v2],
        ['c', 'user.y', v3], ['d', 'user.y', v3], ['e', 'user.x', v1], ['e', 'user.y', v2],
      ];
      await withLoopMount(hostImg, {}, async (m) => {
        for (const [f, n, v] of steps) await run('setfattr', ['-n', n, '-v', `0x${hex(v)}`, path.join(m, f)]);
      });
      const id = await k.diskAdd({ path: lklImg });
      const mnt = await k.mountDev(id, 0, 'ext4', 0, opts);
      if (typeof mnt !== 'string') { t.fail(`mount: ${mnt}`); return; }
      try {
        for (const [f, n, v] of steps) {
          const r = await k.sys.setxattr(`${mnt}/${f}`, n, v, 0);
          if (r !== 0) t.fail(`${f} ${n}: ${r}`);
        }
      } finally { t.equal(await k.umountDev(id, 0), 0, 'unmounted'); }
      t.ok((await e2fsckClean(lklImg)).clean, 'e2fsck -fn is clean');
      /* which files share a block, and each block's refcount */
      const sharing = async (img: string) => {
        const blk: Record<string, number> = {};
        for (const f of ['a', 'b', 'c', 'd', 'e']) blk[f] = await fileAcl(img, f);
        const groups = new Map<number, string[]>();
        for (const [f, b] of Object.entries(blk)) groups.set(b, [...(groups.get(b) ?? []), f]);
        const out: string[] = [];
        for (const [b, fs_] of groups) out.push(`${fs_.join('')}: refcount ${await blockRefcount(img, b)}`);
        return out.sort();
      };
      const [h, l] = [await sharing(hostImg), await sharing(lklImg)];
      t.same(h, ['abe: refcount 3', 'cd: refcount 2'], 'the host shares a, b, e and c, d');
      if (opts) t.same(l, ['a: refcount 1', 'b: refcount 1', 'c: refcount 1', 'd: refcount 1', 'e: refcount 1'], 'lkl-ts with nombcache: a block each');
      else t.same(l, h, 'lkl-ts shares them the same way');
      const free = async (img: string) => (await dumpe2fsHeader(img)).get('Free blocks');
      if (!opts) t.equal(await free(lklImg), await free(hostImg), 'and leaves as many free blocks');
      const xa = async (img: string) => withLoopMount(img, { ro: true }, async (m) => readXattrs(m));
      t.same([...(await xa(lklImg))].sort(), [...(await xa(hostImg))].sort(), 'the host reads the same attributes from both');
    });
  }
}
