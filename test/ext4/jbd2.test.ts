/*
 * jbd2 codecs over real journals: e2fsprogs' j_recover_* test images hold transactions
 * awaiting replay (csum v2 and v3, 32- and 64-bit); every descriptor, tag, revoke and
 * commit checksum must verify. The j_corrupt_* images each break one thing, which the
 * matching check must catch.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import * as J from '../../lib/kernel/fs/jbd2/layout.js';
import * as JC from '../../lib/kernel/fs/jbd2/csum.js';
import { Image, rmrf, scratchDir } from './util.js';
import { E2FSPROGS_FIXTURES, fixturesSkip } from '../lib/fixtures.js';

const FIX = E2FSPROGS_FIXTURES;
const fixSkip = fixturesSkip();
const dir = scratchDir('jbd2');
t.teardown(() => rmrf(dir));

function loadImage(name: string): Image | null {
  const gz = join(FIX, name, 'image.gz'), bz = join(FIX, name, 'image.bz2');
  const out = join(dir, `${name}.img`);
  if (existsSync(gz)) writeFileSync(out, gunzipSync(readFileSync(gz)));
  else if (existsSync(bz)) writeFileSync(out, execFileSync('bzip2', ['-dc', bz], { maxBuffer: 1 << 30 }));
  else return null;
  return new Image(out);
}

interface Report {
  jsb: J.journal_superblock_t; sbCheck: string | null; sbCsum: boolean;
  transactions: number; descriptors: number; tags: number; revokes: number; revoked: number;
  escaped: number; failures: string[];
}

/* Walks the log from s_start as recovery's first pass does, checking everything on the way. */
function walk(im: Image): Report {
  const jino = im.inode(im.sb.s_journal_inum);
  const map = im.blocks(jino);
  const jblock = (n: number): Uint8Array => im.block(map[n]);
  const raw = jblock(0);
  const jsb = J.jbd2_superblock_decode(raw);
  const r: Report = { jsb, sbCheck: J.jbd2_superblock_check(jsb, im.bs, map.length), sbCsum: JC.jbd2_superblock_csum_verify(jsb, raw),
    transactions: 0, descriptors: 0, tags: 0, revokes: 0, revoked: 0, escaped: 0, failures: [] };
  if (r.sbCheck || jsb.s_start === 0) return r;
  const seed = JC.jbd2_csum_seed(jsb);
  let last = jsb.s_maxlen;
  if (J.jbd2_has_feature_fast_commit(jsb)) last -= jsb.s_num_fc_blks || J.JBD2_MIN_FC_BLOCKS;
  const next = (p: number): number => (p + 1 >= last ? jsb.s_first : p + 1);
  let pos = jsb.s_start, seq = jsb.s_sequence;
  for (let guard = 0; guard < jsb.s_maxlen; guard++) {
    const b = jblock(pos);
    const h = J.jbd2_header_decode(b);
    if (h.h_magic !== J.JBD2_MAGIC_NUMBER || h.h_sequence !== seq) break;
    if (h.h_blocktype === J.JBD2_DESCRIPTOR_BLOCK) {
      r.descriptors++;
      if (!JC.jbd2_descriptor_block_csum_verify(jsb, seed, b)) r.failures.push(`descriptor csum @${pos} seq ${seq}`);
      for (const tag of J.jbd2_descriptor_tags(jsb, b)) {
        pos = next(pos);
        r.tags++;
        if (tag.t_flags & J.JBD2_FLAG_ESCAPE) r.escaped++;
        if (!JC.jbd2_block_tag_csum_verify(jsb, seed, tag, seq, jblock(pos))) r.failures.push(`tag csum @${pos} seq ${seq} -> ${tag.blocknr}`);
      }
    } else if (h.h_blocktype === J.JBD2_COMMIT_BLOCK) {
      const c = J.jbd2_commit_decode(b);
      if (!JC.jbd2_commit_block_csum_verify(jsb, seed, b)) r.failures.push(`commit csum @${pos} seq ${seq}`);
      if (c.h_commit_sec < 1e9) r.failures.push(`commit time ${c.h_commit_sec}`);
      r.transactions++;
      seq = (seq + 1) >>> 0;
    } else if (h.h_blocktype === J.JBD2_REVOKE_BLOCK) {
      r.revokes++;
      if (!JC.jbd2_revoke_block_csum_verify(jsb, seed, b)) r.failures.push(`revoke csum @${pos} seq ${seq}`);
      const recs = J.jbd2_revoke_records(jsb, b);
      if (typeof recs === 'string') r.failures.push(recs); else r.revoked += recs.length;
    } else {
      r.failures.push(`unknown block type ${h.h_blocktype} @${pos}`);
      break;
    }
    pos = next(pos);
  }
  return r;
}

