/*
 * Helpers for the packaging tests: where the repository and this build's programs are,
 * what `--help` lists (parsed strictly enough that a renamed or new option shows), and which
 * entries a man page has (the tags of its .TP paragraphs, read from the roff source).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { REPO } from '../lib/fixtures.js';

/** The repository (found as the fixtures helper finds it). */
export { REPO };

export interface PackageJson {
  name: string; version: string; bin: Record<string, string>; man: string[]; files: string[];
  dependencies: Record<string, string>;
}
export const PKG = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as PackageJson;

/** The programs the package installs. */
export const PROGRAMS = Object.keys(PKG.bin);

/** bin/PROG.js of the build this test belongs to. */
export const binOf = (prog: string) => fileURLToPath(new URL(`../../bin/${prog}.js`, import.meta.url));

/** The man page of `prog`, as package.json lists it (absolute path in the repository). */
export function pageOf(prog: string): string {
  const p = PKG.man.find((m) => /^(.*)\.\d$/.exec(path.basename(m))?.[1] === prog);
  if (!p) throw new Error(`package.json lists no man page for ${prog}`);
  return path.join(REPO, p);
}

/** `prog --help` of this build. */
export function helpText(prog: string): string {
  const r = spawnSync(process.execPath, [binOf(prog), '--help'], { encoding: 'utf8', env: { ...process.env, COLUMNS: '100' } });
  if (r.status !== 0) throw new Error(`${prog} --help exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/** The lines of the section of `text` that starts with a line beginning `heading`, up to a blank line. */
function section(text: string, heading: string): string[] {
  const lines = text.split('\n');
  const i = lines.findIndex((l) => l.startsWith(heading));
  if (i < 0) return [];
  const out: string[] = [];
  for (const l of lines.slice(i + 1)) {
    if (l.trim() === '') break;
    out.push(l);
  }
  return out;
}

/**
 * What --help lists: `flags`, every name in yargs' "Options:" table ("-i", "--image", ...),
 * and for lklfuse `mountOptions`, the -o options of its "Options for -o" list (names without
 * "=VALUE"; the transport names listed under transport=; each name of the list of options
 * accepted from mount(8) and ignored).
 */
export function helpOptions(text: string): { flags: string[]; mountOptions: string[] } {
  const flags: string[] = [];
  for (const l of section(text, 'Options:')) {
    // "  -i, --image      the filesystem image" / "      --owner      owner ...": an option
    // line starts within the first 6 columns; description lines continue further right.
    const m = /^ {2,6}(-[^\s,]+(?:, -[^\s,]+)*)(?: {2,}|$)/.exec(l);
    if (m) flags.push(...m[1]!.split(', '));
  }
  const mountOptions: string[] = [];
  for (const l of section(text, 'Options for -o')) {
    const list = /^ {2}([\w*=-]+(?:, [\w*=-]+)+)$/.exec(l);
    if (list) {
      mountOptions.push(...list[1]!.split(', ').map((o) => o.replace(/=.*/, '')));
      continue;
    }
    // "  type=TYPE            filesystem type..." / "      kernel       lklfuse speaks...":
    // a name, then two or more spaces (or the end of the line).
    const m = /^ +([a-z_][\w-]*)(?:=[A-Z]+)?(?: {2,}|$)/.exec(l);
    if (m) mountOptions.push(m[1]!);
  }
  return { flags, mountOptions };
}

/** Joins the arguments of a roff font macro line (.B, .BR, .IR, ...), quotes honoured. */
function macroText(line: string): string {
  const m = /^\.(B|I|BR|RB|BI|IB|IR|RI)\s+(.*)$/.exec(line);
  if (!m) return line.startsWith('.') ? '' : line;
  const args = [...m[2]!.matchAll(/"((?:[^"]|"")*)"|(\S+)/g)].map((a) => a[1] ?? a[2]!);
  return m[1]!.length === 1 ? args.join(' ') : args.join('');
}

/** Plain text of roff escapes as the pages use them. */
function unescape(s: string): string {
  return s.replace(/\\f[BIRP]/g, '').replace(/\\-/g, '-').replace(/\\\(aq/g, "'").replace(/\\\(dq/g, '"')
    .replace(/\\&/g, '').replace(/\\e/g, '\\');
}

/**
 * The names a man page has entries for: the tag (the line after .TP) of every tagged
 * paragraph, split at ", " and cut at the first blank or "=" ("-i, --image IMAGE" gives -i
 * and --image, "type=TYPE" gives type, "dev, suid, exec" gives all three).
 */
export function pageEntries(roff: string): Set<string> {
  const lines = roff.split('\n');
  const out = new Set<string>();
  lines.forEach((l, i) => {
    if (l.trim() !== '.TP' || i + 1 >= lines.length) return;
    const tag = unescape(macroText(lines[i + 1]!)).trim();
    for (const part of tag.split(', ')) {
      const name = part.trim().split(/[\s=\[]/)[0];
      if (name) out.add(name);
    }
  });
  return out;
}
