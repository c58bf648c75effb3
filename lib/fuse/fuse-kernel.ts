/*
 * The kernel transport: lklfuse speaking the FUSE protocol itself on /dev/fuse, no libfuse
 * and no native code. Root only, since only root may mount(2) a FUSE filesystem with a
 * descriptor it opened itself (ordinary users need fusermount to pass one over a Unix
 * socket, which Node cannot receive; they get fuse-native.ts).
 *
 * Mounting: open /dev/fuse read-write and run
 *   mount -i -t fuse.SUBTYPE -o fd=3,rootmode=40000,user_id=U,group_id=G[,...] FSNAME MNT
 * with the descriptor as the child's fd 3 (-i: mount(8) must not hand it to mount.fuse,
 * which would take FSNAME for a program). Reads before the mount is made fail EPERM, so
 * reading starts once mount(8) has succeeded; the kernel's INIT is then the first request.
 *
 * Serving: dev-reader.ts delivers frames, fuse-session.ts answers them. The daemon never
 * touches its own mount (that deadlocks): it chdir()s to / before mounting and looks at
 * the mount only through /proc/self/mountinfo.
 *
 * Ending: an unmount by anyone (umount, fusermount -u) aborts the connection and reads
 * fail ENODEV; a lazy unmount (-l) that leaves users behind shows only in mountinfo, which
 * is polled as fuse-native.ts does. Either emits 'unmounted' and sets `gone`. A mount can
 * also be unmounted while mount() is still confirming it (it shows in mountinfo before
 * mount(8) exits, and a quick `fusermount -u` beats us to it): mount() then resolves to a
 * mount that is already gone, and the 'unmounted' it emitted had no listener yet, so
 * callers look at `gone` first. unmount() unmounts (lazily if busy, as libfuse does on
 * exit), waits for the end of the connection and closes the descriptor.
 */
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import createDebug from 'debug';
import type { Sys } from '../kernel/include/sys.js';
import { BusyPoll, makeReader, type DevReader, type ReaderKind } from './dev-reader.js';
import { FuseSession, type Caller } from './fuse-session.js';
import type { LowLevelOps } from './ll-ops.js';
import { findMount } from './mountinfo.js';

const debug = createDebug('lkl:fuse:kernel');

export const FUSE_DEVICE = () => process.env.LKLFUSE_TEST_FUSE_DEVICE || '/dev/fuse';

export interface KernelMountOptions {
  fsname: string;
  subtype: string;
  readOnly: boolean;
  allowOther: boolean;
  defaultPermissions: boolean;
  /** Further options for the kernel's fuse mount (max_read=, blksize=, ...), as given. */
  extra: string[];
  maxWrite: number;
  entryTimeout: number;
  attrTimeout: number;
  reader: ReaderKind;
  /** busy_poll=: µs the event loop keeps polling after each reply (dev-reader.ts, BusyPoll). */
  busyPollUs: number;
  /** The Sys of a caller (kernel.sysAs). */
  sysFor?: (c: Caller) => Sys;
  log: (msg: string) => void;
  /** How often to look for a lazy external unmount, ms. */
  pollMs?: number;
  /** One request at a time (-s). */
  serialize?: boolean;
  readdirplus?: boolean;
  /** -o intr: interrupted read-only requests are answered EINTR (fuse-session.ts). */
  intr?: boolean;
  /**
   * The mounted filesystem keeps POSIX ACLs: ask for FUSE_DONT_MASK, and for FUSE_POSIX_ACL
   * with allow_other or default_permissions (fuse-session.ts, SessionOptions.hostChecks).
   */
  posixAcl?: boolean;
}

export class KernelMountError extends Error {}

/** Options of the kernel's fuse filesystem that may be passed through -o (with a value). */
export const KERNEL_FUSE_OPTIONS = ['max_read'];
/** VFS flags mount(8) turns into MS_* bits: fine on any mount. */
const VFS_FLAGS = new Set(['ro', 'rw', 'nosuid', 'suid', 'nodev', 'dev', 'noexec', 'exec', 'relatime',
  'norelatime', 'noatime', 'atime', 'strictatime', 'nostrictatime', 'nodiratime', 'diratime', 'sync',
  'async', 'dirsync', 'lazytime', 'nolazytime', 'silent', 'loud']);

/**
 * Why `options` (what -o leaves for FUSE) cannot go to the kernel's fuse mount, or
 * undefined: libfuse's own options (uid=, umask=, kernel_cache, ...) mean nothing there.
 */
export function kernelOptionProblem(options: string[]): string | undefined {
  const bad = options.filter((o) => {
    const name = o.split('=')[0]!;
    return !VFS_FLAGS.has(o) && !(KERNEL_FUSE_OPTIONS.includes(name) && o.includes('='));
  });
  if (bad.length === 0) return undefined;
  return `option${bad.length > 1 ? 's' : ''} ${bad.join(', ')} ${bad.length > 1 ? 'are' : 'is'} not understood by the kernel transport ` +
    `(the kernel's fuse takes max_read= and the usual mount flags; libfuse options need -o transport=fuse-native)`;
}

