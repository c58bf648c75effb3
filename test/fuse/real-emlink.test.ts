/*
 * EMLINK through a real lklfuse mount, compared errno by errno with the host kernel's ext4
 * (issue 15, item 1's EMLINK cases, which the fresh-image conformance run cannot reach):
 * a file at EXT4_LINK_MAX (65,000) links refuses link(); a directory at 65,000 links refuses
 * mkdir and a directory renamed into it on an image without dir_nlink, and with dir_nlink
 * (mke2fs's default) accepts both, its st_nlink then being 1 ("more than can be counted")
 * and staying 1, as Linux's ext4_inc_count keeps it for an htree directory.
 *
 * 65,000 names through FUSE would take minutes, so each image is prepared once by the host
 * kernel on a loop mount (the reference anyway), then copied: one copy for the host's own run
 * of the steps (loop mount), one per transport for lklfuse. The steps are run by the
 * conformance runner (conformance-child.py) with real system calls on each side; afterwards
 * every image is e2fsck -fn clean and the host kernel's loop mount of each lklfuse image sees
 * the tree the host's own run left (names, types, link counts).
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { e2fsckClean, makeExtImage, withLoopMount } from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';
import { box, fuseSkip, isMounted, overTransports, startForeground, within, type Box, type Daemon } from './real-helpers.js';
import type { Step } from './conformance-cases.js';
import type { Test } from 'tap';

const CHILD = fileURLToPath(new URL('../../../test/fuse/conformance-child.py', import.meta.url));
const skip = whyNot(['python3', 'mke2fs', 'tune2fs', 'e2fsck', 'losetup', 'mount', 'umount', 'fusermount'], { root: true })
  || fuseSkip() || (fs.existsSync(CHILD) ? false : `the case runner ${CHILD} is missing (the test runs from the repository's dist/)`);

const LINK_MAX = 65000;

/*
 * The prepared tree, made by the host kernel: full/ with LINK_MAX - 2 subdirectories (so
 * st_nlink 65,000: ".", its entry in the root and one ".." each), src/ with two directories
 * and a file to move, and links/f with LINK_MAX names.
 */
const PREPARE = `import os, sys
os.chdir(sys.argv[1])
os.mkdir('full')
for i in range(${LINK_MAX - 2}): os.mkdir('full/d%d' % i)
os.mkdir('src'); os.mkdir('src/mv1'); os.mkdir('src/mv2')
open('src/file', 'w').write('moved\\n')
os.mkdir('links')
open('links/f', 'w').write('linked\\n')
for i in range(1, ${LINK_MAX}): os.link('links/f', 'links/l%d' % i)
print(os.stat('full').st_nlink, os.stat('links/f').st_nlink)
`;

/*
 * What a mount shows of the tree: per directory of interest its st_nlink and entry count, the
 * names of full/ other than the prepared d<n>, the entries of src/ and links/ f's link count
 * and data; a digest of every name in full/ and links/ (all 65,000 would bloat the diff).
 */
const SUMMARY = `import os, sys, json, hashlib
os.chdir(sys.argv[1])
out = {}
for d in ['full', 'src', 'links']:
    if not os.path.isdir(d): continue
    names = sorted(os.listdir(d))
    out[d] = {'nlink': os.lstat(d).st_nlink, 'count': len(names),
              'digest': hashlib.sha256('\\0'.join(names).encode()).hexdigest()[:16]}
    for n in names:
        if d == 'full' and n[0] == 'd' and n[1:].isdigit(): continue
        if d == 'links' and n[0] == 'l' and n[1:].isdigit(): continue
        st = os.lstat(os.path.join(d, n))
        kind = 'dir' if os.path.isdir(os.path.join(d, n)) else 'file'
        out[d + '/' + n] = '%s nlink=%d' % (kind, st.st_nlink) + (' data=' + open(os.path.join(d, n)).read().strip() if kind == 'file' else '')
json.dump(out, sys.stdout, sort_keys=True)
`;

const st = (p: string, expect?: string): Step => ({ op: 'stat', path: p, fields: ['type', 'nlink'], ...(expect ? { expect } : {}) });

/** One variant: how the image is made and the steps run on it (paths from the image root). */
interface Variant { name: string; tag: string; tune2fs: string[]; steps: Step[] }

