// Every public method of BlockStore (getMany, count, keys and clear, and
// range's prefix, included), every argument position, against
// hostile arguments (fast-check): wrong types, Symbols, Proxies, detached
// buffers, circular objects, bigints, functions, lone surrogates, huge,
// negative and NaN numbers, null and undefined, nested garbage — beside
// valid ones, checked against a model Map. Every rejection must be an Error
// whose `code` is one of STORE_ERROR_CODES (the errors table of
// docs/store.md), ERR_INVALID_ARG as a TypeError or RangeError and the rest
// as StoreErrors; after every call the store holds exactly what the model
// says, so a rejected call stored nothing. Issue 8 found 362 uncoded
// rejections in 4 700 with such a fuzzer.
//
// Arguments are generated as recipes (plain data, printable and shrinkable)
// and built fresh when a command runs: a Proxy or a detached buffer cannot
// be printed by fast-check, and a circular object must not be shared
// between runs.
//
// RINGSTORE_FUZZ_RUNS (default DEFAULT_RUNS, a few seconds) and
// RINGSTORE_FUZZ_SEED reproduce or extend a run; the seed is in the test's
// title and fast-check prints it, with the shrunk commands, on failure.
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

import fc from 'fast-check';

import { BlockStore } from '../../engine/block_store.js';
import { type KeyRangeOptions, type RangeOptions } from '../../engine/store_options.js';
import { SimulatedDevice } from '../../engine/simulated_device.js';
import { STORE_ERROR_CODES, StoreError } from '../../engine/store_error.js';
import { valueCodec, type ValueEncoding } from '../../engine/value_codec.js';

const SEED = Number(process.env.RINGSTORE_FUZZ_SEED ?? 20261202);
const DEFAULT_RUNS = 100;
const RUNS = Number(process.env.RINGSTORE_FUZZ_RUNS ?? DEFAULT_RUNS);
const COMMANDS_MIN = 6;
const COMMANDS_MAX = 24;
const DEVICE_BYTES = 4 << 20;
const BLOCK_SIZE = 512;
const ENCODINGS: ValueEncoding[] = ['msgpack', 'json', 'string', 'binary'];
/** open() checks the shape of its `device` option (checkBlockDevice, engine/block_device.ts). */
const OPEN_CHECKS_DEVICE = true;

// ---- Recipes: arguments as plain data ----

type Recipe =
  | { kind: 'string'; text: string }
  | { kind: 'lone surrogate'; text: string }
  | { kind: 'long string'; length: number }
  | { kind: 'bytes'; bytes: number[] }
  | { kind: 'number'; value: number }
  | { kind: 'bigint'; value: string }
  | { kind: 'boolean'; value: boolean }
  | { kind: 'null' }
  | { kind: 'undefined' }
  | { kind: 'symbol' }
  | { kind: 'function' }
  | { kind: 'detached bytes' }
  | { kind: 'proxied bytes'; bytes: number[] }
  | { kind: 'proxied object'; entries: [string, Recipe][] }
  | { kind: 'circular' }
  | { kind: 'throwing proxy' }
  | { kind: 'revoked proxy' }
  | { kind: 'sparse array' }
  | { kind: 'lying array'; length: number }
  | { kind: 'null prototype' }
  | { kind: 'date'; time: number }
  | { kind: 'map'; entries: [Recipe, Recipe][] }
  | { kind: 'array'; items: Recipe[] }
  | { kind: 'object'; entries: [string, Recipe][] };

