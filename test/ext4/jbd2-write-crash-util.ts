// Running the jbd2 crash child (jbd2-write-crash-child.ts) and killing it.
import path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const child = path.join(fileURLToPath(new URL('.', import.meta.url)), 'jbd2-write-crash-child.js');

/** Run the child until it has synced, then kill it after `delayMs`. */
export async function crashChild(mode: string, img: string, seed: number, delayMs: number): Promise<string> {
  const p = spawn(process.execPath, [child, mode, img, String(seed)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    p.stdout.on('data', (d) => { out += d; if (out.includes('\n')) resolve(out.trim()); });
    p.on('exit', (c) => reject(new Error(`child exited ${c}: ${out}`)));
  });
  await new Promise((r) => setTimeout(r, delayMs));
  p.kill('SIGKILL');
  await new Promise((r) => { if (p.exitCode !== null || p.signalCode !== null) r(null); else p.on('exit', r); });
  return line;
}

