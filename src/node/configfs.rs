//! The configfs-compatible view: the files a kernel-DLM consumer reads
//! under `/sys/kernel/config/dlm`, written by `udlmd` into
//! `<run dir>/configfs/dlm/cluster/...` and kept current (issue #11).
//!
//! lvmlockd, written for the kernel DLM, reads three things there besides
//! calling libdlm: `cluster/cluster_name` (is a DLM running, and which
//! cluster the VG belongs to), `cluster/spaces/<ls>/nodes/` (how many hosts
//! still have a lockspace: `vgremove` is refused while others do) and, in
//! newer lvm2, `cluster/comms/<id>/{nodeid,local}` (its own node id, for
//! `dlm_ls_purge`). The layout follows what dlm_controld writes:
//!
//! ```text
//! configfs/dlm/cluster/cluster_name
//! configfs/dlm/cluster/comms/<id>/{nodeid,local,addr}
//! configfs/dlm/cluster/spaces/<ls>/nodes/<id>/{nodeid,weight}
//! ```
//!
//! `spaces/` lists each lockspace that exists on this node (one whose only
//! locks are orphans included), and under it the nodes that have it open
//! cluster-wide. Nodes tell each other which lockspaces they have with the
//! small messages below; they travel on the peer links next to the lock
//! protocol but are handled here, before the lock protocol's decoder, so
//! that module stays as it is.
//!
//! The view is changed in place: files are written under a temporary name
//! and renamed over the old one, and directories are only created and
//! removed below the top directory, never the top directory itself, so that
//! a bind mount of it over `/sys/kernel/config` keeps showing the current
//! state.

use super::Node;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::path::{Path, PathBuf};

/// First byte of the messages of this module. The lock protocol's tags are
/// small numbers (peer.rs); these stay far above them.
const TAG_RESET: u8 = 0xc0;
const TAG_JOIN: u8 = 0xc1;
const TAG_LEAVE: u8 = 0xc2;
const TAG_ACK: u8 = 0xc3;

/// How long a lockspace creation waits for the other nodes to learn of it
/// (they answer at once unless they are down or busy).
pub const JOIN_ANNOUNCE_WAIT_MS: u64 = 5000;

/// What this node told others, and what they told it.
#[derive(Default)]
pub struct Spaces {
    /// Where the view is written (`None`: no view, as in tests and the
    /// embedded node).
    root: Option<PathBuf>,
    /// The lockspaces the other nodes were last told about.
    announced: BTreeSet<Vec<u8>>,
    /// Number of the last message sent (every node counts on its own).
    seq: u64,
    /// The lockspaces each other node has open, as it said.
    remote: HashMap<u32, BTreeSet<Vec<u8>>>,
    /// The highest of our message numbers each node has acknowledged.
    acked: HashMap<u32, u64>,
    /// The highest of our message numbers sent to each node: a node that
    /// came up since gets numbers the others never see, and must not be
    /// waited for by them (nor they for its numbers).
    sent: HashMap<u32, u64>,
    /// Last error written to the log, so a failing disk does not flood it.
    last_error: Option<String>,
}

/// The wanted content of the view: relative path → file content, or
/// `None` for a directory (one that must exist even when empty; those
/// above a file exist anyway).
pub type ViewFiles = BTreeMap<PathBuf, Option<String>>;

fn encode(tag: u8, seq: u64, name: Option<&[u8]>) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&seq.to_le_bytes());
    if let Some(n) = name {
        v.push(n.len() as u8);
        v.extend_from_slice(n);
    }
    v
}

/// Decodes one of this module's messages: (tag, seq, name). `None` for
/// anything else (the lock protocol's messages, or garbage).
fn decode(b: &[u8]) -> Option<(u8, u64, Option<Vec<u8>>)> {
    let tag = *b.first()?;
    if !(TAG_RESET..=TAG_ACK).contains(&tag) || b.len() < 9 {
        return None;
    }
    let seq = u64::from_le_bytes(b[1..9].try_into().ok()?);
    match tag {
        TAG_JOIN | TAG_LEAVE => {
            let len = *b.get(9)? as usize;
            let name = b.get(10..10 + len)?;
            if name.is_empty() || name.len() > crate::types::LOCKSPACE_LEN || b.len() != 10 + len {
                return None;
            }
            Some((tag, seq, Some(name.to_vec())))
        }
        _ if b.len() == 9 => Some((tag, seq, None)),
        _ => None,
    }
}

