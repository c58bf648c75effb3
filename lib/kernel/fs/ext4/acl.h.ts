/*
 * ACLs on disk (fs/ext4/acl.h): ext4's compact form, and the POSIX xattr form the VFS exchanges.
 */
import { le16, le32, put_le16, put_le32 } from '../../lib/struct.js';
/* ------------------------------------------------------------------------------------ */
/* ACLs: ext4's compact on-disk form (acl.h) and the POSIX xattr form the VFS exchanges    */

export {
  ACL_USER_OBJ, ACL_USER, ACL_GROUP_OBJ, ACL_GROUP, ACL_MASK, ACL_OTHER, ACL_READ, ACL_WRITE, ACL_EXECUTE,
  ACL_UNDEFINED_ID, POSIX_ACL_XATTR_VERSION, posix_acl_to_xattr, posix_acl_from_xattr, type posix_acl_entry,
} from '../../include/posix_acl.js';
import { ACL_USER, ACL_GROUP, ACL_USER_OBJ, ACL_GROUP_OBJ, ACL_MASK, ACL_OTHER, ACL_UNDEFINED_ID, type posix_acl_entry } from '../../include/posix_acl.js';
export const EXT4_ACL_VERSION = 0x0001;

/**
 * ext4_acl_from_disk: version word, then 4-byte short entries for USER_OBJ, GROUP_OBJ,
 * MASK and OTHER and 8-byte ones (with an id) for USER and GROUP. Returns a reason on
 * malformed input (Linux's EINVAL).
 */
export function ext4_acl_from_disk(v: Uint8Array): posix_acl_entry[] | string {
  if (v.length < 4) return 'acl too short';
  if (le32(v, 0) !== EXT4_ACL_VERSION) return 'bad acl version';
  const out: posix_acl_entry[] = [];
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
export function ext4_acl_to_disk(acl: readonly posix_acl_entry[]): Uint8Array {
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
