/*
 * vfat's glue between the VFS and the directory format (fs/fat/namei_vfat.c): long names
 * and their 8.3 aliases, lookup (case-insensitive, by long or short name), create, mkdir,
 * rmdir, unlink and rename. All knowledge of the on-disk directory layout is in dir.ts.
 *
 * The dcache is case-sensitive while FAT names are not, so after a name appears the
 * negative dentries of its case variants are dropped (vfat_revalidate_ci's job in Linux),
 * and a rename-target lookup that matches only case-insensitively reports "absent": that
 * lets a case-only rename reach vfat_rename, which then sees the real entry.
 */
import type {
  dentry, dir_context, file, file_operations, inode, inode_operations,
} from '../../include/fs.js';
import { LOOKUP_RENAME_TARGET } from '../../include/fs.js';
import { err } from '../../include/errno.js';
import {
  EEXIST, EINVAL, EISDIR, ENOENT, ENOTDIR, ENOTEMPTY, EPERM, RENAME_NOREPLACE,
  S_IFMT, S_IFDIR, type timespec64,
} from '../../include/uapi.js';
import { bstrToBytes } from '../../lib/bstr.js';
import { clear_nlink, drop_nlink, inc_nlink, iput } from '../inode.js';
import { dget, d_instantiate, dput, d_unhash } from '../dcache.js';
import { mark_inode_dirty } from '../fs-writeback.js';
import { ktime_get_real_ts64 } from '../../kernel/timer.js';
import { MSDOS_I, MSDOS_SB, MSDOS_ROOT_INO, fat_checksum, fat_set_start, type msdos_inode_info } from './fat.js';
import {
  ATTR_ARCH, ATTR_DIR, ATTR_EXT, FAT_LFN_CHARS_PER_SLOT, FAT_MAX_LFN_SLOTS, LAST_LONG_ENTRY, MSDOS_DIR_ENTRY_SIZE,
  msdos_dir_entry_decode, msdos_dir_entry_encode, msdos_dir_entry_new, msdos_dir_slot_encode, type msdos_dir_entry,
  type msdos_dir_slot,
} from './layout.js';
import {
  vfat_create_shortname, vfat_name_eq, vfat_name_key, vfat_valid_longname, vfat_xlate_to_uni, vfat_striptail_len,
  fat_parse_short,
} from './names.js';
import {
  fat_add_entries, fat_alias_exists, fat_alloc_new_dir, fat_dir_cache, fat_dir_empty, fat_dir_invalidate, fat_readdir,
  fat_remove_entries, fat_search_long, fat_set_dotdot, type fat_slot_info,
} from './dir.js';
import { fat_attach, fat_build_inode, fat_detach, fat_write_inode } from './inode.js';
import { fat_free_clusters } from './fatent.js';
import { fat_time_unix2fat } from './time.js';
import { fat_truncate_time } from './misc.js';
import { fat_generic_ioctl, fat_getattr, fat_setattr } from './file.js';

function nameToUni(dir: inode, name: string): Uint16Array | number {
  const sbi = MSDOS_SB(dir.i_sb);
  const bytes = bstrToBytes(name);
  const len = vfat_striptail_len(bytes);
  return vfat_xlate_to_uni(bytes.subarray(0, len), { utf8: sbi.options.utf8 });
}

function nowFor(dir: inode): timespec64 {
  return fat_truncate_time(dir.i_sb, ktime_get_real_ts64(), 'crtime');
}

/** Drop cached negative dentries of case variants of `name` under `parent`. */
function vfat_d_invalidate_ci(parent: dentry, name: string, keep: dentry | null): void {
  const sbi = MSDOS_SB(parent.d_sb);
  const u = nameToUni(parent.d_inode!, name);
  if (typeof u === 'number') return;
  const key = vfat_name_key(u, sbi.options.fold);
  for (const d of [...parent.d_subdirs.values()]) {
    if (d === keep || d.d_inode) continue;
    const du = nameToUni(parent.d_inode!, d.d_name);
    if (typeof du !== 'number' && vfat_name_key(du, sbi.options.fold) === key) d_unhash(d);
  }
}

