/*
 * Task credentials (kernel/cred.c, kernel/sys.c's set*id family, kernel/groups.c).
 * The process's credentials live in the syscall process context (`processContext().cred`)
 * and are installed into each syscall thread; kernel threads started at boot run as root.
 * Capabilities follow Linux's rule for root: euid 0 has all of them, and changing the
 * effective uid away from 0 drops the filesystem ones (and fsuid follows euid).
 */
import { current } from '../arch/cpu.js';
import { processContext, define_syscall } from '../arch/syscalls.js';
import type { cred } from '../include/fs.js';
import { CAP_SETGID, CAP_SETUID } from '../include/fs.js';
import { err } from '../include/errno.js';
import { EINVAL, EPERM } from '../include/uapi.js';
import * as NR from '../include/unistd.js';

const ALL_CAPS = Array.from({ length: 41 }, (_, i) => i);

export function rootCred(): cred {
  return { uid: 0, gid: 0, suid: 0, sgid: 0, euid: 0, egid: 0, fsuid: 0, fsgid: 0, groups: [], cap_effective: new Set(ALL_CAPS) };
}

/** current_cred(): the credentials of the running task. */
export function current_cred(): cred {
  const c = current().ctx.cred as cred | undefined;
  if (c) return c;
  const r = rootCred();
  current().ctx.cred = r;
  return r;
}
export function capable(cap: number): boolean { return current_cred().cap_effective.has(cap); }
export function in_group_p(gid: number): boolean {
  const c = current_cred();
  return c.fsgid === gid || c.groups.includes(gid);
}

/** Recompute capabilities after a uid change, as Linux's cap_emulate_setxuid does. */
function fixCaps(c: cred, oldRuid: number, oldEuid: number, oldSuid: number): void {
  const wasRoot = oldRuid === 0 || oldEuid === 0 || oldSuid === 0;
  if (wasRoot && c.uid !== 0 && c.euid !== 0 && c.suid !== 0) c.cap_effective.clear();
  else if (oldEuid === 0 && c.euid !== 0) c.cap_effective.clear();
  else if (oldEuid !== 0 && c.euid === 0) for (const x of ALL_CAPS) c.cap_effective.add(x);
}

function setCred(mutator: (c: cred) => void): void {
  // Changes apply to the process: the shared cred object every syscall thread installs.
  const c = processContext().cred as cred;
  mutator(c);
  current().ctx.cred = c;
}

const ok = (id: number) => id === -1 || (id >= 0 && id <= 0xfffffffe);

define_syscall(NR.__NR_getuid, 'getuid', () => current_cred().uid);
define_syscall(NR.__NR_geteuid, 'geteuid', () => current_cred().euid);
define_syscall(NR.__NR_getgid, 'getgid', () => current_cred().gid);
define_syscall(NR.__NR_getegid, 'getegid', () => current_cred().egid);
define_syscall(NR.__NR_getresuid, 'getresuid', () => { const c = current_cred(); return [c.uid, c.euid, c.suid]; });
define_syscall(NR.__NR_getresgid, 'getresgid', () => { const c = current_cred(); return [c.gid, c.egid, c.sgid]; });
define_syscall(NR.__NR_getgroups, 'getgroups', () => [...current_cred().groups]);

define_syscall(NR.__NR_setresuid, 'setresuid', (r: number, e: number, s: number) => {
  if (![r, e, s].every(ok)) throw err(EINVAL);
  const c = current_cred();
  const allowed = (id: number) => id === -1 || id === c.uid || id === c.euid || id === c.suid;
  if (!capable(CAP_SETUID) && !(allowed(r) && allowed(e) && allowed(s))) throw err(EPERM);
  setCred((c) => {
    const [or, oe, os] = [c.uid, c.euid, c.suid];
    if (r !== -1) c.uid = r;
    if (e !== -1) c.euid = e;
    if (s !== -1) c.suid = s;
    c.fsuid = c.euid;
    fixCaps(c, or, oe, os);
  });
  return 0;
});
define_syscall(NR.__NR_setresgid, 'setresgid', (r: number, e: number, s: number) => {
  if (![r, e, s].every(ok)) throw err(EINVAL);
  const c = current_cred();
  const allowed = (id: number) => id === -1 || id === c.gid || id === c.egid || id === c.sgid;
  if (!capable(CAP_SETGID) && !(allowed(r) && allowed(e) && allowed(s))) throw err(EPERM);
  setCred((c) => {
    if (r !== -1) c.gid = r;
    if (e !== -1) c.egid = e;
    if (s !== -1) c.sgid = s;
    c.fsgid = c.egid;
  });
  return 0;
});
define_syscall(NR.__NR_setuid, 'setuid', (uid: number) => {
  if (!ok(uid) || uid === -1) throw err(EINVAL);
  const c = current_cred();
  if (capable(CAP_SETUID)) {
    setCred((c) => { const [or, oe, os] = [c.uid, c.euid, c.suid]; c.uid = c.euid = c.suid = c.fsuid = uid; fixCaps(c, or, oe, os); });
  } else if (uid === c.uid || uid === c.suid) {
    setCred((c) => { const [or, oe, os] = [c.uid, c.euid, c.suid]; c.euid = c.fsuid = uid; fixCaps(c, or, oe, os); });
  } else throw err(EPERM);
  return 0;
});
define_syscall(NR.__NR_setgid, 'setgid', (gid: number) => {
  if (!ok(gid) || gid === -1) throw err(EINVAL);
  const c = current_cred();
  if (capable(CAP_SETGID)) setCred((c) => { c.gid = c.egid = c.sgid = c.fsgid = gid; });
  else if (gid === c.gid || gid === c.sgid) setCred((c) => { c.egid = c.fsgid = gid; });
  else throw err(EPERM);
  return 0;
});
define_syscall(NR.__NR_setgroups, 'setgroups', (groups: number[]) => {
  if (!capable(CAP_SETGID)) throw err(EPERM);
  if (!Array.isArray(groups) || groups.length > 65536 || !groups.every((g) => ok(g) && g !== -1)) throw err(EINVAL);
  setCred((c) => { c.groups = [...groups].sort((a, b) => a - b); });
  return 0;
});
