import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { findSuperLinearPatterns, readPattern } from '../../src/common/filter/filter.patterns.js';
import { filterAnswer } from '../support/http.js';
import { createTestApp, type TestApp } from '../support/test-app.js';

/** Patterns on the run's engine, straight through the model: what it refuses, and what it must accept. */
describe('Patterns an engine refuses (bug: 500)', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await createTestApp();
  });
  afterAll(() => t.close());

  it("maps the engine's own error for a pattern it refuses to 400 invalid_pattern, whichever engine", async () => {
    for (const pattern of ['[]', '\\u{41}']) {
      const error = await t.devices
        .countDocuments({ myId: { $regex: pattern } })
        .exec()
        .then(
          () => undefined,
          (caught: unknown) => caught,
        );
      expect(error).toBeInstanceOf(Error);
      const answer = filterAnswer(error, { where: '{}' });
      expect(answer).toEqual({
        status: 400,
        body: {
          statusCode: 400,
          error: 'Bad Request',
          message: expect.stringContaining('where: '),
          details: [expect.objectContaining({ path: 'where', code: 'invalid_pattern' })],
        },
      });
    }
  });

  it('sends the engine only patterns it accepts: every pattern the parser passes compiles on the engine', async () => {
    const alphabet = fc.constantFrom(...'ab.*+?|()[]{}^$\\-,019dwsbx:'.split(''));
    let checked = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(alphabet, { minLength: 1, maxLength: 10 }), async (chars) => {
        const source = chars.join('');
        const reading = readPattern(source);
        if (reading.problem) return;
        if ((await findSuperLinearPatterns([{ path: 'p', checkSource: reading.checkSource!, flags: '' }])).length > 0) return;
        checked += 1;
        await t.devices.countDocuments({ myId: { $regex: source, $options: 'i' } }).exec();
        await t.devices.countDocuments({ myId: { $not: new RegExp(source, 's') } }).exec();
      }),
      { numRuns: 300 },
    );
    console.log(`${checked} generated patterns passed the parser and compiled on the engine`);
    expect(checked).toBeGreaterThan(20);
  });
});
