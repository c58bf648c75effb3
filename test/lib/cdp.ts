/*
 * A small Chrome DevTools Protocol client over --remote-debugging-pipe: Chromium reads
 * NUL-terminated JSON commands on its fd 3 and writes replies and events on fd 4. Enough
 * to drive a headless page in tests (navigate, evaluate, set file inputs, keys, downloads,
 * screenshots) without a browser-automation package and without downloading a browser.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';

/** Where Debian's chromium package puts the browser (CHROMIUM overrides). */
export function findChromium(): string | null {
  for (const p of [process.env.CHROMIUM, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(Boolean) as string[]) {
    try { fs.accessSync(p, fs.constants.X_OK); return p; } catch { /* next */ }
  }
  return null;
}

type Json = Record<string, any>;
interface Pending { resolve(v: Json): void; reject(e: Error): void; method: string }
type Listener = (params: Json, sessionId?: string) => void;

export class Browser {
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private listeners = new Map<string, Set<Listener>>();
  private buf = '';
  private exited = false;
  readonly stderr: string[] = [];

  private constructor(readonly proc: ChildProcess, readonly profile: string) {
    const out = proc.stdio[4] as Readable;
    out.setEncoding('utf8');
    out.on('data', (chunk: string) => {
      this.buf += chunk;
      for (let i; (i = this.buf.indexOf('\0')) >= 0;) {
        const msg = JSON.parse(this.buf.slice(0, i)) as Json;
        this.buf = this.buf.slice(i + 1);
        this.dispatch(msg);
      }
    });
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (s: string) => { this.stderr.push(s); if (this.stderr.length > 200) this.stderr.shift(); });
    proc.on('exit', () => {
      this.exited = true;
      for (const p of this.pending.values()) p.reject(new Error(`chromium exited during ${p.method}`));
      this.pending.clear();
    });
  }

  static async launch(executable: string, extraArgs: string[] = []): Promise<Browser> {
    const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'lkl-ts-chromium-'));
    const args = [
      '--headless=new', '--remote-debugging-pipe', `--user-data-dir=${profile}`,
      '--no-first-run', '--no-default-browser-check', '--disable-gpu', '--disable-extensions',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--window-size=1280,860', '--hide-scrollbars', '--mute-audio',
      ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
      ...extraArgs, 'about:blank',
    ];
    const proc = spawn(executable, args, { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    const b = new Browser(proc, profile);
    await b.send('Browser.getVersion');
    return b;
  }

  private dispatch(msg: Json): void {
    if (typeof msg.id === 'number') {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}${msg.error.data ? ` (${msg.error.data})` : ''}`));
      else p.resolve(msg.result ?? {});
      return;
    }
    for (const l of this.listeners.get(msg.method) ?? []) l(msg.params ?? {}, msg.sessionId);
  }

  send(method: string, params: Json = {}, sessionId?: string): Promise<Json> {
    if (this.exited) return Promise.reject(new Error(`chromium has exited (${method})`));
    const id = this.nextId++;
    const msg = JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) });
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, method });
      (this.proc.stdio[3] as Writable).write(msg + '\0');
    });
  }

  on(event: string, fn: Listener): () => void {
    let s = this.listeners.get(event);
    if (!s) this.listeners.set(event, (s = new Set()));
    s.add(fn);
    return () => s!.delete(fn);
  }

  /** The first event matching pred, within timeoutMs. Subscribe before causing it. */
  waitFor(event: string, pred: (p: Json) => boolean = () => true, timeoutMs = 30_000): Promise<Json> {
    return new Promise((resolve, reject) => {
      const off = this.on(event, (p) => { if (pred(p)) { off(); clearTimeout(timer); resolve(p); } });
      const timer = setTimeout(() => { off(); reject(new Error(`timed out waiting for ${event}`)); }, timeoutMs);
    });
  }

  /** A new page (tab), attached with its own session. */
  async newPage(): Promise<Page> {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    const page = new Page(this, sessionId as string);
    await page.send('Page.enable');
    await page.send('Runtime.enable');
    return page;
  }

  async close(): Promise<void> {
    if (!this.exited) {
      const gone = new Promise((r) => this.proc.once('exit', r));
      this.send('Browser.close').catch(() => {});
      const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    }
    fs.rmSync(this.profile, { recursive: true, force: true });
  }
}

export class Page {
  /** console messages and uncaught exceptions of the page, for failure reports. */
  readonly console: string[] = [];

  constructor(readonly browser: Browser, readonly sessionId: string) {
    browser.on('Runtime.consoleAPICalled', (p, s) => {
      if (s !== sessionId) return;
      this.console.push(`${p.type}: ${(p.args as Json[]).map((a) => a.value ?? a.description ?? '').join(' ')}`);
    });
    browser.on('Runtime.exceptionThrown', (p, s) => {
      if (s !== sessionId) return;
      this.console.push(`exception: ${p.exceptionDetails?.exception?.description ?? p.exceptionDetails?.text}`);
    });
  }

  send(method: string, params: Json = {}): Promise<Json> {
    return this.browser.send(method, params, this.sessionId);
  }

  async goto(url: string): Promise<void> {
    const loaded = this.browser.waitFor('Page.loadEventFired', () => true, 30_000);
    const r = await this.send('Page.navigate', { url });
    if (r.errorText) throw new Error(`navigate ${url}: ${r.errorText}`);
    await loaded;
  }

  /** Evaluates an expression in the page (promises awaited); its value, JSON-copied. */
  async eval<T = unknown>(expression: string): Promise<T> {
    const r = await this.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true, userGesture: true });
    if (r.exceptionDetails) {
      throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    }
    return r.result?.value as T;
  }

  /** Polls `expression` until it is truthy; returns its value. */
  async waitUntil<T = unknown>(expression: string, timeoutMs = 30_000, what = expression): Promise<T> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const v = await this.eval<T>(expression);
      if (v) return v;
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Sets the files of an <input type=file> (fires its change event, as a user's choice does). */
  async setInputFiles(selector: string, files: string[]): Promise<void> {
    const r = await this.send('Runtime.evaluate', { expression: `document.querySelector(${JSON.stringify(selector)})` });
    const objectId = r.result?.objectId;
    if (!objectId) throw new Error(`no element ${selector}`);
    await this.send('DOM.setFileInputFiles', { files, objectId });
  }

  /** Drags files from outside the browser and drops them at (x, y), as a user does. */
  async dropFiles(files: string[], x = 640, y = 400): Promise<void> {
    const data = { items: [], files, dragOperationsMask: 1 };
    for (const type of ['dragEnter', 'dragOver', 'drop']) await this.send('Input.dispatchDragEvent', { type, x, y, data });
  }

  /** A key press (keyDown + keyUp) sent to the focused element. */
  async key(key: string): Promise<void> {
    const codes: Record<string, number> = { ArrowDown: 40, ArrowUp: 38, ArrowLeft: 37, ArrowRight: 39, Enter: 13, Home: 36, End: 35, Tab: 9 };
    const base = { key, code: key, windowsVirtualKeyCode: codes[key] ?? 0 };
    await this.send('Input.dispatchKeyEvent', { type: 'rawKeyDown', ...base });
    if (key === 'Enter') await this.send('Input.dispatchKeyEvent', { type: 'char', ...base, text: '\r' });
    await this.send('Input.dispatchKeyEvent', { type: 'keyUp', ...base });
  }

  async screenshot(file: string): Promise<void> {
    const r = await this.send('Page.captureScreenshot', { format: 'png' });
    fs.writeFileSync(file, Buffer.from(r.data as string, 'base64'));
  }
}

/** Downloads of a browser saved into a directory, each under its guid. */
export class Downloads {
  private done = new Map<string, { file: string; name: string }>();
  private names = new Map<string, string>();
  private waiters: Array<() => void> = [];
  count = 0;

  private constructor(readonly browser: Browser, readonly dir: string) {
    browser.on('Browser.downloadWillBegin', (p) => { this.names.set(p.guid, p.suggestedFilename); });
    browser.on('Browser.downloadProgress', (p) => {
      if (p.state !== 'completed' && p.state !== 'canceled') return;
      this.done.set(p.guid, { file: path.join(dir, p.guid), name: this.names.get(p.guid) ?? '' });
      this.count++;
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async into(browser: Browser, dir: string): Promise<Downloads> {
    fs.mkdirSync(dir, { recursive: true });
    const d = new Downloads(browser, dir);
    await browser.send('Browser.setDownloadBehavior', { behavior: 'allowAndName', downloadPath: dir, eventsEnabled: true });
    return d;
  }

  /** Runs fn (which starts one download) and resolves to the saved file and its suggested name. */
  async expect(fn: () => Promise<unknown>, timeoutMs = 60_000): Promise<{ file: string; name: string }> {
    const before = new Set(this.done.keys());
    await fn();
    const until = Date.now() + timeoutMs;
    for (;;) {
      const fresh = [...this.done.keys()].find((g) => !before.has(g));
      if (fresh) return this.done.get(fresh)!;
      const left = until - Date.now();
      if (left <= 0) throw new Error('timed out waiting for a download');
      await new Promise<void>((r) => { const t = setTimeout(r, left); this.waiters.push(() => { clearTimeout(t); r(); }); });
    }
  }
}
