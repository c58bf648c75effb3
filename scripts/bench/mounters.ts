/*
 * The three ways the benchmark mounts an image on a directory: the host kernel (loop
 * mount), fuse2fs, and lklfuse. Each mounter knows how to mount, unmount (waiting until a
 * FUSE daemon has exited, i.e. written everything back), abort a hung mount, and, for
 * FUSE daemons, track the daemon's peak resident set size (VmHWM) across every mount.
 */
import fs from 'node:fs';
import { alive, describeRun, findProcesses, firstLine, isMounted, must, run, sleep, vmHwmKiB, waitFor } from './util.js';

/** lklfuse: over its kernel transport (/dev/fuse itself); lklfuse-fn: over fuse-native (libfuse 2). */
export type MounterName = 'host' | 'fuse2fs' | 'lklfuse' | 'lklfuse-fn';
export const MOUNTERS: readonly MounterName[] = ['host', 'fuse2fs', 'lklfuse', 'lklfuse-fn'];
/** The -o transport= of each lklfuse mounter. */
export const LKLFUSE_TRANSPORT: Partial<Record<MounterName, string>> = { lklfuse: 'kernel', 'lklfuse-fn': 'fuse-native' };

const MOUNT_TIMEOUT_MS = 120_000;
/** A FUSE daemon writes back at unmount; give it this long to exit before SIGTERM. */
const EXIT_TIMEOUT_MS = 300_000;

/** Set once the benchmark is being interrupted: no new mounts from then on. */
let stopping = false;
export function stopMounting(): void { stopping = true; }

export abstract class Mounter {
  abstract readonly name: MounterName;
  /** Daemon pid while mounted (FUSE mounters). */
  pid: number | undefined;
  /** Highest VmHWM seen over all of this mounter's daemons, KiB. */
  peakKiB = 0;
  mounted = false;
  /** Why the current mount is unusable (set by abort()). */
  broken: string | undefined;
  /** Problems seen while unmounting (daemon did not exit cleanly, ...). */
  readonly warnings: string[] = [];
  private sampler: NodeJS.Timeout | undefined;

  constructor(readonly image: string, readonly mnt: string) {}

  /** Extra mount options (FUSE options: `-o` of the daemon) for the current mount. */
  protected mountOpts: string[] = [];

  protected abstract doMount(): Promise<void>;
  protected abstract findDaemon(): number | undefined;

  /**
   * Mounts; `fuseOpts` are options for a FUSE daemon (e.g. entry_timeout=0), which the
   * host mounter, whose caches are its kernel's, does not take.
   */
  async mount(fuseOpts: string[] = []): Promise<void> {
    if (this.mounted) throw new Error(`${this.name}: already mounted`);
    this.mountOpts = fuseOpts;
    if (isMounted(this.mnt)) throw new Error(`${this.mnt} is already a mount point`);
    if (stopping) throw new Error('interrupted');
    this.broken = undefined;
    await this.doMount();
    if (!(await waitFor(() => isMounted(this.mnt), 10_000))) throw new Error('mount command succeeded but no mount appeared');
    this.mounted = true;
    this.pid = this.findDaemon();
    if (stopping) { // the cleanup may already have passed this mounter
      await this.unmount();
      throw new Error('interrupted');
    }
    if (this.pid !== undefined) {
      this.sample();
      this.sampler = setInterval(() => this.sample(), 100);
    }
  }

  private sample(): void {
    if (this.pid === undefined) return;
    const k = vmHwmKiB(this.pid);
    if (k !== undefined && k > this.peakKiB) this.peakKiB = k;
  }

  /** Unmounts; for a FUSE daemon, waits until the process is gone. */
  async unmount(): Promise<void> {
    if (!this.mounted) return;
    this.sample();
    try {
      if (isMounted(this.mnt)) await this.doUnmount(); // abort() may have unmounted already
    } finally {
      this.mounted = false;
      await this.waitDaemonExit();
      if (this.sampler) clearInterval(this.sampler);
      this.sampler = undefined;
      this.pid = undefined;
    }
  }

  protected async doUnmount(): Promise<void> {
    let r = await run('fusermount', ['-u', this.mnt], { timeoutMs: 60_000 });
    if (r.status !== 0) r = await run('umount', [this.mnt], { timeoutMs: 60_000 });
    if (r.status !== 0) {
      this.warnings.push(`unmount failed (${describeRun(r)}); lazy unmount`);
      await run('umount', ['-l', this.mnt], { timeoutMs: 60_000 });
    }
  }