function build(recipe: Recipe): unknown {
  switch (recipe.kind) {
    case 'string':
    case 'lone surrogate':
      return recipe.text;
    case 'long string':
      return 'k'.repeat(recipe.length);
    case 'bytes':
      return Buffer.from(recipe.bytes);
    case 'number':
      return recipe.value;
    case 'bigint':
      return BigInt(recipe.value);
    case 'boolean':
      return recipe.value;
    case 'null':
      return null;
    case 'undefined':
      return undefined;
    case 'symbol':
      return Symbol('hostile');
    case 'function':
      return () => 1;
    case 'detached bytes': {
      const bytes = Uint8Array.from([1, 2, 3]);
      structuredClone(bytes.buffer, { transfer: [bytes.buffer] });
      return bytes;
    }
    case 'proxied bytes':
      return new Proxy(Buffer.from(recipe.bytes), {});
    case 'proxied object':
      return new Proxy(Object.fromEntries(recipe.entries.map(([key, value]) => [key, build(value)])), {});
    case 'circular': {
      const value: Record<string, unknown> = { name: 'loop' };
      value.self = [value];
      return value;
    }
    case 'null prototype':
      return Object.assign(Object.create(null) as object, { a: 1 });
    case 'throwing proxy':
      // Every trap throws: reading any field, its prototype or its keys.
      return new Proxy(
        {},
        Object.fromEntries(
          (['get', 'has', 'ownKeys', 'getPrototypeOf', 'getOwnPropertyDescriptor'] as const).map((trap) => [
            trap,
            () => {
              throw new Error(`the ${trap} trap throws`);
            },
          ]),
        ),
      );
    case 'revoked proxy': {
      // Every operation on it throws, Array.isArray and instanceof included.
      const revocable = Proxy.revocable([], {});
      revocable.revoke();
      return revocable.proxy;
    }
    case 'sparse array': {
      // Length 2^32 − 1 with one element: what `a[4294967294] = x` makes.
      const sparse: unknown[] = [];
      sparse[2 ** 32 - 2] = 'last';
      return sparse;
    }
    case 'lying array':
      return new Proxy(['a'], { get: (target, property) => (property === 'length' ? recipe.length : (Reflect.get(target, property) as unknown)) });
    case 'date':
      return new Date(recipe.time);
    case 'map':
      return new Map(recipe.entries.map(([key, value]) => [build(key), build(value)]));
    case 'array':
      return recipe.items.map(build);
    case 'object':
      return Object.fromEntries(recipe.entries.map(([key, value]) => [key, build(value)]));
  }
}

const loneSurrogate = fc
  .tuple(fc.string({ maxLength: 3 }), fc.integer({ min: 0xd800, max: 0xdfff }), fc.string({ maxLength: 3 }))
  .map(([before, unit, after]): Recipe => ({ kind: 'lone surrogate', text: `${before}${String.fromCharCode(unit)}${after}` }));

/** Hostile leaves: every kind of thing a caller might pass by mistake or malice. */
const hostileLeaf: fc.Arbitrary<Recipe> = fc.oneof(
  fc.constant<Recipe>({ kind: 'throwing proxy' }),
  fc.string({ maxLength: 6 }).map((text): Recipe => ({ kind: 'string', text })),
  loneSurrogate,
  fc.constantFrom(1025, 5000).map((length): Recipe => ({ kind: 'long string', length })),
  fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 4 }).map((bytes): Recipe => ({ kind: 'bytes', bytes })),
  fc
    .oneof(fc.double(), fc.constantFrom(-1, 0, -0, 1.5, 2 ** 53, -(2 ** 53), Number.MAX_VALUE, NaN, Infinity, -Infinity), fc.integer())
    .map((value): Recipe => ({ kind: 'number', value })),
  fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }).map((value): Recipe => ({ kind: 'bigint', value: value.toString() })),
  fc.boolean().map((value): Recipe => ({ kind: 'boolean', value })),
  // The kinds issue 8 found mishandled, weighted up so each shows up often at the top level.
  ...(['null', 'undefined', 'symbol', 'function', 'detached bytes', 'circular', 'null prototype', 'revoked proxy', 'sparse array'] as const).map((kind) => ({
    weight: 2,
    arbitrary: fc.constant({ kind } as Recipe),
  })),
  fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 3 }).map((bytes): Recipe => ({ kind: 'proxied bytes', bytes })),
  fc.integer({ min: -1e13, max: 1e13 }).map((time): Recipe => ({ kind: 'date', time })),
  fc.constantFrom(2 ** 53, 2 ** 32, -1, 1.5).map((length): Recipe => ({ kind: 'lying array', length })),
);

const { hostile } = fc.letrec<{ hostile: Recipe }>((tie) => ({
  hostile: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    { weight: 4, arbitrary: hostileLeaf },
    fc.array(tie('hostile'), { maxLength: 3 }).map((items): Recipe => ({ kind: 'array', items })),
    fc.array(fc.tuple(fc.oneof(fc.string({ maxLength: 4 }), loneSurrogate.map((recipe) => (recipe as { text: string }).text)), tie('hostile')), { maxLength: 3 }).map(
      (entries): Recipe => ({ kind: 'object', entries }),
    ),
    fc.array(fc.tuple(fc.string({ maxLength: 4 }), tie('hostile')), { maxLength: 2 }).map((entries): Recipe => ({ kind: 'proxied object', entries })),
    fc.array(fc.tuple(tie('hostile'), tie('hostile')), { maxLength: 2 }).map((entries): Recipe => ({ kind: 'map', entries })),
  ),
}));

