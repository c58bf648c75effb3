/*
 * fs2tar [-t TYPE] [-P PART] [-o OPTS] [--no-xattrs] [-s FILE] IMAGE TARFILE: the whole
 * filesystem in IMAGE as a POSIX (pax) tar archive, as LKL's tools/lkl/fs2tar.c: the image is
 * attached and mounted read-only, walked from the root, and every entry is written with its
 * mode, owner, group and times (mtime, atime, ctime to the nanosecond in pax records):
 * regular files with their data (files with holes, found with SEEK_DATA/SEEK_HOLE, in GNU's
 * pax sparse format 1.0), directories, symbolic links, hard links as links to the first name
 * seen, device nodes and fifos (sockets cannot be archived and are skipped with a warning).
 * Extended attributes go into SCHILY.xattr pax records and POSIX ACLs also into
 * SCHILY.acl.access / SCHILY.acl.default (as GNU tar --xattrs --acls writes them) unless
 * --no-xattrs. TARFILE "-" is stdout.
 */
import fs from 'node:fs';
import yargs from 'yargs';
import type { Sys } from '../kernel/include/sys.js';
import {
  EIO, O_NOFOLLOW, O_RDONLY, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK,
  major, minor, strerror, type stat,
} from '../kernel/include/uapi.js';
import { ImageSession, ToolError, hostError, joinPath, lastArg, parseCommandLine, say, show, usageError, version } from './image.js';
import { badName, imageSide } from './sides.js';
import { scan } from './copy.js';
import { Progress } from './progress.js';
import { ACL_ACCESS, ACL_DEFAULT, aclToText } from './acl.js';
import { alignSparseMap, entryHeader, padding, sparseMapBlock, trailer, type TarEntry, type TarType } from './tar.js';

const PROG = 'fs2tar';
const CHUNK = 1024 * 1024;

class TarError extends Error {}

/** Buffered output to a file descriptor (blocking writes; retries EAGAIN on a non-blocking pipe). */
class Out {
  written = 0;
  private parts: Buffer[] = [];
  private pending = 0;
  constructor(readonly fd: number, readonly name: string) {}
  push(b: Buffer): void {
    if (!b.length) return;
    this.parts.push(b);
    this.pending += b.length;
    this.written += b.length;
    if (this.pending >= CHUNK) this.flush();
  }
  flush(): void {
    if (!this.pending) return;
    const b = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.parts = [];
    this.pending = 0;
    let off = 0;
    while (off < b.length) {
      try {
        off += fs.writeSync(this.fd, b, off, b.length - off);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EAGAIN') {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
          continue;
        }
        throw new TarError(`${this.name}: ${hostError(e)}`);
      }
    }
  }
}

interface Fs2tarArgs {
  image: string; tar: string; type?: string; part: number; options: string[];
  xattrs: boolean; selinux?: string; mb: number; verbose: boolean; quiet: boolean; printk: boolean;
}

