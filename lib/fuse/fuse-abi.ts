/*
 * The FUSE kernel protocol as lklfuse's kernel transport speaks it: Linux's
 * include/uapi/linux/fuse.h (opcodes, flags, struct layouts; names kept) and
 * Documentation/filesystems/fuse.rst. Pure functions over bytes, no I/O: parseRequest()
 * decodes one frame read from /dev/fuse (distrusting every length in it), the encode*
 * functions build reply bodies. fuse-kernel.ts does the I/O, ll-ops.ts the work.
 *
 * Numbers: node ids, handles and offsets travel as uint64; they are read into JavaScript
 * numbers (exact below 2^53, which covers every id and offset we hand out or a disk holds).
 * Times are signed 64-bit seconds plus uint32 nanoseconds, both ways.
 */

export const FUSE_KERNEL_VERSION = 7;
/** The minor version we implement (7.31: Linux 5.4); we answer min(this, the kernel's). */
export const FUSE_KERNEL_MINOR_VERSION = 31;
export const FUSE_ROOT_ID = 1;
/** Smallest read buffer the kernel accepts for /dev/fuse. */
export const FUSE_MIN_READ_BUFFER = 8192;

/* enum fuse_opcode */
export const FUSE_LOOKUP = 1, FUSE_FORGET = 2, FUSE_GETATTR = 3, FUSE_SETATTR = 4, FUSE_READLINK = 5,
  FUSE_SYMLINK = 6, FUSE_MKNOD = 8, FUSE_MKDIR = 9, FUSE_UNLINK = 10, FUSE_RMDIR = 11,
  FUSE_RENAME = 12, FUSE_LINK = 13, FUSE_OPEN = 14, FUSE_READ = 15, FUSE_WRITE = 16,
  FUSE_STATFS = 17, FUSE_RELEASE = 18, FUSE_FSYNC = 20, FUSE_SETXATTR = 21, FUSE_GETXATTR = 22,
  FUSE_LISTXATTR = 23, FUSE_REMOVEXATTR = 24, FUSE_FLUSH = 25, FUSE_INIT = 26, FUSE_OPENDIR = 27,
  FUSE_READDIR = 28, FUSE_RELEASEDIR = 29, FUSE_FSYNCDIR = 30, FUSE_GETLK = 31, FUSE_SETLK = 32,
  FUSE_SETLKW = 33, FUSE_ACCESS = 34, FUSE_CREATE = 35, FUSE_INTERRUPT = 36, FUSE_BMAP = 37,
  FUSE_DESTROY = 38, FUSE_IOCTL = 39, FUSE_POLL = 40, FUSE_NOTIFY_REPLY = 41,
  FUSE_BATCH_FORGET = 42, FUSE_FALLOCATE = 43, FUSE_READDIRPLUS = 44, FUSE_RENAME2 = 45,
  FUSE_LSEEK = 46, FUSE_COPY_FILE_RANGE = 47, FUSE_SETUPMAPPING = 48, FUSE_REMOVEMAPPING = 49,
  FUSE_SYNCFS = 50, FUSE_TMPFILE = 51, FUSE_STATX = 52;

export const OPCODE_NAMES: Record<number, string> = {
  1: 'LOOKUP', 2: 'FORGET', 3: 'GETATTR', 4: 'SETATTR', 5: 'READLINK', 6: 'SYMLINK', 8: 'MKNOD',
  9: 'MKDIR', 10: 'UNLINK', 11: 'RMDIR', 12: 'RENAME', 13: 'LINK', 14: 'OPEN', 15: 'READ',
  16: 'WRITE', 17: 'STATFS', 18: 'RELEASE', 20: 'FSYNC', 21: 'SETXATTR', 22: 'GETXATTR',
  23: 'LISTXATTR', 24: 'REMOVEXATTR', 25: 'FLUSH', 26: 'INIT', 27: 'OPENDIR', 28: 'READDIR',
  29: 'RELEASEDIR', 30: 'FSYNCDIR', 31: 'GETLK', 32: 'SETLK', 33: 'SETLKW', 34: 'ACCESS',
  35: 'CREATE', 36: 'INTERRUPT', 37: 'BMAP', 38: 'DESTROY', 39: 'IOCTL', 40: 'POLL',
  41: 'NOTIFY_REPLY', 42: 'BATCH_FORGET', 43: 'FALLOCATE', 44: 'READDIRPLUS', 45: 'RENAME2',
  46: 'LSEEK', 47: 'COPY_FILE_RANGE', 48: 'SETUPMAPPING', 49: 'REMOVEMAPPING', 50: 'SYNCFS',
  51: 'TMPFILE', 52: 'STATX',
};