/**
 * Positive dentries that name `inode` under parent under another case: drop them, and
 * free the unused ones at once, so that an unlinked inode is not kept alive (its clusters
 * allocated) by a cached alias nobody uses.
 */
async function vfat_drop_aliases(parent: dentry, inode: inode, keep: dentry | null): Promise<void> {
  for (const d of [...parent.d_subdirs.values()]) {
    if (d === keep || d.d_inode !== inode) continue;
    dget(d);
    d_unhash(d);
    await dput(d);
  }
}

/* ---- lookup ---- */

async function vfat_find(dir: msdos_inode_info, name: string): Promise<fat_slot_info | null> {
  const u = nameToUni(dir, name);
  if (typeof u === 'number') {
    if (u === -EINVAL) return null;
    throw err(-u);
  }
  if (u.length === 0) return null;
  return fat_search_long(dir, u);
}

export async function vfat_lookup(dirI: inode, dentry: dentry, flags: number): Promise<inode | null> {
  const dir = MSDOS_I(dirI);
  const sbi = MSDOS_SB(dir.i_sb);
  await sbi.s_lock.lock();
  try {
    const s = await vfat_find(dir, dentry.d_name);
    if (!s) return null;
    const u = nameToUni(dir, dentry.d_name) as Uint16Array;
    const shown = s.record.longName ?? fat_parse_short(s.record.de.name, s.record.de.lcase, sbi.options.shortname);
    if (!vfat_name_eq(shown, u, 'ascii', true)) {
      // Found under another spelling. Our dcache compares names exactly, so a dentry for
      // this spelling must not stay cached: it would be a second dentry (alias) of the
      // inode, which later renames and directory locking must never see. It serves this
      // one operation, unhashed. A rename target found this way reads as absent, so that
      // a case-only rename reaches vfat_rename, which finds the entry itself (Linux gets
      // there through vfat_revalidate_ci dropping dentries for LOOKUP_RENAME_TARGET).
      d_unhash(dentry);
      if (flags & LOOKUP_RENAME_TARGET) return null;
    }
    return await inodeAt(dir, s.i_pos); // the entry as it is now: write_inode may have changed it
  } finally { sbi.s_lock.unlock(); }
}

/* ---- adding an entry ---- */

/**
 * vfat_build_slots' long part: splits a long name (UTF-16, already validated, at most 255
 * units) into slots in disk order, the LAST_LONG_ENTRY slot first. A name that does not
 * fill its last slot is ended by one 0x0000 then padded with 0xFFFF; a name that fills it
 * exactly gets neither.
 */
export function vfat_split_long_name(uname: Uint16Array, aliasChecksum: number): msdos_dir_slot[] {
  const n = Math.ceil(uname.length / FAT_LFN_CHARS_PER_SLOT);
  if (n === 0 || n > FAT_MAX_LFN_SLOTS) throw new RangeError(`long name of ${uname.length} units`);
  const padded = new Uint16Array(n * FAT_LFN_CHARS_PER_SLOT).fill(0xffff);
  padded.set(uname);
  if (uname.length < padded.length) padded[uname.length] = 0;
  const slots: msdos_dir_slot[] = [];
  for (let i = n; i >= 1; i--) {
    const base = (i - 1) * FAT_LFN_CHARS_PER_SLOT;
    slots.push({
      id: i === n ? i | LAST_LONG_ENTRY : i,
      name0_4: Array.from(padded.subarray(base, base + 5)),
      attr: ATTR_EXT,
      reserved: 0,
      alias_checksum: aliasChecksum,
      name5_10: Array.from(padded.subarray(base + 5, base + 11)),
      start: 0,
      name11_12: Array.from(padded.subarray(base + 11, base + 13)),
    });
  }
  return slots;
}

/**
 * Encodes a whole directory record: long-name slots (if uname is given) then the 8.3 entry,
 * whose name provides the alias checksum. Returns (slots + 1) * 32 bytes.
 */
