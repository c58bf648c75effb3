/*
 * Where the shared test data lives: ../shared/fixtures beside the repository (as on the
 * developers' machines and in CI), or LKL_TS_FIXTURES. Resolved from this file, not from
 * the working directory. Where they are missing the tests that need them skip, saying
 * where they looked (CI clones the repository with shared/ beside it, so they run there).
 */
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { run } from './sh.js';
import { fileURLToPath } from 'node:url';

// This file runs from <repo>/<outDir>/test/lib/: the repository is the nearest folder up
// with our package.json.
function findRepo(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      if (JSON.parse(fs.readFileSync(path.join(d, 'package.json'), 'utf8')).name === 'lkl-ts') return d;
    } catch { /* keep going up */ }
    const up = path.dirname(d);
    if (up === d) return process.cwd();
    d = up;
  }
}
/** The repository this build belongs to. */
export const REPO = findRepo();
const repo = REPO;

/** The e2fsprogs test images (one directory per test, each with image.gz or image.bz2). */
export const E2FSPROGS_FIXTURES = process.env.LKL_TS_FIXTURES
  ? path.join(process.env.LKL_TS_FIXTURES, 'e2fsprogs-tests')
  : path.resolve(repo, '..', 'shared', 'fixtures', 'e2fsprogs-tests');

/** A skip reason when the fixtures are missing, or false. */
export function fixturesSkip(): string | false {
  if (fs.existsSync(E2FSPROGS_FIXTURES)) return false;
  return `e2fsprogs fixtures not found at ${E2FSPROGS_FIXTURES} (no shared/ beside the repository; set LKL_TS_FIXTURES)`;
}

/**
 * The image of one e2fsprogs test directory (image.gz or image.bz2), unpacked, or null
 * when the directory has none.
 */
export async function unpackFixture(dir: string): Promise<Buffer | null> {
  const f = fs.readdirSync(dir).find((x) => x.startsWith('image'));
  if (!f) return null;
  const p = path.join(dir, f);
  if (f.endsWith('.gz')) return zlib.gunzipSync(fs.readFileSync(p));
  if (f.endsWith('.bz2')) return (await run('bzcat', [p])).stdoutBuf;
  return null;
}
