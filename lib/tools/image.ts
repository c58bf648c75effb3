/*
 * What cptofs, cpfromfs and fs2tar share: checking the image on the host, booting the
 * kernel, attaching the image as a virtio disk, detecting the filesystem type (as lklfuse
 * does, lib/fuse/detect.ts), mounting it in the kernel, and tearing all of that down again so
 * the image is left clean whatever happened (LKL's tools/lkl/cptofs.c and fs2tar.c main()).
 */
import fs from 'node:fs';
import createDebug from 'debug';
import type { Argv } from 'yargs';
import type { Kernel } from '../index.js';
import type { Sys } from '../kernel/include/sys.js';
import {
  EBADMSG, EINVAL, ENODEV, EUCLEAN, MS_RDONLY, MS_REMOUNT, O_DIRECTORY, O_RDONLY, strerror,
} from '../kernel/include/uapi.js';
import { detectFs } from '../fuse/detect.js';
import { OptionError, SUPPORTED_TYPES, normalizeType, parseFsOptions } from '../fuse/options.js';
import { COMPLETION_OPTION, answerCompletion, printCompletionScript } from './completion.js';

const debug = createDebug('lkl:tools');

/** statfs f_flags: mounted read-only (include/linux/statfs.h ST_RDONLY). */
const ST_RDONLY = 1;
const UMOUNT_TIMEOUT_MS = 60_000;

/** An error the tool reports as one line, `PROG: message`, exiting with `status`. */
export class ToolError extends Error {
  constructor(message: string, readonly status = 1) { super(message); }
}

/** strerror for a host (Node) error. */
export function hostError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (typeof err?.errno === 'number') return strerror(err.errno);
  return err?.message ?? String(e);
}

/** The errno (positive) of a host error, or 0. */
export function hostErrno(e: unknown): number {
  const n = (e as NodeJS.ErrnoException)?.errno;
  return typeof n === 'number' ? Math.abs(n) : 0;
}

export interface ImageOptions {
  prog: string;
  image: string;
  /** Filesystem type as the user gave it; undefined = detect. */
  type?: string;
  /** Partition number, 0 = the whole image. */
  part: number;
  /** The -o lists (comma-separated filesystem mount options). */
  mountOptions: string[];
  /** Attach the image read-only and mount read-only. */
  readOnly: boolean;
  /**
   * Mount read-only first and switch to read-write only when `goWritable()` is called (so
   * that checks made before writing leave the image untouched).
   */
  deferWrite?: boolean;
  memMiB?: number;
  /** Print the kernel's messages on stderr. */
  printk?: boolean;
}

/** Parses -t: the kernel's name for the type, or a ToolError. */
export function checkType(t: string | undefined): string | undefined {
  if (t === undefined) return undefined;
  const n = normalizeType(t);
  if (!n) throw new ToolError(`unknown filesystem type '${t}' (supported: ${SUPPORTED_TYPES.join(', ')})`);
  return n;
}

/** Parses the -o lists into MS_* flags and the filesystem's own data string. */
export function parseMountOptions(lists: string[]): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const l of lists) {
    try {
      const r = parseFsOptions(l);
      flags |= r.flags;
      if (r.data) data.push(r.data);
    } catch (e) {
      if (e instanceof OptionError) throw new ToolError(`bad mount option: ${e.message}`);
      throw e;
    }
  }
  return { flags, data: data.join(',') };
}

/** Checks the image file on the host before anything else happens. */
export function checkImage(image: string, readOnly: boolean): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(image);
  } catch (e) {
    throw new ToolError(`${image}: ${hostError(e)}`);
  }
  if (st.isDirectory()) throw new ToolError(`${image}: Is a directory (expected a disk image)`);
  if (!st.isFile() && !st.isBlockDevice()) throw new ToolError(`${image}: not a regular file or block device`);
  try {
    fs.accessSync(image, fs.constants.R_OK | (readOnly ? 0 : fs.constants.W_OK));
  } catch (e) {
    throw new ToolError(`${image}: ${hostError(e)}`);
  }
  if (st.isFile() && st.size < 2048) throw new ToolError(`${image}: too small to hold a filesystem (${st.size} bytes)`);
}

const diskName = (id: number, part: number) => `/dev/vd${String.fromCharCode(97 + id)}${part ? part : ''}`;

/** A mounted image. Always call close(), also after errors. */
export class ImageSession {
  kernel: Kernel | undefined;
  diskId = -1;
  mounted = false;
  /** Where the filesystem is mounted in the kernel ("/mnt/vda"). */
  mnt = '';
  /** The filesystem type mounted (ext4, vfat, ...). */
  type = '';
  private mountFlags = 0;
  private mountData = '';
  private outsideFd = -1;

