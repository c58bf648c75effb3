/*
 * Per-process filesystem context (fs/fs_struct.c): root, working directory and umask.
 * LKL runs one process, so there is one fs_struct, kept in the syscall process context and
 * shared by every syscall thread; kernel threads started at boot inherit it.
 *
 * May touch: namei's path_get/path_put only.
 */
import { current } from '../arch/cpu.js';
import { processContext } from '../arch/syscalls.js';
import type { path } from '../include/fs.js';
import { path_get, path_put } from './namei.js';

export class fs_struct {
  umask = 0o022;
  constructor(public root: path, public pwd: path) {}
}

/** current->fs: the running task's context, falling back to the process's. */
export function current_fs(): fs_struct {
  const fs = (current().ctx.fs ?? processContext().fs) as fs_struct | undefined;
  if (!fs) throw new Error('no fs context: the root filesystem is not mounted yet');
  return fs;
}

/** current_umask(): the umask new files' modes are masked with (unless a default ACL decides). */
export function current_umask(): number { return current_fs().umask; }

/** set_fs_root: takes over the caller's reference on `path`. */
export async function set_fs_root(fs: fs_struct, path: path): Promise<void> {
  const old = fs.root;
  fs.root = path;
  await path_put(old);
}
/** set_fs_pwd: takes over the caller's reference on `path`. */
export async function set_fs_pwd(fs: fs_struct, path: path): Promise<void> {
  const old = fs.pwd;
  fs.pwd = path;
  await path_put(old);
}
/** A new context referencing the same root and pwd (copy_fs_struct). */
export function copy_fs_struct(fs: fs_struct): fs_struct {
  const n = new fs_struct(path_get(fs.root), path_get(fs.pwd));
  n.umask = fs.umask;
  return n;
}
