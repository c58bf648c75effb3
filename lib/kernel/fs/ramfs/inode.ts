/*
 * ramfs: the root filesystem (fs/ramfs/inode.c, file-mmu.c), built from libfs.
 *
 * Everything lives in the caches: directories are their pinned dentries, file data is
 * page-cache pages that are never written anywhere (the mapping is unevictable), symlink
 * targets sit in i_link. Unlike Linux's ramfs, extended attributes are kept in memory (as
 * tmpfs does with simple_xattr) so that the xattr system calls work on the root fs. Mount
 * option: mode=<octal> for the root directory (default 0755); others are ignored, as in Linux.
 *
 * May touch: libfs, inode, dcache, filemap.
 */
import {
  Inode, I_DIRTY_SYNC, type Dentry, type File, type FileOperations, type FileSystemType,
  type InodeOperations, type Kstat, type SuperBlock, type SuperOperations,
} from '../../include/fs.js';
import { err } from '../../include/errno.js';
import {
  EOPNOTSUPP, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG,
} from '../../include/uapi.js';
import { PAGE_SIZE, findGetPage, genericFileRead, genericFileWrite, lockPage, unlockPage, mappingSetUnevictable } from '../../mm/filemap.js';
import { putPage } from '../../mm/page_alloc.js';
import { markInodeDirty } from '../fs-writeback.js';
import { dget, dInstantiate, dMakeRoot } from '../dcache.js';
import {
  currentTime, genericDeleteInode, getNextIno, incNlink, initSpecialInode, inodeInitOwner,
  insertInodeHash, newInode,
} from '../inode.js';
import {
  SimpleXattrs, noopFsync, simpleEmpty, simpleGetattr, simpleLink, simpleLookup, simpleOffsetAdd,
  simpleOffsetDirOperations, simpleOffsetInit, simpleRename, simpleRmdir, simpleSetattr,
  simpleStatfs, simpleUnlink, simpleXattrHandlers,
} from '../libfs.js';
import { genericFileLlseek } from '../read_write.js';
import { registerFilesystem } from '../super.js';
import { simpleAops } from '../../mm/filemap.js';

export const RAMFS_MAGIC = 0x858458f6;
const RAMFS_DEFAULT_MODE = 0o755;

class RamfsInode extends Inode {
  readonly xattrs = new SimpleXattrs();
}

/** ramfs_fallocate (as shmem's, reduced): reserve by growing i_size; punch by zeroing. */
async function ramfsFallocate(file: File, mode: number, offset: number, len: number): Promise<void> {
  const inode = file.f_inode;
  if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) throw err(EOPNOTSUPP);
  const end = offset + len;
  if (mode & FALLOC_FL_PUNCH_HOLE) {
    const m = inode.i_mapping;
    for (let idx = Math.floor(offset / PAGE_SIZE); idx * PAGE_SIZE < end; idx++) {
      const p = findGetPage(m, idx);
      if (!p) continue;
      await lockPage(p);
      const s = Math.max(offset, idx * PAGE_SIZE) - idx * PAGE_SIZE;
      const e = Math.min(end, (idx + 1) * PAGE_SIZE) - idx * PAGE_SIZE;
      p.data.fill(0, s, e);
      unlockPage(p);
      putPage(p);
    }
  } else if (!(mode & FALLOC_FL_KEEP_SIZE) && end > inode.i_size) {
    // Pages not yet in the cache read as zeros (simple readpage): nothing to allocate.
    inode.i_size = end;
  }
  inode.i_ctime = currentTime(inode);
  if (!(mode & FALLOC_FL_KEEP_SIZE)) inode.i_mtime = inode.i_ctime;
  await markInodeDirty(inode, I_DIRTY_SYNC);
}

export const ramfsFileOperations: FileOperations = {
  read: genericFileRead,
  write: genericFileWrite,
  llseek: genericFileLlseek,
  fsync: noopFsync,
  fallocate: ramfsFallocate,
};

const listxattr = async (d: Dentry) => (d.d_inode as RamfsInode).xattrs.list();
const getattr = async (d: Dentry, stat: Kstat) => simpleGetattr(d, stat);

export const ramfsFileInodeOperations: InodeOperations = {
  setattr: simpleSetattr,
  getattr,
  listxattr,
};
const ramfsSymlinkInodeOperations: InodeOperations = { getattr, listxattr, setattr: simpleSetattr };
const ramfsSpecialInodeOperations: InodeOperations = { getattr, listxattr, setattr: simpleSetattr };

