/*
 * The image explorer page (lib/web) in a real headless Chromium (Debian's chromium package,
 * driven over the DevTools protocol on --remote-debugging-pipe: test/lib/cdp.ts), served by
 * scripts/web.ts with the cross-origin isolation headers. The page is driven through its UI:
 * the file picker, clicks in the tree, keys, its buttons and the downloads it makes. What it
 * shows and what it downloads is compared with what the Node host (lib/index.ts) reads from
 * the same images, with GNU tar, and for a FAT image changed in the page with fsck.vfat and
 * mtools. A screenshot of the page with an image open is kept in .tap/screenshots/.
 */
import t, { type Test } from 'tap';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { startKernel, opendir, AT_FDCWD, MS_RDONLY, O_RDONLY, S_IFMT, S_IFREG, S_IFDIR, type Kernel } from '../../lib/index.js';
import { startServer, type WebServer } from '../../scripts/web.js';
import { Browser, Downloads, findChromium, type Page } from '../lib/cdp.js';
import { E2FSPROGS_FIXTURES, fixturesSkip } from '../lib/fixtures.js';
import { fsckVfatClean, makeVfatImage, mtools, mtoolsCopyIn, mtoolsList } from '../lib/images.js';
import { run, whyNot } from '../lib/sh.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SCREENSHOT = path.join(REPO, '.tap', 'screenshots', 'web-explorer.png');
const chromium = findChromium();
const skip = !chromium
  ? 'chromium not found (CHROMIUM, /usr/bin/chromium): apt-get install chromium (.ci/run installs it)'
  : whyNot(['mkfs.vfat', 'fsck.vfat', 'mdir', 'mcopy', 'mtype', 'mke2fs', 'sgdisk', 'tar', 'dd']);

const sha256 = (b: Uint8Array) => crypto.createHash('sha256').update(b).digest('hex');
const shaFile = (f: string) => sha256(fs.readFileSync(f));

/** A small PNG (a gradient), so the viewer has an image to show. */
function png(w: number, h: number): Buffer {
  const rows: Buffer[] = [];
  for (let y = 0; y < h; y++) {
    const r = Buffer.alloc(1 + 3 * w);
    for (let x = 0; x < w; x++) r.set([(x * 255 / w) | 0, (y * 255 / h) | 0, 200 - ((x + y) % 60)], 1 + 3 * x);
    rows.push(r);
  }
  const chunk = (type: string, data: Buffer) => {
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(zlib.crc32 ? zlib.crc32(td) : crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4); ihdr.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(Buffer.concat(rows))), chunk('IEND', Buffer.alloc(0))]);
}
function crc32(b: Buffer): number {
  let c = ~0;
  for (const x of b) { c ^= x; for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1)); }
  return ~c >>> 0;
}

/** A source tree for the images the test makes. */
function makeSource(dir: string): void {
  fs.mkdirSync(path.join(dir, 'sub', 'deeper'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'docs'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'hello.txt'), 'hello from the image\n');
  fs.writeFileSync(path.join(dir, 'picture.png'), png(160, 100));
  fs.writeFileSync(path.join(dir, 'sub', 'random.bin'), crypto.createHash('sha512').update('seed').digest().toString('hex').repeat(3000));
  fs.writeFileSync(path.join(dir, 'sub', 'deeper', 'note.txt'), 'deep\n'.repeat(100));
  fs.writeFileSync(path.join(dir, 'docs', 'readme.txt'), 'read me\n');
}

interface RefEntry { path: string; isDir: boolean; sha?: string }

