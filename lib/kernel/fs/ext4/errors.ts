/*
 * How ext4 reports what it finds wrong (fs/ext4/super.c: __ext4_error, ext4_msg,
 * ext4_handle_error). Every check of distrusted disk data ends here with the name of its
 * failure; this file alone knows the errors= policy:
 *   continue   → the call fails, the filesystem is marked as having errors;
 *   remount-ro → the same, and the superblock becomes read-only;
 *   panic      → Linux panics; we cannot take the process down for a bad disk, so the
 *                filesystem shuts down instead (every later call fails with EIO).
 * The returned Errno is EFSCORRUPTED (EUCLEAN) for structural damage, EFSBADCRC (EBADMSG)
 * for checksum mismatches, as Linux returns them. May touch: the sb_info and the console.
 */
import { SB_RDONLY, type super_block } from '../../include/fs.js';
import { Errno, err } from '../../include/errno.js';
import { EFSBADCRC, EFSCORRUPTED, EIO } from '../../include/uapi.js';
import { currentOrNull } from '../../arch/cpu.js';
import { KERN_CRIT, KERN_ERR, KERN_INFO, KERN_WARNING, printk } from '../../kernel/printk.js';
import { EXT4_MOUNT_ERRORS_PANIC, EXT4_MOUNT_ERRORS_RO, type ext4_sb_info } from './ext4.js';

const LEVELS: Record<string, string> = { KERN_ERR, KERN_WARNING, KERN_INFO };

/** ext4_msg: "EXT4-fs (vda): ..." at the level named ('KERN_ERR', 'KERN_WARNING', 'KERN_INFO'). */
export function ext4_msg(sb: super_block, level: string, msg: string): void {
  printk(`${LEVELS[level] ?? ''}EXT4-fs (${sb.s_id}): ${msg}`);
}

export interface Ext4ErrorWhere { ino?: number; block?: number; csum?: boolean }

function sbiOf(sb: super_block): ext4_sb_info | null { return (sb.s_fs_info as ext4_sb_info | null) ?? null; }

/**
 * __ext4_error / ext4_error_inode: print once, mark the filesystem as having errors,
 * apply errors=, and return the error the failing call throws.
 */
export function ext4_error(sb: super_block, func: string, msg: string, where: Ext4ErrorWhere = {}): Errno {
  const sbi = sbiOf(sb);
  let line = `EXT4-fs error (device ${sb.s_id}): ${func}: `;
  if (where.ino !== undefined) line += `inode #${where.ino}: `;
  if (where.block !== undefined) line += `block ${where.block}: `;
  const comm = currentOrNull()?.comm;
  if (comm && where.ino !== undefined) line += `comm ${comm}: `;
  line += msg;
  if (!sbi || !sbi.s_error_printed.has(line)) {
    sbi?.s_error_printed.add(line);
    printk(KERN_CRIT + line);
  }
  if (sbi) {
    sbi.s_has_errors = true;
    sbi.s_error_count++;
    if (sbi.test_opt(EXT4_MOUNT_ERRORS_PANIC)) {
      if (!sbi.s_shutdown) printk(`${KERN_CRIT}EXT4-fs (${sb.s_id}): panic forced after error (filesystem shut down)`);
      sbi.s_shutdown = true;
    } else if (sbi.test_opt(EXT4_MOUNT_ERRORS_RO) && !(sb.s_flags & SB_RDONLY)) {
      printk(`${KERN_CRIT}EXT4-fs (${sb.s_id}): Remounting filesystem read-only`);
      sb.s_flags |= SB_RDONLY;
      sbi.s_ro_by_error = true;
    }
  }
  return err(where.csum ? EFSBADCRC : EFSCORRUPTED, `${func}: ${msg}`);
}

/**
 * ext4_abort (__ext4_error with force_ro): an error after which the filesystem cannot go
 * on writing (the journal aborted). Recorded like ext4_error; then read-only whatever
 * errors= says, except errors=panic, which shuts the filesystem down.
 */
export function ext4_abort(sb: super_block, func: string, msg: string): void {
  const sbi = sbiOf(sb);
  const line = `EXT4-fs error (device ${sb.s_id}): ${func}: ${msg}`;
  if (!sbi || !sbi.s_error_printed.has(line)) {
    sbi?.s_error_printed.add(line);
    printk(KERN_CRIT + line);
  }
  if (!sbi) return;
  sbi.s_has_errors = true;
  sbi.s_error_count++;
  if (sbi.test_opt(EXT4_MOUNT_ERRORS_PANIC)) {
    if (!sbi.s_shutdown) printk(`${KERN_CRIT}EXT4-fs (${sb.s_id}): panic forced after error (filesystem shut down)`);
    sbi.s_shutdown = true;
  } else {
    if (!(sb.s_flags & SB_RDONLY)) {
      printk(`${KERN_CRIT}EXT4-fs (${sb.s_id}): Remounting filesystem read-only`);
      sb.s_flags |= SB_RDONLY;
    }
    // Read-only because of the error: the error state reaches the disk (ext4_put_super),
    // as Linux's ext4_handle_error commits it, so the next fsck is forced.
    sbi.s_ro_by_error = true;
  }
}

/** ext4_error for a checksum mismatch: the call fails with EFSBADCRC (EBADMSG). */
export function ext4_csum_error(sb: super_block, func: string, msg: string, where: Ext4ErrorWhere = {}): Errno {
  return ext4_error(sb, func, msg, { ...where, csum: true });
}

/** ext4_warning: printed, nothing else. */
export function ext4_warning(sb: super_block, func: string, msg: string): void {
  printk(`${KERN_WARNING}EXT4-fs warning (device ${sb.s_id}): ${func}: ${msg}`);
}

/** Calls on a shut-down filesystem (errors=panic after an error) fail with EIO. */
export function ext4_check_shutdown(sb: super_block): void {
  const sbi = sbiOf(sb);
  if (sbi?.s_shutdown) throw err(EIO);
}
