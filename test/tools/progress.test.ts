/*
 * The progress line of cptofs, cpfromfs and fs2tar (issue 16).
 *
 * In process, with a stand-in terminal and clock: nothing before the delay (1 s), nothing
 * on a non-terminal or with -q, at most ten redraws a second, the fields (files done/total,
 * bytes done/total, rate, ETA) computed right, the line fitted to the terminal's width and
 * cleared at the end, messages written between clearing and redrawing.
 *
 * Through a pseudo-terminal (util-linux script(1)), with LKL_TOOLS_PROGRESS_DELAY_MS=0 so
 * the line shows at once: each tool draws frames with sane fields (the totals those of the
 * copied tree, counts that only grow, no frame wider than the terminal), clears the line
 * last and prints nothing else; with -q, or on a pipe, or with the default delay for a
 * quick copy, nothing at all. The copies stay exact (e2fsck -fn, the host kernel's view,
 * the tar listing). Also the exit status on SIGINT: 1, the image clean.
 */
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Progress, fit, formatBytes, formatDuration, type ProgressStream } from '../../lib/tools/progress.js';
import { e2fsckClean, makeExtImage, withLoopMount } from '../lib/images.js';
import { diffManifests, hostManifest, type DiffOptions } from '../lib/manifest.js';
import { TOOL_ENV, run, whyNot, type RunResult } from '../lib/sh.js';
import { scratchDir } from '../lib/scratch.js';
import { buildTree, type NodeSpec } from '../lib/tree.js';

const BIN = (n: string) => fileURLToPath(new URL(`../../bin/${n}.js`, import.meta.url));
const MiB = 1024 * 1024;

/** A terminal stand-in that records what is written. */
function term(columns = 80, isTTY = true): ProgressStream & { out: string[] } {
  const out: string[] = [];
  return { isTTY, columns, out, write: (s: string) => { out.push(s); return true; } };
}

