//! The follower's view of the chain: the last `depth` canonical blocks, linked by
//! `parentHash`. Pure: the follower fetches, this decides what changed. A branch that links
//! below the tip is a reorganisation, whose orphaned blocks come back so their logs can be
//! re-sent with `"removed": true`; a head already delivered is never delivered again.

use std::collections::{HashSet, VecDeque};

use super::block::{Block, Hash};

/// What applying a branch changed.
#[derive(Debug, Default)]
pub(crate) struct Change {
    /// Blocks that left the canonical chain, newest first (the order to undo them in).
    pub(crate) removed: Vec<Block>,
    /// Blocks that joined it, oldest first.
    pub(crate) added: Vec<Block>,
    /// Of `added`, those whose head was never delivered (by hash).
    pub(crate) new_heads: Vec<usize>,
}

/// The last canonical blocks.
#[derive(Debug)]
pub(crate) struct Window {
    blocks: VecDeque<Block>,
    depth: usize,
    /// Hashes of delivered heads, bounded (oldest forgotten first).
    delivered: HashSet<Hash>,
    delivered_order: VecDeque<Hash>,
}

impl Window {
    /// An empty window remembering `depth` blocks (at least one).
    pub(crate) fn new(depth: usize) -> Self {
        Self {
            blocks: VecDeque::new(),
            depth: depth.max(1),
            delivered: HashSet::new(),
            delivered_order: VecDeque::new(),
        }
    }

    /// The newest block.
    #[cfg(test)]
    pub(crate) fn tip(&self) -> Option<&Block> {
        self.blocks.back()
    }

    /// Whether nothing is known yet.
    pub(crate) fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Whether `hash` is one of the remembered canonical blocks.
    pub(crate) fn contains(&self, hash: &Hash) -> bool {
        self.blocks.iter().any(|b| b.hash == *hash)
    }

    /// The oldest remembered height.
    pub(crate) fn oldest_number(&self) -> Option<u64> {
        self.blocks.front().map(|b| b.number)
    }

    /// Makes `branch` (oldest first, each the parent of the next) the end of the chain. When
    /// its first block's parent is remembered, the blocks after that parent are orphaned;
    /// when it is not (a gap longer than the window, or the first blocks ever seen), every
    /// remembered block at or above the branch's first height is taken as orphaned and the
    /// rest forgotten, since nothing links them any more.
    pub(crate) fn apply(&mut self, branch: Vec<Block>) -> Change {
        let Some(first) = branch.first() else {
            return Change::default();
        };
        let mut removed: Vec<Block> = match self.blocks.iter().position(|b| b.hash == first.parent)
        {
            Some(parent) => self.blocks.drain(parent + 1..).collect(),
            None => {
                let from = first.number;
                let orphaned = self.blocks.drain(..).filter(|b| b.number >= from).collect();
                // Delivered hashes stay remembered across such a reset, so a gap does not
                // make a head be delivered twice either.
                orphaned
            }
        };
        removed.reverse();
        let mut new_heads = Vec::new();
        for (n, block) in branch.iter().enumerate() {
            if self.delivered.insert(block.hash) {
                self.delivered_order.push_back(block.hash);
                new_heads.push(n);
            }
        }
        self.blocks.extend(branch.iter().cloned());
        while self.blocks.len() > self.depth {
            self.blocks.pop_front();
        }
        // Remember delivered heads for a few windows: a reorganisation back to a branch seen
        // before must not deliver its heads twice.
        while self.delivered_order.len() > self.depth.saturating_mul(4) {
            if let Some(old) = self.delivered_order.pop_front() {
                self.delivered.remove(&old);
            }
        }
        Change {
            removed,
            added: branch,
            new_heads,
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn block(number: u64, id: u8, parent: u8) -> Block {
        Block {
            number,
            hash: [id; 32],
            parent: [parent; 32],
            header: Bytes::new(),
            logs: None,
        }
    }

    fn hashes(blocks: &[Block]) -> Vec<u8> {
        blocks.iter().map(|b| b.hash[0]).collect()
    }

    #[test]
    fn extends_then_reorganises_then_never_repeats_a_head() {
        let mut window = Window::new(8);
        let change = window.apply(vec![block(1, 1, 0)]);
        assert_eq!((change.removed.len(), change.new_heads), (0, vec![0]));
        window.apply(vec![block(2, 2, 1)]);
        window.apply(vec![block(3, 3, 2)]);
        assert_eq!(window.tip().unwrap().hash, [3; 32]);

        // Block 3 replaced by 3', then 4' on top.
        let change = window.apply(vec![block(3, 0x33, 2), block(4, 0x44, 0x33)]);
        assert_eq!(hashes(&change.removed), vec![3]);
        assert_eq!(hashes(&change.added), vec![0x33, 0x44]);
        assert_eq!(change.new_heads, vec![0, 1]);

        // Back to the first branch: 3 was delivered already, only 4 and 5 are new heads.
        let change = window.apply(vec![block(3, 3, 2), block(4, 4, 3), block(5, 5, 4)]);
        assert_eq!(hashes(&change.removed), vec![0x44, 0x33], "newest first");
        assert_eq!(change.new_heads, vec![1, 2]);
        assert!(window.contains(&[5; 32]) && !window.contains(&[0x33; 32]));
    }

    #[test]
    fn an_unlinked_branch_orphans_what_it_replaces() {
        let mut window = Window::new(4);
        for n in 1..=4u8 {
            window.apply(vec![block(n.into(), n, n - 1)]);
        }
        let change = window.apply(vec![block(3, 0x30, 0x20)]);
        assert_eq!(hashes(&change.removed), vec![4, 3]);
        assert_eq!(hashes(&change.added), vec![0x30]);
        assert_eq!(window.oldest_number(), Some(3));
    }

    #[test]
    fn remembers_depth_blocks() {
        let mut window = Window::new(3);
        for n in 1..=10u8 {
            window.apply(vec![block(n.into(), n, n - 1)]);
        }
        assert_eq!(window.oldest_number(), Some(8));
        assert!(window.apply(Vec::new()).added.is_empty());
    }
}
