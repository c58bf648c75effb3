/*
 * Names inside the kernel are byte strings: JS strings whose every char code is one byte
 * (0..255). On-disk names are bytes and must round-trip exactly, whatever their encoding,
 * and NAME_MAX is a byte count; a JS string per byte gives cheap hashing (Map keys) and
 * comparison. The system-call boundary converts: user strings are UTF-8 encoded into
 * bytes, names handed back are decoded from UTF-8.
 */
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: false });

export function bytesToBstr(b: Uint8Array, start = 0, end = b.length): string {
  let s = '';
  for (let i = start; i < end; i += 4096)
    s += String.fromCharCode.apply(null, b.subarray(i, Math.min(end, i + 4096)) as unknown as number[]);
  return s;
}
export function bstrToBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
/** A user string (UTF-16 JS string) to a kernel byte string. */
export function utf8ToBstr(s: string): string {
  // Fast path: pure ASCII is already a byte string.
  if (/^[\x00-\x7f]*$/.test(s)) return s;
  return bytesToBstr(enc.encode(s));
}
/** A kernel byte string to a user string (invalid UTF-8 becomes U+FFFD). */
export function bstrToUtf8(s: string): string {
  if (/^[\x00-\x7f]*$/.test(s)) return s;
  return dec.decode(bstrToBytes(s));
}
export function utf8Bytes(s: string): Uint8Array { return enc.encode(s); }
export function decodeUtf8(b: Uint8Array): string { return dec.decode(b); }
