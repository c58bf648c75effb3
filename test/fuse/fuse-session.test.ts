/*
 * The kernel transport's request loop without a device: frames written straight into
 * FuseSession.handle(), replies captured, against the real lkl-ts kernel booted in this
 * process (ramfs root). INIT negotiation, signed nanosecond times, the caller's
 * credentials (ownership of new files, permission decisions, supplementary groups),
 * INTERRUPT, and a fuzz of malformed frames: errors, never a crash, never two replies.
 */
import t from 'tap';
import type { Test } from 'tap';
import { startKernel, type Kernel } from '../../lib/index.js';
import {
  FUSE_ASYNC_READ, FUSE_DO_READDIRPLUS, FUSE_INIT, FUSE_LOOKUP, FUSE_GETATTR, FUSE_MKDIR, FUSE_OPEN, FUSE_READ,
  FUSE_INTERRUPT, FUSE_WRITE, FUSE_POSIX_LOCKS, FUSE_MAX_PAGES, FUSE_READDIRPLUS, FUSE_OPENDIR, FUSE_CREATE,
  FUSE_FORGET, FUSE_BATCH_FORGET, FUSE_RELEASE, IN_HEADER_SIZE, OPCODE_NAMES, parseRequest, FUSE_POSIX_ACL, FUSE_DONT_MASK,
  FUSE_MKNOD, FUSE_IOCTL, FUSE_IOCTL_DIR, FUSE_IOCTL_UNRESTRICTED, FUSE_HAS_IOCTL_DIR, FUSE_RELEASEDIR, FUSE_FLUSH,
  FUSE_NO_OPENDIR_SUPPORT, FUSE_READDIR, FUSE_FSYNCDIR, FUSE_READDIRPLUS_AUTO,
} from '../../lib/fuse/fuse-abi.js';
import { e2fsckClean, makeExtImage } from '../lib/images.js';
import { scratchDir } from '../lib/scratch.js';
import { whyNot } from '../lib/sh.js';
import { FuseSession } from '../../lib/fuse/fuse-session.js';
import { LowLevelOps } from '../../lib/fuse/ll-ops.js';
import {
  EACCES, EBADF, ENOTDIR, EINTR, EIO, ENOSYS, ENOTTY, EPERM, O_CREAT, O_RDONLY, O_RDWR, FS_IOC_GETFLAGS, FS_IOC_SETFLAGS,
  FS_IOC_GETVERSION, FS_EXTENT_FL, FS_NODUMP_FL, FS_IOC_FSGETXATTR, FS_XFLAG_NODUMP,
} from '../../lib/kernel/include/uapi.js';

interface Hdr { opcode: number; unique: number; nodeid?: number; uid?: number; gid?: number; pid?: number }

function frame(h: Hdr, body: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(IN_HEADER_SIZE + body.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt32LE(h.opcode, 4);
  b.writeBigUInt64LE(BigInt(h.unique), 8);
  b.writeBigUInt64LE(BigInt(h.nodeid ?? 1), 16);
  b.writeUInt32LE(h.uid ?? 0, 24);
  b.writeUInt32LE(h.gid ?? 0, 28);
  b.writeUInt32LE(h.pid ?? 0, 32);
  body.copy(b, IN_HEADER_SIZE);
  return b;
}
const u32s = (...v: number[]) => { const b = Buffer.alloc(v.length * 4); v.forEach((x, i) => b.writeUInt32LE(x >>> 0, i * 4)); return b; };
const u64 = (v: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); return b; };
const cstr = (s: string) => Buffer.from(s + '\0');
const initBody = (minor: number, flags: number) => Buffer.concat([u32s(7, minor, 131072, flags, 0), Buffer.alloc(44)]);

interface Reply { unique: bigint; error: number; body: Buffer }
function parseReply(b: Buffer): Reply {
  return { unique: b.readBigUInt64LE(8), error: b.readInt32LE(4), body: b.subarray(16, b.readUInt32LE(0)) };
}

let kernel: Kernel;
t.before(async () => { kernel = await startKernel({ memMiB: 32 }); });
t.teardown(async () => { await kernel.halt(); });

async function session(t: Test, groups: Record<number, number[]> = {}, extra: { intr?: boolean; posixAcl?: boolean; hostChecks?: boolean; hostPermissions?: boolean } = {}, root = '/') {
  const ll = await LowLevelOps.create(kernel.sys, { root });
  if (typeof ll === 'number') throw new Error(`root: ${ll}`);
  const replies: Reply[] = [];
  const s = new FuseSession(ll, kernel.sys, (f) => { replies.push(parseReply(f)); }, {
    maxWrite: 1 << 20, entryTimeout: 1, attrTimeout: 1, sysFor: (c) => kernel.sysAs(c),
    groupsOf: (pid) => groups[pid] ?? [], log: () => undefined, ...extra,
  });
  t.teardown(() => ll.closeAll());
  let unique = 100;
  const call = async (h: Omit<Hdr, 'unique'>, body?: Buffer): Promise<Reply> => {
    const u = unique += 2;
    s.handle(frame({ ...h, unique: u }, body));
    await s.idle();
    const r = replies.filter((x) => x.unique === BigInt(u));
    if (r.length !== 1) throw new Error(`${OPCODE_NAMES[h.opcode]}: ${r.length} replies`);
    return r[0]!;
  };
  return { s, ll, replies, call, nextUnique: () => (unique += 2) };
}

