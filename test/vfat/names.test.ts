import t from 'tap';
import { EEXIST, EINVAL, ENAMETOOLONG, ENOENT } from '../../lib/kernel/include/uapi.js';
import { CASE_LOWER_BASE, CASE_LOWER_EXT } from '../../lib/kernel/fs/fat/layout.js';
import {
  fat_parse_short,
  msdos_name_str,
  nls_cp437,
  str_to_uni,
  uni_to_str,
  utf16s_to_utf8s,
  utf8s_to_utf16s,
  vfat_create_shortname,
  vfat_name_eq,
  vfat_name_key,
  vfat_shortname_flags,
  vfat_valid_longname,
  type VfatShortnameOption,
} from '../../lib/kernel/fs/fat/names.js';

const enc = new TextEncoder();
const dec = new TextDecoder();
const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

t.test('vfat_valid_longname', async (t) => {
  const ok = (name: string, expect: string) =>
    t.test(`accepts ${JSON.stringify(name)}`, async (t) => {
      const r = vfat_valid_longname(enc.encode(name), { utf8: true });
      t.type(r, Uint16Array);
      if (typeof r !== 'number') t.equal(uni_to_str(r), expect);
    });
  const no = (label: string, name: Uint8Array, err: number) =>
    t.test(`refuses ${label}`, async (t) => t.equal(vfat_valid_longname(name, { utf8: true }), err));

  ok('plain.txt', 'plain.txt');
  ok('name with trailing dots...', 'name with trailing dots');
  ok(' leading space', ' leading space');
  ok('[brackets];+=,', '[brackets];+=,');
  ok('café', 'café');
  ok('😀', '\ud83d\ude00');
  ok('x'.repeat(255), 'x'.repeat(255));
  ok('é'.repeat(255), 'é'.repeat(255));
  ok('x'.repeat(255) + '....', 'x'.repeat(255));
  no('only dots', enc.encode('...'), -ENOENT);
  no('trailing space', enc.encode('name '), -EINVAL);
  no('space then dot', enc.encode('name .'), -EINVAL);
  for (const c of '*?<>|":\\/') no(`"${c}"`, enc.encode(`a${c}b`), -EINVAL);
  no('a control character', enc.encode('a\x01b'), -EINVAL);
  no('256 units', enc.encode('x'.repeat(256)), -ENAMETOOLONG);
  no('128 emoji (256 units)', enc.encode('😀'.repeat(128)), -ENAMETOOLONG);
  no('malformed UTF-8', Uint8Array.of(0x61, 0xc3), -EINVAL);
  no('overlong UTF-8', Uint8Array.of(0xc0, 0xaf), -EINVAL);
  no('UTF-8 surrogate', Uint8Array.of(0xed, 0xa0, 0x80), -EINVAL);
  t.test('iocharset iso8859-1 takes bytes as code points', async (t) => {
    t.same(vfat_valid_longname(latin1('caf\xe9'), { utf8: false }), str_to_uni('café'));
  });
});

t.test('UTF-8 <-> UTF-16', async (t) => {
  for (const s of ['a', 'é', '€', '日本語', '😀x', 'ab\u00ffcd']) {
    const u = utf8s_to_utf16s(enc.encode(s));
    t.same(u, str_to_uni(s), `to UTF-16: ${s}`);
    t.equal(dec.decode(utf16s_to_utf8s(str_to_uni(s))), s, `to UTF-8: ${s}`);
  }
  t.equal(dec.decode(utf16s_to_utf8s([0x61, 0xdc00, 0x62])), 'ab', 'lone low surrogate dropped');
  t.equal(dec.decode(utf16s_to_utf8s([0x61, 0xd800, 0x62])), 'ab', 'high surrogate without low dropped');
  t.equal(dec.decode(utf16s_to_utf8s([0x61, 0xd800])), 'a', 'high surrogate at the end ends it');
  t.equal(dec.decode(utf16s_to_utf8s([0x61, 0, 0x62])), 'a', 'stops at 0x0000');
});

