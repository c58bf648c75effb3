// The TypeScript sources under a directory of the repository (for the structure tests).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Every .ts file below `dir`, recursively. */
export function tsFilesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...tsFilesUnder(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}
