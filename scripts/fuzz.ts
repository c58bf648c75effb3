// Hostile-image campaigns: mutated ext2/3/4 and FAT12/16/32 images through the kernel,
// in-process (see test/lib/fuzz/fuzz.ts for what a run does and what counts as a failure).
//
//   node dist/scripts/fuzz.js --seeds 20000 --kind ext4     # a campaign, then a summary
//   node dist/scripts/fuzz.js --kind ext3 --seed 1234 -v    # replay one seed
//
// Options: --kind K (ext2|ext3|ext4|fat12|fat16|fat32|all, default all), --seeds N (per
// kind, default 1000), --start S (first seed, default 1), --seed S (just that one),
// --dir D (where base images are made and kept; default a directory under the system temp
// dir), --save D (write each failing image there), --call-ms N (per-call deadline,
// default 10000), --rss-mib N (RSS growth bound over the run, default 768), -v (print
// every seed's mutations). Needs root (base images are written through a loop mount),
// mke2fs, mkfs.vfat, mtools, setfattr. Each kind runs in a child process, restarted after
// a hang (the hung kernel cannot be reused); exit status 1 if any seed failed.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { KINDS, Hang, baseImage, fsTypeOf, mutate, runImage, type FuzzKind, type Mutation } from '../test/lib/fuzz/fuzz.js';
import { startKernel } from '../lib/index.js';

interface Args { kinds: FuzzKind[]; seeds: number; start: number; dir: string; save?: string; callMs: number; rssMiB: number; verbose: boolean; child: boolean }