t.test('formatting', async (t) => {
  t.equal(formatBytes(0), '0 B');
  t.equal(formatBytes(1023), '1023 B');
  t.equal(formatBytes(1536), '1.5 KiB');
  t.equal(formatBytes(5 * MiB, 80 * MiB), '5.0 MiB', 'in the unit of the total');
  t.equal(formatBytes(512, 80 * MiB), '0.0 MiB');
  t.equal(formatDuration(0), '0:00');
  t.equal(formatDuration(65.4), '1:05');
  t.equal(formatDuration(3 * 3600 + 7), '3:00:07');
  const pieces = ['cptofs:', { bar: 0.5 }, ' 50%', '5/10 files', '1.0/2.0 MiB', 'ETA 0:01', '1.0 MiB/s'];
  const wide = fit(pieces, 200);
  t.match(wide, /^cptofs: \[#{15}\.{15}\]   50%  5\/10 files  1\.0\/2\.0 MiB  ETA 0:01  1\.0 MiB\/s$/, 'all pieces, a bar of at most 30');
  t.equal(fit(pieces, 75), 'cptofs: [#######......]   50%  5/10 files  1.0/2.0 MiB  ETA 0:01  1.0 MiB/s', 'a shorter bar in 75 columns');
  t.equal(fit(pieces, 70), 'cptofs:  50%  5/10 files  1.0/2.0 MiB  ETA 0:01  1.0 MiB/s', 'no room for a bar of 10: none');
  t.equal(fit(pieces, 50), 'cptofs:  50%  5/10 files  1.0/2.0 MiB  ETA 0:01', 'then pieces dropped from the right: the rate');
  t.equal(fit(pieces, 45), 'cptofs:  50%  5/10 files  1.0/2.0 MiB', 'then the ETA');
  t.equal(fit(pieces, 10), 'cptofs:  5', 'cut to the width when even two pieces are too wide');
});

t.test('a non-terminal, or -q: nothing is written', async (t) => {
  for (const [name, stream, quiet] of [['pipe', term(80, false), false], ['-q', term(80, true), true]] as const) {
    let now = 0;
    const p = new Progress({ prog: 'cptofs', stream, quiet, delayMs: 0, now: () => now });
    t.equal(p.enabled, false, `${name}: disabled`);
    p.beginScan(); p.scanned(10); p.endScan();
    for (let i = 0; i < 50; i++) { now += 100; p.addBytes(1); p.fileDone(); }
    p.write('warning\n');
    p.finish();
    t.same(stream.out, ['warning\n'], `${name}: only the message`);
  }
});

t.test('delay, redraw rate, fields, width, clearing', async (t) => {
  let now = 0;
  const stream = term(100);
  const p = new Progress({ prog: 'cptofs', stream, delayMs: 1000, now: () => now });
  t.teardown(() => p.finish());
  t.ok(p.enabled);
  p.beginScan();
  for (let i = 0; i < 10; i++) p.scanned(i < 4 ? MiB : 0); // 10 entries, 4 MiB
  p.endScan();
  for (; now < 999; now += 1) p.addBytes(0);
  t.same(stream.out, [], 'nothing in the first second');
  // 1 MiB per second from here, an update every millisecond for two seconds.
  const start = now;
  for (; now <= start + 2000; now += 1) p.addBytes(MiB / 1000);
  const frames = stream.out.length;
  t.ok(frames >= 15 && frames <= 21, `at most ten redraws a second (${frames} in 2 s)`);
  t.same(stream.out.filter((f) => !(f.startsWith('\r') && f.endsWith('\x1b[K'))), [], 'each frame returns to the line start and clears its rest');
  t.same(stream.out.filter((f) => f.length - 4 > 99), [], 'no frame wider than the terminal');
  const last = stream.out[stream.out.length - 1]!.slice(1, -3);
  t.match(last, /^cptofs: \[#{14,15}\.{15,16}\] +(4[7-9]|50)%  0\/10 files  (1\.9|2\.0)\/4\.0 MiB  ETA 0:0[23]  1\.0 MiB\/s$/, `the fields: ${last}`);
  p.fileDone(); p.fileDone();
  now += 200;
  p.write('cptofs: warning: something\n');
  t.same(stream.out.slice(-2), ['\r\x1b[K', 'cptofs: warning: something\n'], 'a message clears the line first');
  p.fileDone();
  t.match(stream.out[stream.out.length - 1], /3\/10 files/, 'redrawn after the message');
  const before = stream.out.length;
  p.finish();
  t.same(stream.out.slice(before), ['\r\x1b[K'], 'finish clears the line');
  now += 1000;
  p.addBytes(1);
  t.equal(stream.out.length, before + 1, 'nothing after finish');
});

t.test('without bytes to copy, the ETA comes from the entries', async (t) => {
  let now = 0;
  const stream = term(120);
  const p = new Progress({ prog: 'cpfromfs', stream, delayMs: 0, now: () => now });
  t.teardown(() => p.finish());
  p.beginScan();
  for (let i = 0; i < 8; i++) p.scanned(0);
  p.endScan();
  now = 500;
  p.fileDone();
  now = 1000;
  p.fileDone();
  t.match(stream.out[stream.out.length - 1], /^\rcpfromfs: \[#+\.+\] +25%  2\/8 files  0\/0 B  ETA 0:03  0 B\/s\x1b\[K$/, 'by entries: 2 of 8 in 1 s');
});

/* ---- through a pseudo-terminal ---- */

const ptySkip = whyNot(['script', 'stty', 'mke2fs', 'e2fsck', 'losetup', 'mount', 'tar'], { root: true });
const COLS = 70;
const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs a tool on a pseudo-terminal COLS wide; resolves to what the terminal received. */
function onPty(prog: string, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  const cmd = `stty cols ${COLS}; exec ${quote(process.execPath)} ${[BIN(prog), ...args].map(quote).join(' ')}`;
  return run('script', ['-qfec', cmd, '/dev/null'], { allowFail: true, timeoutMs: 120_000, env });
}

interface Frame { text: string; done?: number; total?: number; bytes?: string }
/** The frames drawn: split at carriage returns, the clear-to-end-of-line codes removed. */
function frames(out: string): Frame[] {
  return out.split('\r').map((s) => s.replace(/\x1b\[K/g, '')).filter((s) => s.length > 0).map((text) => {
    const m = /(\d+)\/(\d+) files {2}(\S+)/.exec(text);
    return m ? { text, done: Number(m[1]), total: Number(m[2]), bytes: m[3] } : { text };
  });
}

const FILES = 40;
const SMALL = 150;
function bigTree(): NodeSpec[] {
  const n: NodeSpec[] = [];
  for (let i = 0; i < FILES; i++) n.push({ kind: 'file', path: `big/f${String(i).padStart(2, '0')}`, content: { kind: 'random', size: 2 * MiB, seed: i } });
  for (let i = 0; i < SMALL; i++) n.push({ kind: 'file', path: `small/s${i}`, content: { kind: 'text', text: `${i}\n` } });
  return n;
}
/** Entries the copy counts: the two directories and every file. */
const ENTRIES = FILES + SMALL + 2;
const TOTAL = `${(FILES * 2).toFixed(1)} MiB`;

const BASE: DiffOptions = {
  ignore: ['atime', 'ctime', 'mtime', 'dirSize', 'mode', 'uid', 'gid', 'xattrs'],
  ignoreAt: [
    { path: '.', fields: 'all', why: 'the root of the image is mke2fs\'s' },
    { path: 'lost+found', fields: 'all', why: 'made by mke2fs' },
  ],
};

function checkFrames(t: Test, prog: string, r: RunResult, total: number): void {
  t.equal(r.code, 0, `${prog} on a terminal: exit 0`);
  const out = r.stdout;
  t.ok(out.endsWith('\r\x1b[K'), `${prog}: the line is cleared last (${JSON.stringify(out.slice(-40))})`);
  t.notMatch(out, /\n/, `${prog}: nothing but the progress line`);
  const f = frames(out);
  const counted = f.filter((x) => x.total !== undefined);
  t.ok(counted.length >= 2, `${prog}: frames drawn while copying (${f.length})`);
  let prev = -1;
  let ok = true;
  for (const x of f) {
    if (x.text.length > COLS - 1) { ok = false; t.fail(`${prog}: a frame wider than the terminal: ${x.text}`); }
    if (!x.text.startsWith(`${prog}: `)) { ok = false; t.fail(`${prog}: a frame without the program's name: ${x.text}`); }
    if (x.total === undefined) {
      if (!/^\S+: counting: \d+ files, /.test(x.text)) { ok = false; t.fail(`${prog}: not a frame: ${x.text}`); }
      continue;
    }
    if (x.total !== total || x.done! > x.total || x.done! < prev) { ok = false; t.fail(`${prog}: frame fields: ${x.text}`); }
    if (!x.text.includes(`/${TOTAL}`)) { ok = false; t.fail(`${prog}: the byte total is not ${TOTAL}: ${x.text}`); }
    prev = x.done!;
  }
  t.ok(ok, `${prog}: every frame sane (totals ${total} files, ${TOTAL}; counts only grow; ${COLS - 1} columns at most)`);
  t.ok(counted.some((x) => /\[[#.]+\] +\d+%/.test(x.text)), `${prog}: a frame with the bar and the percentage`);
  // Frames are drawn 100 ms apart at least, so the 7th of the copy is 0.6 s into it, when
  // the rate (measured from 0.5 s on) and the ETA must show.
  const late = counted.slice(6);
  if (late.length) {
    t.same(late.filter((x) => !(/ETA \d+:\d\d  \d+(\.\d)? (B|KiB|MiB|GiB)\/s$/.test(x.text))), [], `${prog}: frames 0.6 s into the copy show the ETA and the rate`);
  } else {
    t.comment(`${prog}: the copy drew ${counted.length} frames, too few to see the rate`);
  }
}

t.test('through a pseudo-terminal: cptofs, cpfromfs, fs2tar draw the line; -q, pipes and quick copies do not', { skip: ptySkip, timeout: 240_000 }, async (t) => {
  const dir = scratchDir(t, 'progress');
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  await buildTree(src, { nodes: bigTree() });
  const orig = await hostManifest(src, { producer: 'source' });
  const now = { LKL_TOOLS_PROGRESS_DELAY_MS: '0' };

  const img = await makeExtImage({ dir, type: 'ext4', sizeMiB: 160, blockSize: 4096 });
  const w = await onPty('cptofs', ['-i', img, `${src}/.`, '/'], now);
  checkFrames(t, 'cptofs', w, ENTRIES);
  const fsck = await e2fsckClean(img);
  t.ok(fsck.clean, `e2fsck -fn clean: ${fsck.output}`);
  await withLoopMount(img, { ro: true, type: 'ext4' }, async (mnt) => {
    t.same(diffManifests(orig, await hostManifest(mnt, { producer: 'host-kernel', exclude: ['lost+found'] }), BASE), [],
      'the host kernel sees the copied tree');
  });

  const out = path.join(dir, 'out');
  fs.mkdirSync(out);
  const r = await onPty('cpfromfs', ['-i', img, '/', out], now);
  // lost+found is copied too: one more entry.
  checkFrames(t, 'cpfromfs', r, ENTRIES + 1);
  t.same(diffManifests(orig, await hostManifest(out, { producer: 'cpfromfs', exclude: ['lost+found'] }), BASE), [], 'cpfromfs copied the tree');

  const tarFile = path.join(dir, 'img.tar');
  const a = await onPty('fs2tar', [img, tarFile], now);
  checkFrames(t, 'fs2tar', a, ENTRIES + 1);
  const list = (await run('tar', ['-tf', tarFile])).stdout.split('\n').filter(Boolean);
  t.equal(list.length, ENTRIES + 1, 'the archive holds every entry');

  // -q on a terminal, and a pipe: nothing but what the copy says (here: nothing).
  const img2 = await makeExtImage({ dir, type: 'ext4', sizeMiB: 160, blockSize: 4096, path: path.join(dir, 'q.img') });
  const q = await onPty('cptofs', ['-q', '-i', img2, `${src}/.`, '/'], now);
  t.equal(q.code, 0, 'cptofs -q: exit 0');
  t.equal(q.stdout, '', 'cptofs -q on a terminal: nothing written');
  const qa = await onPty('fs2tar', ['-q', img2, path.join(dir, 'q.tar')], now);
  t.equal(qa.code, 0, 'fs2tar -q: exit 0');
  t.equal(qa.stdout, '', 'fs2tar -q on a terminal: nothing written');
  const piped = await run(process.execPath, [BIN('cpfromfs'), '-i', img2, '/big', path.join(dir, 'piped')], { allowFail: true, env: now });
  t.equal(piped.code, 0, 'cpfromfs on a pipe: exit 0');
  t.equal(piped.stderr, '', 'cpfromfs on a pipe: nothing on stderr');
  t.equal(fs.readdirSync(path.join(dir, 'piped')).length, FILES, 'and it copied');
  // The default delay: a copy that takes less than a second shows nothing.
  const quick = await onPty('cpfromfs', ['-i', img2, '/small/s1', path.join(dir, 'quick')]);
  t.equal(quick.code, 0, 'a quick cpfromfs: exit 0');
  t.equal(quick.stdout, '', 'a copy under a second draws no line');
  t.equal(fs.readFileSync(path.join(dir, 'quick'), 'utf8'), '1\n');
  t.ok((await e2fsckClean(img2)).clean, 'the -q image is clean');
});

t.test('SIGINT stops the copy after the current entry: exit status 1, the image clean', { skip: whyNot(['mke2fs', 'e2fsck']), timeout: 120_000 }, async (t) => {
  const dir = scratchDir(t, 'progress-sigint');
  const src = path.join(dir, 'src');
  fs.mkdirSync(src);
  await buildTree(src, { nodes: bigTree() });
  const img = await makeExtImage({ dir, type: 'ext4', sizeMiB: 160, blockSize: 4096 });
  const child = spawn(process.execPath, [BIN('cptofs'), '-v', '-i', img, `${src}/.`, '/'], { env: { ...process.env, ...TOOL_ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let sent = false;
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
    // The first entry is being copied (150 small files and 60 MiB are still to come).
    if (!sent && stderr.includes(' -> ')) { sent = true; child.kill('SIGINT'); }
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  t.ok(sent, 'SIGINT sent during the copy');
  t.equal(code, 1, 'exit status 1');
  t.match(stderr, /^cptofs: SIGINT: stopping after the current entry$/m, 'says it stops');
  t.match(stderr, /^cptofs: interrupted \(the copy is incomplete\)$/m, 'says the copy is incomplete');
  const copied = stderr.split('\n').filter((l) => l.includes(' -> ')).length;
  t.ok(copied < ENTRIES, `stopped early (${copied} of ${ENTRIES} entries)`);
  const fsck = await e2fsckClean(img);
  t.ok(fsck.clean, `e2fsck -fn clean after the interrupted copy: ${fsck.output}`);
});