/// A lockspace name as a single path component, or `None` when it cannot
/// be one (lvmlockd's names, `lvm_<vg>`, always can).
fn component(name: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(name).ok()?;
    if s.is_empty() || s == "." || s == ".." || s.contains('/') || s.contains('\0') {
        return None;
    }
    Some(s.to_string())
}

impl Node {
    /// Makes the node keep the view under `root` (`<run dir>/configfs`).
    pub fn set_compat_view(&mut self, root: PathBuf) {
        self.spaces.root = Some(root);
    }

    /// Stops keeping the view and empties it, as the node shuts down (the
    /// top directory stays, for a bind mount of it).
    pub fn clear_compat_view(&mut self) {
        if let Some(root) = self.spaces.root.take() {
            if let Err(e) = sync_tree(&root, &ViewFiles::new()) {
                eprintln!("udlmd: cannot empty the view in {}: {e}", root.display());
            }
        }
    }

    /// The nodes other than this one that count as present for the view:
    /// connected, or members of the current recovery generation (a node
    /// that died stays listed until the recovery has taken it out, as the
    /// kernel's lockspace membership does).
    fn present_peers(&self) -> BTreeSet<u32> {
        let mut v: BTreeSet<u32> = self
            .peers
            .as_ref()
            .map(|p| p.connected())
            .unwrap_or_default()
            .into_iter()
            .collect();
        if self.cluster.nodes.len() > 1 {
            v.extend(self.membership.members.iter().copied());
        }
        v.remove(&self.node_id);
        v
    }

    /// For each lockspace that exists here, the nodes that have it open.
    pub fn lockspace_members(&self) -> BTreeMap<Vec<u8>, BTreeSet<u32>> {
        let present = self.present_peers();
        let mut out = BTreeMap::new();
        for name in self.lockspace_names() {
            let mut nodes = BTreeSet::from([self.node_id]);
            for (&n, set) in &self.spaces.remote {
                if present.contains(&n) && set.contains(&name) {
                    nodes.insert(n);
                }
            }
            out.insert(name, nodes);
        }
        out
    }

    /// The files the view should hold now.
    pub fn compat_view_files(&self) -> ViewFiles {
        let mut f = ViewFiles::new();
        let c = Path::new("dlm/cluster");
        // Like dlm_controld's, the view always has these two directories:
        // lvmlockd takes a missing spaces/ for "no DLM running".
        f.insert(c.join("comms"), None);
        f.insert(c.join("spaces"), None);
        f.insert(
            c.join("cluster_name"),
            Some(format!("{}\n", self.cluster.cluster_name)),
        );
        let mut nodes = self.cluster.nodes.clone();
        if !nodes.contains(&self.node_id) {
            nodes.push(self.node_id);
        }
        for n in nodes {
            let d = c.join("comms").join(n.to_string());
            f.insert(d.join("nodeid"), Some(format!("{n}\n")));
            let local = u8::from(n == self.node_id);
            f.insert(d.join("local"), Some(format!("{local}\n")));
            if let Some(a) = self.cluster.addresses.get(&n) {
                f.insert(d.join("addr"), Some(format!("{a}\n")));
            }
        }
        for (ls, members) in self.lockspace_members() {
            let Some(ls) = component(&ls) else { continue };
            for n in members {
                let d = c.join("spaces").join(&ls).join("nodes").join(n.to_string());
                f.insert(d.join("nodeid"), Some(format!("{n}\n")));
                f.insert(d.join("weight"), Some("1\n".to_string()));
            }
        }
        f
    }

