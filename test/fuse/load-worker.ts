/*
 * One process of the load test (real-load.test.ts): node load-worker.js ROLE ROOT ID [N].
 * Each role does a fixed amount of work through the mount at ROOT with plain host system
 * calls, checks what it can check on its own, and prints one JSON line (what it did) on
 * stdout; any unexpected error goes to stderr with exit status 1. Expected races (a name
 * renamed or removed by another process a moment ago: ENOENT) are counted, not errors.
 */
import fs from 'node:fs';
import path from 'node:path';
import { prngBytes, seedOf } from '../lib/tree.js';

/** Content of a self-describing file: "TAG\n" then prngBytes(seedOf(TAG), size). */
export function taggedContent(tag: string, size: number): Buffer {
  return Buffer.concat([Buffer.from(`${tag}\n`), prngBytes(seedOf(tag), size)]);
}
/** The tag of a self-describing file if its content is intact, else null. */
export function checkTagged(b: Buffer): string | null {
  const nl = b.indexOf(10);
  if (nl < 0) return null;
  const tag = b.subarray(0, nl).toString();
  return b.subarray(nl + 1).equals(prngBytes(seedOf(tag), b.length - nl - 1)) ? tag : null;
}
/** The content writer `id` leaves in its own file, and the region it owns of the shared file. */
export const writerContent = (id: number, size: number): Buffer => prngBytes(seedOf(`writer-${id}`), size);
export const sharedRegion = (id: number, size: number): Buffer => prngBytes(seedOf(`shared-${id}`), size);

const isEnoent = (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT';

/** Writes `b` to fd at `pos` in uneven pieces (1 byte to 40 KiB), as separate write calls. */
function writeInPieces(fd: number, b: Buffer, pos: number, seed: number): void {
  let off = 0;
  let x = seed || 1;
  while (off < b.length) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const n = Math.min(b.length - off, 1 + (x % 40960));
    const w = fs.writeSync(fd, b, off, n, pos + off);
    off += w;
  }
}

function main(): Record<string, unknown> {
  const [role, root, idS, nS] = process.argv.slice(2);
  const id = Number(idS);
  const n = Number(nS ?? 0);
  switch (role) {
    case 'writer': {
      // Its own file, written in uneven pieces, fsync'd, read back.
      const size = n;
      const want = writerContent(id, size);
      const f = path.join(root!, 'writers', `w${id}`);
      const fd = fs.openSync(f, 'w');
      writeInPieces(fd, want, 0, id + 1);
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      if (!fs.readFileSync(f).equals(want)) throw new Error(`${f}: read back differs`);
      return { role, id, bytes: size };
    }
    case 'shared': {
      // Region id of the shared file, at id * n, with pwrite in pieces.
      const fd = fs.openSync(path.join(root!, 'shared'), 'r+');
      const want = sharedRegion(id, n);
      writeInPieces(fd, want, id * n, id + 101);
      fs.fsyncSync(fd);
      const got = Buffer.alloc(n);
      fs.readSync(fd, got, 0, n, id * n);
      fs.closeSync(fd);
      if (!got.equals(want)) throw new Error(`shared region ${id}: read back differs`);
      return { role, id, bytes: n };
    }
    case 'reader': {
      // Stable files made before the run, read whole n times each and checked.
      const dir = path.join(root!, 'stable');
      let reads = 0;
      for (let i = 0; i < n; i++) {
        for (const name of fs.readdirSync(dir)) {
          const b = fs.readFileSync(path.join(dir, name));
          if (checkTagged(b) !== name) throw new Error(`stable/${name}: content damaged (${b.length} bytes)`);
          reads++;
        }
      }
      return { role, id, reads };
    }
    case 'renamer': {
      // Creates tagged files and renames them onto a few shared slot names, and slots onto
      // slots: another process may have moved a slot a moment ago (ENOENT).
      const dir = path.join(root!, 'ren');
      let renames = 0, lost = 0;
      for (let i = 0; i < n; i++) {
        const tag = `r${id}-${i}`;
        const tmp = path.join(dir, `tmp-${tag}`);
        fs.writeFileSync(tmp, taggedContent(tag, 500 + ((id * 7919 + i * 104729) % 6000)));
        fs.renameSync(tmp, path.join(dir, `slot${(id + i) % 5}`));
        renames++;
        try {
          fs.renameSync(path.join(dir, `slot${i % 5}`), path.join(dir, `slot${(i + 2) % 5}`));
          renames++;
        } catch (e) { if (!isEnoent(e)) throw e; lost++; }
      }
      return { role, id, renames, enoent: lost };
    }
    case 'creator': {
      // n files c<id>-<i> in the one shared directory; every third removed again.
      const dir = path.join(root!, 'create');
      for (let i = 0; i < n; i++) {
        const f = path.join(dir, `c${id}-${i}`);
        fs.writeFileSync(f, taggedContent(`c${id}-${i}`, i % 300));
        if (i % 3 === 2) fs.unlinkSync(path.join(dir, `c${id}-${i - 1}`));
      }
      return { role, id, created: n };
    }
    case 'stat': {
      // A stat storm over every name of the tree, n rounds; vanished names are ENOENT.
      let stats = 0, gone = 0;
      const walk = (d: string) => {
        let names: string[];
        try { names = fs.readdirSync(d); } catch (e) { if (isEnoent(e)) { gone++; return; } throw e; }
        for (const name of names) {
          const p = path.join(d, name);
          try {
            const st = fs.lstatSync(p);
            stats++;
            if (st.isDirectory()) walk(p);
          } catch (e) { if (!isEnoent(e)) throw e; gone++; }
        }
      };
      for (let i = 0; i < n; i++) walk(root!);
      return { role, id, stats, enoent: gone };
    }
    default: throw new Error(`unknown role ${role}`);
  }
}

if (process.argv[1] && import.meta.url.endsWith(path.basename(process.argv[1]))) {
  try {
    process.stdout.write(JSON.stringify(main()) + '\n');
  } catch (e) {
    process.stderr.write(`load-worker ${process.argv.slice(2).join(' ')}: ${(e as Error).stack ?? e}\n`);
    process.exitCode = 1;
  }
}
