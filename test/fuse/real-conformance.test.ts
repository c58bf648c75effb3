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
import { e2fsckClean, fsckVfatClean, makeExtImage, makeVfatImage, mtoolsList, withLoopMount } from '../lib/images.js';
import { diffManifests, hostManifest, type Manifest } from '../lib/manifest.js';
import { run, whyNot } from '../lib/sh.js';
import { box, fuseSkip, startForeground, transportSkip, within, isMounted, type Transport } from './real-helpers.js';
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
interface Difference { id: string; slot: string; why: string; bug?: boolean; transports?: Transport[]; maybe?: boolean }

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
  const stale = table.filter((d) => !hit.has(d) && !d.maybe).map((d) => `${d.id} ${d.slot}: documented as different, but equal (${d.why})`);
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

const EOF_READ = 'FUSE: the host kernel answers a read at the end of the size it holds (0 here) itself, without a READ, so the lkl-ts kernel never sees the read that would update the atime';
const FUSE_DIFFERENCES: Difference[] = [
  { id: 'read-empty-atime', slot: 'times:f', why: EOF_READ },
  { id: 'truncate-0', slot: 'times:f', why: `${EOF_READ} (the read after truncating to 0)` },
  { id: 'chown-noop', slot: 'times:f', why: 'FUSE: chown(-1, -1) reaches the daemon as a SETATTR with nothing to set (FATTR_CTIME is not sent), so the ctime stays' },
  { id: 'chown-nonowner-noop', slot: 'times:f', why: 'FUSE: as chown-noop' },
  { id: 'xattr-list', slot: 'op1', why: 'FUSE: a request carries the caller\'s uid/gid but no capabilities; lklfuse acts as a file server does (the caller\'s fsuid, its own CAP_SYS_ADMIN), so its listxattr includes trusted.* for anyone, and the host kernel filters trusted.* for getxattr/setxattr only, not in a listing' },
];

t.test('host ext4: the case list matches what Linux answers', { skip }, async (t) => {
  const { outcomes, ms } = await hostOnce(B.dir);
  const misses = expectationMisses(outcomes, CASES);
  t.strictSame(misses, [], `every expectation of the ${CASES.length} cases holds on the host's ext4`);
  const withExpect = CASES.reduce((n, c) => n + c.ops.filter((s) => s.expect !== undefined).length, 0);
  t.comment(`host ext4: ${CASES.length} cases, ${withExpect} expectations, ${withExpect - misses.length} met, in ${ms} ms`);
});

/** fusermount -u, and the daemon exits 0. */
async function unmount(t: Test, d: { exited: Promise<number | null>; stderr(): string }, mnt: string): Promise<void> {
  t.equal(spawnSync('fusermount', ['-u', mnt]).status, 0, 'fusermount -u');
  const ex = await within(d.exited, 60_000);
  t.ok(ex.ok && ex.value === 0, `the daemon exits 0 (${ex.ok ? ex.value : 'still running'})`, { stderr: d.stderr() });
  t.notOk(await isMounted(mnt), 'no mount left');
}

function report(t: Test, label: string, c: Comparison, ms: number): void {
  t.strictSame(c.undocumented, [], `${label}: every outcome not in the differences table equals the host's`);
  t.strictSame(c.stale, [], `${label}: every entry of the differences table is really different`);
  t.comment(`${label}: ${c.passed}/${c.total} cases equal to the host ext4 run (${c.documented} documented differences, ${c.undocumented.length} undocumented), ${ms} ms`);
}

