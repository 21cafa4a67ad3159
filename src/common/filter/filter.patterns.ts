import { type AST, RegExpParser, RegExpSyntaxError } from '@eslint-community/regexpp';
import { serviceUnavailable } from '../errors.js';
import { FILTER_LIMITS } from './filter.limits.js';

/**
 * Patterns (`like`, `nlike`, `ilike`, `nilike`, `regexp`) run on the database engine: PCRE2 on
 * MongoDB and DocumentDB, java.util.regex on mongo-java-server. Two things are checked here,
 * before a query is built (DESIGN.md, Filter language):
 *
 * - `invalid_pattern`: the pattern must lie in a subset that JavaScript (without the `u` flag,
 *   Annex B off), PCRE2 and Java all read, and read alike. Annex B is what lets JavaScript take
 *   `{`, `a{`, `x{,5}` or `]` as literals, which Java refuses and PCRE2 reads as quantifiers;
 *   the rest is refused construct by construct below.
 * - `unsafe_pattern`: matching time must not grow faster than the text. Backreferences and
 *   large repetition counts are refused outright; the rest is asked of recheck, a ReDoS checker
 *   that proves a pattern linear or finds the super-linear (exponential or polynomial) case.
 */

export type PatternProblemCode = 'invalid_pattern' | 'unsafe_pattern';

export interface PatternProblem {
  code: PatternProblemCode;
  message: string;
}

export interface PatternReading {
  problem?: PatternProblem;
  /**
   * What recheck is asked about: the pattern with every counted repetition of a group, and
   * every wide count range, made unbounded. recheck judges growth with the length of the text,
   * so `(a|a){20}b` or `\d{1,100}\d+!` look linear to it although they backtrack 2^20 or 100
   * times over; unbounded, they show up as the exponential or polynomial they are in practice.
   */
  checkSource?: string;
}

const parser = new RegExpParser({ ecmaVersion: 2022, strict: true });

