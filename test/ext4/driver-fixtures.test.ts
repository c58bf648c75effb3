// Robustness over e2fsprogs' damaged test images (../shared/fixtures/e2fsprogs-tests): each
// image is mounted in memory and its whole tree walked (readdir, lookup, iget, data,
// symlinks, every xattr value). What lkl-ts owes each of them: no crash (every failure is
// an Errno: EUCLEAN, EBADMSG, EIO, ESTALE, EINVAL...), no hang, nothing written, and a
// clear message for a refused mount.

import t from 'tap';
import { E2FSPROGS_FIXTURES, fixturesSkip, unpackFixture as unpack } from '../lib/fixtures.js';
import fs from 'node:fs';
import path from 'node:path';
import { whyNot } from '../lib/sh.js';
import { super_block, SB_RDONLY, file as File, type dir_context } from '../../lib/kernel/include/fs.js';
import { isErrno } from '../../lib/kernel/include/errno.js';
import { ext4_fill_super_dev, ext4_fs_type } from '../../lib/kernel/fs/ext4/super.js';
import { captureKernelMessages } from '../lib/printk.js';
import type { ext4_inode_info } from '../../lib/kernel/fs/ext4/ext4.js';
import { ext4_iget, ext4_read_data } from '../../lib/kernel/fs/ext4/inode.js';
import { ext4_find_entry } from '../../lib/kernel/fs/ext4/namei.js';
import { ext4_readdir } from '../../lib/kernel/fs/ext4/dir.js';
import { ext4_xattr_block_entries, ext4_xattr_ibody_entries, ext4_xattr_value } from '../../lib/kernel/fs/ext4/xattr.js';
import { memDev } from './driver-util.js';

const FIX = E2FSPROGS_FIXTURES;
const skip = fixturesSkip() || whyNot(['bzcat']);
const PER_IMAGE_MS = 30_000;

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  t.test('every fixture: mount in memory, walk everything, fail only with errno', { timeout: 900_000 }, async (t) => {
    let mounted = 0, refused = 0, walked = 0;
    for (const name of fs.readdirSync(FIX).sort()) {
      const dir = path.join(FIX, name);
      if (!fs.statSync(dir).isDirectory()) continue;
      const img = await unpack(dir);
      if (!img) continue;
      const msgs: string[] = [];
      captureKernelMessages((m) => msgs.push(m));
      const dev = memDev(new Uint8Array(img));
      const sb = new super_block(ext4_fs_type);
      sb.s_flags = SB_RDONLY;
      sb.s_id = 'vda';
      const bugs: string[] = [];
      const note = (what: string, e: unknown) => { if (!isErrno(e)) bugs.push(`${what}: ${(e as Error)?.stack ?? e}`); };
      const t0 = Date.now();
      try {
        await ext4_fill_super_dev(sb, dev, '', false, 'ext4');
      } catch (e) {
        note('mount', e);
        refused++;
        t.ok(isErrno(e) && msgs.length > 0, `${name}: refused with errno ${(e as { errno?: number }).errno} and a message`, { msgs });
        captureKernelMessages(null);
        continue;
      }
      mounted++;
      let n = 0;
      const walk = async (inode: ext4_inode_info, depth: number): Promise<void> => {
        if (depth > 64 || n > 5000 || Date.now() - t0 > PER_IMAGE_MS) return;
        n++;
        try {
          for (const f of [...ext4_xattr_ibody_entries(inode), ...await ext4_xattr_block_entries(inode)]) await ext4_xattr_value(inode, f);
        } catch (e) { note(`xattrs of ${inode.i_ino}`, e); }
        const mode = inode.i_mode & 0o170000;
        if (mode === 0o100000) {
          try { await ext4_read_data(inode, 0, new Uint8Array(Math.min(inode.i_size, 1 << 20))); } catch (e) { note(`read ${inode.i_ino}`, e); }
        } else if (mode === 0o120000) {
          try { await inode.i_op.get_link!(null, inode); } catch (e) { note(`readlink ${inode.i_ino}`, e); }
        } else if (mode === 0o040000) {
          const names: string[] = [];
          const file = new File({ mnt: null as never, dentry: null as never }, inode, inode.i_fop);
          for (let i = 0; i < 100000; i++) {
            const before = file.f_pos;
            let k = 0;
            const ctx: dir_context = { pos: file.f_pos, emit(nm) { if (k++ >= 50) return false; names.push(nm); return true; } };
            try { await ext4_readdir(file, ctx); } catch (e) { note(`readdir ${inode.i_ino}`, e); break; }
            file.f_pos = ctx.pos;
            if (ctx.pos === before || k === 0) break;
          }
          for (const nm of names) {
            if (nm === '.' || nm === '..') continue;
            try {
              const ino = await ext4_find_entry(inode, nm);
              if (ino) await walk(await ext4_iget(sb, ino), depth + 1);
            } catch (e) { note(`lookup ${nm}`, e); }
          }
        }
      };
      await walk(sb.s_root!.d_inode as ext4_inode_info, 0);
      walked += n;
      captureKernelMessages(null);
      t.same(bugs, [], `${name}: ${n} inodes walked, every failure an errno`);
      t.ok(Date.now() - t0 < PER_IMAGE_MS + 60_000, `${name}: done in ${Date.now() - t0} ms`);
      t.equal(dev.writes.size, 0, `${name}: nothing written`);
    }
    t.comment(`${mounted} mounted (${walked} inodes walked), ${refused} refused`);
  });
}
