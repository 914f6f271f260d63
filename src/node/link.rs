//! Joins a node to its cluster: reads who the nodes are from the config,
//! starts the peer transport, and wires it to the node in both directions
//! (the transport hands incoming messages to the node under its lock; the
//! node hands outgoing ones to the transport, which never blocks).

use super::{ClusterView, Node, PeerLink};
use crate::cluster::config::Config;
use crate::net::{Net, NetConfig, NetHandler};
use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};

/// Bound on messages waiting for one peer (unsent or unacknowledged).
pub const PEER_QUEUE_MESSAGES: usize = 1 << 20;

struct ToNode(Arc<Mutex<Node>>);

fn apply(node: &mut Node, from: u32, payload: &[u8]) {
    // Who has which lockspace (node/configfs.rs) travels beside the lock
    // protocol.
    if node.on_spaces_message(from, payload) {
        return;
    }
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        node.on_peer_message(from, payload)
    }));
    if r.is_err() {
        eprintln!("udlmd: internal error while handling a message from node {from}");
    }
}

impl NetHandler for ToNode {
    fn on_message(&self, from: u32, payload: &[u8]) {
        apply(
            &mut self.0.lock().unwrap_or_else(|e| e.into_inner()),
            from,
            payload,
        );
    }
    /// One node lock for messages that arrived together: each hand-over
    /// of the lock between this thread and the program's threads costs a
    /// wake-up.
    fn on_messages(&self, from: u32, payloads: &[&[u8]]) {
        let mut node = self.0.lock().unwrap_or_else(|e| e.into_inner());
        node.apply_batch(payloads, |node, p| apply(node, from, p));
    }
    fn on_peer_up(&self, node: u32, incarnation: u64) {
        eprintln!("udlmd: node {node} is up (incarnation {incarnation:x})");
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .peer_up(node, incarnation);
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .spaces_peer_up(node);
    }
    fn on_peer_down(&self, node: u32) {
        eprintln!("udlmd: lost the connection to node {node}");
        let mut n = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // The lease of a lost peer counts from now, not from the last tick
        // (up to a tick earlier), so that it never ends early.
        n.advance_clock(crate::sys::monotonic_ms());
        n.peer_down(node);
    }
}

struct ToNet(Arc<Net>);

impl PeerLink for ToNet {
    fn send(&self, to: u32, payload: Vec<u8>) -> bool {
        self.0.send(to, payload).is_ok()
    }
    fn connected(&self) -> Vec<u32> {
        self.0.connected()
    }
}

/// Where names are mastered, from the config's node, lockspace and master
/// lines.
pub fn cluster_view(cfg: &Config) -> ClusterView {
    let mut nodes: Vec<u32> = cfg.nodes.iter().map(|n| n.id).collect();
    nodes.sort_unstable();
    let mut lockspaces = HashMap::new();
    let named = cfg
        .lockspaces
        .iter()
        .map(|l| l.name.clone())
        .chain(cfg.masters.iter().map(|m| m.ls.clone()));
    for ls in named {
        lockspaces.insert(ls.as_bytes().to_vec(), (cfg.nodir(&ls), cfg.weights(&ls)));
    }
    let addresses = cfg
        .nodes
        .iter()
        .map(|n| {
            (
                n.id,
                cfg.peer_addrs(n.id)
                    .first()
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| n.addr.clone()),
            )
        })
        .collect();
    ClusterView {
        nodes,
        cluster_name: cfg.cluster_name.clone(),
        addresses,
        lockspaces,
        lease_ms: cfg.lease_ms,
        self_fence_abort: cfg.self_fence_abort,
        fencing: cfg.fence_cmd.is_some(),
        two_node: cfg.two_node,
        deadlock_detect_ms: cfg.deadlock_detect_ms,
    }
}

/// Starts the transport when the config lists other nodes, and connects it
/// to `node`. Returns the transport (None for a one-node cluster).
pub fn join_cluster(
    node: &Arc<Mutex<Node>>,
    cfg: &Config,
    local_id: u32,
) -> io::Result<Option<Arc<Net>>> {
    if cfg.nodes.len() <= 1 {
        node.lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_view(cluster_view(cfg));
        return Ok(None);
    }
    let listen = *cfg.peer_addrs(local_id).first().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("node {local_id} has no usable address"),
        )
    })?;
    let mut peers = Vec::new();
    for n in &cfg.nodes {
        if n.id == local_id {
            continue;
        }
        let addrs = cfg.peer_addrs(n.id);
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("cannot resolve the address of node {}", n.id),
            ));
        }
        peers.push((n.id, addrs));
    }
    let key = match &cfg.key_file {
        Some(p) => Some(
            std::fs::read(p)
                .map_err(|e| io::Error::new(e.kind(), format!("key file {}: {e}", p.display())))?,
        ),
        None => None,
    };
    let ncfg = NetConfig {
        local_id,
        listen,
        cluster_name: cfg.cluster_name.clone(),
        key,
        peers,
        heartbeat_ms: cfg.heartbeat_ms,
        peer_timeout_ms: cfg.peer_timeout_ms,
        reconnect_ms: cfg.reconnect_ms,
        max_queue: PEER_QUEUE_MESSAGES,
        max_message: super::peer::MAX_PEER_MESSAGE,
    };
    // The node stays locked until it knows its cluster: a session that
    // comes up at once must find it multi-node (peer_up ignores peers of a
    // one-node cluster), so the transport's first callbacks wait here.
    let mut locked = node.lock().unwrap_or_else(|e| e.into_inner());
    let net = Net::start(ncfg, Arc::new(ToNode(Arc::clone(node))))?;
    locked.set_cluster(cluster_view(cfg), Arc::new(ToNet(Arc::clone(&net))));
    drop(locked);
    Ok(Some(net))
}

/// Runs `fence_cmd NODEID` for every lost node the coordinator waits for,
/// again every half second until it exits 0 (node/recovery.rs); returns
/// when the node is gone.
pub fn fence_loop(node: &std::sync::Weak<Mutex<Node>>, cmd: &std::path::Path) {
    loop {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let Some(node) = node.upgrade() else {
            return;
        };
        let wanted = node
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .fence_wanted();
        for id in wanted {
            match std::process::Command::new(cmd).arg(id.to_string()).status() {
                Ok(st) if st.success() => {
                    node.lock().unwrap_or_else(|e| e.into_inner()).fenced(id);
                }
                Ok(st) => eprintln!("udlm: {} {id} failed ({st}); trying again", cmd.display()),
                Err(e) => eprintln!("udlm: cannot run {}: {e}", cmd.display()),
            }
        }
    }
}