/** Runs mount(8); resolves to its exit status and output. */
function runMount(args: string[], fd: number): Promise<{ status: number | null; output: string }> {
  return new Promise((resolve) => {
    const c = spawn('mount', args, { stdio: fd >= 0 ? ['ignore', 'pipe', 'pipe', fd] : ['ignore', 'pipe', 'pipe'] });
    let output = '';
    c.stdout!.on('data', (d: Buffer) => { output += d; });
    c.stderr!.on('data', (d: Buffer) => { output += d; });
    c.on('error', (e) => resolve({ status: null, output: e.message }));
    c.on('close', (status) => resolve({ status, output: output.trim() }));
  });
}

function runUmount(args: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const c = spawn('umount', args, { stdio: 'ignore' });
    c.on('error', () => resolve(null));
    c.on('close', (s) => resolve(s));
  });
}

/** Where fusectl is usually mounted (systemd's sys-fs-fuse-connections.mount). */
const FUSECTL_DIR = '/sys/fs/fuse/connections';

/**
 * Aborts FUSE connection `n`, as `echo 1 > /sys/fs/fuse/connections/N/abort`: pending and
 * blocked reads of its /dev/fuse fail ENODEV and its users get ECONNABORTED. fusectl is
 * mounted for the moment on a private directory if it is not mounted at its usual place.
 */
export async function abortFuseConnection(n: number): Promise<boolean> {
  const write = (dir: string) => {
    try { fs.writeFileSync(path.join(dir, String(n), 'abort'), '1'); return true; } catch { return false; }
  };
  if (write(FUSECTL_DIR)) return true;
  let dir: string | undefined;
  try {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lklfuse-fusectl-'));
    if ((await runMount(['-t', 'fusectl', 'fusectl', dir], -1)).status !== 0) return false;
    const ok = write(dir);
    await runUmount([dir]);
    return ok;
  } catch (e) {
    debug('fusectl: %O', e);
    return false;
  } finally {
    if (dir) try { fs.rmdirSync(dir); } catch { /* still mounted, or gone */ }
  }
}

export class KernelFuseMount extends EventEmitter {
  mountId = -1;
  /** st_dev of the mount ("major:minor"; the minor names the connection in fusectl). */
  dev = '';
  /**
   * Set once the mount went away without unmount() (the moment 'unmounted' is emitted):
   * a mount unmounted while mount() was still confirming it comes back with it set.
   */
  gone = false;
  private closed = false;
  private ended = false;
  private endWaiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  private reader: DevReader | null = null;
  /** The abort of a connection closeFd left open (unmount() waits for it). */
  private aborting: Promise<boolean> | null = null;
  session: FuseSession | null = null;
  private log: (msg: string) => void = (msg) => debug(msg);

  private constructor(readonly mountPoint: string, private fd: number) { super(); }

  get readerKind(): ReaderKind | undefined { return this.reader?.kind; }

  static async mount(mountPoint: string, ll: LowLevelOps, sys: Sys, opts: KernelMountOptions): Promise<KernelFuseMount> {
    const mnt = path.resolve(mountPoint);
    let fd: number;
    try {
      fd = fs.openSync(FUSE_DEVICE(), fs.constants.O_RDWR);
    } catch (e) {
      throw new KernelMountError(`${FUSE_DEVICE()}: ${(e as Error).message}`);
    }
    const uid = process.getuid?.() ?? 0, gid = process.getgid?.() ?? 0;
    const o = [`fd=3`, 'rootmode=40000', `user_id=${uid}`, `group_id=${gid}`];
    if (opts.allowOther) o.push('allow_other');
    if (opts.defaultPermissions) o.push('default_permissions');
    if (opts.readOnly) o.push('ro');
    o.push(...opts.extra);
    const args = ['-i', '-t', `fuse.${opts.subtype}`, '-o', o.join(','), opts.fsname, mnt];
    debug('mount %o', args);
    const m = new KernelFuseMount(mnt, fd);
    m.log = opts.log;
    const busy = new BusyPoll(opts.busyPollUs);
    const write = (frame: Buffer) => { fs.writeSync(fd, frame); busy.kick(); };
    m.session = new FuseSession(ll, sys, write, {
      maxWrite: opts.maxWrite, entryTimeout: opts.entryTimeout, attrTimeout: opts.attrTimeout,
      sysFor: opts.sysFor, log: opts.log, readOnly: opts.readOnly, serialize: opts.serialize,
      readdirplus: opts.readdirplus, intr: opts.intr, writeConsumesFrame: true, posixAcl: opts.posixAcl,
      hostChecks: opts.allowOther || opts.defaultPermissions, hostPermissions: opts.defaultPermissions,
    });
    m.reader = makeReader(opts.reader, fd, opts.maxWrite + 4096 + 40 + 80);
    let reading = false;
    const startReading = () => {
      if (reading) return;
      reading = true;
      debug('reading /dev/fuse with the %s reader', m.reader!.kind);
      m.reader!.start((frame) => m.session!.handle(frame), (errno) => m.onEnd(errno));
    };
    // Reading before the mount exists fails EPERM, so it starts once the mount shows in
    // mountinfo: then, not only once mount(8) has exited, so that a mount(8) that looks at
    // the new mount (and waits for INIT) cannot deadlock with us.
    const done = runMount(args, fd);
    let r: { status: number | null; output: string } | undefined;
    done.then((x) => { r = x; }, () => undefined);
    while (!r) {
      await Promise.race([done, new Promise((res) => setTimeout(res, 20))]);
      const e = r ? undefined : await findMount(mnt);
      if (e?.fsType.startsWith('fuse')) { m.dev = e.dev; startReading(); }
    }
    if (r.status !== 0) {
      if (reading) m.reader.stop();
      fs.closeSync(fd);
      throw new KernelMountError(`mount(8) failed (${r.status ?? 'not run'}): ${r.output || 'no message'}`);
    }
    startReading();
    const entry = await findMount(mnt);
    if (!entry || m.closed) {
      // mount(8) made the mount, and somebody unmounted it again (fusermount -u, umount)
      // before we got here: the connection has ended (ENODEV), or will once we close it.
      // Not a failure, and not something to wait for either: the mount comes back gone.
      debug('mount at %s gone before it was confirmed (connection %s)', mnt, m.ended ? 'ended' : 'still open');
      m.goneNow();
      return m;
    }
    m.mountId = entry.id;
    m.dev = entry.dev;
    m.watch(opts.pollMs ?? 250);
    return m;
  }

