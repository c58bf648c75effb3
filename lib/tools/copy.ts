/*
 * The recursive copy behind cptofs and cpfromfs (LKL's cptofs.c searchdir/do_entry), between
 * two Sides: regular files with their content, directories (created, then filled), symbolic
 * links as links, hard links within the copy as links where the destination allows them,
 * fifos and device nodes where it allows them (skipped otherwise). Holes of the source (found
 * with SEEK_DATA/SEEK_HOLE) stay holes: only the data extents are written, then the file is
 * truncated to its size. With `preserve`, owner, group, mode bits (setuid/setgid/sticky
 * too), extended attributes, POSIX ACLs (the system.posix_acl_* xattrs) and atime/mtime to
 * the nanosecond follow the source; without, modes are the source's minus the umask, as
 * cp(1) does. What the destination cannot hold (FAT: owners, modes, links, special files,
 * xattrs, fine times) is reported with one warning line per kind of loss, not per file.
 *
 * Names read from a directory are checked: one that would lead out of the destination ("..",
 * a slash, as only a damaged image lists them) stops the copy.
 *
 * The first error stops the copy (as LKL's tools abort); it is thrown as a CopyError naming
 * the path and the errno, and the caller prints it as one line.
 */
import path from 'node:path';
import {
  E2BIG, EEXIST, EINVAL, EISDIR, EMLINK, ENOENT, ENOSPC, ENOSYS, ENOTDIR, EOPNOTSUPP, EPERM, ERANGE, EXDEV,
  S_IFDIR, S_IFLNK, S_IFMT, S_IFREG, S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK, strerror,
} from '../kernel/include/uapi.js';
import { badName, type DataMap, type FStat, type Side } from './sides.js';
import { ACL_ACCESS, ACL_DEFAULT } from './acl.js';
import { ToolError, joinPath, show } from './image.js';

export class CopyError extends Error {
  constructor(readonly path: string, readonly errno: number, readonly what?: string) {
    super(`${path}: ${strerror(errno)}${what ? ` (${what})` : ''}`);
  }
}

export interface CopyOptions {
  preserve: boolean;
  /** Applied to new modes when not preserving. */
  umask: number;
  /** --owner/--group: force these on every copied entry (-1 = leave). */
  owner: number;
  group: number;
  /** Each path copied, on stderr. */
  verbose?: (line: string) => void;
  /** A non-fatal warning (skipped special file, attribute the destination cannot hold). */
  warn: (line: string) => void;
  /** Polled between entries: true stops the copy (SIGINT/SIGTERM). */
  stop?: () => boolean;
  /** The destination is FAT (times kept to 2 s): said once when times are preserved. */
  fatDest?: boolean;
  /** Told of each entry done and of the bytes copied (the progress line). */
  progress?: ProgressSink;
}

/** What the copy reports its progress to (lib/tools/progress.ts). */
export interface ProgressSink {
  addBytes(n: number): void;
  fileDone(rest?: number): void;
}

const CHUNK = 1024 * 1024;
/** Errors meaning "this filesystem cannot hold that", not "something went wrong". */
const UNSUPPORTED = new Set([EPERM, EOPNOTSUPP, ENOSYS, EINVAL]);

const typeName = (m: number) => {
  switch (m & S_IFMT) {
    case S_IFREG: return 'regular file';
    case S_IFDIR: return 'directory';
    case S_IFLNK: return 'symbolic link';
    case S_IFIFO: return 'fifo';
    case S_IFCHR: return 'character device';
    case S_IFBLK: return 'block device';
    case S_IFSOCK: return 'socket';
    default: return 'file of unknown type';
  }
};

/** One top-level copy: SRC (on `from`) to DST (on `to`); `contents` copies what is inside SRC. */
export interface CopyJob { src: Buffer; dst: Buffer; contents: boolean; st: FStat }

export class Copier {
  /** Source hard-link identity -> the destination path made for it. */
  private links = new Map<string, Buffer>();
  private canLink = true;
  private lost = new Set<string>();
  readonly zero = Buffer.alloc(CHUNK);
  private buf = Buffer.alloc(CHUNK);

  constructor(readonly from: Side, readonly to: Side, readonly o: CopyOptions) {}

