/*
 * Issue 6 acceptance, against the real kernel: a tree of a few thousand files (nested
 * directories, sizes from 0 to ~200 KiB, long and UTF-8 names FAT can hold, mtimes of odd
 * and even seconds) copied onto a mounted FAT32 image with `cp -rp`, compared with
 * `diff -r` while mounted, unmounted with fusermount -u (the daemon exits 0), then judged by
 * fsck.vfat -n and read back by mtools: names, sizes, content and mtimes (to 2 s) equal the
 * source projected to FAT.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fsckVfatClean, makeVfatImage } from '../lib/images.js';
import { diffManifests, hostManifest, mtoolsManifest, projectToFat } from '../lib/manifest.js';
import { run } from '../lib/sh.js';
import { prngBytes, seedOf } from '../lib/tree.js';
import { box, daemonsFor, fatDirtyBit, fuseSkip, fusermountU, isMounted, startForeground, waitFor, within, overTransports } from './real-helpers.js';

const skip = fuseSkip(['mkfs.vfat', 'fsck.vfat', 'mcopy', 'mdir', 'diff', 'cp']);

/** Names FAT holds (long, UTF-8 in the BMP, none that fits 8.3 with non-ASCII, none that clash case-insensitively). */
const NAME_STEMS = [
  'file', 'Mixed Case Name', 'with space', 'many.dots.in.name', '.hidden-ish', 'UPPER',
  'répertoire-données', 'über-straße-grüße', '日本語のファイル名', 'Ελληνικά-αρχείο', 'кириллица-файл',
  'a-rather-long-name-that-needs-several-long-name-entries-in-the-directory',
];

interface Spec { files: { rel: string; size: number; mtime: number }[]; dirs: { rel: string; mtime: number }[] }

/** ~3,000 files in nested directories; sizes skewed small, up to 200 KiB. */
function treeSpec(): Spec {
  const files: Spec['files'] = [];
  const dirs: Spec['dirs'] = [];
  let n = 0;
  const T0 = 981_173_106; // 2001-02-03T04:05:06Z
  const size = (i: number) => {
    const r = (seedOf(`size${i}`) % 10000) / 10000;
    if (i % 97 === 0) return 0;
    if (i % 389 === 0) return 200 * 1024; // the biggest
    if (r < 0.7) return Math.floor(r * 6000); // small: up to a few KiB
    if (r < 0.95) return Math.floor(4096 + (r - 0.7) * 240_000); // up to ~64 KiB
    return Math.floor(64 * 1024 + (r - 0.95) * 2_700_000); // up to ~200 KiB
  };
  const addFile = (dir: string, name: string) => {
    files.push({ rel: dir ? `${dir}/${name}` : name, size: size(n), mtime: T0 + n * 3 + (n % 2) });
    n++;
  };
  const addDir = (rel: string) => dirs.push({ rel, mtime: T0 + 7 * dirs.length + 1 });
  for (let a = 0; a < 20; a++) {
    const top = a === 7 ? 'Tiefe Verzeichnisse — ünïcödé' : `dir${String(a).padStart(2, '0')}`;
    addDir(top);
    for (let b = 0; b < 5; b++) {
      const sub = `${top}/${b === 3 ? 'sous-répertoire numéro trois' : `sub${b}`}`;
      addDir(sub);
      for (let c = 0; c < 26; c++) {
        const stem = NAME_STEMS[(a + b + c) % NAME_STEMS.length]!;
        addFile(sub, c % 3 === 0 ? `${stem} ${c}.txt` : c % 3 === 1 ? `f${c}.bin` : `${stem}-${c}`);
      }
    }
  }
  // One directory with many entries (spans many clusters), names of every length up to 255.
  addDir('flat');
  for (let i = 0; i < 450; i++) addFile('flat', `entry-${String(i).padStart(4, '0')}${'x'.repeat(i % 60)}`);
  addFile('flat', 'L'.repeat(255));
  addFile('flat', `${'日'.repeat(85)}`); // 255 bytes of UTF-8, 85 UTF-16 units
  // A chain of directories.
  let p = 'deep';
  addDir(p);
  for (let i = 1; i <= 12; i++) { p += `/level-${i}`; addDir(p); }
  addFile(p, 'leaf.txt');
  // Files at the top level, including the 8.3 corner cases.
  for (const name of ['README', 'A.TXT', 'b.txt', 'lower.case', 'NAME1234.EXT', 'x']) addFile('', name);
  return { files, dirs };
}