/** What the Node host reads from an image (partition part, read-only): every entry, file hashes. */
async function reference(k: Kernel, img: string, part: number, type: string): Promise<Map<string, RefEntry>> {
  const id = await k.diskAdd({ path: img, readOnly: true });
  if (id < 0) throw new Error(`diskAdd: ${id}`);
  const mnt = await k.mountDev(id, part, type, MS_RDONLY);
  if (typeof mnt === 'number') throw new Error(`mountDev ${img} ${part} ${type}: ${mnt}`);
  const out = new Map<string, RefEntry>();
  const walk = async (rel: string) => {
    const d = await opendir(k.sys, mnt + rel);
    if (typeof d === 'number') throw new Error(`opendir ${rel}: ${d}`);
    const names: string[] = [];
    for (let e = await d.readdir(); e !== null; e = await d.readdir()) {
      if (typeof e === 'number') throw new Error(`readdir ${rel}: ${e}`);
      if (e.name !== '.' && e.name !== '..') names.push(e.name);
    }
    await d.close();
    for (const n of names) {
      const p = `${rel}/${n}`;
      const st = await k.sys.lstat(mnt + p);
      if (typeof st === 'number') throw new Error(`lstat ${p}: ${st}`);
      if ((st.mode & S_IFMT) === S_IFDIR) { out.set(p, { path: p, isDir: true }); await walk(p); continue; }
      const e: RefEntry = { path: p, isDir: false };
      if ((st.mode & S_IFMT) === S_IFREG) {
        const fd = await k.sys.open(mnt + p, O_RDONLY);
        const buf = new Uint8Array(st.size);
        let done = 0;
        while (done < st.size) {
          const n = await k.sys.pread64(fd, buf.subarray(done), done);
          if (n <= 0) throw new Error(`read ${p}: ${n}`);
          done += n;
        }
        await k.sys.close(fd);
        e.sha = sha256(buf);
      }
      out.set(p, e);
    }
  };
  await walk('');
  await k.umountDev(id, part);
  await k.diskRemove(id);
  return out;
}

/** The page, driven through its UI. */
class PageDriver {
  constructor(readonly page: Page, readonly downloads: Downloads) {}

  seq(): Promise<number> { return this.page.eval<number>(`Number(document.getElementById('status').dataset.seq)`); }

  /** Runs a UI action and waits until the page has finished it (one more #status data-seq). */
  async act(js: string | (() => Promise<unknown>), timeoutMs = 60_000): Promise<{ state: string; status: string; error: string }> {
    const before = await this.seq();
    if (typeof js === 'string') await this.page.eval(js); else await js();
    await this.page.waitUntil(`Number(document.getElementById('status').dataset.seq) > ${before} && document.getElementById('status').dataset.state !== 'busy'`, timeoutMs, `the page to finish ${typeof js === 'string' ? js : 'an action'}`);
    return this.page.eval(`({ state: document.getElementById('status').dataset.state, status: document.getElementById('status').textContent,
      error: document.getElementById('error').hidden ? '' : document.getElementById('error').textContent })`);
  }

  open(file: string, opts: { readOnly?: boolean } = {}) {
    return this.act(async () => {
      await this.page.eval(`document.getElementById('ro').checked = ${!!opts.readOnly}`);
      await this.page.setInputFiles('#file', [file]);
    });
  }

  item(p: string): string { return `document.querySelector('#tree li[data-path=' + CSS.escape(${JSON.stringify(p)}) + ']')`; }

  click(p: string) { return this.act(`${this.item(p)}.querySelector(':scope > .row').click()`); }

  button(id: string) { return this.act(`document.getElementById(${JSON.stringify(id)}).click()`); }

  async children(p: string): Promise<string[]> {
    return this.page.eval<string[]>(`[...${this.item(p)}.querySelectorAll(':scope > ul > li')].map((l) => l.dataset.name)`);
  }

  /** Opens every directory under p in the tree; returns every path shown, with whether it is a directory. */
  async expandAll(p = '/'): Promise<Map<string, boolean>> {
    const out = new Map<string, boolean>();
    const expanded = await this.page.eval<string | null>(`${this.item(p)}.getAttribute('aria-expanded')`);
    if (expanded === 'false') await this.click(p);
    for (const name of await this.children(p)) {
      const c = p === '/' ? `/${name}` : `${p}/${name}`;
      const isDir = await this.page.eval<boolean>(`${this.item(c)}.hasAttribute('aria-expanded')`);
      out.set(c, isDir);
      if (isDir) for (const [k, v] of await this.expandAll(c)) out.set(k, v);
    }
    return out;
  }

  async download(p: string, button = 'download'): Promise<{ file: string; name: string }> {
    await this.click(p);
    let r: { error: string } = { error: '' };
    const d = await this.downloads.expect(async () => { r = await this.button(button); });
    if (r.error) throw new Error(`download of ${p}: ${r.error}`);
    return d;
  }

  async type(id: string, text: string): Promise<void> {
    await this.page.eval(`(() => { const e = document.getElementById(${JSON.stringify(id)}); e.value = ''; e.focus(); })()`);
    if (text) await this.page.send('Input.insertText', { text });
  }

  selectedPath(): Promise<string | null> {
    return this.page.eval(`document.querySelector('#tree li[aria-selected="true"]')?.dataset.path ?? null`);
  }
}