t.test('INIT: 7.31 or the kernel\'s minor; max_write 1 MiB with max_pages; no locks offered', async (t) => {
  const { call, s } = await session(t);
  const r = await call({ opcode: FUSE_INIT }, initBody(45, 0x73fffffb));
  t.equal(r.error, 0);
  t.same([r.body.readUInt32LE(0), r.body.readUInt32LE(4)], [7, 31], 'answers 7.31 to 7.45');
  const flags = r.body.readUInt32LE(12);
  t.ok(flags & FUSE_ASYNC_READ && flags & FUSE_DO_READDIRPLUS && flags & FUSE_MAX_PAGES, 'async reads, readdirplus, max_pages');
  t.notOk(flags & FUSE_POSIX_LOCKS, 'no POSIX locks (the lkl-ts kernel has none: the host keeps them)');
  t.notOk(flags & (FUSE_POSIX_ACL | FUSE_DONT_MASK), 'no POSIX_ACL or DONT_MASK unless the filesystem keeps ACLs');
  t.equal(r.body.readUInt32LE(20), 1 << 20, 'max_write 1 MiB');
  t.equal(r.body.readUInt16LE(28), 256, 'max_pages 256');
  t.equal(s.minor, 31);
  const old = await (await session(t)).call({ opcode: FUSE_INIT }, initBody(26, FUSE_ASYNC_READ));
  t.equal(old.body.readUInt32LE(4), 26, 'a 7.26 kernel gets 7.26');
  t.equal(old.body.readUInt32LE(12) & ~FUSE_ASYNC_READ, 0, 'and only flags it offered');
});

t.test('READDIRPLUS: names only at offset 0 (the kernel\'s guess), full entries when it asks again later', async (t) => {
  const { call } = await session(t);
  await call({ opcode: FUSE_INIT }, initBody(31, 0));
  await kernel.sys.mkdir('/rdp', 0o755);
  const N = 60;
  for (let i = 0; i < N; i++) await kernel.sys.close(await kernel.sys.open(`/rdp/file-${String(i).padStart(3, '0')}`, O_CREAT | O_RDWR, 0o644));
  const dir = await call({ opcode: FUSE_LOOKUP }, cstr('rdp'));
  const dirId = Number(dir.body.readBigUInt64LE(0));
  const od = await call({ opcode: FUSE_OPENDIR, nodeid: dirId }, u32s(O_RDONLY, 0));
  t.equal(od.error, 0);
  const fh = od.body.readBigUInt64LE(0);
  // fuse_read_in: fh, offset, size, read_flags, lock_owner, flags, padding
  const readIn = (offset: number, size: number) => Buffer.concat([u64(Number(fh)), u64(offset), u32s(size, 0), u64(0), u32s(0, 0)]);
  /** fuse_direntplus records: entry_out (128 bytes) then a dirent (ino, off, namelen, type, name padded to 8). */
  const parse = (b: Buffer) => {
    const out: { nodeid: number; attrIno: number; ino: number; off: number; name: string }[] = [];
    for (let o = 0; o + 152 <= b.length;) {
      const namelen = b.readUInt32LE(o + 128 + 16);
      out.push({ nodeid: Number(b.readBigUInt64LE(o)), attrIno: Number(b.readBigUInt64LE(o + 40)), ino: Number(b.readBigUInt64LE(o + 128)),
        off: Number(b.readBigUInt64LE(o + 136)), name: b.subarray(o + 152, o + 152 + namelen).toString() });
      o += 128 + Math.ceil((24 + namelen) / 8) * 8;
    }
    return out;
  };
  const first = await call({ opcode: FUSE_READDIRPLUS, nodeid: dirId }, readIn(0, 4096));
  t.equal(first.error, 0);
  const a = parse(first.body);
  t.ok(a.length > 2 && a.length < N + 2, `the first reply holds part of the directory (${a.length} entries)`);
  t.same(a.filter((e) => e.nodeid !== 0).map((e) => e.name), [], 'offset 0: no entry carries a node id (nothing looked up)');
  t.ok(a.every((e) => e.ino > 0 && e.name.length > 0), 'but every entry has its name and inode number');
  const second = await call({ opcode: FUSE_READDIRPLUS, nodeid: dirId }, readIn(a[a.length - 1]!.off, 4096));
  const b = parse(second.body);
  const files = b.filter((e) => e.name.startsWith('file-'));
  t.ok(files.length > 0, `a later READDIRPLUS answers more entries (${b.length})`);
  t.ok(files.every((e) => e.nodeid !== 0 && e.attrIno === e.ino), 'with node ids and the attributes of the right inode');
  const names = new Set([...a, ...b].map((e) => e.name));
  t.equal(names.size, a.length + b.length, 'no entry twice');
});

t.test('requests before INIT get EIO', async (t) => {
  const { call } = await session(t);
  t.equal((await call({ opcode: FUSE_GETATTR }, Buffer.alloc(16))).error, -EIO);
});

t.test('times: signed seconds and nanoseconds both ways', async (t) => {
  const { call } = await session(t);
  await call({ opcode: FUSE_INIT }, initBody(31, 0));
  const fd = await kernel.sys.open('/old', O_CREAT | O_RDWR, 0o644);
  await kernel.sys.close(fd);
  t.equal(await kernel.sys.utimensat(-100, '/old', [{ sec: -1, nsec: 999_999_999 }, { sec: -315619200, nsec: 123_456_789 }], 0), 0);
  const r = await call({ opcode: FUSE_LOOKUP }, cstr('old'));
  t.equal(r.error, 0);
  const attr = 40; // fuse_entry_out.attr
  t.equal(r.body.readBigInt64LE(attr + 24), -1n, 'atime seconds -1');
  t.equal(r.body.readUInt32LE(attr + 48), 999_999_999, 'atime nanoseconds');
  t.equal(r.body.readBigInt64LE(attr + 32), -315619200n, 'mtime 1960');
  t.equal(r.body.readUInt32LE(attr + 52), 123_456_789, 'mtime nanoseconds');
  const nodeid = Number(r.body.readBigUInt64LE(0));
  // SETATTR with only mtime (touch -m -d), after 2038, to the nanosecond.
  const setattr = Buffer.alloc(88);
  setattr.writeUInt32LE(1 << 5, 0); // FATTR_MTIME
  setattr.writeBigInt64LE(8_000_000_000n, 40);
  setattr.writeUInt32LE(7, 60);
  const s2 = await call({ opcode: 4, nodeid }, setattr);
  t.equal(s2.error, 0);
  const st = await kernel.sys.stat('/old');
  if (typeof st === 'number') throw new Error(String(st));
  t.same(st.mtime, { sec: 8_000_000_000, nsec: 7 }, 'mtime set after 2038, nanoseconds kept');
  t.same(st.atime, { sec: -1, nsec: 999_999_999 }, 'atime untouched');
});