const VARIANTS: Variant[] = [
  {
    name: 'dir_nlink (default)', tag: 'nlink', tune2fs: [],
    steps: [
      st('full', `ok:dir nlink=${LINK_MAX}`),
      st('links/f', `ok:reg nlink=${LINK_MAX}`),
      { op: 'link', src: 'links/f', dst: 'links/over', expect: 'EMLINK' },
      { op: 'link', src: 'links/f', dst: 'src/over', expect: 'EMLINK' },
      st('links/f', `ok:reg nlink=${LINK_MAX}`),
      { op: 'unlink', path: 'links/l1', expect: 'ok' },
      { op: 'link', src: 'links/f', dst: 'links/again', expect: 'ok' },
      st('links/f', `ok:reg nlink=${LINK_MAX}`),
      { op: 'link', src: 'links/f', dst: 'links/over', expect: 'EMLINK' },
      // Past 65,000 subdirectories an htree directory's count becomes 1 and stays 1.
      { op: 'mkdir', path: 'full/n1', expect: 'ok' },
      st('full', 'ok:dir nlink=1'),
      { op: 'mkdir', path: 'full/n2', expect: 'ok' },
      st('full', 'ok:dir nlink=1'),
      { op: 'rename', src: 'src/mv1', dst: 'full/mv1', expect: 'ok' },
      st('full', 'ok:dir nlink=1'),
      st('src', 'ok:dir nlink=3'),
      { op: 'rmdir', path: 'full/n1', expect: 'ok' },
      st('full', 'ok:dir nlink=1'),
      { op: 'rename', src: 'full/d0', dst: 'src/d0', expect: 'ok' },
      st('full', 'ok:dir nlink=1'),
      st('src', 'ok:dir nlink=4'),
      { op: 'rename', src: 'src/file', dst: 'full/file', expect: 'ok' },
      st('full/n2', 'ok:dir nlink=2'),
    ],
  },
  {
    name: 'without dir_nlink', tag: 'nodirnlink', tune2fs: ['-O', '^dir_nlink'],
    steps: [
      st('full', `ok:dir nlink=${LINK_MAX}`),
      { op: 'mkdir', path: 'full/n1', expect: 'EMLINK' },
      { op: 'rename', src: 'src/mv1', dst: 'full/mv1', expect: 'EMLINK' },
      st('src/mv1', 'ok:dir nlink=2'),
      st('full', `ok:dir nlink=${LINK_MAX}`),
      // Files do not count, nor do moves within the directory.
      { op: 'rename', src: 'src/file', dst: 'full/file', expect: 'ok' },
      { op: 'open', path: 'full/new', flags: ['O_CREAT', 'O_WRONLY'], expect: 'ok' },
      { op: 'rename', src: 'full/d1', dst: 'full/d1-renamed', expect: 'ok' },
      st('full', `ok:dir nlink=${LINK_MAX}`),
      // One subdirectory fewer: one may come in again, then the limit holds once more.
      { op: 'rmdir', path: 'full/d2', expect: 'ok' },
      st('full', `ok:dir nlink=${LINK_MAX - 1}`),
      { op: 'mkdir', path: 'full/n1', expect: 'ok' },
      st('full', `ok:dir nlink=${LINK_MAX}`),
      { op: 'mkdir', path: 'full/n2', expect: 'EMLINK' },
      { op: 'rename', src: 'full/d3', dst: 'src/d3', expect: 'ok' },
      { op: 'rename', src: 'src/mv2', dst: 'full/mv2', expect: 'ok' },
      st('full', `ok:dir nlink=${LINK_MAX}`),
      { op: 'rename', src: 'src/mv1', dst: 'full/mv1', expect: 'EMLINK' },
      st('src', 'ok:dir nlink=4'),
    ],
  },
];

function describeStep(s: Step): string {
  const { op, expect: _e, fields: _f, ...args } = s;
  return `${op} ${Object.values(args).map((v) => JSON.stringify(v)).join(' ')}`;
}

/**
 * Runs the steps in `top` (the root of the prepared tree) with the conformance runner: one
 * case whose directory is top/run/emlink, so the steps' paths go up two levels.
 */
async function runSteps(top: string, steps: Step[]): Promise<string[]> {
  const root = path.join(top, 'run');
  fs.mkdirSync(root);
  const ops = steps.map((s) => {
    const up = (p: unknown) => `../../${String(p)}`;
    const o: Step = { ...s };
    for (const k of ['path', 'src', 'dst'] as const) if (k in o) o[k] = up(o[k]);
    return o;
  });
  const job = JSON.stringify({ root, sleepMs: 0, cases: [{ id: 'emlink', title: 'EMLINK', setup: [], ops }] });
  const r = await run('python3', [CHILD], { input: job, timeoutMs: 120_000 });
  const out = (JSON.parse(r.stdout) as Record<string, { setup: string | null; ops: string[] }>)['emlink']!;
  if (out.setup) throw new Error(out.setup);
  return out.ops;
}