for (const name of ['j_recover_csum2_32bit', 'j_recover_csum2_64bit', 'j_recover_csum3_64bit', 'j_recover_fast_commit']) {
  t.test(name, async (t) => {
    const im = loadImage(name);
    if (!im) { if (fixSkip) { t.plan(0, fixSkip); return; } throw new Error(`fixture ${name} missing from ${FIX}`); }
    const r = walk(im);
    t.equal(r.sbCheck, null, 'journal superblock passes the checks');
    t.ok(r.sbCsum, 'journal superblock checksum');
    t.ok(r.transactions > 0, `${r.transactions} committed transactions, ${r.descriptors} descriptors, ${r.tags} tags, ${r.revokes} revoke blocks (${r.revoked} records)`);
    t.same(r.failures, [], 'every checksum on the way verifies');
    if (J.jbd2_journal_has_csum_v2or3(r.jsb)) {
      t.equal(r.jsb.s_checksum_type, J.JBD2_CRC32C_CHKSUM);
      t.equal(J.journal_tag_bytes(r.jsb), J.jbd2_has_feature_csum3(r.jsb) ? 16 : J.jbd2_has_feature_64bit(r.jsb) ? 14 : 10, 'tag size');
    }
    /* round trips */
    const jraw = im.block(im.blocks(im.inode(im.sb.s_journal_inum))[0]).slice(0, 1024);
    const re = jraw.slice();
    J.jbd2_superblock_encode(J.jbd2_superblock_decode(jraw), re);
    t.same(re, jraw, 'journal superblock re-encodes to the same bytes');
    const f = jraw.slice(); f[J.JBD2_SB_OFF.s_start + 3] ^= 1;
    t.equal(JC.jbd2_superblock_csum_verify(r.jsb, f), !J.jbd2_journal_has_csum_v2or3(r.jsb), 'flipped bit: superblock checksum fails');
    JC.jbd2_superblock_csum_set(r.jsb, f);
    t.ok(JC.jbd2_superblock_csum_verify(r.jsb, f), 'set makes it verify again');
  });
}

