// ioctl(2) through the kernel API (no FUSE): the inode flags of chattr/lsattr on ext4
// (FS_IOC_GETFLAGS/SETFLAGS, FS_IOC_FSGETXATTR/FSSETXATTR, the generation of lsattr -v),
// judged by the host kernel doing the same thing to a copy of the same image.
//
// For two kinds of image (mke2fs's default ext4, with a journal and metadata_csum; and one
// without journal and metadata_csum) the host first creates the same tree in both copies.
// Then lkl-ts changes flags on copy A the way chattr does (FS_IOC_GETFLAGS, change, then
// FS_IOC_SETFLAGS) while the host runs the real chattr with the same arguments on copy B;
// every result (success, or the errno chattr prints) must agree, and afterwards the host's
// lsattr must print exactly the same for both images, e2fsck -fn must find both clean.
// Along the way, on A: an immutable file refuses writes, truncation, unlink, rename, link,
// chmod and setxattr (EPERM), an append-only file takes only O_APPEND writes; another owner
// gets EPERM, the owner without CAP_LINUX_IMMUTABLE cannot set i or a; a read-only mount is
// EROFS; unknown requests, and FS_IOC_GETFLAGS on vfat, are ENOTTY; bad descriptors EBADF.
// vfat's FAT_IOCTL_GET/SET_ATTRIBUTES and GET_VOLUME_ID are judged by mattrib and mkfs.vfat.

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, makeVfatImage, mtools, withLoopMount, e2fsckClean, fsckVfatClean, type ExtImageOptions } from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import {
  startKernel, strerror, type Kernel, O_APPEND, O_CREAT, O_PATH, O_RDONLY, O_WRONLY, O_TRUNC,
  FS_IOC_GETFLAGS, FS_IOC_SETFLAGS, FS_IOC_FSGETXATTR, FS_IOC_FSSETXATTR, FS_IOC_GETVERSION, FS_IOC_SETVERSION,
  EXT4_IOC_GETVERSION, FIGETBSZ, FIONREAD, FS_IMMUTABLE_FL, FS_APPEND_FL, FS_NODUMP_FL, FS_EXTENT_FL,
  FS_XFLAG_IMMUTABLE, FS_XFLAG_NODUMP, FS_JOURNAL_DATA_FL, MS_RDONLY, FAT_IOCTL_GET_ATTRIBUTES,
  FAT_IOCTL_SET_ATTRIBUTES, FAT_IOCTL_GET_VOLUME_ID,
} from '../../lib/index.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'losetup', 'mount', 'chattr', 'lsattr', 'mkfs.vfat', 'fsck.vfat', 'mattrib'], { root: true });

const EPERM = 1, EBADF = 9, EFAULT = 14, EINVAL = 22, ENOTTY = 25, EROFS = 30, EOPNOTSUPP = 95;
/* FAT attribute bits (msdos_fs.h) */
const ATTR_RO = 0x01, ATTR_HIDDEN = 0x02, ATTR_SYS = 0x04, ATTR_VOLUME = 0x08, ATTR_DIR = 0x10, ATTR_ARCH = 0x20;

/* chattr's letters (e2fsprogs lib/e2p/pf.c) and the FS_*_FL bits they stand for. */
const LETTER: Record<string, number> = {
  s: 0x1, u: 0x2, c: 0x4, S: 0x8, i: 0x10, a: 0x20, d: 0x40, A: 0x80, j: 0x4000, t: 0x8000,
  D: 0x10000, T: 0x20000, e: 0x80000, C: 0x800000, x: 0x2000000, P: 0x20000000, F: 0x40000000,
};

const u32 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, 4).readUInt32LE(0);

interface Kind { name: string; image: Omit<ExtImageOptions, 'path' | 'dir'>; journal: boolean; csum: boolean }
const KINDS: Kind[] = [
  { name: 'ext4 (journal, metadata_csum)', image: { type: 'ext4', sizeMiB: 32, blockSize: 4096, inodeSize: 256 }, journal: true, csum: true },
  { name: 'ext4 without journal and metadata_csum', image: { type: 'ext4', sizeMiB: 32, blockSize: 4096, inodeSize: 256, features: ['^has_journal', '^metadata_csum'] }, journal: false, csum: false },
];

/* The tree both copies start with (made by the host). */
const FILES = ['f1', 'f2', 'f3', 'imm', 'app', 'small', 'big', 'owned', 'plain'];
const DIRS = ['dd', 'd2'];

