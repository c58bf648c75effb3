// The ext4 read side without a kernel: images made by mke2fs and the host kernel, read by
// the driver's own functions over an in-memory device (ext4_fill_super_dev + memDev).
// Extent trees of depth 2 with holes and unwritten extents (content and SEEK_DATA/HOLE
// against the host), htree lookup and readdir for every hash (legacy, half_md4, tea;
// signed and unsigned chars), directory entries corrupted the ways ext4_check_dir_entry
// names, checksum failures (EFSBADCRC) versus structural ones (EFSCORRUPTED), the
// errors= policy, ACL conversion, device numbers, 64 KiB blocks.

import t from 'tap';
import { E2FSPROGS_FIXTURES, fixturesSkip } from '../lib/fixtures.js';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { makeExtImage, withLoopMount } from '../lib/images.js';
import { super_block, SB_RDONLY, file as File, type dir_context } from '../../lib/kernel/include/fs.js';
import { utf8ToBstr } from '../../lib/kernel/lib/bstr.js';
import { ext4_fill_super_dev, ext4_fs_type } from '../../lib/kernel/fs/ext4/super.js';
import { captureKernelMessages } from '../lib/printk.js';
import { EXT4_SB, type ext4_inode_info } from '../../lib/kernel/fs/ext4/ext4.js';
import { ext4_iget, ext4_read_data } from '../../lib/kernel/fs/ext4/inode.js';
import { ext4_find_entry } from '../../lib/kernel/fs/ext4/namei.js';
import { ext4_readdir, is_dx } from '../../lib/kernel/fs/ext4/dir.js';
import { ext_depth } from '../../lib/kernel/fs/ext4/extents.js';
import { ext4_seek_data_hole } from '../../lib/kernel/fs/ext4/file.js';
import { ext4_listxattr_inode, ext4_xattr_get } from '../../lib/kernel/fs/ext4/xattr.js';
import { ext4_acl_to_xattr } from '../../lib/kernel/fs/ext4/acl.js';
import { ext4_acl_from_disk, ext4_acl_to_disk, ACL_USER_OBJ } from '../../lib/kernel/fs/ext4/acl.h.js';
import { ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER } from '../../lib/kernel/fs/ext4/acl.h.js';
import { EXT4_INDEX_FL } from '../../lib/kernel/fs/ext4/layout.js';
import { memDev } from './driver-util.js';

const skip = whyNot(['mke2fs', 'debugfs', 'tune2fs', 'losetup', 'mount', 'python3'], { root: true });

interface Mounted { sb: super_block; msgs: string[]; root: ext4_inode_info }

async function mountMem(img: Uint8Array, data = '', flavour: 'ext2' | 'ext3' | 'ext4' = 'ext4'): Promise<Mounted> {
  const msgs: string[] = [];
  captureKernelMessages((m) => msgs.push(m));
  const sb = new super_block(ext4_fs_type);
  sb.s_flags = SB_RDONLY;
  sb.s_id = 'vda';
  await ext4_fill_super_dev(sb, memDev(img), data, false, flavour);
  return { sb, msgs, root: sb.s_root!.d_inode as ext4_inode_info };
}

async function lookupPath(m: Mounted, p: string): Promise<ext4_inode_info> {
  let cur = m.root;
  for (const part of p.split('/').filter(Boolean)) {
    const ino = await ext4_find_entry(cur, utf8ToBstr(part));
    if (!ino) throw new Error(`${p}: ${part} not found`);
    cur = await ext4_iget(m.sb, ino);
  }
  return cur;
}

async function readAll(inode: ext4_inode_info): Promise<Buffer> {
  const out = new Uint8Array(inode.i_size);
  await ext4_read_data(inode, 0, out);
  return Buffer.from(out);
}

