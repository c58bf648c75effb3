/*
 * One FUSE connection's request loop, device-independent: frames in (handle()), replies out
 * (through the `write` function it is given). Decodes with fuse-abi.ts, runs the request
 * with the caller's credentials through ll-ops.ts, encodes the reply. fuse-kernel.ts feeds
 * it from /dev/fuse; the protocol fuzz test feeds it directly.
 *
 * Rules it keeps (Documentation/filesystems/fuse.rst):
 *  - every request but FORGET, BATCH_FORGET and INTERRUPT gets exactly one reply;
 *  - INTERRUPT: by default the target runs to its end and answers normally, as a Linux
 *    filesystem finishes a system call whose process got a signal (nothing in the lkl-ts
 *    kernel sleeps interruptibly, and every request ends in bounded time) and as libfuse
 *    does without -o intr. The host kernel returns a FUSE request's EINTR to the program
 *    as is, never restarting it: answering EINTR would make mkdir, open or chown fail in a
 *    program that merely caught a signal. With `intr` (libfuse's -o intr): a request that
 *    only reads (lookup, getattr, read, readdir, ...) is answered EINTR at once and its
 *    late result dropped; one that changes something still runs to its end (its effect
 *    cannot be taken back); an INTERRUPT for a request not seen yet is remembered, and
 *    that request is answered EINTR when it arrives. (The kernel resends an interrupt
 *    answered EAGAIN; nothing here needs that.)
 *  - nothing is served before INIT; after DESTROY nothing more.
 */
import fs from 'node:fs';
import createDebug from 'debug';
import type { Sys } from '../kernel/include/sys.js';
import type { stat, statfs } from '../kernel/include/uapi.js';
import { EINTR, EIO, ENOSYS } from '../kernel/include/uapi.js';

const EPROTO = 71;
import {
  FOPEN_CACHE_DIR, FOPEN_KEEP_CACHE, FUSE_ASYNC_READ, FUSE_ATOMIC_O_TRUNC, FUSE_BIG_WRITES,
  FUSE_DO_READDIRPLUS, FUSE_FSYNC_FDATASYNC, FUSE_GETATTR_FH, FUSE_INT_REQ_BIT, FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION, FUSE_MAX_PAGES, FUSE_PARALLEL_DIROPS, FUSE_READDIRPLUS_AUTO, FuseProtocolError,
  OPCODE_NAMES, OUT_HEADER_SIZE, direntSize, direntplusSize, encodeAttrOut, encodeCreateOut, encodeEntry,
  encodeInitOut, encodeOpenOut, encodeStatfsOut, encodeU32Pair, encodeU64, parseHeader, parseRequest,
  replyFrame, writeDirent, writeEntry, writeOutHeader, type Entry, type FuseRequest, type InHeader,
  FUSE_AUTO_INVAL_DATA, FUSE_DONT_MASK, FUSE_POSIX_ACL, FUSE_HAS_IOCTL_DIR, encodeIoctlOut,
  FUSE_IOCTL_DIR, FUSE_NO_OPENDIR_SUPPORT, zeroBytes,
} from './fuse-abi.js';
import type { DirEntryOut, LowLevelOps } from './ll-ops.js';

const debug = createDebug('lkl:fuse:kernel');

/** Who a request runs as (and, for a create with FUSE_DONT_MASK, with which umask). */
export interface Caller { uid: number; gid: number; groups: number[]; umask?: number }

