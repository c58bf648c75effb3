/*
 * Read-only sysctl values by their dotted names (kernel/sysctl.c's tables, reduced to what
 * lkl-ts has): what /proc/sys/<name with / for .> would print. There is no procfs; hosts read
 * them through KernelCore.sysctl (lklfuse logs them on SIGUSR2).
 */
import { proc_nr_dentry } from '../fs/dcache.js';
import { proc_nr_inodes } from '../fs/inode.js';
import { sysctl_hung_task_detect_count, sysctl_hung_task_timeout_secs } from './hung_task.js';

const table: Record<string, () => string> = {
  'fs.inode-nr': proc_nr_inodes,
  'fs.dentry-state': proc_nr_dentry,
  'kernel.hung_task_timeout_secs': () => String(sysctl_hung_task_timeout_secs),
  'kernel.hung_task_detect_count': () => String(sysctl_hung_task_detect_count),
};

/** The names sysctl_read knows. */
export const sysctl_names = Object.keys(table);

/** The value of sysctl `name`, or undefined if there is none. */
export function sysctl_read(name: string): string | undefined { return table[name]?.(); }