/* fuse_init_in/out flags */
export const FUSE_ASYNC_READ = 1 << 0, FUSE_POSIX_LOCKS = 1 << 1, FUSE_ATOMIC_O_TRUNC = 1 << 3,
  FUSE_EXPORT_SUPPORT = 1 << 4, FUSE_BIG_WRITES = 1 << 5, FUSE_DONT_MASK = 1 << 6,
  FUSE_FLOCK_LOCKS = 1 << 10, FUSE_HAS_IOCTL_DIR = 1 << 11, FUSE_AUTO_INVAL_DATA = 1 << 12,
  FUSE_DO_READDIRPLUS = 1 << 13, FUSE_READDIRPLUS_AUTO = 1 << 14, FUSE_ASYNC_DIO = 1 << 15,
  FUSE_WRITEBACK_CACHE = 1 << 16, FUSE_NO_OPEN_SUPPORT = 1 << 17, FUSE_PARALLEL_DIROPS = 1 << 18,
  FUSE_HANDLE_KILLPRIV = 1 << 19, FUSE_POSIX_ACL = 1 << 20, FUSE_ABORT_ERROR = 1 << 21,
  FUSE_MAX_PAGES = 1 << 22, FUSE_CACHE_SYMLINKS = 1 << 23, FUSE_NO_OPENDIR_SUPPORT = 1 << 24;

/* fuse_setattr_in.valid */
export const FATTR_MODE = 1 << 0, FATTR_UID = 1 << 1, FATTR_GID = 1 << 2, FATTR_SIZE = 1 << 3,
  FATTR_ATIME = 1 << 4, FATTR_MTIME = 1 << 5, FATTR_FH = 1 << 6, FATTR_ATIME_NOW = 1 << 7,
  FATTR_MTIME_NOW = 1 << 8, FATTR_LOCKOWNER = 1 << 9, FATTR_CTIME = 1 << 10;

/* fuse_open_out.open_flags */
export const FOPEN_DIRECT_IO = 1 << 0, FOPEN_KEEP_CACHE = 1 << 1, FOPEN_NONSEEKABLE = 1 << 2,
  FOPEN_CACHE_DIR = 1 << 3;

export const FUSE_GETATTR_FH = 1 << 0;
export const FUSE_FSYNC_FDATASYNC = 1 << 0;
/** Set in the unique of an INTERRUPT request (fuse_dev_do_read). */
export const FUSE_INT_REQ_BIT = 1;

/* Sizes of the fixed parts (bytes) */
export const IN_HEADER_SIZE = 40, OUT_HEADER_SIZE = 16, ATTR_SIZE = 88, ENTRY_OUT_SIZE = 128,
  ATTR_OUT_SIZE = 104, OPEN_OUT_SIZE = 16, INIT_OUT_SIZE = 64, KSTATFS_SIZE = 80, DIRENT_SIZE = 24;

export interface InHeader {
  len: number; opcode: number; unique: bigint; nodeid: number; uid: number; gid: number; pid: number;
}

/** A frame the parser refused: `unique` is set when the header could be read (answer it). */
export class FuseProtocolError extends Error {
  constructor(message: string, readonly unique?: bigint, readonly opcode?: number) { super(message); }
}