type SfnCase = {
  name: string;
  opt: VfatShortnameOption;
  taken?: string[];
  alias: string; /* 11 chars, Latin-1 view of the cp437 bytes */
  short: boolean;
  lcase?: number;
  numtail?: boolean;
  seed?: number;
};

const sfn: SfnCase[] = [
  { name: 'README.TXT', opt: 'mixed', alias: 'README  TXT', short: true },
  { name: 'readme.txt', opt: 'mixed', alias: 'README  TXT', short: false },
  { name: 'readme.txt', opt: 'winnt', alias: 'README  TXT', short: true, lcase: CASE_LOWER_BASE | CASE_LOWER_EXT },
  { name: 'README.txt', opt: 'winnt', alias: 'README  TXT', short: true, lcase: CASE_LOWER_EXT },
  { name: 'readme.TXT', opt: 'winnt', alias: 'README  TXT', short: true, lcase: CASE_LOWER_BASE },
  { name: 'ReadMe.txt', opt: 'winnt', alias: 'README  TXT', short: false },
  { name: 'readme.txt', opt: 'win95', alias: 'README  TXT', short: false },
  { name: 'readme.txt', opt: 'lower', alias: 'README  TXT', short: false },
  { name: 'Makefile', opt: 'mixed', alias: 'MAKEFILE   ', short: false },
  { name: '123', opt: 'mixed', alias: '123        ', short: true },
  { name: 'A long file name.text', opt: 'mixed', alias: 'ALONGF~1TEX', short: false },
  { name: 'file.tar.gz', opt: 'mixed', alias: 'FILETA~1GZ ', short: false },
  { name: '.profile', opt: 'mixed', alias: 'PROFIL~1   ', short: false },
  { name: 'a+b=c.txt', opt: 'mixed', alias: 'A_B_C~1 TXT', short: false },
  { name: 'verylongname.txt', opt: 'mixed', alias: 'VERYLO~1TXT', short: false },
  { name: 'name.html', opt: 'mixed', alias: 'NAME~1  HTM', short: false },
  { name: 'my file.c', opt: 'mixed', alias: 'MYFILE~1C  ', short: false },
  { name: 'café.txt', opt: 'mixed', alias: 'CAF\x90    TXT', short: false },
  { name: '日本.txt', opt: 'mixed', alias: '__~1    TXT', short: false },
  /* cp437 upper-cases σ (0xE5) to Σ (0xE4), so 0xE5 never starts a cp437 alias. */
  { name: 'σ.txt', opt: 'mixed', alias: '\xe4       TXT', short: false },
  { name: 'name.html', opt: 'mixed', taken: ['NAME~1  HTM', 'NAME~2  HTM'], alias: 'NAME~3  HTM', short: false },
  {
    name: '~N tail after 9 collisions',
    opt: 'mixed',
    taken: [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => `~NTAIL~${n}   `),
    seed: 0x12345,
    alias: '~N2345~2   ',
    short: false,
  },
  {
    name: 'longfilename.txt',
    opt: 'mixed',
    taken: [...[1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => `LONGFI~${n}TXT`), 'LOBEEF~1TXT'],
    seed: 0xbeef,
    alias: 'LOBEE4~1TXT',
    short: false,
  },
  { name: 'longfilename.txt', opt: 'mixed', numtail: false, alias: 'LONGFILETXT', short: false },
  { name: 'longfilename.txt', opt: 'mixed', numtail: false, taken: ['LONGFILETXT'], alias: 'LONGFI~1TXT', short: false },
];

