// The e2fsprogs fixture corpus (../shared/fixtures/e2fsprogs-tests: the damaged images
// e2fsck's own tests repair) through the hostile-image workload of test/lib/fuzz (issue 15
// item 2): each image mounted read-write where lkl-ts takes it (else read-only), walked and
// read, then written to (new files, writes, mkdir, unlink, rename, truncate, setxattr,
// rmdir, sync) and unmounted. What each image may not do: throw anything but an errno in
// the kernel ("BUG" lines), or leave a call unanswered for 10 s (a hang). test/ext4/
// driver-fixtures walks the same images read-only without the VFS.
//
// CI runs every third image (about 80, a minute and a half); LKL_TEST_CORPUS=all runs the
// whole corpus (229 images, ~4-6 minutes).

import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { E2FSPROGS_FIXTURES, fixturesSkip, unpackFixture } from '../lib/fixtures.js';
import { whyNot } from '../lib/sh.js';
import { Hang, runImage } from '../lib/fuzz/fuzz.js';
import { startKernel, type Kernel } from '../../lib/index.js';

const skip = fixturesSkip() || whyNot(['bzcat']);
const ALL = process.env.LKL_TEST_CORPUS === 'all';

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  t.test('every fixture: read-write where it mounts, the workload, errnos only, no hang', { timeout: 1_200_000 }, async (t) => {
    const messages: string[] = [];
    const boot = () => startKernel({ memMiB: 96, print: (m) => { messages.push(m); if (messages.length > 2000) messages.splice(0, 1000); } });
    let k: Kernel = await boot();
    const counts = { rw: 0, ro: 0, no: 0 };
    let images = 0, seen = 0;
    try {
      for (const name of fs.readdirSync(E2FSPROGS_FIXTURES).sort()) {
        const dir = path.join(E2FSPROGS_FIXTURES, name);
        if (!fs.statSync(dir).isDirectory()) continue;
        if (!ALL && seen++ % 3 !== 0) continue;
        const img = await unpackFixture(dir);
        if (!img) continue;
        images++;
        messages.length = 0;
        let failures: string[];
        try {
          const r = await runImage(k, 'ext4', new Uint8Array(img), messages, images);
          counts[r.mounted]++;
          failures = r.failures;
        } catch (e) {
          failures = [`${(e as Error).message ?? e}`, ...messages.slice(-4)];
          if (e instanceof Hang) {
            /* a hung kernel cannot be reused */
            k.halt().catch(() => {});
            k = await boot();
          }
        }
        if (failures.length) t.fail(`${name}: ${failures.join(' | ')}`);
      }
    } finally { await k.halt().catch(() => {}); }
    t.ok(images > (ALL ? 200 : 60), `${images} images run`);
    t.ok(counts.rw > images / 2, `${counts.rw} mounted read-write, ${counts.ro} read-only, ${counts.no} refused`);
  });
}
