// allocAligned(), allocAlignedInHeap() and isAligned(): the memory direct IO needs.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';

import { allocAligned, DEFAULT_ALIGNMENT, isAligned } from '../../index.js';
import { addon, constants } from '../../native/addon.js';
import { allocAlignedInHeap, HEAP_BUFFER_BYTES_MAX } from '../../native/aligned_buffer.js';
import { assertAllZero, skipBecause, throwsWith } from './helpers.js';

describe('allocAligned()', () => {
  it('returns a Buffer of the requested size whose address is a multiple of the default alignment', () => {
    const buffer = allocAligned(3 * 4096);
    assert.ok(Buffer.isBuffer(buffer));
    assert.equal(buffer.byteLength, 3 * 4096);
    assert.equal(DEFAULT_ALIGNMENT, 4096);
    assert.equal(addon.bufferAddressModulo(buffer, DEFAULT_ALIGNMENT), 0);
    assert.ok(isAligned(buffer, DEFAULT_ALIGNMENT));
  });

  it('aligns the address to every power of two up to ALIGNMENT_MAX', () => {
    for (let alignment = 1; alignment <= constants.ALIGNMENT_MAX; alignment *= 2) {
      const buffer = allocAligned(alignment, alignment);
      assert.equal(addon.bufferAddressModulo(buffer, alignment), 0, `alignment ${alignment}`);
      assert.ok(isAligned(buffer, alignment), `alignment ${alignment}`);
    }
  });

  it('returns zeroed memory', () => {
    const buffer = allocAligned(1 << 16);
    assertAllZero(buffer, 'allocAligned(65536)');
  });

  it('returns large buffers (marked for huge pages) of exactly the requested size, aligned and zeroed', () => {
    // Sizes from 2 MiB up are rounded to whole huge pages inside; the Buffer is the size asked for.
    for (const [sizeBytes, alignment] of [
      [2 << 20, 4096],
      [(2 << 20) + 4096 + 3, 8],
      [(5 << 20) - 512, constants.ALIGNMENT_MAX],
    ] as const) {
      const buffer = allocAligned(sizeBytes, alignment);
      assert.equal(buffer.byteLength, sizeBytes);
      assert.equal(addon.bufferAddressModulo(buffer, alignment), 0, `alignment ${alignment}`);
      assertAllZero(buffer, `allocAligned(${sizeBytes}, ${alignment})`);
      buffer.fill(0xa5);
      assert.equal(buffer[sizeBytes - 1], 0xa5);
    }
  });

  it('marks a buffer of 2 MiB or more for huge pages, rounded up to whole ones (not whether the mapping is its own: glibc maps one that large too)', function () {
    if (!existsSync('/sys/kernel/mm/transparent_hugepage/enabled')) skipBecause(this, 'this kernel has no transparent huge pages');
    const before = hugePageMarkedBytes();
    const buffer = allocAligned((6 << 20) + 4096, 4096);
    assert.equal(hugePageMarkedBytes() - before, 8 << 20, 'one more mapping of 8 MiB marked hg (madvise MADV_HUGEPAGE)');
    assert.equal(buffer.byteLength, (6 << 20) + 4096);
  });

  it('returns an empty Buffer for size 0', () => {
    const buffer = allocAligned(0);
    assert.equal(buffer.byteLength, 0);
  });

  it('gives each buffer its own memory', () => {
    const first = allocAligned(4096);
    const second = allocAligned(4096);
    first.fill(1);
    assertAllZero(second, 'second buffer');
  });

  it('rejects negative, fractional, non-finite and too-large sizes with RangeError ERR_INVALID_ARG', () => {
    for (const sizeBytes of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, constants.TRANSFER_SIZE_MAX + 1]) {
      throwsWith(() => allocAligned(sizeBytes), RangeError, 'ERR_INVALID_ARG');
    }
  });

  it('rejects alignments that are not a power of two up to ALIGNMENT_MAX with RangeError ERR_INVALID_ARG', () => {
    for (const alignment of [0, 3, 4095, -4096, 0.5, Number.NaN, constants.ALIGNMENT_MAX * 2, 2 ** 31]) {
      throwsWith(() => allocAligned(4096, alignment), RangeError, 'ERR_INVALID_ARG');
    }
  });

  it('rejects arguments that are not numbers with TypeError ERR_INVALID_ARG', () => {
    throwsWith(() => allocAligned('4096' as unknown as number), TypeError, 'ERR_INVALID_ARG');
    throwsWith(() => allocAligned(4096, null as unknown as number), TypeError, 'ERR_INVALID_ARG');
  });
});

