//! Hierarchical locks (a udlm extension, opt-in per lockspace with
//! `UDLM_LSFL_HIERARCHY`, include/udlm.h): a request whose `parent` names a
//! granted lock of the same handle locks a resource inside the parent's
//! resource. The kernel ignores `parent`; so does udlm elsewhere.
//!
//! A child resource is an ordinary resource whose name is derived on the
//! requesting node from its parent resource's name and the child's own
//! name ([`child_name`]): the marker byte, the root's placement hash, and
//! 16 bytes of SHA-256 over the parent's name and the child's name. So the
//! masters need no notion of trees (every rule, recovery and deadlock
//! detection apply unchanged), two children of different parents never
//! share a resource, and every resource of a tree has its root's directory
//! node and, with static mastering, its root's master
//! (`cluster::config::placement_hash`). With a directory, a child that has
//! no master yet is given its parent's master (`Node::master_near`,
//! `PeerMsg::LookupNear`): the directory stays the one authority for every
//! name, it only takes the parent's master instead of the first asker.
//! When that master fails, a recovery gives each of its resources its
//! directory node as master, which is one node for the whole tree.
//!
//! Rules kept on the requesting node: the parent must be a granted lock of
//! the caller's handle (EINVAL otherwise); a lock with children cannot be
//! unlocked (ENOTEMPTY) until they are gone — cancelling its pending
//! conversion is allowed; in a hierarchical lockspace top-level names of the
//! derived form are refused (EINVAL), so that a program cannot reach a
//! child resource by its derived name.

use crate::cluster::config::{placement_hash, CHILD_NAME_LEN, CHILD_NAME_MARK};
use crate::types::ResName;
use sha2::{Digest, Sha256};

/// The resource name of child `name` inside resource `parent`.
pub fn child_name(parent: &ResName, name: &[u8]) -> ResName {
    let mut h = Sha256::new();
    h.update([parent.as_bytes().len() as u8]);
    h.update(parent.as_bytes());
    h.update(name);
    let digest = h.finalize();
    let mut out = [0u8; CHILD_NAME_LEN];
    out[0] = CHILD_NAME_MARK;
    out[1..5].copy_from_slice(&placement_hash(parent.as_bytes()).to_le_bytes());
    out[5..].copy_from_slice(&digest[..CHILD_NAME_LEN - 5]);
    ResName::new(&out).expect("a child name fits")
}

/// Whether `name` has the form of a derived child name.
pub fn is_child_name(name: &[u8]) -> bool {
    name.len() == CHILD_NAME_LEN && name[0] == CHILD_NAME_MARK
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::config::directory_node;

    #[test]
    fn a_tree_shares_its_roots_placement_and_children_differ() {
        let root = ResName::new(b"volume-7").unwrap();
        let a = child_name(&root, b"a");
        let b = child_name(&root, b"b");
        let aa = child_name(&a, b"a");
        assert!(is_child_name(a.as_bytes()) && is_child_name(aa.as_bytes()));
        assert_ne!(a, b);
        assert_ne!(a, aa);
        // The same path gives the same resource on every node.
        assert_eq!(child_name(&root, b"a"), a);
        // The same child name under another parent is another resource.
        assert_ne!(child_name(&ResName::new(b"volume-8").unwrap(), b"a"), a);
        let members: Vec<(u32, u32)> = (1..=7).map(|n| (n, 1)).collect();
        let d = directory_node(root.as_bytes(), &members);
        for n in [&a, &b, &aa] {
            assert_eq!(directory_node(n.as_bytes(), &members), d);
        }
        assert!(!is_child_name(root.as_bytes()));
    }
}
