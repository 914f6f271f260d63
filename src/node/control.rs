//! Membership from outside: `udlmd`'s side of the control protocol
//! (control.rs), which lets a cluster manager list, add and remove nodes,
//! reload the config file (also on SIGHUP), and say that a node is dead and
//! fenced.
//!
//! Decisions:
//! * A change goes through the normal recovery (node/recovery.rs, "Membership
//!   from outside"): an added node is one more configured node that joins
//!   through a generation once its session is up; a removed node is one
//!   that departed. So every lockspace sees it as it sees a join or a death.
//! * A node is removed only once it cannot be running: its session is down
//!   and its lease has run out, it left (SIGTERM), or it was declared
//!   fenced. Its locks are dropped no earlier than they would be had it
//!   simply died. Removing a running node is refused, with the way out.
//! * Each node applies the changes it is told; a cluster manager tells
//!   every node (as with the config file, which every node reads). A
//!   recovery generation naming a node this node does not know yet waits
//!   until it is added here. `fenced` alone spreads to the other nodes,
//!   because each of them waits for the dead node's lease otherwise.
//! * The node's own entry cannot change while it runs (its listener is
//!   bound), and a cluster that shrinks to this node alone would need the
//!   one-node mode it was not started in: both are refused, asking for a
//!   restart. A node started as a one-node cluster has no peer transport,
//!   so it cannot add nodes either.
//! * A reload applies the differences in the `node` lines (added, removed,
//!   address or port changed) all at once or not at all; other settings
//!   that changed are reported as taking effect at the next start.
//! * Every list is bounded: at most [`MAX_NODES`] configured nodes (the
//!   members a recovery message carries).
//! * Only root and the daemon's own user may use any of it (SO_PEERCRED).
//! * With corosync as the source (node/corosync.rs), a reload takes the
//!   nodes from corosync's node list instead of the file's node lines.
//!
//! The transport is changed without the node's lock held: its handlers
//! take that lock while holding the transport's per-peer lock.

use super::Node;

