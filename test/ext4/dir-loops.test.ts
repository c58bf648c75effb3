// Directory entries that make a loop, as a corrupt image has them: an entry naming its own
// directory ("self", as when a directory's "." entry loses its name) and one naming an
// ancestor ("up"). The host kernel, on a loop mount of a copy, and lkl-ts answer each call
// the same: EUCLEAN for the first (ext4_lookup: "linked to parent dir"), ELOOP for the
// second (d_splice_alias: "would have caused loop"), and nothing hangs (a rmdir of such an
// entry once waited forever on its own directory's lock; found by scripts/fuzz.ts, ext2
// seed 816).

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { makeExtImage, withLoopMount } from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { startKernel, type Kernel } from '../../lib/index.js';

const skip = whyNot(['mke2fs', 'debugfs', 'losetup', 'mount'], { root: true });

type Step = [label: string, host: (m: string) => unknown, lkl: (k: Kernel, m: string) => Promise<unknown>];
const STEPS: Step[] = [
  ['stat a/b/self', (m) => fs.statSync(path.join(m, 'a/b/self')).ino, (k, m) => k.sys.stat(`${m}/a/b/self`)],
  ['stat a/b/up', (m) => fs.statSync(path.join(m, 'a/b/up')).ino, (k, m) => k.sys.stat(`${m}/a/b/up`)],
  ['rmdir a/b/self', (m) => fs.rmdirSync(path.join(m, 'a/b/self')), (k, m) => k.sys.rmdir(`${m}/a/b/self`)],
  ['rmdir a/b/up', (m) => fs.rmdirSync(path.join(m, 'a/b/up')), (k, m) => k.sys.rmdir(`${m}/a/b/up`)],
  ['unlink a/b/up', (m) => fs.unlinkSync(path.join(m, 'a/b/up')), (k, m) => k.sys.unlink(`${m}/a/b/up`)],
  ['rename a/b/up a/x', (m) => fs.renameSync(path.join(m, 'a/b/up'), path.join(m, 'a/x')),
    (k, m) => k.sys.rename(`${m}/a/b/up`, `${m}/a/x`)],
  ['stat a/b/up/b/up', (m) => fs.statSync(path.join(m, 'a/b/up/b/up')).ino, (k, m) => k.sys.stat(`${m}/a/b/up/b/up`)],
  ['list a/b', (m) => fs.readdirSync(path.join(m, 'a/b')).sort().join(','),
    (k, m) => names(k, `${m}/a/b`)],
  ['stat a/b/f', (m) => fs.statSync(path.join(m, 'a/b/f')).size, async (k, m) => { const s = await k.sys.stat(`${m}/a/b/f`); return typeof s === 'number' ? s : s.size; }],
];

/** The names in a directory but . and .., sorted, joined (or the errno). */
async function names(k: Kernel, p: string): Promise<string | number> {
  const fd = await k.sys.open(p, 0, 0);
  if (fd < 0) return fd;
  const out: string[] = [];
  try {
    for (;;) {
      const r = await k.sys.getdents64(fd, 4096);
      if (typeof r === 'number') return r;
      if (!r.length) break;
      for (const e of r) if (e.name !== '.' && e.name !== '..') out.push(e.name);
    }
  } finally { await k.sys.close(fd); }
  return out.sort().join(',');
}

/** An errno as a negative number, a stat as 'ok', anything else as itself. */
function norm(v: unknown): unknown {
  if (typeof v === 'number' && v < 0) return v;
  if (v && typeof v === 'object' && 'ino' in v) return 'ok';
  if (typeof v === 'number' && v >= 0) return 'ok';
  return v ?? 'ok';
}

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'ext4-dir-loops');
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 64 }); });
  t.teardown(async () => { await k?.halt(); });

  for (const type of ['ext2', 'ext4'] as const) {
    t.test(type, async (t) => {
      const base = path.join(dir, `${type}.img`);
      await makeExtImage({ type, path: base, sizeMiB: 16, blockSize: 4096, features: type === 'ext4' ? ['^has_journal'] : [] });
      await withLoopMount(base, {}, async (m) => {
        fs.mkdirSync(path.join(m, 'a/b'), { recursive: true });
        fs.writeFileSync(path.join(m, 'a/b/f'), 'file');
      });
      // debugfs ln: a bare entry, no link count change (as corruption leaves it).
      await run('debugfs', ['-w', '-R', 'ln /a/b /a/b/self', base]);
      await run('debugfs', ['-w', '-R', 'ln /a /a/b/up', base]);
      const hostImg = `${base}.host`, lklImg = `${base}.lkl`;
      fs.copyFileSync(base, hostImg);
      fs.copyFileSync(base, lklImg);
      const host = await withLoopMount(hostImg, {}, async (m) => STEPS.map(([label, f]) => {
        try { return `${label}: ${norm(f(m) ?? 'ok')}`; } catch (e) { return `${label}: ${-Math.abs((e as { errno: number }).errno)}`; }
      }));
      const id = await k.diskAdd({ path: lklImg });
      const mnt = await k.mountDev(id, 0, type, 0, '');
      if (typeof mnt !== 'string') { t.fail(`mount: ${mnt}`); return; }
      const lkl: string[] = [];
      try {
        for (const [label, , f] of STEPS) lkl.push(`${label}: ${norm(await f(k, mnt))}`);
      } finally { t.equal(await k.umountDev(id, 0), 0, 'unmounted'); }
      t.same(lkl, host, 'every call gives the host kernel\'s answer, none hangs');
      t.ok(host.some((l) => l.endsWith(': -40')) && host.some((l) => l.endsWith(': -117')), 'the host answers ELOOP and EUCLEAN');
    });
  }
}