function buildSource(root: string, spec: Spec): number {
  let bytes = 0;
  for (const d of spec.dirs) fs.mkdirSync(path.join(root, d.rel), { recursive: true });
  for (const f of spec.files) {
    const abs = path.join(root, f.rel);
    fs.writeFileSync(abs, prngBytes(seedOf(f.rel), f.size));
    fs.utimesSync(abs, f.mtime, f.mtime);
    bytes += f.size;
  }
  // Directory times last, deepest first.
  for (const d of [...spec.dirs].sort((x, y) => y.rel.split('/').length - x.rel.split('/').length)) {
    fs.utimesSync(path.join(root, d.rel), d.mtime, d.mtime);
  }
  return bytes;
}

overTransports(t, (t) => {
  t.test('cp -rp of ~3,000 files onto FAT32 through lklfuse; diff -r, fsck.vfat, mtools agree', { skip }, async (t) => {
    const b = box(t, 'vfatcp');
    const src = b.path('src');
    fs.mkdirSync(src);
    const spec = treeSpec();
    const bytes = buildSource(src, spec);
    t.comment(`source: ${spec.files.length} files, ${spec.dirs.length} dirs, ${(bytes / 1048576).toFixed(1)} MiB`);
    t.ok(spec.files.length >= 3000, `${spec.files.length} files`);

    const img = await makeVfatImage({ fat: 32, sizeMiB: 256, path: b.path('fat32.img') });
    const mnt = b.mnt();
    const d = await startForeground(img, mnt);

    let t0 = Date.now();
    const cp = await run('cp', ['-rp', '--', `${src}/.`, `${mnt}/`], { allowFail: true, timeoutMs: 300_000 });
    t.equal(cp.code, 0, `cp -rp exits 0 (${((Date.now() - t0) / 1000).toFixed(1)} s)`, { stderr: cp.stderr.slice(0, 4000) });

    t0 = Date.now();
    const diff = await run('diff', ['-r', '--', src, mnt], { allowFail: true, timeoutMs: 300_000 });
    t.equal(diff.code, 0, `diff -r SRC MNT is empty while mounted (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    t.equal(diff.stdout.slice(0, 4000) + diff.stderr.slice(0, 2000), '', 'no differences');

    // Attributes through the mount: sizes and mtimes (FAT keeps 2 s).
    const bad: string[] = [];
    for (const f of spec.files) {
      const st = fs.statSync(path.join(mnt, f.rel));
      if (st.size !== f.size) bad.push(`${f.rel}: size ${st.size} != ${f.size}`);
      if (Math.floor(st.mtimeMs / 1000) !== f.mtime - (f.mtime % 2)) bad.push(`${f.rel}: mtime ${st.mtimeMs / 1000} != ${f.mtime} (to 2 s)`);
    }
    t.strictSame(bad.slice(0, 30), [], 'sizes and mtimes (2 s) through the mount');
    t.equal(fs.readdirSync(path.join(mnt, 'flat')).length, 452, 'readdir of a 452-entry directory');

    const um = await fusermountU(mnt);
    t.equal(um.status, 0, 'fusermount -u (tried again while busy)', { stderr: um.stderr });
    const ex = await within(d.exited, 60_000);
    t.ok(ex.ok && ex.value === 0, `the daemon exits 0 (${ex.ok ? ex.value : 'still running after 60 s'})`, { stderr: d.stderr() });
    t.notOk(await isMounted(mnt), 'no mount left');
    t.ok(await waitFor(() => daemonsFor(mnt).length === 0, 5000), 'no process left');

    const ck = await fsckVfatClean(img);
    t.ok(ck.clean, 'fsck.vfat -n finds nothing', { output: ck.output.slice(0, 4000) });
    t.notOk(fatDirtyBit(img), 'the dirty bit is clear');

    const want = projectToFat(await hostManifest(src, { producer: 'source', xattrs: false }));
    const got = await mtoolsManifest(img);
    const dm = diffManifests(want, got, { maxDiffs: 60 });
    t.strictSame(dm, [], `mtools reads back the source projected to FAT (${got.entries.length} entries)`);
  });
});