    /// Brings the view on disk up to date, if there is one; writes only
    /// what differs. Errors are logged once each.
    pub fn sync_compat_view(&mut self) {
        let Some(root) = self.spaces.root.clone() else {
            return;
        };
        let wanted = self.compat_view_files();
        match sync_tree(&root, &wanted) {
            Ok(()) => self.spaces.last_error = None,
            Err(e) => {
                let msg = format!("udlmd: cannot update the view in {}: {e}", root.display());
                if self.spaces.last_error.as_deref() != Some(msg.as_str()) {
                    eprintln!("{msg}");
                    self.spaces.last_error = Some(msg);
                }
            }
        }
    }

    /// Tells the other nodes which lockspaces were opened or destroyed here
    /// since the last call. Returns the number of the last message sent,
    /// which [`Node::spaces_announced`] waits for.
    pub fn announce_spaces(&mut self) -> u64 {
        let now: BTreeSet<Vec<u8>> = self.lockspace_names().into_iter().collect();
        if now == self.spaces.announced {
            return self.spaces.seq;
        }
        let joined: Vec<Vec<u8>> = now.difference(&self.spaces.announced).cloned().collect();
        let left: Vec<Vec<u8>> = self.spaces.announced.difference(&now).cloned().collect();
        self.spaces.announced = now;
        for (tag, names) in [(TAG_JOIN, joined), (TAG_LEAVE, left)] {
            for n in names {
                self.spaces.seq += 1;
                let msg = encode(tag, self.spaces.seq, Some(&n));
                self.send_raw_to_all(&msg);
            }
        }
        self.spaces.seq
    }

    fn send_raw_to_all(&mut self, msg: &[u8]) {
        let Some(p) = self.peers.clone() else { return };
        let seq = self.spaces.seq;
        let nodes = self.cluster.nodes.clone();
        for n in nodes {
            if n != self.node_id {
                let _ = p.send(n, msg.to_vec());
                self.spaces.sent.insert(n, seq);
            }
        }
    }

    /// Whether every present node has acknowledged our messages up to
    /// `seq` (true at once in a one-node cluster).
    pub fn spaces_announced(&self, seq: u64) -> bool {
        self.present_peers().iter().all(|n| {
            let wanted = self.spaces.sent.get(n).copied().unwrap_or(0).min(seq);
            self.spaces.acked.get(n).copied().unwrap_or(0) >= wanted
        })
    }

    /// A session with `node` came up: it may have restarted, so tell it
    /// everything again, starting from a clean slate.
    pub fn spaces_peer_up(&mut self, node: u32) {
        let Some(p) = self.peers.clone() else { return };
        self.spaces.seq += 1;
        let _ = p.send(node, encode(TAG_RESET, self.spaces.seq, None));
        let names: Vec<Vec<u8>> = self.spaces.announced.iter().cloned().collect();
        for n in names {
            self.spaces.seq += 1;
            let _ = p.send(node, encode(TAG_JOIN, self.spaces.seq, Some(&n)));
        }
        self.spaces.sent.insert(node, self.spaces.seq);
    }

    /// Handles `payload` from `from` if it is one of this module's
    /// messages; returns false otherwise (it is for the lock protocol).
    pub fn on_spaces_message(&mut self, from: u32, payload: &[u8]) -> bool {
        let Some((tag, seq, name)) = decode(payload) else {
            return false;
        };
        match (tag, name) {
            (TAG_ACK, _) => {
                let a = self.spaces.acked.entry(from).or_insert(0);
                *a = (*a).max(seq);
                return true;
            }
            (TAG_RESET, _) => {
                self.spaces.remote.remove(&from);
            }
            (TAG_JOIN, Some(n)) => {
                self.spaces.remote.entry(from).or_default().insert(n);
            }
            (TAG_LEAVE, Some(n)) => {
                if let Some(s) = self.spaces.remote.get_mut(&from) {
                    s.remove(&n);
                }
            }
            _ => return true,
        }
        // The view shows the change before the sender hears back, so that
        // its lockspace creation returns only once our view lists it.
        self.sync_compat_view();
        if let Some(p) = &self.peers {
            let _ = p.send(from, encode(TAG_ACK, seq, None));
        }
        true
    }
}

