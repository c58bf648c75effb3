/*
 * The only module that touches fuse-native (2.2.6, libfuse 2.9's high-level API over N-API).
 * It turns fuse-native's callback interface into promise-returning operations that resolve
 * to a result or -errno, and works around what fuse-native gets wrong or leaves out:
 *
 *  - Options: fuse-native builds the libfuse option string from a fixed list and drops any
 *    option whose value is 0; we build the whole string ourselves (big_writes,
 *    max_write=131072, use_ino, and every pass-through -o option), at most 1023 bytes.
 *  - Timeouts: `timeout: false`, so no request is answered ETIMEDOUT after 15 s.
 *  - fgetattr: fuse-native calls getattr(path) and drops the handle; we pass the handle.
 *  - utimens: fuse-native hands atime twice. libfuse has already stored both times in the
 *    per-thread request block that fuse-native allocates as a Node Buffer and passes to its
 *    handler, so we read mtime there (LP64 layout, checked against the atime it also holds).
 *  - getxattr/listxattr: size probes (size 0) get the length, a too-small buffer ERANGE
 *    (fuse-native copies a truncated value and reports the full length).
 *  - statfs: counts are 32-bit in fuse-native, so large filesystems are scaled by frsize.
 *  - External unmount: after `fusermount -u` libfuse's loop ends inside fuse-native and
 *    nothing tells JavaScript; we poll /proc/self/mountinfo and emit 'unmounted'.
 *  - Unmount: `fusermount -uz` (lazy, as libfuse does on exit) only if still mounted.
 *
 * Limits that remain (they are fuse-native's C side): timestamps cross in milliseconds,
 * inode numbers and statfs counts in 32 bits, paths as UTF-8 strings (other bytes become
 * U+FFFD), create() does not get the open flags, readdir() does not get the directory
 * handle, and requests carry no caller uid/gid/pid.
 */
import { createRequire } from 'node:module';
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import createDebug from 'debug';
import type { stat, statfs, timespec64 } from '../kernel/include/uapi.js';
import { EIO, ENODATA, ERANGE, errnoName } from '../kernel/include/uapi.js';
import { findMount } from './mountinfo.js';

const debug = createDebug('lkl:fuse');
const require = createRequire(import.meta.url);

/* fuse-native is CommonJS without types: the parts we use, typed here. */
type Signal = (res: number, ...args: unknown[]) => void;
type NativeHandler = (locals: Buffer, opCode: number, ...args: unknown[]) => unknown;
interface FuseNativeInstance {
  mnt: string;
  _handlers: NativeHandler[];
  _thread: Buffer | null;
  mount(cb: (err: Error | null) => void): void;
  unmount(cb: (err: Error | null) => void): void;
}
type FuseNativeClass = new (mnt: string, ops: Record<string, unknown>, opts: Record<string, unknown>) => FuseNativeInstance;
interface FuseBinding {
  op_utimens: number;
  fuse_native_unmount(mnt: string, thread: Buffer): void;
}

const FuseNative = require('fuse-native') as FuseNativeClass;
const fuseNativeDir = path.dirname(require.resolve('fuse-native'));
const binding = (require(require.resolve('node-gyp-build', { paths: [fuseNativeDir] })) as
  (dir: string) => FuseBinding)(fuseNativeDir);

/** A directory entry as readdir returns it (type = DT_*). */
export interface FuseDirent { name: string; ino: number; type: number }

type R<T> = Promise<T | number>;

/**
 * The operations lklfuse serves, named and ordered as fuse-native (libfuse 2) names them.
 * Each resolves to >= 0 (or the value) on success and to -errno on failure. Handles (`fh`)
 * are whatever open/create/opendir resolved to.
 */