t.test('the image explorer in headless Chromium', { skip, timeout: 300_000 }, async (t) => {
  const dir = t.testdir({});
  const src = path.join(dir, 'src');
  makeSource(src);

  /* a FAT16 image made with mkfs.vfat and filled by mtools */
  const fat = await makeVfatImage({ path: path.join(dir, 'fat.img'), fat: 16, sizeMiB: 32, label: 'EXPLORER', volumeId: '1234abcd' });
  await mtoolsCopyIn(fat, src);
  const fatSha = shaFile(fat);

  /* a GPT disk: partition 1 FAT (mkfs.vfat), partition 2 ext4 (mke2fs -d), put in place with dd */
  const gpt = path.join(dir, 'gpt.img');
  fs.writeFileSync(gpt, '');
  fs.truncateSync(gpt, 48 << 20);
  await run('sgdisk', ['-n', '1:2048:+12M', '-t', '1:0700', '-c', '1:data', '-n', '2:0:+24M', '-t', '2:8300', '-c', '2:linux', gpt]);
  const p1 = await makeVfatImage({ path: path.join(dir, 'p1.img'), fat: 12, sizeMiB: 12, volumeId: '0badcafe' });
  await mtools('mcopy', ['-i', p1, path.join(src, 'hello.txt'), path.join(src, 'picture.png'), '::/']);
  const p2 = path.join(dir, 'p2.img');
  await run('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '1024', '-d', src, p2, '24M']);
  /* the Node host gives one file an xattr and times with nanoseconds (mke2fs -d keeps neither) */
  const k = await startKernel({ memMiB: 64 });
  t.teardown(() => k.halt());
  {
    const id = await k.diskAdd({ path: p2 });
    const mnt = await k.mountDev(id, 0, 'ext4');
    if (typeof mnt === 'number') throw new Error(`mount ${p2}: ${mnt}`);
    t.equal(await k.sys.setxattr(`${mnt}/hello.txt`, 'user.comment', new TextEncoder().encode('set by the Node host'), 0), 0, 'setxattr');
    t.equal(await k.sys.utimensat(AT_FDCWD, `${mnt}/hello.txt`, [{ sec: 1_700_000_000, nsec: 123_456_789 }, { sec: 1_600_000_000, nsec: 987_654_321 }], 0), 0, 'utimensat');
    t.equal(await k.umountDev(id, 0), 0, 'umount');
    t.equal(await k.diskRemove(id), 0, 'detach');
  }
  const p2Start = 2048 + (12 << 11);   /* sgdisk: partition 2 starts right after partition 1 (2048-sector aligned) */
  await run('dd', [`if=${p1}`, `of=${gpt}`, 'bs=512', 'seek=2048', 'conv=notrunc', 'status=none']);
  await run('dd', [`if=${p2}`, `of=${gpt}`, 'bs=512', `seek=${p2Start}`, 'conv=notrunc', 'status=none']);
  const sgd = await run('sgdisk', ['-i', '2', gpt]);
  t.match(sgd.stdout, new RegExp(`First sector: ${p2Start} `), 'partition 2 starts where the ext4 image was put');

  /* images it cannot mount */
  const garbage = path.join(dir, 'garbage.img');
  fs.writeFileSync(garbage, crypto.createHash('sha256').update('x').digest().toString('hex').repeat(4096));
  const badExt = path.join(dir, 'bad-ext4.img');
  fs.copyFileSync(p2, badExt);
  {
    const fd = fs.openSync(badExt, 'r+');
    const b = Buffer.alloc(4);
    b.writeUInt32LE(40);   /* s_log_block_size: 2^(10+40)-byte blocks */
    fs.writeSync(fd, b, 0, 4, 1024 + 0x18);
    fs.closeSync(fd);
  }

  /* what the Node host reads */
  const extFixture = path.join(dir, 'fixture-ext4.img');
  const fixtureSkip = fixturesSkip();
  let refs: Record<string, Map<string, RefEntry>>;
  try {
    if (!fixtureSkip) {
      fs.writeFileSync(extFixture, zlib.gunzipSync(fs.readFileSync(path.join(E2FSPROGS_FIXTURES, 'f_convert_bmap_and_extent', 'image.gz'))));
    }
    refs = {
      fat: await reference(k, fat, 0, 'vfat'),
      gpt1: await reference(k, gpt, 1, 'vfat'),
      gpt2: await reference(k, gpt, 2, 'ext4'),
      ...(fixtureSkip ? {} : { ext4: await reference(k, extFixture, 0, 'ext4') }),
    };
  } finally {
    await k.halt();
  }

  const server: WebServer = await startServer({ port: 0 });
  t.teardown(() => server.close());
  const browser = await Browser.launch(chromium!);
  t.teardown(() => browser.close());
  const page = await browser.newPage();
  const downloads = await Downloads.into(browser, path.join(dir, 'downloads'));
  const ui = new PageDriver(page, downloads);
  t.teardown(() => {
    if (page.console.length) t.comment(`page console:\n${page.console.slice(-40).join('\n')}`);
  });
  await page.goto(server.url);
  t.equal(await page.eval('crossOriginIsolated'), true, 'the page is cross-origin isolated (COOP/COEP from npm run web)');
  t.match(await page.eval<string>(`document.getElementById('log').textContent`), /SharedArrayBuffer/, 'so physical memory is a SharedArrayBuffer');

  /** The page's tree and downloads against the Node host's reading. */
  const compare = async (t: Test, ref: Map<string, RefEntry>, prefix = '') => {
    const shown = await ui.expandAll('/');
    const want = [...ref.values()].map((e) => e.path).sort();
    t.same([...shown.keys()].sort(), want, 'the tree lists what the Node host lists');
    for (const e of ref.values()) {
      if (e.isDir) { t.equal(shown.get(e.path), true, `${prefix}${e.path} is a directory in the tree`); continue; }
      if (!e.sha) continue;
      const d = await ui.download(e.path);
      t.equal(shaFile(d.file), e.sha, `${prefix}${e.path}: the page's download has the sha256 the Node host reads`);
      t.equal(d.name, path.posix.basename(e.path), `${prefix}${e.path}: downloaded under its name (${d.name})`);
    }
  };

  await t.test('an ext4 fixture (read-only)', { skip: fixtureSkip }, async (t) => {
    const r = await ui.open(extFixture, { readOnly: true });
    t.equal(r.state, 'mounted', `mounted: ${r.status} ${r.error}`);
    t.match(r.status, /ext4.*read-only/, 'the status names the type and read-only');
    t.ok(await page.eval(`document.body.classList.contains('ro')`), 'no create/rename/delete on a read-only mount');
    await compare(t, refs.ext4!);
    await ui.click('/a');
    const details = await page.eval<Record<string, string>>(`Object.fromEntries([...document.querySelectorAll('#details tr')].map((r) => [r.dataset.key, r.querySelector('td').textContent]))`);
    t.match(details.mode, /^-rw-r--r-- \(0644\)$/, 'details: the mode');
    t.match(details.size, /^524288 bytes/, 'details: the size');
    t.match(details.modified, /^2014-11-03T\d\d:\d\d:\d\d\.\d{9}Z$/, 'details: mtime to the nanosecond');
  });

  await t.test('a FAT image: tree, keys, viewer, tar, then changes', async (t) => {
    const r = await ui.open(fat);
    t.equal(r.state, 'mounted', `mounted: ${r.status} ${r.error}`);
    t.match(r.status, /vfat/, 'detected as vfat');
    await compare(t, refs.fat);

    /* keyboard: from the root, Home, then down through the listing */
    await ui.click('/');
    await ui.click('/');   /* a second click on the open root closes it */
    t.equal(await page.eval(`${ui.item('/')}.getAttribute('aria-expanded')`), 'false', 'clicking the selected root collapses it');
    await ui.act(() => page.key('ArrowRight'));
    t.equal(await page.eval(`${ui.item('/')}.getAttribute('aria-expanded')`), 'true', 'ArrowRight expands');
    const first = (await ui.children('/'))[0];
    await ui.act(() => page.key('ArrowRight'));
    t.equal(await ui.selectedPath(), `/${first}`, 'ArrowRight again goes to the first child');
    await ui.act(() => page.key('End'));
    await ui.act(() => page.key('ArrowUp'));
    await ui.act(() => page.key('Home'));
    t.equal(await ui.selectedPath(), '/', 'Home goes back to the root');
    await ui.click('/docs');
    await ui.act(() => page.key('ArrowLeft'));
    t.equal(await page.eval(`${ui.item('/docs')}.getAttribute('aria-expanded')`), 'false', 'ArrowLeft collapses');
    await ui.act(() => page.key('ArrowDown'));
    t.equal(await ui.selectedPath(), '/sub', 'ArrowDown goes to the next item');
    await ui.click('/hello.txt');
    await ui.act(() => page.key('Enter'));
    t.equal(await page.eval(`document.querySelector('#viewer pre')?.textContent`), 'hello from the image\n', 'Enter on a text file shows it');

    /* the screenshot, with the picture open */
    await ui.click('/picture.png');
    const v = await ui.button('open-entry');
    t.equal(v.error, '', 'the picture opens');
    t.same(await page.eval(`(() => { const i = document.querySelector('#viewer img'); return i && [i.naturalWidth, i.naturalHeight]; })()`), [160, 100], 'the viewer shows the PNG, 160x100');
    fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot(SCREENSHOT);
    t.ok(fs.statSync(SCREENSHOT).size > 10_000, `screenshot saved: ${path.relative(REPO, SCREENSHOT)}`);

    /* a directory as tar, read by GNU tar */
    const tarDl = await ui.download('/sub', 'download-tar');
    t.equal(tarDl.name, 'sub.tar', 'the archive is named after the directory');
    const list = await run('tar', ['-tvf', tarDl.file]);
    t.same(list.stdout.trim().split('\n').map((l) => l.split(/\s+/).slice(5).join(' ')).sort(),
      ['sub/', 'sub/deeper/', 'sub/deeper/note.txt', 'sub/random.bin'], 'tar -tvf lists the directory');
    const out = path.join(dir, 'untar');
    fs.mkdirSync(out);
    await run('tar', ['-xf', tarDl.file, '-C', out]);
    for (const p of ['/sub/random.bin', '/sub/deeper/note.txt']) {
      t.equal(shaFile(path.join(out, p)), refs.fat.get(p)!.sha, `tar -x: ${p} as the Node host reads it`);
    }

    /* changes in the page: create, rename, delete */
    await ui.click('/');
    await ui.type('name', 'made in the page.txt');
    await ui.type('content', 'written by a browser\n');
    let a = await ui.button('mkfile');
    t.equal(a.error, '', 'new file');
    t.equal(await ui.selectedPath(), '/made in the page.txt', 'the new file is selected');
    await ui.click('/');
    await ui.type('name', 'newdir');
    a = await ui.button('mkdir');
    t.equal(a.error, '', 'new folder');
    await ui.click('/hello.txt');
    await ui.type('name', 'renamed.txt');
    a = await ui.button('rename');
    t.equal(a.error, '', 'rename');
    await ui.click('/sub/random.bin');
    a = await ui.button('delete');
    t.equal(a.error, '', 'delete a file');
    await ui.click('/docs');
    a = await ui.button('delete');
    t.equal(a.error, '', 'delete a directory with a file in it');
    await ui.click('/renamed.txt');
    await ui.type('name', 'made in the page.txt');
    a = await ui.button('rename');
    t.match(a.error, /File exists/, 'renaming onto an existing name is refused with its errno');
    t.same(await ui.children('/'), ['newdir', 'sub', 'made in the page.txt', 'picture.png', 'renamed.txt'], 'the tree shows the changes');

    const img = await downloads.expect(() => ui.button('download-image'));
    t.equal(img.name, 'fat.img', 'the image downloads under its name');
    t.equal(shaFile(fat), fatSha, 'the original image file is unchanged');
    const fsck = await fsckVfatClean(img.file);
    t.ok(fsck.clean, 'fsck.vfat -n: the modified image is clean', { output: fsck.output });
    const tree = await mtoolsList(img.file);
    t.same(tree.entries.map((e) => `${e.type} ${e.path}`).sort(), [
      'dir newdir', 'dir sub', 'dir sub/deeper', 'file made in the page.txt', 'file picture.png', 'file renamed.txt', 'file sub/deeper/note.txt',
    ], 'mdir: the tree the page made');
    t.equal((await mtools('mtype', ['-i', img.file, '::/made in the page.txt'])).stdout, 'written by a browser\n', 'mtype: the new file');
    t.equal((await mtools('mtype', ['-i', img.file, '::/renamed.txt'])).stdout, 'hello from the image\n', 'mtype: the renamed file');
    t.equal(await page.eval(`document.getElementById('status').dataset.state`), 'mounted', 'still mounted read-write after the download');
    await ui.click('/');
    await ui.type('name', 'after.txt');
    await ui.type('content', '');
    a = await ui.button('mkfile');
    t.equal(a.error, '', 'and still writable');
  });

  await t.test('a GPT-partitioned image', async (t) => {
    let r = await ui.open(gpt);
    t.equal(r.state, 'mounted', `mounted: ${r.status} ${r.error}`);
    t.match(r.status, /partition 1: vfat/, 'the first partition with a filesystem, found in the GPT');
    const opts = await page.eval<string[]>(`[...document.getElementById('part').options].map((o) => o.textContent)`);
    t.match(opts.join('|'), /^auto\|whole disk\|1 \(vd[a-z]+1\)\|2 \(vd[a-z]+2\)$/,
      `the partition choice lists both partitions (${opts.join(', ')})`);
    await compare(t, refs.gpt1, 'partition 1: ');
    r = await ui.act(`(() => { const s = document.getElementById('part'); s.value = '2'; s.dispatchEvent(new Event('change')); })()`);
    t.equal(r.state, 'mounted', `partition 2: ${r.status} ${r.error}`);
    t.match(r.status, /partition 2: ext4/, 'partition 2 is the ext4 one');
    /* before anything reads it (the mount is read-write: reading would update the atime) */
    await ui.expandAll('/');
    await ui.click('/hello.txt');
    const details = await page.eval<Record<string, string>>(`Object.fromEntries([...document.querySelectorAll('#details tr')].map((r) => [r.dataset.key, r.querySelector('td').textContent]))`);
    t.equal(details.accessed, '2023-11-14T22:13:20.123456789Z', 'details: atime to the nanosecond');
    t.equal(details.modified, '2020-09-13T12:26:40.987654321Z', 'details: mtime to the nanosecond');
    t.equal(details['xattr user.comment'], '"set by the Node host"', 'details: the xattr');
    t.equal(details.owner, 'uid 0, gid 0', 'details: the owner');
    await compare(t, refs.gpt2, 'partition 2: ');
    r = await ui.act(`(() => { const s = document.getElementById('part'); s.value = '0'; s.dispatchEvent(new Event('change')); })()`);
    t.equal(r.state, 'error', 'the whole disk holds no filesystem');
    t.match(r.error, /gpt\.img: cannot detect the filesystem type: found a DOS partition table \(partitions 1\) \(supported: ext2, ext3, ext4, vfat; choose a partition\)/,
      'the message lklfuse gives, with the page\'s hint');
  });

  await t.test('without cross-origin isolation: the kernel on an ArrayBuffer', async (t) => {
    const plain = await startServer({ port: 0, isolation: false });
    t.teardown(() => plain.close());
    const p2 = await browser.newPage();
    t.teardown(() => p2.send('Page.close').catch(() => {}));
    await p2.goto(plain.url);
    t.equal(await p2.eval('crossOriginIsolated'), false, 'not isolated');
    t.match(await p2.eval<string>(`document.getElementById('log').textContent`), /ArrayBuffer \(not cross-origin isolated\)/, 'memory is an ArrayBuffer');
    const ui2 = new PageDriver(p2, downloads);
    const r = await ui2.open(gpt);
    t.equal(r.state, 'mounted', `mounted: ${r.status} ${r.error}`);
    t.same([...(await ui2.expandAll('/')).keys()].sort(), [...refs.gpt1.keys()].sort(), 'lists as the Node host reads');
    const d = await ui2.download('/picture.png');
    t.equal(shaFile(d.file), refs.gpt1.get('/picture.png')!.sha, 'and reads the same bytes');
  });

  await t.test('images it cannot mount, and the page keeps working', async (t) => {
    let r = await ui.open(garbage);
    t.equal(r.state, 'error', 'random bytes: an error');
    t.match(r.error, /^garbage\.img: cannot detect the filesystem type: found no ext2\/ext3\/ext4 superblock or FAT boot sector \(supported: ext2, ext3, ext4, vfat; or choose the type\)$/, 'lklfuse\'s message');
    t.equal(await page.eval(`document.querySelectorAll('#tree li').length`), 0, 'no tree');
    r = await ui.open(badExt);
    t.equal(r.state, 'error', 'a damaged ext4 superblock: an error');
    /* the superblock checksum (metadata_csum) no longer matches: EBADMSG, as Linux says */
    t.match(r.error, /^bad-ext4\.img: cannot mount the ext4 filesystem: Bad message \(corrupt or unsupported filesystem\?\)$/, 'lklfuse\'s message');
    await page.eval(`document.getElementById('ro').checked = true`);
    r = await ui.act(() => page.dropFiles([fat]));
    t.equal(r.state, 'mounted', `a good image dropped on the page after them mounts: ${r.status} ${r.error}`);
    t.same([...(await ui.expandAll('/')).keys()].sort(), [...refs.fat.keys()].sort(), 'and lists as before');
  });
});