// Over fuse-native (libfuse 2's high-level API through fuse-native, README "FUSE
// transports"), what the binding cannot carry. Each entry is one case's slot, so a new
// difference in a case listed here still fails.
const NATIVE = ['fuse-native'] as Transport[];
const NO_CALLER = 'fuse-native: requests carry no caller uid/gid, every one runs as the daemon (root): what a user creates is root\'s';
const NO_KILLPRIV = 'fuse-native: the host kernel\'s SETATTR before a non-owner\'s write or truncate reaches libfuse 2 with no mode to set (its -d log shows only a getattr), and the write itself runs as the daemon (root, CAP_FSETID), so S_ISGID stays';
const PATH_NODES = 'fuse-native: libfuse 2\'s high-level API keeps a node per path, so after link() the host kernel still holds the old name\'s attributes (nlink, ctime) for attr_timeout (1 s) and a stat within it shows them';
// Which of a hard link's other names show stale attributes after link, unlink or rename
// depends on the host kernel's FUSE attribute invalidation: Linux 6.18 refreshes them after
// link() (link-many op10 equal) but not after unlink() or rename(); earlier kernels the other
// way round. These entries may be equal (maybe), and the slots differ only as PATH_NODES says.
const PATH_NODES_STALE = `${PATH_NODES}; after unlink() or rename() over one of several names as well, depending on the host kernel`;
const NO_RENAME2 = 'fuse-native: libfuse 2 has no renameat2 flags: RENAME_NOREPLACE and RENAME_EXCHANGE are EINVAL (README)';
const MS_TIMES = 'fuse-native: times cross in whole milliseconds (README)';
const ONE_SIDED = 'fuse-native: libfuse 2 drops a SETATTR that sets only one of atime/mtime (flag_utime_omit_ok, which fuse-native never sets; README "touch -m -d")';
const PRE_1970 = 'fuse-native: its stat conversion is unsigned, so a time before 1970 reads as 1970 (stored as set: lklfuse reads utimens times as signed)';
const NO_ACL_CHECK = 'fuse-native: libfuse 2 does not ask for FUSE_POSIX_ACL, so the host checks mode bits only (default_permissions): a named-user ACL entry grants nothing (README)';
const UMASK_FIRST = 'fuse-native: no FUSE_DONT_MASK in libfuse 2: the host applies the umask before the request, so a default ACL cannot lift it (README)';
FUSE_DIFFERENCES.push(
  ...['open-creat-ownership', 'open-creat-sgid-dir', 'open-creat-sgid-strip', 'open-creat-sgid-keep', 'mkdir-ownership', 'mkdir-sgid-inherit',
    'mknod-fifo-1001', 'mknod-reg-1001', 'mknod-sock-1001', 'symlink-ownership', 'sticky-create-ok'].map((id) => ({ id, slot: 'op1', why: NO_CALLER, transports: NATIVE })),
  ...['write-clears-2767-other', 'truncate-clears-2767-other', 'ftruncate-clears-2767-other'].map((id) => ({ id, slot: 'op1', why: NO_KILLPRIV, transports: NATIVE })),
  { id: 'link-new', slot: 'op1', why: PATH_NODES, transports: NATIVE },
  { id: 'link-new', slot: 'times:f', why: PATH_NODES, transports: NATIVE },
  { id: 'link-many', slot: 'op10', why: PATH_NODES, transports: NATIVE, maybe: true },
  ...([['link-many', 'op21'], ['rename-file-ctime', 'times:keep'], ['rename-replace-file', 'op2'], ['rename-replace-file', 'times:g2'],
    ['unlink-link', 'op1'], ['unlink-link', 'times:g'], ['times-rename-replace', 'times:h']] as const)
    .map(([id, slot]) => ({ id, slot, why: PATH_NODES_STALE, transports: NATIVE, maybe: true })),
  { id: 'times-link-dst-dir', slot: 'times:f', why: PATH_NODES, transports: NATIVE },
  { id: 'rename-noreplace-new', slot: 'op0', why: NO_RENAME2, transports: NATIVE },
  ...['op0', 'op1', 'op2'].map((slot) => ({ id: 'rename-exchange', slot, why: NO_RENAME2, transports: NATIVE })),
  { id: 'utime-explicit', slot: 'op1', why: MS_TIMES, transports: NATIVE },
  { id: 'utime-omit-a', slot: 'times:f', why: ONE_SIDED, transports: NATIVE },
  { id: 'utime-omit-m', slot: 'times:f', why: ONE_SIDED, transports: NATIVE },
  { id: 'utime-explicit-a', slot: 'op1', why: ONE_SIDED, transports: NATIVE },
  { id: 'utime-explicit-a', slot: 'times:f', why: ONE_SIDED, transports: NATIVE },
  { id: 'utime-pre-epoch', slot: 'op1', why: PRE_1970, transports: NATIVE },
  { id: 'acl-grants', slot: 'op0', why: NO_ACL_CHECK, transports: NATIVE },
  { id: 'acl-mask-limits', slot: 'op1', why: NO_ACL_CHECK, transports: NATIVE },
  { id: 'acl-dir-grants-search', slot: 'op0', why: NO_ACL_CHECK, transports: NATIVE },
  { id: 'acl-chmod-recheck', slot: 'op0', why: NO_ACL_CHECK, transports: NATIVE },
  { id: 'acl-chmod-recheck', slot: 'op4', why: NO_ACL_CHECK, transports: NATIVE },
  { id: 'acl-default-inherit-more', slot: 'op7', why: NO_ACL_CHECK, transports: NATIVE },
  ...['op1', 'op2', 'op5'].map((slot) => ({ id: 'acl-default-inherit', slot, why: UMASK_FIRST, transports: NATIVE })),
  ...['op1', 'op2', 'op4'].map((slot) => ({ id: 'acl-default-inherit-more', slot, why: UMASK_FIRST, transports: NATIVE })),
);