t.test('posixAcl: POSIX_ACL and DONT_MASK offered; creates then run with the request\'s umask', async (t) => {
  const before = await kernel.sys.umask(0);
  t.teardown(async () => { await kernel.sys.umask(before); });
  await kernel.sys.mkdir('/um', 0o777);
  const mode = async (p: string) => { const st = await kernel.sys.stat(p); return typeof st === 'number' ? st : st.mode; };
  const mkdirBody = (m: number, umask: number, name: string) => Buffer.concat([u32s(m, umask), cstr(name)]);
  const createBody = (m: number, umask: number, name: string) => Buffer.concat([u32s(O_CREAT | O_RDWR, m, umask, 0), cstr(name)]);
  const mknodBody = (m: number, umask: number, name: string) => Buffer.concat([u32s(m, 0, umask, 0), cstr(name)]);
  {
    const { call } = await session(t, {}, { posixAcl: true, hostChecks: true });
    const r = await call({ opcode: FUSE_INIT }, initBody(31, 0x73fffffb));
    const flags = r.body.readUInt32LE(12);
    t.ok(flags & FUSE_POSIX_ACL, 'POSIX_ACL offered');
    t.ok(flags & FUSE_DONT_MASK, 'DONT_MASK offered');
    const um = Number((await call({ opcode: FUSE_LOOKUP }, cstr('um'))).body.readBigUInt64LE(0));
    const who = { uid: 65534, gid: 65534, pid: 1234 };
    await kernel.sys.chmod('/um', 0o777);
    const mk = await call({ opcode: FUSE_MKDIR, nodeid: um, ...who }, mkdirBody(0o777, 0o027, 'd'));
    t.equal(mk.error, 0, 'MKDIR');
    t.equal(mk.body.readUInt32LE(40 + 60) & 0o7777, 0o750, 'made with the request\'s umask 027');
    t.equal(await mode('/um/d') & 0o7777, 0o750, 'the kernel agrees');
    const cr = await call({ opcode: FUSE_CREATE, nodeid: um, ...who }, createBody(0o100666, 0o077, 'f'));
    t.equal(cr.error, 0, 'CREATE');
    t.equal(await mode('/um/f') & 0o7777, 0o600, 'created with umask 077');
    await call({ opcode: FUSE_RELEASE, ...who }, Buffer.concat([cr.body.subarray(128, 136), Buffer.alloc(16)]));
    t.equal((await call({ opcode: FUSE_MKNOD, nodeid: um }, mknodBody(0o010666, 0o002, 'p'))).error, 0, 'MKNOD of a fifo as root');
    t.equal(await mode('/um/p'), 0o010664, 'with umask 002');
    t.equal(await kernel.sys.umask(0), 0, 'the daemon\'s own umask is untouched');
  }
  {
    // A mount only root reaches (no allow_other, no default_permissions): the host need not
    // check modes, so no POSIX_ACL (it would force default_permissions); the umask still
    // travels with each create.
    const { call } = await session(t, {}, { posixAcl: true });
    const r = await call({ opcode: FUSE_INIT }, initBody(31, 0x73fffffb));
    const flags = r.body.readUInt32LE(12);
    t.notOk(flags & FUSE_POSIX_ACL, 'without hostChecks: no POSIX_ACL');
    t.ok(flags & FUSE_DONT_MASK, 'but DONT_MASK');
    const um = Number((await call({ opcode: FUSE_LOOKUP }, cstr('um'))).body.readBigUInt64LE(0));
    t.equal((await call({ opcode: FUSE_MKDIR, nodeid: um }, mkdirBody(0o777, 0o022, 'd3'))).error, 0, 'MKDIR');
    t.equal(await mode('/um/d3') & 0o7777, 0o755, 'made with the request\'s umask 022');
  }
  {
    const { call } = await session(t);
    const r = await call({ opcode: FUSE_INIT }, initBody(31, 0x73fffffb));
    t.notOk(r.body.readUInt32LE(12) & FUSE_DONT_MASK, 'without posixAcl: no DONT_MASK');
    const um = Number((await call({ opcode: FUSE_LOOKUP }, cstr('um'))).body.readBigUInt64LE(0));
    t.equal((await call({ opcode: FUSE_MKDIR, nodeid: um }, mkdirBody(0o775, 0o027, 'd2'))).error, 0, 'MKDIR');
    t.equal(await mode('/um/d2') & 0o7777, 0o775, 'the mode as sent: the host applied the umask already');
  }
});