export interface FuseOperations {
  init?(): Promise<void>;
  getattr(path: string): R<stat>;
  fgetattr(path: string, fh: number): R<stat>;
  access(path: string, mode: number): Promise<number>;
  readlink(path: string): R<string>;
  mknod(path: string, mode: number, dev: number): Promise<number>;
  mkdir(path: string, mode: number): Promise<number>;
  unlink(path: string): Promise<number>;
  rmdir(path: string): Promise<number>;
  symlink(target: string, linkPath: string): Promise<number>;
  rename(from: string, to: string): Promise<number>;
  link(existing: string, newPath: string): Promise<number>;
  chmod(path: string, mode: number): Promise<number>;
  chown(path: string, uid: number, gid: number): Promise<number>;
  truncate(path: string, size: number): Promise<number>;
  ftruncate(path: string, fh: number, size: number): Promise<number>;
  utimens(path: string, atime: timespec64, mtime: timespec64): Promise<number>;
  open(path: string, flags: number): Promise<number>;
  create(path: string, mode: number): Promise<number>;
  read(path: string, fh: number, buf: Buffer, pos: number): Promise<number>;
  write(path: string, fh: number, buf: Buffer, pos: number): Promise<number>;
  statfs(path: string): R<statfs>;
  flush(path: string, fh: number): Promise<number>;
  release(path: string, fh: number): Promise<number>;
  fsync(path: string, datasync: boolean, fh: number): Promise<number>;
  opendir(path: string, flags: number): Promise<number>;
  readdir(path: string): R<FuseDirent[]>;
  releasedir(path: string, fh: number): Promise<number>;
  fsyncdir(path: string, datasync: boolean, fh: number): Promise<number>;
  setxattr(path: string, name: string, value: Buffer, flags: number): Promise<number>;
  getxattr(path: string, name: string): R<Uint8Array>;
  listxattr(path: string): R<string[]>;
  removexattr(path: string, name: string): Promise<number>;
}

const OP_NAMES = ['getattr', 'fgetattr', 'access', 'readlink', 'mknod', 'mkdir', 'unlink',
  'rmdir', 'symlink', 'rename', 'link', 'chmod', 'chown', 'truncate', 'ftruncate', 'utimens',
  'open', 'create', 'read', 'write', 'statfs', 'flush', 'release', 'fsync', 'opendir', 'readdir',
  'releasedir', 'fsyncdir', 'setxattr', 'getxattr', 'listxattr', 'removexattr'] as const;

/* fuse-native's stat array: 18 uint32 (mode uid gid size(2) dev nlink ino rdev blksize blocks(2) atime(2) mtime(2) ctime(2)), times in ms */
function setU64(a: Uint32Array, i: number, v: number): void {
  const n = v > 0 ? Math.floor(v) : 0;
  a[i] = n % 4294967296;
  a[i + 1] = Math.floor(n / 4294967296);
}
const ms = (t: timespec64) => t.sec * 1000 + Math.floor(t.nsec / 1e6);

export function statArray(st: stat): Uint32Array {
  const a = new Uint32Array(18);
  a[0] = st.mode; a[1] = st.uid; a[2] = st.gid;
  setU64(a, 3, st.size);
  a[5] = st.dev; a[6] = st.nlink; a[7] = st.ino; a[8] = st.rdev; a[9] = st.blksize;
  setU64(a, 10, st.blocks);
  setU64(a, 12, ms(st.atime));
  setU64(a, 14, ms(st.mtime));
  setU64(a, 16, ms(st.ctime));
  return a;
}

/* struct statvfs in 11 uint32: bsize frsize blocks bfree bavail files ffree favail fsid flag namemax */
export function statfsArray(s: statfs): Uint32Array {
  const a = new Uint32Array(11);
  let frsize = s.frsize || s.bsize;
  let { blocks, bfree, bavail } = s;
  while (blocks > 0xffffffff) { // keep the byte counts right when block counts overflow
    blocks /= 2; bfree /= 2; bavail /= 2; frsize *= 2;
  }
  a[0] = s.bsize; a[1] = frsize;
  a[2] = blocks; a[3] = bfree; a[4] = bavail;
  a[5] = Math.min(s.files, 0xffffffff); a[6] = Math.min(s.ffree, 0xffffffff);
  a[7] = a[6];
  a[8] = (s.fsid[0] ^ s.fsid[1]) >>> 0;
  a[9] = s.flags; a[10] = s.namelen;
  return a;
}

/*
 * A time from fuse-native's utimens, in ms, as a timespec. Always a real time: the FUSE
 * kernel module sends SETATTR with the time already resolved (utimensat(UTIME_NOW) arrives
 * as the current time; FATTR_ATIME_NOW/MTIME_NOW only with writeback caching, which
 * libfuse 2 does not negotiate), and libfuse 2 passes UTIME_OMIT only with
 * flag_utime_omit_ok, which fuse-native never sets. So 1073 ms (what fuse-native would
 * make of UTIME_NOW's or UTIME_OMIT's tv_nsec) is 1970-01-01 00:00:01.073, not "now".
 */
export function timespecFromMs(v: number): timespec64 {
  const sec = Math.floor(v / 1000);
  return { sec, nsec: (v - sec * 1000) * 1e6 };
}

/** A 64-bit two's-complement count of ms from its low and high 32-bit halves. */
export function msFromU32s(lo: number, hi: number): number {
  return (hi >= 0x80000000 ? hi - 4294967296 : hi) * 4294967296 + lo;
}