for (const transport of ['kernel', 'fuse-native'] as Transport[]) {
  t.test(`ext4 through lklfuse -o allow_other,default_permissions (${transport} transport): every outcome as on the host`, { skip: skip || transportSkip(transport) }, async (t) => {
    const host = await hostOnce(B.dir);
    const img = B.path(`lkl-${transport}.img`);
    fs.copyFileSync(host.fresh, img);
    const mnt = B.mnt(`mnt-${transport}`);
    const other = B.path(`other-${transport}`);
    fs.mkdirSync(other);
    const d = await startForeground(img, mnt, ['-o', `allow_other,default_permissions,transport=${transport}`]);
    const root = path.join(mnt, 'conf');
    fs.mkdirSync(root, { mode: 0o755 });
    const t0 = Date.now();
    const outcomes = await runCases(root, other, CASES);
    const ms = Date.now() - t0;
    const table = FUSE_DIFFERENCES.filter((x) => !x.transports || x.transports.includes(transport));
    report(t, `ext4 via lklfuse (${transport})`, compare(host.outcomes, outcomes, CASES, table), ms);
    // fuse-native: attributes the host kernel cached under another name of a hard link
    // (PATH_NODES_STALE) expire after attr_timeout (1 s); the tree is read once they have.
    if (transport === 'fuse-native') await new Promise((r) => setTimeout(r, 1500));
    const seen = await hostManifest(root, { producer: `lklfuse ${transport}`, exclude: DEEP_EXCLUDE });
    await unmount(t, d, mnt);

    const ck = await e2fsckClean(img);
    t.ok(ck.clean, 'e2fsck -fn clean', { output: ck.output });
    const after = await withLoopMount(img, { ro: true }, (m) => hostManifest(path.join(m, 'conf'), { producer: 'host kernel after lklfuse', exclude: DEEP_EXCLUDE }));
    // Reading the content for the hashes through the mount updated atimes.
    const differing = [...new Set(table.map((x) => x.id))];
    t.strictSame(diffManifests(seen, after, transport === 'kernel' ? { ignore: ['atime'] } : {
      ignore: ['atime'], timePrecisionNs: 1_000_000n,
      ignoreAt: [{ path: /^utime-pre-epoch(\/|$)/, fields: ['mtime'], why: PRE_1970 }],
    }), [], 'the host kernel sees the tree the lklfuse run left');
    t.strictSame(diffManifests(host.manifest, after, {
      ignore: ['atime', 'mtime', 'ctime'],
      ignoreAt: [{ path: differing.map((id) => new RegExp(`^${id}(/|$)`)), fields: 'all', why: 'documented differences' }],
    }), [], 'and it is the tree the host\'s own run left (times aside)');
  });
}

// ---------------------------------------------------------------------------------------
// FAT through lklfuse, against the host's ext4 run: there is no host vfat driver here.

