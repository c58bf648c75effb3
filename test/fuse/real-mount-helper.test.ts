// lklfuse through mount(8): `mount -t fuse.lklfuse IMAGE MNT -o ...` and an fstab line,
// both of which go through the mount.fuse helper, which runs `lklfuse` from PATH (here a
// shim for this build's bin/lklfuse.js) with the options mount(8) adds.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { which } from '../lib/sh.js';
import { BIN, box, fuseSkip, isMounted, daemonsFor, waitFor, realEnv, sha256File, TRANSPORTS, transportSkip } from './real-helpers.js';


/*
 * mount(8) runs its helpers with a sanitized environment (no PATH of ours), so the shim
 * goes where /bin/sh looks by default: /usr/local/sbin. It is removed afterwards; an
 * lklfuse already installed there is never replaced (the test then says why it skips).
 */
const SHIM = '/usr/local/sbin/lklfuse';
const MARK = '# lkl-ts test shim';
function installShim(): void {
  fs.mkdirSync(path.dirname(SHIM), { recursive: true });
  fs.writeFileSync(SHIM, `#!/bin/sh\n${MARK}\nexec "${process.execPath}" "${BIN}" "$@"\n`, { mode: 0o755 });
}
function removeShim(): void {
  try { if (fs.readFileSync(SHIM, 'utf8').includes(MARK)) fs.rmSync(SHIM); } catch { /* not there */ }
}
const occupied = (() => {
  try { return !fs.readFileSync(SHIM, 'utf8').includes(MARK); } catch { return false; }
})();

const skip = fuseSkip(['mount', 'umount', 'mke2fs']) || (which('mount.fuse') ? false : 'no mount.fuse helper (Debian package fuse)')
  || (process.getuid?.() !== 0 ? 'needs root (mount(8) and a helper in /usr/local/sbin)' : false)
  || (occupied ? `${SHIM} is another lklfuse; not replacing it` : false);

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  // Run as root, mount.fuse's lklfuse picks the kernel transport by itself; both are forced once.
  for (const tr of TRANSPORTS) t.test(`mount -t fuse.lklfuse and an fstab line (transport=${tr})`, { skip: transportSkip(tr) }, async (t) => {
    const b = box(t, `mounthelper-${tr}`);
    const src = b.path('src');
    fs.mkdirSync(path.join(src, 'd'), { recursive: true });
    fs.writeFileSync(path.join(src, 'd', 'hello.txt'), 'hello from fstab\n');
    const img = b.path('disk.img');
    spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-d', src, img, '16M'], { stdio: 'ignore' });
    const before = sha256File(img);
    installShim();
    t.teardown(removeShim);
    const env = realEnv();

    const mnt = b.mnt('m1');
    const r = spawnSync('mount', ['-t', 'fuse.lklfuse', img, mnt, '-o', `ro,type=ext4,transport=${tr}`], { env, encoding: 'utf8' });
    t.equal(r.status, 0, `mount -t fuse.lklfuse exits 0 ${r.stderr}`);
    t.ok(await isMounted(mnt), 'the mountpoint is mounted');
    t.equal(fs.readFileSync(path.join(mnt, 'd', 'hello.txt'), 'utf8'), 'hello from fstab\n', 'a file reads through it');
    t.equal(spawnSync('umount', [mnt], { env }).status, 0, 'umount exits 0');
    t.ok(await waitFor(() => daemonsFor(mnt).length === 0), 'the daemon exits after umount');

    const mnt2 = b.mnt('m2');
    const fstab = b.path('fstab');
    fs.writeFileSync(fstab, `${img}  ${mnt2}  fuse.lklfuse  ro,nofail,noauto,opts=noatime,transport=${tr}  0  0\n`);
    const r2 = spawnSync('mount', ['--fstab', fstab, mnt2], { env, encoding: 'utf8' });
    t.equal(r2.status, 0, `mount by the fstab line exits 0 ${r2.stderr}`);
    t.equal(fs.readFileSync(path.join(mnt2, 'd', 'hello.txt'), 'utf8'), 'hello from fstab\n', 'a file reads through it');
    t.equal(spawnSync('umount', [mnt2], { env }).status, 0, 'umount exits 0');
    t.ok(await waitFor(() => daemonsFor(mnt2).length === 0), 'the daemon exits after umount');
    t.equal(sha256File(img), before, 'the read-only image is unchanged');
  });
}
