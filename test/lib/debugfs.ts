// Reading what debugfs prints, for tests that look at on-disk bytes.

/**
 * The bytes of a debugfs hex dump (bd, id): lines "OFFS  hhhh hhhh ...  text" with octal
 * offsets; a "*" line stands for repeats of the line before up to the next offset (or, last,
 * up to `size`).
 */
export function parseDebugfsDump(text: string, size: number): Buffer {
  const parts: Buffer[] = [];
  let len = 0;
  let prev: Buffer | null = null;
  for (const line of text.split('\n')) {
    const m = /^([0-7]{4,})\s+((?:[0-9a-f]{4} ?){1,8})/.exec(line);
    if (!m) continue;
    const off = parseInt(m[1]!, 8);
    while (prev && len < off) { parts.push(prev); len += prev.length; }
    const b = Buffer.from(m[2]!.replace(/ /g, ''), 'hex');
    parts.push(b); len += b.length; prev = b;
  }
  while (prev && len < size) { parts.push(prev); len += prev.length; }
  const out = Buffer.concat(parts);
  if (out.length < size) throw new Error(`debugfs dump of ${out.length} bytes, not ${size}`);
  return out.subarray(0, size);
}