export function vfat_encode_record(de: msdos_dir_entry, uname: Uint16Array | null): Uint8Array {
  const slots = uname && uname.length ? vfat_split_long_name(uname, fat_checksum(de.name)) : [];
  const out = new Uint8Array((slots.length + 1) * MSDOS_DIR_ENTRY_SIZE);
  slots.forEach((s, i) => msdos_dir_slot_encode(s, out, i * MSDOS_DIR_ENTRY_SIZE));
  msdos_dir_entry_encode(de, out, slots.length * MSDOS_DIR_ENTRY_SIZE);
  return out;
}

/**
 * vfat_add_entry: validate the name, make its alias, write slots + 8.3 entry. Returns the
 * i_pos of the entry. EEXIST if the name (or a case variant) is taken.
 */
async function vfat_add_entry(dir: msdos_inode_info, name: string, isDir: boolean, cluster: number, ts: timespec64): Promise<number> {
  const sb = dir.i_sb;
  const sbi = MSDOS_SB(sb);
  const uname = vfat_valid_longname(bstrToBytes(name), { utf8: sbi.options.utf8 });
  if (typeof uname === 'number') throw err(-uname);
  if (await fat_search_long(dir, uname)) throw err(EEXIST);
  const cache = await fat_dir_cache(dir);
  const sn = vfat_create_shortname(uname, {
    shortname: sbi.options.shortname, numtail: sbi.options.numtail, seed: sbi.tailSeed++,
  }, (n11) => fat_alias_exists(cache, n11));
  if (typeof sn === 'number') throw err(-sn);
  const de: msdos_dir_entry = msdos_dir_entry_new(sn.name, isDir ? ATTR_DIR : ATTR_ARCH);
  de.lcase = sn.lcase;
  const t = fat_time_unix2fat(sbi.options.tz, ts.sec, ts.nsec);
  de.time = t.time; de.date = t.date;
  de.ctime = t.time; de.cdate = t.date; de.ctime_cs = t.timeCs;
  de.adate = t.date;
  fat_set_start(de, cluster);
  const rec = vfat_encode_record(de, sn.isShortname ? null : uname);
  const { i_pos } = await fat_add_entries(dir, rec);
  dir.i_mtime = fat_truncate_time(sb, ts, 'mtime');
  dir.i_ctime = { ...ts };
  await mark_inode_dirty(dir);
  return i_pos;
}

async function vfat_create(dirI: inode, dentry: dentry, _mode: number, _excl: boolean): Promise<void> {
  const dir = MSDOS_I(dirI);
  const sb = dir.i_sb;
  const sbi = MSDOS_SB(sb);
  await sbi.s_lock.lock();
  try {
    const ts = nowFor(dir);
    const i_pos = await vfat_add_entry(dir, dentry.d_name, false, 0, ts);
    await instantiateAt(dir, dentry, i_pos, ts);
  } finally { sbi.s_lock.unlock(); }
}

/** Attach the inode of the entry just written at i_pos (created at `ts`) to its dentry. */
async function instantiateAt(dir: msdos_inode_info, dentry: dentry, i_pos: number, ts: timespec64): Promise<void> {
  const inode = await inodeAt(dir, i_pos);
  inode.i_btime = { ...ts };
  d_instantiate(dentry, inode);
  vfat_d_invalidate_ci(dentry.d_parent, dentry.d_name, dentry);
}

/** The inode of the entry just written at i_pos. */
async function inodeAt(dir: msdos_inode_info, i_pos: number): Promise<msdos_inode_info> {
  const sbi = MSDOS_SB(dir.i_sb);
  const blk = Math.floor(i_pos / sbi.dir_per_block);
  const bh = await sbi.bops.bread(blk);
  const de = msdos_dir_entry_decode(bh.b_data, (i_pos % sbi.dir_per_block) * 32);
  sbi.bops.brelse(bh);
  return fat_build_inode(dir.i_sb, de, i_pos);
}

