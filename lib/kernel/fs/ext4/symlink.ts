/*
 * Symbolic links (fs/ext4/symlink.c): fast symlinks keep the target in i_block (read at
 * iget into i_link), slow ones in a data block, inline-data ones in the inode's inline
 * area. Encrypted symlinks need the fscrypt key machinery, which lkl-ts does not have:
 * reading them fails with EOPNOTSUPP (Linux without the key shows an encoded name;
 * without CONFIG_FS_ENCRYPTION it refuses the same way).
 */
import type { dentry, inode, inode_operations } from '../../include/fs.js';
import { err } from '../../include/errno.js';
import { EOPNOTSUPP } from '../../include/uapi.js';
import { bytesToBstr } from '../../lib/bstr.js';
import { EXT4_I, EXT4_SB } from './ext4.js';
import { ext4_error } from './errors.js';
import { ext4_getattr, ext4_read_data, ext4_setattr } from './inode.js';
import { ext4_listxattr } from './xattr.js';

async function ext4_get_fast_link(_dentry: dentry | null, inode: inode): Promise<string> {
  return inode.i_link ?? '';
}

/** page_get_link for slow (block or inline) symlinks: i_size bytes, cut at a NUL. */
async function ext4_get_link(_dentry: dentry | null, inode: inode): Promise<string> {
  const ei = EXT4_I(inode);
  const bs = EXT4_SB(inode.i_sb).s_blocksize;
  if (ei.i_size <= 0 || ei.i_size > Math.max(bs, 4096))
    throw ext4_error(inode.i_sb, 'ext4_get_link', `bad symlink size ${ei.i_size}`, { ino: inode.i_ino });
  const buf = new Uint8Array(ei.i_size);
  await ext4_read_data(ei, 0, buf);
  const nul = buf.indexOf(0);
  return bytesToBstr(buf, 0, nul >= 0 ? nul : buf.length);
}

async function ext4_encrypted_get_link(): Promise<string> { throw err(EOPNOTSUPP); }

export const ext4_fast_symlink_inode_operations: inode_operations = {
  get_link: ext4_get_fast_link, getattr: ext4_getattr, setattr: ext4_setattr, listxattr: ext4_listxattr,
};
export const ext4_symlink_inode_operations: inode_operations = {
  get_link: ext4_get_link, getattr: ext4_getattr, setattr: ext4_setattr, listxattr: ext4_listxattr,
};
export const ext4_encrypted_symlink_inode_operations: inode_operations = {
  get_link: ext4_encrypted_get_link, getattr: ext4_getattr, setattr: ext4_setattr, listxattr: ext4_listxattr,
};
