/*
 * The package as users install it: `npm pack` of this build, `npm i -g --prefix TMP` of the
 * tarball (dependencies from npm's cache, which `npm ci` filled), then the installed copy
 * checked and run: its file list (what package.json "files" promises and nothing else: no
 * tests, no CI files, no sources; LICENSE and the man pages there, the pages linked into
 * PREFIX/share/man), every relative import inside it resolvable within it, `--help` and
 * `--version` of each installed command, and the installed lklfuse mounting an e2fsprogs
 * fixture image (read-only, over each FUSE transport) whose file reads back as debugfs(8)
 * reads it, unmounted with fusermount -u, the daemon exiting 0.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { E2FSPROGS_FIXTURES, fixturesSkip } from '../lib/fixtures.js';
import { scratchDir } from '../lib/scratch.js';
import { which } from '../lib/sh.js';
import { TRANSPORTS, fuseSkip, isMounted, realEnv, sha256File, transportSkip, waitFor, within } from '../fuse/real-helpers.js';
import { PKG, PROGRAMS, REPO, binOf } from './helpers.js';
import { DAEMON_NODE_FLAGS } from '../../lib/fuse/node-flags.js';

const npm = which('npm');

/** What package.json "files" (plus package.json itself) allows in the package. */
const ALLOWED = [
  /^package\.json$/, /^README\.md$/, /^LICENSE$/, /^scripts\/lklfuse@\.service$/, /^scripts\/man\/[\w-]+\.[18]$/,
  /^dist\/(lib|bin)\/.+\.(js|d\.ts)$/,
];

/** Every file under `dir` (relative paths), node_modules left out. */
function walk(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) { if (e.name !== 'node_modules') out.push(...walk(dir, r)); } else out.push(r);
  }
  return out.sort();
}

