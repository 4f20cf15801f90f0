// A spec for test_runner.test.ts (not matched by .mocharc.json's spec): each
// test passes, leaving a rejection no code handles whose reason is hard to
// show (the watcher of process.emit threw on such reasons, and the rejection
// was lost and mocha confused). Not a revoked proxy: mocha's own listener
// throws on one, with or without the watcher.
import { setTimeout as sleep } from 'node:timers/promises';

const reasons: Record<string, () => unknown> = {
  'an object of no prototype': () => Object.create(null),
  'an object whose toString throws': () => ({
    toString(): string {
      throw new Error('toString throws');
    },
  }),
  'an Error whose stack getter throws': () => {
    const error = new Error('x');
    Object.defineProperty(error, 'stack', {
      get(): never {
        throw new Error('the stack getter threw');
      },
    });
    return error;
  },
};

describe('runner fixture: rejections of odd reasons never handled', () => {
  for (const [name, make] of Object.entries(reasons)) {
    it(`passes, leaving a rejection with ${name}`, async () => {
      void Promise.reject(make());
      await sleep(20);
    });
  }
});
