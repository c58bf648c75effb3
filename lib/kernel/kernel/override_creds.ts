/*
 * Per-call filesystem credentials (kernel/cred.c's override_creds, used the way nfsd_setuser
 * uses it): a file server running in this process (lklfuse's kernel transport) makes each
 * system call with its caller's fsuid, fsgid and group_info. arch/syscalls.ts installs the
 * result as the syscall thread's cred for that one call; the process cred is not touched.
 * A leaf module (no syscall definitions), so arch/syscalls.ts may import it.
 */
import type { cred, FsCredOverride } from '../include/fs.js';
export type { FsCredOverride };
import {
  CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_LINUX_IMMUTABLE,
  CAP_MKNOD,
} from '../include/fs.js';

/* CAP_FS_MASK (include/linux/capability.h); 32 is CAP_MAC_OVERRIDE */
const CAP_FS_MASK = [CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID,
  CAP_LINUX_IMMUTABLE, 32, CAP_MKNOD];


/**
 * `base` with fsuid, fsgid and the supplementary groups replaced. Capabilities follow
 * setfsuid's rule (cap_task_fix_setuid): a non-zero fsuid drops CAP_FS_MASK, fsuid 0 keeps
 * what the process has.
 */
export function override_fscreds(base: cred, o: FsCredOverride): cred {
  const caps = new Set(base.cap_effective);
  if (o.fsuid !== 0) for (const c of CAP_FS_MASK) caps.delete(c);
  return { ...base, fsuid: o.fsuid, fsgid: o.fsgid, groups: [...o.groups].sort((a, b) => a - b), cap_effective: caps };
}