/** A few keys, so calls collide: strings and the same bytes as a Buffer. */
const validKey: fc.Arbitrary<Recipe> = fc.oneof(
  fc.constantFrom('a', 'b', 'c', 'é', '😀').map((text): Recipe => ({ kind: 'string', text })),
  fc.constantFrom([0x62], [0x00, 0xff], [0xc3, 0xa9]).map((bytes): Recipe => ({ kind: 'bytes', bytes: [...bytes] })),
);
const anyKey: fc.Arbitrary<Recipe> = fc.oneof({ weight: 3, arbitrary: validKey }, { weight: 2, arbitrary: hostile });

/** Values every encoding stores (in its own type). */
function validValue(encoding: ValueEncoding): fc.Arbitrary<Recipe> {
  switch (encoding) {
    case 'string':
      return fc.string({ maxLength: 20 }).map((text): Recipe => ({ kind: 'string', text }));
    case 'binary':
      return fc.oneof(
        fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 20 }),
        fc.integer({ min: 300, max: 2000 }).map((length) => Array.from({ length }, (_, i) => i & 0xff)), // extent values
      ).map((bytes): Recipe => ({ kind: 'bytes', bytes }));
    default:
      return fc.oneof(
        fc.string({ maxLength: 20 }).map((text): Recipe => ({ kind: 'string', text })),
        fc.integer().map((value): Recipe => ({ kind: 'number', value })),
        fc.boolean().map((value): Recipe => ({ kind: 'boolean', value })),
        fc.constant<Recipe>({ kind: 'null' }),
        fc.integer({ min: 300, max: 2000 }).map((length): Recipe => ({ kind: 'long string', length })), // extent values
        fc.array(fc.tuple(fc.string({ maxLength: 4 }), fc.integer().map((value): Recipe => ({ kind: 'number', value }))), { maxLength: 3 }).map(
          (entries): Recipe => ({ kind: 'object', entries }),
        ),
      );
  }
}

function anyValue(encoding: ValueEncoding): fc.Arbitrary<Recipe> {
  return fc.oneof({ weight: 2, arbitrary: validValue(encoding) }, { weight: 2, arbitrary: hostileLeaf }, { weight: 1, arbitrary: hostile });
}

/** An optional argument: absent, valid, or hostile. */
function optional<T>(valid: fc.Arbitrary<T>, hostileArbitrary: fc.Arbitrary<Recipe> = hostile): fc.Arbitrary<{ set: false } | { set: true; recipe: Recipe | T }> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constant({ set: false as const }) },
    { weight: 2, arbitrary: valid.map((recipe) => ({ set: true as const, recipe })) },
    { weight: 1, arbitrary: hostileArbitrary.map((recipe) => ({ set: true as const, recipe })) },
  );
}

// ---- Commands ----

type Command =
  | { call: 'get' | 'has' | 'delete' | 'createReadStream'; key: Recipe }
  | { call: 'put'; key: Recipe; value: Recipe }
  | { call: 'batch'; operations: Recipe | { type: Recipe; key: Recipe; value: Recipe | undefined }[] }
  | { call: 'range' | 'count' | 'keys' | 'clear'; options: Recipe | Record<string, { set: false } | { set: true; recipe: unknown }> }
  | { call: 'getMany'; keys: Recipe | Recipe[] }
  | { call: 'createWriteStream'; key: Recipe; chunks: number[][] }
  | { call: 'checkpoint' | 'flush' | 'stats' | 'verifyIntegrity' | 'close' | 'iterate across close' };

const typeRecipe: fc.Arbitrary<Recipe> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('put', 'del').map((text): Recipe => ({ kind: 'string', text })) },
  { weight: 1, arbitrary: hostile },
);