const U32 = 4294967296;

/** A bounds-checked little-endian reader over one frame's body. */
class Cursor {
  pos: number;
  constructor(private readonly b: Buffer, start: number, private readonly end: number, private readonly h: InHeader) {
    this.pos = start;
  }
  private need(n: number, what: string): void {
    if (this.pos + n > this.end) {
      throw new FuseProtocolError(`${OPCODE_NAMES[this.h.opcode] ?? this.h.opcode}: ${what} runs past the end of the request (${this.end - this.pos} bytes left, ${n} needed)`, this.h.unique, this.h.opcode);
    }
  }
  u32(what = 'field'): number { this.need(4, what); const v = this.b.readUInt32LE(this.pos); this.pos += 4; return v; }
  u64(what = 'field'): number {
    this.need(8, what);
    const v = this.b.readUInt32LE(this.pos) + this.b.readUInt32LE(this.pos + 4) * U32;
    this.pos += 8;
    return v;
  }
  s64(what = 'field'): number { this.need(8, what); const v = Number(this.b.readBigInt64LE(this.pos)); this.pos += 8; return v; }
  skip(n: number, what = 'padding'): void { this.need(n, what); this.pos += n; }
  /** A NUL-terminated name (bytes, without the NUL). */
  name(what = 'name'): Buffer {
    const nul = this.b.indexOf(0, this.pos);
    if (nul < 0 || nul >= this.end) {
      throw new FuseProtocolError(`${OPCODE_NAMES[this.h.opcode] ?? this.h.opcode}: ${what} is not NUL-terminated`, this.h.unique, this.h.opcode);
    }
    const v = this.b.subarray(this.pos, nul);
    this.pos = nul + 1;
    return v;
  }
  bytes(n: number, what = 'data'): Buffer { this.need(n, what); const v = this.b.subarray(this.pos, this.pos + n); this.pos += n; return v; }
  rest(): Buffer { return this.b.subarray(this.pos, this.end); }
}

export interface SetattrIn {
  valid: number; fh: number; size: number; atime: number; mtime: number; ctime: number;
  atimensec: number; mtimensec: number; ctimensec: number; mode: number; uid: number; gid: number;
}

/** One decoded request: the header and the opcode's arguments. */
export type FuseRequest = InHeader & (
  | { op: 'init'; major: number; minor: number; maxReadahead: number; flags: number }
  | { op: 'lookup' | 'unlink' | 'rmdir' | 'removexattr'; name: Buffer }
  | { op: 'forget'; nlookup: number }
  | { op: 'batch_forget'; forgets: { nodeid: number; nlookup: number }[] }
  | { op: 'getattr'; getattrFlags: number; fh: number }
  | { op: 'setattr'; attr: SetattrIn }
  | { op: 'readlink' | 'statfs' | 'destroy' | 'unknown' | 'syncfs' }
  | { op: 'symlink'; name: Buffer; target: Buffer }
  | { op: 'mknod'; mode: number; rdev: number; umask: number; name: Buffer }
  | { op: 'mkdir'; mode: number; umask: number; name: Buffer }
  | { op: 'rename'; newdir: number; flags: number; name: Buffer; newname: Buffer }
  | { op: 'link'; oldnodeid: number; name: Buffer }
  | { op: 'open' | 'opendir'; flags: number }
  | { op: 'create'; flags: number; mode: number; umask: number; name: Buffer }
  | { op: 'read' | 'readdir' | 'readdirplus'; fh: number; offset: number; size: number; flags: number }
  | { op: 'write'; fh: number; offset: number; size: number; flags: number; data: Buffer }
  | { op: 'release' | 'releasedir'; fh: number; flags: number; releaseFlags: number }
  | { op: 'flush'; fh: number }
  | { op: 'fsync' | 'fsyncdir'; fh: number; fsyncFlags: number }
  | { op: 'setxattr'; size: number; flags: number; name: Buffer; value: Buffer }
  | { op: 'getxattr'; size: number; name: Buffer }
  | { op: 'listxattr'; size: number }
  | { op: 'access'; mask: number }
  | { op: 'interrupt'; target: bigint }
  | { op: 'fallocate'; fh: number; offset: number; length: number; mode: number }
  | { op: 'lseek'; fh: number; offset: number; whence: number }
  | { op: 'copy_file_range'; fhIn: number; offIn: number; nodeidOut: number; fhOut: number; offOut: number; len: number; flags: number }
  | { op: 'ioctl'; fh: number; flags: number; cmd: number; arg: number; inSize: number; outSize: number; data: Buffer }
  | { op: 'lk'; fh: number }
);