async function summary(top: string): Promise<Record<string, unknown>> {
  const r = await run('python3', ['-c', SUMMARY, top], { timeoutMs: 120_000 });
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

interface Prepared { fresh: string; host: string[]; hostTree: Record<string, unknown>; ms: number }

/**
 * The tree, prepared once by the host kernel on a mke2fs image with the default features.
 * 1 KiB blocks: 65,000 directories take 65,000 blocks; inodes for all of them.
 */
let base: Promise<{ img: string; ms: number }> | undefined;
function prepareBase(b: Box): Promise<{ img: string; ms: number }> {
  base ??= (async () => {
    const img = await makeExtImage({ type: 'ext4', sizeMiB: 112, blockSize: 1024, inodes: 70_000, path: b.path('base.img') });
    const t0 = Date.now();
    const counts = await withLoopMount(img, {}, async (m) => (await run('python3', ['-c', PREPARE, m], { timeoutMs: 300_000 })).stdout.trim());
    if (counts !== `${LINK_MAX} ${LINK_MAX}`) throw new Error(`the host kernel prepared link counts ${counts}`);
    return { img, ms: Date.now() - t0 };
  })();
  return base;
}

/**
 * A variant's fresh image: a copy of the base, its features changed by tune2fs (clearing
 * dir_nlink is valid here: no directory has more than 65,000 links; it is mke2fs -O
 * ^dir_nlink's superblock, without building the tree a second time); and the host's own run
 * of the steps on another copy.
 */
function prepare(b: Box, v: Variant): Promise<Prepared> {
  return (async () => {
    const fresh = b.path(`${v.tag}-fresh.img`);
    fs.copyFileSync((await prepareBase(b)).img, fresh);
    if (v.tune2fs.length) await run('tune2fs', [...v.tune2fs, fresh]);
    const hostImg = b.path(`${v.tag}-host.img`);
    fs.copyFileSync(fresh, hostImg);
    const t1 = Date.now();
    const { host, hostTree } = await withLoopMount(hostImg, {}, async (m) => ({ host: await runSteps(m, v.steps), hostTree: await summary(m) }));
    const ms = Date.now() - t1;
    const ck = await e2fsckClean(hostImg);
    if (!ck.clean) throw new Error(`the host's own run left an image e2fsck does not pass: ${ck.output}`);
    return { fresh, host, hostTree, ms };
  })();
}

async function unmount(t: Test, d: Daemon, mnt: string): Promise<void> {
  const u = await run('fusermount', ['-u', mnt], { allowFail: true });
  t.equal(u.code, 0, 'fusermount -u', { stderr: u.stderr });
  const ex = await within(d.exited, 60_000);
  t.ok(ex.ok && ex.value === 0, `the daemon exits 0 (${ex.ok ? ex.value : 'still running'})`, { stderr: d.stderr() });
  t.notOk(await isMounted(mnt), 'no mount left');
}

if (skip) {
  t.plan(0, `skip: ${skip}`);
} else {
  const B = box(t, 'emlink');
  const prepared = new Map<Variant, Promise<Prepared>>();
  const once = (v: Variant) => {
    let p = prepared.get(v);
    if (!p) prepared.set(v, p = prepare(B, v));
    return p;
  };

  for (const v of VARIANTS) {
    t.test(`host ext4, ${v.name}: the steps' expectations are what Linux answers`, async (t) => {
      const p = await once(v);
      const misses = v.steps.flatMap((s, i) => s.expect !== undefined && p.host[i] !== s.expect ? [`${i} ${describeStep(s)}: expected ${s.expect}, host ${p.host[i]}`] : []);
      t.strictSame(misses, [], `all ${v.steps.length} steps answer as expected on the host's ext4`);
      t.comment(`host: tree prepared in ${(await prepareBase(B)).ms} ms (once), steps run in ${p.ms} ms`);
    });
  }

  overTransports(t, (t, transport) => {
    for (const v of VARIANTS) {
      t.test(`ext4 ${v.name} through lklfuse: every step's outcome as on the host`, async (t) => {
        const p = await once(v);
        const img = B.path(`${v.tag}-${transport}.img`);
        fs.copyFileSync(p.fresh, img);
        const mnt = B.mnt(`mnt-${v.tag}-${transport}`);
        const t0 = Date.now();
        const d = await startForeground(img, mnt);
        const got = await runSteps(mnt, v.steps);
        await unmount(t, d, mnt);
        const ms = Date.now() - t0;
        const label = (rs: string[]) => v.steps.map((s, i) => `${i} ${describeStep(s)}: ${rs[i]}`);
        t.strictSame(label(got), label(p.host), `the ${v.steps.length} outcomes equal the host's, errno by errno`);
        const ck = await e2fsckClean(img);
        t.ok(ck.clean, 'e2fsck -fn clean', { output: ck.output });
        const after = await withLoopMount(img, { ro: true }, (m) => summary(m));
        t.strictSame(after, p.hostTree, 'the host kernel sees that tree in the lklfuse image');
        t.comment(`${transport}, ${v.name}: mount, ${v.steps.length} steps, unmount in ${ms} ms`);
      });
    }
  });
}
