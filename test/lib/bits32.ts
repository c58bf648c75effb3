/*
 * A lint for JavaScript's 32-bit bitwise operators applied to quantities that can pass 2^31:
 * byte offsets, sectors, block and page numbers, sizes, counts. `x << 9` on a sector count
 * turns negative at 2 GiB (that bug kept every image of 2 GiB or more from mounting), and
 * `x >>> 0`, `x & m`, `x | 0` silently wrap at 2^32.
 *
 * It reads TypeScript as text: comments and string literals are blanked, then for each
 * `<<`, `>>`, `>>>`, `&`, `|`, `^` (not `&&`, `||`, compound assignments to flag words are
 * included: `x |= ...` is `x = x | ...`) it looks at the operand the operator works on:
 * for shifts the left operand only (the right one is a shift count), for `&`, `|`, `^`
 * both. An operand is the identifier chain next to the operator (`bdev.bd_nr_sectors`,
 * `page.index`, `buf[i]!`), or every identifier of a parenthesised group. If one of its
 * identifiers names a quantity (see RISKY), the line is reported, unless it carries a
 * `bits32:` comment saying why the value is bounded (a field decoded from 32 bits, a
 * length within one block, ...).
 */

/** Words in an identifier that name a quantity which can exceed 2^31. */
const RISKY = /(sector|offset|^off$|^pos$|position|block|blk|^size$|_size$|Size$|size_|count|index|pfn|bytes|lba|capacity|^len$|length|^nr_|_nr$|phys|^addr$|_addr$)/i;
/** Words that look risky but name shift amounts, masks or flag words. */
const SAFE = /(bits$|shift$|_shift|mask$|flags?$|_bits|blkbits|^BLOCK_HASH_SHIFT$)/i;

export interface Finding { file: string; line: number; text: string; operand: string }