/** Reads the 40-byte in-header; throws (without a unique) if even that is impossible. */
export function parseHeader(b: Buffer): InHeader {
  if (b.length < IN_HEADER_SIZE) throw new FuseProtocolError(`request of ${b.length} bytes is shorter than fuse_in_header (${IN_HEADER_SIZE})`);
  const len = b.readUInt32LE(0);
  const h: InHeader = {
    len, opcode: b.readUInt32LE(4), unique: b.readBigUInt64LE(8),
    nodeid: b.readUInt32LE(16) + b.readUInt32LE(20) * U32,
    uid: b.readUInt32LE(24), gid: b.readUInt32LE(28), pid: b.readUInt32LE(32),
  };
  if (len !== b.length) throw new FuseProtocolError(`fuse_in_header.len is ${len} but the request has ${b.length} bytes`, h.unique, h.opcode);
  return h;
}

/**
 * Decodes one request. `minor` is the negotiated minor version (struct sizes depend on it).
 * Throws FuseProtocolError for anything malformed; never anything else.
 */
export function parseRequest(b: Buffer, minor = FUSE_KERNEL_MINOR_VERSION): FuseRequest {
  const h = parseHeader(b);
  const extlen = b.readUInt16LE(36) * 8; // total_extlen (7.37+): extensions after the arguments
  if (extlen > b.length - IN_HEADER_SIZE) throw new FuseProtocolError('total_extlen runs past the end of the request', h.unique, h.opcode);
  const c = new Cursor(b, IN_HEADER_SIZE, b.length - extlen, h);
  const r = <T extends object>(x: T) => Object.assign(h, x) as unknown as FuseRequest;
  switch (h.opcode) {
    case FUSE_INIT: {
      const major = c.u32('major'), minorIn = c.u32('minor'), maxReadahead = c.u32('max_readahead'), flags = c.u32('flags');
      return r({ op: 'init', major, minor: minorIn, maxReadahead, flags });
    }
    case FUSE_LOOKUP: return r({ op: 'lookup', name: c.name() });
    case FUSE_UNLINK: return r({ op: 'unlink', name: c.name() });
    case FUSE_RMDIR: return r({ op: 'rmdir', name: c.name() });
    case FUSE_REMOVEXATTR: return r({ op: 'removexattr', name: c.name() });
    case FUSE_FORGET: return r({ op: 'forget', nlookup: c.u64('nlookup') });
    case FUSE_BATCH_FORGET: {
      const count = c.u32('count'); c.skip(4);
      if (count * 16 > b.length) throw new FuseProtocolError(`BATCH_FORGET: count ${count} does not fit the request`, h.unique, h.opcode);
      const forgets: { nodeid: number; nlookup: number }[] = [];
      for (let i = 0; i < count; i++) forgets.push({ nodeid: c.u64('nodeid'), nlookup: c.u64('nlookup') });
      return r({ op: 'batch_forget', forgets });
    }
    case FUSE_GETATTR: {
      const getattrFlags = c.u32('getattr_flags'); c.skip(4); const fh = c.u64('fh');
      return r({ op: 'getattr', getattrFlags, fh });
    }
    case FUSE_SETATTR: {
      const valid = c.u32('valid'); c.skip(4);
      const fh = c.u64('fh'), size = c.u64('size'); c.skip(8, 'lock_owner');
      const atime = c.s64('atime'), mtime = c.s64('mtime'), ctime = c.s64('ctime');
      const atimensec = c.u32(), mtimensec = c.u32(), ctimensec = c.u32(), mode = c.u32('mode');
      c.skip(4); const uid = c.u32('uid'), gid = c.u32('gid'); c.skip(4);
      return r({ op: 'setattr', attr: { valid, fh, size, atime, mtime, ctime, atimensec, mtimensec, ctimensec, mode, uid, gid } });
    }
    case FUSE_READLINK: return r({ op: 'readlink' });
    case FUSE_STATFS: return r({ op: 'statfs' });
    case FUSE_DESTROY: return r({ op: 'destroy' });
    case FUSE_SYNCFS: return r({ op: 'syncfs' });
    case FUSE_SYMLINK: { const name = c.name(); const target = c.name('link target'); return r({ op: 'symlink', name, target }); }
    case FUSE_MKNOD: {
      const mode = c.u32('mode'), rdev = c.u32('rdev');
      let umask = 0;
      if (minor >= 12) { umask = c.u32('umask'); c.skip(4); }
      return r({ op: 'mknod', mode, rdev, umask, name: c.name() });
    }
    case FUSE_MKDIR: { const mode = c.u32('mode'), umask = c.u32('umask'); return r({ op: 'mkdir', mode, umask, name: c.name() }); }
    case FUSE_RENAME: { const newdir = c.u64('newdir'); const name = c.name(); return r({ op: 'rename', newdir, flags: 0, name, newname: c.name('new name') }); }
    case FUSE_RENAME2: {
      const newdir = c.u64('newdir'), flags = c.u32('flags'); c.skip(4);
      const name = c.name();
      return r({ op: 'rename', newdir, flags, name, newname: c.name('new name') });
    }
    case FUSE_LINK: { const oldnodeid = c.u64('oldnodeid'); return r({ op: 'link', oldnodeid, name: c.name() }); }
    case FUSE_OPEN: case FUSE_OPENDIR: {
      const flags = c.u32('flags'); c.skip(4);
      return r({ op: h.opcode === FUSE_OPEN ? 'open' : 'opendir', flags });
    }
    case FUSE_CREATE: {
      const flags = c.u32('flags'), mode = c.u32('mode'), umask = c.u32('umask'); c.skip(4);
      return r({ op: 'create', flags, mode, umask, name: c.name() });
    }
    case FUSE_READ: case FUSE_READDIR: case FUSE_READDIRPLUS: {
      const fh = c.u64('fh'), offset = c.u64('offset'), size = c.u32('size'); c.skip(4); c.skip(8, 'lock_owner');
      const flags = minor >= 9 ? c.u32('flags') : 0;
      if (minor >= 9) c.skip(4);
      return r({ op: h.opcode === FUSE_READ ? 'read' : h.opcode === FUSE_READDIR ? 'readdir' : 'readdirplus', fh, offset, size, flags });
    }
    case FUSE_WRITE: {
      const fh = c.u64('fh'), offset = c.u64('offset'), size = c.u32('size'); c.skip(4); c.skip(8, 'lock_owner');
      const flags = minor >= 9 ? c.u32('flags') : 0;
      if (minor >= 9) c.skip(4);
      const data = c.bytes(size, 'write data');
      return r({ op: 'write', fh, offset, size, flags, data });
    }
    case FUSE_RELEASE: case FUSE_RELEASEDIR: {
      const fh = c.u64('fh'), flags = c.u32('flags'), releaseFlags = c.u32('release_flags');
      return r({ op: h.opcode === FUSE_RELEASE ? 'release' : 'releasedir', fh, flags, releaseFlags });
    }
    case FUSE_FLUSH: return r({ op: 'flush', fh: c.u64('fh') });
    case FUSE_FSYNC: case FUSE_FSYNCDIR: {
      const fh = c.u64('fh'), fsyncFlags = c.u32('fsync_flags');
      return r({ op: h.opcode === FUSE_FSYNC ? 'fsync' : 'fsyncdir', fh, fsyncFlags });
    }
    case FUSE_SETXATTR: {
      const size = c.u32('size'), flags = c.u32('flags');
      const name = c.name();
      return r({ op: 'setxattr', size, flags, name, value: c.bytes(size, 'xattr value') });
    }
    case FUSE_GETXATTR: { const size = c.u32('size'); c.skip(4); return r({ op: 'getxattr', size, name: c.name() }); }
    case FUSE_LISTXATTR: { const size = c.u32('size'); c.skip(4); return r({ op: 'listxattr', size }); }
    case FUSE_ACCESS: { const mask = c.u32('mask'); c.skip(4); return r({ op: 'access', mask }); }
    case FUSE_INTERRUPT: { c.skip(0); const lo = c.u32('unique'), hi = c.u32('unique'); return r({ op: 'interrupt', target: BigInt(lo) + (BigInt(hi) << 32n) }); }
    case FUSE_FALLOCATE: {
      const fh = c.u64('fh'), offset = c.u64('offset'), length = c.u64('length'), mode = c.u32('mode');
      return r({ op: 'fallocate', fh, offset, length, mode });
    }
    case FUSE_LSEEK: { const fh = c.u64('fh'), offset = c.s64('offset'), whence = c.u32('whence'); return r({ op: 'lseek', fh, offset, whence }); }
    case FUSE_COPY_FILE_RANGE: {
      const fhIn = c.u64('fh_in'), offIn = c.u64('off_in'), nodeidOut = c.u64('nodeid_out'), fhOut = c.u64('fh_out');
      const offOut = c.u64('off_out'), len = c.u64('len'), flags = c.u64('flags');
      return r({ op: 'copy_file_range', fhIn, offIn, nodeidOut, fhOut, offOut, len, flags });
    }
    case FUSE_IOCTL: {
      const fh = c.u64('fh'), flags = c.u32('flags'), cmd = c.u32('cmd'), arg = c.u64('arg');
      const inSize = c.u32('in_size'), outSize = c.u32('out_size');
      return r({ op: 'ioctl', fh, flags, cmd, arg, inSize, outSize, data: c.bytes(inSize, 'ioctl input') });
    }
    case FUSE_GETLK: case FUSE_SETLK: case FUSE_SETLKW: return r({ op: 'lk', fh: c.u64('fh') });
    default: return r({ op: 'unknown' });
  }
}

