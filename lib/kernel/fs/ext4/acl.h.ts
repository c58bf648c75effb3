/*
 * ACLs on disk (fs/ext4/acl.h): ext4's compact form, and the POSIX xattr form the VFS exchanges.
 */
import { le16, le32, put_le16, put_le32 } from '../../lib/struct.js';
/* ------------------------------------------------------------------------------------ */
/* ACLs: ext4's compact on-disk form (acl.h) and the POSIX xattr form the VFS exchanges    */

export const ACL_USER_OBJ = 0x01, ACL_USER = 0x02, ACL_GROUP_OBJ = 0x04, ACL_GROUP = 0x08,
  ACL_MASK = 0x10, ACL_OTHER = 0x20;
export const ACL_READ = 0x04, ACL_WRITE = 0x02, ACL_EXECUTE = 0x01;
export const ACL_UNDEFINED_ID = 0xffffffff;
export const EXT4_ACL_VERSION = 0x0001;
export const POSIX_ACL_XATTR_VERSION = 0x0002;
export interface PosixAclEntry { e_tag: number; e_perm: number; e_id: number }

/**
 * ext4_acl_from_disk: version word, then 4-byte short entries for USER_OBJ, GROUP_OBJ,
 * MASK and OTHER and 8-byte ones (with an id) for USER and GROUP. Returns a reason on
 * malformed input (Linux's EINVAL).
 */
export function ext4_acl_from_disk(v: Uint8Array): PosixAclEntry[] | string {
  if (v.length < 4) return 'acl too short';
  if (le32(v, 0) !== EXT4_ACL_VERSION) return 'bad acl version';
  const out: PosixAclEntry[] = [];
  let o = 4;
  while (o < v.length) {
    if (o + 4 > v.length) return 'truncated acl entry';
    const tag = le16(v, o), perm = le16(v, o + 2);
    switch (tag) {
      case ACL_USER_OBJ: case ACL_GROUP_OBJ: case ACL_MASK: case ACL_OTHER:
        out.push({ e_tag: tag, e_perm: perm, e_id: ACL_UNDEFINED_ID });
        o += 4;
        break;
      case ACL_USER: case ACL_GROUP:
        if (o + 8 > v.length) return 'truncated acl entry';
        out.push({ e_tag: tag, e_perm: perm, e_id: le32(v, o + 4) });
        o += 8;
        break;
      default:
        return `unknown acl tag ${tag}`;
    }
  }
  return out;
}
export function ext4_acl_to_disk(acl: readonly PosixAclEntry[]): Uint8Array {
  let n = 4;
  for (const e of acl) n += e.e_tag === ACL_USER || e.e_tag === ACL_GROUP ? 8 : 4;
  const b = new Uint8Array(n);
  put_le32(b, 0, EXT4_ACL_VERSION);
  let o = 4;
  for (const e of acl) {
    put_le16(b, o, e.e_tag); put_le16(b, o + 2, e.e_perm);
    if (e.e_tag === ACL_USER || e.e_tag === ACL_GROUP) { put_le32(b, o + 4, e.e_id); o += 8; } else o += 4;
  }
  return b;
}
/** posix_acl_to_xattr: version 2 header, 8-byte entries; ids of *_OBJ/MASK/OTHER undefined. */
export function posix_acl_to_xattr(acl: readonly PosixAclEntry[]): Uint8Array {
  const b = new Uint8Array(4 + 8 * acl.length);
  put_le32(b, 0, POSIX_ACL_XATTR_VERSION);
  acl.forEach((e, i) => {
    const o = 4 + 8 * i;
    put_le16(b, o, e.e_tag); put_le16(b, o + 2, e.e_perm);
    put_le32(b, o + 4, e.e_tag === ACL_USER || e.e_tag === ACL_GROUP ? e.e_id : ACL_UNDEFINED_ID);
  });
  return b;
}
export function posix_acl_from_xattr(v: Uint8Array): PosixAclEntry[] | string {
  if (v.length < 4 || le32(v, 0) !== POSIX_ACL_XATTR_VERSION) return 'bad posix acl xattr version';
  if ((v.length - 4) % 8 !== 0) return 'bad posix acl xattr size';
  const out: PosixAclEntry[] = [];
  for (let o = 4; o < v.length; o += 8) {
    const tag = le16(v, o);
    if (![ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER].includes(tag))
      return `unknown acl tag ${tag}`;
    out.push({ e_tag: tag, e_perm: le16(v, o + 2),
      e_id: tag === ACL_USER || tag === ACL_GROUP ? le32(v, o + 4) : ACL_UNDEFINED_ID });
  }
  return out;
}
