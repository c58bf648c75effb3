/*
 * The image explorer page: a file picker and drag and drop to open an image, a tree of
 * what is in it (keyboard: arrows, Home/End, Enter), a details pane (mode, owner, size,
 * times to the nanosecond, xattrs), a viewer for text and images, downloads of a file, of
 * a directory as tar and of the whole image as modified, and for read-write mounts new
 * folders and files, rename and delete. The kernel's messages go to the log panel.
 *
 * Everything runs in the page (explorer.ts, the kernel); nothing is uploaded. #status
 * carries data-state (idle, busy, mounted, error) and data-seq (one more after each action
 * finished), which is what an automated test waits on.
 */
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, STATX_BTIME, major, minor, type timespec64 } from '../kernel/include/uapi.js';
import { Explorer, ExplorerError, baseName, dirName, joinPath, type Details, type DirEntry } from './explorer.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const tree = $<HTMLUListElement>('tree');
const statusEl = $('status');
const errorEl = $('error');
const logEl = $('log');
const detailsEl = $<HTMLTableElement>('details');
const viewer = $('viewer');
const fileInput = $<HTMLInputElement>('file');
const typeSel = $<HTMLSelectElement>('type');
const partSel = $<HTMLSelectElement>('part');
const roBox = $<HTMLInputElement>('ro');
const nameInput = $<HTMLInputElement>('name');
const contentInput = $<HTMLTextAreaElement>('content');
const progressBox = $('progress-box');
const progressBar = $<HTMLProgressElement>('progress');
const progressLabel = $('progress-label');

const MAX_LOG_LINES = 3000;
const VIEW_LIMIT = 16 << 20;

function log(msg: string): void {
  const lines = (logEl.textContent ?? '').split('\n');
  lines.push(msg);
  logEl.textContent = lines.slice(-MAX_LOG_LINES).join('\n').replace(/^\n/, '');
  logEl.scrollTop = logEl.scrollHeight;
}

const explorer = new Explorer(log);
let current: File | null = null;
let seq = 0;

function setStatus(text: string, state: 'idle' | 'busy' | 'mounted' | 'error'): void {
  statusEl.textContent = text;
  statusEl.dataset.state = state;
}

function showError(msg: string | null): void {
  errorEl.hidden = msg === null;
  errorEl.textContent = msg ?? '';
}

let progressShown = 0;
function progress(label: string | null, done = 0, total = 0): void {
  if (label === null) { progressBox.hidden = true; return; }
  const now = performance.now();
  if (!progressBox.hidden && done && total && done < total && now - progressShown < 50) return;
  progressShown = now;
  progressBox.hidden = false;
  if (total) { progressBar.max = total; progressBar.value = done; } else progressBar.removeAttribute('value');
  progressLabel.textContent = total ? `${label}: ${fmtSize(done)} of ${fmtSize(total)}` : `${label}${done ? `: ${done}` : ''}`;
}

/* One action at a time, in order; errors go to the error bar. */
let queue: Promise<void> = Promise.resolve();
function run(label: string, fn: () => Promise<void>): Promise<void> {
  queue = queue.then(async () => {
    const prev = statusEl.dataset.state;
    setStatus(`${label}…`, 'busy');
    showError(null);
    try {
      await fn();
      if (statusEl.dataset.state === 'busy') restoreStatus(prev);
    } catch (e) {
      const msg = e instanceof ExplorerError ? e.message : `internal error: ${(e as Error)?.stack ?? e}`;
      showError(msg);
      log(msg);
      if (statusEl.dataset.state === 'busy') {
        if (explorer.mounted) restoreStatus('mounted');
        else setStatus(`${label} failed`, 'error');
      }
    } finally {
      progress(null);
      statusEl.dataset.seq = String(++seq);
    }
  });
  return queue;
}

function restoreStatus(prev: string | undefined): void {
  const m = explorer.mounted;
  if (m) setStatus(`${m.image}${m.part ? ` partition ${m.part}` : ''}: ${m.type}${m.readOnly ? ', read-only' : ''} (${m.found})`, 'mounted');
  else setStatus('no image open', prev === 'error' ? 'error' : 'idle');
}

/* ---- opening images ---- */