describe('allocAlignedInHeap()', () => {
  it('returns a view of the requested size at an aligned address, with zeros around it in its ArrayBuffer', () => {
    for (const alignment of [512, 4096, 65536]) {
      for (const sizeBytes of [0, alignment, 3 * alignment + 8]) {
        const view = allocAlignedInHeap(sizeBytes, alignment);
        assert.ok(Buffer.isBuffer(view));
        assert.equal(view.byteLength, sizeBytes);
        if (sizeBytes > 0) assert.equal(addon.bufferAddressModulo(view, alignment), 0, `alignment ${alignment}, ${sizeBytes} bytes`);
        const whole = new Uint8Array(view.buffer);
        assert.equal(whole.byteLength, sizeBytes + alignment);
        assertAllZero(whole.subarray(0, view.byteOffset), 'the bytes before the view');
        assertAllZero(whole.subarray(view.byteOffset + sizeBytes), 'the bytes after the view');
      }
    }
  });

  it('rejects bad sizes and alignments with RangeError ERR_INVALID_ARG', () => {
    for (const sizeBytes of [-1, 1.5, Number.NaN, HEAP_BUFFER_BYTES_MAX]) {
      throwsWith(() => allocAlignedInHeap(sizeBytes), RangeError, 'ERR_INVALID_ARG');
    }
    for (const alignment of [0, 3, 4095, constants.ALIGNMENT_MAX * 2]) {
      throwsWith(() => allocAlignedInHeap(4096, alignment), RangeError, 'ERR_INVALID_ARG');
    }
  });
});

describe('isAligned()', () => {
  it('is false for a view that starts off the alignment', () => {
    const buffer = allocAligned(8192);
    assert.equal(isAligned(buffer.subarray(1, 4097), 4096), false);
    assert.equal(isAligned(buffer.subarray(512, 512 + 4096), 4096), false);
    assert.equal(isAligned(buffer.subarray(512, 1024), 512), true);
  });

  it('is false when the length is not a multiple of the alignment', () => {
    const buffer = allocAligned(8192);
    assert.equal(isAligned(buffer.subarray(0, 1000), 512), false);
    assert.equal(isAligned(buffer.subarray(0, 4096), 512), true);
  });

  it('reads the address of typed arrays and DataViews with a byte offset', () => {
    const buffer = allocAligned(8192);
    assert.equal(isAligned(new DataView(buffer.buffer, buffer.byteOffset + 4096, 4096), 4096), true);
    assert.equal(isAligned(new Float64Array(buffer.buffer, buffer.byteOffset + 8, 512), 4096), false);
    assert.equal(isAligned(new Uint32Array(buffer.buffer, buffer.byteOffset + 4096, 1024), 4096), true);
  });

  it('treats alignment 1 as always satisfied', () => {
    assert.equal(isAligned(Buffer.from('abc'), 1), true);
  });

  it('rejects a value that is not an ArrayBufferView with TypeError ERR_INVALID_ARG', () => {
    for (const value of ['abc', null, {}, new ArrayBuffer(16), [1, 2]]) {
      throwsWith(() => isAligned(value as unknown as ArrayBufferView, 4096), TypeError, 'ERR_INVALID_ARG');
    }
  });

  it('rejects a bad alignment with RangeError ERR_INVALID_ARG', () => {
    for (const alignment of [0, 3, -2, 1.5, constants.ALIGNMENT_MAX * 2]) {
      throwsWith(() => isAligned(allocAligned(4096), alignment), RangeError, 'ERR_INVALID_ARG');
    }
  });
});

/** Bytes of this process's mappings marked for huge pages ("hg" in /proc/self/smaps VmFlags). */
function hugePageMarkedBytes(): number {
  let total = 0;
  let sizeKib = 0;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    if (line.startsWith('Size:')) sizeKib = Number(line.slice('Size:'.length).trim().split(/\s+/)[0]);
    else if (line.startsWith('VmFlags:') && line.split(/\s+/).includes('hg')) total += sizeKib * 1024;
  }
  return total;
}
