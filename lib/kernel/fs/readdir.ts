/*
 * getdents64 (fs/readdir.c): the filesystem's iterate_shared emits entries from f_pos on;
 * each becomes a linux_dirent64 record of ALIGN(19 + namelen + 1, 8) bytes, and entries are
 * taken while they fit in `count` bytes. d_off of a record is the position to resume after
 * it (the cookie of the next entry). EINVAL if not even the first entry fits.
 *
 * May touch: file_table, filemap (atime).
 */
import { define_syscall } from '../arch/syscalls.js';
import { S_DEAD, type dir_context, type file } from '../include/fs.js';
import { err } from '../include/errno.js';
import { EINVAL, ENOENT, ENOTDIR, S_ISDIR, type linux_dirent64 } from '../include/uapi.js';
import { bstrToBytes, bstrToUtf8 } from '../lib/bstr.js';
import * as NR from '../include/unistd.js';
import { withFile } from './file_table.js';
import { file_accessed } from '../mm/filemap.js';

export const direntRecLen = (nameLen: number) => (19 + nameLen + 1 + 7) & ~7;

/** iterate_dir: run the filesystem's iterator under the directory's shared lock. */
export async function iterate_dir(file: file, ctx: dir_context): Promise<void> {
  const inode = file.f_inode;
  if (!file.f_op.iterate_shared) throw err(ENOTDIR);
  await inode.i_rwsem.downRead();
  try {
    if (inode.i_flags & S_DEAD) throw err(ENOENT);
    ctx.pos = file.f_pos;
    await file.f_op.iterate_shared(file, ctx);
    file.f_pos = ctx.pos;
  } finally { inode.i_rwsem.upRead(); }
  await file_accessed(file);
}

define_syscall(NR.__NR_getdents64, 'getdents64', async (fd: number, count: number) => {
  return withFile(fd, async (f) => {
    if (!S_ISDIR(f.f_inode.i_mode) || !f.f_op.iterate_shared) throw err(ENOTDIR);
    const out: linux_dirent64[] = [];
    let used = 0;
    let tooSmall = false;
    const ctx: dir_context = {
      pos: 0,
      emit(name: string, ino: number, type: number): boolean {
        const reclen = direntRecLen(name.length);
        if (used + reclen > count) { if (out.length === 0) tooSmall = true; return false; }
        const prev = out[out.length - 1];
        if (prev) prev.off = ctx.pos;
        out.push({ ino, off: 0, type, name: bstrToUtf8(name), rawName: bstrToBytes(name) });
        used += reclen;
        return true;
      },
    };
    await f.f_pos_lock.lock();
    try {
      await iterate_dir(f, ctx);
    } finally { f.f_pos_lock.unlock(); }
    if (tooSmall) throw err(EINVAL);
    const last = out[out.length - 1];
    if (last) last.off = f.f_pos;
    return out;
  });
});