t.test('credentials: new files belong to the caller; the kernel decides with its uid and groups', async (t) => {
  const groups = { 4321: [4242] };
  const { call } = await session(t, groups);
  await call({ opcode: FUSE_INIT }, initBody(31, 0));
  await kernel.sys.mkdir('/pub', 0o777);
  await kernel.sys.chmod('/pub', 0o777);
  const fd = await kernel.sys.open('/pub/secret', O_CREAT | O_RDWR, 0o600);
  await kernel.sys.close(fd);
  const fd2 = await kernel.sys.open('/pub/grp', O_CREAT | O_RDWR, 0o640);
  await kernel.sys.close(fd2);
  await kernel.sys.chown('/pub/grp', 0, 4242);
  const pub = await call({ opcode: FUSE_LOOKUP }, cstr('pub'));
  const pubId = Number(pub.body.readBigUInt64LE(0));
  const nobody = { uid: 65534, gid: 65534, pid: 1234 };
  const mk = await call({ opcode: FUSE_MKDIR, nodeid: pubId, ...nobody }, Buffer.concat([u32s(0o755, 0), cstr('mine')]));
  t.equal(mk.error, 0, 'uid 65534 makes a directory in a 0777 one');
  t.same([mk.body.readUInt32LE(40 + 68), mk.body.readUInt32LE(40 + 72)], [65534, 65534], 'owned by 65534:65534');
  const st = await kernel.sys.stat('/pub/mine');
  t.ok(typeof st !== 'number' && st.uid === 65534 && st.gid === 65534, 'the kernel agrees');
  const cr = await call({ opcode: FUSE_CREATE, nodeid: pubId, ...nobody }, Buffer.concat([u32s(O_CREAT | O_RDWR, 0o100600, 0, 0), cstr('file')]));
  t.equal(cr.error, 0, 'uid 65534 creates a file');
  t.equal(cr.body.readUInt32LE(40 + 68), 65534, 'owned by 65534');
  await call({ opcode: FUSE_RELEASE, ...nobody }, Buffer.concat([cr.body.subarray(128, 136), Buffer.alloc(16)]));

  const sec = await call({ opcode: FUSE_LOOKUP, nodeid: pubId }, cstr('secret'));
  const secId = Number(sec.body.readBigUInt64LE(0));
  t.equal((await call({ opcode: FUSE_OPEN, nodeid: secId, ...nobody }, u32s(O_RDONLY, 0))).error, -EACCES, 'uid 65534: EACCES on a root 0600 file');
  const ok = await call({ opcode: FUSE_OPEN, nodeid: secId }, u32s(O_RDONLY, 0));
  t.equal(ok.error, 0, 'root opens it');
  await call({ opcode: FUSE_RELEASE }, Buffer.concat([ok.body.subarray(0, 8), Buffer.alloc(16)]));
  const grp = await call({ opcode: FUSE_LOOKUP, nodeid: pubId }, cstr('grp'));
  const grpId = Number(grp.body.readBigUInt64LE(0));
  t.equal((await call({ opcode: FUSE_OPEN, nodeid: grpId, ...nobody }, u32s(O_RDONLY, 0))).error, -EACCES, 'without group 4242: EACCES');
  const viaGroup = await call({ opcode: FUSE_OPEN, nodeid: grpId, uid: 65534, gid: 65534, pid: 4321 }, u32s(O_RDONLY, 0));
  t.equal(viaGroup.error, 0, 'a caller whose supplementary groups hold 4242 may read it');
  t.equal((await call({ opcode: FUSE_OPEN, nodeid: grpId, uid: 65534, gid: 65534, pid: 4321 }, u32s(O_RDWR, 0))).error, -EACCES, 'but not write it');
  t.equal(await kernel.sys.getuid(), 0, 'the process itself is still root');
  const fresh = await kernel.sys.open('/pub/byroot', O_CREAT | O_RDWR, 0o644);
  const fst = await kernel.sys.fstat(fresh);
  await kernel.sys.close(fresh);
  t.ok(typeof fst !== 'number' && fst.uid === 0, 'and its own files are root\'s');
});

/* struct fuse_ioctl_in: fh, flags, cmd, arg, in_size, out_size; then the input bytes. */
const ioctlIn = (fh: Buffer, flags: number, cmd: number, outSize: number, data = Buffer.alloc(0)) =>
  Buffer.concat([fh, u32s(flags, cmd), u64(0), u32s(data.length, outSize), data]);

t.test('IOCTL: the inode flags of an ext4 file and directory, as the caller; ENOTTY, EPERM, EBADF', { skip: whyNot(['mke2fs', 'e2fsck']) }, async (t) => {
  const img = await makeExtImage({ path: `${scratchDir(t, 'fuse-ioctl')}/a.img`, type: 'ext4', sizeMiB: 8, blockSize: 4096 });
  const id = await kernel.diskAdd({ path: img });
  const mnt = await kernel.mountDev(id, 0, 'ext4', 0, '');
  if (typeof mnt !== 'string') throw new Error(`mount: ${mnt}`);
  const { call, ll } = await session(t, {}, {}, mnt);
  const init = await call({ opcode: FUSE_INIT }, initBody(31, FUSE_HAS_IOCTL_DIR));
  t.ok(init.body.readUInt32LE(12) & FUSE_HAS_IOCTL_DIR, 'INIT: ioctls on directories offered');
  const cr = await call({ opcode: FUSE_CREATE }, Buffer.concat([u32s(O_CREAT | O_RDWR, 0o100644, 0, 0), cstr('f')]));
  t.equal(cr.error, 0, 'created f');
  const fh = cr.body.subarray(128, 136);
  const flagsOf = (r: { body: Buffer }) => r.body.readUInt32LE(16);
  // The host's fileattr code asks FS_IOC_GETFLAGS with a 4-byte int.
  const g = await call({ opcode: FUSE_IOCTL }, ioctlIn(fh, 0, FS_IOC_GETFLAGS, 4));
  t.equal(g.error, 0, 'FS_IOC_GETFLAGS answered');
  t.equal(g.body.readInt32LE(0), 0, 'result 0');
  t.equal(g.body.length, 16 + 4, 'fuse_ioctl_out and the int');
  t.equal(flagsOf(g), FS_EXTENT_FL, 'a new ext4 file: e');
  const set = await call({ opcode: FUSE_IOCTL }, ioctlIn(fh, 0, FS_IOC_SETFLAGS, 0, u32s(FS_EXTENT_FL | FS_NODUMP_FL)));
  t.equal(set.error, 0, 'FS_IOC_SETFLAGS with the int');
  t.equal(set.body.length, 16, 'nothing to copy back');
  t.equal(flagsOf(await call({ opcode: FUSE_IOCTL }, ioctlIn(fh, 0, FS_IOC_GETFLAGS, 4))), FS_EXTENT_FL | FS_NODUMP_FL, 'd is set');
  const x = await call({ opcode: FUSE_IOCTL }, ioctlIn(fh, 0, FS_IOC_FSGETXATTR, 28));
  t.equal(x.body.length, 16 + 28, 'FS_IOC_FSGETXATTR: struct fsxattr');
  t.equal(x.body.readUInt32LE(16), FS_XFLAG_NODUMP, 'fsx_xflags: nodump');
  // lsattr -v's request says long (8 bytes) but Linux writes an int: only 4 come back.
  const v = await call({ opcode: FUSE_IOCTL }, ioctlIn(fh, 0, FS_IOC_GETVERSION, 8));
  t.equal(v.body.length, 16 + 4, 'FS_IOC_GETVERSION: 4 bytes for an 8-byte request');
  const kfd = await kernel.sys.open(`${mnt}/f`, O_RDONLY, 0);
  const kv = new Uint8Array(4);
  await kernel.sys.ioctl(kfd, FS_IOC_GETVERSION, kv);
  await kernel.sys.close(kfd);
  t.equal(v.body.readUInt32LE(16), Buffer.from(kv).readUInt32LE(0), 'the generation');
  const other = await call({ opcode: FUSE_IOCTL, uid: 1000, gid: 1000 }, ioctlIn(fh, 0, FS_IOC_SETFLAGS, 0, u32s(FS_EXTENT_FL)));
  t.equal(other.error, -EPERM, 'another user\'s FS_IOC_SETFLAGS: EPERM (runs as the caller)');
  t.equal((await call({ opcode: FUSE_IOCTL }, ioctlIn(fh, 0, 0x12345678, 0))).error, -ENOTTY, 'an unknown request: ENOTTY');
  t.equal((await call({ opcode: FUSE_IOCTL }, ioctlIn(fh, FUSE_IOCTL_UNRESTRICTED, FS_IOC_GETFLAGS, 4))).error, -EPERM, 'unrestricted: EPERM');
  t.equal((await call({ opcode: FUSE_IOCTL }, ioctlIn(u64(9999), 0, FS_IOC_GETFLAGS, 4))).error, -EBADF, 'an unknown handle: EBADF');
  await call({ opcode: FUSE_RELEASE }, Buffer.concat([fh, Buffer.alloc(16)]));
  // A directory: its OPENDIR handle, FUSE_IOCTL_DIR.
  const od = await call({ opcode: FUSE_OPENDIR }, u32s(O_RDONLY, 0));
  t.equal(od.error, 0, 'opendir of the root');
  const dh = od.body.subarray(0, 8);
  const dg = await call({ opcode: FUSE_IOCTL }, ioctlIn(dh, FUSE_IOCTL_DIR, FS_IOC_GETFLAGS, 4));
  t.equal(dg.error, 0, 'FS_IOC_GETFLAGS on a directory');
  t.equal(flagsOf(dg), FS_EXTENT_FL, 'mke2fs\'s root directory: e');
  await call({ opcode: FUSE_RELEASEDIR }, Buffer.concat([dh, Buffer.alloc(16)]));
  await ll.closeAll();
  t.equal(await kernel.umountDev(id, 0), 0, 'unmounted');
  await kernel.diskRemove(id);
  const fsck = await e2fsckClean(img);
  t.ok(fsck.clean, 'e2fsck -fn clean', { output: fsck.output });
});

