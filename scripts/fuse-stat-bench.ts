/*
 * Per-request cost of lklfuse's FUSE transports: stat() of one file in a loop through the
 * mount, with entry and attribute caching off (entry_timeout=0,attr_timeout=0), so every
 * stat is a LOOKUP + GETATTR answered by the daemon. One caller, then two at once; each
 * figure is the best of --runs runs of --seconds seconds. Rows: fuse-native (libfuse 2),
 * the kernel transport with the 'poll' reader and with the 'worker' reader.
 *
 *   node dist/scripts/fuse-stat-bench.js [--seconds 3] [--runs 3] [--only fuse-native,poll,worker]
 *
 * Root only (the kernel transport, mkfs). Unmounts everything it mounted, also on failure.
 * The callers are separate processes (the daemon must never touch its own mount).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readMountinfo } from '../lib/fuse/mountinfo.js';

const BIN = fileURLToPath(new URL('../bin/lklfuse.js', import.meta.url));
const arg = (name: string, dflt: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
};
const SECONDS = Number(arg('seconds', '3'));
const RUNS = Number(arg('runs', '3'));
const ONLY = arg('only', 'fuse-native,poll,worker').split(',');

const CONFIGS: { name: string; opts: string }[] = [
  { name: 'fuse-native', opts: 'transport=fuse-native' },
  { name: 'poll', opts: 'transport=kernel,reader=poll' },
  { name: 'worker', opts: 'transport=kernel,reader=worker' },
].filter((c) => ONLY.includes(c.name));

const LOOP = `const fs=require('fs');const f=process.argv[1];const end=Date.now()+${SECONDS * 1000};let n=0;` +
  `while(Date.now()<end){for(let i=0;i<100;i++)fs.statSync(f);n+=100}process.stdout.write(String(n))`;

function statLoop(file: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, ['-e', LOOP, file], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => { out += d; });
    c.on('error', reject);
    c.on('close', () => resolve(Number(out) / SECONDS));
  });
}

const mounted = async (mnt: string) => (await readMountinfo()).some((m) => m.mountPoint === mnt);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lkl-ts-statbench-'));
  const img = path.join(dir, 'e.img'), src = path.join(dir, 'src'), mnt = path.join(dir, 'mnt');
  fs.mkdirSync(src); fs.mkdirSync(mnt);
  fs.writeFileSync(path.join(src, 'f'), 'x');
  spawnSync('truncate', ['-s', '64M', img]);
  const mk = spawnSync('mke2fs', ['-q', '-F', '-t', 'ext4', '-b', '4096', '-d', src, img], { encoding: 'utf8' });
  if (mk.status !== 0) throw new Error(`mke2fs: ${mk.stderr}`);
  const results: string[] = [];
  try {
    for (const c of CONFIGS) {
      let one = 0, two = 0;
      const child = spawn(process.execPath, [BIN, img, mnt, '-f', '-o', `ro,entry_timeout=0,attr_timeout=0,${c.opts}`], { stdio: ['ignore', 'ignore', 'inherit'] });
      try {
        const deadline = Date.now() + 30000;
        while (!(await mounted(mnt))) {
          if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${c.name}: no mount`);
          await sleep(50);
        }
        await statLoop(path.join(mnt, 'f')); // warm up
        for (let r = 0; r < RUNS; r++) {
          one = Math.max(one, await statLoop(path.join(mnt, 'f')));
          const [a, b] = await Promise.all([statLoop(path.join(mnt, 'f')), statLoop(path.join(mnt, 'f'))]);
          two = Math.max(two, a! + b!);
        }
      } finally {
        spawnSync('umount', [mnt]);
        if (await mounted(mnt)) spawnSync('umount', ['-l', mnt]);
        await new Promise((r) => { if (child.exitCode !== null) r(0); else { child.on('exit', r); setTimeout(() => { child.kill('SIGKILL'); r(0); }, 20000); } });
      }
      const line = `${c.name.padEnd(12)} 1 caller: ${Math.round(one).toString().padStart(7)} stat/s (${(1e6 / one / 2).toFixed(1)} µs/request)   2 callers: ${Math.round(two).toString().padStart(7)} stat/s`;
      results.push(line);
      process.stdout.write(line + '\n');
    }
  } finally {
    if (await mounted(mnt)) spawnSync('umount', ['-l', mnt]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => { process.stderr.write(`fuse-stat-bench: ${String(e)}\n`); process.exit(1); });
