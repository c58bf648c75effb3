/*
 * lklfuse, the application: checks the image and the mountpoint, locks the image, starts
 * the kernel, attaches the image as a virtio disk, detects and mounts the filesystem in the
 * kernel, and serves it through FUSE until a signal or an external unmount, over one of two
 * transports (transport.ts chooses): the FUSE protocol on /dev/fuse itself (ll-ops.ts over
 * fuse-kernel.ts; root) or libfuse 2 (ops.ts over fuse-native.ts; anyone); then unmounts
 * FUSE, unmounts in the kernel (writing everything back), detaches the disk and halts. bin/lklfuse.ts is the command line around it.
 *
 * Background mode (the default, as mount helpers must behave): the command re-runs itself
 * detached with -f and LKLFUSE_READY_FD=3; the daemon reports on that pipe, as one JSON
 * line, either that the mount is live or why it failed, and the parent exits accordingly.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { format } from 'node:util';
import v8 from 'node:v8';
import createDebug from 'debug';
import type { Sys } from '../kernel/include/sys.js';
import type { BlockStore } from '../drivers/block-store.js';
import { EBADMSG, EINVAL, ENODATA, ENODEV, EUCLEAN, MS_RDONLY, O_DIRECTORY, O_RDONLY, strerror } from '../kernel/include/uapi.js';
import { detectFs } from './detect.js';
import { FuseMount } from './fuse-native.js';
import { KernelFuseMount, kernelOptionProblem } from './fuse-kernel.js';
import { LowLevelOps } from './ll-ops.js';
import { chooseTransport, type TransportMount } from './transport.js';
import { acquireLock } from './lock.js';
import { findMount } from './mountinfo.js';
import { lklfuseOps } from './ops.js';
import type { LklfuseOptions } from './options.js';
import { OptionError, SUPPORTED_TYPES, escapeOption, normalizeType, parseOptions } from './options.js';
import { daemonExecArgv } from './node-flags.js';

const debug = createDebug('lkl:fuse');
const kernelDebug = createDebug('lkl:kernel');
/** True while SIGUSR1's task-state dump prints: its KERN_INFO lines go to the log too. */
let showingState = false;
/** include/linux/kern_levels.h */
const LOGLEVEL_ERR = 3;

/** The part of lib/index.ts's Kernel that lklfuse uses. */
export interface LklKernel {
  sys: Sys;
  /** A Sys acting with a caller's fsuid/fsgid/groups (and umask) (lib/index.ts); the kernel transport needs it. */
  sysAs?(caller: { uid: number; gid: number; groups: number[]; umask?: number }): Sys;
  diskAdd(store: { path?: string; fd?: number; readOnly?: boolean; store?: BlockStore }): Promise<number>;
  mountDev(diskId: number, part: number, fsType: string, flags: number, opts: string): Promise<string | number>;
  umountDev(diskId: number, part: number, flags: number, timeoutMs?: number): Promise<number>;
  diskRemove(diskId: number): Promise<number>;
  halt(): Promise<void>;
  /** sysrq-t: every kernel task's state through printk (the fake kernel has none). */
  showState?(): Promise<void>;
  sysctl?(names: string[]): Promise<Record<string, string>>;
}
export interface KernelOptions {
  memMiB?: number; cmdline?: string; syscallThreads?: number;
  /** Kernel messages with their log level (lib/index.ts's StartOptions.print). */
  print?: (msg: string, level?: number) => void;
}

/** Exit statuses. */
export const EXIT_OK = 0, EXIT_FAILURE = 1, EXIT_LOCKED = 2;

export class LklfuseError extends Error {
  constructor(message: string, readonly status = EXIT_FAILURE) { super(message); }
}

export interface LklfuseArgs {
  image: string;
  mountpoint: string;
  /** The -o lists, in order. */
  options: string[];
  foreground: boolean;
  debug: boolean;
  singleThreaded: boolean;
}