function commandArbitrary(encoding: ValueEncoding): fc.Arbitrary<Command> {
  const value = anyValue(encoding);
  const limit = fc.oneof(fc.constantFrom(0, 1, 2, 100), fc.constant(Infinity)).map((n): Recipe => ({ kind: 'number', value: n }));
  const flag = fc.boolean().map((b): Recipe => ({ kind: 'boolean', value: b }));
  // A prefix may be empty (every key); the multi-byte keys' first bytes select them and their neighbours.
  const prefix = fc.oneof(
    validKey,
    fc.constantFrom<Recipe>({ kind: 'string', text: '' }, { kind: 'bytes', bytes: [] }, { kind: 'bytes', bytes: [0xc3] }, { kind: 'bytes', bytes: [0xf0] }, { kind: 'bytes', bytes: [0x00] }),
  );
  return fc.oneof(
    { weight: 8, arbitrary: fc.record({ call: fc.constantFrom('get' as const, 'has' as const, 'delete' as const, 'createReadStream' as const), key: anyKey }) },
    { weight: 12, arbitrary: fc.record({ call: fc.constant('put' as const), key: anyKey, value }) },
    { weight: 6, arbitrary: fc.record({
      call: fc.constant('batch' as const),
      operations: fc.oneof(
        { weight: 4, arbitrary: fc.array(fc.record({ type: typeRecipe, key: anyKey, value: fc.option(value, { nil: undefined }) }), { maxLength: 4 }) },
        { weight: 1, arbitrary: hostile },
      ),
    }) },
    {
      weight: 6,
      arbitrary: fc.record({
        call: fc.constant('range' as const),
        options: fc.oneof(
          { weight: 5, arbitrary: fc.record({ gt: optional(validKey), gte: optional(validKey), lt: optional(validKey), lte: optional(validKey), prefix: optional(prefix), reverse: optional(flag), limit: optional(limit), values: optional(flag) }) },
          { weight: 1, arbitrary: hostile },
        ),
      }),
    },
    {
      weight: 6,
      arbitrary: fc.record({
        call: fc.constantFrom('count' as const, 'keys' as const, 'clear' as const),
        options: fc.oneof(
          { weight: 5, arbitrary: fc.record({ gt: optional(validKey), gte: optional(validKey), lt: optional(validKey), lte: optional(validKey), prefix: optional(prefix), reverse: optional(flag), limit: optional(limit) }) },
          { weight: 1, arbitrary: hostile },
        ),
      }),
    },
    {
      weight: 4,
      arbitrary: fc.record({
        call: fc.constant('getMany' as const),
        keys: fc.oneof({ weight: 4, arbitrary: fc.array(anyKey, { maxLength: 5 }) }, { weight: 1, arbitrary: hostile }),
      }),
    },
    { weight: 4, arbitrary: fc.record({ call: fc.constant('createWriteStream' as const), key: anyKey, chunks: fc.array(fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 700 }), { maxLength: 3 }) }) },
    { weight: 2, arbitrary: fc.record({ call: fc.constantFrom('checkpoint' as const, 'flush' as const, 'stats' as const, 'verifyIntegrity' as const) }) },
    // Rare, so most runs do a lot on an open store first.
    { weight: 1, arbitrary: fc.record({ call: fc.constantFrom('close' as const, 'iterate across close' as const) }) },
  );
}

// ---- The model ----

interface ModelEntry {
  key: string | Buffer;
  /** What get() must give back. */
  value: unknown;
  /** Written by a write stream: its bytes come back as they are. */
  raw: boolean;
}

/** What the calls did, for the log line. */
const tally = { calls: 0, rejections: 0, codes: new Map<string, number>() };

/** Model key: the key's bytes in hex (so bytewise order is hex order). */
function modelKey(key: unknown): string {
  return (typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key as Uint8Array)).toString('hex');
}

/** The key as range() gives it back: a string if last written as one, else a Buffer. */
function keyAsReturned(key: unknown): string | Buffer {
  return typeof key === 'string' ? key : Buffer.from(key as Uint8Array);
}

/** Every rejection must carry a documented code, in the documented class. */
function assertDocumentedError(error: unknown, what: string): asserts error is Error & { code: string } {
  assert.ok(error instanceof Error, `${what}: rejected with a non-Error ${typeof error}`);
  const code = (error as { code?: unknown }).code;
  assert.ok(
    typeof code === 'string' && (STORE_ERROR_CODES as readonly string[]).includes(code),
    `${what}: rejected with ${error.name} '${error.message}' and code ${String(code)}, not one of the documented codes`,
  );
  if (code === 'ERR_INVALID_ARG') assert.ok(error instanceof TypeError || error instanceof RangeError, `${what}: ERR_INVALID_ARG as a ${error.name}`);
  else assert.ok(error instanceof StoreError, `${what}: ${code} as a ${error.name}, not a StoreError`);
}

/** Runs a call; its error (thrown or rejected) is checked and returned, or undefined if it succeeded. */
async function attempt(what: string, call: () => unknown): Promise<{ ok: true; result: unknown } | { ok: false; error: Error & { code: string } }> {
  tally.calls++;
  try {
    return { ok: true, result: await call() };
  } catch (error) {
    assertDocumentedError(error, what);
    tally.rejections++;
    tally.codes.set(error.code, (tally.codes.get(error.code) ?? 0) + 1);
    return { ok: false, error };
  }
}

/** Whether a recipe builds something the store takes as a key (validKey, or a hostile recipe that happens to be one). */
function isValidKey(key: unknown): boolean {
  if (typeof key === 'string') return key.length > 0 && Buffer.byteLength(key) <= 1024 && (key as string & { isWellFormed(): boolean }).isWellFormed();
  return ArrayBuffer.isView(key) && key instanceof Uint8Array && key.length > 0 && key.length <= 1024;
}

