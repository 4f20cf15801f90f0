// sorted-btree is CommonJS with its class on `exports.default`; under Node's
// ESM interop the default import is the whole exports object. One place to
// unwrap it.
import sortedBtree from 'sorted-btree';

export const BTree = sortedBtree.default;
export type BTree<K, V> = InstanceType<typeof sortedBtree.default<K, V>>;