/*
 * chattr operations: [path, argument]. Each runs as lkl-ts's ioctls on copy A and as the
 * host's chattr on copy B; the outcomes must agree. Refusals included: P on a regular file
 * and D on one (not for files: EOPNOTSUPP), C and F (not ext4 flags, or not without the
 * casefold feature: EOPNOTSUPP), a change to an immutable file (EPERM), clearing e on a
 * file of more than 12 blocks (EOPNOTSUPP).
 */
const OPS: [string, string][] = [
  ['f1', '+d'], ['f1', '+A'], ['f1', '+s'], ['f1', '+u'], ['f1', '+S'],
  ['f2', '+c'], ['f2', '+t'], ['f2', '+d'], ['f2', '-d'],
  ['f3', '+x'], ['f3', '+e'],
  ['dd', '+D'], ['dd', '+T'], ['dd', '+P'], ['dd', '+A'], ['dd', '+d'],
  ['d2', '+i'], ['d2', '+x'],
  ['plain', '+P'], ['plain', '+D'], ['plain', '+T'], ['plain', '+C'], ['plain', '+F'],
  ['small', '-e'], ['big', '-e'],
  ['imm', '+i'], ['imm', '+d'], ['app', '+a'], ['app', '+d'],
];

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'ext4-ioctl');
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 96 }); });
  t.teardown(async () => { await k?.halt(); });

  for (const kind of KINDS) {
    t.test(kind.name, async (t) => {
      const imgA = path.join(dir, `${kind.journal ? 'j' : 'nj'}-a.img`);
      const imgB = path.join(dir, `${kind.journal ? 'j' : 'nj'}-b.img`);
      await makeExtImage({ ...kind.image, path: imgA });
      await withLoopMount(imgA, {}, async (m) => {
        for (const f of FILES) fs.writeFileSync(path.join(m, f), `${f}\n`);
        fs.writeFileSync(path.join(m, 'small'), Buffer.alloc(3 * 4096, 0x61)); // one extent of 3 blocks
        fs.writeFileSync(path.join(m, 'big'), Buffer.alloc(20 * 4096, 0x62)); // past the 12 direct blocks
        for (const d of DIRS) fs.mkdirSync(path.join(m, d));
        fs.chownSync(path.join(m, 'owned'), 1000, 1000);
      });
      fs.copyFileSync(imgA, imgB);

      const id = await k.diskAdd({ path: imgA });
      const mnt = await k.mountDev(id, 0, 'ext4', 0, '');
      t.type(mnt, 'string', 'lkl-ts mounts copy A read-write');
      if (typeof mnt !== 'string') return;
      const sys = k.sys;
      const P = (p: string) => `${mnt}/${p}`;
      const getflags = async (fd: number): Promise<number> => {
        const b = new Uint8Array(4);
        const r = await sys.ioctl(fd, FS_IOC_GETFLAGS, b);
        return r < 0 ? r : u32(b);
      };
      const setflags = (fd: number, f: number, s = sys) => {
        const b = new Uint8Array(4);
        Buffer.from(b.buffer).writeUInt32LE(f >>> 0, 0);
        return s.ioctl(fd, FS_IOC_SETFLAGS, b);
      };
      /* What chattr does: read the flags, change them, write them back. */
      const chattr = async (p: string, arg: string): Promise<number> => {
        const fd = await sys.open(P(p), O_RDONLY, 0);
        if (fd < 0) return fd;
        try {
          const old = await getflags(fd);
          if (old < 0) return old;
          let f = old;
          for (const ch of arg.slice(1)) f = arg[0] === '+' ? f | LETTER[ch]! : f & ~LETTER[ch]!;
          // chattr drops D for anything but a directory before asking the kernel.
          const st = await sys.fstat(fd);
          if (typeof st !== 'number' && (st.mode & 0o170000) !== 0o040000) f &= ~LETTER.D!;
          return await setflags(fd, f >>> 0);
        } finally { await sys.close(fd); }
      };

      const ours: string[] = [];
      for (const [p, arg] of OPS) {
        const r = await chattr(p, arg);
        ours.push(`${arg} ${p}: ${r === 0 ? 'ok' : strerror(r)}`);
      }

      // GETFLAGS as lsattr reads it, FSGETXATTR, and the version.
      const fd = await sys.open(P('imm'), O_RDONLY, 0);
      t.ok(fd >= 0, 'open imm');
      const fl = await getflags(fd);
      t.equal(fl & (FS_IMMUTABLE_FL | FS_EXTENT_FL), FS_IMMUTABLE_FL | FS_EXTENT_FL, 'imm: FS_IOC_GETFLAGS shows i and e');
      const x = new Uint8Array(28).fill(0xff);
      t.equal(await sys.ioctl(fd, FS_IOC_FSGETXATTR, x), 0, 'FS_IOC_FSGETXATTR');
      t.equal(u32(x), FS_XFLAG_IMMUTABLE, 'fsx_xflags: immutable only');
      t.same([...x.subarray(4)], new Array(24).fill(0), 'extsize, nextents, projid, cowextsize and the padding are 0');
      t.equal(await sys.ioctl(fd, FS_IOC_GETFLAGS, new Uint8Array(3)), -EFAULT, 'a buffer shorter than an int: EFAULT');
      t.equal(await sys.ioctl(fd, FS_IOC_GETFLAGS), -EFAULT, 'no buffer at all: EFAULT');
      t.equal(await sys.ioctl(fd, 0x12345678, new Uint8Array(64)), -ENOTTY, 'an unknown request: ENOTTY');
      const bsz = new Uint8Array(4);
      t.equal(await sys.ioctl(fd, FIGETBSZ, bsz), 0, 'FIGETBSZ');
      t.equal(u32(bsz), 4096, 'FIGETBSZ: the block size');
      t.equal(await sys.lseek(fd, 1, 0), 1);
      const nread = new Uint8Array(4);
      t.equal(await sys.ioctl(fd, FIONREAD, nread), 0, 'FIONREAD');
      t.equal(u32(nread), 3, 'FIONREAD: the bytes from the position to the end ("imm\\n" less one)');
      const ver1 = new Uint8Array(4), ver2 = new Uint8Array(4);
      t.equal(await sys.ioctl(fd, FS_IOC_GETVERSION, ver1), 0, 'FS_IOC_GETVERSION');
      t.equal(await sys.ioctl(fd, EXT4_IOC_GETVERSION, ver2), 0, 'EXT4_IOC_GETVERSION');
      t.equal(u32(ver1), u32(ver2), 'both name the generation');
      const immGeneration = u32(ver1);
      t.equal(await sys.close(fd), 0);

      // The immutable file refuses every change.
      t.equal(await sys.open(P('imm'), O_WRONLY, 0), -EPERM, 'immutable: open for writing EPERM');
      t.equal(await sys.truncate(P('imm'), 0), -EPERM, 'immutable: truncate EPERM');
      t.equal(await sys.unlink(P('imm')), -EPERM, 'immutable: unlink EPERM');
      t.equal(await sys.rename(P('imm'), P('imm2')), -EPERM, 'immutable: rename EPERM');
      t.equal(await sys.link(P('imm'), P('imm-link')), -EPERM, 'immutable: link EPERM');
      t.equal(await sys.chmod(P('imm'), 0o600), -EPERM, 'immutable: chmod EPERM');
      t.equal(await sys.chown(P('imm'), 5, 5), -EPERM, 'immutable: chown EPERM');
      t.equal(await sys.setxattr(P('imm'), 'user.x', new Uint8Array([1]), 0), -EPERM, 'immutable: setxattr EPERM');
      t.equal(await sys.utimensat(-100, P('imm'), [{ sec: 1, nsec: 0 }, { sec: 1, nsec: 0 }], 0), -EPERM, 'immutable: setting times EPERM');
      // An immutable directory takes no new names.
      t.equal(await sys.open(P('d2/new'), O_CREAT | O_WRONLY, 0o644), -EPERM, 'immutable directory: create EPERM');
      t.equal(await sys.mkdir(P('d2/sub'), 0o755), -EPERM, 'immutable directory: mkdir EPERM');

      // The append-only file: O_APPEND writes only, no truncation, no unlink.
      t.equal(await sys.open(P('app'), O_WRONLY, 0), -EPERM, 'append-only: O_WRONLY without O_APPEND EPERM');
      t.equal(await sys.open(P('app'), O_WRONLY | O_APPEND | O_TRUNC, 0), -EPERM, 'append-only: O_TRUNC EPERM');
      const afd = await sys.open(P('app'), O_WRONLY | O_APPEND, 0);
      t.ok(afd >= 0, 'append-only: O_WRONLY|O_APPEND opens');
      t.equal(await sys.write(afd, Buffer.from('more\n')), 5, 'and writes');
      t.equal(await sys.ftruncate(afd, 0), -EPERM, 'append-only: ftruncate EPERM');
      t.equal(await sys.close(afd), 0);
      t.equal(await sys.truncate(P('app'), 0), -EPERM, 'append-only: truncate EPERM');
      t.equal(await sys.unlink(P('app')), -EPERM, 'append-only: unlink EPERM');
      t.equal(await sys.rename(P('app'), P('app2')), -EPERM, 'append-only: rename EPERM');

      // Who may change flags.
      const other = k.sysAs({ uid: 2000, gid: 2000, groups: [] });
      const owner = k.sysAs({ uid: 1000, gid: 1000, groups: [] });
      const ofd = await other.open(P('owned'), O_RDONLY, 0);
      t.ok(ofd >= 0, 'another user opens owned (0644) for reading');
      t.equal(await getflags(ofd), FS_EXTENT_FL, 'and reads its flags');
      t.equal(await setflags(ofd, FS_EXTENT_FL | FS_NODUMP_FL, other), -EPERM, 'but setting them is EPERM (not the owner)');
      t.equal(await sys.close(ofd), 0);
      const wfd = await owner.open(P('owned'), O_RDONLY, 0);
      t.equal(await setflags(wfd, FS_EXTENT_FL | FS_IMMUTABLE_FL, owner), -EPERM, 'the owner without CAP_LINUX_IMMUTABLE cannot set i');
      t.equal(await setflags(wfd, FS_EXTENT_FL | FS_APPEND_FL, owner), -EPERM, 'nor a');
      t.equal(await setflags(wfd, FS_EXTENT_FL | FS_NODUMP_FL, owner), 0, 'but may set d');
      ours.push(`+d owned: ok`);
      t.equal(await sys.close(wfd), 0);

      // FS_IOC_FSSETXATTR: xflags keep what they do not name.
      const pfd = await sys.open(P('f3'), O_RDONLY, 0);
      const xs = new Uint8Array(28);
      t.equal(await sys.ioctl(pfd, FS_IOC_FSGETXATTR, xs), 0);
      Buffer.from(xs.buffer).writeUInt32LE(u32(xs) | FS_XFLAG_NODUMP, 0);
      t.equal(await sys.ioctl(pfd, FS_IOC_FSSETXATTR, xs), 0, 'FS_IOC_FSSETXATTR adds nodump');
      t.equal((await getflags(pfd)) & FS_NODUMP_FL, FS_NODUMP_FL, 'FS_IOC_GETFLAGS shows it');
      ours.push(`+d f3: ok`);
      // Setting the generation (chattr -v): refused with metadata_csum (it seeds the checksum).
      const gen = new Uint8Array(4);
      Buffer.from(gen.buffer).writeUInt32LE(123456789, 0);
      t.equal(await sys.ioctl(pfd, FS_IOC_SETVERSION, gen), kind.csum ? -ENOTTY : 0, kind.csum ? 'FS_IOC_SETVERSION with metadata_csum: ENOTTY' : 'FS_IOC_SETVERSION');
      t.equal(await sys.close(pfd), 0);
      // Data journalling: lkl-ts cannot journal data (EOPNOTSUPP with a journal); without a
      // journal Linux ignores the flag, and so does lkl-ts. (The host cannot be asked: this
      // sandbox's root has no CAP_SYS_RESOURCE, which +j needs.) f3 has DAX, which excludes
      // data journalling (EOPNOTSUPP either way); f2 does not.
      const jfd = await sys.open(P('f2'), O_RDONLY, 0);
      const jr = await setflags(jfd, (await getflags(jfd)) | FS_JOURNAL_DATA_FL);
      t.equal(jr, kind.journal ? -EOPNOTSUPP : 0, kind.journal ? '+j with a journal: EOPNOTSUPP' : '+j without a journal: ignored');
      t.equal((await getflags(jfd)) & FS_JOURNAL_DATA_FL, 0, 'j is not set');
      t.equal(await sys.close(jfd), 0);
      const xfd = await sys.open(P('f3'), O_RDONLY, 0);
      t.equal(await setflags(xfd, (await getflags(xfd)) | FS_JOURNAL_DATA_FL), -EOPNOTSUPP, '+j on a DAX file: EOPNOTSUPP (DAX excludes it)');
      t.equal(await sys.close(xfd), 0);

      // Descriptors.
      t.equal(await sys.ioctl(9999, FS_IOC_GETFLAGS, new Uint8Array(4)), -EBADF, 'a closed descriptor: EBADF');
      const opath = await sys.open(P('f1'), O_PATH, 0);
      t.equal(await sys.ioctl(opath, FS_IOC_GETFLAGS, new Uint8Array(4)), -EBADF, 'an O_PATH descriptor: EBADF');
      t.equal(await sys.close(opath), 0);

      t.equal(await k.umountDev(id, 0), 0, 'unmounted');

      // Read-only: flags read, not written.
      const ro = await k.mountDev(id, 0, 'ext4', MS_RDONLY, '');
      t.type(ro, 'string', 'mounted read-only');
      if (typeof ro === 'string') {
        const rfd = await sys.open(`${ro}/f1`, O_RDONLY, 0);
        const f = await getflags(rfd);
        t.ok(f > 0 && (f & LETTER.d!) !== 0, 'read-only: the flags read back after a remount');
        t.equal(await setflags(rfd, f & ~LETTER.d!), -EROFS, 'read-only mount: FS_IOC_SETFLAGS EROFS');
        t.equal(await sys.close(rfd), 0);
        t.equal(await k.umountDev(id, 0), 0);
      }
      await k.diskRemove(id);

      // The host does the same with chattr on copy B.
      const host = await withLoopMount(imgB, {}, async (m) => {
        const out: string[] = [];
        for (const [p, arg] of [...OPS, ['owned', '+d'], ['f3', '+d']] as [string, string][]) {
          const r = await run('chattr', [arg, path.join(m, p)], { allowFail: true });
          const why = /: (.*) while (?:setting|reading) flags/.exec(r.stderr)?.[1];
          out.push(`${arg} ${p}: ${r.code === 0 ? 'ok' : why ?? r.stderr.trim()}`);
        }
        if (!kind.csum) await run('chattr', ['-v', '123456789', path.join(m, 'f3')]);
        return out;
      });
      t.same(ours, host, 'every chattr outcome (success or errno) is the host kernel\'s');

      for (const img of [imgA, imgB]) {
        const fsck = await e2fsckClean(img);
        t.ok(fsck.clean, `e2fsck -fn clean: ${path.basename(img)}`, { output: fsck.output });
      }
      const lsattr = (img: string) => withLoopMount(img, { ro: true }, async (m) => {
        const r = await run('lsattr', ['-d', '-v', ...[...FILES, ...DIRS].map((p) => path.join(m, p))]);
        return r.stdout.split(m + '/').join('');
      });
      const la = await lsattr(imgA), lb = await lsattr(imgB);
      t.equal(la, lb, 'the host\'s lsattr -v shows the same flags and generations on both images');
      t.match(la, new RegExp(`^\\s*${immGeneration}\\s+-+i-+e-+ imm$`, 'm'), 'imm: i and e, and the generation FS_IOC_GETVERSION gave');
      if (!kind.csum) t.match(la, /^\s*123456789\s+\S+ f3$/m, 'f3: the generation FS_IOC_SETVERSION set');
    });
  }

  t.test('vfat: no inode flags (ENOTTY); the attribute byte and the volume id (FAT_IOCTL_*)', async (t) => {
    const img = await makeVfatImage({ path: path.join(dir, 'v.img'), fat: 16, sizeMiB: 32, volumeId: '1234abcd' });
    const id = await k.diskAdd({ path: img });
    const mnt = await k.mountDev(id, 0, 'vfat', 0, '');
    t.type(mnt, 'string', 'mounted');
    if (typeof mnt !== 'string') return;
    const fd = await k.sys.open(`${mnt}/a.txt`, O_CREAT | O_WRONLY, 0o644);
    t.ok(fd >= 0, 'created a.txt');
    t.equal(await k.sys.ioctl(fd, FS_IOC_GETFLAGS, new Uint8Array(4)), -ENOTTY, 'FS_IOC_GETFLAGS: ENOTTY');
    t.equal(await k.sys.ioctl(fd, FS_IOC_SETFLAGS, new Uint8Array(4)), -ENOTTY, 'FS_IOC_SETFLAGS: ENOTTY');
    t.equal(await k.sys.ioctl(fd, FS_IOC_FSGETXATTR, new Uint8Array(28)), -ENOTTY, 'FS_IOC_FSGETXATTR: ENOTTY');
    t.equal(await k.sys.ioctl(fd, FS_IOC_GETVERSION, new Uint8Array(4)), -ENOTTY, 'FS_IOC_GETVERSION: ENOTTY');
    const bsz = new Uint8Array(4);
    t.equal(await k.sys.ioctl(fd, FIGETBSZ, bsz), 0, 'FIGETBSZ works on any file');
    t.ok(u32(bsz) >= 512, `FIGETBSZ: ${u32(bsz)}`);
    const a = new Uint8Array(4);
    t.equal(await k.sys.ioctl(fd, FAT_IOCTL_GET_ATTRIBUTES, a), 0, 'FAT_IOCTL_GET_ATTRIBUTES');
    t.equal(u32(a), ATTR_ARCH, 'a new file: archive');
    const vid = new Uint8Array(4);
    t.equal(await k.sys.ioctl(fd, FAT_IOCTL_GET_VOLUME_ID, vid), 0, 'FAT_IOCTL_GET_VOLUME_ID');
    t.equal(u32(vid), 0x1234abcd, 'the volume id mkfs.vfat wrote');
    const set = (fd: number, v: number, s = k.sys) => { const b = new Uint8Array(4); Buffer.from(b.buffer).writeUInt32LE(v); return s.ioctl(fd, FAT_IOCTL_SET_ATTRIBUTES, b); };
    // VOLUME and DIR cannot be set; RO is a chmod: the write bits go.
    t.equal(await set(fd, ATTR_RO | ATTR_HIDDEN | ATTR_SYS | ATTR_VOLUME | ATTR_DIR), 0, 'FAT_IOCTL_SET_ATTRIBUTES');
    t.equal(await k.sys.ioctl(fd, FAT_IOCTL_GET_ATTRIBUTES, a), 0);
    t.equal(u32(a), ATTR_RO | ATTR_HIDDEN | ATTR_SYS, 'read-only, hidden, system (not volume or directory; archive cleared)');
    const st = await k.sys.fstat(fd);
    t.ok(typeof st !== 'number' && (st.mode & 0o222) === 0, 'read-only: no write bits in the mode');
    t.equal(await k.sys.close(fd), 0);
    const root = await k.sys.open(mnt, O_RDONLY, 0);
    t.equal(await set(root, ATTR_HIDDEN), -EINVAL, 'the root directory has no attributes: EINVAL');
    t.equal(await k.sys.close(root), 0);
    const dfd = await k.sys.mkdir(`${mnt}/sub`, 0o755);
    t.equal(dfd, 0, 'mkdir sub');
    const sfd = await k.sys.open(`${mnt}/sub`, O_RDONLY, 0);
    t.equal(await set(sfd, ATTR_HIDDEN), 0, 'a directory: hidden');
    t.equal(await k.sys.ioctl(sfd, FAT_IOCTL_GET_ATTRIBUTES, a), 0);
    t.equal(u32(a), ATTR_DIR | ATTR_HIDDEN, 'which keeps ATTR_DIR');
    t.equal(await k.sys.ioctl(sfd, FS_IOC_GETFLAGS, new Uint8Array(4)), -ENOTTY, 'FS_IOC_GETFLAGS on a directory: ENOTTY');
    t.equal(await k.sys.close(sfd), 0);
    t.equal(await k.umountDev(id, 0), 0);
    await k.diskRemove(id);
    const fsck = await fsckVfatClean(img);
    t.ok(fsck.clean, 'fsck.vfat -n clean', { output: fsck.output });
    // mtools reads the attribute bytes: R, H, S on a.txt, H on sub.
    const ma = await mtools('mattrib', ['-i', img, '::/A.TXT', '::/SUB']);
    const letters = (name: string) => [...(new RegExp(`^(.*?)::/${name}$`, 'm').exec(ma.stdout)?.[1] ?? '?').replace(/\s/g, '')].sort().join('');
    t.equal(letters('A.TXT'), 'HRS', 'mattrib: a.txt read-only, system, hidden (no archive)');
    t.equal(letters('SUB'), 'H', 'mattrib: sub hidden');
  });
}
