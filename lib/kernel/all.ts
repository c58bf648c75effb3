/*
 * Every kernel subsystem, imported for its init calls (the kernel's link order).
 * Order matters only for registration; init levels decide boot order.
 */
import './kernel/cred.js';
import './kernel/sys_misc.js';
import './mm/filemap.js';
import './fs/fs-writeback.js';
