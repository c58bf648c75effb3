/*
 * What the page does with an image, without the page: attach a File as a disk, find the
 * filesystem (detectFs, as lklfuse does; partitions from the kernel's scan of the MBR or
 * GPT), mount it, and then list, stat, read, archive and change what is in it, through the
 * kernel's system calls only. Failures are ExplorerErrors whose messages are lklfuse's
 * (lib/fuse/lklfuse.ts), with the page's controls named instead of -o options.
 *
 * The kernel is booted once per page and outlives the images: each image is a disk that is
 * attached, mounted (inside a chroot, so absolute symlinks resolve within the image, as in
 * lklfuse) and, when the next one comes, unmounted and removed.
 */
import { detectFs } from '../fuse/detect.js';
import { SUPPORTED_TYPES } from '../fuse/options.js';
import {
  AT_FDCWD, AT_SYMLINK_NOFOLLOW, EBADMSG, EEXIST, EINVAL, ENODEV, EUCLEAN, MS_RDONLY, MS_REMOUNT,
  O_CREAT, O_DIRECTORY, O_EXCL, O_NOFOLLOW, O_RDONLY, O_WRONLY, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO,
  S_IFLNK, S_IFMT, S_IFREG, STATX_BASIC_STATS, STATX_BTIME, major, minor, strerror, type statx,
} from '../kernel/include/uapi.js';
import type { Sys } from '../kernel/include/sys.js';
import { entryHeader, padding, trailer, type TarEntry, type TarType } from '../tools/tar-format.js';
import { opendir, startWebKernel, type WebDisk, type WebKernel } from './kernel.js';

/** statfs f_flags: mounted read-only. */
const ST_RDONLY = 1;
const EOPNOTSUPP = 95, ENODATA = 61;
const CHUNK = 1 << 20;

export class ExplorerError extends Error {}

/*
 * The kernel runs on the page's thread. A read that the page cache answers never waits for
 * the disk, so a long walk over cached data would keep the thread to itself: let the page
 * draw and take input every few tens of milliseconds.
 */
let lastYield = 0;
async function breathe(): Promise<void> {
  const now = performance.now();
  if (now - lastYield < 30) return;
  await new Promise((r) => setTimeout(r, 0));
  lastYield = performance.now();
}

export type Progress = (done: number, total: number) => void;

export interface OpenOptions {
  /** Filesystem type; undefined = detect. */
  type?: string;
  /** Partition number, 0 = the whole disk; undefined = the whole disk if it holds a filesystem, else the first partition that does. */
  part?: number;
  readOnly?: boolean;
}

export interface Mounted {
  image: string;
  disk: WebDisk;
  part: number;
  type: string;
  /** What detection found, in words. */
  found: string;
  readOnly: boolean;
  flags: number;
}

export interface DirEntry { name: string; path: string; isDir: boolean; type: number }

export interface Details {
  path: string;
  st: statx;
  linkTarget?: string;
  xattrs: [string, Uint8Array][];
}

export const joinPath = (dir: string, name: string) => (dir === '/' ? `/${name}` : `${dir}/${name}`);
export const baseName = (p: string) => p.slice(p.lastIndexOf('/') + 1);
export const dirName = (p: string) => { const i = p.lastIndexOf('/'); return i <= 0 ? '/' : p.slice(0, i); };

export class Explorer {
  kernel: WebKernel | null = null;
  mounted: Mounted | null = null;
  /** The partitions of the image opened last (also when it did not mount). */
  partitions = new Map<number, string>();
  private outsideFd = -1;

  constructor(readonly print: (msg: string) => void, readonly memMiB = 64) {}

  get sys(): Sys {
    if (!this.kernel) throw new ExplorerError('the kernel is not running');
    return this.kernel.sys;
  }

  private async boot(): Promise<WebKernel> {
    this.kernel ??= await startWebKernel({ print: this.print, memMiB: this.memMiB });
    return this.kernel;
  }