/* ---- replies ---- */

/** The reply frame: out-header + body (a copy; small). */
export function replyFrame(unique: bigint, error: number, body?: Uint8Array): Buffer {
  const n = OUT_HEADER_SIZE + (body ? body.length : 0);
  const b = Buffer.allocUnsafe(n);
  b.writeUInt32LE(n, 0);
  b.writeInt32LE(error, 4);
  b.writeBigUInt64LE(unique, 8);
  if (body) b.set(body, OUT_HEADER_SIZE);
  return b;
}

/** Writes a header in place at the start of `b` (for replies built around a data buffer). */
export function writeOutHeader(b: Buffer, unique: bigint, error: number): void {
  b.writeUInt32LE(b.length, 0);
  b.writeInt32LE(error, 4);
  b.writeBigUInt64LE(unique, 8);
}

function w64(b: Buffer, off: number, v: number): void {
  // signed: times before 1970 stay negative (two's complement: hi is floor(v / 2^32))
  const n = Math.trunc(v), hi = Math.floor(n / U32);
  const d = viewOf(b);
  d.setUint32(off, n - hi * U32, true); d.setInt32(off + 4, hi, true);
}
function wu64(b: Buffer, off: number, v: number): void {
  const n = v > 0 ? Math.floor(v) : 0;
  const d = viewOf(b);
  d.setUint32(off, n % U32, true); d.setUint32(off + 4, Math.floor(n / U32) % U32, true);
}