async function readdirAll(dir: ext4_inode_info, bufEntries = 7): Promise<{ name: string; ino: number; pos: number }[]> {
  const file = new File({ mnt: null as never, dentry: null as never }, dir, dir.i_fop);
  const out: { name: string; ino: number; pos: number }[] = [];
  for (let guard = 0; guard < 100000; guard++) {
    let n = 0;
    const before = file.f_pos;
    const ctx: dir_context = {
      pos: file.f_pos,
      emit(name, ino) {
        if (n >= bufEntries) return false;
        out.push({ name, ino, pos: ctx.pos });
        n++;
        return true;
      },
    };
    await ext4_readdir(file, ctx);
    file.f_pos = ctx.pos;
    if (n === 0 && ctx.pos === before) break;
    if (n === 0) break;
  }
  return out;
}

const sha = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');
const errnoOf = async (p: Promise<unknown>): Promise<number> => {
  try { await p; return 0; } catch (e) { return (e as { errno?: number }).errno ?? -1; }
};

async function debugfsBlocks(img: string, p: string): Promise<number[]> {
  const r = await run('debugfs', ['-R', `blocks ${p}`, img]);
  return r.stdout.trim().split(/\s+/).filter(Boolean).map(Number);
}
async function debugfsIno(img: string, p: string): Promise<number> {
  const r = await run('debugfs', ['-R', `stat ${p}`, img]);
  return Number(/Inode: (\d+)/.exec(r.stdout)![1]);
}

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'ext4-unit');
  t.afterEach(() => { captureKernelMessages(null); });

  t.test('extent tree of depth 2 with holes and unwritten extents', async (t) => {
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 32, blockSize: 1024, dir });
    const N = 800;
    await withLoopMount(img, {}, async (mnt) => {
      const fd = fs.openSync(path.join(mnt, 'frag'), 'w');
      const blk = Buffer.alloc(1024);
      for (let i = 0; i < N; i++) { blk.fill(i & 0xff); blk.writeUInt32LE(i, 0); fs.writeSync(fd, blk, 0, 1024, 2 * i * 1024); }
      fs.closeSync(fd);
      await run('fallocate', ['-o', String(4 * 1024 * 1024), '-l', String(256 * 1024), path.join(mnt, 'frag')]);
      await run('fallocate', ['-n', '-o', String(5 * 1024 * 1024), '-l', String(64 * 1024), path.join(mnt, 'frag')]);
      fs.writeFileSync(path.join(mnt, 'small'), 'small file\n');
    });
    const segs = await withLoopMount(img, { ro: true, noload: true }, async (mnt) => {
      const p = path.join(mnt, 'frag');
      const r = await run('python3', ['-c', `
import os,sys
fd=os.open(sys.argv[1],os.O_RDONLY); size=os.fstat(fd).st_size; pos=0; out=[]
while pos<size:
    try: d=os.lseek(fd,pos,os.SEEK_DATA)
    except OSError: break
    h=os.lseek(fd,d,os.SEEK_HOLE); out.append((d,h)); pos=h
print(size); print(out)`, p]);
      return { size: Number(r.stdout.split('\n')[0]), segs: r.stdout.split('\n')[1]!, sha: sha(fs.readFileSync(p)) };
    });
    const m = await mountMem(new Uint8Array(fs.readFileSync(img)));
    const frag = await lookupPath(m, 'frag');
    t.ok(ext_depth(frag) >= 2, `extent tree depth ${ext_depth(frag)}`);
    t.equal(frag.i_size, segs.size);
    t.equal(sha(await readAll(frag)), segs.sha, 'content (holes and unwritten extents read as zeros)');
    const mine: [number, number][] = [];
    for (let pos = 0; pos < frag.i_size;) {
      let d: number;
      try { d = await ext4_seek_data_hole(frag, pos, true); } catch { break; }
      const h = await ext4_seek_data_hole(frag, d, false);
      mine.push([d, h]);
      pos = h;
    }
    t.equal(JSON.stringify(mine).replace(/\[/g, '(').replace(/\]/g, ')').replace(/,/g, ', ').replace(/^\(/, '[').replace(/\)$/, ']'),
      segs.segs, 'SEEK_DATA/SEEK_HOLE segments as the host sees them');
    // Reads at odd offsets and lengths across extent boundaries.
    const all = await readAll(frag);
    for (const [pos, len] of [[1000, 3000], [2047, 2], [1024 * 1599 - 5, 10], [4 * 1024 * 1024 - 7, 100]]) {
      const b = new Uint8Array(len);
      await ext4_read_data(frag, pos, b);
      t.same(Buffer.from(b), all.subarray(pos, pos + len), `read ${len} at ${pos}`);
    }
    t.equal((await readAll(await lookupPath(m, 'small'))).toString(), 'small file\n');
  });

  t.test('htree lookup and readdir for every hash version', async (t) => {
    const names: string[] = [];
    for (let i = 0; i < 700; i++) names.push(i % 3 === 0 ? `é-fichier-${i}` : i % 3 === 1 ? `日本-${i}.txt` : `plain_name_${i}`);
    for (const alg of ['legacy', 'half_md4', 'tea']) {
      for (const signed of [true, false]) {
        const label = `${alg} ${signed ? 'signed' : 'unsigned'}`;
        const img = await makeExtImage({ type: 'ext4', sizeMiB: 16, blockSize: 1024, dir });
        await run('tune2fs', ['-E', `hash_alg=${alg}`, img]);
        await run('debugfs', ['-w', '-R', `ssv flags ${signed ? 1 : 2}`, img]);
        const inos = new Map<string, number>();
        await withLoopMount(img, {}, async (mnt) => {
          fs.mkdirSync(path.join(mnt, 'big'));
          for (const n of names) fs.writeFileSync(path.join(mnt, 'big', n), n);
          for (const n of names) inos.set(n, fs.statSync(path.join(mnt, 'big', n)).ino);
        });
        const m = await mountMem(new Uint8Array(fs.readFileSync(img)));
        const big = await lookupPath(m, 'big');
        t.ok(is_dx(big) && (big.i_ext4_flags & EXT4_INDEX_FL), `${label}: big is an htree directory`);
        let ok = 0;
        for (const n of names) if (await ext4_find_entry(big, utf8ToBstr(n)) === inos.get(n)) ok++;
        t.equal(ok, names.length, `${label}: every name found through the index`);
        t.equal(await ext4_find_entry(big, 'not-there'), 0, `${label}: a missing name is not found`);
        t.notOk(m.msgs.some((x) => /dx_probe|warning/.test(x)), `${label}: no fallback to linear search`, { msgs: m.msgs });
        const ents = await readdirAll(big, 13);
        const got = ents.map((e) => e.name).filter((x) => x !== '.' && x !== '..').sort();
        t.same(got, names.map(utf8ToBstr).sort(), `${label}: readdir returns every name once`);
        const pos = ents.map((e) => e.pos);
        t.ok(pos.every((p, i) => i === 0 || p > pos[i - 1]!), `${label}: readdir cookies strictly increase`);
      }
    }
  });

  t.test('corrupted directory entries', async (t) => {
    const src = path.join(dir, 'dsrc');
    fs.mkdirSync(path.join(src, 'd'), { recursive: true });
    for (const n of ['aaa', 'bbb', 'ccc']) fs.writeFileSync(path.join(src, 'd', n), n);
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 8, blockSize: 1024, dir, fromDir: src, features: ['^metadata_csum'] });
    const base = new Uint8Array(fs.readFileSync(img));
    const [pblk] = await debugfsBlocks(img, '/d');
    const at = pblk! * 1024 + 24; // the first entry after "." and ".."
    const w16 = (b: Uint8Array, o: number, v: number) => { b[o] = v & 0xff; b[o + 1] = v >> 8; };
    const w32 = (b: Uint8Array, o: number, v: number) => { w16(b, o, v & 0xffff); w16(b, o + 2, v >>> 16); };
    const cases: [string, (b: Uint8Array) => void][] = [
      ['rec_len is smaller than minimal', (b) => w16(b, at + 4, 8)],
      ['rec_len % 4 != 0', (b) => w16(b, at + 4, 14)],
      ['rec_len is too small for name_len', (b) => { b[at + 6] = 200; }],
      ['directory entry overrun', (b) => w16(b, at + 4, 2000)],
      ['inode out of bounds', (b) => w32(b, at, 0x00ffffff)],
    ];
    for (const [why, patch] of cases) {
      const b = base.slice();
      patch(b);
      const m = await mountMem(b);
      const d = await lookupPath(m, 'd');
      t.equal(await errnoOf(ext4_find_entry(d, 'zzz')), 117, `${why}: lookup fails with EUCLEAN`);
      t.ok(m.msgs.some((x) => x.startsWith('EXT4-fs error (device vda): ') && x.includes(`bad entry in directory: ${why}`)),
        `${why}: reported by name`, { msgs: m.msgs });
      t.ok(EXT4_SB(m.sb).s_has_errors, `${why}: the filesystem is marked as having errors`);
      const ents = await readdirAll(d);
      t.same(ents.map((e) => e.name), ['.', '..'], `${why}: readdir stops at the bad entry without failing`);
    }
    // errors=panic: the filesystem shuts down after the first error.
    const b = base.slice();
    cases[0]![1](b);
    const m = await mountMem(b, 'errors=panic');
    const d = await lookupPath(m, 'd');
    t.equal(await errnoOf(ext4_find_entry(d, 'zzz')), 117);
    t.equal(await errnoOf(ext4_iget(m.sb, 2)), 5, 'errors=panic: later calls fail with EIO');
    // With checksums, a changed byte is a checksum error (EFSBADCRC = EBADMSG).
    const img2 = await makeExtImage({ type: 'ext4', sizeMiB: 8, blockSize: 1024, dir, fromDir: src });
    const b2 = new Uint8Array(fs.readFileSync(img2));
    const [p2] = await debugfsBlocks(img2, '/d');
    b2[p2! * 1024 + 24 + 8] ^= 1; // a byte of the first name
    const m2 = await mountMem(b2);
    const d2 = await lookupPath(m2, 'd');
    t.equal(await errnoOf(ext4_find_entry(d2, 'aaa')), 74, 'directory block checksum: EBADMSG');
    t.ok(m2.msgs.some((x) => x.includes('Directory block failed checksum')), 'reported', { msgs: m2.msgs });
  });

  t.test('inode and extent block corruption', async (t) => {
    const src = path.join(dir, 'isrc');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'f'), 'content\n');
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 8, blockSize: 1024, dir, fromDir: src });
    const base = new Uint8Array(fs.readFileSync(img));
    const ino = await debugfsIno(img, '/f');
    const r = await run('debugfs', ['-R', `imap <${ino}>`, img]);
    const m1 = /located at block (\d+), offset (0x[0-9a-f]+)/.exec(r.stdout)!;
    const off = Number(m1[1]) * 1024 + Number(m1[2]);
    const b = base.slice();
    b[off + 0x10] ^= 0x40; // i_mtime
    const m = await mountMem(b);
    t.equal(await errnoOf(lookupPath(m, 'f')), 74, 'inode checksum mismatch: EBADMSG');
    t.ok(m.msgs.some((x) => x.includes('iget: checksum invalid')), 'reported', { msgs: m.msgs });
    const b2 = base.slice();
    b2[off + 0x28] = 0; // extent header magic in i_block
    const m2 = await mountMem(b2, '', 'ext4');
    // The inode checksum now fails first; without metadata_csum the magic is what fails.
    t.equal(await errnoOf(lookupPath(m2, 'f')), 74);
    const img3 = await makeExtImage({ type: 'ext4', sizeMiB: 8, blockSize: 1024, dir, fromDir: src, features: ['^metadata_csum'] });
    const b3 = new Uint8Array(fs.readFileSync(img3));
    const r3 = await run('debugfs', ['-R', `imap <${await debugfsIno(img3, '/f')}>`, img3]);
    const m3 = /located at block (\d+), offset (0x[0-9a-f]+)/.exec(r3.stdout)!;
    b3[Number(m3[1]) * 1024 + Number(m3[2]) + 0x28] = 0;
    const mm3 = await mountMem(b3);
    const f3 = await lookupPath(mm3, 'f');
    t.equal(await errnoOf(readAll(f3)), 117, 'bad extent magic: EUCLEAN');
    t.ok(mm3.msgs.some((x) => x.includes('invalid magic')), 'reported', { msgs: mm3.msgs });
  });

  t.test('xattrs in the inode, in a block and in an ea_inode; ACLs', async (t) => {
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 16, blockSize: 4096, dir, features: ['ea_inode'] });
    const big = crypto.randomBytes(20000);
    await withLoopMount(img, {}, async (mnt) => {
      const f = path.join(mnt, 'x');
      fs.writeFileSync(f, 'x');
      await run('setfattr', ['-n', 'user.small', '-v', 'v', f]);
      await run('setfattr', ['-n', 'user.mid', '-v', '0x' + 'ab'.repeat(600), f]);
      await run('setfattr', ['-n', 'user.big', '-v', '0x' + big.toString('hex'), f]);
      await run('setfacl', ['-m', 'u:1000:rw-,g:2000:r--,m::rw-', f]);
    });
    const host = await withLoopMount(img, { ro: true, noload: true }, async (mnt) =>
      (await run('getfattr', ['-h', '-d', '-m', '-', '-e', 'hex', path.join(mnt, 'x')])).stdout);
    const m = await mountMem(new Uint8Array(fs.readFileSync(img)));
    const x = await lookupPath(m, 'x');
    const names = await ext4_listxattr_inode(x);
    t.same([...names].sort(), ['system.posix_acl_access', 'user.big', 'user.mid', 'user.small']);
    t.same(Buffer.from(await ext4_xattr_get(x, 1, 'big')), big, 'value from the ea_inode');
    t.equal(Buffer.from(await ext4_xattr_get(x, 1, 'mid')).toString('hex'), 'ab'.repeat(600));
    t.equal(await errnoOf(ext4_xattr_get(x, 1, 'nope')), 61, 'ENODATA');
    const aclHex = /system.posix_acl_access=0x([0-9a-f]+)/.exec(host)![1];
    const handler = m.sb.s_xattr.find((h) => h.name === 'system.posix_acl_access')!;
    const v = await handler.get(null, x, '');
    t.equal(Buffer.from(v).toString('hex'), aclHex, 'ACL in posix_acl_xattr form, as the host returns it');
  });

  t.test('ACL conversion table', async (t) => {
    const acl = [
      { e_tag: ACL_USER_OBJ, e_perm: 6, e_id: 0xffffffff }, { e_tag: ACL_USER, e_perm: 4, e_id: 1000 },
      { e_tag: ACL_GROUP_OBJ, e_perm: 4, e_id: 0xffffffff }, { e_tag: ACL_GROUP, e_perm: 5, e_id: 70000 },
      { e_tag: ACL_MASK, e_perm: 7, e_id: 0xffffffff }, { e_tag: ACL_OTHER, e_perm: 0, e_id: 0xffffffff },
    ];
    const disk = ext4_acl_to_disk(acl);
    t.equal(disk.length, 4 + 4 * 4 + 2 * 8, 'compact form: short entries without ids');
    const back = ext4_acl_from_disk(disk);
    t.same(back, acl);
    const x = Buffer.from(ext4_acl_to_xattr(back as typeof acl)).toString('hex');
    t.equal(x, '02000000' + '01000600ffffffff' + '02000400e8030000' + '04000400ffffffff' + '0800050070110100' +
      '10000700ffffffff' + '20000000ffffffff');
    t.type(ext4_acl_from_disk(new Uint8Array([2, 0, 0, 0])), 'string', 'bad version rejected');
  });

  t.test('64 KiB blocks, device numbers, 128-byte inodes', async (t) => {
    const src = path.join(dir, 'bsrc');
    fs.mkdirSync(src);
    const data = crypto.randomBytes(200000);
    fs.writeFileSync(path.join(src, 'data'), data);
    await run('mknod', [path.join(src, 'old'), 'c', '4', '64']);
    await run('mknod', [path.join(src, 'new'), 'b', '300', '70000']);
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 65536, dir, fromDir: src });
    const m = await mountMem(new Uint8Array(fs.readFileSync(img)));
    t.equal(m.sb.s_blocksize, 65536);
    t.same(await readAll(await lookupPath(m, 'data')), data, '64 KiB blocks: content');
    const old = await lookupPath(m, 'old');
    t.equal(old.i_rdev, (64 & 0xff) | (4 << 8), 'char 4:64');
    const nw = await lookupPath(m, 'new');
    t.equal(nw.i_rdev, ((70000 & 0xff) | ((300 & 0xfff) << 8) | ((70000 & ~0xff) << 12)) >>> 0, 'block 300:70000 (new encoding)');
    const img128 = await makeExtImage({ type: 'ext3', sizeMiB: 16, inodeSize: 128, dir, fromDir: src });
    const m2 = await mountMem(new Uint8Array(fs.readFileSync(img128)), '', 'ext3');
    t.equal(m2.sb.s_time_gran, 1e9, '128-byte inodes: whole seconds');
    t.equal((await lookupPath(m2, 'data')).i_btime, null, 'no creation time');
    t.ok(m.sb.s_time_gran === 1 && (await lookupPath(m, 'data')).i_btime, '256-byte inodes: ns and btime');
  });
}

