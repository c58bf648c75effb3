/*
 * POSIX ACLs as the VFS holds them (include/linux/posix_acl.h) and as user space exchanges
 * them in the system.posix_acl_access / system.posix_acl_default xattrs
 * (include/uapi/linux/posix_acl.h, posix_acl_xattr.h): a little-endian u32 version 2, then
 * 8-byte entries (u16 tag, u16 perm, u32 id; the id is ACL_UNDEFINED_ID but for ACL_USER
 * and ACL_GROUP). An in-core ACL is its entries in order, as struct posix_acl's a_entries.
 */
import { le16, le32, put_le16, put_le32 } from '../lib/struct.js';

export const ACL_USER_OBJ = 0x01, ACL_USER = 0x02, ACL_GROUP_OBJ = 0x04, ACL_GROUP = 0x08,
  ACL_MASK = 0x10, ACL_OTHER = 0x20;
export const ACL_READ = 0x04, ACL_WRITE = 0x02, ACL_EXECUTE = 0x01;
export const ACL_UNDEFINED_ID = 0xffffffff;
export const POSIX_ACL_XATTR_VERSION = 0x0002;
/* the a_type of get_inode_acl / set_acl (include/uapi/linux/xattr.h's ACL_TYPE_*) */
export const ACL_TYPE_ACCESS = 0x8000, ACL_TYPE_DEFAULT = 0x4000;
export const XATTR_NAME_POSIX_ACL_ACCESS = 'system.posix_acl_access';
export const XATTR_NAME_POSIX_ACL_DEFAULT = 'system.posix_acl_default';

export interface posix_acl_entry { e_tag: number; e_perm: number; e_id: number }
/** struct posix_acl: the entries, in the order posix_acl_valid requires. */
export type posix_acl = posix_acl_entry[];

/**
 * ACL_NOT_CACHED: what inode.i_acl / i_default_acl hold until the filesystem was asked. Any
 * symbol there means "not cached": a load in progress puts its own sentinel, and stores
 * what it read only if that sentinel is still there (a set_acl meanwhile wins), as
 * Linux's uncached_acl_sentinel does.
 */
export const ACL_NOT_CACHED: unique symbol = Symbol('ACL_NOT_CACHED');
export type cached_acl = posix_acl | null | symbol;
export function is_uncached_acl(acl: cached_acl): acl is symbol { return typeof acl === 'symbol'; }

/** posix_acl_to_xattr: version 2 header, 8-byte entries; ids of *_OBJ/MASK/OTHER undefined. */
export function posix_acl_to_xattr(acl: readonly posix_acl_entry[]): Uint8Array {
  const b = new Uint8Array(4 + 8 * acl.length);
  put_le32(b, 0, POSIX_ACL_XATTR_VERSION);
  acl.forEach((e, i) => {
    const o = 4 + 8 * i;
    put_le16(b, o, e.e_tag); put_le16(b, o + 2, e.e_perm);
    put_le32(b, o + 4, e.e_tag === ACL_USER || e.e_tag === ACL_GROUP ? e.e_id : ACL_UNDEFINED_ID);
  });
  return b;
}

/** The entries of an xattr-form ACL, or the reason it is malformed. */
export function posix_acl_from_xattr(v: Uint8Array): posix_acl_entry[] | string {
  if (v.length < 4 || le32(v, 0) !== POSIX_ACL_XATTR_VERSION) return 'bad posix acl xattr version';
  if ((v.length - 4) % 8 !== 0) return 'bad posix acl xattr size';
  const out: posix_acl_entry[] = [];
  for (let o = 4; o < v.length; o += 8) {
    const tag = le16(v, o);
    if (![ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER].includes(tag))
      return `unknown acl tag ${tag}`;
    out.push({ e_tag: tag, e_perm: le16(v, o + 2),
      e_id: tag === ACL_USER || tag === ACL_GROUP ? le32(v, o + 4) : ACL_UNDEFINED_ID });
  }
  return out;
}

/** posix_acl_clone: a private copy to edit (posix_acl_create_masq and __posix_acl_chmod change entries). */
export function posix_acl_clone(acl: readonly posix_acl_entry[]): posix_acl {
  return acl.map((e) => ({ ...e }));
}