/** ramfs_get_inode */
export function ramfsGetInode(sb: SuperBlock, dir: Inode | null, mode: number, dev: number): Inode {
  const inode = newInode(sb);
  inode.i_ino = getNextIno();
  insertInodeHash(inode);
  inodeInitOwner(inode, dir, mode);
  inode.i_mapping.a_ops = simpleAops;
  mappingSetUnevictable(inode.i_mapping);
  const now = currentTime(inode);
  inode.i_atime = now; inode.i_mtime = now; inode.i_ctime = now;
  inode.i_nlink = 1;
  switch (inode.i_mode & S_IFMT) {
    case S_IFREG:
      inode.i_op = ramfsFileInodeOperations;
      inode.i_fop = ramfsFileOperations;
      break;
    case S_IFDIR:
      inode.i_op = ramfsDirInodeOperations;
      inode.i_fop = simpleOffsetDirOperations;
      simpleOffsetInit(inode);
      // Directories start with two links: their entry and their own ".".
      incNlink(inode);
      break;
    case S_IFLNK:
      inode.i_op = ramfsSymlinkInodeOperations;
      break;
    default:
      inode.i_op = ramfsSpecialInodeOperations;
      initSpecialInode(inode, inode.i_mode, dev);
  }
  return inode;
}

/** ramfs_mknod: instantiate and pin the dentry (the dcache is the directory). */
async function ramfsMknod(dir: Inode, d: Dentry, mode: number, dev: number): Promise<void> {
  const inode = ramfsGetInode(dir.i_sb, dir, mode, dev);
  dInstantiate(d, inode);
  dget(d);
  simpleOffsetAdd(dir, d);
  const now = currentTime(dir);
  dir.i_mtime = now; dir.i_ctime = now;
}

export const ramfsDirInodeOperations: InodeOperations = {
  async create(dir, d, mode) { await ramfsMknod(dir, d, (mode & ~S_IFMT) | S_IFREG, 0); },
  lookup: simpleLookup,
  link: simpleLink,
  unlink: simpleUnlink,
  async symlink(dir, d, target) {
    const inode = ramfsGetInode(dir.i_sb, dir, S_IFLNK | 0o777, 0);
    inode.i_link = target;
    inode.i_size = target.length;
    dInstantiate(d, inode);
    dget(d);
    simpleOffsetAdd(dir, d);
    const now = currentTime(dir);
    dir.i_mtime = now; dir.i_ctime = now;
  },
  async mkdir(dir, d, mode) {
    await ramfsMknod(dir, d, (mode & ~S_IFMT) | S_IFDIR, 0);
    incNlink(dir);
  },
  rmdir: simpleRmdir,
  mknod: ramfsMknod,
  rename: simpleRename,
  setattr: simpleSetattr,
  getattr,
  listxattr,
};

const ramfsOps: SuperOperations = {
  statfs: simpleStatfs,
  drop_inode: genericDeleteInode,
  show_options: (sb) => {
    const mode = (sb.s_root?.d_inode?.i_mode ?? RAMFS_DEFAULT_MODE) & 0o7777;
    return mode === RAMFS_DEFAULT_MODE ? '' : `mode=${mode.toString(8)}`;
  },
  alloc_inode: (sb) => new RamfsInode(sb),
};

/** ramfs_parse_param: only mode= matters; unknown options are ignored, as in Linux. */
function parseMode(data: string): number {
  let mode = RAMFS_DEFAULT_MODE;
  for (const opt of (data ?? '').split(',')) {
    const m = /^mode=([0-7]+)$/.exec(opt.trim());
    if (m) mode = parseInt(m[1]!, 8) & 0o7777;
  }
  return mode;
}

export const ramfsFsType: FileSystemType = {
  name: 'ramfs',
  fs_flags: 0,
  async fill_super(sb: SuperBlock, data: string): Promise<void> {
    sb.s_maxbytes = Number.MAX_SAFE_INTEGER;
    sb.s_blocksize = PAGE_SIZE;
    sb.s_blocksize_bits = 12;
    sb.s_magic = RAMFS_MAGIC;
    sb.s_op = ramfsOps;
    sb.s_time_gran = 1;
    sb.s_time_min = -(2 ** 53);
    sb.s_time_max = 2 ** 53 - 1;
    sb.s_xattr = simpleXattrHandlers((inode) => (inode as RamfsInode).xattrs);
    const root = ramfsGetInode(sb, null, S_IFDIR | parseMode(data), 0);
    sb.s_root = dMakeRoot(root);
  },
};

registerFilesystem(ramfsFsType);
export { simpleEmpty };
