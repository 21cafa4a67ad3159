/** Bounds of the filter language (DESIGN.md, Filter language). */
export const FILTER_LIMITS = {
  defaultLimit: 100,
  maxLimit: 1000,
  maxSkip: 1_000_000_000,
  /** Levels of objects and arrays below `filter` (or `where`), counted as LoopBack 3's maxDepthOfQuery. */
  maxDepth: 12,
  maxValues: 1000,
  maxPatternLength: 256,
  /** The largest repetition count a pattern may give (`{n}`, `{n,}`, `{n,m}`). */
  maxPatternRepeat: 100,
  /** A count range wider than this is judged as unbounded by the ReDoS check. */
  maxPatternBoundedSpan: 10,
  /** Ways the bounded optional and counted parts of one pattern may combine. */
  maxPatternChoices: 100,
  /** How long the ReDoS check of one pattern may take before the pattern is refused. */
  patternCheckTimeoutMs: 2000,
  /**
   * Patterns one filter may hold. Each distinct one is checked in turn, so without this bound one
   * request could fill the check's queue by itself (a 503 to everyone) instead of getting a 400.
   */
  maxPatterns: 100,
  /** Patterns that may wait for the check, from all requests together; more answer 503. */
  patternCheckQueue: 100,
  patternVerdictCache: 1000,
} as const;