  async run(job: CopyJob): Promise<void> {
    if (job.contents) {
      // As LKL's match_root case: what is in SRC goes into DST; DST keeps its own attributes
      // unless this made it.
      const made = await this.ensureDir(job.dst, job.st);
      await this.copyChildren(job.src, job.dst);
      if (made) await this.setAttrs(job.src, job.dst, job.st, true);
    } else {
      await this.entry(job.src, job.dst, job.st);
    }
  }

  /** What the destination cannot hold, said once per `kind` (the first path as an example). */
  private lose(kind: string, text: string): void {
    if (this.lost.has(kind)) return;
    this.lost.add(kind);
    this.o.warn(`warning: ${text}`);
  }

  private fail(p: Buffer, errno: number, what?: string): never {
    throw new CopyError(show(p), Math.abs(errno), what);
  }

  private async copyChildren(src: Buffer, dst: Buffer): Promise<void> {
    const names = await this.from.readdir(src);
    if (typeof names === 'number') this.fail(src, names, 'cannot read directory');
    names.sort(Buffer.compare);
    if (this.o.preserve && this.from.prefetchXattrs) {
      await this.from.prefetchXattrs(names.filter((n) => !badName(n)).map((n) => joinPath(src, n)));
    }
    for (const name of names) {
      if (badName(name)) this.fail(joinPath(src, name), EINVAL, 'refusing a directory entry name that would escape the destination');
      const s = joinPath(src, name);
      const st = await this.from.lstat(s);
      if (typeof st === 'number') this.fail(s, st);
      await this.entry(s, joinPath(dst, name), st);
    }
  }

  /** Makes sure dst is a directory (merging into an existing one); true if it made it. */
  private async ensureDir(dst: Buffer, st: FStat): Promise<boolean> {
    const cur = await this.to.lstat(dst);
    if (typeof cur !== 'number') {
      if ((cur.mode & S_IFMT) === S_IFDIR) return false;
      this.fail(dst, ENOTDIR, 'cannot overwrite non-directory with directory');
    }
    // u+rwx while filling it; the final mode is set afterwards.
    const r = await this.to.mkdir(dst, (st.mode & 0o777) | 0o700);
    if (r < 0) this.fail(dst, r, 'cannot create directory');
    return true;
  }

  /** Removes what is at dst if it is not a directory; fails on a directory. */
  private async clear(dst: Buffer, keepRegular: boolean): Promise<void> {
    const cur = await this.to.lstat(dst);
    if (typeof cur === 'number') return;
    const t = cur.mode & S_IFMT;
    if (t === S_IFDIR) this.fail(dst, EISDIR, 'cannot overwrite directory with non-directory');
    if (keepRegular && t === S_IFREG && cur.nlink === 1) return;
    const r = await this.to.unlink(dst);
    if (r < 0) this.fail(dst, r, 'cannot remove');
  }

  private async entry(src: Buffer, dst: Buffer, st: FStat): Promise<void> {
    await this.entryBody(src, dst, st);
    if ((st.mode & S_IFMT) !== S_IFDIR) this.o.progress?.fileDone();
  }