if (!skip) {
  t.test('geometry variants: statfs as the host reports it, content as written', async (t) => {
    const dir = scratchDir(t, 'ext4-geom');
    const src = path.join(dir, 'src');
    fs.mkdirSync(src);
    const data = crypto.randomBytes(150000);
    fs.writeFileSync(path.join(src, 'data'), data);
    const variants: { name: string; features?: string[]; blockSize?: number; extra?: string[]; type?: 'ext2' | 'ext3' | 'ext4' }[] = [
      { name: 'meta_bg', features: ['meta_bg', '^resize_inode'], blockSize: 1024 },
      { name: 'sparse_super2', features: ['sparse_super2'] },
      { name: 'no sparse_super', features: ['^sparse_super', '^resize_inode'], blockSize: 1024 },
      { name: 'no flex_bg', features: ['^flex_bg'] },
      { name: 'bigalloc', features: ['bigalloc'], extra: ['-C', '16384'] },
      { name: 'gdt_csum instead of metadata_csum', features: ['^metadata_csum', 'uninit_bg'] },
      { name: 'ext2 rev 0', type: 'ext2', extra: ['-r', '0'], blockSize: 1024 },
      { name: '2k blocks, 64bit', features: ['64bit'], blockSize: 2048 },
    ];
    for (const v of variants) {
      const img = await makeExtImage({ type: v.type ?? 'ext4', sizeMiB: 64, blockSize: v.blockSize, features: v.features, extra: v.extra, dir, fromDir: v.extra?.includes('0') ? undefined : src });
      if (v.extra?.includes('0')) {
        await withLoopMount(img, {}, async (mnt) => { fs.writeFileSync(path.join(mnt, 'data'), data); });
      }
      const host = await withLoopMount(img, { ro: true, noload: v.type !== 'ext2' }, async (mnt) =>
        (await run('stat', ['-f', '-c', '%S %b %f %a %c %d %l', mnt])).stdout.trim());
      let m: Mounted;
      try { m = await mountMem(new Uint8Array(fs.readFileSync(img)), '', v.type ?? 'ext4'); } catch (e) {
        t.fail(`${v.name}: mount failed: ${(e as Error).message}`);
        continue;
      }
      const st = await m.sb.s_op.statfs(m.sb.s_root!);
      t.equal(`${st.bsize} ${st.blocks} ${st.bfree} ${st.bavail} ${st.files} ${st.ffree} ${st.namelen}`, host, `${v.name}: statfs`);
      t.same(await readAll(await lookupPath(m, 'data')), data, `${v.name}: content`);
    }
  });

  t.test('orphans are found and reported, not processed, on a read-only mount', async (t) => {
    const FIX = E2FSPROGS_FIXTURES;
    const fixSkip = fixturesSkip();
    for (const name of ['f_orphan', 'f_clear_orphan_file']) {
      const src = path.join(FIX, name);
      if (!fs.existsSync(src)) {
        if (fixSkip) { t.comment(`${name}: ${fixSkip}`); continue; }
        throw new Error(`fixture ${name} missing from ${FIX}`);
      }
      const f = fs.readdirSync(src).find((x) => x.startsWith('image'))!;
      const raw = fs.readFileSync(path.join(src, f));
      const img = f.endsWith('.gz') ? (await import('node:zlib')).gunzipSync(raw) : (await run('bzcat', [path.join(src, f)])).stdoutBuf;
      let m: Mounted | null = null;
      try { m = await mountMem(new Uint8Array(img)); } catch (e) { t.comment(`${name}: mount failed (${(e as Error).message})`); }
      if (!m) continue;
      t.ok(m.msgs.some((x) => /orphan/.test(x)), `${name}: orphans reported`, { msgs: m.msgs });
      t.ok(EXT4_SB(m.sb).s_orphans.length > 0, `${name}: ${EXT4_SB(m.sb).s_orphans.length} orphan inodes found`);
    }
  });
}

