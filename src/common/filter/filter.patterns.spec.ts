import { describe, expect, it } from '@jest/globals';
import { ServiceUnavailableException } from '@nestjs/common';
import fc from 'fast-check';
import { findSuperLinearPatterns, readPattern } from './filter.patterns.js';

/** The verdict the service gives a pattern: undefined when accepted, else the refusal's code. */
async function verdict(source: string, flags = ''): Promise<string | undefined> {
  const reading = readPattern(source);
  if (reading.problem) return reading.problem.code;
  const [found] = await findSuperLinearPatterns([{ path: 'p', checkSource: reading.checkSource!, flags }]);
  return found?.code;
}

describe('readPattern: the subset every engine reads alike', () => {
  it.each([
    ['{', 'a lone brace (Java: illegal repetition)'],
    ['a{', 'an unfinished count (Java: illegal repetition)'],
    ['x{,5}', 'a count without minimum (PCRE2 10.43: {0,5}; Java: illegal repetition)'],
    ['a{2}}', 'a lone closing brace'],
    [']', 'a lone closing bracket'],
    ['[^]', 'the negated empty class (JavaScript: anything; engines: unclosed class)'],
    ['[]', 'the empty class (JavaScript: nothing; engines: unclosed class)'],
    ['\\u{41}', 'a code point escape (PCRE2 does not support \\u)'],
    ['\\u0041', 'a \\u escape (PCRE2 does not support \\u)'],
    ['\\x{41}', 'a braced hex escape'],
    ['\\p{L}', 'a property escape (needs the u flag in JavaScript)'],
    ['\\k<n>', 'a named backreference to nothing'],
    ['(?<n>a)', 'a named group (group names differ between engines)'],
    ['(?<=a)b', 'a lookbehind (PCRE2 wants a fixed length)'],
    ['(?i)a', 'inline flags (JavaScript refuses them)'],
    ['(?i:a)', 'a modifier group'],
    ['a++', 'a possessive quantifier (JavaScript refuses it)'],
    ['a**', 'a repeated quantifier'],
    ['(', 'an unclosed group'],
    ['[a', 'an unclosed class'],
    ['\\1', 'a backreference to no group (PCRE2: non-existent subpattern)'],
    ['\\8', 'an escaped digit (PCRE2: non-existent subpattern)'],
    ['\\0', 'a NUL escape (Java: illegal octal escape)'],
    ['a\u0000b', 'a NUL character (BSON and the engines refuse it)'],
    ['\\v', '\\v (a vertical-space class to PCRE2 and Java, one character to JavaScript)'],
    ['\\cA', 'a control escape'],
    ['\\Q', 'Java and PCRE quoting'],
    ['\\G', 'a PCRE and Java anchor'],
    ['\\a', 'an escaped letter (BEL to PCRE2 and Java, "a" to JavaScript)'],
    ['[\\b]', 'a backspace in a class (Java refuses it)'],
    ['[a[b]', 'a [ in a class (a nested class to Java)'],
    ['[[:alpha:]]', 'a POSIX class (PCRE2 only)'],
    ['[a&&b]', '&& in a class (an intersection to Java)'],
    ['[a-b-c]', 'a - between members of a class'],
    ['[\\d-z]', 'a range from a class escape'],
    ['\ud83d', 'a lone surrogate'],
    ['\ud83d\ude00+', 'a quantified character outside the BMP (one unit to the engines, two to JavaScript)'],
    ['[\ud83d\ude00]', 'a character outside the BMP in a class'],
  ])('refuses %j, %s, as invalid_pattern', (source) => {
    expect(readPattern(source).problem?.code).toBe('invalid_pattern');
  });

  it.each([
    '^lamp',
    'Garage door opener - north side',
    '^sen.or',
    '^beta-\\d$',
    'uid-[45]',
    '^UID-[1-3]',
    '^[A-Z]',
    'd[45]$',
    '\\.1$',
    '^Gam+a\\.',
    'a\\/b',
    '[-a]',
    '[a-]',
    '[\\w.:-]',
    '\\bdoor\\b',
    '(?:lamp|light)-\\d+',
    '(?=a)(?!b)\\w',
    '\\x41\\t\\n\\r\\f',
    'caf\u00e9',
    '\ud83d\ude00',
    '[0-9a-f]{24}',
    '^\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}\\.\\d{1,3}$',
    '^a+?b',
    '^c??d{2,3}?',
  ])('accepts %j', async (source) => {
    expect(readPattern(source).problem).toBeUndefined();
    expect(await verdict(source)).toBeUndefined();
  });

  it('accepts only what JavaScript compiles too', () => {
    const alphabet = fc.constantFrom(...'ab.*+?|()[]{}^$\\-,0123456789dwsubxkpv<>=!:&'.split(''));
    fc.assert(
      fc.property(fc.array(alphabet, { maxLength: 12 }), (chars) => {
        const source = chars.join('');
        if (!readPattern(source).problem) expect(() => new RegExp(source)).not.toThrow();
      }),
      { numRuns: 3000 },
    );
  });
});

