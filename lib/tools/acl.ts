/*
 * POSIX ACLs as Linux stores them in the system.posix_acl_access / system.posix_acl_default
 * xattrs (include/uapi/linux/posix_acl_xattr.h: a little-endian u32 version 2, then entries
 * of u16 tag, u16 perm, u32 id) and as text (acl_to_text(3) short form with numeric ids,
 * "user::rw-,user:1234:rwx,group::r--,mask::rwx,other::r--"), the form GNU tar (--acls) and
 * star read from SCHILY.acl.access / SCHILY.acl.default pax records.
 */

export const ACL_ACCESS = 'system.posix_acl_access';
export const ACL_DEFAULT = 'system.posix_acl_default';

const VERSION = 2;
const TAGS: Record<number, string> = { 0x01: 'user', 0x02: 'user', 0x04: 'group', 0x08: 'group', 0x10: 'mask', 0x20: 'other' };
/** Tags that carry an id (ACL_USER, ACL_GROUP). */
const QUALIFIED = new Set([0x02, 0x08]);

const perm = (p: number) => `${p & 4 ? 'r' : '-'}${p & 2 ? 'w' : '-'}${p & 1 ? 'x' : '-'}`;

/**
 * The text form of an ACL xattr value, entries separated by `sep` (',' by default; GNU tar
 * itself writes '\n'; acl_from_text(3) reads both). Null when the value is not a valid ACL.
 */
export function aclToText(v: Uint8Array, sep = ','): string | null {
  const b = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (b.length < 4 || (b.length - 4) % 8 !== 0 || b.readUInt32LE(0) !== VERSION) return null;
  const out: string[] = [];
  for (let off = 4; off < b.length; off += 8) {
    const tag = b.readUInt16LE(off);
    const p = b.readUInt16LE(off + 2);
    const id = b.readUInt32LE(off + 4);
    const name = TAGS[tag];
    if (!name || p > 7) return null;
    out.push(`${name}:${QUALIFIED.has(tag) ? String(id) : ''}:${perm(p)}`);
  }
  return out.join(sep);
}

/** The xattr value of an ACL in text form (the inverse of aclToText; numeric ids only). */
export function aclFromText(text: string): Buffer | null {
  const parts = text.split(/[,\n]/).map((s) => s.trim()).filter((s) => s && !s.startsWith('#'));
  const b = Buffer.alloc(4 + 8 * parts.length);
  b.writeUInt32LE(VERSION, 0);
  let off = 4;
  for (const part of parts) {
    const m = /^(u|user|g|group|m|mask|o|other):(\d*):([r-])([w-])([x-])$/.exec(part);
    if (!m) return null;
    const kind = m[1]![0]!;
    const qualified = m[2] !== '';
    const tag = kind === 'u' ? (qualified ? 0x02 : 0x01) : kind === 'g' ? (qualified ? 0x08 : 0x04) : kind === 'm' ? 0x10 : 0x20;
    if (qualified && (kind === 'm' || kind === 'o')) return null;
    b.writeUInt16LE(tag, off);
    b.writeUInt16LE((m[3] === 'r' ? 4 : 0) + (m[4] === 'w' ? 2 : 0) + (m[5] === 'x' ? 1 : 0), off + 2);
    b.writeUInt32LE(qualified ? Number(m[2]) : 0xffffffff, off + 4);
    off += 8;
  }
  return b;
}