t.test('without OPENDIR (FUSE_NO_OPENDIR_SUPPORT): ENOSYS, then READDIR, FSYNCDIR and IOCTL of a directory by node id', { skip: whyNot(['mke2fs', 'e2fsck']) }, async (t) => {
  const img = await makeExtImage({ path: `${scratchDir(t, 'fuse-noopendir')}/a.img`, type: 'ext4', sizeMiB: 16, blockSize: 1024 });
  const id = await kernel.diskAdd({ path: img });
  const mnt = await kernel.mountDev(id, 0, 'ext4', 0, '');
  if (typeof mnt !== 'string') throw new Error(`mount: ${mnt}`);
  const { s, ll, call, replies, nextUnique } = await session(t, {}, {}, mnt);
  const init = await call({ opcode: FUSE_INIT }, initBody(31, FUSE_NO_OPENDIR_SUPPORT | FUSE_HAS_IOCTL_DIR | FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO));
  t.equal(init.error, 0, 'INIT');
  t.equal(s.noOpendir, true, 'OPENDIR will be refused (the kernel supports it, only root reaches this mount)');
  t.equal((await call({ opcode: FUSE_OPENDIR }, u32s(O_RDONLY, 0))).error, -ENOSYS, 'OPENDIR: ENOSYS');
  // A directory of 300 names (ext4 makes it an htree: hash offsets) and a small one.
  const names = Array.from({ length: 300 }, (_, i) => `entry-${String(i).padStart(4, '0')}-${'x'.repeat(i % 40)}`);
  await kernel.sys.mkdir(`${mnt}/big`, 0o755);
  for (const n of names) await kernel.sys.close(await kernel.sys.open(`${mnt}/big/${n}`, O_CREAT | O_RDWR, 0o644));
  await kernel.sys.mkdir(`${mnt}/secret`, 0o700);
  const lookup = async (parent: number, name: string) => Number((await call({ opcode: FUSE_LOOKUP, nodeid: parent }, cstr(name))).body.readBigUInt64LE(0));
  const big = await lookup(1, 'big');
  const secret = await lookup(1, 'secret');
  const handlesBefore = ll.openHandles;
  // fuse_read_in with handle 0: fh, offset, size, read_flags, lock_owner, flags, padding
  const readIn = (offset: number, size: number) => Buffer.concat([u64(0), u64(offset), u32s(size, 0), u64(0), u32s(0, 0)]);
  const dirents = (b: Buffer) => {
    const out: { name: string; off: number }[] = [];
    for (let o = 0; o + 24 <= b.length;) {
      const len = b.readUInt32LE(o + 16);
      out.push({ off: Number(b.readBigUInt64LE(o + 8)), name: b.subarray(o + 24, o + 24 + len).toString() });
      o += Math.ceil((24 + len) / 8) * 8;
    }
    return out;
  };
  /** One READDIR of `node` at `offset`: its entries, or the error. */
  const readdir = async (node: number, offset: number, uid = 0) => {
    const r = await call({ opcode: FUSE_READDIR, nodeid: node, uid, gid: uid }, readIn(offset, 1024));
    return r.error ? r.error : dirents(r.body);
  };
  /** A whole listing, one READDIR after another from the last entry's offset. */
  const list = async (node: number, between?: () => Promise<void>) => {
    const got: string[] = [];
    let off = 0, rounds = 0;
    for (;;) {
      const e = await readdir(node, off);
      if (typeof e === 'number') throw new Error(`READDIR: ${e}`);
      if (e.length === 0) return { got, rounds };
      got.push(...e.map((x) => x.name));
      off = e[e.length - 1]!.off;
      rounds++;
      if (between) await between();
    }
  };
  const expected = ['.', '..', ...names].sort();
  const a = await list(big);
  t.ok(a.rounds > 5, `the listing took ${a.rounds} READDIRs of 1 KiB`);
  t.same([...a.got].sort(), expected, 'READDIR with handle 0 lists the directory: every name once');
  // Two listings interleaved on the node's one shared descriptor: each seeks to its offset.
  let other = 0;
  const inner: string[] = [];
  const b = await list(big, async () => {
    const e = await readdir(big, other);
    if (typeof e === 'number' || e.length === 0) return;
    inner.push(...e.map((x) => x.name));
    other = e[e.length - 1]!.off;
  });
  t.same([...b.got].sort(), expected, 'a listing interleaved with another is whole');
  t.same([...new Set(inner)].length, inner.length, 'and so far the other has no name twice');
  // Concurrent READDIRs (the shared descriptor is busy: the second opens its own).
  const us = [nextUnique(), nextUnique(), nextUnique()];
  for (const u of us) s.handle(frame({ opcode: FUSE_READDIR, unique: u, nodeid: big }, readIn(0, 4096)));
  await s.idle();
  const firsts = us.map((u) => replies.find((r) => r.unique === BigInt(u))!);
  t.ok(firsts.every((r) => r && r.error === 0), 'three READDIRs at once all answered');
  t.same(firsts.map((r) => dirents(r.body).map((x) => x.name)), [0, 1, 2].map(() => dirents(firsts[0]!.body).map((x) => x.name)), 'with the same first entries');
  t.equal(ll.openHandles, handlesBefore + 1, 'one descriptor kept for the node (the others closed)');
  // READDIRPLUS by node id: offset 0 names only, as with a handle.
  const plus = await call({ opcode: FUSE_READDIRPLUS, nodeid: big }, readIn(0, 4096));
  t.equal(plus.error, 0, 'READDIRPLUS with handle 0');
  t.equal(plus.body.readBigUInt64LE(0), 0n, 'offset 0: names only');
  // Permission: with no host checks, READDIR runs the open(2) check as the caller.
  t.equal(await readdir(secret, 0, 1000), -EACCES, 'uid 1000 cannot list a 0700 root directory: EACCES');
  const rootSecret = await readdir(secret, 0);
  t.same(typeof rootSecret === 'number' ? rootSecret : rootSecret.map((x) => x.name).sort(), ['.', '..'], 'root lists it');
  t.equal(await readdir(await lookup(big, names[0]!), 0), -ENOTDIR, 'READDIR of a file node: ENOTDIR');
  // FSYNCDIR and a directory's IOCTL with handle 0.
  const fs = await call({ opcode: FUSE_FSYNCDIR, nodeid: big }, Buffer.concat([u64(0), u32s(0, 0)]));
  t.equal(fs.error, 0, 'FSYNCDIR with handle 0');
  const dg = await call({ opcode: FUSE_IOCTL, nodeid: big }, ioctlIn(u64(0), FUSE_IOCTL_DIR, FS_IOC_GETFLAGS, 4));
  t.equal(dg.error, 0, 'FS_IOC_GETFLAGS of a directory with handle 0');
  t.equal(dg.body.readUInt32LE(16) & FS_EXTENT_FL, FS_EXTENT_FL, 'a new ext4 directory: e');
  const ds = await call({ opcode: FUSE_IOCTL, nodeid: big, uid: 1000, gid: 1000 }, ioctlIn(u64(0), FUSE_IOCTL_DIR, FS_IOC_SETFLAGS, 0, u32s(FS_EXTENT_FL | FS_NODUMP_FL)));
  t.equal(ds.error, -EPERM, 'another user\'s FS_IOC_SETFLAGS on it: EPERM (as the caller)');
  t.equal(ll.openHandles, handlesBefore + 2, 'FSYNCDIR and IOCTL keep nothing open (the two listed directories do)');
  // FORGET of the node closes its descriptor.
  s.handle(frame({ opcode: FUSE_FORGET, unique: 0, nodeid: big }, u64(3)));
  s.handle(frame({ opcode: FUSE_FORGET, unique: 0, nodeid: secret }, u64(1)));
  await new Promise((r) => setTimeout(r, 50));
  t.equal(ll.openHandles, handlesBefore, 'FORGET closes the directories\' READDIR descriptors');
  await ll.closeAll();
  t.equal(await kernel.umountDev(id, 0), 0, 'unmounted');
  await kernel.diskRemove(id);
  const fsck = await e2fsckClean(img);
  t.ok(fsck.clean, 'e2fsck -fn clean', { output: fsck.output });
});