export interface SessionOptions {
  /** Largest WRITE we accept (max_write); the read buffer must hold it plus 4 KiB. */
  maxWrite: number;
  /** Seconds the kernel may cache names (entry_timeout) and attributes (attr_timeout). */
  entryTimeout: number;
  attrTimeout: number;
  /** The Sys of a caller (the kernel's sysAs); undefined = everything runs as the daemon. */
  sysFor?: (c: Caller) => Sys;
  /** Supplementary groups of a process (default: /proc/PID/status). */
  groupsOf?: (pid: number) => number[];
  /** Log a line (protocol errors, internal errors). */
  log?: (msg: string) => void;
  readOnly?: boolean;
  /** Answer one request at a time (-s). */
  serialize?: boolean;
  /** Offer READDIRPLUS (default true). */
  readdirplus?: boolean;
  /** -o intr: answer interrupted read-only requests EINTR (default: complete them). */
  intr?: boolean;
  /**
   * The write callback is done with a frame when it returns (a write(2) to /dev/fuse): READ
   * replies then come from a few reused buffers instead of a new one per request.
   */
  writeConsumesFrame?: boolean;
  /**
   * The filesystem keeps POSIX ACLs: offer FUSE_DONT_MASK (creates carry the mode unmasked
   * and the caller's umask, which the lkl-ts kernel applies unless the directory has a
   * default ACL) and, with hostChecks, FUSE_POSIX_ACL (the host kernel then checks
   * permissions with the ACLs it reads through getxattr). Needs sysFor.
   */
  posixAcl?: boolean;
  /**
   * Users other than the mounting one reach the mount (allow_other) or the host kernel is
   * asked to check modes (default_permissions). FUSE_POSIX_ACL turns default_permissions on
   * in the host kernel whatever the mount options say, and with it a GETATTR of each
   * directory a path walk passes once its attributes time out (every walk with
   * attr_timeout=0): on a mount only its owner (root: the kernel transport) can reach, the
   * lkl-ts kernel's own checks, run with the caller's credentials, are all there is to do.
   */
  hostChecks?: boolean;
  /** The host kernel checks file modes itself (default_permissions). */
  hostPermissions?: boolean;
}

/* READ reply buffers kept for reuse (each in-flight READ holds one). */
const READ_POOL_MAX = 16;

/* Requests that only read: safe to answer EINTR and drop the result (with intr). */
const READ_ONLY_OPS = new Set(['lookup', 'getattr', 'readlink', 'read', 'readdir', 'readdirplus', 'statfs',
  'getxattr', 'listxattr', 'access', 'lseek']);

interface InFlight { interrupted: boolean; answered: boolean; op: string }

/** /proc/PID/status's Groups: line; [] if the process is gone. */
export function procGroups(pid: number): number[] {
  if (!pid) return [];
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'latin1');
    const m = /\nGroups:([^\n]*)/.exec(s);
    return m ? m[1]!.trim().split(/\s+/).filter(Boolean).map(Number) : [];
  } catch { return []; }
}

export class FuseSession {
  /** The minor version agreed in INIT (0 before). */
  minor = 0;
  /** The flags agreed in INIT. */
  initFlags = 0;
  /**
   * OPENDIR is answered ENOSYS, decided at INIT: where the kernel supports it
   * (FUSE_NO_OPENDIR_SUPPORT) it then sends no OPENDIR/RELEASEDIR (ll-ops.ts, readdirNode).
   * Only where OPENDIR checks nothing the host kernel does not: with hostPermissions (or
   * FUSE_POSIX_ACL, which turns them on) or on a mount only its owner reaches (!hostChecks).
   */
  noOpendir = false;
  /** The host kernel checks modes (default_permissions or FUSE_POSIX_ACL), decided at INIT. */
  private hostPermissions = false;
  initialized = false;
  destroyed = false;
  /** Counters, for tests and the debug log. */
  stats = { requests: 0, replies: 0, protocolErrors: 0, interrupts: 0, droppedLate: 0 };

  private inflight = new Map<bigint, InFlight>();
  private earlyInterrupts = new Set<bigint>();
  private highestUnique = 0n;
  private sysCache = new Map<string, Sys>();
  private groupCache = new Map<number, { groups: number[]; at: number }>();
  private idleWaiters: (() => void)[] = [];
  private tail: Promise<void> = Promise.resolve();
  private readPool: Buffer[] = [];
  /** READDIR reply buffers kept for reuse, as readPool (a walk makes one per directory). */
  private dirPool: Buffer[] = [];

  constructor(private readonly ll: LowLevelOps, private readonly sys: Sys,
    private readonly write: (frame: Buffer) => void, private readonly opts: SessionOptions) {}

  /** Requests not answered yet. */
  get pending(): number { return this.inflight.size; }

