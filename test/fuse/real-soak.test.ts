// The CI slice of the soak (scripts/soak.ts): 30 s of the model-checked random exerciser
// through one lklfuse mount of ext4 and then of FAT32. Asserts the script's own verdict and
// the figures behind it: every seed matched its model, fsck clean, the daemon's RSS under
// mb + 150 MiB, its descriptors and the kernel's in-use inode and dentry counts back at
// the baseline after the last seed (its tree removed).
import t from 'tap';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { box, fuseSkip } from './real-helpers.js';
import { whyNot } from '../lib/sh.js';

const SOAK = fileURLToPath(new URL('../../scripts/soak.js', import.meta.url));
const MINUTES = Number(process.env.LKL_TEST_SOAK_MINUTES ?? 0.25);

const skip = fuseSkip() || whyNot(['mke2fs', 'e2fsck', 'mkfs.vfat', 'fsck.vfat'], { root: true });

for (const fsType of ['ext4', 'vfat'] as const) {
  t.test(fsType, { skip }, async (t) => {
    const b = box(t, `soak-${fsType}`);
    const json = path.join(b.dir, 'summary.json');
    const dir = path.join(b.dir, 'work');
    fs.mkdirSync(dir);
    b.mnt('work/mnt'); // registered for the teardown's forced unmount
    const env = { ...process.env };
    delete env.NODE_OPTIONS; // tap's instrumentation: not for the script and its daemon
    const c = spawn(process.execPath, [SOAK, '--minutes', String(MINUTES), '--mb', '64', '--fs', fsType,
      '--ops', '300', '--sample-secs', '2', '--dir', dir, '--json', json], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => { out += d; });
    c.stderr.on('data', (d: Buffer) => { out += d; });
    const code = await new Promise<number | null>((r) => c.on('close', r));
    t.equal(code, 0, `soak.js exits 0${code === 0 ? '' : `:\n${out}`}`);
    const s = JSON.parse(fs.readFileSync(json, 'utf8'));
    t.same(s.failures, [], 'no failure');
    t.ok(s.seeds >= 3, `several seeds ran (${s.seeds}, ${s.ops} operations)`);
    t.ok(s.fsckClean, 'fsck clean at the end');
    t.ok(s.rssMiB.max < s.rssMiB.bound, `RSS max ${s.rssMiB.max} MiB < mb + 150 = ${s.rssMiB.bound}`);
    t.ok(s.fds.last <= s.fds.baseline + 4, `descriptors ${s.fds.last} back near the baseline ${s.fds.baseline}`);
    const base = s.counters.baseline.inUse, last = s.counters.afterLastSeed.inUse;
    t.ok(last.inodes <= base.inodes + 4, `in-use inodes ${last.inodes} back near the baseline ${base.inodes}`);
    t.ok(last.dentries <= base.dentries + 4, `in-use dentries ${last.dentries} back near the baseline ${base.dentries}`);
    t.comment(JSON.stringify({ seeds: s.seeds, rssMiB: s.rssMiB, fds: s.fds, inodes: s.counters.afterLastSeed, baseline: s.counters.baseline }));
  });
}