/* Offsets in fuse-native's fuse_thread_locals_t on LP64 Linux: ... uid_t uid @96, gid_t gid @100, size_t atime @104, size_t mtime @112 */
const LOCALS_ATIME = 104, LOCALS_MTIME = 112;

export interface FuseMountOptions {
  /** Options for libfuse (without the leading -o), already escaped. */
  options: string[];
  /** Answer one request at a time (-s). */
  serialize?: boolean;
  /** How often to look for an external unmount, ms. */
  pollMs?: number;
}

/** Runs one operation at a time when asked to; otherwise just runs it. */
class Gate {
  private tail: Promise<unknown> = Promise.resolve();
  constructor(private readonly serial: boolean) {}
  run<T>(fn: () => Promise<T>): Promise<T> {
    if (!this.serial) return fn();
    const p = this.tail.then(fn, fn);
    this.tail = p.catch(() => undefined);
    return p;
  }
}

/**
 * Builds the fuse-native subclass around `ops`. Kept as a factory so the class can close
 * over the operations and the gate.
 */
function makeFuse(mnt: string, ops: FuseOperations, optString: string, gate: Gate): FuseNativeInstance {
  const names: Record<string, unknown> = {};
  for (const n of OP_NAMES) names[n] = true; // fuse-native only checks which ops exist

  /* Runs an operation; an exception is a bug: log it and answer EIO. */
  function call<T>(name: string, fn: () => Promise<T | number>, reply: (r: T | number) => void): void {
    gate.run(fn).then(reply, (err: unknown) => {
      debug('%s threw: %O', name, err);
      process.stderr.write(`lklfuse: internal error in ${name}: ${(err as Error)?.stack ?? String(err)}\n`);
      reply(-EIO);
    });
  }
  const done = (signal: Signal) => (r: number) => signal(r);

  class LklFuse extends (FuseNative as unknown as new (...a: unknown[]) => FuseNativeInstance) {
    private utimensLocals: Buffer | null = null;

    constructor() {
      super(mnt, names, { timeout: false });
      const h = this._handlers;
      const orig = h[binding.op_utimens]!;
      h[binding.op_utimens] = (locals, ...rest) => {
        this.utimensLocals = locals;
        try { return orig(locals, ...rest); } finally { this.utimensLocals = null; }
      };
    }

    _fuseOptions(): string { return optString; }

    _close(cb: (err: Error | null) => void): void {
      const self = this;
      findMount(this.mnt).then((m) => {
        if (!m || !m.fsType.startsWith('fuse')) return finish(null);
        execFile('fusermount', ['-u', '-z', '--', this.mnt], (err) => finish(err));
      }, () => finish(null));
      function finish(err: Error | null) {
        try {
          if (self._thread) binding.fuse_native_unmount(self.mnt, self._thread);
        } catch (e) { debug('fuse_native_unmount: %O', e); }
        cb(err);
      }
    }

    _op_init(signal: Signal): void {
      // fuse-native's own _op_init resolves mount(); run ops.init first if there is one.
      const base = (FuseNative.prototype as unknown as { _op_init(this: unknown, s: Signal): void })._op_init;
      if (!ops.init) return base.call(this, signal);
      ops.init().then(() => base.call(this, signal), () => base.call(this, signal));
    }

    _op_getattr(signal: Signal, p: string): void {
      call('getattr', () => ops.getattr(p), (r) => typeof r === 'number' ? signal(r, new Uint32Array(18)) : signal(0, statArray(r)));
    }
    _op_fgetattr(signal: Signal, p: string, fh: number): void {
      call('fgetattr', () => ops.fgetattr(p, fh), (r) => typeof r === 'number' ? signal(r, new Uint32Array(18)) : signal(0, statArray(r)));
    }
    _op_access(signal: Signal, p: string, mode: number): void { call('access', () => ops.access(p, mode), done(signal)); }
    _op_readlink(signal: Signal, p: string): void {
      call('readlink', () => ops.readlink(p), (r) => typeof r === 'number' ? signal(r, '') : signal(0, r));
    }
    _op_mknod(signal: Signal, p: string, mode: number, dev: number): void { call('mknod', () => ops.mknod(p, mode, dev), done(signal)); }
    _op_mkdir(signal: Signal, p: string, mode: number): void { call('mkdir', () => ops.mkdir(p, mode), done(signal)); }
    _op_unlink(signal: Signal, p: string): void { call('unlink', () => ops.unlink(p), done(signal)); }
    _op_rmdir(signal: Signal, p: string): void { call('rmdir', () => ops.rmdir(p), done(signal)); }
    _op_symlink(signal: Signal, target: string, linkPath: string): void { call('symlink', () => ops.symlink(target, linkPath), done(signal)); }
    _op_rename(signal: Signal, from: string, to: string): void { call('rename', () => ops.rename(from, to), done(signal)); }
    _op_link(signal: Signal, from: string, to: string): void { call('link', () => ops.link(from, to), done(signal)); }
    _op_chmod(signal: Signal, p: string, mode: number): void { call('chmod', () => ops.chmod(p, mode), done(signal)); }
    _op_chown(signal: Signal, p: string, uid: number, gid: number): void { call('chown', () => ops.chown(p, uid, gid), done(signal)); }
    _op_truncate(signal: Signal, p: string, lo: number, hi: number): void { call('truncate', () => ops.truncate(p, lo + hi * 4294967296), done(signal)); }
    _op_ftruncate(signal: Signal, p: string, fh: number, lo: number, hi: number): void {
      call('ftruncate', () => ops.ftruncate(p, fh, lo + hi * 4294967296), done(signal));
    }
    _op_utimens(signal: Signal, p: string, aLo: number, aHi: number, mLo: number, mHi: number): void {
      // fuse-native's timespec_to_uint64 computes tv_sec * 1000 + ms in signed arithmetic:
      // read back as a signed 64-bit number, a time before 1970 is negative again.
      const atimeMs = msFromU32s(aLo, aHi);
      let mtimeMs = msFromU32s(mLo, mHi); // == atime: fuse-native passes atime twice
      const l = this.utimensLocals;
      if (l && l.length >= LOCALS_MTIME + 8 && Number(l.readBigInt64LE(LOCALS_ATIME)) === atimeMs) {
        mtimeMs = Number(l.readBigInt64LE(LOCALS_MTIME));
      }
      call('utimens', () => ops.utimens(p, timespecFromMs(atimeMs), timespecFromMs(mtimeMs)), done(signal));
    }
    _op_open(signal: Signal, p: string, flags: number): void {
      call('open', () => ops.open(p, flags), (r) => r < 0 ? signal(r, 0) : signal(0, r));
    }
    _op_create(signal: Signal, p: string, mode: number): void {
      call('create', () => ops.create(p, mode), (r) => r < 0 ? signal(r, 0) : signal(0, r));
    }
    _op_read(signal: Signal, p: string, fh: number, buf: Buffer, len: number, lo: number, hi: number): void {
      call('read', () => ops.read(p, fh, buf.subarray(0, len), lo + hi * 4294967296),
        (r) => signal(r, r > 0 ? r : 0, buf.buffer));
    }
    _op_write(signal: Signal, p: string, fh: number, buf: Buffer, len: number, lo: number, hi: number): void {
      call('write', () => ops.write(p, fh, buf.subarray(0, len), lo + hi * 4294967296),
        (r) => signal(r, r > 0 ? r : 0, buf.buffer));
    }
    _op_statfs(signal: Signal, p: string): void {
      call('statfs', () => ops.statfs(p), (r) => typeof r === 'number' ? signal(r, new Uint32Array(11)) : signal(0, statfsArray(r)));
    }
    _op_flush(signal: Signal, p: string, fh: number): void { call('flush', () => ops.flush(p, fh), done(signal)); }
    _op_release(signal: Signal, p: string, fh: number): void { call('release', () => ops.release(p, fh), done(signal)); }
    _op_fsync(signal: Signal, p: string, datasync: number, fh: number): void {
      call('fsync', () => ops.fsync(p, datasync !== 0, fh), done(signal));
    }
    _op_opendir(signal: Signal, p: string, _fh: number, flags: number): void {
      call('opendir', () => ops.opendir(p, flags), (r) => r < 0 ? signal(r, 0) : signal(0, r));
    }
    _op_readdir(signal: Signal, p: string): void {
      call('readdir', () => ops.readdir(p), (r) => {
        if (typeof r === 'number') return signal(r, [], []);
        // With use_ino libfuse hands st_ino and the type bits of st_mode on to the kernel.
        const stats = r.map((e) => { const a = new Uint32Array(18); a[0] = (e.type << 12) >>> 0; a[7] = e.ino; return a; });
        signal(0, r.map((e) => e.name), stats);
      });
    }
    _op_releasedir(signal: Signal, p: string, fh: number): void { call('releasedir', () => ops.releasedir(p, fh), done(signal)); }
    _op_fsyncdir(signal: Signal, p: string, datasync: number, fh: number): void {
      call('fsyncdir', () => ops.fsyncdir(p, datasync !== 0, fh), done(signal));
    }
    _op_setxattr(signal: Signal, p: string, name: string, value: Buffer, _position: number, flags: number): void {
      call('setxattr', () => ops.setxattr(p, name, value, flags), (r) => signal(r, value.buffer));
    }
    _op_getxattr(signal: Signal, p: string, name: string, valueBuf: Buffer, _position: number): void {
      call('getxattr', () => ops.getxattr(p, name), (r) => {
        if (typeof r === 'number') return signal(r === 0 ? -ENODATA : r, valueBuf.buffer);
        if (valueBuf.length === 0) return signal(r.length, valueBuf.buffer); // size probe
        if (r.length > valueBuf.length) return signal(-ERANGE, valueBuf.buffer);
        valueBuf.set(r);
        signal(r.length, valueBuf.buffer);
      });
    }
    _op_listxattr(signal: Signal, p: string, listBuf: Buffer): void {
      call('listxattr', () => ops.listxattr(p), (r) => {
        if (typeof r === 'number') return signal(r, listBuf.buffer);
        const list = Buffer.from(r.map((n) => n + '\0').join(''));
        if (listBuf.length === 0) return signal(list.length, listBuf.buffer);
        if (list.length > listBuf.length) return signal(-ERANGE, listBuf.buffer);
        list.copy(listBuf);
        signal(list.length, listBuf.buffer);
      });
    }
    _op_removexattr(signal: Signal, p: string, name: string): void { call('removexattr', () => ops.removexattr(p, name), done(signal)); }
  }
  return new LklFuse() as unknown as FuseNativeInstance;
}