  private async entryBody(src: Buffer, dst: Buffer, st: FStat): Promise<void> {
    if (this.o.stop?.()) throw new ToolError('interrupted (the copy is incomplete)');
    const type = st.mode & S_IFMT;
    this.o.verbose?.(`${show(src)} -> ${show(dst)}`);
    if (type !== S_IFDIR && st.nlink > 1 && this.canLink) {
      const first = this.links.get(st.id);
      if (first) {
        await this.clear(dst, false);
        const r = await this.to.link(first, dst);
        if (r === 0) return;
        if (r !== -EPERM && r !== -EOPNOTSUPP && r !== -EMLINK && r !== -EXDEV && r !== -ENOSYS) this.fail(dst, r, 'cannot create hard link');
        if (r !== -EMLINK) {
          this.canLink = false;
          this.lose('hardlink', `hard links copied as separate files: the destination cannot hold them (${strerror(r)}; first: ${show(src)})`);
        }
      } else {
        this.links.set(st.id, dst);
      }
    }
    switch (type) {
      case S_IFREG:
        await this.clear(dst, true);
        await this.copyFile(src, dst, st);
        break;
      case S_IFDIR:
        await this.ensureDir(dst, st);
        this.o.progress?.fileDone();
        await this.copyChildren(src, dst);
        break;
      case S_IFLNK: {
        const target = await this.from.readlink(src);
        if (typeof target === 'number') this.fail(src, target, 'cannot read symbolic link');
        await this.clear(dst, false);
        const r = await this.to.symlink(target, dst);
        if (r < 0) {
          if (UNSUPPORTED.has(-r) && r !== -EINVAL) {
            this.lose('symlink', `symbolic links skipped: the destination cannot hold them (${strerror(r)}; first: ${show(src)})`);
            this.links.delete(st.id);
            return;
          }
          this.fail(dst, r, 'cannot create symbolic link');
        }
        break;
      }
      case S_IFIFO: case S_IFCHR: case S_IFBLK: case S_IFSOCK: {
        await this.clear(dst, false);
        const r = await this.to.mknod(dst, type | (st.mode & 0o777 & ~this.o.umask), st.major, st.minor);
        if (r < 0) {
          if (UNSUPPORTED.has(-r)) {
            this.lose(typeName(st.mode), `${typeName(st.mode)}s skipped: the destination cannot hold them (${strerror(r)}; first: ${show(src)})`);
            this.links.delete(st.id);
            return;
          }
          this.fail(dst, r, `cannot create ${typeName(st.mode)}`);
        }
        break;
      }
      default:
        this.lose(typeName(st.mode), `${typeName(st.mode)}s skipped (first: ${show(src)})`);
        return;
    }
    await this.setAttrs(src, dst, st, type === S_IFDIR);
  }

  private async copyFile(src: Buffer, dst: Buffer, st: FStat): Promise<void> {
    const ifd = await this.from.openRead(src);
    if (ifd < 0) this.fail(src, ifd, 'cannot open');
    let ofd = -1;
    try {
      ofd = await this.to.openWrite(dst, st.mode & 0o777 & ~this.o.umask);
      if (ofd < 0) this.fail(dst, ofd, 'cannot create');
      // Fewer blocks than the size needs: the source may have holes; ask where its data is.
      let map: DataMap = null;
      if (st.size > 0 && st.blocks * 512 < st.size) {
        const m = await this.from.dataMap(ifd, src, st.size);
        if (typeof m === 'number') this.fail(src, m, 'cannot find the holes (SEEK_DATA/SEEK_HOLE)');
        map = m;
      }
      const holey = map !== null && !(map.length === 1 && map[0]![0] === 0 && map[0]![1] === st.size);
      let copied = 0;
      if (holey && this.to.holes) {
        // Only the data extents are written; the rest stays holes (truncate sets the size).
        for (const [off, len] of map!) copied += await this.copyRange(ifd, ofd, src, dst, off, len);
        const r = await this.to.ftruncate(ofd, st.size);
        if (r < 0) this.fail(dst, r, 'write error');
      } else {
        if (holey) this.lose('holes', `the destination has no holes: files with holes are written whole (first: ${show(src)})`);
        copied = await this.copyRange(ifd, ofd, src, dst, 0, Infinity);
      }
      // The holes count as done too (the scan counted the file's size).
      if (st.size > copied) this.o.progress?.addBytes(st.size - copied);
      const r = await this.to.fsyncClose(ofd);
      ofd = -1;
      if (r < 0) this.fail(dst, r, 'write error');
    } finally {
      if (ofd >= 0) await this.to.close(ofd);
      await this.from.close(ifd);
    }
  }

  /** Copies `len` bytes at `off` (Infinity: to the end of the source); resolves to the count. */
  private async copyRange(ifd: number, ofd: number, src: Buffer, dst: Buffer, off: number, len: number): Promise<number> {
    let done = 0;
    while (done < len) {
      const want = Math.min(len - done, CHUNK);
      const n = await this.from.pread(ifd, want === CHUNK ? this.buf : this.buf.subarray(0, want), off + done);
      if (n < 0) this.fail(src, n, 'read error');
      if (n === 0) break;
      const w = await this.to.pwrite(ofd, this.buf.subarray(0, n), off + done);
      if (w < 0) this.fail(dst, w, 'write error');
      done += n;
      this.o.progress?.addBytes(n);
    }
    return done;
  }

