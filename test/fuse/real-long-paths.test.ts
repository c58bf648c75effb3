/*
 * Long paths through a real lklfuse mount (issue 12, item 1), over both transports, on a
 * read-write ext4: a relative path argument of 4,095 bytes (PATH_MAX - 1) works as on Linux
 * and 4,096 is ENAMETOOLONG; and a tree deeper than 4 KiB below the mount root is reachable
 * step by step through a deep working directory over the kernel transport (it walks by node,
 * so depth has no limit). Over fuse-native, libfuse 2 hands the daemon whole paths from the
 * root, so that depth stays out of reach: the test says so and checks the error is clean.
 */
import t from 'tap';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { e2fsckClean, makeExtImage, withLoopMount } from '../lib/images.js';
import { box, daemonsFor, fuseSkip, lklfuse, overTransports, waitFor } from './real-helpers.js';

const skip = fuseSkip(['mke2fs', 'e2fsck', 'mkdir', 'test']);

/** Components of `len` bytes joined by '/', `total` bytes long overall (the last one shorter). */
function pathOf(total: number, comp = 200): string {
  const parts: string[] = [];
  let used = 0;
  while (used < total) {
    const sep = parts.length ? 1 : 0;
    const n = Math.min(comp, total - used - sep);
    if (n <= 0) { parts[parts.length - 1] += 'z'.repeat(total - used); used = total; break; }
    parts.push(String.fromCharCode(97 + (parts.length % 26)).repeat(n));
    used += n + sep;
  }
  return parts.join('/');
}

overTransports(t, (t, transport) => {
  t.test('PATH_MAX - 1 bytes work, PATH_MAX is ENAMETOOLONG; depth past 4 KiB', { skip }, async (t) => {
    const b = box(t, `lkl-long-${transport}`);
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 64, blockSize: 4096, features: ['^has_journal'], path: b.path('disk.img') });
    const mnt = b.mnt();
    const r = await lklfuse([img, mnt]);
    t.equal(r.status, 0, 'mounted', { stderr: r.stderr });
    if (r.status !== 0) return;
    const p4095 = pathOf(4095);
    t.equal(p4095.length, 4095);
    const parent = path.dirname(p4095);
    t.equal(spawnSync('mkdir', ['-p', parent], { cwd: mnt }).status, 0, 'mkdir -p of the parents');
    const ok = spawnSync('mkdir', [p4095], { cwd: mnt, encoding: 'utf8' });
    t.equal(ok.status, 0, 'mkdir of a 4,095-byte relative path', { stderr: ok.stderr });
    const tooLong = spawnSync('mkdir', [p4095 + 'x'], { cwd: mnt, encoding: 'utf8' });
    t.not(tooLong.status, 0, 'a 4,096-byte path fails');
    t.match(tooLong.stderr, /File name too long/, 'with ENAMETOOLONG');

    // 25 levels of 201-byte names: about 5 KiB below the root, reached relative to a deep
    // working directory (each step a relative chdir, as a shell user would cd down).
    const deepRel = Array.from({ length: 25 }, (_, i) => String.fromCharCode(65 + i).repeat(200)).join('/');
    const walker = `const fs = require('fs');
      for (const c of process.argv[1].split('/')) { fs.mkdirSync(c); process.chdir(c); }
      fs.writeFileSync('file', 'deep\\n'); process.stdout.write(fs.readFileSync('file', 'utf8'));`;
    const deep = spawnSync(process.execPath, ['-e', walker, deepRel], { cwd: mnt, encoding: 'utf8' });
    if (transport === 'kernel') {
      t.equal(deep.status, 0, 'a tree 5 KiB deep is made and written step by step', { stderr: deep.stderr });
      t.equal(deep.stdout, 'deep\n', 'and read back');
    } else {
      t.not(deep.status, 0, 'fuse-native cannot reach past 4 KiB below the root (libfuse 2 passes whole paths): a clean failure');
      t.match(deep.stderr, /ENAMETOOLONG/, 'ENAMETOOLONG, no hang');
    }
    t.equal(spawnSync('fusermount', ['-u', mnt]).status, 0, 'fusermount -u');
    t.ok(await waitFor(() => daemonsFor(mnt).length === 0, 60_000), 'the daemon exits');
    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn is clean', { output: ck.output });
    await withLoopMount(img, { ro: true }, async (m) => {
      t.equal(spawnSync('test', ['-d', p4095], { cwd: m }).status, 0, 'the host kernel finds the 4,095-byte path');
      if (transport === 'kernel') {
        const read = `const fs = require('fs'); for (const c of process.argv[1].split('/')) process.chdir(c);
          process.stdout.write(fs.readFileSync('file', 'utf8'));`;
        t.equal(spawnSync(process.execPath, ['-e', read, deepRel], { cwd: m, encoding: 'utf8' }).stdout, 'deep\n', 'and the deep file');
      }
    });
  });
});
