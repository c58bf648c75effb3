/*
 * Per-process filesystem context (fs/fs_struct.c): root, working directory and umask.
 * LKL runs one process, so there is one FsStruct, kept in the syscall process context and
 * shared by every syscall thread; kernel threads started at boot inherit it.
 *
 * May touch: namei's path_get/path_put only.
 */
import { current } from '../arch/cpu.js';
import { processContext } from '../arch/syscalls.js';
import type { Path } from '../include/fs.js';
import { pathGet, pathPut } from './namei.js';

export class FsStruct {
  umask = 0o022;
  constructor(public root: Path, public pwd: Path) {}
}

/** current->fs: the running task's context, falling back to the process's. */
export function currentFs(): FsStruct {
  const fs = (current().ctx.fs ?? processContext().fs) as FsStruct | undefined;
  if (!fs) throw new Error('no fs context: the root filesystem is not mounted yet');
  return fs;
}

/** set_fs_root: takes over the caller's reference on `path`. */
export async function setFsRoot(fs: FsStruct, path: Path): Promise<void> {
  const old = fs.root;
  fs.root = path;
  await pathPut(old);
}
/** set_fs_pwd: takes over the caller's reference on `path`. */
export async function setFsPwd(fs: FsStruct, path: Path): Promise<void> {
  const old = fs.pwd;
  fs.pwd = path;
  await pathPut(old);
}
/** A new context referencing the same root and pwd (copy_fs_struct). */
export function copyFsStruct(fs: FsStruct): FsStruct {
  const n = new FsStruct(pathGet(fs.root), pathGet(fs.pwd));
  n.umask = fs.umask;
  return n;
}