function openImage(file: File, keepChoices = false): Promise<void> {
  return run(`opening ${file.name}`, async () => {
    current = file;
    if (!keepChoices) { typeSel.value = ''; partSel.value = ''; }
    clearTree();
    let read = 0, opening = true;
    const m = await explorer.open(file, file.name, {
      type: typeSel.value || undefined,
      part: partSel.value === '' ? undefined : Number(partSel.value),
      readOnly: roBox.checked,
    }, (n) => { read += n; if (opening) progress(`reading ${file.name}: ${fmtSize(read)}`); }).finally(() => { opening = false; fillPartitions(); });
    document.body.classList.toggle('ro', m.readOnly);
    $('download-image').removeAttribute('disabled');
    restoreStatus('mounted');
    const root = makeItem({ name: `${file.name}${m.part ? ` (partition ${m.part})` : ''}`, path: '/', isDir: true, type: 4 });
    tree.append(root);
    await expand(root);
    await select(root);
  });
}

function fillPartitions(): void {
  const want = partSel.value;
  const parts = explorer.partitions;
  partSel.replaceChildren(new Option('auto', ''), new Option('whole disk', '0'),
    ...[...parts].sort((a, b) => a[0] - b[0]).map(([n, name]) => new Option(`${n} (${name})`, String(n))));
  partSel.value = [...partSel.options].some((o) => o.value === want) ? want : '';
}

function clearTree(): void {
  tree.replaceChildren();
  detailsEl.replaceChildren();
  viewer.replaceChildren();
  for (const id of ['open-entry', 'download', 'download-tar', 'mkdir', 'mkfile', 'rename', 'delete', 'download-image']) $(id).setAttribute('disabled', '');
}

fileInput.addEventListener('change', () => {
  const f = fileInput.files?.[0];
  if (f) void openImage(f);
  fileInput.value = '';
});
for (const el of [typeSel, partSel, roBox]) el.addEventListener('change', () => { if (current) void openImage(current, true); });

const drop = $('drop');
let dragDepth = 0;
document.addEventListener('dragenter', (e) => { e.preventDefault(); dragDepth++; drop.hidden = false; });
document.addEventListener('dragleave', () => { if (--dragDepth <= 0) { dragDepth = 0; drop.hidden = true; } });
document.addEventListener('dragover', (e) => { e.preventDefault(); if (e.dataTransfer) e.dataTransfer.dropEffect = 'copy'; });
document.addEventListener('drop', (e) => {
  e.preventDefault();
  dragDepth = 0;
  drop.hidden = true;
  const f = e.dataTransfer?.files?.[0];
  if (f) void openImage(f);
});

/* ---- the tree ---- */

function makeItem(e: DirEntry): HTMLLIElement {
  const li = document.createElement('li');
  li.setAttribute('role', 'treeitem');
  li.setAttribute('aria-selected', 'false');
  li.dataset.path = e.path;
  li.dataset.name = e.name;
  li.tabIndex = -1;
  const row = document.createElement('div');
  row.className = 'row';
  row.textContent = e.name + (e.type === 10 /* DT_LNK */ ? ' →' : '');
  li.append(row);
  if (e.isDir) {
    li.setAttribute('aria-expanded', 'false');
    const ul = document.createElement('ul');
    ul.setAttribute('role', 'group');
    li.append(ul);
  }
  row.addEventListener('click', () => {
    void run('opening', async () => {
      const wasSelected = li.getAttribute('aria-selected') === 'true';
      await select(li);
      if (isDir(li) && (wasSelected || li.getAttribute('aria-expanded') === 'false')) await toggle(li);
    });
  });
  row.addEventListener('dblclick', () => { if (!isDir(li)) void run('viewing', () => view(li)); });
  return li;
}

const isDir = (li: HTMLLIElement) => li.hasAttribute('aria-expanded');
const group = (li: HTMLLIElement) => li.querySelector(':scope > ul') as HTMLUListElement | null;
const itemAt = (path: string) => tree.querySelector<HTMLLIElement>(`li[data-path="${CSS.escape(path)}"]`);
const selected = () => tree.querySelector<HTMLLIElement>('li[aria-selected="true"]');

async function load(li: HTMLLIElement): Promise<void> {
  const ul = group(li)!;
  const entries = await explorer.list(li.dataset.path!);
  ul.replaceChildren(...entries.map(makeItem));
  li.dataset.loaded = '1';
}

