// Hostile images, the CI slice of scripts/fuzz.ts: per kind (ext2, ext3, ext4 with
// metadata_csum + htree + xattrs + inline data, FAT12/16/32 with long names) a run of seeds,
// each mutating chosen metadata fields of a small Linux-made image (boundary and random
// values, checksums recomputed or left wrong) and putting it through the kernel in-process:
// mount rw (else ro), walk, read, xattrs, write, unmount. Failures: a "BUG" kernel message,
// a hang past the per-call deadline, a failed unmount, RSS growth past a bound.
//
// Also proves the fuzzer's map of the images right: recomputing every checksum of an
// unchanged image changes no byte, and a checksummed field changed with its checksum fixed
// gets past the kernel's verifier while the same change left unfixed is caught.
//
// LKL_TEST_FUZZ_SEEDS (default 40 per kind) sizes the run; a failing seed replays with
// `node dist/scripts/fuzz.js --kind KIND --seed N -v`.
import t from 'tap';
import fs from 'node:fs';
import { whyNot } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { e2fsckClean, fsckVfatClean } from '../lib/images.js';
import { KINDS, Hang, baseImage, fieldsOf, fsTypeOf, mutate, runImage, applyMutations } from '../lib/fuzz/fuzz.js';
import { getField } from '../lib/fuzz/ext-fields.js';
import { startKernel, type Kernel } from '../../lib/index.js';

const skip = whyNot(['mke2fs', 'e2fsck', 'mkfs.vfat', 'fsck.vfat', 'mcopy', 'setfattr', 'losetup', 'mount'], { root: true });
const SEEDS = Number(process.env.LKL_TEST_FUZZ_SEEDS ?? 40);
const RSS_BOUND_MIB = 512;

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const dir = scratchDir(t, 'fuzz');
  const messages: string[] = [];
  let k: Kernel;
  t.before(async () => { k = await startKernel({ memMiB: 64, print: (m) => messages.push(m) }); });
  t.teardown(async () => { await k?.halt(); });

  t.test('the base images are clean, and the field map recomputes their checksums exactly', async (t) => {
    for (const kind of KINDS) {
      const p = await baseImage(kind, dir);
      const f = kind.startsWith('fat') ? await fsckVfatClean(p) : await e2fsckClean(p);
      t.ok(f.clean, `${kind}: base image passes ${kind.startsWith('fat') ? 'fsck.vfat -n' : 'e2fsck -fn'}`, { output: f.output });
      const base = fs.readFileSync(p);
      const img = new Uint8Array(base);
      const fields = fieldsOf(kind, img);
      const kinds = new Set(fields.map((f) => f.kind));
      const want = kind.startsWith('fat') ? ['bpb', 'fat', 'dirent', 'lfn'] : ['superblock', 'group-desc', 'bitmap', 'inode', 'dirent', 'htree', 'xattr'];
      if (kind === 'ext3' || kind === 'ext4') want.push('journal', 'journal-log', 'journal-revive');
      if (kind === 'ext4') want.push('extent', 'inline');
      if (kind === 'fat32') want.push('fsinfo');
      for (const w of want) t.ok(kinds.has(w), `${kind}: has ${w} fields`);
      for (const f of fields) if (f.fix && f.only === undefined) f.fix();
      t.ok(Buffer.from(img).equals(base), `${kind}: every checksum recomputed on the unchanged image (${fields.length} fields) matches what mke2fs/the kernel/mkfs wrote`);
    }
  });

  t.test('ext4: a checksummed change with the checksum fixed gets past the verifier; unfixed it is caught', async (t) => {
    const base = fs.readFileSync(await baseImage('ext4', dir));
    const name = fieldsOf('ext4', new Uint8Array(base)).find((f) => /^inode \d+ i_generation$/.test(f.name) && !f.name.startsWith('inode 2 '))!.name;
    for (const fixed of [true, false]) {
      const img = new Uint8Array(base);
      const f = fieldsOf('ext4', img).find((x) => x.name === name)!;
      applyMutations('ext4', img, [{ field: name, value: getField(img, f) + 1, fixed }]);
      const before = messages.length;
      const r = await runImage(k, 'ext4', img, messages, 1);
      t.same(r.failures, [], `${name} + 1 (${fixed ? 'fixed' : 'left wrong'}): no failure`);
      const caught = messages.slice(before).some((m) => /checksum invalid/.test(m));
      t.equal(caught, !fixed, fixed ? 'no checksum error: the change reached the deeper code' : 'the inode checksum error is reported');
    }
  });

  for (const kind of KINDS) {
    t.test(`${kind}: ${SEEDS} mutated images through the kernel`, async (t) => {
      const base = fs.readFileSync(await baseImage(kind, dir));
      const stats = { rw: 0, ro: 0, no: 0, calls: 0, fixed: 0, mutations: 0 };
      const rss0 = process.memoryUsage().rss;
      let failures = 0;
      for (let seed = 1; seed <= SEEDS; seed++) {
        const img = new Uint8Array(base);
        const muts = mutate(kind, img, seed);
        stats.mutations += muts.length;
        stats.fixed += muts.filter((m) => m.fixed).length;
        messages.length = 0;
        try {
          const r = await runImage(k, fsTypeOf(kind), img, messages, seed, 10_000);
          stats[r.mounted]++;
          stats.calls += r.calls;
          if (r.failures.length) {
            failures++;
            t.fail(`${kind} seed ${seed}: ${r.failures[0]}`, { replay: `node dist/scripts/fuzz.js --kind ${kind} --seed ${seed} -v`, mutations: muts, failures: r.failures });
          }
        } catch (e) {
          t.fail(`${kind} seed ${seed}: ${e instanceof Hang ? 'hang' : 'threw'}: ${(e as Error).message}`, { mutations: muts });
          if (e instanceof Hang) return; // the kernel is stuck; nothing more can run in it
          failures++;
        }
      }
      const grown = (process.memoryUsage().rss - rss0) / 1048576;
      t.ok(grown < RSS_BOUND_MIB, `RSS grew ${grown.toFixed(0)} MiB over ${SEEDS} images (bound ${RSS_BOUND_MIB})`);
      t.equal(failures, 0, `${SEEDS} seeds: mounted rw ${stats.rw}, ro ${stats.ro}, refused ${stats.no}; ${stats.mutations} mutations (${stats.fixed} with checksums fixed); ${stats.calls} calls; no hang, no kernel bug`);
      t.ok(stats.rw + stats.ro > 0, 'some images still mount (the mutations are not all fatal)');
      t.ok(stats.no + stats.ro > 0 || kind.startsWith('fat'), 'some images are refused or mount read-only (the mutations matter)');
    });
  }
}