t.test('OPENDIR is kept where it checks what the host does not, or the kernel cannot do without it', async (t) => {
  for (const [what, extra, flags] of [
    ['allow_other without default_permissions', { hostChecks: true }, FUSE_NO_OPENDIR_SUPPORT],
    ['a kernel without FUSE_NO_OPENDIR_SUPPORT', {}, 0],
  ] as const) {
    const { s, call } = await session(t, {}, extra);
    await call({ opcode: FUSE_INIT }, initBody(31, flags));
    t.equal(s.noOpendir, false, `${what}: OPENDIR served`);
    const od = await call({ opcode: FUSE_OPENDIR }, u32s(O_RDONLY, 0));
    t.equal(od.error, 0, `${what}: OPENDIR answers a handle`);
    await call({ opcode: FUSE_RELEASEDIR }, Buffer.concat([od.body.subarray(0, 8), Buffer.alloc(16)]));
  }
  const { s, call } = await session(t, {}, { hostChecks: true, hostPermissions: true });
  await call({ opcode: FUSE_INIT }, initBody(31, FUSE_NO_OPENDIR_SUPPORT));
  t.equal(s.noOpendir, true, 'default_permissions (the host checks the open): no OPENDIR');
});

t.test('nodes of non-directories pin no kernel descriptor; FORGET releases directories\' ones', async (t) => {
  const sess = await session(t);
  const { call } = sess;
  await call({ opcode: FUSE_INIT }, initBody(31, 0));
  await kernel.sys.mkdir('/many', 0o755);
  for (let i = 0; i < 200; i++) { const fd = await kernel.sys.open(`/many/f${i}`, O_CREAT | O_RDWR, 0o644); await kernel.sys.close(fd); }
  for (let i = 0; i < 20; i++) await kernel.sys.mkdir(`/many/d${i}`, 0o755);
  const probe = async () => { const fd = await kernel.sys.open('/many', O_RDONLY); await kernel.sys.close(fd); return fd; };
  const before = await probe();
  const many = await call({ opcode: FUSE_LOOKUP }, cstr('many'));
  const manyId = Number(many.body.readBigUInt64LE(0));
  const ids: number[] = [];
  let failed = 0;
  for (let i = 0; i < 200; i++) if ((await call({ opcode: FUSE_LOOKUP, nodeid: manyId }, cstr(`f${i}`))).error !== 0) failed++;
  t.equal(failed, 0, '200 lookups of files succeed');
  const afterFiles = await probe();
  t.ok(afterFiles <= before + 1, `200 file lookups hold no descriptor, /many one (probe fd ${before} -> ${afterFiles})`);
  for (let i = 0; i < 20; i++) ids.push(Number((await call({ opcode: FUSE_LOOKUP, nodeid: manyId }, cstr(`d${i}`))).body.readBigUInt64LE(0)));
  const afterDirs = await probe();
  t.ok(afterDirs > afterFiles, 'directory lookups hold one each');
  const forgets = Buffer.concat([u32s(ids.length, 0), ...ids.map((id) => Buffer.concat([u64(id), u64(1)]))]);
  sess.s.handle(frame({ opcode: FUSE_BATCH_FORGET, unique: 0, nodeid: 0 }, forgets));
  await new Promise((r) => setTimeout(r, 50));
  t.equal(await probe(), afterFiles, 'BATCH_FORGET closes the directories\' descriptors');
  t.equal(sess.ll.nodeCount, 1 + 1 + 200, 'the root, /many and the 200 files are left');
});

