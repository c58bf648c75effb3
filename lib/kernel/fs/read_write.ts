/*
 * read, write and seek (fs/read_write.c).
 *
 * The VFS checks the descriptor's mode and the range, serialises use of the file position
 * (f_pos_lock: concurrent read()s on one descriptor each get their own bytes), resolves
 * O_APPEND into the position, and holds a regular file's i_rwsem for writing around the
 * filesystem's write so that appends and overlapping writes are atomic with respect to
 * each other. Filesystems implement read/write at an explicit position.
 *
 * May touch: file_table, attr (nothing else).
 */
import { define_syscall } from '../arch/syscalls.js';
import { FMODE_LSEEK, FMODE_PREAD, FMODE_PWRITE, FMODE_READ, FMODE_WRITE, type file } from '../include/fs.js';
import { err } from '../include/errno.js';
import {
  EBADF, EFAULT, EINVAL, EISDIR, ENXIO, ESPIPE, O_APPEND, SEEK_CUR, SEEK_DATA, SEEK_END, SEEK_HOLE,
  SEEK_SET, S_ISDIR, S_ISREG,
} from '../include/uapi.js';
import * as NR from '../include/unistd.js';
import { withFile } from './file_table.js';

/** MAX_RW_COUNT: one call moves at most INT_MAX rounded down to a page. */
export const MAX_RW_COUNT = 0x7ffff000;
const UIO_MAXIOV = 1024;

function checkBuf(buf: unknown): Uint8Array {
  if (!(buf instanceof Uint8Array)) throw err(EFAULT);
  return buf.length > MAX_RW_COUNT ? buf.subarray(0, MAX_RW_COUNT) : buf;
}

/** vfs_setpos */
export function vfs_setpos(file: file, offset: number, maxsize: number): number {
  if (offset < 0 || offset > maxsize) throw err(EINVAL);
  file.f_pos = offset;
  return offset;
}

/**
 * generic_file_llseek: SEEK_SET/CUR/END, and SEEK_DATA/SEEK_HOLE for filesystems without
 * holes information (all data up to EOF, one hole at EOF).
 */
export async function generic_file_llseek(file: file, offset: number, whence: number): Promise<number> {
  const inode = file.f_inode;
  const maxsize = inode.i_sb.s_maxbytes;
  const eof = inode.i_size;
  switch (whence) {
    case SEEK_SET: break;
    case SEEK_END: offset += eof; break;
    case SEEK_CUR:
      if (offset === 0) return file.f_pos;
      offset += file.f_pos;
      break;
    case SEEK_DATA:
      if (offset < 0 || offset >= eof) throw err(ENXIO);
      break;
    case SEEK_HOLE:
      if (offset < 0 || offset >= eof) throw err(ENXIO);
      offset = eof;
      break;
    default: throw err(EINVAL);
  }
  return vfs_setpos(file, offset, maxsize);
}

function readCheck(f: file): void {
  if (!(f.f_mode & FMODE_READ)) throw err(EBADF);
  if (S_ISDIR(f.f_inode.i_mode)) throw err(EISDIR);
  if (!f.f_op.read) throw err(EINVAL);
}
function writeCheck(f: file): void {
  if (!(f.f_mode & FMODE_WRITE)) throw err(EBADF);
  if (!f.f_op.write) throw err(EINVAL);
}
function rw_verify_area(pos: number, count: number): void {
  if (pos < 0 || !Number.isSafeInteger(pos)) throw err(EINVAL);
  if (pos + count > Number.MAX_SAFE_INTEGER) throw err(EINVAL);
}

/** Read into each buffer in turn from pos; stops at a short read. */
async function vfs_read(f: file, bufs: Uint8Array[], pos: number): Promise<number> {
  let total = 0;
  for (const b of bufs) {
    if (b.length === 0) continue;
    rw_verify_area(pos + total, b.length);
    const n = await f.f_op.read!(f, b, pos + total);
    total += n;
    if (n < b.length) break;
  }
  return total;
}

/**
 * Write each buffer in turn at pos (the end of file for O_APPEND, decided under the lock);
 * returns [bytes written, position after].
 */