  constructor(readonly o: ImageOptions) {}

  get sys(): Sys {
    if (!this.kernel) throw new Error('the kernel is not running');
    return this.kernel.sys;
  }

  /** Checks the image, boots, attaches, detects and mounts. Throws ToolError. */
  async open(): Promise<void> {
    const o = this.o;
    let type = checkType(o.type);
    const { flags, data } = parseMountOptions(o.mountOptions);
    this.mountFlags = flags | (o.readOnly ? MS_RDONLY : 0);
    this.mountData = data;
    if (!Number.isInteger(o.part) || o.part < 0 || o.part > 255) throw new ToolError(`invalid partition number '${o.part}'`);
    checkImage(o.image, o.readOnly);

    const print = o.printk ? (m: string) => process.stderr.write(m.endsWith('\n') ? m : m + '\n') : undefined;
    // Loaded here, not at the top: --help and shell completion do without the kernel.
    const { startKernel } = await import('../index.js');
    this.kernel = await startKernel({ memMiB: o.memMiB ?? 64, print });
    const k = this.kernel;
    let id: number;
    try {
      id = await k.diskAdd({ path: o.image, readOnly: o.readOnly });
    } catch (e) {
      throw new ToolError(`${o.image}: cannot attach the image: ${hostError(e)}`);
    }
    if (id < 0) throw new ToolError(`${o.image}: cannot attach the image: ${strerror(id)}`);
    this.diskId = id;

    const dev = diskName(id, o.part);
    const fd = await k.sys.open(dev, O_RDONLY);
    if (fd < 0) {
      throw new ToolError(o.part ? `${o.image}: no partition ${o.part} (${strerror(fd)})` : `${o.image}: cannot open ${dev} in the kernel: ${strerror(fd)}`);
    }
    const head = new Uint8Array(65536);
    const n = await k.sys.pread64(fd, head, 0);
    await k.sys.close(fd);
    if (n < 0) throw new ToolError(`${o.image}: cannot read: ${strerror(n)}`);
    const det = detectFs(head.subarray(0, n));
    debug('%s: found %s', dev, det.reason);
    if (!type) {
      if (!det.type) {
        throw new ToolError(`${o.image}${o.part ? ` partition ${o.part}` : ''}: cannot detect the filesystem type: found ${det.reason}` +
          ` (supported: ${SUPPORTED_TYPES.join(', ')}${det.partitions ? '; choose a partition with -P N' : '; or give -t TYPE'})`);
      }
      type = det.type;
    }

    const first = this.mountFlags | (o.deferWrite ? MS_RDONLY : 0);
    let mp = await k.mountDev(id, o.part, type, first, data);
    if (mp === -ENODEV && (type === 'ext2' || type === 'ext3')) {
      type = 'ext4'; // ext4 serves ext2 and ext3, as in Linux
      mp = await k.mountDev(id, o.part, type, first, data);
    }
    if (typeof mp === 'number') {
      throw new ToolError(`${o.image}: cannot mount the ${type} filesystem: ${strerror(mp)}` +
        (mp === -EINVAL || mp === -EUCLEAN || mp === -EBADMSG ? ' (corrupt or unsupported filesystem, or wrong -t/-o?)' : ''));
    }
    this.mounted = true;
    this.mnt = mp;
    this.type = type;
    debug('mounted %s (%s) at %s', dev, type, mp);
    // Work inside the image: absolute symlinks and '..' then resolve within it (lklfuse does
    // the same), and image paths are what the user sees.
    this.outsideFd = await k.sys.open('/', O_RDONLY | O_DIRECTORY);
    const r = await k.sys.chroot(mp);
    if (r < 0) throw new ToolError(`${o.image}: cannot enter the mounted filesystem: ${strerror(r)}`);
    await k.sys.chdir('/');
  }

  /** Leaves the chroot, so that the unmount finds /mnt/vdX again. */
  private async leaveChroot(): Promise<void> {
    const sys = this.sys;
    if (this.outsideFd < 0) return;
    if ((await sys.fchdir(this.outsideFd)) === 0 && (await sys.chroot('.')) === 0) await sys.chdir('/');
    await sys.close(this.outsideFd);
    this.outsideFd = -1;
  }

  /** Whether the mounted filesystem is read-only now (statfs ST_RDONLY). */
  async isReadOnly(): Promise<boolean> {
    const st = await this.sys.statfs('/');
    return typeof st !== 'number' && (st.flags & ST_RDONLY) !== 0;
  }