/** Environment variable naming the fd on which a background daemon reports readiness. */
export const READY_FD_ENV = 'LKLFUSE_READY_FD';
/** Test only: serve this host directory through test/fuse/fake-kernel instead of the kernel. */
export const FAKE_KERNEL_ENV = 'LKLFUSE_TEST_FAKE_KERNEL';
/**
 * Test only: a JSON list of store faults (lib/drivers/stores.ts StoreFault, without the
 * functions) that the image's store injects: fault tests through a real mount.
 */
export const FAULTS_ENV = 'LKLFUSE_TEST_FAULTS';

/** The image as a FaultyStore failing what FAULTS_ENV lists. */
async function faultyImage(image: string, readOnly: boolean, spec: string): Promise<BlockStore> {
  const { FaultyStore, FileStore } = await import('../drivers/stores.js');
  let faults: unknown;
  try { faults = JSON.parse(spec); } catch (e) { throw new LklfuseError(`${FAULTS_ENV}: ${(e as Error).message}`); }
  if (!Array.isArray(faults)) throw new LklfuseError(`${FAULTS_ENV}: not a JSON list`);
  debug('injecting store faults %o', faults);
  return new FaultyStore(await FileStore.open(image, { readOnly }), { faults });
}

const FUSE_DEVICE = () => process.env.LKLFUSE_TEST_FUSE_DEVICE || '/dev/fuse';
const MAX_WRITE = 131072;
/** max_write of the kernel transport: 1 MiB (max_pages 256, the FUSE module's limit). */
const KERNEL_MAX_WRITE = 1 << 20;
/** busy_poll= default, µs (dev-reader.ts, BusyPoll). */
export const DEFAULT_BUSY_POLL_US = 100;
const UMOUNT_TIMEOUT_MS = 60_000;

let logFd: number | undefined;
/** One line to the log (log=FILE) or stderr. */
export function log(msg: string): void {
  const line = msg.endsWith('\n') ? msg : msg + '\n';
  try {
    fs.writeSync(logFd ?? 2, line);
  } catch { /* stderr gone (background daemon without log=): nothing to do */ }
}

async function loadKernel(opts: KernelOptions): Promise<LklKernel> {
  const fake = process.env[FAKE_KERNEL_ENV];
  if (fake) {
    const url = new URL('../../test/fuse/fake-kernel.js', import.meta.url);
    const m = await import(url.href) as { createFakeKernel(dir: string, stats?: string): LklKernel };
    debug('using the fake kernel over %s', fake);
    return m.createFakeKernel(fake, process.env.LKLFUSE_TEST_FAKE_STATS);
  }
  const spec = '../index.js'; // lib/index.ts: the public API (a variable keeps tsc from resolving it early)
  let m: { startKernel(o: KernelOptions): Promise<LklKernel> };
  try {
    m = await import(spec) as typeof m;
  } catch (e) {
    throw new LklfuseError(`cannot load the lkl-ts kernel: ${(e as Error).message}`);
  }
  const k = await m.startKernel(opts);
  const missing = (['diskAdd', 'mountDev', 'umountDev', 'diskRemove'] as const).filter((f) => typeof k[f] !== 'function');
  if (missing.length) {
    await k.halt();
    throw new LklfuseError(`this lkl-ts kernel cannot attach disks yet (no ${missing.join(', ')} in lib/index.ts)`);
  }
  return k;
}

const diskName = (id: number, part: number) => `/dev/vd${String.fromCharCode(97 + id)}${part ? part : ''}`;

function checkFuseDevice(): void {
  const dev = FUSE_DEVICE();
  try {
    fs.accessSync(dev, fs.constants.R_OK | fs.constants.W_OK);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'No such file or directory (is the fuse kernel module loaded? try: modprobe fuse)' : describeHostError(err);
    throw new LklfuseError(`${dev}: ${why}`);
  }
}

function describeHostError(e: NodeJS.ErrnoException): string {
  return typeof e.errno === 'number' ? strerror(e.errno) : e.message;
}

