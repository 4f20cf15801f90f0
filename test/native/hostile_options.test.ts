// Options objects and handles that lie or throw, at the IO layer's doors
// (found by a review): each option is read once, so a getter cannot pass the
// checks with one value and open the file with another; a getter or Proxy
// trap that throws is ERR_INVALID_ARG with its error as `cause`; a ring is
// told from an object made from its prototype by a brand check; a buffer's
// length is read through the intrinsic getter.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';

import { BlockStore } from '../../engine/block_store.js';
import { allocAligned, IoUringActor, isAligned, type IoUringActorOptions, type RingFileOptions } from '../../index.js';
import { makeTempDir, rejectsWith, removeTempDir, throwsWith } from './helpers.js';

const FILE_BYTES = 8192;

/** An options object whose every read throws `message`. */
function throwingGetter(name: string, message: string): object {
  return Object.defineProperty({}, name, {
    enumerable: true,
    get() {
      throw new Error(message);
    },
  });
}

function revokedProxy(): object {
  const revocable = Proxy.revocable({}, {});
  revocable.revoke();
  return revocable.proxy;
}

describe('hostile options at the IO layer', () => {
  let dir: string | undefined;
  let ring: IoUringActor | undefined;

  before(() => {
    dir = makeTempDir();
    writeFileSync(`${dir}/file`, Buffer.alloc(FILE_BYTES));
    ring = IoUringActor.start();
  });

  after(async () => {
    await ring?.close();
    removeTempDir(dir);
  });

  it('IoUringActor.start and attach refuse options whose reads throw with ERR_INVALID_ARG, the error as cause', () => {
    const unreadable: [string, unknown][] = [
      ['a throwing getter', throwingGetter('entries', 'boom')],
      ['a revoked Proxy', revokedProxy()],
      ['faultInjection whose keys throw', { faultInjection: new Proxy({}, { ownKeys: () => { throw new Error('own keys'); } }) }],
    ];
    for (const [name, options] of unreadable) {
      const error = throwsWith(() => IoUringActor.start(options as IoUringActorOptions), TypeError, 'ERR_INVALID_ARG');
      assert.ok(error.cause !== undefined, `${name}: the error the read threw is the cause`);
    }
    throwsWith(() => IoUringActor.attach(ring!.id, throwingGetter('directReads', 'boom') as IoUringActorOptions), TypeError, 'ERR_INVALID_ARG');
  });

  it('open() refuses options whose reads throw with ERR_INVALID_ARG', async () => {
    for (const options of [throwingGetter('direct', 'boom'), revokedProxy()]) {
      const error = await rejectsWith(() => ring!.open(`${dir}/file`, options as RingFileOptions), TypeError, 'ERR_INVALID_ARG');
      assert.ok(error.cause !== undefined);
    }
  });

  it('open() reads `direct` once: a getter that changes its answer cannot open O_DIRECT a file that then skips the alignment checks', async () => {
    let reads = 0;
    const options = {
      get direct() {
        reads++;
        return reads === 1;
      },
    };
    const file = await ring!.open(`${dir}/file`, options);
    try {
      assert.equal(reads, 1);
      assert.equal(file.direct, true);
      assert.ok(file.offsetAlignment > 0);
      // Refused by the library, not by the kernel (EINVAL before the fix).
      await rejectsWith(() => file.read(Buffer.alloc(100), 1), RangeError, 'ERR_UNALIGNED_DIRECT_IO');
    } finally {
      await file.close();
    }
  });

  it('IoUringActor.isActor tells a handle from an object made from its prototype, and the store refuses the latter', async () => {
    assert.equal(IoUringActor.isActor(ring), true);
    const fake = Object.create(IoUringActor.prototype) as IoUringActor;
    assert.equal(fake instanceof IoUringActor, true, 'instanceof is fooled');
    for (const value of [fake, new Proxy(ring!, {}), {}, null, 42]) assert.equal(IoUringActor.isActor(value), false);
    await rejectsWith(() => BlockStore.open(`${dir}/store`, { create: true, ring: fake }), TypeError, 'ERR_INVALID_ARG');
    await rejectsWith(() => BlockStore.format(`${dir}/store`, { ring: fake }), TypeError, 'ERR_INVALID_ARG');
  });

  it('isAligned reads a view\'s length through the intrinsic getter, whatever the view says of itself', () => {
    const short = allocAligned(4096).subarray(0, 200);
    Object.defineProperty(short, 'byteLength', { value: 4096 });
    assert.equal(isAligned(short, 4096), false, 'a 200-byte view is not a block');
    const throwing = Object.defineProperty(allocAligned(4096), 'byteLength', {
      get() {
        throw new Error('lies');
      },
    });
    assert.equal(isAligned(throwing, 4096), true);
  });
});