  /** The operations of the requests not finished yet (for the shutdown's log). */
  pendingOps(): string[] { return [...this.inflight.values()].map((f) => f.op); }

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    if (this.inflight.size === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private log(msg: string): void { (this.opts.log ?? ((m: string) => debug(m)))(msg); }

  /**
   * The Sys a request runs with: the caller's fsuid/fsgid/groups; with `umask` (a create's,
   * under FUSE_DONT_MASK) its calls also create files with that umask.
   */
  private sysOf(h: InHeader, umask?: number): Sys {
    const { sysFor } = this.opts;
    if (!sysFor || (h.uid === 0 && h.gid === 0 && umask === undefined)) return this.sys;
    const groups = h.uid === 0 ? [] : this.groupsOf(h.pid);
    const key = `${h.uid}:${h.gid}:${groups.join(',')}${umask === undefined ? '' : `:${umask}`}`;
    let s = this.sysCache.get(key);
    if (!s) {
      if (this.sysCache.size > 256) this.sysCache.clear();
      s = sysFor(umask === undefined ? { uid: h.uid, gid: h.gid, groups } : { uid: h.uid, gid: h.gid, groups, umask });
      this.sysCache.set(key, s);
    }
    return s;
  }

  private groupsOf(pid: number): number[] {
    const now = Date.now();
    const c = this.groupCache.get(pid);
    if (c && now - c.at < 1000) return c.groups;
    const groups = (this.opts.groupsOf ?? procGroups)(pid);
    if (this.groupCache.size > 1024) this.groupCache.clear();
    this.groupCache.set(pid, { groups, at: now });
    return groups;
  }

  private send(frame: Buffer): void {
    this.stats.replies++;
    try { this.write(frame); } catch (e) {
      // ENOENT: the kernel gave up on the request (interrupted, or the connection aborted).
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENODEV') this.log(`lklfuse: writing a reply to /dev/fuse: ${(e as Error).message}`);
    }
  }

  private reply(unique: bigint, error: number, body?: Uint8Array): void {
    const f = this.inflight.get(unique);
    if (f) {
      if (f.answered) { this.stats.droppedLate++; this.finish(unique); return; }
      f.answered = true;
    }
    this.send(replyFrame(unique, error > 0 ? -error : error, body));
    this.finish(unique);
  }

  private finish(unique: bigint): void {
    this.inflight.delete(unique);
    if (this.inflight.size === 0 && this.idleWaiters.length) {
      const w = this.idleWaiters.splice(0);
      for (const fn of w) fn();
    }
  }

  /** Handles one frame as read from /dev/fuse. Never throws. */
  handle(frame: Buffer): void {
    this.stats.requests++;
    let req: FuseRequest;
    try {
      req = parseRequest(frame, this.minor || FUSE_KERNEL_MINOR_VERSION);
    } catch (e) {
      this.stats.protocolErrors++;
      const pe = e instanceof FuseProtocolError ? e : new FuseProtocolError(String(e));
      let unique = pe.unique, opcode = pe.opcode;
      if (unique === undefined && frame.length >= 16) { try { const h = parseHeader(frame.subarray(0, Math.min(frame.length, 40))); unique = h.unique; opcode = h.opcode; } catch { /* no header */ } }
      this.log(`lklfuse: malformed FUSE request: ${pe.message}`);
      // FORGET, BATCH_FORGET and INTERRUPT are never answered.
      if (unique !== undefined && opcode !== 2 && opcode !== 42 && opcode !== 36 && unique !== 0n) this.send(replyFrame(unique, -EIO));
      return;
    }
    // Interrupts (and forgets) overtake the queue: only ordinary requests say how far we read.
    if (req.op === 'forget' || req.op === 'batch_forget') { this.forget(req); return; }
    if (req.op === 'interrupt') { this.interrupt(req.target); return; }
    if (req.unique > this.highestUnique) this.highestUnique = req.unique;
    if (this.inflight.has(req.unique)) {
      this.log(`lklfuse: FUSE request ${req.unique} arrived twice; ignoring the second`);
      return;
    }
    const f: InFlight = { interrupted: false, answered: false, op: req.op };
    this.inflight.set(req.unique, f);
    if (this.earlyInterrupts.delete(req.unique) && READ_ONLY_OPS.has(req.op)) {
      this.reply(req.unique, -EINTR);
      return;
    }
    if (!this.initialized && req.op !== 'init') { this.reply(req.unique, -EIO); return; }
    if (this.destroyed) { this.reply(req.unique, -EIO); return; }
    if (debug.enabled) debug('%s unique %s nodeid %d uid %d gid %d pid %d', OPCODE_NAMES[req.opcode] ?? req.opcode, req.unique, req.nodeid, req.uid, req.gid, req.pid);
    const run = () => this.dispatch(req).catch((e: unknown) => {
      this.log(`lklfuse: internal error in ${OPCODE_NAMES[req.opcode] ?? req.opcode}: ${(e as Error)?.stack ?? String(e)}`);
      this.reply(req.unique, -EIO);
    });
    if (this.opts.serialize) {
      this.tail = this.tail.then(() => {
        if (!f.answered) return run();
        this.stats.droppedLate++; // interrupted while waiting its turn
        this.finish(req.unique);
      });
    } else void run();
  }

  private forget(req: FuseRequest & ({ op: 'forget' } | { op: 'batch_forget' })): void {
    const list = req.op === 'forget' ? [{ nodeid: req.nodeid, nlookup: req.nlookup }] : req.forgets;
    for (const x of list) this.ll.forget(x.nodeid, x.nlookup).catch((e) => this.log(`lklfuse: forget: ${String(e)}`));
  }

  private interrupt(target: bigint): void {
    this.stats.interrupts++;
    const t = target & ~BigInt(FUSE_INT_REQ_BIT);
    const f = this.inflight.get(t);
    if (f) {
      f.interrupted = true;
      if (this.opts.intr && READ_ONLY_OPS.has(f.op) && !f.answered) {
        f.answered = true;
        this.send(replyFrame(t, -EINTR));
      }
      return;
    }
    // Not seen yet (interrupts overtake the queue) or already answered.
    if (this.opts.intr && t > this.highestUnique) {
      if (this.earlyInterrupts.size > 1024) this.earlyInterrupts.clear();
      this.earlyInterrupts.add(t);
    }
  }

  private entry(e: Entry): Buffer { return encodeEntry(e, this.opts.entryTimeout, this.opts.attrTimeout); }
  private attr(st: stat): Buffer { return encodeAttrOut(st, this.opts.attrTimeout); }

  private async dispatch(req: FuseRequest): Promise<void> {
    const u = req.unique;
    const sys = this.sysOf(req);
    // FUSE_DONT_MASK: the mode of a create is the caller's, unmasked; its umask comes along.
    const createSys = (umask: number) => this.initFlags & FUSE_DONT_MASK ? this.sysOf(req, umask & 0o777) : sys;
    const ll = this.ll;
    const done = (r: number) => this.reply(u, r < 0 ? r : 0);
    const entryOr = (r: Entry | number) => {
      if (typeof r === 'number') return this.reply(u, r);
      // Answered EINTR already: the kernel never learns this lookup, so it will not FORGET it.
      if (this.inflight.get(u)?.answered) void ll.forget(r.nodeid, 1);
      return this.reply(u, 0, this.entry(r));
    };
    const attrOr = (r: stat | number) => typeof r === 'number' ? this.reply(u, r) : this.reply(u, 0, this.attr(r));
    switch (req.op) {
      case 'init': return this.init(req);
      case 'destroy': this.destroyed = true; return this.reply(u, 0);
      case 'lookup': return entryOr(await ll.lookup(sys, req.nodeid, req.name));
      case 'getattr': return attrOr(await ll.getattr(sys, req.nodeid, req.getattrFlags & FUSE_GETATTR_FH ? req.fh : undefined));
      case 'setattr': return attrOr(await ll.setattr(sys, req.nodeid, req.attr));
      case 'readlink': {
        const r = await ll.readlink(sys, req.nodeid);
        return typeof r === 'number' ? this.reply(u, r) : this.reply(u, 0, Buffer.from(r));
      }
      case 'symlink': return entryOr(await ll.symlink(sys, req.nodeid, req.name, req.target));
      case 'mknod': return entryOr(await ll.mknod(createSys(req.umask), req.nodeid, req.name, req.mode, req.rdev));
      case 'mkdir': return entryOr(await ll.mkdir(createSys(req.umask), req.nodeid, req.name, req.mode));
      case 'unlink': return done(await ll.unlink(sys, req.nodeid, req.name, false));
      case 'rmdir': return done(await ll.unlink(sys, req.nodeid, req.name, true));
      case 'rename': return done(await ll.rename(sys, req.nodeid, req.name, req.newdir, req.newname, req.flags));
      case 'link': return entryOr(await ll.link(sys, req.oldnodeid, req.nodeid, req.name));
      case 'open': {
        const fh = await ll.open(sys, req.nodeid, req.flags);
        return fh < 0 ? this.reply(u, fh) : this.reply(u, 0, encodeOpenOut(fh, FOPEN_KEEP_CACHE));
      }
      case 'opendir': {
        // ENOSYS once: the host kernel opens directories on its own from then on (fc->no_opendir)
        if (this.noOpendir) return this.reply(u, -ENOSYS);
        const fh = await ll.opendir(sys, req.nodeid);
        return fh < 0 ? this.reply(u, fh) : this.reply(u, 0, encodeOpenOut(fh, FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR));
      }
      case 'create': {
        const r = await ll.create(createSys(req.umask), req.nodeid, req.name, req.flags, req.mode);
        if (typeof r === 'number') return this.reply(u, r);
        return this.reply(u, 0, encodeCreateOut(r.entry, this.opts.entryTimeout, this.opts.attrTimeout, r.fh, FOPEN_KEEP_CACHE));
      }
      case 'read': return this.read(req);
      case 'write': {
        const n = await ll.write(sys, req.fh, req.data, req.offset);
        return n < 0 ? this.reply(u, n) : this.reply(u, 0, encodeU32Pair(n));
      }
      case 'release': case 'releasedir': return done(await ll.release(req.fh));
      // A FLUSH (each close(2), which waits for it) has nothing to do here: the kernel fd
      // stays open until RELEASE (as ops.ts), writes are in the lkl-ts kernel's page cache
      // already, and locks are the host's (no POSIX_LOCKS offered). ENOSYS tells the host
      // kernel so once (fc->no_flush): it stops sending them, and close(2) saves a round trip.
      case 'flush': return this.reply(u, -ENOSYS);
      case 'fsync': case 'fsyncdir':
        if (req.op === 'fsyncdir' && this.noOpendir) return done(await ll.fsyncDir(req.nodeid, (req.fsyncFlags & FUSE_FSYNC_FDATASYNC) !== 0));
        return done(await ll.fsync(sys, req.fh, (req.fsyncFlags & FUSE_FSYNC_FDATASYNC) !== 0));
      case 'readdir': case 'readdirplus': return this.readdir(req, sys);
      case 'statfs': {
        const r = await ll.statfs(sys, req.nodeid);
        return typeof r === 'number' ? this.reply(u, r) : this.reply(u, 0, statfsOut(r));
      }
      case 'setxattr': return done(await ll.setxattr(sys, req.nodeid, utf8(req.name), req.value, req.flags));
      case 'getxattr': case 'listxattr': {
        const r = req.op === 'getxattr' ? await ll.getxattr(sys, req.nodeid, utf8(req.name), req.size) : await ll.listxattr(sys, req.nodeid, req.size);
        if (typeof r === 'number') return r < 0 ? this.reply(u, r) : this.reply(u, 0, encodeU32Pair(r));
        return this.reply(u, 0, r);
      }
      case 'removexattr': return done(await ll.removexattr(sys, req.nodeid, utf8(req.name)));
      case 'access': return done(await ll.access(sys, req.nodeid, req.mask));
      case 'fallocate': return done(await ll.fallocate(sys, req.fh, req.mode, req.offset, req.length));
      case 'lseek': {
        const r = await ll.lseek(sys, req.fh, req.offset, req.whence);
        return r < 0 ? this.reply(u, r) : this.reply(u, 0, encodeU64(r));
      }
      case 'copy_file_range': {
        const r = await ll.copyFileRange(sys, req.fhIn, req.offIn, req.fhOut, req.offOut, req.len, req.flags);
        return r < 0 ? this.reply(u, r) : this.reply(u, 0, encodeU32Pair(Math.min(r, 0xffffffff)));
      }
      case 'ioctl': {
        const r = this.noOpendir && req.flags & FUSE_IOCTL_DIR
          ? await ll.ioctlDir(sys, req.nodeid, req.cmd, req.flags, req.data, req.outSize)
          : await ll.ioctl(sys, req.fh, req.cmd, req.flags, req.data, req.outSize);
        return typeof r === 'number' ? this.reply(u, r) : this.reply(u, 0, encodeIoctlOut(r.result, r.out));
      }
      // No locks in the lkl-ts kernel: POSIX_LOCKS/FLOCK_LOCKS are not offered in INIT, so the
      // host kernel keeps locks on this mount itself; should it ask anyway, say so.
      case 'lk': return this.reply(u, -ENOSYS);
      default: return this.reply(u, -ENOSYS);
    }
  }

  private init(req: FuseRequest & { op: 'init' }): void {
    const u = req.unique;
    if (req.major < FUSE_KERNEL_VERSION) { this.reply(u, -EPROTO); return; }
    if (req.major > FUSE_KERNEL_VERSION) {
      // Tell it our major; it sends INIT again (fuse.rst, version negotiation).
      this.reply(u, 0, encodeInitOut({ major: FUSE_KERNEL_VERSION, minor: FUSE_KERNEL_MINOR_VERSION, maxReadahead: 0, flags: 0, maxBackground: 0, congestionThreshold: 0, maxWrite: 0, timeGran: 0, maxPages: 0 }));
      return;
    }
    this.minor = Math.min(req.minor, FUSE_KERNEL_MINOR_VERSION);
    const want = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_DO_READDIRPLUS |
      FUSE_READDIRPLUS_AUTO | FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_AUTO_INVAL_DATA | FUSE_HAS_IOCTL_DIR;
    // READDIRPLUS (auto: the kernel asks for it on a directory's first read and after
    // lookups in it) saves a LOOKUP per entry for ls -l, find, cp -r, diff -r, but makes a
    // names-only listing read every inode (noreaddirplus turns it off).
    let offered = this.opts.readdirplus === false ? want & ~(FUSE_DO_READDIRPLUS | FUSE_READDIRPLUS_AUTO) : want;
    // ACLs (FUSE_POSIX_ACL since 7.26; the umask in CREATE/MKDIR/MKNOD since 7.12): see
    // SessionOptions.posixAcl and hostChecks.
    if (this.opts.posixAcl && this.opts.sysFor) {
      offered |= FUSE_DONT_MASK;
      if (this.opts.hostChecks && this.minor >= 26) offered |= FUSE_POSIX_ACL;
    }
    const flags = (req.flags & offered) >>> 0;
    this.initFlags = flags;
    this.hostPermissions = !!this.opts.hostPermissions || (flags & FUSE_POSIX_ACL) !== 0;
    this.noOpendir = (req.flags & FUSE_NO_OPENDIR_SUPPORT) !== 0 && (this.hostPermissions || !this.opts.hostChecks);
    const maxPages = Math.ceil(this.opts.maxWrite / 4096);
    this.initialized = true;
    debug('INIT: kernel %d.%d flags %s; answering 7.%d flags %s max_write %d', req.major, req.minor, req.flags.toString(16), this.minor, flags.toString(16), this.opts.maxWrite);
    const body = encodeInitOut({
      major: FUSE_KERNEL_VERSION, minor: this.minor, maxReadahead: req.maxReadahead, flags,
      maxBackground: 64, congestionThreshold: 48, maxWrite: this.opts.maxWrite, timeGran: 1,
      maxPages: flags & FUSE_MAX_PAGES ? maxPages : 0,
    });
    // Kernels before 7.23 read a shorter init_out (FUSE_COMPAT_22_INIT_OUT_SIZE).
    this.reply(u, 0, this.minor < 23 ? body.subarray(0, 24) : body);
  }

  private async read(req: FuseRequest & { fh: number; offset: number; size: number }): Promise<void> {
    const need = OUT_HEADER_SIZE + req.size;
    let buf = this.opts.writeConsumesFrame ? this.readPool.pop() : undefined;
    if (!buf || buf.length < need) buf = Buffer.allocUnsafe(need);
    try {
      const n = await this.ll.read(this.sysOf(req), req.fh, buf.subarray(OUT_HEADER_SIZE, need), req.offset);
      if (n < 0) { this.reply(req.unique, n); return; }
      const f = this.inflight.get(req.unique);
      if (f?.answered) { this.stats.droppedLate++; this.finish(req.unique); return; }
      if (f) f.answered = true;
      const frame = buf.subarray(0, OUT_HEADER_SIZE + n);
      writeOutHeader(frame, req.unique, 0);
      this.send(frame);
      this.finish(req.unique);
    } finally {
      if (this.opts.writeConsumesFrame && this.readPool.length < READ_POOL_MAX) this.readPool.push(buf);
    }
  }


  private async readdir(req: FuseRequest & { fh: number; offset: number; size: number }, sys: Sys): Promise<void> {
    const plus = req.op === 'readdirplus';
    // Not zeroed (a getdents of 32 KiB asks for 32 KiB, however few entries are left, and
    // zeroing it showed in the profile): every byte sent is written below, padding too.
    // Reused where the write is done with it on return: a new 32 KiB buffer for each of a
    // walk's READDIRs is memory outside the heap that the collector keeps count of.
    const need = OUT_HEADER_SIZE + req.size;
    const pooled = this.opts.writeConsumesFrame === true;
    let buf = pooled ? this.dirPool.pop() : undefined;
    if (!buf || buf.length < need) buf = Buffer.allocUnsafe(need);
    try {
      await this.readdirInto(req, sys, plus, buf, need);
    } finally {
      if (pooled && this.dirPool.length < READ_POOL_MAX) this.dirPool.push(buf);
    }
  }

  private async readdirInto(req: FuseRequest & { fh: number; offset: number; size: number }, sys: Sys, plus: boolean, buf: Buffer, need: number): Promise<void> {
    let off = OUT_HEADER_SIZE;
    const size = (len: number) => plus ? direntplusSize(len) : direntSize(len);
    const room = (len: number) => off + size(len) <= need;
    const add = (e: DirEntryOut) => {
      if (plus) {
        if (e.entry) writeEntry(buf, off, e.entry, this.opts.entryTimeout, this.opts.attrTimeout);
        else zeroBytes(buf, off, off + 128); // nodeid 0: "no attributes for this one"
        off = writeDirent(buf, off + 128, e.ino, e.off, e.type, e.name);
      } else off = writeDirent(buf, off, e.ino, e.off, e.type, e.name);
    };
    const r = this.noOpendir
      ? await this.ll.readdirNode(sys, req.nodeid, !this.hostPermissions && sys !== this.sys, req.offset, plus, room, add)
      : await this.ll.readdir(sys, req.fh, req.offset, plus, room, add);
    if (r < 0 && off === OUT_HEADER_SIZE) { this.reply(req.unique, r); return; }
    const f = this.inflight.get(req.unique);
    if (f?.answered) {
      // Interrupted: the entries it looked up were never seen by the kernel.
      this.stats.droppedLate++;
      if (plus) this.forgetEntries(buf, off);
      this.finish(req.unique);
      return;
    }
    if (f) f.answered = true;
    const frame = buf.subarray(0, off);
    writeOutHeader(frame, req.unique, 0);
    this.send(frame);
    this.finish(req.unique);
  }

  private forgetEntries(buf: Buffer, end: number): void {
    let off = OUT_HEADER_SIZE;
    while (off + 128 + 24 <= end) {
      const nodeid = buf.readUInt32LE(off) + buf.readUInt32LE(off + 4) * 4294967296;
      const nameLen = buf.readUInt32LE(off + 128 + 16);
      if (nodeid) void this.ll.forget(nodeid, 1);
      off += direntplusSize(nameLen);
    }
  }
}

const utf8 = (b: Buffer) => b.toString('utf8');

function statfsOut(s: statfs): Buffer {
  return encodeStatfsOut({
    blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree,
    bsize: s.bsize, namelen: s.namelen, frsize: s.frsize || s.bsize,
  });
}