for (const intr of [false, true]) {
  const name = intr
    ? 'INTERRUPT with intr: a read is answered EINTR once; a write runs to its end; early interrupts count'
    : 'INTERRUPT by default: every request completes and answers once (as a local filesystem finishes a system call)';
  t.test(name, async (t) => {
    const { s, ll, replies, call, nextUnique } = await session(t, {}, { intr });
    await call({ opcode: FUSE_INIT }, initBody(31, 0));
    const fd = await kernel.sys.open('/intr', O_CREAT | O_RDWR, 0o644);
    await kernel.sys.close(fd);
    const n = await call({ opcode: FUSE_LOOKUP }, cstr('intr'));
    const nodeid = Number(n.body.readBigUInt64LE(0));
    const op = await call({ opcode: FUSE_OPEN, nodeid }, u32s(O_RDWR, 0));
    const fh = Number(op.body.readBigUInt64LE(0));
    // Hold reads and writes until released.
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const origRead = ll.read.bind(ll), origWrite = ll.write.bind(ll);
    ll.read = async (...a) => { await gate; return origRead(...a); };
    ll.write = async (...a) => { await gate; return origWrite(...a); };
    const readBody = Buffer.concat([u64(fh), u64(0), u32s(4096, 0), u64(0), u32s(0, 0)]);
    const ru = nextUnique();
    s.handle(frame({ opcode: FUSE_READ, unique: ru, nodeid }, readBody));
    // The kernel sends an INTERRUPT with the unique of its target, FUSE_INT_REQ_BIT set.
    s.handle(frame({ opcode: FUSE_INTERRUPT, unique: ru | 1, nodeid: 0 }, u64(ru)));
    const wu = nextUnique();
    const data = Buffer.from('written');
    s.handle(frame({ opcode: FUSE_WRITE, unique: wu, nodeid }, Buffer.concat([u64(fh), u64(0), u32s(data.length, 0), u64(0), u32s(0, 0), data])));
    s.handle(frame({ opcode: FUSE_INTERRUPT, unique: wu | 1, nodeid: 0 }, u64(wu)));
    // An interrupt for a read that has not arrived yet.
    const early = nextUnique();
    s.handle(frame({ opcode: FUSE_INTERRUPT, unique: early | 1, nodeid: 0 }, u64(early)));
    s.handle(frame({ opcode: FUSE_READ, unique: early, nodeid }, readBody));
    release();
    await s.idle();
    const of = (u: number) => replies.filter((r) => r.unique === BigInt(u));
    t.same(of(wu).map((r) => [r.error, r.body.readUInt32LE(0)]), [[0, data.length]], 'the write: one reply, done');
    t.equal(s.stats.interrupts, 3, 'three interrupts counted');
    if (intr) {
      t.same(of(ru).map((r) => r.error), [-EINTR], 'the read: one reply, EINTR');
      t.same(of(early).map((r) => r.error), [-EINTR], 'the read interrupted before it arrived: EINTR');
      t.ok(s.stats.droppedLate >= 1, 'the late read result was dropped');
    } else {
      // The read ran while the write waited at the same gate: it saw the file empty or written.
      for (const [u, what] of [[ru, 'the interrupted read'], [early, 'the read interrupted before it arrived']] as const) {
        const r = of(u);
        t.same(r.map((x) => x.error), [0], `${what}: one reply, success`);
        t.ok(r[0] && (r[0].body.length === 0 || r[0].body.toString() === 'written'), `${what}: its data`);
      }
      t.equal(s.stats.droppedLate, 0, 'no result dropped');
    }
    const buf = new Uint8Array(16);
    const fd3 = await kernel.sys.open('/intr', O_RDONLY);
    t.equal(await kernel.sys.pread64(fd3, buf, 0), data.length, 'the write reached the file');
    await kernel.sys.close(fd3);
    ll.read = origRead; ll.write = origWrite;
  });
}