async function expand(li: HTMLLIElement): Promise<void> {
  if (!isDir(li)) return;
  if (!li.dataset.loaded) await load(li);
  li.setAttribute('aria-expanded', 'true');
}

async function toggle(li: HTMLLIElement): Promise<void> {
  if (li.getAttribute('aria-expanded') === 'true') li.setAttribute('aria-expanded', 'false');
  else await expand(li);
}

/** Re-reads a directory that is shown, keeping which of its subdirectories are open. */
async function refresh(path: string): Promise<void> {
  const li = itemAt(path);
  if (!li || !li.dataset.loaded) return;
  const open = [...li.querySelectorAll<HTMLLIElement>('li[aria-expanded="true"]')].map((x) => x.dataset.path!);
  await load(li);
  for (const p of open) { const x = itemAt(p); if (x) await expand(x); }
}

/** Items a user can see, in order. */
function visible(): HTMLLIElement[] {
  const out: HTMLLIElement[] = [];
  const walk = (ul: HTMLUListElement) => {
    for (const li of ul.children as HTMLCollectionOf<HTMLLIElement>) {
      out.push(li);
      if (li.getAttribute('aria-expanded') === 'true') walk(group(li)!);
    }
  };
  walk(tree);
  return out;
}

async function select(li: HTMLLIElement): Promise<void> {
  for (const o of tree.querySelectorAll<HTMLLIElement>('li[aria-selected="true"]')) { o.setAttribute('aria-selected', 'false'); o.tabIndex = -1; }
  li.setAttribute('aria-selected', 'true');
  li.tabIndex = 0;
  li.focus();
  li.scrollIntoView({ block: 'nearest' });
  const d = await explorer.details(li.dataset.path!);
  showDetails(d);
  viewer.replaceChildren();
  const file = (d.st.mode & S_IFMT) === S_IFREG;
  const dir = (d.st.mode & S_IFMT) === S_IFDIR;
  const rw = !!explorer.mounted && !explorer.mounted.readOnly;
  enable('open-entry', file);
  enable('download', file);
  enable('download-tar', dir);
  enable('mkdir', rw);
  enable('mkfile', rw);
  enable('rename', rw && li.dataset.path !== '/');
  enable('delete', rw && li.dataset.path !== '/');
}

function enable(id: string, on: boolean): void {
  if (on) $(id).removeAttribute('disabled'); else $(id).setAttribute('disabled', '');
}

tree.addEventListener('keydown', (e) => {
  const li = selected();
  if (!li) return;
  const items = visible();
  const i = items.indexOf(li);
  let target: HTMLLIElement | undefined;
  switch (e.key) {
    case 'ArrowDown': target = items[i + 1]; break;
    case 'ArrowUp': target = items[i - 1]; break;
    case 'Home': target = items[0]; break;
    case 'End': target = items[items.length - 1]; break;
    case 'ArrowRight':
      if (!isDir(li)) return;
      e.preventDefault();
      if (li.getAttribute('aria-expanded') === 'true') target = group(li)!.children[0] as HTMLLIElement | undefined;
      else { void run('opening', () => expand(li)); return; }
      break;
    case 'ArrowLeft':
      e.preventDefault();
      if (li.getAttribute('aria-expanded') === 'true') { void run('closing', async () => li.setAttribute('aria-expanded', 'false')); return; }
      target = li.parentElement?.closest('li') as HTMLLIElement | undefined;
      break;
    case 'Enter':
      e.preventDefault();
      void run(isDir(li) ? 'opening' : 'viewing', () => (isDir(li) ? toggle(li) : view(li)));
      return;
    default: return;
  }
  e.preventDefault();
  if (target) { const t = target; void run('opening', () => select(t)); }
});

/* ---- details and viewer ---- */

const TYPE_NAMES: Record<number, [string, string]> = {
  [S_IFREG]: ['-', 'regular file'], [S_IFDIR]: ['d', 'directory'], [S_IFLNK]: ['l', 'symbolic link'],
  [S_IFCHR]: ['c', 'character device'], [S_IFBLK]: ['b', 'block device'], [S_IFIFO]: ['p', 'fifo'], [S_IFSOCK]: ['s', 'socket'],
};