/** What struct fuse_attr carries (the kernel's struct stat fits). */
export interface AttrSource {
  ino: number; size: number; blocks: number; mode: number; nlink: number; uid: number; gid: number;
  rdev: number; blksize: number;
  atime: { sec: number; nsec: number }; mtime: { sec: number; nsec: number }; ctime: { sec: number; nsec: number };
}

/** struct fuse_attr at `off` (u32 fields as DataView stores them: modulo 2^32, like >>> 0). */
export function writeAttr(b: Buffer, off: number, a: AttrSource): void {
  wu64(b, off, a.ino); wu64(b, off + 8, a.size); wu64(b, off + 16, a.blocks);
  w64(b, off + 24, a.atime.sec); w64(b, off + 32, a.mtime.sec); w64(b, off + 40, a.ctime.sec);
  const d = viewOf(b);
  d.setUint32(off + 48, a.atime.nsec, true); d.setUint32(off + 52, a.mtime.nsec, true); d.setUint32(off + 56, a.ctime.nsec, true);
  d.setUint32(off + 60, a.mode, true); d.setUint32(off + 64, a.nlink, true);
  d.setUint32(off + 68, a.uid, true); d.setUint32(off + 72, a.gid, true);
  d.setUint32(off + 76, a.rdev, true); d.setUint32(off + 80, a.blksize, true);
  d.setUint32(off + 84, 0, true);
}