/**
 * Whether the store takes an array argument (getMany's keys, batch's
 * operations) whose every element passes `valid`: an array whose
 * Array.isArray, length and elements read without throwing, whose length an
 * array can have, and whose elements, holes as undefined, all pass. Stops
 * at the first that does not (a sparse array of length 2^32 − 1 at its
 * first hole), as the store does.
 */
function isValidArray(value: unknown, valid: (element: unknown) => boolean): boolean {
  try {
    if (!Array.isArray(value)) return false;
    const length = (value as unknown[]).length;
    if (!Number.isInteger(length) || length < 0 || length > 2 ** 32 - 1) return false;
    for (let index = 0; index < length; index++) if (!valid((value as unknown[])[index])) return false;
    return true;
  } catch {
    return false; // a revoked or throwing Proxy
  }
}

class Run {
  readonly model = new Map<string, ModelEntry>();
  readonly oracle: ReturnType<typeof valueCodec>;
  closed = false;
  constructor(
    readonly encoding: ValueEncoding,
    public device: SimulatedDevice,
    public store: BlockStore,
  ) {
    this.oracle = valueCodec(encoding);
  }

  /**
   * What get() gives back for a value put now: the encoding's round trip
   * (unit-tested on its own). Checked here only where it is not circular:
   * an accepted value never reads back as undefined (a value dropped, as
   * msgpackr did with functions), and plain data reads back equal.
   */
  expected(value: unknown, recipe: Recipe | undefined): unknown {
    const back = this.oracle.decode(this.oracle.encode(value), true);
    assert.notEqual(back, undefined, `an accepted value (${recipe?.kind}) would read back as undefined`);
    if (recipe !== undefined && isPlainRecipe(recipe) && (this.encoding === 'msgpack' || this.encoding === 'json')) {
      assert.deepStrictEqual(back, value, `accepted plain data (${JSON.stringify(recipe).slice(0, 200)}) reads back changed`);
    }
    return back;
  }

  /** Whether the encoding takes `value` (then a put with a valid key must succeed). */
  accepts(value: unknown): boolean {
    try {
      this.oracle.encode(value);
      return true;
    } catch {
      return false;
    }
  }