  /** Extended attributes and ACLs of the source entry onto dst (preserve only). */
  private async copyXattrs(src: Buffer, dst: Buffer, isLink: boolean): Promise<void> {
    const x = await this.from.listXattrs(src);
    if (typeof x === 'number') {
      if (x === -EOPNOTSUPP) return; // the source holds none (FAT)
      if (x === -ENOSYS) {
        this.lose('xattr-read', 'extended attributes and ACLs not copied: getfattr (attr) is not installed');
        return;
      }
      this.fail(src, x, 'cannot read extended attributes');
    }
    for (const [name, value] of x) {
      const r = await this.to.setXattr(dst, name, value);
      if (r >= 0) continue;
      const acl = name === ACL_ACCESS || name === ACL_DEFAULT;
      const what = acl ? 'POSIX ACLs' : `${name.slice(0, name.indexOf('.') + 1) || name}* extended attributes`;
      if (r === -EOPNOTSUPP || r === -ENOSYS) {
        this.lose(acl ? 'acl' : 'xattr', `${acl ? 'POSIX ACLs' : 'extended attributes'} not preserved: the destination cannot hold them (${strerror(r)}; first: ${show(src)})`);
      } else if (r === -EPERM && isLink) {
        this.lose(`link-${what}`, `${what} of symbolic links not preserved (${strerror(r)}; first: ${show(src)})`);
      } else if (r === -EPERM || r === -EINVAL || r === -ENOSPC || r === -E2BIG || r === -ERANGE) {
        this.lose(`${what}:${r}`, `${what} not preserved where the destination refuses them (${strerror(r)}; first: ${show(src)} ${name})`);
      } else {
        this.fail(dst, r, `cannot set extended attribute ${name}`);
      }
    }
  }

  /** Owner, mode and times of a finished entry. */
  private async setAttrs(src: Buffer, dst: Buffer, st: FStat, isDir: boolean): Promise<void> {
    const type = st.mode & S_IFMT;
    const isLink = type === S_IFLNK;
    const o = this.o;
    const uid = o.owner >= 0 ? o.owner : o.preserve ? st.uid : -1;
    const gid = o.group >= 0 ? o.group : o.preserve ? st.gid : -1;
    if (uid >= 0 || gid >= 0) {
      const r = await this.to.lchown(dst, uid, gid);
      if (r < 0) {
        if (!UNSUPPORTED.has(-r)) this.fail(dst, r, 'cannot change owner');
        this.lose('owner', `owners not preserved: the destination refuses them (${strerror(r)}; first: ${show(src)})`);
      }
    }
    if (!isLink) {
      let mode: number | undefined;
      if (o.preserve) mode = st.mode & 0o7777;
      else if (isDir) mode = st.mode & 0o777 & ~o.umask; // created with u+rwx added
      if (mode !== undefined) {
        const r = await this.to.chmod(dst, mode);
        if (r < 0) {
          if (!UNSUPPORTED.has(-r)) this.fail(dst, r, 'cannot change mode');
          this.lose('mode', `modes not preserved: the destination refuses them (${strerror(r)}; first: ${show(src)})`);
        } else if (o.preserve) {
          // FAT takes a chmod it cannot hold without an error: look at what it kept.
          const now = await this.to.lstat(dst);
          if (typeof now !== 'number' && (now.mode & 0o7777) !== mode) {
            this.lose('mode', `modes not preserved: the destination cannot hold them (first: ${show(src)}: 0${mode.toString(8)} became 0${(now.mode & 0o7777).toString(8)})`);
          }
        }
      }
    }
    if (o.preserve) await this.copyXattrs(src, dst, isLink);
    if (o.preserve) {
      if (o.fatDest) this.lose('fat-times', 'FAT keeps modification times to 2 seconds (from 1980) and access times to the day: times rounded');
      const r = await this.to.utimes(dst, st.atime, st.mtime);
      if (r < 0) {
        if (!UNSUPPORTED.has(-r)) this.fail(dst, r, 'cannot set times');
        this.lose(`times-${isLink}`, `times not preserved on ${isLink ? 'symbolic links' : 'some entries'} (${strerror(r)}; first: ${show(src)})`);
      }
    }
  }
}

/** Where the pre-scan reports what it finds (Progress.scanned). */
export interface ScanSink { scanned(bytes: number): void }