function modeString(mode: number): string {
  const t = TYPE_NAMES[mode & S_IFMT]?.[0] ?? '?';
  const rwx = (b: number, s: boolean, c: string) => `${b & 4 ? 'r' : '-'}${b & 2 ? 'w' : '-'}${s ? (b & 1 ? c : c.toUpperCase()) : b & 1 ? 'x' : '-'}`;
  return t + rwx(mode >> 6, !!(mode & 0o4000), 's') + rwx(mode >> 3, !!(mode & 0o2000), 's') + rwx(mode, !!(mode & 0o1000), 't');
}

/** A time to the nanosecond, in UTC: 2024-05-01T12:00:00.123456789Z. */
export function fmtTime(t: timespec64): string {
  const d = new Date(t.sec * 1000);
  if (Number.isNaN(d.getTime())) return `${t.sec}.${String(t.nsec).padStart(9, '0')} s`;
  return d.toISOString().replace(/\.\d{3}Z$/, `.${String(t.nsec).padStart(9, '0')}Z`);
}

function fmtSize(n: number): string {
  if (n < 1024) return `${n} B`;
  const u = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${u[i]}`;
}

function xattrValue(v: Uint8Array): string {
  try {
    const s = new TextDecoder('utf-8', { fatal: true }).decode(v);
    if (/^[\x20-\x7e\u00a0-\uffff\t\n]*\0?$/.test(s)) return JSON.stringify(s.replace(/\0$/, ''));
  } catch { /* not text */ }
  return '0x' + [...v].map((b) => b.toString(16).padStart(2, '0')).join('');
}

function showDetails(d: Details): void {
  const st = d.st;
  const rows: [string, string][] = [
    ['path', d.path],
    ['type', TYPE_NAMES[st.mode & S_IFMT]?.[1] ?? 'unknown'],
    ['mode', `${modeString(st.mode)} (${(st.mode & 0o7777).toString(8).padStart(4, '0')})`],
    ['owner', `uid ${st.uid}, gid ${st.gid}`],
    ['size', `${st.size} bytes${st.size >= 1024 ? ` (${fmtSize(st.size)})` : ''}`],
    ['blocks', `${st.blocks} × 512`],
    ['links', String(st.nlink)],
    ['inode', String(st.ino)],
  ];
  if (d.linkTarget !== undefined) rows.push(['target', d.linkTarget]);
  const ft = st.mode & S_IFMT;
  if (ft === S_IFCHR || ft === S_IFBLK) rows.push(['device', `${major(st.rdev)}, ${minor(st.rdev)}`]);
  rows.push(['accessed', fmtTime(st.atime)], ['modified', fmtTime(st.mtime)], ['changed', fmtTime(st.ctime)]);
  if (st.mask & STATX_BTIME) rows.push(['born', fmtTime(st.btime)]);
  for (const [n, v] of d.xattrs) rows.push([`xattr ${n}`, xattrValue(v)]);
  detailsEl.replaceChildren(...rows.map(([k, v]) => {
    const tr = document.createElement('tr');
    tr.dataset.key = k;
    const th = document.createElement('th'); th.textContent = k;
    const td = document.createElement('td'); td.textContent = v;
    tr.append(th, td);
    return tr;
  }));
}

function imageType(b: Uint8Array, name: string): string | null {
  const starts = (...sig: number[]) => sig.every((x, i) => b[i] === x);
  if (starts(0x89, 0x50, 0x4e, 0x47)) return 'image/png';
  if (starts(0xff, 0xd8, 0xff)) return 'image/jpeg';
  if (starts(0x47, 0x49, 0x46, 0x38)) return 'image/gif';
  if (starts(0x52, 0x49, 0x46, 0x46) && b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50) return 'image/webp';
  if (starts(0x42, 0x4d)) return 'image/bmp';
  if (/\.svg$/i.test(name)) return 'image/svg+xml';
  return null;
}

let viewUrl: string | null = null;

async function view(li: HTMLLIElement): Promise<void> {
  const path = li.dataset.path!;
  const name = baseName(path);
  const data = await explorer.readFile(path, (d, t) => progress(`reading ${name}`, d, t), VIEW_LIMIT);
  if (viewUrl) { URL.revokeObjectURL(viewUrl); viewUrl = null; }
  const img = imageType(data, name);
  if (img) {
    viewUrl = URL.createObjectURL(new Blob([data as BlobPart], { type: img }));
    const el = document.createElement('img');
    el.alt = name;
    el.src = viewUrl;
    await new Promise<void>((res) => { el.onload = el.onerror = () => res(); viewer.replaceChildren(el); });
    return;
  }
  const pre = document.createElement('pre');
  let text: string | null = null;
  if (!data.subarray(0, 65536).includes(0)) {
    try { text = new TextDecoder('utf-8', { fatal: true }).decode(data); } catch { /* binary */ }
  }
  if (text !== null) pre.textContent = text;
  else {
    const lines: string[] = [];
    for (let off = 0; off < Math.min(data.length, 4096); off += 16) {
      const row = data.subarray(off, off + 16);
      lines.push(`${off.toString(16).padStart(8, '0')}  ${[...row].map((x) => x.toString(16).padStart(2, '0')).join(' ').padEnd(48)}  ${[...row].map((x) => (x >= 32 && x < 127 ? String.fromCharCode(x) : '.')).join('')}`);
    }
    pre.textContent = `binary, ${data.length} bytes${data.length > 4096 ? ' (first 4 KiB)' : ''}\n` + lines.join('\n');
  }
  pre.className = text !== null ? 'text' : 'hex';
  viewer.replaceChildren(pre);
}

function save(blob: Blob, name: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
  log(`download: ${name} (${blob.size} bytes)`);
}

/* ---- actions ---- */

function onClick(id: string, label: string, fn: () => Promise<void>): void {
  $(id).addEventListener('click', () => { void run(label, fn); });
}

onClick('open-entry', 'viewing', async () => { const li = selected(); if (li) await view(li); });
onClick('download', 'downloading', async () => {
  const li = selected();
  if (!li) return;
  const name = baseName(li.dataset.path!);
  const data = await explorer.readFile(li.dataset.path!, (d, t) => progress(`reading ${name}`, d, t));
  /* a type, so that the browser does not sniff one and add an extension to the name */
  save(new Blob([data as BlobPart], { type: 'application/octet-stream' }), name);
});
onClick('download-tar', 'archiving', async () => {
  const li = selected();
  if (!li) return;
  const path = li.dataset.path!;
  const blob = await explorer.tar(path, (n) => progress(`archiving ${path}`, n));
  save(blob, `${path === '/' ? (current?.name ?? 'image').replace(/\.[^.]*$/, '') : baseName(path)}.tar`);
});
onClick('download-image', 'writing back', async () => {
  const blob = await explorer.image();
  save(blob, current?.name ?? 'image.img');
  restoreStatus('mounted');
});

/** The directory new entries go to: the selected one, or the selected file's. */
function targetDir(): string {
  const li = selected();
  if (!li) return '/';
  return isDir(li) ? li.dataset.path! : dirName(li.dataset.path!);
}

function wantName(): string {
  const n = nameInput.value.trim();
  if (!n || n === '.' || n === '..' || n.includes('/')) throw new ExplorerError(`'${n}': give a name (no '/') in the name field`);
  return n;
}

async function reveal(path: string): Promise<void> {
  await refresh(dirName(path));
  const parent = itemAt(dirName(path));
  if (parent) await expand(parent);
  const li = itemAt(path);
  if (li) await select(li);
}

onClick('mkdir', 'creating', async () => {
  const p = joinPath(targetDir(), wantName());
  await explorer.mkdir(p);
  await reveal(p);
});
onClick('mkfile', 'creating', async () => {
  const p = joinPath(targetDir(), wantName());
  await explorer.createFile(p, new TextEncoder().encode(contentInput.value));
  await reveal(p);
});
onClick('rename', 'renaming', async () => {
  const li = selected();
  if (!li || li.dataset.path === '/') return;
  const from = li.dataset.path!;
  const to = joinPath(dirName(from), wantName());
  await explorer.rename(from, to);
  await reveal(to);
});
onClick('delete', 'deleting', async () => {
  const li = selected();
  if (!li || li.dataset.path === '/') return;
  const p = li.dataset.path!;
  await explorer.remove(p);
  await refresh(dirName(p));
  const parent = itemAt(dirName(p));
  if (parent) await select(parent);
});

log(`lkl-ts image explorer; memory: ${globalThis.crossOriginIsolated ? 'SharedArrayBuffer (cross-origin isolated)' : 'ArrayBuffer (not cross-origin isolated)'}`);
statusEl.dataset.seq = '0';