  /** Attaches and mounts the image; the previous one is closed first. Throws ExplorerError. */
  async open(blob: Blob, image: string, o: OpenOptions = {}, onRead?: (bytes: number) => void): Promise<Mounted> {
    await this.close();
    this.partitions = new Map();
    const k = await this.boot();
    if (blob.size < 2048) throw new ExplorerError(`${image}: too small to hold a filesystem (${blob.size} bytes)`);
    let type: string | undefined = o.type || undefined;
    if (type && !(SUPPORTED_TYPES as readonly string[]).includes(type)) {
      throw new ExplorerError(`unknown filesystem type '${type}' (supported: ${SUPPORTED_TYPES.join(', ')})`);
    }
    const disk = await k.diskAddBlob(blob, { readOnly: !!o.readOnly, onRead });
    if (typeof disk === 'number') throw new ExplorerError(`${image}: cannot attach the image: ${strerror(disk)}`);
    this.partitions = disk.partitions;
    try {
      return await this.mount(k, disk, image, type, o);
    } catch (e) {
      await k.diskRemove(disk.id);
      throw e;
    }
  }

  private async probe(k: WebKernel, disk: WebDisk, image: string, part: number): Promise<ReturnType<typeof detectFs>> {
    const name = part ? disk.partitions.get(part) : disk.name;
    const dev = `/dev/${name ?? `${disk.name}${part}`}`;
    const fd = await k.sys.open(dev, O_RDONLY);
    if (fd < 0) {
      throw new ExplorerError(part ? `${image}: no partition ${part} (${strerror(fd)})` : `${image}: cannot open ${dev} in the kernel: ${strerror(fd)}`);
    }
    const head = new Uint8Array(65536);
    const n = await k.sys.pread64(fd, head, 0);
    await k.sys.close(fd);
    if (n < 0) throw new ExplorerError(`${image}: cannot read: ${strerror(n)}`);
    return detectFs(head.subarray(0, n));
  }

  private async mount(k: WebKernel, disk: WebDisk, image: string, type: string | undefined, o: OpenOptions): Promise<Mounted> {
    let part = o.part ?? 0;
    let det = await this.probe(k, disk, image, part);
    if (o.part === undefined && !det.type && disk.partitions.size) {
      /* a partitioned disk: the first partition with a filesystem on it */
      for (const p of [...disk.partitions.keys()].sort((a, b) => a - b)) {
        const d = await this.probe(k, disk, image, p);
        if (d.type) { part = p; det = d; break; }
      }
    }
    const where = part ? ` partition ${part}` : '';
    this.print(`${image}${where}: found ${det.reason}`);
    if (!type) {
      if (!det.type) {
        throw new ExplorerError(`${image}${where}: cannot detect the filesystem type: found ${det.reason}` +
          ` (supported: ${SUPPORTED_TYPES.join(', ')}${disk.partitions.size || det.partitions ? '; choose a partition' : '; or choose the type'})`);
      }
      type = det.type;
    }
    const flags = o.readOnly ? MS_RDONLY : 0;
    let mp = await k.mountDev(disk.id, part, type, flags, null);
    if (mp === -ENODEV && (type === 'ext2' || type === 'ext3')) {
      mp = await k.mountDev(disk.id, part, 'ext4', flags, null);   /* ext4 serves ext2/3 */
    }
    if (typeof mp === 'number') {
      throw new ExplorerError(`${image}${where}: cannot mount the ${type} filesystem: ${strerror(mp)}` +
        (mp === -EINVAL || mp === -EUCLEAN || mp === -EBADMSG ? ' (corrupt or unsupported filesystem?)' : ''));
    }
    const sys = k.sys;
    this.outsideFd = await sys.open('/', O_RDONLY | O_DIRECTORY);
    const r = await sys.chroot(mp);
    if (r < 0) {
      await sys.close(this.outsideFd);
      this.outsideFd = -1;
      await k.umountDev(disk.id, part);
      throw new ExplorerError(`${image}: cannot enter the mounted filesystem: ${strerror(r)}`);
    }
    await sys.chdir('/');
    const sf = await sys.statfs('/');
    const readOnly = !!o.readOnly || (typeof sf !== 'number' && (sf.flags & ST_RDONLY) !== 0);
    this.mounted = { image, disk, part, type, found: det.reason, readOnly, flags };
    this.print(`mounted ${image}${where} (${type}${readOnly ? ', read-only' : ''})`);
    return this.mounted;
  }

  /** Unmounts and removes the current image (what was written stays in its overlay, then goes). */
  async close(): Promise<void> {
    const m = this.mounted, k = this.kernel;
    if (!m || !k) return;
    this.mounted = null;
    const sys = k.sys;
    if (this.outsideFd >= 0) {
      if ((await sys.fchdir(this.outsideFd)) === 0 && (await sys.chroot('.')) === 0) await sys.chdir('/');
      await sys.close(this.outsideFd);
      this.outsideFd = -1;
    }
    await sys.sync();
    const u = await k.umountDev(m.disk.id, m.part, 0, 5000);
    if (u < 0) this.print(`${m.image}: unmount failed: ${strerror(u)}`);
    const r = await k.diskRemove(m.disk.id);
    if (r < 0) {
      /* the kernel holds on to the disk: start over with a new one */
      this.print(`${m.image}: cannot detach the image: ${strerror(r)}; restarting the kernel`);
      await k.halt();
      this.kernel = null;
    }
  }