async function vfat_mkdir(dirI: inode, dentry: dentry, _mode: number): Promise<void> {
  const dir = MSDOS_I(dirI);
  const sb = dir.i_sb;
  const sbi = MSDOS_SB(sb);
  await sbi.s_lock.lock();
  try {
    const ts = nowFor(dir);
    const uname = vfat_valid_longname(bstrToBytes(dentry.d_name), { utf8: sbi.options.utf8 });
    if (typeof uname === 'number') throw err(-uname);
    if (await fat_search_long(dir, uname)) throw err(EEXIST);
    const stamp = msdos_dir_entry_new('', ATTR_DIR);
    const t = fat_time_unix2fat(sbi.options.tz, ts.sec, ts.nsec);
    stamp.time = t.time; stamp.date = t.date; stamp.ctime = t.time; stamp.cdate = t.date; stamp.ctime_cs = t.timeCs; stamp.adate = t.date;
    const cluster = await fat_alloc_new_dir(dir, stamp);
    let i_pos: number;
    try {
      i_pos = await vfat_add_entry(dir, dentry.d_name, true, cluster, ts);
    } catch (e) {
      await fat_free_clusters(sb, cluster, true);
      throw e;
    }
    inc_nlink(dir);
    await instantiateAt(dir, dentry, i_pos, ts);
  } finally { sbi.s_lock.unlock(); }
}

/* ---- removing ---- */

async function findEntryOf(dir: msdos_inode_info, inode: msdos_inode_info): Promise<fat_slot_info> {
  const s = (await fat_dir_cache(dir)).byPos.get(inode.i_pos);
  if (!s || !inode.i_pos) throw err(ENOENT);
  return s;
}

async function vfat_unlink(dirI: inode, dentry: dentry): Promise<void> {
  const dir = MSDOS_I(dirI);
  const inode = MSDOS_I(dentry.d_inode!);
  const sbi = MSDOS_SB(dir.i_sb);
  await sbi.s_lock.lock();
  try {
    const s = await findEntryOf(dir, inode);
    await fat_remove_entries(dir, s.record);
    const ts = nowFor(dir);
    dir.i_mtime = fat_truncate_time(dir.i_sb, ts, 'mtime');
    dir.i_ctime = ts;
    await mark_inode_dirty(dir);
    fat_detach(inode);
    clear_nlink(inode);
    inode.i_ctime = ts;
    await vfat_drop_aliases(dentry.d_parent, inode, dentry);
  } finally { sbi.s_lock.unlock(); }
}

async function vfat_rmdir(dirI: inode, dentry: dentry): Promise<void> {
  const dir = MSDOS_I(dirI);
  const inode = MSDOS_I(dentry.d_inode!);
  const sbi = MSDOS_SB(dir.i_sb);
  await sbi.s_lock.lock();
  try {
    if (!(await fat_dir_empty(inode))) throw err(ENOTEMPTY);
    const s = await findEntryOf(dir, inode);
    await fat_remove_entries(dir, s.record);
    const ts = nowFor(dir);
    dir.i_mtime = fat_truncate_time(dir.i_sb, ts, 'mtime');
    dir.i_ctime = ts;
    drop_nlink(dir);
    await mark_inode_dirty(dir);
    fat_detach(inode);
    clear_nlink(inode);
    await vfat_drop_aliases(dentry.d_parent, inode, dentry);
  } finally { sbi.s_lock.unlock(); }
}

/* ---- rename ---- */