/** What FAT cannot do at all (cases using it are not run on FAT), and why. */
const FAT_UNSUPPORTED: Record<string, string> = {
  symlink: 'no symlinks (EPERM)', link: 'no hard links (EPERM)', mknod: 'no device nodes, fifos or sockets (EPERM)',
  mkfifo: 'no fifos (EPERM)', readlink: 'no symlinks',
  chown: 'one owner for the whole mount (uid=/gid=); chown to another is EPERM', fchown: 'as chown',
  chmod: 'modes come from fmask/dmask; only the w bits (read-only attribute) are kept', fchmod: 'as chmod',
  access: 'modes come from fmask/dmask',
  setxattr: 'no xattrs (EOPNOTSUPP)', getxattr: 'no xattrs', listxattr: 'no xattrs', removexattr: 'no xattrs',
  setacl: 'no ACLs', getacl: 'no ACLs',
  as: 'every file belongs to the mount\'s uid/gid with the masks\' modes: permission checks for other users say nothing about lkl-ts',
};
function fatExcluded(c: Case): string | undefined {
  for (const s of [...c.setup, ...c.ops]) {
    if (s.as) return FAT_UNSUPPORTED.as;
    if (FAT_UNSUPPORTED[s.op]) return FAT_UNSUPPORTED[s.op];
  }
  return undefined;
}
/** What FAT keeps differently: owners and modes are the mount's; directory sizes are clusters. */
function fatProject(r: string): string {
  return r.replace(/ ?(mode|uid|gid)=\d+/g, '').replace(/^ok:(dir.*?) size=\d+/, 'ok:$1');
}
const FAT_TIMES = 'FAT: mtimes are kept in 2 s, atimes as a date only, in 1980-2107 (the exact times set differ)';
const FAT_DIFFERENCES: Difference[] = [
  { id: 'read-empty-atime', slot: 'times:f', why: EOF_READ },
  { id: 'truncate-0', slot: 'times:f', why: `${EOF_READ} (the read after truncating to 0)` },
  { id: 'rename-exchange', slot: '*', why: 'lkl-ts FAT: RENAME_EXCHANGE is EINVAL, as in Linux before 6.0 (vfat_rename_exchange came in 6.0)' },
  ...['utime-explicit', 'utime-explicit-a', 'utime-pre-epoch', 'utime-2100', 'utime-dir'].map((id) => ({ id, slot: 'op1', why: FAT_TIMES })),
];

t.test('FAT through lklfuse (kernel transport): the outcomes of the host ext4 run, but for FAT\'s documented differences', { skip: skip || transportSkip('kernel') }, async (t) => {
  const host = await hostOnce(B.dir);
  const cases = CASES.filter((c) => !fatExcluded(c));
  const img = await makeVfatImage({ fat: 32, sizeMiB: 64, path: B.path('fat.img') });
  const mnt = B.mnt('mnt-fat');
  const other = B.path('other-fat');
  fs.mkdirSync(other);
  const d = await startForeground(img, mnt, ['-o', 'allow_other,default_permissions,transport=kernel']);
  const root = path.join(mnt, 'conf');
  fs.mkdirSync(root);
  const t0 = Date.now();
  const outcomes = await runCases(root, other, cases);
  const ms = Date.now() - t0;
  report(t, 'FAT via lklfuse (kernel)', compare(host.outcomes, outcomes, cases, FAT_DIFFERENCES, fatProject), ms);
  t.comment(`FAT: ${CASES.length - cases.length} of ${CASES.length} cases not run (${[...new Set(CASES.map(fatExcluded).filter(Boolean))].length} documented reasons)`);
  const seen = await hostManifest(root, { producer: 'lklfuse FAT', exclude: DEEP_EXCLUDE, xattrs: false });
  await unmount(t, d, mnt);
  const ck = await fsckVfatClean(img);
  t.ok(ck.clean, 'fsck.vfat -n clean', { output: ck.output });
  // mdir (mcopy cannot copy the 4 KiB-deep trees out to the host).
  const mt = new Set((await mtoolsList(img)).entries.map((e) => e.path));
  const missing = seen.entries.filter((e) => e.path !== '.' && !mt.has(`conf/${e.path}`)).map((e) => e.path);
  t.strictSame(missing, [], `mtools sees every name the run left (${seen.entries.length - 1} seen through the mount)`);
});
