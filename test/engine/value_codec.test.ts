// Value encodings: 'msgpack' (structured values), 'json', 'string' (UTF-8)
// and 'binary' (bytes as they are). Each round-trips what it accepts, refuses
// what it cannot store with ERR_INVALID_ARG before anything is written, and
// fails loudly on bytes that are not its encoding.
import assert from 'node:assert/strict';

import { valueCodec, type ValueEncoding } from '../../engine/value_codec.js';
import { assertError, detachedBytes } from './helpers.js';

const ENCODINGS: ValueEncoding[] = ['msgpack', 'json', 'string', 'binary'];

function assertInvalid(run: () => unknown, type: typeof TypeError | typeof RangeError = TypeError): void {
  assert.throws(run, (error: unknown) => {
    assertError(error, type, 'ERR_INVALID_ARG');
    return true;
  });
}

describe("valueCodec('msgpack')", () => {
  const codec = valueCodec('msgpack');

  it('round-trips structured values: nested objects, arrays, numbers, null, booleans, strings', () => {
    const value = { name: 'ringstore', version: 1, ratio: 0.25, big: 2 ** 53 - 1, negative: -7, list: [1, 'two', null, true, { deep: [[]] }], empty: {} };
    assert.deepEqual(codec.decode(codec.encode(value)), value);
    for (const scalar of [0, -0.5, 'é😀', '', true, false, null, 1e300]) assert.deepEqual(codec.decode(codec.encode(scalar)), scalar);
  });

  it('keeps Dates, Sets, typed arrays, Buffers and bigints their types', () => {
    const value = {
      date: new Date(1_700_000_000_123),
      set: new Set([1, 'b']),
      floats: Float64Array.from([1.5, -2]),
      bytes: Uint8Array.from([0, 255]),
      buffer: Buffer.from('raw'),
      bigint: 2n ** 70n,
    };
    const back = codec.decode(codec.encode(value)) as typeof value;
    assert.ok(back.date instanceof Date);
    assert.equal(back.date.getTime(), value.date.getTime());
    assert.ok(back.set instanceof Set);
    assert.deepEqual([...back.set], [1, 'b']);
    assert.ok(back.floats instanceof Float64Array);
    assert.deepEqual([...back.floats], [1.5, -2]);
    assert.ok(back.bytes instanceof Uint8Array);
    assert.deepEqual([...back.bytes], [0, 255]);
    assert.equal(Buffer.from(back.buffer).toString(), 'raw');
    assert.equal(back.bigint, 2n ** 70n);
  });

  it('keeps a Map a Map, with its non-string keys', () => {
    const map = new Map<unknown, unknown>([
      [1, 'one'],
      ['1', 'string one'],
      ['nested', new Map([[true, 'yes']])],
    ]);
    const back = codec.decode(codec.encode(map));
    assert.ok(back instanceof Map, `a Map came back as ${Object.prototype.toString.call(back)}: ${JSON.stringify(back)}`);
    assert.deepEqual(back, map);
  });

  it('writes self-contained values: a fresh codec decodes them (no shared record structures)', () => {
    const values = [{ a: 1, b: 'x' }, { a: 2, b: 'y' }, { a: 3, b: 'z' }];
    const encoded = values.map((value) => codec.encode(value));
    const fresh = valueCodec('msgpack');
    assert.deepEqual(
      encoded.map((bytes) => fresh.decode(bytes)),
      values,
    );
  });

  it('throws on truncated bytes rather than returning a partial value', () => {
    const bytes = codec.encode({ key: 'a long enough string value', list: [1, 2, 3] });
    assert.throws(() => codec.decode(bytes.subarray(0, bytes.length - 3)));
  });
});

describe("valueCodec('json')", () => {
  const codec = valueCodec('json');

  it('round-trips JSON values as UTF-8 JSON text', () => {
    const value = { text: 'é😀', list: [1, null, false], nested: { n: -1.5 } };
    const bytes = codec.encode(value);
    assert.equal(Buffer.from(bytes).toString('utf8'), JSON.stringify(value));
    assert.deepEqual(codec.decode(bytes), value);
  });

  it('stores Dates as their ISO string, as JSON does', () => {
    const date = new Date(1_700_000_000_123);
    assert.equal(codec.decode(codec.encode(date)), date.toISOString());
  });

  it('refuses an invalid Date, which JSON would store as null, at the top or nested', () => {
    assertInvalid(() => codec.encode(new Date(Number.NaN)));
    assertInvalid(() => codec.encode({ when: new Date(Number.NaN) }));
  });

  it('refuses a value JSON cannot represent at all', () => {
    assertInvalid(() => codec.encode(() => 1));
    assertInvalid(() => codec.encode(Symbol('s')));
  });

  it('throws SyntaxError on bytes that are not JSON', () => {
    assert.throws(() => codec.decode(Buffer.from('{"a": ')), SyntaxError);
  });
});