async function vfat_rename(oldDirI: inode, oldDentry: dentry, newDirI: inode, newDentry: dentry, flags: number): Promise<void> {
  if (flags & ~RENAME_NOREPLACE) throw err(EINVAL); // RENAME_EXCHANGE, RENAME_WHITEOUT
  const oldDir = MSDOS_I(oldDirI);
  const newDir = MSDOS_I(newDirI);
  const oldInode = MSDOS_I(oldDentry.d_inode!);
  const sb = oldDir.i_sb;
  const sbi = MSDOS_SB(sb);
  const isDir = (oldInode.i_mode & S_IFMT) === S_IFDIR;
  await sbi.s_lock.lock();
  try {
    const oldSlot = await findEntryOf(oldDir, oldInode);
    // The target: the VFS's, or an entry only a case-insensitive match finds.
    let newInode = newDentry.d_inode ? MSDOS_I(newDentry.d_inode) : null;
    let heldTarget = false;
    const uname = vfat_valid_longname(bstrToBytes(newDentry.d_name), { utf8: sbi.options.utf8 });
    if (typeof uname === 'number') throw err(-uname);
    if (!newInode) {
      const found = await fat_search_long(newDir, uname);
      if (found && found.i_pos !== oldInode.i_pos) {
        if (flags & RENAME_NOREPLACE) throw err(EEXIST);
        newInode = await inodeAt(newDir, found.i_pos);
        heldTarget = true;
      }
    }
    try {
      // The VFS checked ancestry by dentry; a path spelled with another case reaches the
      // same directory through another (unhashed) dentry, so check again by inode: never
      // move a directory below itself.
      if (isDir) {
        for (let p = newDentry.d_parent; ; p = p.d_parent) {
          if (p.d_inode === oldInode) throw err(EINVAL);
          if (p.isRoot) break;
        }
      }
      if (newInode && (newInode.i_mode & S_IFMT) === S_IFDIR) {
        for (let p = oldDentry.d_parent; ; p = p.d_parent) {
          if (p.d_inode === newInode) throw err(ENOTEMPTY);
          if (p.isRoot) break;
        }
      }
      if (newInode) {
        const newIsDir = (newInode.i_mode & S_IFMT) === S_IFDIR;
        if (isDir && !newIsDir) throw err(ENOTDIR);
        if (!isDir && newIsDir) throw err(EISDIR);
        if (newIsDir && !(await fat_dir_empty(newInode))) throw err(ENOTEMPTY);
      }
      const ts = nowFor(oldDir);
      const de = oldSlot.record.de;
      let newPos: number;
      let oldGone = false;
      if (newInode) {
        // The target's record is replaced by one with the new name. (Linux keeps the target's
        // entry and name; with our case-sensitive dcache the on-disk name must be the one the
        // dentry gets, or a later lookup of the old spelling would make a second dentry.)
        // When the new record fits in the target's slots, free them first, so nothing is
        // allocated; otherwise add first: an ENOSPC then leaves everything as it was.
        const t = await findEntryOf(newDir, newInode);
        const rec = await vfat_build_record(newDir, uname, de, t.record.de.name);
        const have = (t.record.offset - t.record.slotOffset) / 32 + 1;
        if (rec.length / 32 <= have) {
          await fat_remove_entries(newDir, t.record);
          newPos = (await fat_add_entries(newDir, rec)).i_pos;
        } else {
          newPos = (await fat_add_entries(newDir, rec)).i_pos;
          await fat_remove_entries(newDir, t.record);
        }
        fat_detach(newInode);
      } else if (oldDir === newDir && (await fat_search_long(newDir, uname))?.i_pos === oldInode.i_pos) {
        // Case-only rename: the old record must go first, or the new name collides with it.
        await fat_remove_entries(oldDir, oldSlot.record);
        oldGone = true;
        try {
          newPos = await vfat_add_entry_de(newDir, uname, de);
        } catch (e) {
          await fat_add_entries(oldDir, vfat_encode_record(de, oldSlot.record.longName)).catch(() => {});
          fat_dir_invalidate(oldDir);
          throw e;
        }
      } else {
        newPos = await vfat_add_entry_de(newDir, uname, de);
      }
      if (!oldGone) await fat_remove_entries(oldDir, oldSlot.record);
      fat_detach(oldInode);
      fat_attach(oldInode, newPos);
      oldInode.i_ctime = ts;
      await fat_write_inode(oldInode, false);
      if (isDir) {
        if (oldDir !== newDir) await fat_set_dotdot(oldInode, newDir);
        drop_nlink(oldDir);
        if (!newInode) inc_nlink(newDir);
      }
      if (newInode) {
        newInode.i_ctime = ts;
        clear_nlink(newInode);
        await vfat_drop_aliases(newDentry.d_parent, newInode, newDentry);
      }
      oldDir.i_mtime = fat_truncate_time(sb, ts, 'mtime'); oldDir.i_ctime = ts;
      newDir.i_mtime = fat_truncate_time(sb, ts, 'mtime'); newDir.i_ctime = ts;
      await mark_inode_dirty(oldDir);
      if (newDir !== oldDir) await mark_inode_dirty(newDir);
      vfat_d_invalidate_ci(newDentry.d_parent, newDentry.d_name, newDentry);
      await vfat_drop_aliases(oldDentry.d_parent, oldInode, oldDentry);
    } finally {
      if (heldTarget && newInode) await iput(newInode);
    }
  } finally { sbi.s_lock.unlock(); }
}