  private onEnd(errno: number): void {
    debug('connection ended (%d)', errno);
    this.ended = true;
    for (const w of this.endWaiters.splice(0)) w();
    this.goneNow();
  }

  /**
   * The mount went away without unmount(): stop reading, close the descriptor (a lazy
   * unmount's remaining users then get ENOTCONN, as with libfuse), mark it gone and emit
   * 'unmounted'. `gone` stays set, for whoever starts listening later.
   */
  private goneNow(): void {
    if (this.closed) return;
    this.closed = true;
    this.gone = true;
    this.stopWatching();
    this.closeFd();
    this.emit('unmounted');
  }

  private watch(pollMs: number): void {
    this.timer = setInterval(() => {
      findMount(this.mountPoint).then((e) => {
        if (this.closed || (e && e.id === this.mountId)) return;
        debug('mount %d at %s is gone', this.mountId, this.mountPoint);
        this.goneNow();
      }, (err) => debug('mountinfo: %O', err));
    }, pollMs);
  }

  private stopWatching(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private closeFd(): void {
    if (this.fd < 0) return;
    this.reader?.stop();
    try { fs.closeSync(this.fd); } catch (e) { debug('close /dev/fuse: %O', e); }
    this.fd = -1;
    // Closing the last descriptor ends the connection, but a worker thread blocked in
    // read(2) holds the file until a request comes, and the process cannot exit while it
    // is blocked (process.exit joins workers). A connection still open (a lazy unmount's
    // users left behind, or an unmount whose end we did not see) is aborted through fusectl.
    if (!this.ended && this.reader?.kind === 'worker') this.aborting = this.abortConnection();
  }

  /** Aborts the connection (fusectl's abort file); resolves whether it could. */
  private async abortConnection(): Promise<boolean> {
    const minor = this.dev.split(':')[1];
    if (!minor || this.ended) return this.ended;
    const ok = await abortFuseConnection(Number(minor));
    debug('abort of FUSE connection %s: %s', minor, ok ? 'done' : 'not possible');
    return ok;
  }

  /** Unmounts (lazily if busy). Resolves once the mount is gone and the descriptor closed. */
  async unmount(): Promise<void> {
    this.stopWatching();
    if (this.closed) { await this.aborting; await this.drain(); return; }
    this.closed = true;
    const e = await findMount(this.mountPoint);
    if (e && e.id === this.mountId) {
      let s = await runUmount([this.mountPoint]);
      if (s !== 0) s = await runUmount(['-l', this.mountPoint]);
      if (s !== 0) throw new KernelMountError(`umount ${this.mountPoint} failed`);
    }
    if (!this.ended) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 2000);
        this.endWaiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    this.closeFd();
    await this.aborting;
    await this.drain();
  }

  /**
   * Waits (up to 10 s) for requests still running in the kernel to finish (their replies
   * go nowhere), so that the caller does not close the handles they use under them.
   */
  private async drain(): Promise<void> {
    if (!this.session) return;
    let t: NodeJS.Timeout | undefined;
    const idle = await Promise.race([this.session.idle().then(() => true), new Promise<false>((r) => { t = setTimeout(() => r(false), 10000); })]);
    clearTimeout(t);
    if (!idle) this.log(`lklfuse: shutting down with requests still running after 10 s: ${this.session.pendingOps().join(', ')}`);
  }
}