/** Blanks comments and string/template literals, keeping offsets and newlines. */
function blank(src: string): string {
  let out = '';
  let i = 0;
  const n = src.length;
  while (i < n) {
    const c = src[i]!;
    const d = src[i + 1];
    if (c === '/' && d === '/') {
      const j = src.indexOf('\n', i);
      const end = j < 0 ? n : j;
      out += src.slice(i, end).replace(/[^\n]/g, ' ');
      i = end;
    } else if (c === '/' && d === '*') {
      const j = src.indexOf('*/', i + 2);
      const end = j < 0 ? n : j + 2;
      out += src.slice(i, end).replace(/[^\n]/g, ' ');
      i = end;
    } else if (c === '"' || c === "'" || c === '`') {
      let j = i + 1;
      while (j < n && src[j] !== c) j += src[j] === '\\' ? 2 : 1;
      out += c + src.slice(i + 1, j).replace(/[^\n]/g, ' ') + (j < n ? c : '');
      i = j + 1;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

const IDENT = /[A-Za-z_$][\w$]*/g;

function groupBackward(s: string, end: number): number {
  // s[end] is ')' or ']': find its opening partner.
  const close = s[end]!;
  const open = close === ')' ? '(' : '[';
  let depth = 0;
  for (let i = end; i >= 0; i--) {
    if (s[i] === close) depth++;
    else if (s[i] === open && --depth === 0) return i;
  }
  return 0;
}

function groupForward(s: string, start: number): number {
  let depth = 0;
  for (let i = start; i < s.length; i++) {
    if (s[i] === '(') depth++;
    else if (s[i] === ')' && --depth === 0) return i;
  }
  return s.length - 1;
}

/** The operand text left of position `at` (exclusive). */
function leftOperand(s: string, at: number): string {
  let i = at - 1;
  while (i >= 0 && s[i] === ' ') i--;
  const end = i;
  for (;;) {
    while (i >= 0 && s[i] === '!') i--;
    if (i >= 0 && (s[i] === ')' || s[i] === ']')) {
      i = groupBackward(s, i) - 1;
      continue;
    }
    while (i >= 0 && /[\w$.]/.test(s[i]!)) i--;
    if (i >= 0 && (s[i] === ')' || s[i] === ']') && /[\w$]/.test(s[i + 1] ?? '')) continue;
    break;
  }
  return s.slice(i + 1, end + 1);
}

/** The operand text right of position `at` (the first character after the operator). */
function rightOperand(s: string, at: number): string {
  let i = at;
  while (i < s.length && s[i] === ' ') i++;
  if (s[i] === '~' || s[i] === '-' || s[i] === '!') i++;
  const start = i;
  if (s[i] === '(') return s.slice(start, groupForward(s, i) + 1);
  while (i < s.length && /[\w$.]/.test(s[i]!)) i++;
  return s.slice(start, i);
}

/** Drops what does not contribute to an operand's value: call arguments and indexes. */
function valueText(operand: string): string {
  let s = operand;
  for (let prev = ''; prev !== s;) {
    prev = s;
    s = s.replace(/([\w$\]])\s*\([^()]*\)/g, '$1').replace(/\[[^\[\]]*\]/g, '');
  }
  return s;
}

/**
 * The first identifier part of `operand` that names a quantity. Only variables and fields
 * count (names starting in lower case): PascalCase names are types and classes (`X | null`),
 * UPPER_CASE names are constants whose values are known.
 */
function risky(operand: string): string | null {
  for (const m of valueText(operand).matchAll(IDENT)) {
    const parts = m[0].split('.');
    for (const p of parts) if (/^[a-z_]/.test(p) && !/^[A-Z0-9_]+$/.test(p) && RISKY.test(p) && !SAFE.test(p)) return p;
  }
  return null;
}

/** Findings in one file's source text. */
export function lintBits32(file: string, src: string): Finding[] {
  const s = blank(src);
  const lines = src.split('\n');
  const lineStarts: number[] = [0];
  for (let i = 0; i < src.length; i++) if (src[i] === '\n') lineStarts.push(i + 1);
  const lineOf = (pos: number): number => {
    let lo = 0, hi = lineStarts.length - 1;
    while (lo < hi) { const mid = Math.ceil((lo + hi) / 2); if (lineStarts[mid]! <= pos) lo = mid; else hi = mid - 1; }
    return lo;
  };
  const out: Finding[] = [];
  const seen = new Set<number>();
  const re = />>>=?|>>=?|<<=?|&&|\|\||&=?|\|=?|\^=?/g;
  for (let m; (m = re.exec(s));) {
    const op = m[0];
    if (op === '&&' || op === '||') continue;
    const at = m.index;
    // `>>` inside generic type arguments (Promise<Array<number>>) is not a shift.
    // (a shift is followed by its count; `>>` closing type arguments is followed by `;`, `=`, `)` ...)
    if (op.startsWith('>>') && !/^\s*[\w$(]/.test(s.slice(at + op.length, at + op.length + 40))) continue;
    const shift = op.startsWith('<<') || op.startsWith('>>');
    const operands = [leftOperand(s, at)];
    if (!shift) operands.push(rightOperand(s, at + op.length));
    // `T | null`, `T | undefined`: a type union, not arithmetic (kernel struct names are lower case).
    if (op === '|' && operands.some((o) => o === 'null' || o === 'undefined')) continue;
    // `Header & (...)`, `A | B`: type operators between type names (PascalCase), not arithmetic.
    if ((op === '&' || op === '|') && /^[A-Z][a-z]\w*$/.test(operands[0]!)) continue;
    for (const o of operands) {
      const word = risky(o);
      if (!word) continue;
      const ln = lineOf(at);
      if (seen.has(ln)) break;
      if (/bits32:/.test(lines[ln]!) || (ln > 0 && /bits32:/.test(lines[ln - 1]!) && /^\s*\/\//.test(lines[ln - 1]!))) break;
      seen.add(ln);
      out.push({ file, line: ln + 1, text: lines[ln]!.trim(), operand: word });
      break;
    }
  }
  return out;
}
