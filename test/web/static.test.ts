/*
 * The web page without a browser: every module the page loads (from dist/lib/web/app.js,
 * following its imports) is a relative path to a file that exists, so the page needs no
 * bundler, no import map and no npm package (no 'debug', no node:*); the server serves
 * only the page, its stylesheet and dist/, with the isolation headers and the right types;
 * and the File store keeps writes in its overlay, leaving the Blob as it was.
 */
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlobStore } from '../../lib/web/blob-store.js';
import { resolveUrl, startServer } from '../../scripts/web.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

function specifiers(src: string): string[] {
  const out: string[] = [];
  const re = /(?:^|[\s;}])(?:import|export)\s*(?:type\s+)?(?:[\w*{}\s,$]*?\s*from\s*)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;
  for (let m; (m = re.exec(src));) out.push((m[1] ?? m[2])!);
  return out;
}

t.test('the page loads only relative modules of this build', async (t) => {
  const entry = path.join(repo, 'dist', 'lib', 'web', 'app.js');
  t.ok(fs.existsSync(entry), 'dist/lib/web/app.js is built (npm run build compiles lib/web)');
  const seen = new Set<string>();
  const bad: string[] = [];
  const walk = (f: string) => {
    if (seen.has(f)) return;
    seen.add(f);
    for (const s of specifiers(fs.readFileSync(f, 'utf8'))) {
      if (!s.startsWith('./') && !s.startsWith('../')) { bad.push(`${path.relative(repo, f)}: '${s}'`); continue; }
      const target = path.resolve(path.dirname(f), s);
      if (!fs.existsSync(target)) { bad.push(`${path.relative(repo, f)}: '${s}' is missing`); continue; }
      walk(target);
    }
  };
  walk(entry);
  t.ok(seen.size > 50, `${seen.size} modules reached from the page`);
  t.same(bad, [], 'no bare or node: import, none missing');
  t.ok([...seen].some((f) => f.endsWith(path.join('kernel', 'built-in.js'))), 'the whole kernel is among them');
  t.notOk([...seen].some((f) => /drivers[\\/](node-host|stores|disk|virtio-blk)\.js$/.test(f)), 'and no Node host module');
});

t.test('the server', async (t) => {
  t.equal(resolveUrl(repo, '/'), path.join(repo, 'lib', 'web', 'index.html'), '/ is the page');
  t.equal(resolveUrl(repo, '/dist/lib/web/app.js'), path.join(repo, 'dist', 'lib', 'web', 'app.js'), 'modules from dist/');
  for (const bad of ['/dist/../package.json', '/dist/%2e%2e/%2e%2e/etc/passwd', '/package.json', '/lib/web/app.js', '/.tap/x', '/dist/x%00', '/%E0%A4%A']) {
    t.equal(resolveUrl(repo, bad), null, `${bad} is not served`);
  }
  const s = await startServer({ port: 0, repo });
  t.teardown(() => s.close());
  const page = await fetch(s.url);
  t.equal(page.status, 200, 'the page');
  t.equal(page.headers.get('cross-origin-opener-policy'), 'same-origin', 'COOP');
  t.equal(page.headers.get('cross-origin-embedder-policy'), 'require-corp', 'COEP');
  t.match(page.headers.get('content-type'), /^text\/html/, 'HTML');
  const js = await fetch(new URL('dist/lib/web/app.js', s.url));
  t.match(js.headers.get('content-type'), /^text\/javascript/, 'modules as JavaScript');
  t.equal((await fetch(new URL('package.json', s.url))).status, 404, 'nothing else');
});

t.test('BlobStore: reads the Blob, writes to its overlay, snapshots the result', async (t) => {
  const orig = new Uint8Array(8192).map((_, i) => i % 251);
  const blob = new Blob([orig]);
  let fetched = 0;
  const s = new BlobStore(blob, { onRead: (n) => { fetched += n; } });
  const a = new Uint8Array(1000);
  await s.read(a, 100);
  t.same(a, orig.subarray(100, 1100), 'an unaligned read is the Blob\'s bytes');
  t.notOk(s.modified, 'nothing written yet');
  await s.write(new Uint8Array(1024).fill(7), 1024);
  t.ok(s.modified, 'written');
  const b = new Uint8Array(2048);
  await s.read(b, 512);
  t.same(b.subarray(0, 512), orig.subarray(512, 1024), 'before the write: the Blob');
  t.ok(b.subarray(512, 1536).every((x) => x === 7), 'the written sectors: the overlay');
  t.same(b.subarray(1536), orig.subarray(2048, 2560), 'after: the Blob');
  const before = fetched;
  await s.read(new Uint8Array(1024), 1024);
  t.equal(fetched, before, 'a read the overlay covers does not touch the Blob');
  const tail = new Uint8Array(1024);
  await s.read(tail, 7680);
  t.same(tail.subarray(0, 512), orig.subarray(7680), 'the last sector');
  t.ok(tail.subarray(512).every((x) => x === 0), 'past the end reads zeros');
  await t.rejects(s.write(new Uint8Array(100), 0), /EINVAL/, 'partial sectors are refused');
  await t.rejects(s.write(new Uint8Array(512), 8192), /EIO/, 'so are writes past the end');
  const snap = new Uint8Array(await s.snapshot().arrayBuffer());
  const want = orig.slice();
  want.fill(7, 1024, 2048);
  t.same(snap, want, 'the snapshot: the Blob with the written sectors');
  t.same(new Uint8Array(await blob.arrayBuffer()), orig, 'the Blob itself is unchanged');
  const ro = new BlobStore(blob, { readOnly: true });
  await t.rejects(ro.write(new Uint8Array(512), 0), /EROFS/, 'a read-only store refuses writes');
});