/// Makes the tree under `root` hold exactly `wanted` below `root/dlm`:
/// files whose content differs are rewritten (temporary name, then
/// rename), files and directories not wanted are removed. `root` itself is
/// created if missing but never replaced.
pub fn sync_tree(root: &Path, wanted: &ViewFiles) -> io::Result<()> {
    std::fs::create_dir_all(root)?;
    let mut dirs: BTreeSet<PathBuf> = BTreeSet::new();
    for (p, content) in wanted {
        if content.is_none() {
            dirs.insert(p.clone());
        }
        let mut a = p.parent();
        while let Some(d) = a.filter(|d| !d.as_os_str().is_empty()) {
            dirs.insert(d.to_path_buf());
            a = d.parent();
        }
    }
    // Remove what is not wanted, deepest first.
    let mut existing = Vec::new();
    list(root, Path::new("dlm"), &mut existing)?;
    existing.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
    for (p, is_dir) in existing {
        let full = root.join(&p);
        if is_dir {
            if !dirs.contains(&p) {
                std::fs::remove_dir_all(&full).or_else(ignore_missing)?;
            }
        } else if !matches!(wanted.get(&p), Some(Some(_))) {
            std::fs::remove_file(&full).or_else(ignore_missing)?;
        }
    }
    for d in &dirs {
        let full = root.join(d);
        if !full.is_dir() {
            if full.exists() {
                std::fs::remove_file(&full)?;
            }
            std::fs::create_dir_all(&full)?;
        }
    }
    for (p, content) in wanted {
        let Some(content) = content else { continue };
        let full = root.join(p);
        if std::fs::read(&full).ok().as_deref() == Some(content.as_bytes()) {
            continue;
        }
        if full.is_dir() {
            std::fs::remove_dir_all(&full)?;
        }
        let tmp = full.with_file_name(format!(
            ".{}.tmp",
            full.file_name().and_then(|n| n.to_str()).unwrap_or("f")
        ));
        std::fs::write(&tmp, content)?;
        std::fs::rename(&tmp, &full)?;
    }
    Ok(())
}