/** `\t \n \r \f`, `\xHH` and a backslash before ASCII punctuation mean the same in all three. */
const PORTABLE_ESCAPE = /^\\(?:[tnrf]|x[0-9A-Fa-f]{2}|[ !"#$%&'()*+,\-./:;<=>?@[\\\]^`{|}~])$/;

const invalid = (message: string): PatternReading => ({ problem: { code: 'invalid_pattern', message } });
const unsafe = (message: string): PatternReading => ({ problem: { code: 'unsafe_pattern', message } });

/** Reads a pattern (without its `/.../` delimiters) and says what is wrong with it, if anything. */
export function readPattern(source: string): PatternReading {
  let pattern: AST.Pattern;
  try {
    pattern = parser.parsePattern(source, 0, source.length, { unicode: false, unicodeSets: false });
  } catch (error) {
    if (!(error instanceof RegExpSyntaxError)) throw error;
    const reason = /: ([^:]+)$/.exec(error.message)?.[1] ?? error.message;
    return invalid(
      `is not a regular expression every engine reads alike (${reason.toLowerCase()}); escape {, }, [, ] and ( ) with \\ to match them as text`,
    );
  }
  const walker = new PatternWalker();
  walker.visitAlternatives(pattern.alternatives);
  if (walker.problem) return { problem: walker.problem };
  if (walker.choices > FILTER_LIMITS.maxPatternChoices) {
    return unsafe(
      `combines optional and counted parts in ${walker.choices} ways (at most ${FILTER_LIMITS.maxPatternChoices}), which the engine may try one by one`,
    );
  }
  return { checkSource: unboundCounts(source, walker.unbounded) };
}

class PatternWalker {
  problem?: PatternProblem;
  /** How many ways the bounded repetitions can be chosen: what backtracking may try at one place. */
  choices = 1;
  /** Quantifiers recheck should see as unbounded (see PatternReading.checkSource). */
  readonly unbounded: AST.Quantifier[] = [];

  private fail(code: PatternProblemCode, message: string): void {
    this.problem ??= { code, message };
  }

  visitAlternatives(alternatives: AST.Alternative[]): void {
    for (const alternative of alternatives) this.visitElements(alternative.elements);
  }

  private visitElements(elements: AST.Element[]): void {
    elements.forEach((element, index) => {
      this.visit(element);
      // A character outside the Basic Multilingual Plane is two code units to JavaScript and one
      // character to PCRE2 and Java; only a plain, unquantified pair means the same to all three.
      // A quantified low surrogate is reported by visitQuantifier.
      const low = (next?: AST.Element) => (next?.type === 'Quantifier' ? next.element : next);
      if (element.type === 'Character' && isHighSurrogate(element.value)) {
        const next = low(elements[index + 1]);
        if (!(next?.type === 'Character' && isLowSurrogate(next.value))) this.fail('invalid_pattern', 'holds a lone surrogate');
      }
      if (element.type === 'Character' && isLowSurrogate(element.value)) {
        const previous = elements[index - 1];
        if (!(previous?.type === 'Character' && isHighSurrogate(previous.value))) this.fail('invalid_pattern', 'holds a lone surrogate');
      }
    });
  }

  private visit(node: AST.Element): void {
    switch (node.type) {
      case 'CapturingGroup':
        if (node.name !== null) this.fail('invalid_pattern', 'named groups are not supported; use (...) or (?:...)');
        this.visitAlternatives(node.alternatives);
        return;
      case 'Group':
        this.visitAlternatives(node.alternatives);
        return;
      case 'Assertion':
        if (node.kind === 'lookbehind') this.fail('invalid_pattern', 'lookbehind (?<=...) and (?<!...) are not supported');
        else if (node.kind === 'lookahead') this.visitAlternatives(node.alternatives);
        return;
      case 'Quantifier':
        this.visitQuantifier(node);
        return;
      case 'Backreference':
        this.fail('unsafe_pattern', 'uses a backreference, whose matching time can grow exponentially with the text');
        return;
      case 'CharacterClass':
        this.visitClass(node);
        return;
      case 'Character':
        this.visitCharacter(node, false);
        return;
      case 'CharacterSet':
        // `.`, \d, \D, \w, \W, \s, \S: \p{...} does not parse without the u flag.
        return;
      default:
        this.fail('invalid_pattern', `"${(node as AST.Node).raw}" is not supported`);
    }
  }

  private visitQuantifier(node: AST.Quantifier): void {
    const { min, max, element } = node;
    const limit = FILTER_LIMITS.maxPatternRepeat;
    if (min > limit || (max !== Infinity && max > limit)) {
      this.fail('unsafe_pattern', `repeats ${max === Infinity ? min : max} times; repetition counts above ${limit} are refused`);
    }
    if (element.type === 'Character' && (isHighSurrogate(element.value) || isLowSurrogate(element.value))) {
      this.fail(
        'invalid_pattern',
        'repeats a character outside the Basic Multilingual Plane, which the engines count differently; wrap it in (?:...)',
      );
    }
    const repeatsGroup = element.type === 'Group' || element.type === 'CapturingGroup';
    if (max !== Infinity && ((repeatsGroup && max > 1) || max - min > FILTER_LIMITS.maxPatternBoundedSpan)) {
      this.unbounded.push(node);
    } else if (max !== Infinity) {
      this.choices = Math.min(this.choices * (max - min + 1), Number.MAX_SAFE_INTEGER);
    }
    this.visit(element);
  }

  private visitClass(node: AST.CharacterClass): void {
    if (node.unicodeSets || node.elements.length === 0) {
      // JavaScript reads [] as "nothing" and [^] as "anything"; PCRE2 and Java read the ] as a
      // member and look for a closing one further on.
      this.fail('invalid_pattern', `the empty class ${node.raw} is read differently by each engine`);
      return;
    }
    node.elements.forEach((element, index) => {
      const last = index === node.elements.length - 1;
      if (element.type === 'Character') {
        this.visitCharacter(element, true);
        // Java reads [ in a class as a nested class and && as an intersection; a bare - between
        // members is a range to some readers and a literal to others.
        if (element.raw === '[') this.fail('invalid_pattern', 'an unescaped [ inside a class is a nested class to Java; write \\[');
        if (element.raw === '&' && node.elements[index + 1]?.raw === '&') {
          this.fail('invalid_pattern', '&& inside a class is an intersection to Java; write \\&\\&');
        }
        if (element.raw === '-' && index > 0 && !last)
          this.fail('invalid_pattern', 'put a literal - first or last in a class, or write \\-');
      } else if (element.type === 'CharacterClassRange') {
        this.visitCharacter(element.min, true);
        this.visitCharacter(element.max, true);
      }
    });
  }

  private visitCharacter(node: AST.Character, inClass: boolean): void {
    if (node.value === 0) {
      this.fail('invalid_pattern', 'holds a NUL character, which the engines refuse');
      return;
    }
    if (inClass && (isHighSurrogate(node.value) || isLowSurrogate(node.value))) {
      this.fail('invalid_pattern', 'holds a character outside the Basic Multilingual Plane in a class, which the engines read differently');
      return;
    }
    if (!node.raw.startsWith('\\')) return;
    // \b in a class is a backspace to JavaScript and PCRE2 and an error to Java; \v, \cX, \0 and
    // \uHHHH are each refused or read differently by one of the engines.
    if (!PORTABLE_ESCAPE.test(node.raw)) {
      this.fail(
        'invalid_pattern',
        `the escape ${node.raw} is not read alike by every engine; use \\t \\n \\r \\f \\xHH, \\d \\w \\s (and capitals), \\b, or \\ before punctuation`,
      );
    }
  }
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

/** The source with each given quantifier's count rewritten as `{min,}`. */
function unboundCounts(source: string, quantifiers: AST.Quantifier[]): string {
  let result = source;
  // From the end backwards: a rewrite then never moves text that a later one still points at
  // (an outer quantifier's count comes after the counts nested in its group).
  for (const quantifier of [...quantifiers].sort((a, b) => b.end - a.end)) {
    const lazy = quantifier.greedy ? '' : '?';
    result = `${result.slice(0, quantifier.element.end)}{${quantifier.min},}${lazy}${result.slice(quantifier.end)}`;
  }
  return result;
}

export interface PatternUse {
  /** Where it was given, e.g. `filter.where.name.like`. */
  path: string;
  checkSource: string;
  /** JavaScript flags among i, m, s. */
  flags: string;
}

/** Verdicts by flags and source: each distinct pattern is analysed once. */
const verdicts = new Map<string, Promise<string | undefined>>();

/**
 * Asks recheck about each pattern; resolves with the problems found, by path. A pattern that
 * cannot be judged in time is refused as unsafe: the check fails closed.
 */
export async function findSuperLinearPatterns(uses: PatternUse[]): Promise<Array<PatternUse & PatternProblem>> {
  const found = await Promise.all(
    uses.map(async (use) => {
      const message = await verdict(use.checkSource, use.flags);
      return message === undefined ? undefined : { ...use, code: 'unsafe_pattern' as const, message };
    }),
  );
  return found.filter((problem) => problem !== undefined);
}

let running = 0;
const waiting: Array<() => void> = [];

/**
 * One check at a time: the checker then takes at most one core, and a check's time limit runs
 * from its own start, so a burst of patterns waits its turn instead of timing itself out.
 */
async function oneAtATime<T>(task: () => Promise<T>): Promise<T> {
  if (running > 0) {
    if (waiting.length >= FILTER_LIMITS.patternCheckQueue) {
      throw serviceUnavailable('Too many patterns are waiting to be checked; try again shortly');
    }
    await new Promise<void>((resolve) => waiting.push(resolve));
  }
  running += 1;
  try {
    return await task();
  } finally {
    running -= 1;
    waiting.shift()?.();
  }
}

function verdict(source: string, flags: string): Promise<string | undefined> {
  const key = `${flags}/${source}`;
  const cached = verdicts.get(key);
  if (cached) {
    // Map order is insertion order: re-inserting keeps recently used verdicts from eviction.
    verdicts.delete(key);
    verdicts.set(key, cached);
    return cached;
  }
  const pending = oneAtATime(() => analyse(source, flags));
  verdicts.set(key, pending);
  if (verdicts.size > FILTER_LIMITS.patternVerdictCache) verdicts.delete(verdicts.keys().next().value!);
  // A timeout may be the machine being busy rather than the pattern, and a full queue says
  // nothing about it: ask again next time.
  pending.then(
    (message) => message === TIMED_OUT && verdicts.delete(key),
    () => verdicts.delete(key),
  );
  return pending;
}

/**
 * recheck (its Scala.js checker, about 37 MB of memory once loaded) is loaded by the first
 * pattern that needs checking: most instances never see a like/regexp filter and need not hold it.
 */
let recheck: Promise<typeof import('recheck')> | undefined;

const TIMED_OUT = 'could not be shown to match in linear time within the time allowed for the check; simplify it';

async function analyse(source: string, flags: string): Promise<string | undefined> {
  // Before the clock starts: loading the checker is not the pattern's time.
  const { check } = await (recheck ??= import('recheck'));
  const timeoutMs = FILTER_LIMITS.patternCheckTimeoutMs;
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  // recheck's own timeout does not count the time a check waits in its queue; this one does.
  const expired = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => {
      abort.abort();
      resolve(undefined);
    }, timeoutMs + 1000);
  });
  try {
    // The automaton checker proves safety or finds the attack; the fuzzing one only samples.
    const diagnostics = await Promise.race([
      check(source, flags, { checker: 'automaton', timeout: timeoutMs, signal: abort.signal }),
      expired,
    ]);
    if (diagnostics === undefined || diagnostics.status === 'unknown') return TIMED_OUT;
    if (diagnostics.status === 'safe') return undefined;
    const { complexity } = diagnostics;
    return complexity.type === 'exponential'
      ? 'has nested or overlapping repetitions whose matching time can grow exponentially with the text'
      : `has overlapping repetitions whose matching time can grow with the text to the power ${complexity.degree}; anchor it with ^ or make the repeated parts exclusive`;
  } finally {
    clearTimeout(timer);
  }
}