t.test('descriptor, commit and revoke blocks built from scratch verify', async (t) => {
  for (const incompat of [J.JBD2_FEATURE_INCOMPAT_CSUM_V3 | J.JBD2_FEATURE_INCOMPAT_64BIT, J.JBD2_FEATURE_INCOMPAT_CSUM_V2,
    J.JBD2_FEATURE_INCOMPAT_CSUM_V2 | J.JBD2_FEATURE_INCOMPAT_64BIT, J.JBD2_FEATURE_INCOMPAT_CSUM_V3]) {
    const bs = 4096;
    const sbuf = new Uint8Array(1024);
    const jsb = J.jbd2_superblock_decode(sbuf);
    Object.assign(jsb, { s_header: { h_magic: J.JBD2_MAGIC_NUMBER, h_blocktype: J.JBD2_SUPERBLOCK_V2, h_sequence: 0 },
      s_blocksize: bs, s_maxlen: 4096, s_first: 1, s_feature_incompat: incompat | J.JBD2_FEATURE_INCOMPAT_REVOKE,
      s_checksum_type: J.JBD2_CRC32C_CHKSUM, s_uuid: Uint8Array.from({ length: 16 }, (_, i) => i * 3) });
    J.jbd2_superblock_encode(jsb, sbuf);
    t.equal(J.jbd2_superblock_check(jsb, bs), null);
    const seed = JC.jbd2_csum_seed(jsb);
    const data = [new Uint8Array(bs).fill(1), new Uint8Array(bs).fill(2)];
    const tags: J.journal_block_tag_t[] = [
      { blocknr: J.jbd2_has_feature_64bit(jsb) ? 2 ** 33 + 7 : 7, t_flags: 0, t_checksum: JC.jbd2_block_tag_csum_value(jsb, seed, 42, data[0]), uuid: jsb.s_uuid },
      { blocknr: 9, t_flags: J.JBD2_FLAG_SAME_UUID | J.JBD2_FLAG_LAST_TAG, t_checksum: JC.jbd2_block_tag_csum_value(jsb, seed, 42, data[1]), uuid: null },
    ];
    const d = new Uint8Array(bs);
    J.jbd2_header_encode({ h_magic: J.JBD2_MAGIC_NUMBER, h_blocktype: J.JBD2_DESCRIPTOR_BLOCK, h_sequence: 42 }, d);
    t.ok(J.jbd2_descriptor_tags_encode(jsb, tags, d) > 0);
    JC.jbd2_descriptor_block_csum_set(jsb, seed, d);
    t.ok(JC.jbd2_descriptor_block_csum_verify(jsb, seed, d), `descriptor (incompat ${incompat})`);
    const back = J.jbd2_descriptor_tags(jsb, d);
    t.same(back.map((x) => x.blocknr), tags.map((x) => x.blocknr), 'tag block numbers');
    t.ok(back.every((x, i) => JC.jbd2_block_tag_csum_verify(jsb, seed, x, 42, data[i])), 'tag checksums');
    t.notOk(JC.jbd2_block_tag_csum_verify(jsb, seed, back[0], 43, data[0]), 'sequence is part of the tag checksum');

    const rv = new Uint8Array(bs);
    J.jbd2_header_encode({ h_magic: J.JBD2_MAGIC_NUMBER, h_blocktype: J.JBD2_REVOKE_BLOCK, h_sequence: 42 }, rv);
    const revoked = [5, 2 ** 20, J.jbd2_has_feature_64bit(jsb) ? 2 ** 40 : 6];
    J.jbd2_revoke_records_encode(jsb, revoked, rv);
    JC.jbd2_revoke_block_csum_set(jsb, seed, rv);
    t.ok(JC.jbd2_revoke_block_csum_verify(jsb, seed, rv));
    t.same(J.jbd2_revoke_records(jsb, rv), revoked);

    const c = new Uint8Array(bs);
    J.jbd2_commit_encode({ h_header: { h_magic: J.JBD2_MAGIC_NUMBER, h_blocktype: J.JBD2_COMMIT_BLOCK, h_sequence: 42 },
      h_chksum_type: 0, h_chksum_size: 0, h_chksum: [], h_commit_sec: 2 ** 34 + 1, h_commit_nsec: 5 }, c);
    JC.jbd2_commit_block_csum_set(jsb, seed, c);
    t.ok(JC.jbd2_commit_block_csum_verify(jsb, seed, c));
    const cd = J.jbd2_commit_decode(c);
    t.same([cd.h_commit_sec, cd.h_commit_nsec], [2 ** 34 + 1, 5], 'commit time beyond 2^32');
  }
});

/* What each corrupted fixture breaks, and the check that must notice. */
const corrupt: [string, (r: Report) => boolean, string][] = [
  ['j_corrupt_commit_csum', (r) => r.failures.some((f) => f.startsWith('commit csum')), 'commit checksum fails'],
  ['j_corrupt_descr_csum', (r) => r.failures.some((f) => f.startsWith('descriptor csum')), 'descriptor checksum fails'],
  ['j_corrupt_revoke_csum', (r) => r.failures.some((f) => f.startsWith('revoke csum')), 'revoke checksum fails'],
  ['j_corrupt_journal_block', (r) => r.failures.some((f) => f.startsWith('tag csum')), 'a data block fails its tag checksum'],
  ['j_corrupt_revoke_rcount', (r) => r.failures.some((f) => f.includes('r_count')), 'r_count out of range'],
  ['j_corrupt_sb_csum', (r) => !r.sbCsum, 'journal superblock checksum fails'],
  ['j_corrupt_sb_magic', (r) => r.sbCheck !== null, 'journal superblock check fails'],
];
for (const [name, caught, what] of corrupt) {
  t.test(name, async (t) => {
    const im = loadImage(name);
    if (!im) { if (fixSkip) { t.plan(0, fixSkip); return; } throw new Error(`fixture ${name} missing from ${FIX}`); }
    const r = walk(im);
    t.ok(caught(r), what);
    t.comment(`sbCheck=${r.sbCheck} sbCsum=${r.sbCsum} tx=${r.transactions} failures=${JSON.stringify(r.failures)}`);
  });
}

t.test('crc32_be (v1 COMPAT_CHECKSUM commits)', async (t) => {
  const d = new TextEncoder().encode('123456789');
  t.equal((JC.crc32_be(0xffffffff, d) ^ 0xffffffff) >>> 0, 0xfc891918, 'CRC-32/BZIP2 check value');
  t.equal(JC.crc32_be(JC.crc32_be(0xffffffff, d, 0, 3), d, 3), JC.crc32_be(0xffffffff, d), 'chaining');
});