describe('readPattern: patterns refused before the checker runs', () => {
  it.each([
    ['a backreference', '(a)\\1'],
    ['a count above 100', '(.*){1,32000}[bc]'],
    ['a minimum above 100', 'a{101,}'],
    ['bounded choices that combine in 1000 ways', '\\d{0,9}\\d{0,9}\\d{0,9}!'],
    ['ten optional characters', 'a?a?a?a?a?a?a?a?a?a?aaaaaaaaaa'],
  ])('refuses %s as unsafe_pattern', (_case, source) => {
    expect(readPattern(source).problem?.code).toBe('unsafe_pattern');
  });

  it.each([
    ['a counted group', '(a|a){20}b', '(a|a){20,}b'],
    ['a counted group, lazy', '(?:ab){2,4}?c', '(?:ab){2,}?c'],
    ['a wide count range', 'x{1,100}', 'x{1,}'],
    ['nested counts', '(?:a{1,50}b){2}', '(?:a{1,}b){2,}'],
    ['a narrow count range, kept', '[a-z]{2,6}$', '[a-z]{2,6}$'],
    ['an exact count, kept', '[0-9a-f]{24}', '[0-9a-f]{24}'],
  ])('asks the checker about %s as if unbounded', (_case, source, checked) => {
    expect(readPattern(source).checkSource).toBe(checked);
  });
});

describe('findSuperLinearPatterns (recheck)', () => {
  it.each([
    ['((a+)+)+$', 'the issue: nested quantifiers'],
    ['(.*){1,30}[bc]', 'the issue, with a small count: nested quantifiers'],
    ['(a|a)*$', 'overlapping alternatives'],
    ['(a|a){20}b', 'overlapping alternatives repeated a fixed number of times'],
    ['^(\\w+\\s?)*$', 'the classic word-list pattern'],
    ['\\d{1,100}\\d+!', 'a wide count range next to an overlapping repetition'],
    ['.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*.*!', 'many overlapping .* (a polynomial of degree 24)'],
    ['\\s+$', 'trailing whitespace (quadratic in an unanchored search)'],
    ['lamp.*hall', 'two parts apart (quadratic in an unanchored search)'],
  ])('refuses %j, %s, as unsafe_pattern', async (source) => {
    expect(await verdict(source)).toBe('unsafe_pattern');
  });

  it('judges a pattern with its flags', async () => {
    expect(await verdict('^(a|A)+$', '')).toBeUndefined();
    expect(await verdict('^(a|A)+$', 'i')).toBe('unsafe_pattern');
  });

  it('names the path of each refused pattern and only those', async () => {
    const found = await findSuperLinearPatterns([
      { path: 'where.name.like', checkSource: '^a', flags: '' },
      { path: 'where.sku.regexp', checkSource: '(a|a)*$', flags: '' },
    ]);
    expect(found).toEqual([
      {
        path: 'where.sku.regexp',
        checkSource: '(a|a)*$',
        flags: '',
        code: 'unsafe_pattern',
        message: expect.stringMatching(/exponential/),
      },
    ]);
  });
});

describe('findSuperLinearPatterns under a flood of new patterns', () => {
  it('checks one at a time, answers 503 past 100 waiting, and judges the refused ones afresh later', async () => {
    const flood = Array.from({ length: 150 }, (_, n) => ({ path: `p${n}`, checkSource: `^flood-${n}-x+$`, flags: '' }));
    const results = await Promise.allSettled(flood.map((use) => findSuperLinearPatterns([use])));
    const refused = results.filter((result) => result.status === 'rejected');
    expect(results.filter((result) => result.status === 'fulfilled').length).toBeGreaterThanOrEqual(101);
    expect(refused.length).toBeGreaterThan(0);
    for (const result of refused) expect((result as PromiseRejectedResult).reason).toBeInstanceOf(ServiceUnavailableException);
    // A refusal for lack of room is not a verdict: the same pattern is judged when asked again.
    const index = results.findIndex((result) => result.status === 'rejected');
    await expect(findSuperLinearPatterns([flood[index]])).resolves.toEqual([]);
  });
});