  async run(command: Command, index: number): Promise<void> {
    const what = `command ${index} (${command.call})`;
    const store = this.store;
    switch (command.call) {
      case 'get':
      case 'has': {
        const key = build(command.key);
        const outcome = await attempt(what, () => (command.call === 'get' ? store.get(key as string) : store.has(key as string)));
        this.expectOutcome(outcome, what, isValidKey(key));
        if (outcome.ok) {
          const entry = this.model.get(modelKey(key));
          if (command.call === 'has') assert.equal(outcome.result, entry !== undefined, what);
          else assert.deepStrictEqual(outcome.result, entry?.value, what);
        }
        return;
      }
      case 'delete': {
        const key = build(command.key);
        const outcome = await attempt(what, () => store.delete(key as string));
        this.expectOutcome(outcome, what, isValidKey(key));
        if (outcome.ok) {
          assert.equal(outcome.result, this.model.has(modelKey(key)), `${what}: existed`);
          this.model.delete(modelKey(key));
        }
        return;
      }
      case 'put': {
        const key = build(command.key);
        const value = build(command.value);
        const valid = isValidKey(key) && this.accepts(value);
        const outcome = await attempt(what, () => store.put(key as string, value));
        this.expectOutcome(outcome, what, valid);
        if (outcome.ok) this.model.set(modelKey(key), { key: keyAsReturned(key), value: this.expected(value, command.value), raw: false });
        else this.expectRefusal(outcome.error, what);
        return;
      }
      case 'batch': {
        const operations = Array.isArray(command.operations)
          ? command.operations.map((operation) => ({ type: build(operation.type), key: build(operation.key), ...(operation.value === undefined ? {} : { value: build(operation.value) }) }))
          : build(command.operations);
        const valid = isValidArray(operations, (operation) => {
          if (operation === null || typeof operation !== 'object') return false;
          const { type, key, value } = operation as { type: unknown; key: unknown; value?: unknown };
          return isValidKey(key) && (type === 'del' || (type === 'put' && this.accepts(value)));
        });
        const outcome = await attempt(what, () => store.batch(operations as never));
        this.expectOutcome(outcome, what, valid);
        if (!outcome.ok) {
          this.expectRefusal(outcome.error, what);
          return;
        }
        for (const [index, operation] of (operations as { type: string; key: unknown; value?: unknown }[]).entries()) {
          const recipe = Array.isArray(command.operations) ? command.operations[index].value : undefined;
          if (operation.type === 'del') this.model.delete(modelKey(operation.key));
          else this.model.set(modelKey(operation.key), { key: keyAsReturned(operation.key), value: this.expected(operation.value, recipe), raw: false });
        }
        return;
      }
      case 'range': {
        const options = isRecipe(command.options)
          ? build(command.options)
          : Object.fromEntries(Object.entries(command.options).flatMap(([name, slot]) => (slot.set ? [[name, build(slot.recipe as Recipe)]] : [])));
        const outcome = await attempt(what, async () => {
          const out: [unknown, unknown][] = [];
          for await (const entry of store.range(options as RangeOptions)) out.push(entry);
          return out;
        });
        if (!outcome.ok) {
          this.expectRefusal(outcome.error, what);
          return;
        }
        assert.deepStrictEqual(outcome.result, this.expectedRange((options ?? {}) as RangeOptions), `${what}: range(${describeOptions(options)})`);
        return;
      }
      case 'count':
      case 'keys':
      case 'clear': {
        const call = command.call;
        const options = isRecipe(command.options)
          ? build(command.options)
          : Object.fromEntries(Object.entries(command.options).flatMap(([name, slot]) => (slot.set ? [[name, build(slot.recipe as Recipe)]] : [])));
        const outcome = await attempt(what, async () => {
          if (call === 'count') return store.count(options as KeyRangeOptions);
          if (call === 'clear') return store.clear(options as KeyRangeOptions);
          const out: unknown[] = [];
          for await (const key of store.keys(options as KeyRangeOptions)) out.push(key);
          return out;
        });
        if (!outcome.ok) {
          this.expectRefusal(outcome.error, what);
          return;
        }
        const expected = this.expectedRange((options ?? {}) as RangeOptions);
        if (call === 'keys') assert.deepStrictEqual(outcome.result, expected.map(([key]) => key), `${what}: keys(${describeOptions(options)})`);
        else assert.equal(outcome.result, expected.length, `${what}: ${call}(${describeOptions(options)})`);
        if (call === 'clear') for (const [key] of expected) this.model.delete(modelKey(key));
        return;
      }
      case 'getMany': {
        const keys = Array.isArray(command.keys) ? command.keys.map(build) : build(command.keys);
        const valid = isValidArray(keys, isValidKey);
        const outcome = await attempt(what, () => store.getMany(keys as string[]));
        this.expectOutcome(outcome, what, valid);
        if (outcome.ok) {
          assert.ok(valid, `${what}: getMany took keys that are not all valid`);
          assert.deepStrictEqual(outcome.result, (keys as unknown[]).map((key) => this.model.get(modelKey(key))?.value), what);
        }
        return;
      }
      case 'createReadStream': {
        const key = build(command.key);
        const outcome = await attempt(what, async () => {
          const parts: Buffer[] = [];
          for await (const part of store.createReadStream(key as string)) parts.push(Buffer.from(part as Uint8Array));
          return Buffer.concat(parts);
        });
        const entry = isValidKey(key) ? this.model.get(modelKey(key)) : undefined;
        if (!outcome.ok) {
          if (!this.closed && isValidKey(key)) assert.equal(outcome.error.code, entry === undefined ? 'ERR_KEY_NOT_FOUND' : 'none', `${what}: ${outcome.error.message}`);
          return;
        }
        assert.ok(!this.closed && entry !== undefined, `${what}: a read stream of a missing key or on a closed store succeeded`);
        if (entry.raw) assert.ok(outcome.result instanceof Buffer && outcome.result.equals(entry.value as Buffer), `${what}: raw bytes`);
        else assert.deepStrictEqual(this.oracle.decode(outcome.result as Buffer, true), entry.value, `${what}: stored bytes`);
        return;
      }
      case 'createWriteStream': {
        const key = build(command.key);
        const bytes = Buffer.concat(command.chunks.map((chunk) => Buffer.from(chunk)));
        const outcome = await attempt(what, () => pipeline(Readable.from(command.chunks.map((chunk) => Buffer.from(chunk))), store.createWriteStream(key as string)));
        this.expectOutcome(outcome, what, isValidKey(key));
        if (outcome.ok) this.model.set(modelKey(key), { key: keyAsReturned(key), value: bytes, raw: true });
        return;
      }
      case 'checkpoint':
      case 'flush':
      case 'verifyIntegrity':
      case 'stats': {
        const call = command.call;
        const outcome = await attempt(what, () => (call === 'stats' ? store.stats() : call === 'flush' ? store.flush() : call === 'checkpoint' ? store.checkpoint() : store.verifyIntegrity()));
        this.expectOutcome(outcome, what, true);
        return;
      }
      case 'close':
        await store.close();
        this.closed = true;
        return;
      case 'iterate across close': {
        // An iteration under way when the store closes: continuing it is a call after close.
        const iterator = store.range()[Symbol.asyncIterator]();
        const first = await attempt(`${what}: first`, () => iterator.next());
        await store.close();
        this.closed = true;
        if (!first.ok || (first.result as IteratorResult<unknown>).done === true) return;
        const next = await attempt(`${what}: after close`, () => iterator.next());
        if (!next.ok) assert.equal(next.error.code, 'ERR_STORE_CLOSED', `${what}: ${next.error.message}`);
        else assert.equal((next.result as IteratorResult<unknown>).done, true, `${what}: an iteration yielded after close()`);
        return;
      }
    }
  }