function checkImage(image: string, readOnly: boolean): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(image);
  } catch (e) {
    throw new LklfuseError(`${image}: ${describeHostError(e as NodeJS.ErrnoException)}`);
  }
  if (st.isDirectory()) throw new LklfuseError(`${image}: Is a directory (expected a disk image)`);
  if (!st.isFile() && !st.isBlockDevice()) throw new LklfuseError(`${image}: not a regular file or block device`);
  try {
    fs.accessSync(image, fs.constants.R_OK | (readOnly ? 0 : fs.constants.W_OK));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const readable = () => { try { fs.accessSync(image, fs.constants.R_OK); return true; } catch { return false; } };
    const hint = !readOnly && err.code === 'EACCES' && readable() ? ' (mount it read-only with -o ro?)' : '';
    throw new LklfuseError(`${image}: ${describeHostError(err)}${hint}`);
  }
  if (st.isFile() && st.size < 2048) throw new LklfuseError(`${image}: too small to hold a filesystem (${st.size} bytes)`);
}

async function checkMountpoint(mnt: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.statSync(mnt);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOTCONN' ? 'Transport endpoint is not connected (a dead FUSE mount? try: fusermount -u ' + mnt + ')' : describeHostError(err);
    throw new LklfuseError(`mountpoint ${mnt}: ${why}`);
  }
  if (!st.isDirectory()) throw new LklfuseError(`mountpoint ${mnt}: Not a directory`);
  const m = await findMount(mnt);
  if (m) throw new LklfuseError(`mountpoint ${mnt}: already mounted (${m.fsType} ${m.source})`);
}

/** Reports to the parent of a background daemon, once. */
let readyFd = process.env[READY_FD_ENV] ? Number(process.env[READY_FD_ENV]) : undefined;
function reportToParent(msg: { ok: true } | { ok: false; status: number; message: string }): void {
  if (readyFd === undefined) return;
  try {
    fs.writeSync(readyFd, JSON.stringify(msg) + '\n');
    fs.closeSync(readyFd);
  } catch (e) { debug('cannot report to parent: %O', e); }
  readyFd = undefined;
}

/** Tells systemd (Type=notify, NotifyAccess=all) that the mount is live. */
function notifySystemd(): void {
  if (!process.env.NOTIFY_SOCKET) return;
  const c = spawn('systemd-notify', ['--ready', `--pid=${process.pid}`], { stdio: 'ignore' });
  c.on('error', (e) => debug('systemd-notify: %O', e));
  c.unref();
}

/** Foreground run: mounts, serves until stopped, returns the exit status. */
/**
 * The daemon's heap: by default V8 lets the heap grow to a few times what was live after the
 * last full collection before it collects again, and a daemon streaming writes through the
 * kernel produces short-lived objects (pages, buffers, requests) at a high rate: ~100 MiB
 * of heap for ~25 MiB live. A growing step of 10% keeps the heap near what is live at no
 * measurable cost in throughput (measured: 256 MiB written in-process, RSS 221 -> 181 MiB,
 * time within noise). Daemon only: programs using the library keep their own settings.
 */
export const DAEMON_V8_FLAGS = ['--heap-growing-percent=10'];