async function vfs_write(f: file, bufs: Uint8Array[], pos: number): Promise<[number, number]> {
  const inode = f.f_inode;
  const reg = S_ISREG(inode.i_mode);
  if (reg) await inode.i_rwsem.downWrite();
  try {
    if (f.f_flags & O_APPEND) pos = inode.i_size;
    let total = 0;
    for (const b of bufs) {
      if (b.length === 0) continue;
      rw_verify_area(pos + total, b.length);
      let n: number;
      try { n = await f.f_op.write!(f, b, pos + total); } catch (e) { if (total) break; throw e; }
      total += n;
      if (n < b.length) break;
    }
    return [total, pos + total];
  } finally { if (reg) inode.i_rwsem.upWrite(); }
}

/** read(2)/readv(2) at and advancing f_pos. */
async function ksys_read(fd: number, bufs: Uint8Array[]): Promise<number> {
  return withFile(fd, async (f) => {
    readCheck(f);
    await f.f_pos_lock.lock();
    try {
      const n = await vfs_read(f, bufs, f.f_pos);
      f.f_pos += n;
      return n;
    } finally { f.f_pos_lock.unlock(); }
  });
}
async function ksys_write(fd: number, bufs: Uint8Array[]): Promise<number> {
  return withFile(fd, async (f) => {
    writeCheck(f);
    await f.f_pos_lock.lock();
    try {
      const [n, end] = await vfs_write(f, bufs, f.f_pos);
      if (n > 0) f.f_pos = end;
      return n;
    } finally { f.f_pos_lock.unlock(); }
  });
}

function iovCheck(iov: unknown): Uint8Array[] {
  if (!Array.isArray(iov)) throw err(EFAULT);
  if (iov.length > UIO_MAXIOV) throw err(EINVAL);
  let total = 0;
  return iov.map((b) => {
    const x = checkBuf(b);
    total += x.length;
    if (total > MAX_RW_COUNT) throw err(EINVAL);
    return x;
  });
}

define_syscall(NR.__NR_read, 'read', (fd: number, buf: Uint8Array) => ksys_read(fd, [checkBuf(buf)]));
define_syscall(NR.__NR_write, 'write', (fd: number, buf: Uint8Array) => ksys_write(fd, [checkBuf(buf)]));
define_syscall(NR.__NR_readv, 'readv', (fd: number, iov: Uint8Array[]) => ksys_read(fd, iovCheck(iov)));
define_syscall(NR.__NR_writev, 'writev', (fd: number, iov: Uint8Array[]) => ksys_write(fd, iovCheck(iov)));

define_syscall(NR.__NR_pread64, 'pread64', async (fd: number, buf: Uint8Array, pos: number) => {
  const b = checkBuf(buf);
  if (!Number.isSafeInteger(pos) || pos < 0) throw err(EINVAL);
  return withFile(fd, async (f) => {
    readCheck(f);
    if (!(f.f_mode & FMODE_PREAD)) throw err(ESPIPE);
    return vfs_read(f, [b], pos);
  });
});

define_syscall(NR.__NR_pwrite64, 'pwrite64', async (fd: number, buf: Uint8Array, pos: number) => {
  const b = checkBuf(buf);
  if (!Number.isSafeInteger(pos) || pos < 0) throw err(EINVAL);
  return withFile(fd, async (f) => {
    writeCheck(f);
    if (!(f.f_mode & FMODE_PWRITE)) throw err(ESPIPE);
    // As Linux: pwrite on an O_APPEND descriptor appends (POSIX says otherwise).
    const [n] = await vfs_write(f, [b], pos);
    return n;
  });
});

/** vfs_llseek */
export async function vfs_llseek(f: file, offset: number, whence: number): Promise<number> {
  if (f.f_op.llseek) return f.f_op.llseek(f, offset, whence);
  if (!(f.f_mode & FMODE_LSEEK)) throw err(ESPIPE);
  return generic_file_llseek(f, offset, whence);
}

define_syscall(NR.__NR_lseek, 'lseek', async (fd: number, offset: number, whence: number) => {
  if (!Number.isInteger(whence) || whence < SEEK_SET || whence > SEEK_HOLE) throw err(EINVAL);
  if (!Number.isSafeInteger(offset)) throw err(EINVAL);
  return withFile(fd, async (f) => {
    await f.f_pos_lock.lock();
    try { return await vfs_llseek(f, offset, whence); } finally { f.f_pos_lock.unlock(); }
  });
});