  /** A call with only valid arguments succeeds on an open store and fails with ERR_STORE_CLOSED on a closed one. */
  expectOutcome(outcome: { ok: boolean; error?: Error & { code: string } }, what: string, argumentsValid: boolean): void {
    if (this.closed) {
      assert.ok(!outcome.ok, `${what}: succeeded after close()`);
      if (argumentsValid) assert.equal(outcome.error!.code, 'ERR_STORE_CLOSED', `${what}: ${outcome.error!.message}`);
      return;
    }
    if (argumentsValid) assert.ok(outcome.ok, `${what}: refused valid arguments: ${outcome.error?.message}`);
  }

  expectRefusal(error: Error & { code: string }, what: string): void {
    if (!this.closed) assert.notEqual(error.code, 'ERR_STORE_CLOSED', `${what}: ERR_STORE_CLOSED on an open store`);
  }

  expectedRange(options: RangeOptions): [unknown, unknown][] {
    const bound = (key: unknown): string | undefined => (key === undefined ? undefined : modelKey(key));
    const low = bound(options.gte) ?? bound(options.gt);
    const lowInclusive = options.gte !== undefined;
    const high = bound(options.lte) ?? bound(options.lt);
    const highInclusive = options.lte !== undefined;
    const prefix = bound(options.prefix);
    let entries = [...this.model.entries()]
      .filter(([key]) => prefix === undefined || key.startsWith(prefix))
      .filter(([key]) => low === undefined || key > low || (lowInclusive && key === low))
      .filter(([key]) => high === undefined || key < high || (highInclusive && key === high))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (options.reverse === true) entries.reverse();
    entries = entries.slice(0, options.limit ?? Infinity);
    return entries.map(([, entry]) => [entry.key, options.values === false ? undefined : entry.value]);
  }

  /** The store holds exactly the model: read through range() (and, once closed, after a reopen). */
  async checkContents(when: string): Promise<void> {
    if (this.closed) return;
    const actual: [unknown, unknown][] = [];
    for await (const entry of this.store.range()) actual.push(entry);
    assert.deepStrictEqual(actual, this.expectedRange({}), `store contents ${when}`);
  }

  async finish(): Promise<void> {
    await this.store.close();
    // Everything acknowledged is durable (sync: true): the crash image loses nothing.
    this.device = this.device.crash({ keepProbability: 0 });
    this.store = await BlockStore.open('fuzz', { device: this.device, encoding: this.encoding });
    this.closed = false;
    try {
      await this.checkContents('after a reopen');
      await this.store.verifyIntegrity();
    } finally {
      await this.store.close();
    }
  }
}

/** Data every structured encoding must give back equal: strings, finite numbers (not -0), booleans, null, arrays and objects of them. */
function isPlainRecipe(recipe: Recipe): boolean {
  switch (recipe.kind) {
    case 'string':
    case 'long string':
    case 'boolean':
    case 'null':
      return true;
    case 'number':
      return Number.isFinite(recipe.value) && !Object.is(recipe.value, -0);
    case 'array':
      return recipe.items.every(isPlainRecipe);
    case 'object':
      return recipe.entries.every(([key, value]) => key !== '__proto__' && isPlainRecipe(value));
    default:
      return false;
  }
}

function isRecipe(value: unknown): value is Recipe {
  return typeof value === 'object' && value !== null && typeof (value as { kind?: unknown }).kind === 'string' && !('gt' in value);
}

function describeOptions(options: unknown): string {
  try {
    return JSON.stringify(options, (_key, value: unknown) => (typeof value === 'bigint' ? `${value}n` : Buffer.isBuffer(value) ? `<${(value as Buffer).toString('hex')}>` : value));
  } catch {
    return typeof options;
  }
}

