/*
 * The tar writer for Node callers (fs2tar): tar-format.ts, the platform-free writer, with
 * its results as Buffers (views, no copy).
 */
import * as f from './tar-format.js';

export { BLOCK, RECORD, alignSparseMap, paxTime, sparseDataSize, type TarEntry, type TarType } from './tar-format.js';

const buf = (b: Uint8Array): Buffer => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

export const sparseMapBlock = (map: readonly [number, number][], realsize: number): Buffer => buf(f.sparseMapBlock(map, realsize));
export const paxRecord = (key: string, value: Uint8Array | string): Buffer => buf(f.paxRecord(key, value));
export const padding = (size: number): Buffer => buf(f.padding(size));
export const trailer = (written: number): Buffer => buf(f.trailer(written));
export const entryHeader = (e: f.TarEntry, opts: { paxName?: (p: Uint8Array) => Uint8Array } = {}): Buffer => buf(f.entryHeader(e, opts));