export async function runDaemon(args: LklfuseArgs): Promise<number> {
  for (const f of DAEMON_V8_FLAGS) v8.setFlagsFromString(f);
  let opts: LklfuseOptions;
  try {
    opts = parseOptions(args.options);
  } catch (e) {
    if (e instanceof OptionError) return fail(new LklfuseError(`bad option: ${e.message}`));
    throw e;
  }
  const image = path.resolve(args.image);
  const mnt = path.resolve(args.mountpoint);
  if (opts.log) {
    try {
      logFd = fs.openSync(path.resolve(opts.log), 'a');
    } catch (e) {
      return fail(new LklfuseError(`log file ${opts.log}: ${describeHostError(e as NodeJS.ErrnoException)}`));
    }
    createDebug.log = (...a: unknown[]) => log(format(...a));
  }
  if (args.debug) createDebug.enable(['lkl:*', process.env.DEBUG].filter(Boolean).join(','));

  let kernel: LklKernel | undefined;
  let diskId = -1;
  let mounted = false;
  let releaseLock: (() => void) | undefined;
  let outsideFd = -1; // the kernel's "/" from before the chroot into the mounted filesystem
  const cleanup = async () => {
    try {
      if (kernel) await leaveChroot(kernel.sys, outsideFd);
      outsideFd = -1;
      if (kernel && mounted) await kernel.umountDev(diskId, opts.part, 0, UMOUNT_TIMEOUT_MS);
      if (kernel && diskId >= 0) await kernel.diskRemove(diskId);
      if (kernel) await kernel.halt();
    } catch (e) { debug('cleanup: %O', e); }
    process.removeAllListeners('SIGUSR1');
    process.removeAllListeners('SIGUSR2');
    releaseLock?.();
  };

  try {
    checkFuseDevice();
    checkImage(image, opts.readOnly);
    await checkMountpoint(mnt);
    let type = undefined as string | undefined;
    if (opts.type !== undefined) {
      type = normalizeType(opts.type);
      if (!type) throw new LklfuseError(`unknown filesystem type '${opts.type}' (supported: ${SUPPORTED_TYPES.join(', ')})`);
    }

    if (!opts.nolock) {
      const lockFile = opts.lock ? path.resolve(opts.lock) : image;
      const l = await acquireLock(lockFile, opts.readOnly, opts.lock ? `lock file ${lockFile}` : 'image');
      if (!l.ok) throw new LklfuseError(l.conflict ? `${image}: ${l.message}` : l.message, l.conflict ? EXIT_LOCKED : EXIT_FAILURE);
      releaseLock = l.release;
    }
    process.chdir('/'); // do not pin the caller's directory

    // Kernel messages: all to the lkl:kernel debug namespace, as before; to the log also
    // the hang reports: SIGUSR1's dump, and a hung task report from its "INFO: task" line on
    // (khungtaskd prints a report in one go, so it ends with the current event-loop turn).
    let inHungReport = false;
    /** Error lines the kernel prints while a mount is tried (null when not mounting). */
    let mountErrors: string[] | null = null;
    kernel = await loadKernel({
      memMiB: opts.mb, syscallThreads: args.singleThreaded ? 1 : undefined,
      cmdline: `sysctl.kernel.hung_task_timeout_secs=${opts.hungTaskTimeout}`,
      print: (msg, level) => {
        kernelDebug('%s', msg);
        if (mountErrors && level !== undefined && level <= LOGLEVEL_ERR) mountErrors.push(msg);
        if (!inHungReport && level !== undefined && level <= LOGLEVEL_ERR && msg.startsWith('INFO: task ')) {
          inHungReport = true;
          setImmediate(() => { inHungReport = false; });
        }
        if (showingState || inHungReport) log(`lklfuse: kernel: ${msg}`);
      },
    });
    const k0 = kernel;
    process.on('SIGUSR1', () => {
      if (!k0.showState || showingState) return;
      showingState = true;
      void k0.showState().finally(() => { showingState = false; });
    });
    // SIGUSR2: one line of the kernel's cache counters and the daemon's memory, for soak runs.
    process.on('SIGUSR2', () => {
      if (!k0.sysctl) return;
      void k0.sysctl(['fs.inode-nr', 'fs.dentry-state']).then((v) => {
        const rss = /VmRSS:\s*(\d+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1];
        log(`lklfuse: stats: fs.inode-nr=${(v['fs.inode-nr'] ?? '').replace(/\t/g, ' ')}` +
          ` fs.dentry-state=${(v['fs.dentry-state'] ?? '').replace(/\t/g, ' ')} VmRSS=${rss ?? '?'} kB`);
      });
    });
    const { sys } = kernel;
    const faults = process.env[FAULTS_ENV];
    diskId = faults
      ? await kernel.diskAdd({ store: await faultyImage(image, opts.readOnly, faults) })
      : await kernel.diskAdd({ path: image, readOnly: opts.readOnly });
    if (diskId < 0) throw new LklfuseError(`${image}: cannot attach the image: ${strerror(diskId)}`);

    const dev = diskName(diskId, opts.part);
    const fd = await sys.open(dev, O_RDONLY);
    if (fd < 0) {
      throw new LklfuseError(opts.part
        ? `${image}: no partition ${opts.part} (${strerror(fd)})`
        : `${image}: cannot open ${dev} in the kernel: ${strerror(fd)}`);
    }
    const head = new Uint8Array(65536);
    const n = await sys.pread64(fd, head, 0);
    await sys.close(fd);
    if (n < 0) throw new LklfuseError(`${image}: cannot read: ${strerror(n)}`);
    const det = detectFs(head.subarray(0, n));
    debug('%s: found %s', dev, det.reason);
    if (args.debug) log(`lklfuse: ${image}${opts.part ? ` part ${opts.part}` : ''}: found ${det.reason}`);
    if (!type) {
      if (!det.type) {
        throw new LklfuseError(`${image}: cannot detect the filesystem type: found ${det.reason}` +
          ` (supported: ${SUPPORTED_TYPES.join(', ')}${det.partitions ? '; choose a partition with -o part=N' : '; or give -o type='})`);
      }
      type = det.type;
    }

    // The kernel's error lines while mounting say why a mount failed (as dmesg does for mount(8)).
    mountErrors = [];
    let mp = await kernel.mountDev(diskId, opts.part, type, opts.mountFlags, opts.mountData);
    if (mp === -ENODEV && (type === 'ext2' || type === 'ext3')) {
      mp = await kernel.mountDev(diskId, opts.part, 'ext4', opts.mountFlags, opts.mountData); // ext4 serves ext2/3
    }
    if (typeof mp === 'number') {
      const why = mountErrors.length ? ` [kernel: ${mountErrors.map((m) => m.trim()).join('; ')}]` : '';
      mountErrors = null;
      throw new LklfuseError(`${image}: cannot mount the ${type} filesystem: ${strerror(mp)}` +
        (mp === -EINVAL || mp === -EUCLEAN || mp === -EBADMSG ? ' (corrupt or unsupported filesystem?)' : '') + why);
    }
    mountErrors = null;
    mounted = true;
    debug('mounted %s (%s) at %s in the kernel', dev, type, mp);
    outsideFd = await sys.open('/', O_RDONLY | O_DIRECTORY);
    // chroot into the mounted filesystem and stand at its root: fuse-native's paths are then
    // resolved relative to it (ops.ts), so a 4,095-byte path works as on Linux.
    const root = (await sys.chroot(mp)) === 0 ? '' : mp;
    const atRoot = root === '' && (await sys.chdir('/')) === 0;
    const readOnly = opts.readOnly || (opts.mountFlags & MS_RDONLY) !== 0;
    const libfuseOnly = kernelOptionProblem(opts.fuse);
    const transport = chooseTransport(opts.transport, { hasSysAs: typeof kernel.sysAs === 'function', libfuseOnly });
    if (transport.error) throw new LklfuseError(transport.error);
    debug('transport: %s (%s)', transport.kind, transport.why);

    // From here on a signal means "stop once mounted": a SIGTERM that comes while the FUSE
    // mount is being made (it is visible in mountinfo before the mount call returns) must
    // not kill the daemon with the mount live.
    let signalled: string | undefined;
    let onSignal: ((sig: string) => void) | undefined;
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      process.on(sig, () => { if (!signalled) { signalled = sig; onSignal?.(sig); } });
    }

    let fuse: TransportMount;
    let closeOps: () => Promise<void>;
    if (transport.kind === 'kernel') {
      // Without FUSE_DONT_MASK the host kernel applies the caller's umask before it sends a
      // mode; with it (ACLs, below) each create carries its umask and runs with it.
      await sys.umask(0);
      // POSIX ACLs: getxattr of the root's ACL is ENODATA or the ACL where the filesystem keeps
      // them, EOPNOTSUPP where it does not (vfat, ext4 -o noacl).
      const aclProbe = await sys.lgetxattr(root === '' ? '/' : root, 'system.posix_acl_access');
      const posixAcl = typeof aclProbe !== 'number' || aclProbe === -ENODATA;
      debug('POSIX ACLs: %s', posixAcl ? 'yes' : 'no');
      const ll = await LowLevelOps.create(sys, { root });
      if (typeof ll === 'number') throw new LklfuseError(`cannot open the mounted filesystem's root in the kernel: ${strerror(ll)}`);
      closeOps = () => ll.closeAll();
      const k = kernel;
      fuse = await KernelFuseMount.mount(mnt, ll, sys, {
        fsname: opts.fsname ?? image, subtype: opts.subtype ?? 'lklfuse', readOnly,
        allowOther: opts.allowOther, defaultPermissions: opts.defaultPermissions,
        extra: opts.fuse, maxWrite: KERNEL_MAX_WRITE,
        entryTimeout: opts.entryTimeout ?? 1, attrTimeout: opts.attrTimeout ?? 1,
        reader: opts.reader ?? 'poll', busyPollUs: opts.busyPollUs ?? DEFAULT_BUSY_POLL_US, serialize: args.singleThreaded, readdirplus: !opts.noReaddirplus, intr: opts.intr,
        sysFor: k.sysAs ? (c) => k.sysAs!(c) : undefined, posixAcl,
        log,
      }).catch(async (e: Error) => {
        await ll.closeAll(); // its descriptors would keep the kernel's mount busy
        throw new LklfuseError(`mountpoint ${mnt}: FUSE mount failed: ${e.message}`);
      });
    } else {
      const ops = lklfuseOps(sys, root, atRoot);
      closeOps = () => ops.closeAll();
      const fuseOpts = [
        'big_writes', `max_write=${MAX_WRITE}`, 'use_ino',
        `fsname=${escapeOption(opts.fsname ?? image)}`, `subtype=${escapeOption(opts.subtype ?? 'lklfuse')}`,
        ...(readOnly ? ['ro'] : []),
        // The kernel runs every request as root: with allow_other, let the host check modes.
        ...(opts.allowOther ? ['allow_other', 'default_permissions'] : opts.defaultPermissions ? ['default_permissions'] : []),
        ...(opts.hardRemove ? ['hard_remove'] : []),
        ...(opts.intr ? ['intr'] : []),
        ...(opts.entryTimeout !== undefined ? [`entry_timeout=${opts.entryTimeout}`] : []),
        ...(opts.attrTimeout !== undefined ? [`attr_timeout=${opts.attrTimeout}`] : []),
        ...(args.debug ? ['debug'] : []),
        ...opts.fuse,
      ];
      fuse = await FuseMount.mount(mnt, ops, { options: fuseOpts, serialize: args.singleThreaded }).catch((e: Error) => {
        throw new LklfuseError(`mountpoint ${mnt}: FUSE mount failed: ${e.message}`);
      });
    }
    debug('FUSE mount %d live at %s (%s transport)', fuse.mountId, mnt, transport.kind);
    if (args.debug) log(`lklfuse: ${mnt}: ${transport.kind} transport (${transport.why})`);
    reportToParent({ ok: true });
    notifySystemd();

    const reason = await new Promise<string>((resolve) => {
      if (signalled) return resolve(signalled);
      // Unmounted already (fusermount -u right after the mount appeared): its 'unmounted'
      // went out before anyone listened.
      if (fuse.gone) return resolve('external unmount');
      onSignal = resolve;
      fuse.once('unmounted', () => resolve('external unmount'));
    });
    debug('shutting down: %s', reason);
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      process.removeAllListeners(sig);
      process.on(sig, () => debug('%s ignored: already shutting down', sig));
    }

    let status = EXIT_OK;
    try {
      await fuse.unmount();
    } catch (e) {
      log(`lklfuse: ${(e as Error).message}`);
      status = EXIT_FAILURE;
    }
    await closeOps();
    await leaveChroot(sys, outsideFd);
    outsideFd = -1;
    const r = await kernel.umountDev(diskId, opts.part, 0, UMOUNT_TIMEOUT_MS);
    mounted = false;
    if (r < 0) {
      log(`lklfuse: ${image}: unmount in the kernel failed: ${strerror(r)}`);
      status = EXIT_FAILURE;
    }
    await kernel.diskRemove(diskId);
    diskId = -1;
    await kernel.halt();
    kernel = undefined;
    process.removeAllListeners('SIGUSR1');
    process.removeAllListeners('SIGUSR2');
    releaseLock?.();
    return status;
  } catch (e) {
    await cleanup();
    if (e instanceof LklfuseError) return fail(e);
    const msg = `internal error: ${(e as Error)?.stack ?? String(e)}`;
    return fail(new LklfuseError(msg));
  }
}