async function openFuzzStore(encoding: ValueEncoding): Promise<Run> {
  const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
  const store = await BlockStore.open('fuzz', { device, create: true, encoding, blockSize: BLOCK_SIZE, walSizeBytes: 256 << 10, cacheSizeBytes: 64 << 10 });
  return new Run(encoding, device, store);
}

// ---- open()'s options ----

type OpenSlots = Record<string, { set: false } | { set: true; recipe: Recipe }>;

/** open() reads its options itself (not this change's code): a Proxy whose traps throw is left out there. */
const openHostile = hostile.filter((recipe) => !JSON.stringify(recipe).includes('throwing proxy'));

const openOptionsArbitrary: fc.Arbitrary<{ path: Recipe; options: Recipe | OpenSlots }> = fc.record({
  path: fc.oneof({ weight: 3, arbitrary: fc.constant<Recipe>({ kind: 'string', text: 'fuzz' }) }, { weight: 1, arbitrary: openHostile }),
  options: fc.oneof(
    { weight: 5, arbitrary: fc.record({
      create: optional(fc.boolean().map((value): Recipe => ({ kind: 'boolean', value })), openHostile),
      sync: optional(fc.boolean().map((value): Recipe => ({ kind: 'boolean', value })), openHostile),
      readOnly: optional(fc.boolean().map((value): Recipe => ({ kind: 'boolean', value })), openHostile),
      encoding: optional(fc.constantFrom(...ENCODINGS).map((text): Recipe => ({ kind: 'string', text })), openHostile),
      blockSize: optional(fc.constantFrom(512, 1024, 4096).map((value): Recipe => ({ kind: 'number', value })), openHostile),
      sizeBytes: optional(fc.constantFrom(DEVICE_BYTES).map((value): Recipe => ({ kind: 'number', value })), openHostile),
      walSizeBytes: optional(fc.constantFrom(64 << 10, 256 << 10).map((value): Recipe => ({ kind: 'number', value })), openHostile),
      cacheSizeBytes: optional(fc.constantFrom(0, 64 << 10).map((value): Recipe => ({ kind: 'number', value })), openHostile),
      ring: fc.oneof({ weight: 4, arbitrary: fc.constant({ set: false as const }) }, { weight: 1, arbitrary: openHostile.map((recipe) => ({ set: true as const, recipe })) }),
      device: OPEN_CHECKS_DEVICE ? optional(fc.constant<Recipe>({ kind: 'null' })) : fc.constant({ set: false as const }),
    }) },
    { weight: 1, arbitrary: openHostile },
  ),
});

describe('BlockStore with hostile arguments in every position (fast-check, simulated device)', function () {
  this.timeout(600_000);

  it(`rejects only with documented codes and stores nothing on a rejection, in every method (seed ${SEED}, ${RUNS} runs)`, async () => {
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ENCODINGS).chain((encoding) => fc.tuple(fc.constant(encoding), fc.array(commandArbitrary(encoding), { minLength: COMMANDS_MIN, maxLength: COMMANDS_MAX }))),
        async ([encoding, commands]) => {
          const run = await openFuzzStore(encoding);
          try {
            for (const [index, command] of commands.entries()) {
              await run.run(command, index);
              await run.checkContents(`after command ${index} (${command.call})`);
            }
            await run.finish();
          } finally {
            await run.store.close().catch(() => undefined);
          }
        },
      ),
      { seed: SEED, numRuns: RUNS, verbose: 1 },
    );
    const codes = [...tally.codes].map(([code, count]) => `${code} ${count}`).join(', ');
    console.log(`      seed ${SEED}, ${RUNS} runs, ${tally.calls} calls, ${tally.rejections} rejections (${codes}), ${Date.now() - started} ms`);
  });

  it(`open() rejects hostile paths and options only with documented codes (seed ${SEED}, ${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(openOptionsArbitrary, async ({ path, options }) => {
        const device = new SimulatedDevice({ sizeBytes: DEVICE_BYTES });
        const built = isRecipe(options)
          ? build(options)
          : { device, ...Object.fromEntries(Object.entries(options).flatMap(([name, slot]) => (slot.set ? [[name, build(slot.recipe)]] : []))) };
        let opened: BlockStore | undefined;
        try {
          opened = await BlockStore.open(build(path) as string, built as never);
        } catch (error) {
          assertDocumentedError(error, 'open');
        }
        await opened?.close();
      }),
      { seed: SEED, numRuns: RUNS, verbose: 1 },
    );
  });
});
