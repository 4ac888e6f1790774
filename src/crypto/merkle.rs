//! The Merkle tree over a group of events that one signature covers (`docs/PROTOCOL.md`,
//! "Group signatures"). The tree is the one of RFC 9162 §2.1 over the events' ids: a leaf is
//! `SHA-256(0x00 ‖ id)` (the id's 32 bytes), an inner node `SHA-256(0x01 ‖ left ‖ right)`, and a
//! tree of `n > 1` leaves splits at the largest power of two below `n`. An event carries its
//! inclusion path, so it verifies on its own, without the other events of its group.

use sha2::{Digest, Sha256};

/// A node of the tree.
pub type Hash = [u8; 32];

/// The leaf of an event id (its 32 bytes).
#[must_use]
pub fn leaf(id: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(id);
    h.finalize().into()
}

fn node(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two below `n` (`n > 1`).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// The root over `leaves` and each leaf's inclusion path (siblings from the leaf up), in one
/// pass: `2n − 1` hashes. `None` for no leaves.
#[must_use]
pub fn tree(leaves: &[Hash]) -> Option<(Hash, Vec<Vec<Hash>>)> {
    fn build(leaves: &[Hash], lo: usize, hi: usize, paths: &mut [Vec<Hash>]) -> Hash {
        if hi - lo == 1 {
            return leaves[lo];
        }
        let mid = lo + split(hi - lo);
        let left = build(leaves, lo, mid, paths);
        let right = build(leaves, mid, hi, paths);
        for p in &mut paths[lo..mid] {
            p.push(right);
        }
        for p in &mut paths[mid..hi] {
            p.push(left);
        }
        node(&left, &right)
    }
    if leaves.is_empty() {
        return None;
    }
    let mut paths = vec![Vec::new(); leaves.len()];
    let root = build(leaves, 0, leaves.len(), &mut paths);
    Some((root, paths))
}

/// The root that `path` leads to from the leaf at `index` of a tree of `size` leaves
/// (RFC 9162 §2.1.3.2); `None` when the index is outside the tree or the path's length does not
/// fit the index and size.
#[must_use]
pub fn root_from_path(index: u64, size: u64, leaf: &Hash, path: &[Hash]) -> Option<Hash> {
    if index >= size {
        return None;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s == 0 {
            return None;
        }
        if f & 1 == 1 || f == s {
            r = node(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    (s == 0).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf(&Sha256::digest(i.to_be_bytes()).into()))
            .collect()
    }

    /// The tree hash written out from its definition, recursively.
    fn mth(leaves: &[Hash]) -> Hash {
        if leaves.len() == 1 {
            return leaves[0];
        }
        let k = split(leaves.len());
        node(&mth(&leaves[..k]), &mth(&leaves[k..]))
    }

    #[test]
    fn small_trees_have_the_shape_of_rfc_9162() {
        let l = leaves(3);
        let (root, paths) = tree(&l).unwrap();
        assert_eq!(root, node(&node(&l[0], &l[1]), &l[2]));
        assert_eq!(paths[0], vec![l[1], l[2]]);
        assert_eq!(paths[2], vec![node(&l[0], &l[1])]);
        let (one, path) = tree(&l[..1]).unwrap();
        assert_eq!((one, path[0].len()), (l[0], 0));
        assert!(tree(&[]).is_none());
    }

    #[test]
    fn every_path_leads_to_the_root_and_only_from_its_own_place() {
        for n in 1..=40usize {
            let l = leaves(n);
            let (root, paths) = tree(&l).unwrap();
            assert_eq!(root, mth(&l), "size {n}");
            let size = n as u64;
            for (i, path) in paths.iter().enumerate() {
                let at = i as u64;
                assert_eq!(root_from_path(at, size, &l[i], path), Some(root), "{i}/{n}");
                // Another leaf, another place or a cut path give another root. (A path can fit
                // a larger tree too: the signed message binds the size with the root.)
                let other = leaf(&[0xee; 32]);
                assert_ne!(root_from_path(at, size, &other, path), Some(root));
                if n > 1 {
                    let j = (at + 1) % size;
                    assert_ne!(root_from_path(j, size, &l[i], path), Some(root));
                    assert_eq!(root_from_path(at, size, &l[i], &path[1..]), None);
                }
                let mut longer = path.clone();
                longer.push(root);
                assert_ne!(root_from_path(at, size, &l[i], &longer), Some(root));
                assert_eq!(root_from_path(size, size, &l[i], path), None);
            }
        }
    }

    #[test]
    fn a_leaf_is_not_an_inner_node() {
        // Domain separation: the two children of a node, presented as one leaf, do not
        // give the node's hash.
        let l = leaves(2);
        let (root, _) = tree(&l).unwrap();
        let mut both = [0u8; 64];
        both[..32].copy_from_slice(&l[0]);
        both[32..].copy_from_slice(&l[1]);
        let mut h = Sha256::new();
        h.update([0u8]);
        h.update(both);
        let as_leaf: Hash = h.finalize().into();
        assert_ne!(as_leaf, root);
    }
}