/**
 * The record (slots + 8.3 entry) for an existing file under a new name: its entry with a
 * new alias. `replacing`: the alias of an entry about to be removed, free for reuse.
 */
async function vfat_build_record(dir: msdos_inode_info, uname: Uint16Array, old: msdos_dir_entry, replacing: Uint8Array | null): Promise<Uint8Array> {
  const sbi = MSDOS_SB(dir.i_sb);
  const cache = await fat_dir_cache(dir);
  const sn = vfat_create_shortname(uname, {
    shortname: sbi.options.shortname, numtail: sbi.options.numtail, seed: sbi.tailSeed++,
  }, (n11) => (replacing !== null && n11.every((c, i) => c === replacing[i])) ? false : fat_alias_exists(cache, n11));
  if (typeof sn === 'number') throw err(-sn);
  const de: msdos_dir_entry = { ...old, name: sn.name, lcase: sn.lcase };
  return vfat_encode_record(de, sn.isShortname ? null : uname);
}

/** Add a record for an existing file (rename) where no entry has the name. */
async function vfat_add_entry_de(dir: msdos_inode_info, uname: Uint16Array, old: msdos_dir_entry): Promise<number> {
  if (await fat_search_long(dir, uname)) throw err(EEXIST);
  const rec = await vfat_build_record(dir, uname, old, null);
  return (await fat_add_entries(dir, rec)).i_pos;
}

async function vfat_eperm(): Promise<void> { throw err(EPERM); }

export const vfat_dir_inode_operations: inode_operations = {
  lookup: vfat_lookup,
  create: vfat_create,
  unlink: vfat_unlink,
  mkdir: vfat_mkdir,
  rmdir: vfat_rmdir,
  rename: vfat_rename,
  symlink: vfat_eperm,
  link: vfat_eperm,
  mknod: vfat_eperm,
  setattr: (d, a) => fat_setattr(d, a),
  getattr: (d, s) => fat_getattr(d, s),
};

export const fat_dir_operations: file_operations = {
  // fat_dir_ioctl: VFAT_IOCTL_READDIR_BOTH/SHORT are not served here (ENOTTY).
  unlocked_ioctl: fat_generic_ioctl,
  async iterate_shared(file: file, ctx: dir_context): Promise<void> {
    const dir = MSDOS_I(file.f_inode);
    const parent = file.f_path.dentry.d_parent.d_inode;
    const parentIno = dir.i_ino === MSDOS_ROOT_INO || !parent ? dir.i_ino : parent.i_ino;
    const sbi = MSDOS_SB(dir.i_sb);
    await sbi.s_lock.lock();
    try { await fat_readdir(dir, ctx, parentIno); } finally { sbi.s_lock.unlock(); }
  },
  async fsync(file: file): Promise<void> {
    const sbi = MSDOS_SB(file.f_inode.i_sb);
    await fat_write_inode(file.f_inode, true);
    await sbi.bops.syncBuffers(null);
    await sbi.bops.flush();
  },
};

