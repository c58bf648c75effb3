/*
 * /proc/self/mountinfo, read by lklfuse to refuse a mountpoint that is already mounted, to
 * confirm its own mount, and to notice when somebody else unmounted it (fusermount -u,
 * umount): libfuse's loop then ends silently inside fuse-native, so polling is the only way.
 */
import { readFile } from 'node:fs/promises';

export interface MountEntry {
  id: number;
  parent: number;
  /** st_dev of the mount, "major:minor" (a FUSE connection's number is its minor). */
  dev: string;
  mountPoint: string;
  fsType: string;
  source: string;
  options: string;
}

/* The kernel escapes space, tab, newline and backslash in mountinfo as \ooo. */
const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

export function parseMountinfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const f = line.split(' ');
    const sep = f.indexOf('-', 6);
    if (f.length < 10 || sep < 0) continue;
    out.push({
      id: Number(f[0]), parent: Number(f[1]), dev: f[2]!, mountPoint: unescape(f[4]!), options: f[5]!,
      fsType: unescape(f[sep + 1]!), source: unescape(f[sep + 2]!),
    });
  }
  return out;
}

export async function readMountinfo(): Promise<MountEntry[]> {
  return parseMountinfo(await readFile('/proc/self/mountinfo', 'utf8'));
}

/** The topmost mount at `mountPoint` (an absolute, normalized path), if any. */
export async function findMount(mountPoint: string): Promise<MountEntry | undefined> {
  const all = await readMountinfo();
  let found: MountEntry | undefined;
  for (const m of all) if (m.mountPoint === mountPoint) found = m;
  return found;
}