  private async waitDaemonExit(): Promise<void> {
    const pid = this.pid;
    if (pid === undefined) return;
    if (await waitFor(() => { this.sample(); return !alive(pid); }, EXIT_TIMEOUT_MS, 100)) return;
    this.warnings.push(`daemon ${pid} did not exit within ${EXIT_TIMEOUT_MS / 1000}s of unmount; SIGTERM`);
    try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
    if (await waitFor(() => !alive(pid), 10_000)) return;
    this.warnings.push(`daemon ${pid} ignored SIGTERM; SIGKILL`);
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    await waitFor(() => !alive(pid), 10_000);
  }

  /** A workload hung or the mount misbehaves: kill the daemon and lazily unmount. */
  async abort(reason: string): Promise<void> {
    this.broken = reason;
    if (this.pid !== undefined) {
      try { process.kill(this.pid, 'SIGKILL'); } catch { /* gone */ }
    }
    if (isMounted(this.mnt)) await run('umount', ['-l', this.mnt], { timeoutMs: 30_000 });
  }
}

/** The host kernel's own ext4 through a loop device. */
export class HostMounter extends Mounter {
  readonly name = 'host' as const;
  protected async doMount(): Promise<void> {
    await must('mount', ['-o', 'loop', this.image, this.mnt], MOUNT_TIMEOUT_MS);
  }
  protected findDaemon(): undefined { return undefined; }
  protected override async doUnmount(): Promise<void> {
    const r = await run('umount', [this.mnt], { timeoutMs: 120_000 });
    if (r.status !== 0) {
      this.warnings.push(`umount failed (${describeRun(r)}); lazy unmount`);
      await run('umount', ['-l', this.mnt], { timeoutMs: 30_000 });
    }
    await detachLoops(this.image);
  }
  override async abort(reason: string): Promise<void> {
    await super.abort(reason);
    await detachLoops(this.image);
  }
}

/** Detaches every loop device backed by `image` (mount -o loop normally autoclears). */
export async function detachLoops(image: string): Promise<void> {
  const r = await run('losetup', ['-j', image], { timeoutMs: 30_000 });
  for (const line of r.stdout.split('\n')) {
    const dev = line.split(':')[0];
    if (dev && dev.startsWith('/dev/loop')) await run('losetup', ['-d', dev], { timeoutMs: 30_000 });
  }
}

/** e2fsprogs' fuse2fs, read-write, started as root (it daemonizes once the mount is live). */
export class Fuse2fsMounter extends Mounter {
  readonly name = 'fuse2fs' as const;
  protected async doMount(): Promise<void> {
    const r = await run('fuse2fs', [this.image, this.mnt, ...(this.mountOpts.length ? ['-o', this.mountOpts.join(',')] : [])], { timeoutMs: MOUNT_TIMEOUT_MS });
    if (r.status !== 0) throw new Error(`fuse2fs: ${describeRun(r)}`);
  }
  protected findDaemon(): number | undefined {
    return findProcesses([this.image, this.mnt]).find((pid) => {
      try { return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'fuse2fs'; } catch { return false; }
    });
  }
}

/** lkl-ts's lklfuse in its default background mode (returns once the mount is live). */
export class LklfuseMounter extends Mounter {
  constructor(image: string, mnt: string, readonly script: string, readonly options: string[], readonly logFile: string,
    readonly name: 'lklfuse' | 'lklfuse-fn' = 'lklfuse') {
    super(image, mnt);
  }
  protected async doMount(): Promise<void> {
    const opts = [`log=${this.logFile}`, `transport=${LKLFUSE_TRANSPORT[this.name]}`, ...this.options, ...this.mountOpts].join(',');
    const r = await run(process.execPath, [this.script, this.image, this.mnt, '-o', opts], { timeoutMs: MOUNT_TIMEOUT_MS });
    if (r.status !== 0) {
      // A timed-out start may have left a daemon behind.
      for (const pid of findProcesses([this.script, this.image, this.mnt])) {
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
      if (isMounted(this.mnt)) await run('umount', ['-l', this.mnt]);
      throw new Error(firstLine(r.stderr.replace(/^lklfuse: /gm, '')) || lastLogLine(this.logFile) || describeRun(r));
    }
  }
  protected findDaemon(): number | undefined {
    return findProcesses([this.script, this.image, this.mnt, '-f'])[0];
  }
}

function lastLogLine(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').pop() ?? '';
  } catch {
    return '';
  }
}

/** Every mounter still mounted, for emergency cleanup. */
export async function unmountAll(ms: Mounter[]): Promise<void> {
  for (const m of ms) {
    try {
      if (m.mounted) await m.unmount();
    } catch {
      await m.abort('cleanup');
    }
    if (m instanceof HostMounter) await detachLoops(m.image);
    await sleep(0);
  }
}