/** A timeout in seconds as (u64 seconds, u32 nanoseconds). */
function writeValid(b: Buffer, secOff: number, nsecOff: number, seconds: number): void {
  const s = Math.floor(seconds);
  wu64(b, secOff, s);
  viewOf(b).setUint32(nsecOff, Math.round((seconds - s) * 1e9), true);
}

export interface Entry { nodeid: number; generation: number; attr: AttrSource }

/** struct fuse_entry_out at `off` (nodeid 0 = a negative entry). */
export function writeEntry(b: Buffer, off: number, e: Entry | null, entryValid: number, attrValid: number): void {
  zeroBytes(b, off, off + ENTRY_OUT_SIZE);
  if (!e) { writeValid(b, off + 16, off + 32, entryValid); return; }
  wu64(b, off, e.nodeid); wu64(b, off + 8, e.generation);
  writeValid(b, off + 16, off + 32, entryValid);
  writeValid(b, off + 24, off + 36, attrValid);
  writeAttr(b, off + 40, e.attr);
}

export function encodeEntry(e: Entry, entryValid: number, attrValid: number): Buffer {
  const b = Buffer.allocUnsafe(ENTRY_OUT_SIZE);
  writeEntry(b, 0, e, entryValid, attrValid);
  return b;
}

export function encodeAttrOut(a: AttrSource, attrValid: number): Buffer {
  const b = Buffer.alloc(ATTR_OUT_SIZE);
  writeValid(b, 0, 8, attrValid);
  writeAttr(b, 16, a);
  return b;
}

export function encodeOpenOut(fh: number, openFlags: number): Buffer {
  const b = Buffer.alloc(OPEN_OUT_SIZE);
  wu64(b, 0, fh);
  b.writeUInt32LE(openFlags >>> 0, 8);
  return b;
}

export function encodeCreateOut(e: Entry, entryValid: number, attrValid: number, fh: number, openFlags: number): Buffer {
  return Buffer.concat([encodeEntry(e, entryValid, attrValid), encodeOpenOut(fh, openFlags)]);
}

export interface InitOut {
  major: number; minor: number; maxReadahead: number; flags: number; maxBackground: number;
  congestionThreshold: number; maxWrite: number; timeGran: number; maxPages: number;
}
export function encodeInitOut(o: InitOut): Buffer {
  const b = Buffer.alloc(INIT_OUT_SIZE);
  b.writeUInt32LE(o.major, 0); b.writeUInt32LE(o.minor, 4); b.writeUInt32LE(o.maxReadahead >>> 0, 8);
  b.writeUInt32LE(o.flags >>> 0, 12); b.writeUInt16LE(o.maxBackground, 16); b.writeUInt16LE(o.congestionThreshold, 18);
  b.writeUInt32LE(o.maxWrite >>> 0, 20); b.writeUInt32LE(o.timeGran >>> 0, 24); b.writeUInt16LE(o.maxPages, 28);
  return b;
}