/** Module specifiers written literally in a compiled file (static imports, re-exports, import('...')). */
function specifiers(js: string): string[] {
  const out: string[] = [];
  for (const m of js.matchAll(/^\s*(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm)) {
    out.push((m[1] ?? m[2] ?? m[3])!);
  }
  return out;
}

t.test('npm pack, npm i -g --prefix, and the installed lklfuse', { skip: npm ? false : 'no npm' }, async (t) => {
  t.ok(fs.existsSync(binOf('lklfuse')), 'this build is compiled (dist/bin/lklfuse.js)');
  const tmp = scratchDir(t, 'install');

  // Pack what the repository holds now (dist/ is this build; prepack would only rebuild it).
  const pack = spawnSync(npm!, ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
  t.equal(pack.status, 0, 'npm pack exits 0', { stderr: pack.stderr });
  const info = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[]; entryCount: number; size: number; unpackedSize: number }[];
  const packed = info[0]!.files.map((f) => f.path).sort();
  t.comment(`package: ${packed.length} files, ${info[0]!.size} bytes packed, ${info[0]!.unpackedSize} unpacked`);
  t.same(packed.filter((p) => !ALLOWED.some((re) => re.test(p))), [], 'the package holds only the library, the programs, the unit, the man pages, README, LICENSE');
  for (const want of ['LICENSE', 'README.md', 'scripts/lklfuse@.service', ...PKG.man.map((m) => path.normalize(m)),
    ...Object.values(PKG.bin).map((b) => path.normalize(b)), 'dist/lib/index.js', 'dist/lib/index.d.ts']) {
    t.ok(packed.includes(want), `packed: ${want}`);
  }

  const prefix = path.join(tmp, 'prefix');
  const inst = spawnSync(npm!, ['i', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', path.join(tmp, info[0]!.filename)],
    { cwd: tmp, encoding: 'utf8', timeout: 300_000 });
  t.equal(inst.status, 0, 'npm i -g --prefix TMP lkl-ts-*.tgz exits 0', { stdout: inst.stdout, stderr: inst.stderr });
  if (inst.status !== 0) return;

  const pkgDir = path.join(prefix, 'lib', 'node_modules', PKG.name);
  const installed = walk(pkgDir);
  t.same(installed, packed, 'the installed tree is the packed file list');
  t.same(installed.filter((p) => /(^|\/)(test|\.ci)(\/|$)|\.test\.|\.ts$(?<!\.d\.ts)|\.map$/.test(p)), [], 'no tests, no CI files, no TypeScript sources, no source maps');
  t.match(fs.readFileSync(path.join(pkgDir, 'LICENSE'), 'utf8'), /GNU GENERAL PUBLIC LICENSE\s+Version 2, June 1991/, 'LICENSE is the GPL-2.0 text');
  for (const m of PKG.man) {
    const base = path.basename(m);
    const linked = path.join(prefix, 'share', 'man', `man${base.slice(-1)}`, base);
    t.ok(fs.existsSync(linked), `man page installed: share/man/man${base.slice(-1)}/${base}`);
  }

  // Every relative import of the installed code resolves inside the package (nothing
  // reaches for dist/test or dist/scripts); bare ones are node: built-ins or dependencies.
  const deps = Object.keys(PKG.dependencies);
  const broken: string[] = [];
  for (const f of installed.filter((p) => p.endsWith('.js'))) {
    for (const s of specifiers(fs.readFileSync(path.join(pkgDir, f), 'utf8'))) {
      if (s.startsWith('.')) {
        const target = path.resolve(path.dirname(path.join(pkgDir, f)), s);
        if (!target.startsWith(pkgDir + path.sep) || !fs.existsSync(target)) broken.push(`${f}: ${s}`);
      } else if (!s.startsWith('node:') && !deps.some((d) => s === d || s.startsWith(d + '/'))) {
        broken.push(`${f}: ${s} (not a dependency)`);
      }
    }
  }
  t.same(broken, [], 'every import of the installed code resolves within the package or its dependencies');

  for (const prog of PROGRAMS) {
    const exe = path.join(prefix, 'bin', prog);
    const help = spawnSync(exe, ['--help'], { encoding: 'utf8', env: realEnv() });
    t.equal(help.status, 0, `installed ${prog} --help exits 0`, { stderr: help.stderr });
    t.match(help.stdout, new RegExp(`^Usage: ${prog} `), `installed ${prog} --help prints its usage`);
    const v = spawnSync(exe, ['--version'], { encoding: 'utf8', env: realEnv() });
    t.equal(v.stdout.trim(), PKG.version, `installed ${prog} --version: ${PKG.version}`);
  }

  const mountSkip = fuseSkip(['debugfs']) || fixturesSkip();
  t.test('the installed lklfuse mounts a fixture image', { skip: mountSkip }, async (t) => {
    // d_inline_dump: a clean ext4 image whose /file (80 bytes) is stored inline in its inode.
    const img = path.join(tmp, 'inline.img');
    fs.writeFileSync(img, gunzipSync(fs.readFileSync(path.join(E2FSPROGS_FIXTURES, 'd_inline_dump', 'image.gz'))));
    const before = sha256File(img);
    const dump = spawnSync('debugfs', ['-R', 'cat /file', img], { encoding: 'buffer' });
    t.equal(dump.status, 0, 'debugfs reads /file');
    const expected = dump.stdout;
    t.equal(expected.length, 80, 'debugfs: /file is 80 bytes');

    for (const tr of TRANSPORTS) {
      t.test(`transport=${tr}`, { skip: transportSkip(tr) }, async (t) => {
        const mnt = path.join(tmp, `mnt-${tr}`);
        fs.mkdirSync(mnt);
        const child = spawn(path.join(prefix, 'bin', 'lklfuse'), [img, mnt, '-f', '-o', `ro,transport=${tr}`],
          { env: realEnv(), stdio: ['ignore', 'ignore', 'pipe'] });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => { stderr += d; });
        const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
        t.teardown(async () => {
          if (await isMounted(mnt)) spawnSync('fusermount', ['-u', '-z', mnt], { stdio: 'ignore' });
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        });
        const live = await waitFor(async () => (await isMounted(mnt)) || child.exitCode !== null, 30_000);
        t.ok(live && (await isMounted(mnt)), 'the mount is live', { stderr });
        if (!(await isMounted(mnt))) return;
        const argv = fs.readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
        for (const f of DAEMON_NODE_FLAGS) t.ok(argv.includes(f), `the daemon's node runs with ${f} (the #! line)`, { argv });
        t.same(fs.readFileSync(path.join(mnt, 'file')), expected, '/file reads back as debugfs reads it');
        t.ok(fs.readdirSync(mnt).includes('shortfile'), 'the root directory lists shortfile');
        const u = spawnSync('fusermount', ['-u', mnt], { encoding: 'utf8' });
        t.equal(u.status, 0, 'fusermount -u exits 0', { stderr: u.stderr });
        const code = await within(exited, 30_000);
        t.same(code, { ok: true, value: 0 }, 'the daemon exits 0 (within 30 s)', { stderr });
        t.notOk(await isMounted(mnt), 'the mount is gone');
      });
    }
    t.test('the image is unchanged', async (t) => { t.equal(sha256File(img), before, 'same sha256 as before the mounts'); });
  });
});