function parse(argv: string[]): Args {
  const a: Args = { kinds: [...KINDS], seeds: 1000, start: 1, dir: path.join(os.tmpdir(), 'lkl-ts-fuzz'), callMs: 10_000, rssMiB: 768, verbose: false, child: false };
  for (let i = 0; i < argv.length; i++) {
    const v = () => { const x = argv[++i]; if (x === undefined) throw new Error(`${argv[i - 1]} needs a value`); return x; };
    switch (argv[i]) {
      case '--kind': { const k = v(); if (k !== 'all' && !KINDS.includes(k as FuzzKind)) throw new Error(`unknown kind ${k}`); a.kinds = k === 'all' ? [...KINDS] : [k as FuzzKind]; break; }
      case '--seeds': a.seeds = Number(v()); break;
      case '--start': a.start = Number(v()); break;
      case '--seed': a.start = Number(v()); a.seeds = 1; break;
      case '--dir': a.dir = v(); break;
      case '--save': a.save = v(); break;
      case '--call-ms': a.callMs = Number(v()); break;
      case '--rss-mib': a.rssMiB = Number(v()); break;
      case '-v': a.verbose = true; break;
      case '--child': a.child = true; break;
      case '-h': case '--help':
        process.stdout.write(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((l) => l.startsWith('//')).map((l) => l.slice(3)).join('\n') + '\n');
        process.exit(0);
      // falls through
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  return a;
}

interface SeedReport { kind: FuzzKind; seed: number; mounted: string; calls: number; ms: number; failures: string[]; mutations: Mutation[] }

/** The child: one kind, seeds [start, start+seeds); one JSON line per seed on stdout. */
async function child(a: Args): Promise<void> {
  const kind = a.kinds[0]!;
  const base = fs.readFileSync(await baseImage(kind, a.dir));
  const messages: string[] = [];
  const k = await startKernel({ memMiB: 64, print: (m) => { messages.push(m); if (messages.length > 2000) messages.splice(0, 1000); } });
  const rss0 = process.memoryUsage().rss;
  for (let seed = a.start; seed < a.start + a.seeds; seed++) {
    const img = new Uint8Array(base);
    const mutations = mutate(kind, img, seed);
    const saved = a.save ? Buffer.from(img) : undefined;
    const t0 = Date.now();
    const rep: SeedReport = { kind, seed, mounted: 'no', calls: 0, ms: 0, failures: [], mutations };
    let hung = false;
    messages.length = 0;
    try {
      const r = await runImage(k, fsTypeOf(kind), img, messages, seed, a.callMs);
      Object.assign(rep, { mounted: r.mounted, calls: r.calls, failures: r.failures });
    } catch (e) {
      hung = e instanceof Hang;
      rep.failures.push(hung ? String((e as Error).message) : `threw: ${(e as Error)?.stack ?? String(e)}`);
      rep.failures.push(...messages.filter((m) => /BUG|error|EXT4-fs|FAT-fs/.test(m)).slice(-4));
    }
    rep.ms = Date.now() - t0;
    const grown = (process.memoryUsage().rss - rss0) / 1048576;
    if (grown > a.rssMiB) rep.failures.push(`RSS grew ${grown.toFixed(0)} MiB (bound ${a.rssMiB})`);
    if (rep.failures.length && saved && a.save) { fs.mkdirSync(a.save, { recursive: true }); fs.writeFileSync(path.join(a.save, `${kind}-${seed}.img`), saved); }
    process.stdout.write(`RESULT ${JSON.stringify(rep)}\n`);
    if (hung || grown > a.rssMiB) process.exit(3);
  }
  await k.halt();
  process.exit(0);
}

async function parent(a: Args): Promise<void> {
  fs.mkdirSync(a.dir, { recursive: true });
  const self = fileURLToPath(import.meta.url);
  let failed = 0;
  const t0 = Date.now();
  for (const kind of a.kinds) {
    await baseImage(kind, a.dir);
    const stats = { seeds: 0, rw: 0, ro: 0, no: 0, calls: 0, failures: 0, slowest: 0, slowestSeed: 0 };
    const t1 = Date.now();
    let next = a.start;
    const end = a.start + a.seeds;
    while (next < end) {
      const args = [self, '--child', '--kind', kind, '--start', String(next), '--seeds', String(end - next), '--dir', a.dir, '--call-ms', String(a.callMs), '--rss-mib', String(a.rssMiB)];
      if (a.save) args.push('--save', a.save);
      const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
      let last = next - 1;
      for await (const line of readline.createInterface({ input: p.stdout })) {
        if (!line.startsWith('RESULT ')) continue;
        const r = JSON.parse(line.slice(7)) as SeedReport;
        last = r.seed;
        stats.seeds++; stats[r.mounted as 'rw' | 'ro' | 'no']++; stats.calls += r.calls;
        if (r.ms > stats.slowest) { stats.slowest = r.ms; stats.slowestSeed = r.seed; }
        if (r.failures.length) {
          stats.failures++;
          process.stdout.write(`FAIL ${kind} seed ${r.seed} (replay: node dist/scripts/fuzz.js --kind ${kind} --seed ${r.seed} -v)\n` +
            r.mutations.map((m) => `    ${m.field} = 0x${m.value.toString(16)}${m.fixed ? ' (checksum fixed)' : ''}\n`).join('') +
            r.failures.map((f) => `    ! ${f}\n`).join(''));
        } else if (a.verbose) {
          process.stdout.write(`ok ${kind} seed ${r.seed} ${r.mounted} ${r.calls} calls ${r.ms} ms\n` + r.mutations.map((m) => `    ${m.field} = 0x${m.value.toString(16)}${m.fixed ? ' (checksum fixed)' : ''}\n`).join(''));
        }
      }
      const code = await new Promise<number>((res) => p.on('close', (c) => res(c ?? 1)));
      if (code !== 0 && code !== 3) { process.stdout.write(`child for ${kind} exited ${code} after seed ${last}\n`); stats.failures++; last++; }
      next = last + 1;
    }
    failed += stats.failures;
    process.stdout.write(`${kind}: ${stats.seeds} seeds in ${((Date.now() - t1) / 1000).toFixed(1)} s — mounted rw ${stats.rw}, ro ${stats.ro}, refused ${stats.no}; ` +
      `${stats.calls} calls; slowest seed ${stats.slowestSeed} ${stats.slowest} ms; ${stats.failures} failing\n`);
  }
  process.stdout.write(`total ${((Date.now() - t0) / 1000).toFixed(1)} s, ${failed} failing seeds\n`);
  process.exit(failed ? 1 : 0);
}

const args = parse(process.argv.slice(2));
await (args.child ? child(args) : parent(args));
