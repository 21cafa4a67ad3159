import { HttpException } from '@nestjs/common';

export interface RuleProblem {
  /** Which of the given keys, when the problem is one key's. */
  readonly index?: number;
  readonly code: string;
  readonly reason: string;
}

/**
 * A relation rule broken by a request (a malformed, unknown or repeated key: 400/422; more
 * than the size limit: 422). Domain methods do not know which request field carried the keys;
 * the route names it with `@RelationField` (relation-field.interceptor.ts), which turns index 2
 * into `deviceIds[2]` or `ids[2]`. Unnamed, paths read `[2]`.
 */
export class RelationRuleError extends HttpException {
  constructor(
    private readonly code: 400 | 422,
    readonly problems: readonly RuleProblem[],
  ) {
    super(RelationRuleError.body(problems, ''), code);
  }

  /** The same error with its problems located at `field`. */
  at(field: string): HttpException {
    return new HttpException(RelationRuleError.body(this.problems, field), this.code);
  }

  private static body(problems: readonly RuleProblem[], field: string) {
    const details = problems.map(({ index, code, reason }) => {
      const path = index === undefined ? field : `${field}[${index}]`;
      return { path, code, message: path ? `${path}: ${reason}` : reason };
    });
    return { message: details.map((detail) => detail.message).join('; '), details };
  }
}