if (!skip) {
  t.test('mke2fs -d with inline_data: inline files, directories and symlinks; sb= backup superblock', async (t) => {
    const dir = scratchDir(t, 'ext4-inline');
    const src = path.join(dir, 'src');
    fs.mkdirSync(path.join(src, 'idir'), { recursive: true });
    for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(src, 'idir', `f${i}`), `inline ${i}\n`);
    fs.writeFileSync(path.join(src, 'tiny'), 'tiny file\n');
    fs.writeFileSync(path.join(src, 'mid'), 'm'.repeat(100));
    const targets = [10, 59, 60, 100, 150, 500].map((n) => 't'.repeat(n));
    targets.forEach((tg, i) => fs.symlinkSync(tg, path.join(src, `l${i}`)));
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 16, blockSize: 1024, dir, fromDir: src, features: ['inline_data'] });
    const m = await mountMem(new Uint8Array(fs.readFileSync(img)));
    const idir = await lookupPath(m, 'idir');
    t.ok(idir.i_ext4_flags & 0x10000000, 'idir is an inline directory');
    t.same((await readdirAll(idir, 2)).map((e) => e.name).sort(), ['.', '..', 'f0', 'f1', 'f2']);
    for (let i = 0; i < 3; i++) t.equal((await readAll(await lookupPath(m, `idir/f${i}`))).toString(), `inline ${i}\n`);
    const tiny = await lookupPath(m, 'tiny');
    t.ok(tiny.i_ext4_flags & 0x10000000, 'tiny is inline');
    t.equal((await readAll(tiny)).toString(), 'tiny file\n');
    t.equal((await readAll(await lookupPath(m, 'mid'))).toString(), 'm'.repeat(100), 'inline data spilling into system.data');
    for (let i = 0; i < targets.length; i++) {
      const l = await lookupPath(m, `l${i}`);
      t.equal(await l.i_op.get_link!(null, l), targets[i], `symlink of ${targets[i]!.length} bytes`);
    }
    // The first backup superblock (group 1, block 8193 with 1 KiB blocks).
    const m2 = await mountMem(new Uint8Array(fs.readFileSync(img)), 'sb=8193');
    t.equal((await readAll(await lookupPath(m2, 'tiny'))).toString(), 'tiny file\n', 'mounted from the backup superblock');
  });
}
