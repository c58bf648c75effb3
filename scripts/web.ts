/*
 * npm run web: serves the image explorer (lib/web/index.html and the compiled modules under
 * dist/, as they are: plain ES modules, no bundle) on a local port, with the headers that make
 * the page cross-origin isolated (so the kernel's memory is a SharedArrayBuffer), and prints
 * the URL.
 *
 *   node dist/scripts/web.js [--port N] [--host ADDR] [--no-isolation]
 *
 * Defaults: port 8080 on 127.0.0.1. --no-isolation leaves the COOP/COEP headers out: the
 * page then runs the kernel on an ArrayBuffer, as it would from a plain static host.
 */
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { AddressInfo } from 'node:net';

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

/** The repository: this file runs from <repo>/dist/scripts/. */
const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** What a URL path names on disk, or null: the page, its stylesheet, dist/ and (for source maps) lib/ sources. */
export function resolveUrl(repo: string, urlPath: string): string | null {
  let p: string;
  try { p = decodeURIComponent(urlPath); } catch { return null; }
  if (p.includes('\0')) return null;
  if (p === '/' || p === '/index.html') return path.join(repo, 'lib', 'web', 'index.html');
  if (p === '/web.css') return path.join(repo, 'lib', 'web', 'web.css');
  const norm = path.posix.normalize(p);
  if (norm.startsWith('/dist/') || (norm.startsWith('/lib/') && norm.endsWith('.ts'))) {
    const abs = path.join(repo, norm);
    const rel = path.relative(repo, abs);
    return rel.startsWith('..') || path.isAbsolute(rel) ? null : abs;
  }
  return null;
}

export interface WebServer { url: string; close(): Promise<void> }

export function startServer(opts: { port?: number; host?: string; repo?: string; isolation?: boolean } = {}): Promise<WebServer> {
  const repo = opts.repo ?? REPO;
  const host = opts.host ?? '127.0.0.1';
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const file = req.method === 'GET' || req.method === 'HEAD' ? resolveUrl(repo, url.pathname) : null;
    const headers: http.OutgoingHttpHeaders = {
      ...(opts.isolation === false ? {} : {
        'Cross-Origin-Opener-Policy': 'same-origin',
        'Cross-Origin-Embedder-Policy': 'require-corp',
        'Cross-Origin-Resource-Policy': 'same-origin',
      }),
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-cache',
    };
    let st: fs.Stats | null = null;
    try { st = file ? fs.statSync(file) : null; } catch { st = null; }
    if (!file || !st?.isFile()) {
      res.writeHead(404, { ...headers, 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('not found\n');
      return;
    }
    res.writeHead(200, {
      ...headers,
      'Content-Type': MIME[path.extname(file)] ?? 'application/octet-stream',
      'Content-Length': st.size,
    });
    if (req.method === 'HEAD') { res.end(); return; }
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 8080, host, () => {
      const a = server.address() as AddressInfo;
      const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      resolve({
        url: `http://${h}:${a.port}/`,
        close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
      });
    });
  });
}

async function main(argv: string[]): Promise<void> {
  let port = 8080, host = '127.0.0.1', isolation = true;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--port' && argv[i + 1] !== undefined) port = Number(argv[++i]);
    else if (a === '--host' && argv[i + 1] !== undefined) host = argv[++i]!;
    else if (a === '--no-isolation') isolation = false;
    else if (a === '-h' || a === '--help') {
      process.stdout.write('Usage: npm run web -- [--port N] [--host ADDR] [--no-isolation]\nServes the lkl-ts image explorer page.\n');
      return;
    } else {
      process.stderr.write(`web: unknown argument '${a}'\n`);
      process.exitCode = 1;
      return;
    }
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`web: invalid port\n`);
    process.exitCode = 1;
    return;
  }
  if (!fs.existsSync(path.join(REPO, 'dist', 'lib', 'web', 'app.js'))) {
    process.stderr.write('web: dist/lib/web/app.js is missing; run npm run build first\n');
    process.exitCode = 1;
    return;
  }
  const s = await startServer({ port, host, isolation });
  process.stdout.write(`lkl-ts image explorer: ${s.url}  (${isolation ? 'cross-origin isolated' : 'not isolated'}; Ctrl-C stops)\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).catch((e: Error) => { process.stderr.write(`web: ${e.message}\n`); process.exitCode = 1; });
}