/**
 * Counts what `jobs` will copy, as the copy walks it: every entry once (a directory copied
 * "contents" only is not itself an entry), with the size of each regular file (a hard link
 * again: 0). Errors are left for the copy to meet: what cannot be read is not counted.
 */
export async function scan(from: Side, jobs: readonly { src: Buffer; contents: boolean; st: FStat }[], sink: ScanSink): Promise<void> {
  const seen = new Set<string>();
  const one = async (p: Buffer, st: FStat): Promise<void> => {
    const type = st.mode & S_IFMT;
    let bytes = 0;
    if (type === S_IFREG && !(st.nlink > 1 && seen.has(st.id))) bytes = st.size;
    if (type !== S_IFDIR && st.nlink > 1) seen.add(st.id);
    sink.scanned(bytes);
    if (type === S_IFDIR) await children(p);
  };
  const children = async (p: Buffer): Promise<void> => {
    const names = await from.readdir(p);
    if (typeof names === 'number') return;
    names.sort(Buffer.compare);
    for (const n of names) {
      if (badName(n)) continue;
      const c = joinPath(p, n);
      const st = await from.lstat(c);
      if (typeof st !== 'number') await one(c, st);
    }
  };
  for (const j of jobs) {
    if (j.contents) await children(j.src);
    else await one(j.src, j.st);
  }
}

/** Whether SRC names "the contents of" a directory: only dots and slashes, no '..' (LKL's match_root), or ending in '/.'. */
export function isContents(src: string): boolean {
  if (/^[./]+$/.test(src) && !src.includes('..')) return true;
  return src.endsWith('/.');
}

export interface PlanInput { sources: string[]; dst: string }

/**
 * Works out every top-level copy before anything is written (so that a bad source or
 * destination leaves the destination untouched): each SRC must exist; DST may be an existing
 * directory (SRC goes inside it, under its own name), or, for one SRC, a new name in an
 * existing directory or an existing non-directory to replace.
 * `srcPath`/`dstPath` turn user paths into paths on each side.
 */
export async function plan(from: Side, to: Side, input: PlanInput,
  srcPath: (s: string) => Buffer, dstPath: (s: string) => Buffer): Promise<CopyJob[]> {
  const jobs: CopyJob[] = [];
  const dst = dstPath(input.dst);
  const dstSt = await to.stat(dst);
  const dstIsDir = typeof dstSt !== 'number' && (dstSt.mode & S_IFMT) === S_IFDIR;
  if (typeof dstSt === 'number') {
    if (dstSt !== -ENOENT) throw new CopyError(input.dst, -dstSt);
    if (input.sources.length > 1 || input.dst.endsWith('/')) throw new CopyError(input.dst, ENOENT);
    const parent = Buffer.from(path.posix.dirname(dst.toString('latin1')), 'latin1');
    const pst = await to.stat(parent);
    if (typeof pst === 'number') throw new CopyError(input.dst, -pst);
    if ((pst.mode & S_IFMT) !== S_IFDIR) throw new CopyError(input.dst, ENOTDIR);
  } else if (!dstIsDir && input.sources.length > 1) {
    throw new CopyError(input.dst, ENOTDIR);
  }
  for (const s of input.sources) {
    const sp = srcPath(s);
    const st = await from.lstat(sp);
    if (typeof st === 'number') throw new CopyError(s, -st);
    const isDir = (st.mode & S_IFMT) === S_IFDIR;
    if (isContents(s)) {
      if (!isDir) throw new CopyError(s, ENOTDIR);
      if (typeof dstSt !== 'number' && !dstIsDir) throw new CopyError(input.dst, ENOTDIR);
      jobs.push({ src: sp, dst, contents: true, st });
      continue;
    }
    const base = path.posix.basename(s.replace(/\/+$/, ''));
    if (base === '..' || base === '' ) throw new CopyError(s, EINVAL, 'cannot copy this name');
    if (dstIsDir) {
      jobs.push({ src: sp, dst: joinPath(dst, base), contents: false, st });
    } else if (typeof dstSt !== 'number') {
      // an existing non-directory: replace it with a non-directory
      if (isDir) throw new CopyError(input.dst, EEXIST, 'cannot overwrite non-directory with directory');
      jobs.push({ src: sp, dst, contents: false, st });
    } else {
      jobs.push({ src: sp, dst, contents: false, st });
    }
  }
  return jobs;
}