t.test('fuzz: malformed frames get errors, never a crash or a second reply', async (t) => {
  const { s, replies, call } = await session(t);
  await call({ opcode: FUSE_INIT }, initBody(31, 0));
  await kernel.sys.mkdir('/fz', 0o755);
  let seed = 12345;
  const rnd = (n: number) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
  // INIT and DESTROY are left out: a second INIT renegotiates, DESTROY ends the session.
  const OPS = Object.keys(OPCODE_NAMES).map(Number).filter((o) => o !== FUSE_INIT && o !== 38);
  const sent = new Map<bigint, number>();
  let unique = 1_000_000;
  const threw: string[] = [];
  const valid = (op: number) => {
    // A plausible body for op, then mangled.
    switch (op) {
      case FUSE_LOOKUP: return cstr('fz');
      case FUSE_READ: case FUSE_READDIRPLUS: return Buffer.concat([u64(rnd(64)), u64(rnd(1 << 20)), u32s(rnd(1 << 17), 0), u64(0), u32s(0, 0)]);
      case FUSE_BATCH_FORGET: return Buffer.concat([u32s(rnd(4) === 0 ? 0xffffffff : rnd(4), 0), u64(rnd(10)), u64(1)]);
      case FUSE_OPENDIR: return u32s(O_RDONLY, 0);
      default: return Buffer.from(Array.from({ length: rnd(120) }, () => rnd(256)));
    }
  };
  for (let i = 0; i < 4000; i++) {
    let op = rnd(10) === 0 ? rnd(70) : OPS[rnd(OPS.length)]!;
    if (op === FUSE_INIT || op === 38) op = 0;
    let body = valid(op);
    const kind = rnd(5);
    if (kind === 0) body = body.subarray(0, rnd(body.length + 1)); // truncated
    if (kind === 1) body = Buffer.concat([body, Buffer.alloc(rnd(64), 0xff)]); // trailing junk
    if (kind === 2) body = Buffer.from(body.map((x) => (rnd(8) === 0 ? rnd(256) : x))); // flipped bytes
    unique += 2;
    const f = frame({ opcode: op, unique, nodeid: rnd(4) === 0 ? rnd(1 << 30) : 1 + rnd(3), uid: rnd(3) === 0 ? 65534 : 0, gid: 0 }, body);
    if (rnd(6) === 0) f.writeUInt32LE(rnd(2) ? f.length + 1 + rnd(100) : rnd(f.length), 0); // lying len
    if (rnd(20) === 0) f.writeUInt16LE(rnd(0x10000), 36); // total_extlen
    let cut = f;
    if (rnd(30) === 0) cut = f.subarray(0, rnd(IN_HEADER_SIZE)); // not even a header
    sent.set(BigInt(unique), op);
    try { s.handle(cut); } catch (e) { threw.push(`frame ${i} (${OPCODE_NAMES[op] ?? op}): ${String(e)}`); }
  }
  t.same(threw, [], 'handle() never throws');
  // And plain random bytes.
  for (let i = 0; i < 500; i++) s.handle(Buffer.from(Array.from({ length: rnd(200) }, () => rnd(256))));
  await s.idle();
  const counts = new Map<bigint, number>();
  for (const r of replies) counts.set(r.unique, (counts.get(r.unique) ?? 0) + 1);
  const twice = [...counts].filter(([u, c]) => c > 1 && sent.has(u));
  t.same(twice, [], 'no request answered twice');
  const noReply = [...counts.keys()].filter((u) => u >= 1_000_000n && !sent.has(u) && u < BigInt(unique));
  t.same(noReply, [], 'every reply is for a request that was sent');
  const answeredOk = [...sent].filter(([u, op]) => (op === FUSE_FORGET || op === FUSE_BATCH_FORGET || op === FUSE_INTERRUPT) &&
    replies.some((r) => r.unique === u && r.error === 0));
  t.same(answeredOk, [], 'forgets and interrupts are never answered with success');
  t.ok(s.stats.protocolErrors > 100, `malformed frames were noticed (${s.stats.protocolErrors})`);
  // Still serving.
  const r = await call({ opcode: FUSE_LOOKUP }, cstr('fz'));
  t.equal(r.error, 0, 'a good LOOKUP after the fuzz still works');
  t.doesNotThrow(() => parseRequest(frame({ opcode: FUSE_LOOKUP, unique: 1 }, cstr('x'))), 'the parser reads a good frame');
  t.throws(() => parseRequest(frame({ opcode: FUSE_LOOKUP, unique: 1 }, Buffer.from('no-nul'))), /not NUL-terminated/, 'and names a bad one');
});

t.test('FLUSH: ENOSYS, so that the host kernel stops sending one with every close(2)', async (t) => {
  const { call } = await session(t);
  await call({ opcode: FUSE_INIT }, initBody(31, 0));
  const cr = await call({ opcode: FUSE_CREATE }, Buffer.concat([u32s(O_CREAT | O_RDWR, 0o100644, 0, 0), cstr('flushed')]));
  t.equal(cr.error, 0, 'created');
  const fh = cr.body.subarray(128, 136);
  // fuse_flush_in: fh, unused, padding, lock_owner
  const fl = await call({ opcode: FUSE_FLUSH }, Buffer.concat([fh, u32s(0, 0), u64(0)]));
  t.equal(fl.error, -ENOSYS, 'FLUSH answered ENOSYS (fc->no_flush: close(2) then returns 0 without asking)');
  const w = await call({ opcode: FUSE_WRITE }, Buffer.concat([fh, u64(0), u32s(2, 0), u64(0), u32s(0, 0), Buffer.from('ok')]));
  t.equal(w.error, 0, 'the handle is still open after the FLUSH');
  t.equal((await call({ opcode: FUSE_RELEASE }, Buffer.concat([fh, Buffer.alloc(16)]))).error, 0, 'and RELEASE closes it');
  await kernel.sys.unlink('/flushed');
});
