/*
 * POSIX conformance run differentially (issue 15): the cases of conformance-cases.ts, done
 * with real host system calls by conformance-child.py, (a) on the host kernel's ext4 (a loop
 * mount of a fresh mke2fs image), (b) through lklfuse -o allow_other,default_permissions on a
 * copy of the same fresh image, over each transport, and (c) on FAT through lklfuse, compared
 * with the host's ext4 run after projecting away what FAT cannot hold. Every outcome must be
 * equal except the entries of the tables below, each with the reason; an entry whose outcome
 * is in fact equal fails the test too, so the tables cannot rot. Afterwards each image is
 * checked (e2fsck -fn / fsck.vfat -n) and the host kernel (mtools for FAT) reads the tree the
 * lklfuse run left, which must be the tree seen through the mount.
 */
import t, { type Test } from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { e2fsckClean, fsckVfatClean, makeExtImage, makeVfatImage, withLoopMount } from '../lib/images.js';
import { diffManifests, hostManifest, mtoolsManifest, type Manifest } from '../lib/manifest.js';
import { run, whyNot } from '../lib/sh.js';
import { box, fuseSkip, overTransports, startForeground, within, isMounted, type Transport } from './real-helpers.js';
import { conformanceCases, OTHER, type Case, type Step } from './conformance-cases.js';

const CHILD = fileURLToPath(new URL('../../../test/fuse/conformance-child.py', import.meta.url));
const skip = whyNot(['python3', 'mke2fs', 'e2fsck', 'losetup', 'mount', 'umount', 'getfattr', 'mkfs.vfat', 'fsck.vfat', 'mdir', 'mcopy'], { root: true })
  || fuseSkip() || (fs.existsSync(CHILD) ? false : `the case runner ${CHILD} is missing (the test runs from the repository's dist/)`);

interface Outcome { setup: string | null; ops: string[]; times: Record<string, string> }
type Outcomes = Record<string, Outcome>;

/** Runs `cases` in `root` (a fresh directory), EXDEV targets in `other`. */
async function runCases(root: string, other: string, cases: Case[], sleepMs = 50): Promise<Outcomes> {
  const job = JSON.stringify({ root, sleepMs, cases }).replaceAll(OTHER, other);
  const r = await run('python3', [CHILD], { input: job, timeoutMs: 120_000 });
  return JSON.parse(r.stdout) as Outcomes;
}

/** One comparable slot of an outcome: 'setup', 'op<i>' or 'times:<path>'. */
function slots(o: Outcome): Map<string, string> {
  const m = new Map<string, string>();
  m.set('setup', o.setup ?? 'ok');
  o.ops.forEach((r, i) => m.set(`op${i}`, r));
  for (const [p, v] of Object.entries(o.times)) m.set(`times:${p}`, v);
  return m;
}

/** A documented difference: a case's slot (or '*' for all of it) that differs, and why. */
interface Difference { id: string; slot: string; why: string; bug?: boolean; transports?: Transport[] }

interface Comparison { total: number; passed: number; undocumented: string[]; stale: string[]; documented: number }

function compare(ref: Outcomes, got: Outcomes, cases: Case[], table: Difference[], project: (s: string, c: Case) => string = (s) => s): Comparison {
  const undocumented: string[] = [];
  const hit = new Set<Difference>();
  let passed = 0;
  for (const c of cases) {
    const a = slots(ref[c.id]!), b = slots(got[c.id]!);
    let equal = true;
    for (const k of new Set([...a.keys(), ...b.keys()])) {
      const x = project(a.get(k) ?? '(none)', c), y = project(b.get(k) ?? '(none)', c);
      const doc = table.find((d) => d.id === c.id && (d.slot === '*' || d.slot === k));
      if (x === y) continue;
      equal = false;
      if (doc) hit.add(doc);
      else undocumented.push(`${c.id} ${k}: host ${JSON.stringify(x)}, here ${JSON.stringify(y)}  (${c.title})`);
    }
    if (equal) passed++;
  }
  const stale = table.filter((d) => !hit.has(d)).map((d) => `${d.id} ${d.slot}: documented as different, but equal (${d.why})`);
  return { total: cases.length, passed, undocumented, stale, documented: hit.size };
}

/** The expectations of the case list, checked against the host's own run. */
function expectationMisses(ref: Outcomes, cases: Case[]): string[] {
  const out: string[] = [];
  for (const c of cases) {
    const o = ref[c.id]!;
    if (o.setup) { out.push(`${c.id}: ${o.setup}`); continue; }
    c.ops.forEach((s: Step, i) => {
      if (s.expect !== undefined && o.ops[i] !== s.expect) out.push(`${c.id} op${i} (${s.op}): expected ${s.expect}, host ${o.ops[i]}  (${c.title})`);
    });
  }
  return out;
}

const CASES = conformanceCases();
/** One scratch box for the whole file: the host run's image and results are shared. */
const B = box(t, 'conf');

// ---------------------------------------------------------------------------------------
// The host run, once, on a fresh image; its pristine copy is what lklfuse mounts.

let hostRun: Promise<{ outcomes: Outcomes; manifest: Manifest; fresh: string; ms: number }> | undefined;
function hostOnce(dir: string): typeof hostRun & object {
  hostRun ??= (async () => {
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 64, path: path.join(dir, 'host.img') });
    const fresh = path.join(dir, 'fresh.img');
    fs.copyFileSync(img, fresh);
    const other = path.join(dir, 'other-host');
    fs.mkdirSync(other);
    return withLoopMount(img, {}, async (m) => {
      const root = path.join(m, 'conf');
      fs.mkdirSync(root, { mode: 0o755 });
      const t0 = Date.now();
      const outcomes = await runCases(root, other, CASES);
      const ms = Date.now() - t0;
      const manifest = await hostManifest(root, { producer: 'host ext4', exclude: DEEP_EXCLUDE });
      return { outcomes, manifest, fresh, ms };
    });
  })();
  return hostRun;
}

/** The 4 KiB-deep trees of the PATH_MAX cases: not walkable by absolute paths. */
const DEEP_EXCLUDE = [/(^|\/)p{254}$/];

// ---------------------------------------------------------------------------------------
// What the FUSE binding makes different (ext4 through lklfuse vs the host's ext4).

const FUSE_DIFFERENCES: Difference[] = [];

t.test('host ext4: the case list matches what Linux answers', { skip }, async (t) => {
  const { outcomes, ms } = await hostOnce(B.dir);
  const misses = expectationMisses(outcomes, CASES);
  t.strictSame(misses, [], `every expectation of the ${CASES.length} cases holds on the host's ext4`);
  const withExpect = CASES.reduce((n, c) => n + c.ops.filter((s) => s.expect !== undefined).length, 0);
  t.comment(`host ext4: ${CASES.length} cases, ${withExpect} expectations, ${withExpect - misses.length} met, in ${ms} ms`);
});