/// JSON text of a string.
fn json_str(s: &str) -> String {
    super::json_str(s.as_bytes())
}
use crate::cluster::config::{Config, NodeEntry};
use crate::control::{error_json, Op, Refusal};
use crate::net::Net;
use crate::sys::PeerCreds;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Most configured nodes (node/peer.rs `MAX_MEMBERS`: a generation's
/// members travel in one message).
pub const MAX_NODES: usize = super::peer::MAX_MEMBERS;

/// The daemon's membership controller.
pub struct Control {
    node: Arc<Mutex<Node>>,
    net: Option<Arc<Net>>,
    local_id: u32,
    /// The daemon's effective uid: it may control its own node.
    euid: u32,
    /// The config as applied: the file's, with the changes made since.
    /// Its mutex also serialises control requests.
    applied: Mutex<Config>,
    /// An outside membership source (corosync): what `udlm status` says of
    /// it, and where a reload reads the nodes instead of the file.
    external: Option<External>,
}

/// An outside membership source.
pub struct External {
    /// JSON for `udlm status` and `udlm node list`.
    pub source: String,
    /// Its node list now (`None`: it cannot say).
    pub nodes: fn() -> Option<Vec<NodeEntry>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a node listens, as written in reports: `addr:port`.
fn shown(e: &NodeEntry, port: u16) -> String {
    if e.host().contains(':') {
        format!("[{}]:{port}", e.host())
    } else {
        format!("{}:{port}", e.host())
    }
}

/// One node of `cfg` with its effective port.
fn endpoint(cfg: &Config, e: &NodeEntry) -> (String, u16) {
    (e.host().to_ascii_lowercase(), e.port.unwrap_or(cfg.port))
}

/// A `node` line checked by the config reader itself, so that an address
/// given here is held to the same rules as one in the file.
fn parse_node(id: u32, address: &str, port: u16) -> Result<NodeEntry, Refusal> {
    let mut line = format!("node id={id} addr={address}");
    if port != 0 {
        let _ = write!(line, " port={port}");
    }
    match Config::parse(&line, std::path::Path::new("request")) {
        Ok((cfg, _)) => cfg
            .nodes
            .into_iter()
            .next()
            .ok_or_else(|| Refusal::new(libc::EINVAL, "the request names no node.")),
        Err(errors) => {
            let why: Vec<String> = errors.into_iter().map(|e| e.message).collect();
            Err(Refusal::new(
                libc::EINVAL,
                format!("bad address for node {id}: {}.", why.join("; ")),
            ))
        }
    }
}

impl Control {
    pub fn new(
        node: Arc<Mutex<Node>>,
        net: Option<Arc<Net>>,
        cfg: Config,
        local_id: u32,
    ) -> Control {
        let source = membership_source(&cfg);
        lock(&node).set_membership_source(source);
        Control {
            node,
            net,
            local_id,
            // SAFETY: geteuid has no preconditions and cannot fail.
            euid: unsafe { libc::geteuid() },
            applied: Mutex::new(cfg),
            external: None,
        }
    }

    /// Membership comes from `external` (corosync) rather than the file.
    pub fn with_external(mut self, external: External) -> Control {
        lock(&self.node).set_membership_source(external.source.clone());
        self.external = Some(external);
        self
    }

    /// Tells the node where its membership comes from now (the quorum
    /// rule depends on the number of nodes).
    fn describe(&self, cfg: &Config) {
        let source = match &self.external {
            Some(e) => e.source.clone(),
            None => membership_source(cfg),
        };
        lock(&self.node).set_membership_source(source);
    }

    /// Serves one request from a caller with `creds`: `Ok(json)` or the
    /// refusal with its sentence.
    pub fn handle(&self, op: &Op, creds: PeerCreds) -> Result<String, Refusal> {
        if creds.uid != 0 && creds.uid != self.euid {
            return Err(Refusal::new(
                libc::EPERM,
                format!(
                    "permission denied: only root and the user udlmd runs as (uid {}) may list or change \
                     the nodes; you are uid {}.",
                    self.euid, creds.uid
                ),
            ));
        }
        match op {
            Op::List => Ok(self.list()),
            Op::Add { id, address, port } => self.add(*id, address, *port),
            Op::Remove { id } => self.remove(*id),
            Op::Reload => self.reload(),
            Op::Fenced { id } => self.fenced(*id),
        }
    }

    /// `{"local":ID,"membership":{...},"nodes":[{"id","address","port",
    /// "local","connected","member"}...]}`
    fn list(&self) -> String {
        let cfg = lock(&self.applied);
        let n = lock(&self.node);
        let members = n.membership.members.clone();
        let mut o = format!(
            "{{\"local\":{},\"membership\":{},\"nodes\":[",
            self.local_id,
            n.membership_source_json()
        );
        let mut nodes: Vec<&NodeEntry> = cfg.nodes.iter().collect();
        nodes.sort_by_key(|e| e.id);
        for (i, e) in nodes.iter().enumerate() {
            let local = e.id == self.local_id;
            let _ = write!(
                o,
                "{}{{\"id\":{},\"address\":{},\"port\":{},\"local\":{local},\"connected\":{},\"member\":{}}}",
                if i > 0 { "," } else { "" },
                e.id,
                json_str(e.host()),
                e.port.unwrap_or(cfg.port),
                local || n.peer_connected(e.id),
                members.contains(&e.id)
            );
        }
        o.push_str("]}");
        o
    }

    /// Checks that node `e` may join `cfg` (which does not have it).
    fn check_new(&self, cfg: &Config, e: &NodeEntry) -> Result<Vec<SocketAddr>, Refusal> {
        if e.id == self.local_id {
            return Err(Refusal::new(
                libc::EEXIST,
                format!("node {} is this node.", e.id),
            ));
        }
        if let Some(old) = cfg.node(e.id) {
            return Err(Refusal::new(
                libc::EEXIST,
                format!(
                    "node {} is already configured, at {}; remove it first to move it, or change its \
                     node line and reload.",
                    e.id,
                    shown(old, old.port.unwrap_or(cfg.port))
                ),
            ));
        }
        let at = endpoint(cfg, e);
        if let Some(other) = cfg.nodes.iter().find(|o| endpoint(cfg, o) == at) {
            return Err(Refusal::new(
                libc::EEXIST,
                format!(
                    "node {} already listens at {}; two nodes may share an address only with different ports.",
                    other.id,
                    shown(e, at.1)
                ),
            ));
        }
        if cfg.nodes.len() >= MAX_NODES {
            return Err(Refusal::new(
                libc::ENOSPC,
                format!("the cluster already has {MAX_NODES} nodes, the most udlm supports."),
            ));
        }
        if self.net.is_none() {
            return Err(Refusal::new(
                libc::ENOSYS,
                "this node was started as a one-node cluster (its config lists no other node), so it \
                 has no connection to peers; list the nodes in its config file and restart udlmd.",
            ));
        }
        let addrs = e.socket_addrs(at.1);
        if addrs.is_empty() {
            return Err(Refusal::new(
                libc::EINVAL,
                format!(
                    "bad address for node {}: '{}' does not resolve.",
                    e.id, e.addr
                ),
            ));
        }
        Ok(addrs)
    }

    /// Checks that node `id` may leave `cfg`.
    fn check_removal(&self, cfg: &Config, id: u32, others_left: usize) -> Result<(), Refusal> {
        if id == self.local_id {
            return Err(Refusal::new(
                libc::EINVAL,
                format!(
                    "node {id} is this node; a node cannot remove itself: stop its udlmd (it tells the \
                     others it leaves), then remove it on the other nodes."
                ),
            ));
        }
        if cfg.node(id).is_none() {
            return Err(Refusal::new(
                libc::ENOENT,
                format!("node {id} is not configured here ('udlm node list' shows the nodes)."),
            ));
        }
        if others_left == 0 {
            return Err(Refusal::new(
                libc::EINVAL,
                format!(
                    "removing node {id} would leave this node alone, and a node started with peers \
                     cannot become a one-node cluster while it runs; restart it with a config without \
                     other nodes."
                ),
            ));
        }
        let n = lock(&self.node);
        if n.peer_connected(id) {
            return Err(Refusal::new(
                libc::EBUSY,
                format!(
                    "node {id} is running: this node is connected to it. Stop its udlmd first (it tells \
                     the others it leaves), then remove it."
                ),
            ));
        }
        if n.node_may_be_running(id) {
            let lease = n.membership.lease_ms;
            let down = n.node_down_for_ms(id).unwrap_or(0);
            return Err(Refusal::new(
                libc::EBUSY,
                format!(
                    "node {id} may still be running with its locks: its connection was lost {down} ms ago \
                     and its lease ({lease} ms) has not run out. Wait, or if it is dead and fenced say \
                     so ('udlm node fenced {id}'), then remove it."
                ),
            ));
        }
        Ok(())
    }

    fn add(&self, id: u32, address: &str, port: u16) -> Result<String, Refusal> {
        let mut cfg = lock(&self.applied);
        let e = parse_node(id, address, port)?;
        let addrs = self.check_new(&cfg, &e)?;
        self.apply_add(&cfg, &e, addrs)?;
        let port = e.port.unwrap_or(cfg.port);
        let text = format!(
            "{{\"added\":{id},\"address\":{},\"port\":{port}}}",
            json_str(e.host())
        );
        cfg.nodes.push(e);
        self.describe(&cfg);
        Ok(text)
    }

    /// Node first, so that the session's coming up finds it configured.
    fn apply_add(
        &self,
        cfg: &Config,
        e: &NodeEntry,
        addrs: Vec<SocketAddr>,
    ) -> Result<(), Refusal> {
        let port = e.port.unwrap_or(cfg.port);
        lock(&self.node).add_configured_node(
            e.id,
            addrs
                .first()
                .map_or_else(|| shown(e, port), |a| a.to_string()),
        );
        let net = self.net.as_ref().expect("checked");
        if let Err(err) = net.add_peer(e.id, addrs) {
            lock(&self.node).remove_configured_node(e.id);
            return Err(Refusal::new(
                libc::EINVAL,
                format!("cannot add node {}: {err}.", e.id),
            ));
        }
        Ok(())
    }

    fn remove(&self, id: u32) -> Result<String, Refusal> {
        let mut cfg = lock(&self.applied);
        self.check_removal(&cfg, id, cfg.nodes.len().saturating_sub(2))?;
        self.apply_remove(id);
        cfg.nodes.retain(|e| e.id != id);
        self.describe(&cfg);
        Ok(format!("{{\"removed\":{id}}}"))
    }

    /// Node first, so that the session's end is not news to it.
    fn apply_remove(&self, id: u32) {
        lock(&self.node).remove_configured_node(id);
        if let Some(net) = &self.net {
            net.remove_peer(id);
        }
    }

    fn fenced(&self, id: u32) -> Result<String, Refusal> {
        let cfg = lock(&self.applied);
        if id == self.local_id {
            return Err(Refusal::new(
                libc::EINVAL,
                format!("node {id} is this node, which is running; a node cannot declare itself fenced."),
            ));
        }
        if cfg.node(id).is_none() {
            return Err(Refusal::new(
                libc::ENOENT,
                format!("node {id} is not configured here ('udlm node list' shows the nodes)."),
            ));
        }
        let mut n = lock(&self.node);
        if n.peer_connected(id) {
            return Err(Refusal::new(
                libc::EBUSY,
                format!(
                    "node {id} is connected to this node, so it is not dead; fence it first (power it off, \
                     or kill its udlmd), then say so."
                ),
            ));
        }
        let me = self.local_id;
        n.declare_fenced(id, me);
        Ok(format!(
            "{{\"fenced\":{id},\"generation\":{},\"state\":{}}}",
            n.membership.gen,
            json_str(n.phase().name())
        ))
    }

    /// Reads the config file again and applies the differences in its
    /// nodes, all or none.
    pub fn reload(&self) -> Result<String, Refusal> {
        let mut cfg = lock(&self.applied);
        let Some(path) = cfg.source.clone() else {
            return Err(Refusal::new(
                libc::ENOENT,
                "udlmd was started without a config file (a one-node cluster); there is nothing to reload.",
            ));
        };
        let (mut new, warnings) = Config::load(&path).map_err(|errors| {
            let lines: Vec<String> = errors.iter().take(5).map(|e| e.to_string()).collect();
            Refusal::new(
                libc::EINVAL,
                format!(
                    "{} has {} error(s), so nothing was changed: {}",
                    path.display(),
                    errors.len(),
                    lines.join("; ")
                ),
            )
        })?;
        if let Some(e) = &self.external {
            new.nodes = (e.nodes)().ok_or_else(|| {
                Refusal::new(
                    libc::EIO,
                    "the membership source (corosync) did not give its node list; nothing was changed.",
                )
            })?;
        }
        let plan = self.plan_reload(&cfg, &new, &path)?;
        for (id, addrs, text) in &plan.changed {
            if let Some(net) = &self.net {
                net.set_peer_addrs(*id, addrs.clone());
            }
            lock(&self.node).set_node_address(*id, text.clone());
        }
        for id in &plan.removed {
            self.apply_remove(*id);
        }
        for (e, addrs) in &plan.added {
            if let Err(r) = self.apply_add(&new, e, addrs.clone()) {
                // Only the transport can refuse here, after the checks.
                eprintln!("udlmd: reload: {}", r.sentence);
            }
        }
        // What is applied: the file's nodes; its other settings wait for a
        // restart, so the old ones are kept.
        cfg.nodes = new.nodes.clone();
        cfg.port = new.port;
        self.describe(&cfg);
        let ids = |v: &mut dyn Iterator<Item = u32>| {
            v.map(|i| i.to_string()).collect::<Vec<_>>().join(",")
        };
        let warnings: Vec<String> = warnings.iter().map(|w| json_str(w)).collect();
        let later: Vec<String> = plan.not_applied.iter().map(|w| json_str(w)).collect();
        Ok(format!(
            "{{\"reloaded\":{},\"added\":[{}],\"removed\":[{}],\"changed\":[{}],\"not_applied\":[{}],\"warnings\":[{}]}}",
            json_str(&path.display().to_string()),
            ids(&mut plan.added.iter().map(|(e, _)| e.id)),
            ids(&mut plan.removed.iter().copied()),
            ids(&mut plan.changed.iter().map(|(id, _, _)| *id)),
            later.join(","),
            warnings.join(",")
        ))
    }

    /// What a reload from `old` to `new` changes, or why it cannot.
    fn plan_reload(
        &self,
        old: &Config,
        new: &Config,
        path: &std::path::Path,
    ) -> Result<ReloadPlan, Refusal> {
        let me = self.local_id;
        let (Some(mine_old), Some(mine_new)) = (old.node(me), new.node(me)) else {
            if old.nodes.len() <= 1 && new.nodes.len() <= 1 {
                return Ok(ReloadPlan::default());
            }
            return Err(Refusal::new(
                libc::EINVAL,
                format!(
                    "{} has no node line for this node ({me}) any more; restart udlmd to leave the \
                     cluster. Nothing was changed.",
                    path.display()
                ),
            ));
        };
        if endpoint(old, mine_old) != endpoint(new, mine_new) {
            return Err(Refusal::new(
                libc::EINVAL,
                format!(
                    "{} moves this node ({me}) from {} to {}; a node's own address cannot change while \
                     it runs: restart udlmd. Nothing was changed.",
                    path.display(),
                    shown(mine_old, endpoint(old, mine_old).1),
                    shown(mine_new, endpoint(new, mine_new).1)
                ),
            ));
        }
        let mut plan = ReloadPlan::default();
        for e in &new.nodes {
            match old.node(e.id) {
                None => {
                    // Checked against the nodes that stay, with the file's
                    // global port.
                    let mut staying = new.clone();
                    staying.nodes.retain(|o| o.id != e.id);
                    let addrs = self.check_new(&staying, e)?;
                    plan.added.push((e.clone(), addrs));
                }
                Some(o) if e.id != me && endpoint(old, o) != endpoint(new, e) => {
                    let port = endpoint(new, e).1;
                    let addrs = e.socket_addrs(port);
                    if addrs.is_empty() {
                        return Err(Refusal::new(
                            libc::EINVAL,
                            format!("bad address for node {}: '{}' does not resolve. Nothing was changed.", e.id, e.addr),
                        ));
                    }
                    plan.changed.push((e.id, addrs, shown(e, port)));
                }
                Some(_) => {}
            }
        }
        let removed: Vec<u32> = old
            .nodes
            .iter()
            .map(|e| e.id)
            .filter(|id| new.node(*id).is_none())
            .collect();
        for &id in &removed {
            self.check_removal(old, id, new.nodes.len().saturating_sub(1))
                .map_err(|r| {
                    Refusal::new(r.errno, format!("{} Nothing was changed.", r.sentence))
                })?;
        }
        plan.removed = removed;
        // Settings read only when udlmd starts: (key, before, now).
        let at_start = [
            (
                "cluster_name",
                old.cluster_name.clone(),
                new.cluster_name.clone(),
            ),
            (
                "key_file",
                format!("{:?}", old.key_file),
                format!("{:?}", new.key_file),
            ),
            (
                "heartbeat_ms",
                old.heartbeat_ms.to_string(),
                new.heartbeat_ms.to_string(),
            ),
            (
                "peer_timeout_ms",
                old.peer_timeout_ms.to_string(),
                new.peer_timeout_ms.to_string(),
            ),
            (
                "reconnect_ms",
                old.reconnect_ms.to_string(),
                new.reconnect_ms.to_string(),
            ),
            (
                "lease_ms",
                old.lease_ms.to_string(),
                new.lease_ms.to_string(),
            ),
            (
                "self_fence",
                old.self_fence_abort.to_string(),
                new.self_fence_abort.to_string(),
            ),
            (
                "fence_cmd",
                format!("{:?}", old.fence_cmd),
                format!("{:?}", new.fence_cmd),
            ),
            (
                "two_node",
                old.two_node.to_string(),
                new.two_node.to_string(),
            ),
        ];
        for (what, a, b) in at_start {
            if a != b {
                plan.not_applied.push(format!(
                    "{what} changed from {a} to {b}; it takes effect when udlmd restarts"
                ));
            }
        }
        let placement = |c: &Config| {
            format!(
                "{:?}{:?}",
                c.lockspaces
                    .iter()
                    .map(|l| (&l.name, l.nodir))
                    .collect::<Vec<_>>(),
                c.masters
                    .iter()
                    .map(|m| (&m.ls, m.node, m.weight))
                    .collect::<Vec<_>>()
            )
        };
        if placement(old) != placement(new) {
            plan.not_applied.push(
                "lockspace or master lines changed; they take effect when udlmd restarts"
                    .to_string(),
            );
        }
        Ok(plan)
    }
}

#[derive(Default)]
struct ReloadPlan {
    added: Vec<(NodeEntry, Vec<SocketAddr>)>,
    removed: Vec<u32>,
    /// Id, where to dial it now, and how to show that.
    changed: Vec<(u32, Vec<SocketAddr>, String)>,
    not_applied: Vec<String>,
}

/// Where this node's membership and quorum come from, as JSON for `udlm
/// status` and `udlm node list`.
pub fn membership_source(cfg: &Config) -> String {
    let file = cfg
        .source
        .as_ref()
        .map(|p| json_str(&p.display().to_string()))
        .unwrap_or_else(|| "null".into());
    let quorum = if cfg.nodes.len() <= 1 {
        "none (one node)"
    } else if cfg.two_node && cfg.nodes.len() == 2 {
        "udlm: two_node (the survivor of a formed pair goes on)"
    } else {
        "udlm: a majority of the configured nodes"
    };
    format!(
        "{{\"source\":\"config\",\"file\":{file},\"changes\":\"udlm node add/remove, udlm reload, SIGHUP\",\"liveness\":\"udlm heartbeats and leases\",\"quorum\":{}}}",
        json_str(quorum)
    )
}

/// Answers a control request as the server sends it: status and JSON.
pub fn answer(control: Option<&Control>, op: &Op, creds: PeerCreds) -> (i32, String) {
    let r = match control {
        Some(c) => c.handle(op, creds),
        None => Err(Refusal::new(
            libc::ENOSYS,
            "this node takes no membership requests (it runs inside a program: embedded mode).",
        )),
    };
    match r {
        Ok(text) => (0, text),
        Err(r) => (r.errno, error_json(&r.sentence)),
    }
}

/// Runs [`Control::reload`] for SIGHUP, logging the outcome.
pub fn reload_on_signal(control: &Control) {
    match control.reload() {
        Ok(text) => eprintln!("udlmd: SIGHUP: config reloaded: {text}"),
        Err(r) => eprintln!("udlmd: SIGHUP: config not reloaded: {}", r.sentence),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeLimits;

    const ROOT: PeerCreds = PeerCreds {
        pid: 1,
        uid: 0,
        gid: 0,
    };

    /// A controller for node 1 of nodes 1 to 3 (ports 7001 to 7003),
    /// without a transport, and the path of its config file in a fresh
    /// directory named after `test`.
    fn control(test: &str) -> (Control, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("udlm-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.conf");
        std::fs::write(&path, conf(&[(1, 7001), (2, 7002), (3, 7003)])).unwrap();
        let (cfg, _) = Config::load(&path).unwrap();
        let node = Arc::new(Mutex::new(Node::new(1, NodeLimits::default())));
        (Control::new(node, None, cfg, 1), path)
    }

    fn conf(nodes: &[(u32, u16)]) -> String {
        let mut t = String::from("cluster_name=t\n");
        for (id, port) in nodes {
            t.push_str(&format!("node id={id} addr=127.0.0.{id} port={port}\n"));
        }
        t
    }

    fn refused(c: &Control, op: Op) -> (i32, String) {
        let r = c.handle(&op, ROOT).unwrap_err();
        (r.errno, r.sentence)
    }

    #[test]
    fn bad_requests_are_refused_with_a_sentence() {
        let (c, path) = control("control");
        let other = PeerCreds {
            pid: 1,
            uid: 4242,
            gid: 4242,
        };
        let r = c.handle(&Op::List, other).unwrap_err();
        assert_eq!(r.errno, libc::EPERM);
        assert!(
            r.sentence.contains("only root and the user udlmd runs as"),
            "{}",
            r.sentence
        );
        let add = |id: u32, address: &str, port: u16| Op::Add {
            id,
            address: address.into(),
            port,
        };
        for (op, errno, words) in [
            (
                add(2, "127.0.0.9", 0),
                libc::EEXIST,
                "node 2 is already configured, at 127.0.0.2:7002",
            ),
            (add(1, "127.0.0.9", 0), libc::EEXIST, "node 1 is this node"),
            (
                add(5, "127.0.0.2", 7002),
                libc::EEXIST,
                "node 2 already listens at 127.0.0.2:7002",
            ),
            (
                add(5, "300.1.2.3", 0),
                libc::EINVAL,
                "bad address for node 5",
            ),
            (add(5, "-bad-", 0), libc::EINVAL, "bad address for node 5"),
            (add(5, "0.0.0.0", 0), libc::EINVAL, "not a unicast address"),
            (
                add(5, "127.0.0.5", 0),
                libc::ENOSYS,
                "started as a one-node cluster",
            ),
            (
                Op::Remove { id: 9 },
                libc::ENOENT,
                "node 9 is not configured",
            ),
            (Op::Remove { id: 1 }, libc::EINVAL, "node 1 is this node"),
            (
                Op::Fenced { id: 9 },
                libc::ENOENT,
                "node 9 is not configured",
            ),
            (
                Op::Fenced { id: 1 },
                libc::EINVAL,
                "cannot declare itself fenced",
            ),
        ] {
            let (e, why) = refused(&c, op.clone());
            assert_eq!(e, errno, "{op:?}: {why}");
            assert!(why.contains(words), "{op:?}: {why}");
        }
        // A node never seen may go; then only this node and one other are
        // left, and the last other one may not.
        assert_eq!(
            c.handle(&Op::Remove { id: 3 }, ROOT).unwrap(),
            "{\"removed\":3}"
        );
        let (e, why) = refused(&c, Op::Remove { id: 2 });
        assert_eq!(e, libc::EINVAL);
        assert!(why.contains("would leave this node alone"), "{why}");
        let list = c.handle(&Op::List, ROOT).unwrap();
        assert!(
            list.starts_with("{\"local\":1,\"membership\":{\"source\":\"config\""),
            "{list}"
        );
        assert!(
            list.contains("\"id\":2,\"address\":\"127.0.0.2\",\"port\":7002")
                && !list.contains("\"id\":3"),
            "{list}"
        );
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_reload_applies_the_node_differences_or_nothing() {
        let (c, path) = control("reload");
        // Node 3 moves, lease_ms changes (not applied).
        let text = conf(&[(1, 7001), (2, 7002), (3, 7013)]) + "lease_ms=5000\n";
        std::fs::write(&path, text).unwrap();
        let r = c.handle(&Op::Reload, ROOT).unwrap();
        assert!(
            r.contains("\"added\":[],\"removed\":[],\"changed\":[3]"),
            "{r}"
        );
        assert!(
            r.contains("lease_ms changed from 3000 to 5000; it takes effect when udlmd restarts"),
            "{r}"
        );
        assert!(c
            .handle(&Op::List, ROOT)
            .unwrap()
            .contains("\"id\":3,\"address\":\"127.0.0.3\",\"port\":7013"));
        // This node moving, a file with errors, and a node added without a
        // transport: refused, and nothing changes.
        for (text, words) in [
            (
                conf(&[(1, 7091), (2, 7002), (3, 7013)]),
                "a node's own address cannot change while it runs",
            ),
            (
                conf(&[(1, 7001), (2, 7002), (3, 7013)]) + "bogus=1\n",
                "error(s), so nothing was changed",
            ),
            (
                conf(&[(1, 7001), (2, 7002), (3, 7013), (4, 7004)]),
                "one-node cluster",
            ),
            (conf(&[(1, 7001)]), "would leave this node alone"),
        ] {
            std::fs::write(&path, text).unwrap();
            let (_, why) = refused(&c, Op::Reload);
            assert!(why.contains(words), "{why}");
        }
        let list = c.handle(&Op::List, ROOT).unwrap();
        assert!(
            list.contains("\"port\":7001")
                && list.contains("\"port\":7013")
                && !list.contains("\"id\":4"),
            "{list}"
        );
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