async function parseArgs(argv: string[]): Promise<Fs2tarArgs | number> {
  const parsed = await parseCommandLine<Record<string, unknown> & { h?: unknown; V?: unknown; _: (string | number)[] }>(PROG, yargs(argv)
    .scriptName(PROG)
    .usage('Usage: $0 [-t TYPE] [-P PART] [-o OPTS] [--no-xattrs] [-s FILE] IMAGE TARFILE\n\n' +
      'Write the whole filesystem in IMAGE as a POSIX (pax) tar archive to TARFILE ("-" = stdout).')
    .option('t', { alias: 'type', type: 'string', requiresArg: true, description: 'filesystem type: ext2, ext3, ext4, vfat (default: detect)' })
    .option('P', { alias: 'partition', type: 'string', requiresArg: true, description: 'partition number (default: 0, the whole image)' })
    .option('o', { alias: 'options', type: 'string', requiresArg: true, description: 'filesystem mount options, comma-separated; repeatable (the mount is read-only anyway)' })
    .option('xattrs', { type: 'boolean', default: true, description: 'store extended attributes (SCHILY.xattr pax records) and POSIX ACLs (SCHILY.acl records), as GNU tar --xattrs --acls; --no-xattrs leaves both out' })
    .option('x', { type: 'boolean', hidden: true, description: 'store extended attributes (the default now; kept for old command lines)' })
    .option('s', { alias: 'selinux', type: 'string', requiresArg: true, description: 'also write "PATH CONTEXT" lines for security.selinux attributes to FILE' })
    .option('m', { alias: 'mb', type: 'string', requiresArg: true, description: 'kernel memory in MiB (default: 64)' })
    .option('v', { alias: 'verbose', type: 'boolean', description: 'list each archived path on stderr' })
    .option('q', { alias: 'quiet', type: 'boolean', description: 'no progress line (it is shown on a terminal when the archive takes more than a second)' })
    .option('printk', { type: 'boolean', description: 'show the kernel\'s messages' })
    .help('h').alias('h', 'help')
    .version('V', 'show the version', version()).alias('V', 'version')
    .epilog('The image is opened and mounted read-only. Entries: regular files, directories, symbolic links, ' +
      'hard links (as links to the first name), device nodes and fifos, with mode, uid/gid, mtime, atime and ctime ' +
      '(pax records for long names, sizes of 8 GiB and more, large ids and nanoseconds), extended attributes and ' +
      'POSIX ACLs; files with holes in GNU\'s pax sparse format 1.0 (only their data is stored). ' +
      'Sockets are skipped with a warning. Extract with: tar --xattrs --xattrs-include=\'*\' --acls -xpf TARFILE -C DIR\n' +
      'Exit status: 0 written, 1 error (a partly written TARFILE is removed).'), argv
  );
  if (typeof parsed === 'number') return parsed;
  if (parsed.h || parsed.V) return 0;
  const last = lastArg;
  const bad = (m: string) => usageError(PROG, m);
  const pos = parsed._.map(String);
  if (pos.length !== 2) return bad(`expected IMAGE and TARFILE, got ${pos.length} argument${pos.length === 1 ? '' : 's'}`);
  const P = last(parsed.P);
  if (P !== undefined && (!/^\d+$/.test(P) || Number(P) > 255)) return bad(`invalid partition number '${P}'`);
  const m = last(parsed.m);
  if (m !== undefined && (!/^\d+$/.test(m) || Number(m) < 16 || Number(m) > 65536)) return bad(`invalid memory size '${m}' (MiB, 16 to 65536)`);
  return {
    image: pos[0]!, tar: pos[1]!, type: last(parsed.t), part: P === undefined ? 0 : Number(P),
    options: ([] as unknown[]).concat(parsed.o ?? []).map(String), xattrs: parsed.xattrs !== false, selinux: last(parsed.s),
    mb: m === undefined ? 64 : Number(m), verbose: !!parsed.v, quiet: !!parsed.q, printk: !!parsed.printk,
  };
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

class Archiver {
  private links = new Map<string, Buffer>();
  private buf = Buffer.alloc(CHUNK);
  private readonly side;
  constructor(readonly sys: Sys, readonly out: Out, readonly a: Fs2tarArgs, readonly selinux: number | undefined,
    readonly stop: () => boolean, readonly progress: Progress) {
    this.side = imageSide(sys);
  }

  private fail(p: Buffer, errno: number, what?: string): never {
    throw new ToolError(`/${show(p)}: ${strerror(errno)}${what ? ` (${what})` : ''}`);
  }

  /** Archives what is in the image directory `rel` ('' = the root). */
  async dir(rel: Buffer): Promise<void> {
    const names = await this.side.readdir(Buffer.concat([Buffer.from('/'), rel]));
    if (typeof names === 'number') this.fail(rel, names, 'cannot read directory');
    names.sort(Buffer.compare);
    for (const n of names) {
      // A name from a damaged image must not lead out of (or around) the archive's tree.
      if (badName(n)) this.fail(joinPath(rel, n), EIO, 'refusing a directory entry name that would escape the tree');
      await this.entry(joinPath(rel, n));
    }
  }

  /** One entry and, for a directory, what is in it; counted done as the copy counts it. */
  private async entry(rel: Buffer): Promise<void> {
    const st = await this.entryBody(rel);
    if (!st || (st.mode & S_IFMT) !== S_IFDIR) this.progress.fileDone();
  }

  private async xattrs(abs: Buffer, rel: Buffer): Promise<Map<string, Buffer> | undefined> {
    if (!this.a.xattrs && this.selinux === undefined) return undefined;
    const names = await this.sys.llistxattr(abs);
    if (typeof names === 'number') {
      if (names === -95 /* EOPNOTSUPP */) return undefined;
      this.fail(rel, names, 'cannot list extended attributes');
    }
    const out = new Map<string, Buffer>();
    for (const name of names) {
      if (!this.a.xattrs && name !== 'security.selinux') continue;
      const v = await this.sys.lgetxattr(abs, name);
      if (typeof v === 'number') {
        if (v === -61 /* ENODATA: gone meanwhile */) continue;
        this.fail(rel, v, `cannot read extended attribute ${name}`);
      }
      out.set(name, Buffer.from(v));
      if (name === 'security.selinux' && this.selinux !== undefined) {
        const ctx = Buffer.from(v).toString('utf8').replace(/\0+$/, '');
        fs.writeSync(this.selinux, `/${show(rel)} ${ctx}\n`);
      }
    }
    return this.a.xattrs && out.size ? out : undefined;
  }

  private async entryBody(rel: Buffer): Promise<stat | undefined> {
    if (this.stop()) throw new ToolError('interrupted (the archive is incomplete)');
    const abs = Buffer.concat([Buffer.from('/'), rel]);
    const st = await this.sys.lstat(abs);
    if (typeof st === 'number') this.fail(rel, st);
    const type = tarType(st.mode);
    if (!type) {
      this.progress.write(`${PROG}: /${show(rel)}: skipping ${(st.mode & S_IFMT) === S_IFSOCK ? 'socket' : 'file of unknown type'}: tar cannot hold it\n`);
      return undefined;
    }
    if (this.a.verbose) this.progress.write(`${show(rel)}${type === 'dir' ? '/' : ''}\n`);
    const e: TarEntry = {
      path: rel, type, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0, mtime: st.mtime,
      atime: st.atime, ctime: st.ctime,
    };
    const x = await this.xattrs(abs, rel);
    if (x) {
      e.xattrs = x;
      // GNU tar --acls: the ACLs in text form too (the raw xattrs stay, as GNU tar keeps them).
      const access = x.get(ACL_ACCESS), dflt = x.get(ACL_DEFAULT);
      const at = access && aclToText(access), dt = dflt && aclToText(dflt);
      if (at || dt) e.acl = { ...(at ? { access: at } : {}), ...(dt ? { default: dt } : {}) };
    }
    if (type !== 'dir' && st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.links.get(key);
      if (first) {
        e.type = 'hardlink';
        e.linkpath = first;
        this.out.push(entryHeader(e));
        return st;
      }
      this.links.set(key, rel);
    }
    switch (type) {
      case 'symlink': {
        const t = await this.side.readlink(abs);
        if (typeof t === 'number') this.fail(rel, t, 'cannot read symbolic link');
        e.linkpath = t;
        break;
      }
      case 'chr': case 'blk':
        e.devmajor = major(st.rdev);
        e.devminor = minor(st.rdev);
        break;
      case 'file':
        e.size = st.size;
        break;
      default:
    }
    if (type === 'file') {
      await this.file(abs, rel, st, e);
      return st;
    }
    this.out.push(entryHeader(e));
    if (type === 'dir') {
      this.progress.fileDone();
      await this.dir(rel);
    }
    return st;
  }

  /** A regular file: its header, then its data; with holes, as a sparse 1.0 entry. */
  private async file(abs: Buffer, rel: Buffer, st: stat, e: TarEntry): Promise<void> {
    const fd = await this.sys.open(abs, O_RDONLY | O_NOFOLLOW, 0);
    if (fd < 0) this.fail(rel, fd, 'cannot open');
    try {
      let map: [number, number][] = [[0, st.size]];
      // Fewer blocks than the size needs: there are holes (or the tail is inline); ask.
      if (st.size > 0 && st.blocks * 512 < st.size) {
        const found = await this.side.dataMap(fd, abs, st.size);
        if (typeof found === 'number') this.fail(rel, found, 'cannot find the holes (SEEK_DATA/SEEK_HOLE)');
        const m = found && alignSparseMap(found, st.size);
        if (m && !(m.length === 1 && m[0]![0] === 0 && m[0]![1] === st.size)) {
          map = m;
          e.sparse = { map: m };
        }
      }
      this.out.push(entryHeader(e));
      let stored = 0;
      let data = 0;
      if (e.sparse) {
        const block = sparseMapBlock(map, st.size);
        this.out.push(block);
        stored += block.length;
      }
      for (const [off, len] of map) {
        let done = 0;
        while (done < len) {
          const want = Math.min(len - done, CHUNK);
          const n = await this.sys.pread64(fd, want === CHUNK ? this.buf : this.buf.subarray(0, want), off + done);
          if (n < 0) this.fail(rel, n, 'read error');
          if (n === 0) this.fail(rel, EIO, `file shrank while being archived (${off + done} of ${st.size} bytes)`);
          this.out.push(Buffer.from(this.buf.subarray(0, n)));
          done += n;
          this.progress.addBytes(n);
        }
        stored += len;
        data += len;
      }
      // The holes count as done too (the scan counted the file's size).
      if (st.size > data) this.progress.addBytes(st.size - data);
      this.out.push(padding(stored));
    } finally {
      await this.sys.close(fd);
    }
  }
}

/** Runs fs2tar with `argv` (without node and the script); resolves to the exit status. */
export async function runFs2tar(argv: string[]): Promise<number> {
  const a = await parseArgs(argv);
  if (typeof a === 'number') return a;
  const toStdout = a.tar === '-';
  let stop = false;
  let progress: Progress | undefined;
  const onSignal = (sig: NodeJS.Signals) => {
    if (stop) return;
    stop = true;
    progress?.finish();
    say(PROG, `${sig}: stopping`);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);

  const session = new ImageSession({
    prog: PROG, image: a.image, type: a.type, part: a.part, mountOptions: a.options,
    readOnly: true, memMiB: a.mb, printk: a.printk,
  });
  let fd = -1;
  let selinuxFd: number | undefined;
  let created = false;
  let status = 0;
  try {
    await session.open();
    if (toStdout) {
      fd = 1;
    } else {
      try {
        fd = fs.openSync(a.tar, 'w', 0o644);
        created = true;
      } catch (e) {
        throw new ToolError(`${a.tar}: ${hostError(e)}`);
      }
    }
    if (a.selinux !== undefined) {
      try {
        selinuxFd = fs.openSync(a.selinux, 'w', 0o644);
      } catch (e) {
        throw new ToolError(`${a.selinux}: ${hostError(e)}`);
      }
    }
    const out = new Out(fd, toStdout ? 'standard output' : a.tar);
    const bar = progress = new Progress({ prog: PROG, quiet: a.quiet });
    if (bar.enabled) {
      // The totals, for the progress line only (pipes and -q never pay for the scan).
      const root = await session.sys.lstat('/');
      if (typeof root !== 'number') {
        bar.beginScan();
        await scan(imageSide(session.sys), [{ src: Buffer.from('/'), contents: true, st: { ...root, id: '', major: 0, minor: 0 } }], bar);
        bar.endScan();
      }
    }
    const ar = new Archiver(session.sys, out, a, selinuxFd, () => stop, bar);
    await ar.dir(Buffer.alloc(0));
    out.push(trailer(out.written));
    out.flush();
  } catch (e) {
    status = 1;
    progress?.finish();
    if (e instanceof ToolError || e instanceof TarError) say(PROG, e.message);
    else say(PROG, `internal error: ${(e as Error)?.stack ?? String(e)}`);
  } finally {
    progress?.finish();
    if (fd >= 0 && !toStdout) {
      try { fs.closeSync(fd); } catch (e) { say(PROG, `${a.tar}: ${hostError(e)}`); status = 1; }
    }
    if (selinuxFd !== undefined) fs.closeSync(selinuxFd);
    try {
      const problem = await session.close();
      if (problem) { say(PROG, problem); status = 1; }
    } catch (e) {
      say(PROG, `internal error while unmounting: ${(e as Error)?.stack ?? String(e)}`);
      status = 1;
    }
    if (status !== 0 && created) {
      try { fs.unlinkSync(a.tar); } catch { /* already gone */ }
    }
  }
  return status;
}