  /**
   * After a deferWrite open: remount read-write. Throws a ToolError (EROFS) when the
   * filesystem stays read-only (no write support for it, read-only features, errors).
   */
  async goWritable(): Promise<void> {
    const r = await this.sys.mount(null, '/', null, MS_REMOUNT | (this.mountFlags & ~MS_RDONLY), this.mountData);
    if (r < 0) throw new ToolError(`${this.o.image}: cannot mount the ${this.type} filesystem read-write: ${strerror(r)}`);
    if (await this.isReadOnly()) {
      throw new ToolError(`${this.o.image}: ${strerror(30 /* EROFS */)} (the ${this.type} filesystem mounts only read-only here` +
        (this.type.startsWith('ext') ? ': the image has features lkl-ts does not write (bigalloc, quota, an external journal) or read-only features)' : ')'));
    }
  }

  /**
   * Unmounts (writing everything back), detaches and halts. Resolves to an error message
   * when the unmount failed (the image may then be dirty), or undefined.
   */
  async close(): Promise<string | undefined> {
    const k = this.kernel;
    if (!k) return undefined;
    let problem: string | undefined;
    try {
      await this.leaveChroot();
      if (this.mounted) {
        const s = await k.sys.sync();
        if (s < 0) problem = `${this.o.image}: sync failed: ${strerror(s)}`;
        const r = await k.umountDev(this.diskId, this.o.part, 0, UMOUNT_TIMEOUT_MS);
        if (r < 0) problem = `${this.o.image}: unmount failed: ${strerror(r)}`;
        else this.mounted = false;
      }
      if (this.diskId >= 0) {
        const r = await k.diskRemove(this.diskId);
        if (r < 0 && !problem) problem = `${this.o.image}: cannot detach the image: ${strerror(r)}`;
        this.diskId = -1;
      }
    } finally {
      this.kernel = undefined;
      await k.halt();
    }
    return problem;
  }
}

/** The package version, for --version. */
export function version(): string {
  for (const rel of ['../../../package.json', '../../package.json']) {
    try {
      return (JSON.parse(fs.readFileSync(new URL(rel, import.meta.url), 'utf8')) as { version: string }).version;
    } catch { /* try the next */ }
  }
  return 'unknown';
}

/**
 * The part of the command line every tool parses alike: yargs configured for LKL-style
 * options (repeatable, no number or camel-case conversion, unknown options refused), run
 * without exiting; a parse error is one `PROG: message` line plus the --help hint. Also
 * shell completion (completion.ts): `--completion [SHELL]` prints the script, a completion
 * request from it is answered. Resolves to the parsed arguments, or to the exit status when
 * there is nothing left to do (1 after an error, 0 after completion).
 */
export async function parseCommandLine<T extends { h?: unknown; V?: unknown; _: (string | number)[] }>(
  prog: string, y: Argv<any>, argv: string[]): Promise<T | number> {
  y = y
    .option('completion', COMPLETION_OPTION)
    .parserConfiguration({ 'duplicate-arguments-array': true, 'camel-case-expansion': false, 'parse-positional-numbers': false, 'parse-numbers': false })
    .strictOptions()
    .wrap(Math.min(100, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => { throw err ?? new Error(msg); });
  if (answerCompletion(y, argv, (key) => key === 't' ? [...SUPPORTED_TYPES] : undefined)) return 0;
  const parsed = await y.parseAsync()
    .then((a) => a as unknown as T)
    .catch((e: Error) => usageError(prog, e.message));
  if (typeof parsed === 'number' || parsed.h || parsed.V) return parsed;
  const completion = (parsed as { completion?: unknown }).completion;
  if (completion !== undefined) return printCompletionScript(prog, lastArg(completion) ?? '');
  return parsed;
}

/** A command-line mistake: the message and the --help hint; the exit status is 1. */
export function usageError(prog: string, msg: string): 1 {
  say(prog, `${msg}\nTry '${prog} --help'.`);
  return 1;
}

/** The last value of a repeatable option. */
export function lastArg(v: unknown): string | undefined {
  return (Array.isArray(v) ? v[v.length - 1] : v) as string | undefined;
}

/** Writes `PROG: msg` to stderr. */
export function say(prog: string, msg: string): void {
  process.stderr.write(`${prog}: ${msg}\n`);
}

/** Byte-string path helpers (names in images need not be UTF-8). */
export function joinPath(a: Buffer, name: Buffer | string): Buffer {
  const n = typeof name === 'string' ? Buffer.from(name) : name;
  if (a.length === 0) return Buffer.from(n);
  if (a[a.length - 1] === 0x2f) return Buffer.concat([a, n]);
  return Buffer.concat([a, Buffer.from('/'), n]);
}

/** Path for messages. */
export function show(p: Buffer | string): string {
  return typeof p === 'string' ? p : p.toString('utf8');
}
