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
  inode, I_DIRTY_SYNC, type dentry, type file, type file_operations, type file_system_type,
  type inode_operations, type kstat, type super_block, type super_operations,
} from '../../include/fs.js';
import { err } from '../../include/errno.js';
import {
  EOPNOTSUPP, FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE, S_IFDIR, S_IFLNK, S_IFMT, S_IFREG,
} from '../../include/uapi.js';
import { PAGE_SIZE, find_get_page, filemap_read, generic_file_write_iter, lock_page, unlock_page, mapping_set_unevictable } from '../../mm/filemap.js';
import { put_page } from '../../mm/page_alloc.js';
import { mark_inode_dirty } from '../fs-writeback.js';
import { dget, d_instantiate, d_make_root } from '../dcache.js';
import {
  currentTime, generic_delete_inode, get_next_ino, inc_nlink, init_special_inode, inode_init_owner,
  insert_inode_hash, new_inode,
} from '../inode.js';
import {
  simple_xattrs, noop_fsync, simple_empty, simple_getattr, simple_link, simple_lookup, simple_offset_add,
  simple_offset_dir_operations, simple_offset_init, simple_rename, simple_rmdir, simple_setattr,
  simple_statfs, simple_unlink, simple_xattr_handlers,
} from '../libfs.js';
import { generic_file_llseek } from '../read_write.js';
import { register_filesystem } from '../super.js';
import { simple_aops } from '../../mm/filemap.js';

export const RAMFS_MAGIC = 0x858458f6;
const RAMFS_DEFAULT_MODE = 0o755;

class RamfsInode extends inode {
  readonly xattrs = new simple_xattrs();
}

/** ramfs_fallocate (as shmem's, reduced): reserve by growing i_size; punch by zeroing. */
async function ramfsFallocate(file: file, mode: number, offset: number, len: number): Promise<void> {
  const inode = file.f_inode;
  if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)) throw err(EOPNOTSUPP);
  const end = offset + len;
  if (mode & FALLOC_FL_PUNCH_HOLE) {
    const m = inode.i_mapping;
    for (let idx = Math.floor(offset / PAGE_SIZE); idx * PAGE_SIZE < end; idx++) {
      const p = find_get_page(m, idx);
      if (!p) continue;
      await lock_page(p);
      const s = Math.max(offset, idx * PAGE_SIZE) - idx * PAGE_SIZE;
      const e = Math.min(end, (idx + 1) * PAGE_SIZE) - idx * PAGE_SIZE;
      p.data.fill(0, s, e);
      unlock_page(p);
      put_page(p);
    }
  } else if (!(mode & FALLOC_FL_KEEP_SIZE) && end > inode.i_size) {
    // Pages not yet in the cache read as zeros (simple readpage): nothing to allocate.
    inode.i_size = end;
  }
  inode.i_ctime = currentTime(inode);
  if (!(mode & FALLOC_FL_KEEP_SIZE)) inode.i_mtime = inode.i_ctime;
  await mark_inode_dirty(inode, I_DIRTY_SYNC);
}

export const ramfs_file_operations: file_operations = {
  read: filemap_read,
  write: generic_file_write_iter,
  llseek: generic_file_llseek,
  fsync: noop_fsync,
  fallocate: ramfsFallocate,
};

const listxattr = async (d: dentry) => (d.d_inode as RamfsInode).xattrs.list();
const getattr = async (d: dentry, stat: kstat) => simple_getattr(d, stat);

export const ramfs_file_inode_operations: inode_operations = {
  setattr: simple_setattr,
  getattr,
  listxattr,
};
const ramfsSymlinkInodeOperations: inode_operations = { getattr, listxattr, setattr: simple_setattr };
const ramfsSpecialInodeOperations: inode_operations = { getattr, listxattr, setattr: simple_setattr };

/** ramfs_get_inode */
export function ramfs_get_inode(sb: super_block, dir: inode | null, mode: number, dev: number): inode {
  const inode = new_inode(sb);
  inode.i_ino = get_next_ino();
  insert_inode_hash(inode);
  inode_init_owner(inode, dir, mode);
  inode.i_mapping.a_ops = simple_aops;
  mapping_set_unevictable(inode.i_mapping);
  const now = currentTime(inode);
  inode.i_atime = now; inode.i_mtime = now; inode.i_ctime = now;
  inode.i_nlink = 1;
  switch (inode.i_mode & S_IFMT) {
    case S_IFREG:
      inode.i_op = ramfs_file_inode_operations;
      inode.i_fop = ramfs_file_operations;
      break;
    case S_IFDIR:
      inode.i_op = ramfs_dir_inode_operations;
      inode.i_fop = simple_offset_dir_operations;
      simple_offset_init(inode);
      // Directories start with two links: their entry and their own ".".
      inc_nlink(inode);
      break;
    case S_IFLNK:
      inode.i_op = ramfsSymlinkInodeOperations;
      break;
    default:
      inode.i_op = ramfsSpecialInodeOperations;
      init_special_inode(inode, inode.i_mode, dev);
  }
  return inode;
}

/** ramfs_mknod: instantiate and pin the dentry (the dcache is the directory). */
async function ramfsMknod(dir: inode, d: dentry, mode: number, dev: number): Promise<void> {
  const inode = ramfs_get_inode(dir.i_sb, dir, mode, dev);
  d_instantiate(d, inode);
  dget(d);
  simple_offset_add(dir, d);
  const now = currentTime(dir);
  dir.i_mtime = now; dir.i_ctime = now;
}

export const ramfs_dir_inode_operations: inode_operations = {
  async create(dir, d, mode) { await ramfsMknod(dir, d, (mode & ~S_IFMT) | S_IFREG, 0); },
  lookup: simple_lookup,
  link: simple_link,
  unlink: simple_unlink,
  async symlink(dir, d, target) {
    const inode = ramfs_get_inode(dir.i_sb, dir, S_IFLNK | 0o777, 0);
    inode.i_link = target;
    inode.i_size = target.length;
    d_instantiate(d, inode);
    dget(d);
    simple_offset_add(dir, d);
    const now = currentTime(dir);
    dir.i_mtime = now; dir.i_ctime = now;
  },
  async mkdir(dir, d, mode) {
    await ramfsMknod(dir, d, (mode & ~S_IFMT) | S_IFDIR, 0);
    inc_nlink(dir);
  },
  rmdir: simple_rmdir,
  mknod: ramfsMknod,
  rename: simple_rename,
  setattr: simple_setattr,
  getattr,
  listxattr,
};

const ramfsOps: super_operations = {
  statfs: simple_statfs,
  drop_inode: generic_delete_inode,
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

export const ramfs_fs_type: file_system_type = {
  name: 'ramfs',
  fs_flags: 0,
  async fill_super(sb: super_block, data: string): Promise<void> {
    sb.s_maxbytes = Number.MAX_SAFE_INTEGER;
    sb.s_blocksize = PAGE_SIZE;
    sb.s_blocksize_bits = 12;
    sb.s_magic = RAMFS_MAGIC;
    sb.s_op = ramfsOps;
    sb.s_time_gran = 1;
    sb.s_time_min = -(2 ** 53);
    sb.s_time_max = 2 ** 53 - 1;
    sb.s_xattr = simple_xattr_handlers((inode) => (inode as RamfsInode).xattrs);
    const root = ramfs_get_inode(sb, null, S_IFDIR | parseMode(data), 0);
    sb.s_root = d_make_root(root);
  },
};

register_filesystem(ramfs_fs_type);
export { simple_empty as simpleEmpty };