fn ignore_missing(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

/// Every file and directory below `root/rel` (relative to `root`), with
/// whether it is a directory; nothing when `root/rel` does not exist.
fn list(root: &Path, rel: &Path, out: &mut Vec<(PathBuf, bool)>) -> io::Result<()> {
    let rd = match std::fs::read_dir(root.join(rel)) {
        Ok(r) => r,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => {
            out.push((rel.to_path_buf(), false));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    out.push((rel.to_path_buf(), true));
    for e in rd {
        let e = e?;
        let p = rel.join(e.file_name());
        if e.file_type()?.is_dir() {
            list(root, &p, out)?;
        } else {
            out.push((p, false));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::{ClusterView, NodeLimits, PeerLink};
    use crate::sys::PeerCreds;
    use std::os::unix::fs::MetadataExt;
    use std::sync::{Arc, Mutex};

    /// Collects what the node sends.
    #[derive(Default)]
    struct Outbox(Mutex<Vec<(u32, Vec<u8>)>>);
    impl PeerLink for Outbox {
        fn send(&self, to: u32, payload: Vec<u8>) -> bool {
            self.0.lock().unwrap().push((to, payload));
            true
        }
        fn connected(&self) -> Vec<u32> {
            vec![1, 2, 3]
        }
    }

    fn root_creds() -> PeerCreds {
        PeerCreds {
            pid: 1,
            uid: 0,
            gid: 0,
        }
    }

    fn node(id: u32) -> (Node, Arc<Outbox>) {
        let mut n = Node::new(id, NodeLimits::default());
        let out = Arc::new(Outbox::default());
        let mut view = ClusterView {
            nodes: vec![1, 2, 3],
            cluster_name: "udlmtest".into(),
            ..ClusterView::default()
        };
        view.addresses.insert(1, "10.0.0.1:21064".into());
        n.set_cluster(view, out.clone());
        (n, out)
    }

    fn read(root: &Path, p: &str) -> Option<String> {
        std::fs::read_to_string(root.join(p)).ok()
    }

    fn entries(root: &Path, p: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(root.join(p))
            .map(|r| {
                r.map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn messages_round_trip_and_garbage_is_not_ours() {
        assert_eq!(
            decode(&encode(TAG_JOIN, 7, Some(b"lvm_vg1"))),
            Some((TAG_JOIN, 7, Some(b"lvm_vg1".to_vec())))
        );
        assert_eq!(decode(&encode(TAG_ACK, 9, None)), Some((TAG_ACK, 9, None)));
        assert_eq!(decode(&[1, 2, 3]), None);
        assert_eq!(decode(&[TAG_JOIN, 0, 0, 0, 0, 0, 0, 0, 0, 5, b'a']), None);
        assert_eq!(decode(&[TAG_ACK, 0, 0, 0, 0, 0, 0, 0, 0, 1]), None);
        assert_eq!(decode(&encode(TAG_JOIN, 1, Some(b""))), None);
    }

    #[test]
    fn view_follows_lockspaces_and_members_in_place() {
        let dir = std::env::temp_dir().join(format!("udlm-cfgfs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (mut n, out) = node(2);
        n.set_compat_view(dir.clone());
        n.sync_compat_view();
        let top_ino = std::fs::metadata(&dir).unwrap().ino();
        assert_eq!(
            read(&dir, "dlm/cluster/cluster_name").as_deref(),
            Some("udlmtest\n")
        );
        assert_eq!(entries(&dir, "dlm/cluster/comms"), ["1", "2", "3"]);
        assert_eq!(
            read(&dir, "dlm/cluster/comms/2/local").as_deref(),
            Some("1\n")
        );
        assert_eq!(
            read(&dir, "dlm/cluster/comms/1/local").as_deref(),
            Some("0\n")
        );
        assert_eq!(
            read(&dir, "dlm/cluster/comms/3/nodeid").as_deref(),
            Some("3\n")
        );
        assert_eq!(
            read(&dir, "dlm/cluster/comms/1/addr").as_deref(),
            Some("10.0.0.1:21064\n")
        );
        assert!(entries(&dir, "dlm/cluster/spaces").is_empty());

        // A lockspace created here appears with this node only, and is
        // announced to the others.
        let (owner, _) = n.open(b"lvm_vg1", Some((0o600, 0)), root_creds()).unwrap();
        let seq = n.announce_spaces();
        n.sync_compat_view();
        assert_eq!(entries(&dir, "dlm/cluster/spaces"), ["lvm_vg1"]);
        assert_eq!(entries(&dir, "dlm/cluster/spaces/lvm_vg1/nodes"), ["2"]);
        assert_eq!(
            read(&dir, "dlm/cluster/spaces/lvm_vg1/nodes/2/weight").as_deref(),
            Some("1\n")
        );
        let sent = out.0.lock().unwrap().clone();
        let joins: Vec<u32> = sent
            .iter()
            .filter(|(_, m)| {
                decode(m).is_some_and(|(t, _, name)| {
                    t == TAG_JOIN && name.as_deref() == Some(b"lvm_vg1")
                })
            })
            .map(|(to, _)| *to)
            .collect();
        assert_eq!(joins, [1, 3]);
        // Not announced until both others acknowledge.
        assert!(!n.spaces_announced(seq));
        assert!(n.on_spaces_message(1, &encode(TAG_ACK, seq, None)));
        assert!(!n.spaces_announced(seq));
        assert!(n.on_spaces_message(3, &encode(TAG_ACK, seq, None)));
        assert!(n.spaces_announced(seq));

        // Other nodes join: listed, and acknowledged.
        out.0.lock().unwrap().clear();
        assert!(n.on_spaces_message(1, &encode(TAG_JOIN, 4, Some(b"lvm_vg1"))));
        assert!(n.on_spaces_message(3, &encode(TAG_JOIN, 5, Some(b"lvm_vg1"))));
        assert!(n.on_spaces_message(3, &encode(TAG_JOIN, 6, Some(b"lvm_other"))));
        assert_eq!(
            entries(&dir, "dlm/cluster/spaces/lvm_vg1/nodes"),
            ["1", "2", "3"]
        );
        // A lockspace that does not exist here is not shown.
        assert_eq!(entries(&dir, "dlm/cluster/spaces"), ["lvm_vg1"]);
        let acks: Vec<(u32, u64)> = out
            .0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(to, m)| decode(m).filter(|d| d.0 == TAG_ACK).map(|d| (*to, d.1)))
            .collect();
        assert_eq!(acks, [(1, 4), (3, 5), (3, 6)]);

        // One leaves; another restarts (Reset).
        assert!(n.on_spaces_message(1, &encode(TAG_LEAVE, 7, Some(b"lvm_vg1"))));
        assert_eq!(
            entries(&dir, "dlm/cluster/spaces/lvm_vg1/nodes"),
            ["2", "3"]
        );
        assert!(n.on_spaces_message(3, &encode(TAG_RESET, 8, None)));
        assert_eq!(entries(&dir, "dlm/cluster/spaces/lvm_vg1/nodes"), ["2"]);

        // The lockspace's creator dies: it stays (its locks would be
        // orphans), and so does its directory.
        n.close(owner);
        n.sync_compat_view();
        assert_eq!(entries(&dir, "dlm/cluster/spaces"), ["lvm_vg1"]);

        // Destroyed (dlm_release_lockspace / udlm leave): gone, announced.
        let (o2, _) = n.open(b"lvm_vg1", None, root_creds()).unwrap();
        n.release(o2, 1).unwrap();
        out.0.lock().unwrap().clear();
        n.announce_spaces();
        n.sync_compat_view();
        assert!(entries(&dir, "dlm/cluster/spaces").is_empty());
        assert!(out
            .0
            .lock()
            .unwrap()
            .iter()
            .any(|(_, m)| decode(m).is_some_and(|d| d.0 == TAG_LEAVE)));

        // A stray file in the view is removed, a damaged one rewritten.
        std::fs::write(dir.join("dlm/cluster/spaces/junk"), "x").unwrap();
        std::fs::write(dir.join("dlm/cluster/cluster_name"), "other\n").unwrap();
        n.sync_compat_view();
        assert!(entries(&dir, "dlm/cluster/spaces").is_empty());
        assert_eq!(
            read(&dir, "dlm/cluster/cluster_name").as_deref(),
            Some("udlmtest\n")
        );

        // Always the same top directory (a bind mount of it stays valid),
        // also once the node stops and empties it.
        assert_eq!(std::fs::metadata(&dir).unwrap().ino(), top_ino);
        n.clear_compat_view();
        assert!(entries(&dir, "").is_empty());
        n.sync_compat_view();
        assert!(entries(&dir, "").is_empty());
        assert_eq!(std::fs::metadata(&dir).unwrap().ino(), top_ino);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn one_node_cluster_lists_itself() {
        let dir = std::env::temp_dir().join(format!("udlm-cfgfs1-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut n = Node::new(1, NodeLimits::default());
        n.set_view(ClusterView {
            nodes: vec![1],
            cluster_name: "udlm".into(),
            ..ClusterView::default()
        });
        n.set_compat_view(dir.clone());
        let (_o, _) = n
            .open(b"lvm_global", Some((0o600, 0)), root_creds())
            .unwrap();
        let seq = n.announce_spaces();
        assert!(n.spaces_announced(seq));
        n.sync_compat_view();
        assert_eq!(entries(&dir, "dlm/cluster/comms"), ["1"]);
        assert_eq!(entries(&dir, "dlm/cluster/spaces/lvm_global/nodes"), ["1"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