export interface KStatfs { blocks: number; bfree: number; bavail: number; files: number; ffree: number; bsize: number; namelen: number; frsize: number }
export function encodeStatfsOut(s: KStatfs): Buffer {
  const b = Buffer.alloc(KSTATFS_SIZE);
  wu64(b, 0, s.blocks); wu64(b, 8, s.bfree); wu64(b, 16, s.bavail); wu64(b, 24, s.files); wu64(b, 32, s.ffree);
  b.writeUInt32LE(s.bsize >>> 0, 40); b.writeUInt32LE(s.namelen >>> 0, 44); b.writeUInt32LE(s.frsize >>> 0, 48); // bits32: u32 fields of fuse_kstatfs
  return b;
}

export function encodeU32Pair(a: number, b2 = 0): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(a >>> 0, 0); b.writeUInt32LE(b2 >>> 0, 4);
  return b;
}
export function encodeU64(v: number): Buffer { const b = Buffer.alloc(8); wu64(b, 0, v); return b; }

/* fuse_ioctl_in.flags */
export const FUSE_IOCTL_COMPAT = 1 << 0, FUSE_IOCTL_UNRESTRICTED = 1 << 1, FUSE_IOCTL_RETRY = 1 << 2,
  FUSE_IOCTL_32BIT = 1 << 3, FUSE_IOCTL_DIR = 1 << 4, FUSE_IOCTL_COMPAT_X32 = 1 << 5;
/** struct fuse_ioctl_out (result, flags, in_iovs, out_iovs) and the data the caller reads back. */
export function encodeIoctlOut(result: number, data?: Uint8Array): Buffer {
  const b = Buffer.alloc(16 + (data?.length ?? 0));
  b.writeInt32LE(result, 0);
  if (data) b.set(data, 16);
  return b;
}

/** Bytes a struct fuse_dirent with `nameLen` takes (FUSE_DIRENT_ALIGN: 8). */
export const direntSize = (nameLen: number) => (DIRENT_SIZE + nameLen + 7) & ~7;
export const direntplusSize = (nameLen: number) => ENTRY_OUT_SIZE + direntSize(nameLen);

/*
 * Directory replies are written through a DataView and TypedArray builtins rather than
 * Buffer's methods, whose argument checks are JavaScript: a listing runs this once per
 * entry, and right after the daemon starts (a cold `ls`) that code is still interpreted.
 */
let dvBuf: Uint8Array | null = null;
let dvView: DataView | null = null;
function viewOf(b: Uint8Array): DataView {
  if (b !== dvBuf) { dvBuf = b; dvView = new DataView(b.buffer, b.byteOffset, b.byteLength); }
  return dvView!;
}
const fillBytes = Uint8Array.prototype.fill;

/** Zeroes bytes [from, to) of `b` (Uint8Array's fill, without Buffer's argument checks). */
export function zeroBytes(b: Uint8Array, from: number, to: number): void { fillBytes.call(b, 0, from, to); }

/** struct fuse_dirent at `off`; returns the next offset. */
export function writeDirent(b: Buffer, off: number, ino: number, nextOff: number, type: number, name: Uint8Array): number {
  const n = direntSize(name.length);
  wu64(b, off, ino); wu64(b, off + 8, nextOff);
  const v = viewOf(b);
  v.setUint32(off + 16, name.length, true); v.setUint32(off + 20, type, true);
  b.set(name, off + DIRENT_SIZE);
  zeroBytes(b, off + DIRENT_SIZE + name.length, off + n);
  return off + n;
}