t.test('vfat_create_shortname', async (t) => {
  for (const c of sfn) {
    t.test(`${c.name} (${c.opt}${c.taken ? `, ${c.taken.length} taken` : ''})`, async (t) => {
      const taken = new Set(c.taken ?? []);
      const r = vfat_create_shortname(
        str_to_uni(c.name),
        { shortname: vfat_shortname_flags(c.opt), seed: c.seed, numtail: c.numtail },
        (n) => taken.has(String.fromCharCode(...n)),
      );
      if (typeof r === 'number') return t.fail(`error ${r}`);
      t.equal(String.fromCharCode(...r.name), c.alias, 'alias');
      t.equal(r.isShortname, c.short, 'needs no long name');
      t.equal(r.lcase, c.lcase ?? 0, 'lcase');
    });
  }
  t.equal(vfat_create_shortname(str_to_uni('README.TXT'), { shortname: vfat_shortname_flags('mixed') }, () => true), -EEXIST, 'existing 8.3 name');
  t.equal(vfat_create_shortname(str_to_uni('. .'), { shortname: vfat_shortname_flags('mixed') }, () => false), -EINVAL, 'nothing left for the alias');
});

t.test('fat_parse_short: display per shortname=', async (t) => {
  const rows: [string, number, VfatShortnameOption, string][] = [
    ['README  TXT', 0x18, 'mixed', 'readme.txt'],
    ['README  TXT', 0x08, 'winnt', 'readme.TXT'],
    ['README  TXT', 0x18, 'win95', 'README.TXT'],
    ['README  TXT', 0x00, 'lower', 'readme.txt'],
    ['README  TXT', 0x00, 'mixed', 'README.TXT'],
    ['MAKEFILE   ', 0x00, 'mixed', 'MAKEFILE'],
    ['A B     C  ', 0x00, 'mixed', 'A B.C'],
    ['.          ', 0x00, 'mixed', '.'],
    ['..         ', 0x00, 'mixed', '..'],
    ['\x05       TXT', 0x00, 'mixed', 'σ.TXT'],
    ['\xe4       TXT', 0x08, 'mixed', 'σ.TXT'],
    ['CAF\x90    TXT', 0x18, 'mixed', 'café.txt'],
    ['CAF\x90    TXT', 0x00, 'mixed', 'CAFÉ.TXT'],
  ];
  for (const [raw, lcase, opt, shown] of rows) {
    t.equal(uni_to_str(fat_parse_short(latin1(raw), lcase, vfat_shortname_flags(opt))), shown, `${JSON.stringify(raw)} lcase ${lcase} ${opt}`);
  }
  t.equal(fat_parse_short(new Uint8Array(11), 0, vfat_shortname_flags('mixed')).length, 0, 'name[0] = 0: no name');
  t.equal(msdos_name_str(latin1('FOO     BAR')), 'FOO.BAR');
});

t.test('cp437 case tables', async (t) => {
  t.equal(nls_cp437.toupper(0x82), 0x90, 'é -> É');
  t.equal(nls_cp437.toupper(0x85), 0x85, 'à has no capital in cp437');
  t.equal(nls_cp437.toupper(0xe1), 0xe1, 'ß stays');
  t.equal(nls_cp437.tolower(0xe4), 0xe5, 'Σ -> σ');
  t.equal(nls_cp437.char2uni(0xff), 0xa0);
  t.equal(nls_cp437.uni2char(0x20ac), -1, 'no €');
});

t.test('case-insensitive comparison', async (t) => {
  const eq = (a: string, b: string, fold: 'simple' | 'ascii' = 'simple') => vfat_name_eq(str_to_uni(a), str_to_uni(b), fold);
  t.ok(eq('Readme.TXT', 'README.txt'), 'ASCII');
  t.ok(eq('name...', 'NAME'), 'trailing dots ignored');
  t.ok(eq('École', 'éCOLE'), 'Latin-1');
  t.ok(eq('Ωμέγα', 'ΩΜΈΓΑ'), 'Greek');
  t.ok(eq('Привет', 'пРИВЕТ'), 'Cyrillic');
  t.notOk(eq('École', 'éCOLE', 'ascii'), 'ascii folding leaves é alone');
  t.notOk(eq('a', 'ab'), 'length');
  t.notOk(eq('straße', 'STRASSE'), 'no full case folding');
  t.notOk(vfat_name_eq(str_to_uni('a'), str_to_uni('A'), 'simple', true), 'check=strict');
  t.equal(vfat_name_key(str_to_uni('Abc..')), vfat_name_key(str_to_uni('aBC')), 'keys agree');
});