describe("valueCodec('string')", () => {
  const codec = valueCodec('string');

  it('stores a string as its UTF-8 bytes, the empty string as no bytes', () => {
    assert.deepEqual([...codec.encode('é')], [0xc3, 0xa9]);
    assert.equal(codec.encode('').length, 0);
    assert.equal(codec.decode(codec.encode('')), '');
    assert.equal(codec.decode(codec.encode('日本 😀')), '日本 😀');
  });

  it('refuses anything but a string', () => {
    for (const value of [1, null, {}, Buffer.from('x')]) assertInvalid(() => codec.encode(value));
  });
});

describe("valueCodec('binary')", () => {
  const codec = valueCodec('binary');

  it('stores the bytes as they are (a view of the same memory, not a copy) and gives them back as a Buffer', () => {
    const bytes = Uint8Array.from([0, 1, 2, 255]);
    const encoded = codec.encode(bytes);
    assert.equal(encoded.buffer, bytes.buffer);
    assert.equal(encoded.byteOffset, bytes.byteOffset);
    assert.deepEqual([...encoded], [0, 1, 2, 255]);
    const back = codec.decode(bytes);
    assert.ok(Buffer.isBuffer(back));
    assert.deepEqual([...(back as Buffer)], [0, 1, 2, 255]);
  });

  it('refuses anything but a Uint8Array', () => {
    for (const value of ['text', 1, [1, 2], new ArrayBuffer(2)]) assertInvalid(() => codec.encode(value));
  });
});

describe('valueCodec()', () => {
  it('refuses undefined in every encoding (delete removes a key)', () => {
    for (const encoding of ENCODINGS) assertInvalid(() => valueCodec(encoding).encode(undefined));
  });

  it('refuses an unknown encoding with a RangeError coded ERR_INVALID_ARG', () => {
    assertInvalid(() => valueCodec('cbor' as ValueEncoding), RangeError);
  });
});

function circularObject(): object {
  const value: Record<string, unknown> = { a: 1 };
  value.self = { back: value };
  return value;
}

/** Asserts ERR_INVALID_ARG whose message names the encoding and, for an encoder's own failure, keeps it as cause. */
function assertRefused(codec: ReturnType<typeof valueCodec>, value: unknown, what: string, pattern?: RegExp): void {
  assert.throws(
    () => codec.encode(value),
    (error: unknown) => {
      assertError(error, TypeError, 'ERR_INVALID_ARG');
      if (pattern !== undefined) assert.match(error.message, pattern, what);
      return true;
    },
    what,
  );
}

