// What sysfs says of a block device: where its directory is (from its
// device number), whether the kernel marks it read-only, whether it is a
// partition. Read when the store opens a block device (and walks a loop
// device's chain), and by the CLI for a device's size.
import { readFile, stat as fsStat } from 'node:fs/promises';

/** Linux's dev_t encoding (new_decode_dev in include/linux/kdev_t.h), as Node's stat reports it. */
export function decodeDeviceNumber(dev: number): { major: number; minor: number } {
  return {
    major: ((dev >> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff),
    minor: (dev & 0xff) | ((dev >> 12) & ~0xff & 0xfffff),
  };
}

/** The sysfs directory of the block device numbered `rdev` (its `size`, `ro`, `loop/`, …). */
export function sysfsBlockDirectory(rdev: number): string {
  const { major, minor } = decodeDeviceNumber(rdev);
  return `/sys/dev/block/${major}:${minor}`;
}

/** Whether the kernel marks block device `path` read-only (sysfs `ro`); false where it cannot be read. */
export async function isReadOnlyBlockDevice(path: string): Promise<boolean> {
  const flag = await readFile(`${sysfsBlockDirectory((await fsStat(path)).rdev)}/ro`, 'utf8').catch(() => undefined);
  return flag?.trim() === '1';
}

/** Whether the block device of sysfs directory `sysfs` is a partition. */
export async function isPartition(sysfs: string): Promise<boolean> {
  return readFile(`${sysfs}/partition`, 'utf8').then(
    () => true,
    () => false,
  );
}