/*
 * Undoes the chroot into the mounted filesystem, so that umountDev finds /mnt/vdX again (a
 * path it would otherwise resolve inside the chroot, failing ENOENT). lklfuse.c unmounts
 * "/" instead; here fchdir to a descriptor of the old root and chroot(".") get out.
 */
async function leaveChroot(sys: Sys, outsideFd: number): Promise<void> {
  if (outsideFd < 0) return;
  if ((await sys.fchdir(outsideFd)) === 0 && (await sys.chroot('.')) === 0) await sys.chdir('/');
  await sys.close(outsideFd);
}

function fail(e: LklfuseError): number {
  const line = `lklfuse: ${e.message}`;
  if (readyFd === undefined || logFd !== undefined) log(line);
  reportToParent({ ok: false, status: e.status, message: line });
  return e.status;
}

/**
 * Background run: starts `argv` again detached as a foreground daemon (with
 * DAEMON_NODE_FLAGS) and waits until it reports. Resolves to the exit status for this
 * (parent) process.
 */
export function runBackground(script: string, argv: string[], logFile?: string): Promise<number> {
  return new Promise((resolve) => {
    let out: 'ignore' | number = 'ignore';
    if (logFile) {
      try { out = fs.openSync(path.resolve(logFile), 'a'); } catch { /* the daemon reports it */ }
    }
    const child = spawn(process.execPath, [...daemonExecArgv(process.execArgv), script, ...argv, '-f'], {
      detached: true,
      stdio: ['ignore', out, out, 'pipe'],
      env: { ...process.env, [READY_FD_ENV]: '3' },
    });
    if (typeof out === 'number') fs.closeSync(out);
    const pipe = child.stdio[3] as NodeJS.ReadableStream;
    let buf = '';
    let answered = false;
    const answer = (status: number, message?: string) => {
      if (answered) return;
      answered = true;
      if (message) process.stderr.write(message + '\n');
      child.unref();
      (pipe as unknown as { destroy(): void }).destroy();
      resolve(status);
    };
    pipe.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      try {
        const msg = JSON.parse(buf.slice(0, nl)) as { ok: boolean; status?: number; message?: string };
        answer(msg.ok ? EXIT_OK : msg.status ?? EXIT_FAILURE, msg.ok ? undefined : msg.message);
      } catch {
        answer(EXIT_FAILURE, 'lklfuse: the daemon sent a garbled report');
      }
    });
    child.on('error', (e) => answer(EXIT_FAILURE, `lklfuse: cannot start the daemon: ${e.message}`));
    // A failing daemon reports, then exits: read the report before looking at the exit.
    let ended = false;
    let exited: string | undefined;
    const onGone = () => {
      if (ended && exited) answer(EXIT_FAILURE, `lklfuse: the daemon ${exited} before the mount was live`);
    };
    pipe.on('end', () => { ended = true; onGone(); });
    pipe.on('error', () => { ended = true; onGone(); });
    child.on('exit', (code, sig) => { exited = sig ? `was killed by ${sig}` : `exited with status ${code}`; onGone(); });
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(sig, () => { child.kill('SIGTERM'); answer(EXIT_FAILURE, `lklfuse: interrupted (${sig})`); });
    }
  });
}
