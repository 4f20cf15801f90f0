// Value encodings: 'msgpack' (structured values), 'json', 'string' (UTF-8)
// and 'binary' (bytes as they are). Each round-trips what it accepts, refuses
// what it cannot store with ERR_INVALID_ARG before anything is written, and
// fails loudly on bytes that are not its encoding.
import assert from 'node:assert/strict';

import { valueCodec, type ValueEncoding } from '../../engine/value_codec.js';
import { assertError } from './helpers.js';

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

  it('stores the bytes as they are and gives them back as a Buffer', () => {
    const bytes = Uint8Array.from([0, 1, 2, 255]);
    assert.equal(codec.encode(bytes), bytes);
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