/** libfuse reads at most 1023 bytes of option string through fuse-native. */
export const MAX_OPTION_STRING = 1023;

export class FuseMountError extends Error {}

/**
 * A live FUSE mount. Emits 'unmounted' (once) and sets `gone` when the mount disappears
 * without unmount() being called; mount() can resolve to a mount already gone.
 */
export class FuseMount extends EventEmitter {
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  /** The mount's id in /proc/self/mountinfo. */
  mountId = -1;
  /** Set (with 'unmounted') once the mount went away without unmount(). */
  gone = false;

  private constructor(readonly mountPoint: string, private readonly fuse: FuseNativeInstance) {
    super();
  }

  static async mount(mountPoint: string, ops: FuseOperations, opts: FuseMountOptions): Promise<FuseMount> {
    const mnt = path.resolve(mountPoint);
    const optString = opts.options.length ? '-o' + opts.options.join(',') : '';
    if (Buffer.byteLength(optString) > MAX_OPTION_STRING) {
      throw new FuseMountError(`FUSE option string too long (${Buffer.byteLength(optString)} bytes, at most ${MAX_OPTION_STRING})`);
    }
    if (Buffer.byteLength(mnt) > 1023) throw new FuseMountError('mountpoint path too long for fuse-native');
    debug('mounting %s with %s', mnt, optString);
    const fuse = makeFuse(mnt, ops, optString, new Gate(!!opts.serialize));
    await new Promise<void>((resolve, reject) => {
      fuse.mount((err) => err ? reject(new FuseMountError(err.message)) : resolve());
    });
    const m = new FuseMount(mnt, fuse);
    const entry = await findMount(mnt);
    if (!entry) {
      // Mounted, and unmounted again by somebody before we looked: gone, not failed.
      debug('mount at %s gone before it was confirmed', mnt);
      m.stopWatching();
      m.closed = true;
      await new Promise<void>((resolve) => fuse.unmount(() => resolve()));
      m.gone = true;
      return m;
    }
    m.mountId = entry.id;
    m.watch(opts.pollMs ?? 250);
    return m;
  }

  private watch(pollMs: number): void {
    this.timer = setInterval(() => {
      findMount(this.mountPoint).then((e) => {
        if (this.closed || (e && e.id === this.mountId)) return;
        debug('mount %d at %s is gone', this.mountId, this.mountPoint);
        this.stopWatching();
        this.closed = true;
        // Let fuse-native drop its async handle; fusermount is skipped (not mounted).
        this.fuse.unmount(() => { this.gone = true; this.emit('unmounted'); });
      }, (err) => debug('mountinfo: %O', err));
    }, pollMs);
  }

  private stopWatching(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Unmounts (lazily, like libfuse on exit). Resolves once the mount is gone. */
  async unmount(): Promise<void> {
    this.stopWatching();
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve, reject) => {
      this.fuse.unmount((err) => err ? reject(new FuseMountError(`fusermount -uz ${this.mountPoint}: ${err.message}`)) : resolve());
    });
  }
}

/** For messages: "-2 (ENOENT)". */
export const describeErr = (r: number) => `${r} (${errnoName(r)})`;