  async list(dir: string): Promise<DirEntry[]> {
    const d = await opendir(this.sys, dir);
    if (typeof d === 'number') throw new ExplorerError(`${dir}: ${strerror(d)}`);
    const out: DirEntry[] = [];
    try {
      for (;;) {
        const e = await d.readdir();
        if (e === null) break;
        if (typeof e === 'number') throw new ExplorerError(`${dir}: ${strerror(e)}`);
        if (e.name === '.' || e.name === '..') continue;
        let isDir = e.type === 4 /* DT_DIR */;
        if (e.type === 0 /* DT_UNKNOWN */) {
          const st = await this.sys.lstat(joinPath(dir, e.name));
          isDir = typeof st !== 'number' && (st.mode & S_IFMT) === S_IFDIR;
        }
        out.push({ name: e.name, path: joinPath(dir, e.name), isDir, type: e.type });
      }
    } finally {
      await d.close();
    }
    return out.sort((a, b) => (a.isDir === b.isDir ? (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) : a.isDir ? -1 : 1));
  }

  async details(path: string): Promise<Details> {
    const st = await this.sys.statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME);
    if (typeof st === 'number') throw new ExplorerError(`${path}: ${strerror(st)}`);
    const out: Details = { path, st, xattrs: [] };
    if ((st.mode & S_IFMT) === S_IFLNK) {
      const t = await this.sys.readlink(path);
      if (typeof t === 'string') out.linkTarget = t;
    }
    out.xattrs = await this.xattrs(path);
    return out;
  }

  private async xattrs(path: string): Promise<[string, Uint8Array][]> {
    const names = await this.sys.llistxattr(path);
    if (typeof names === 'number') {
      if (names === -EOPNOTSUPP) return [];
      throw new ExplorerError(`${path}: cannot list extended attributes: ${strerror(names)}`);
    }
    const out: [string, Uint8Array][] = [];
    for (const n of names) {
      const v = await this.sys.lgetxattr(path, n);
      if (typeof v === 'number') {
        if (v === -ENODATA) continue;
        throw new ExplorerError(`${path}: cannot read extended attribute ${n}: ${strerror(v)}`);
      }
      out.push([n, v]);
    }
    return out;
  }

  /** A regular file's contents, read in 1 MiB system calls. */
  async readFile(path: string, progress?: Progress, limit = Infinity): Promise<Uint8Array> {
    const sys = this.sys;
    const fd = await sys.open(path, O_RDONLY | O_NOFOLLOW, 0);
    if (fd < 0) throw new ExplorerError(`${path}: ${strerror(fd)}`);
    try {
      const st = await sys.fstat(fd);
      if (typeof st === 'number') throw new ExplorerError(`${path}: ${strerror(st)}`);
      const size = Math.min(st.size, limit);
      const out = new Uint8Array(size);
      let done = 0;
      while (done < size) {
        const n = await sys.pread64(fd, out.subarray(done, Math.min(size, done + CHUNK)), done);
        if (n < 0) throw new ExplorerError(`${path}: read error: ${strerror(n)}`);
        if (n === 0) break;
        done += n;
        progress?.(done, size);
        await breathe();
      }
      return done === size ? out : out.subarray(0, done);
    } finally {
      await sys.close(fd);
    }
  }

  /** A directory and everything under it as a pax tar archive (fs2tar's writer). */
  async tar(dir: string, progress?: Progress): Promise<Blob> {
    const parts: Uint8Array[] = [];
    let written = 0;
    const push = (b: Uint8Array) => { if (b.length) { parts.push(b); written += b.length; } };
    const links = new Map<string, string>();
    const enc = new TextEncoder();
    let files = 0;
    const entry = async (abs: string, rel: string): Promise<void> => {
      await breathe();
      const d = await this.details(abs);
      const st = d.st;
      const type = tarType(st.mode);
      if (!type) { this.print(`${abs}: skipping a socket: tar cannot hold it`); return; }
      const e: TarEntry = {
        path: enc.encode(rel), type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0,
        mtime: st.mtime, atime: st.atime, ctime: st.ctime,
      };
      if (d.xattrs.length) e.xattrs = new Map(d.xattrs);
      if (type !== 'dir' && st.nlink > 1) {
        const key = String(st.ino);
        const first = links.get(key);
        if (first !== undefined) {
          e.type = 'hardlink';
          e.linkpath = enc.encode(first);
          push(entryHeader(e));
          return;
        }
        links.set(key, rel);
      }
      if (type === 'symlink') e.linkpath = enc.encode(d.linkTarget ?? '');
      if (type === 'chr' || type === 'blk') { e.devmajor = major(st.rdev); e.devminor = minor(st.rdev); }
      if (type === 'file') {
        const data = await this.readFile(abs);
        e.size = data.length;
        push(entryHeader(e));
        push(data);
        push(padding(data.length));
        progress?.(++files, 0);
        return;
      }
      push(entryHeader(e));
      if (type === 'dir') {
        for (const c of await this.list(abs)) await entry(c.path, rel === '' ? c.name : `${rel}/${c.name}`);
      }
    };
    if (dir === '/') {
      for (const c of await this.list('/')) await entry(c.path, c.name);
    } else {
      await entry(dir, baseName(dir));
    }
    push(trailer(written));
    return new Blob(parts as BlobPart[], { type: 'application/x-tar' });
  }

  async mkdir(path: string): Promise<void> {
    this.check(await this.sys.mkdir(path, 0o755), `${path}: cannot create the directory`);
  }

  async createFile(path: string, data: Uint8Array): Promise<void> {
    const sys = this.sys;
    const fd = await sys.open(path, O_WRONLY | O_CREAT | O_EXCL, 0o644);
    this.check(fd, `${path}: cannot create the file`);
    try {
      let done = 0;
      while (done < data.length) {
        const n = await sys.write(fd, data.subarray(done, Math.min(data.length, done + CHUNK)));
        this.check(n, `${path}: write error`);
        done += n;
      }
    } finally {
      await sys.close(fd);
    }
  }

  async rename(from: string, to: string): Promise<void> {
    if ((await this.sys.lstat(to)) !== -2 /* ENOENT */) this.check(-EEXIST, `${to}: cannot rename ${from} to it`);
    this.check(await this.sys.rename(from, to), `${from}: cannot rename to ${to}`);
  }

  /** Deletes a file, or a directory with everything in it. */
  async remove(path: string): Promise<void> {
    const st = await this.sys.lstat(path);
    if (typeof st === 'number') this.check(st, `${path}: cannot delete`);
    else if ((st.mode & S_IFMT) === S_IFDIR) {
      for (const c of await this.list(path)) await this.remove(c.path);
      this.check(await this.sys.rmdir(path), `${path}: cannot delete the directory`);
    } else {
      this.check(await this.sys.unlink(path), `${path}: cannot delete`);
    }
  }

  /**
   * The whole image as modified. A read-write mount is first switched to read-only, so
   * that everything is written back and the filesystem is marked clean (FAT's dirty bit,
   * ext4's state and journal), then back to read-write.
   */
  async image(): Promise<Blob> {
    const m = this.mounted;
    if (!m) throw new ExplorerError('no image is open');
    const sys = this.sys;
    this.check(await sys.sync(), `${m.image}: sync failed`);
    let remounted = false;
    if (!m.readOnly) {
      const r = await sys.mount(null, '/', null, MS_REMOUNT | MS_RDONLY, null);
      if (r < 0) this.print(`${m.image}: cannot switch to read-only for the download (${strerror(r)}); the image may be marked in use`);
      else remounted = true;
    }
    try {
      return m.disk.store.snapshot();
    } finally {
      if (remounted) {
        const r = await sys.mount(null, '/', null, MS_REMOUNT | m.flags, null);
        if (r < 0) {
          m.readOnly = true;
          this.print(`${m.image}: cannot mount read-write again: ${strerror(r)}; the image stays read-only`);
        }
      }
    }
  }

  private check(r: number, what: string): void {
    if (r < 0) throw new ExplorerError(`${what}: ${strerror(r)}`);
  }
}

function tarType(mode: number): TarType | null {
  switch (mode & S_IFMT) {
    case S_IFREG: return 'file';
    case S_IFDIR: return 'dir';
    case S_IFLNK: return 'symlink';
    case S_IFCHR: return 'chr';
    case S_IFBLK: return 'blk';
    case S_IFIFO: return 'fifo';
    default: return null;
  }
}