describe('valueCodec(): values an encoding cannot give back are refused (issue 8)', () => {
  describe("'msgpack'", () => {
    const codec = valueCodec('msgpack');

    it('refuses a function wherever it is — msgpackr would store undefined', () => {
      assertRefused(codec, () => 1, 'a function', /function/);
      assertRefused(codec, { handler: { run() {} } }, 'a nested method', /function/);
      assertRefused(codec, [1, () => 2], 'a function in an array', /function/);
      assertRefused(codec, new Map([['k', () => 3]]), 'a function in a Map', /function/);
      assertRefused(codec, class Thing {}, 'a class');
    });

    it('refuses symbols, circular structures, detached and proxied typed arrays, keeping the encoder error as cause', () => {
      for (const [what, value] of [
        ['a symbol', Symbol('s')],
        ['a nested symbol', { s: Symbol('s') }],
        ['a circular object', circularObject()],
        ['a detached Uint8Array inside an object', { bytes: detachedBytes() }],
        ['a detached Uint8Array', detachedBytes()],
        ['a Proxy of a Uint8Array', new Proxy(Uint8Array.from([1]), {})],
      ] as [string, unknown][]) {
        assertRefused(codec, value, what);
        try {
          codec.encode(value);
        } catch (error) {
          assert.ok((error as Error).cause instanceof Error, `${what}: the encoder's error is the cause`);
        }
      }
    });

    it('refuses strings with lone surrogates, short or long, as values, object keys or Map keys — msgpack would store U+FFFD', () => {
      for (const [what, value] of [
        ['a lone high surrogate', '\uD800'],
        ['a lone low surrogate in text', 'abc\uDC00def'],
        ['a long string with one', `${'x'.repeat(5000)}\uD83D`],
        ['a nested one', { list: ['ok', { deep: 'a\uDFFF' }] }],
        ['an object key', { ['\uD800key']: 1 }],
        ['a Map key', new Map([['\uDBFF', 1]])],
        ['in a Set', new Set(['\uD800'])],
      ] as [string, unknown][]) {
        assertRefused(codec, value, what, /lone surrogate/);
      }
    });

    it('accepts what looks like a lone surrogate in bytes but is not one: U+FFFD itself, surrogate pairs, binary data', () => {
      for (const value of ['\uFFFD', { k: 'a\uFFFDb' }, '😀', { ['😀']: '😀' }, Buffer.from([0xef, 0xbf, 0xbd, 0xed, 0xa0, 0x80]), { b: Uint8Array.from([0xed, 0xbf]) }]) {
        assert.deepEqual(codec.decode(codec.encode(value)), value);
      }
    });

    it('keeps undefined inside objects and arrays, and sparse holes as undefined', () => {
      assert.deepEqual(codec.decode(codec.encode({ a: undefined, b: [1, undefined] })), { a: undefined, b: [1, undefined] });
      // eslint-disable-next-line no-sparse-arrays
      assert.deepEqual(codec.decode(codec.encode([1, , 3])), [1, undefined, 3]);
    });

    it('documented changes: a class instance comes back as a plain object of its own enumerable properties, -0 as 0', () => {
      class Point {
        constructor(readonly x: number, readonly y: number) {}
        get length(): number {
          return Math.hypot(this.x, this.y);
        }
      }
      const back = codec.decode(codec.encode(new Point(3, 4)));
      assert.equal(Object.getPrototypeOf(back), Object.prototype);
      assert.deepEqual(back, { x: 3, y: 4 });
      assert.ok(Object.is(codec.decode(codec.encode(-0)), 0));
    });

    it('encodes normally after refusing a value (no state left behind by the aborted encoding)', () => {
      const records = Array.from({ length: 3 }, (_, i) => ({ id: i, name: `n${i}`, tags: ['a'] }));
      assertRefused(codec, { id: 9, name: 'x', tags: [() => 0] }, 'a record with a function');
      assertRefused(codec, circularObject(), 'circular');
      for (const record of records) assert.deepEqual(codec.decode(codec.encode(record)), record);
    });
  });

  describe("'json'", () => {
    const codec = valueCodec('json');

    it('refuses what JSON would drop or turn into null: functions, symbols, non-finite numbers, undefined array elements', () => {
      for (const [what, value] of [
        ['a nested function', { f() {} }],
        ['a function in an array', [() => 1]],
        ['a nested symbol', { s: Symbol('s') }],
        ['NaN', NaN],
        ['Infinity in an object', { n: Infinity }],
        ['-Infinity in an array', [-Infinity]],
        ['undefined in an array', [1, undefined]],
      ] as [string, unknown][]) {
        assertRefused(codec, value, what);
      }
    });

    it('refuses bigints and circular structures, keeping JSON.stringify’s error as cause where it threw', () => {
      assertRefused(codec, 5n, 'a bigint', /bigint/);
      assertRefused(codec, { n: 2n ** 64n }, 'a nested bigint', /bigint/);
      assertRefused(codec, circularObject(), 'a circular object', /circular/);
    });

    it('refuses built-ins whose contents JSON loses: Map, Set, typed arrays (also proxied), RegExp, Error', () => {
      for (const [what, value] of [
        ['a Map', new Map([[1, 2]])],
        ['a Set', new Set([1])],
        ['a Uint8Array', Uint8Array.from([1])],
        ['a Float64Array in an object', { f: Float64Array.from([1.5]) }],
        ['a Proxy of a Uint8Array', new Proxy(Uint8Array.from([1]), {})],
        ['a RegExp', /x/],
        ['an Error', new Error('e')],
      ] as [string, unknown][]) {
        assertRefused(codec, value, what, /JSON would store/);
      }
    });

    it('documented: an undefined property is omitted (it reads back as undefined), toJSON is honoured, lone surrogates round-trip as JSON escapes', () => {
      assert.deepEqual(codec.decode(codec.encode({ a: 1, b: undefined })), { a: 1 });
      assert.deepEqual(codec.decode(codec.encode({ b: Buffer.from('x') })), { b: { type: 'Buffer', data: [0x78] } });
      assert.deepEqual(codec.decode(codec.encode({ ['\uD800']: 'x\uDC00' })), { ['\uD800']: 'x\uDC00' });
    });
  });

  describe("'string' and 'binary'", () => {
    it("'string' refuses a string with a lone surrogate — its UTF-8 would be U+FFFD", () => {
      assertRefused(valueCodec('string'), 'a\uD800', 'a lone surrogate', /lone surrogate/);
      assert.equal(valueCodec('string').decode(valueCodec('string').encode('\uFFFD😀')), '\uFFFD😀');
    });

    it("'binary' refuses detached and proxied Uint8Arrays and other views, and accepts an empty one", () => {
      const codec = valueCodec('binary');
      for (const [what, value] of [
        ['a detached Uint8Array', detachedBytes()],
        ['a Proxy of a Uint8Array', new Proxy(Uint8Array.from([1]), {})],
        ['a DataView', new DataView(new ArrayBuffer(1))],
        ['a Uint8ClampedArray', new Uint8ClampedArray(1)],
        ['an object posing as one', Object.create(Uint8Array.prototype)],
      ] as [string, unknown][]) {
        assertRefused(codec, value, what);
      }
      assert.equal(codec.encode(new Uint8Array(0)).length, 0);
    });
  });
});
