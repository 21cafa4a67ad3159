/** Bounds of the filter language (DESIGN.md, Filter language). */
export const FILTER_LIMITS = {
  defaultLimit: 100,
  maxLimit: 1000,
  maxSkip: 1_000_000_000,
  maxDepth: 8,
  maxValues: 1000,
  maxPatternLength: 256,
} as const;
