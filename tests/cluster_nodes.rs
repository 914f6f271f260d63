//! Several nodes in one process, wired by an in-memory message bus that
//! delivers in order per sender/receiver pair, driven step by step: the lock
//! protocol between nodes (look-ups, remote requests, grants and BASTs across
//! nodes, masters forgotten after the grace period, stale masters) without
//! sockets or timing.

use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use udlm::node::peer::PeerMsg;
use udlm::node::sink::EventSink;
use udlm::node::{ClusterView, LockArgs, Node, NodeLimits, PeerLink, RESOURCE_GRACE_MS};
use udlm::proto::{Callback, UserArgs, CALLBACK_LEN};
use udlm::sys::{self, PeerCreds};
use udlm::types::{lkf, Errno, Owner, Status};

#[derive(Default)]
struct Bus(Mutex<VecDeque<(u32, u32, Vec<u8>)>>);

struct Wire {
    from: u32,
    bus: Arc<Bus>,
}

impl PeerLink for Wire {
    fn send(&self, to: u32, payload: Vec<u8>) -> bool {
        self.bus
            .0
            .lock()
            .unwrap()
            .push_back((self.from, to, payload));
        true
    }
}

struct Cluster {
    nodes: HashMap<u32, Node>,
    bus: Arc<Bus>,
    messages: usize,
    /// Links cut by a partition, and what waits to cross them (the
    /// transport keeps it and delivers it when the link is back).
    cut: std::collections::HashSet<(u32, u32)>,
    held: VecDeque<(u32, u32, Vec<u8>)>,
    /// Lockspace "ls" is mastered statically (`nodir`), on every node,
    /// restarted ones included.
    nodir: bool,
}

struct Handle {
    node: u32,
    owner: Owner,
    events: OwnedFd,
}

/// The routines and arguments every test lock passes (never called here).
const USER: UserArgs = UserArgs {
    ast: 1,
    astarg: 2,
    bast: 3,
    bastarg: 4,
    lksb: 5,
};

const CREDS: PeerCreds = PeerCreds {
    pid: 1,
    uid: 0,
    gid: 0,
};

impl Cluster {
    fn new(n: u32) -> Cluster {
        Cluster::with_fencing(n, false)
    }

    /// `fencing`: a fence command is configured (the test plays it).
    fn with_fencing(n: u32, fencing: bool) -> Cluster {
        Cluster::build(n, fencing, false)
    }

    /// `n` nodes where lockspace "ls" is `nodir`.
    fn nodir(n: u32) -> Cluster {
        Cluster::build(n, false, true)
    }

    fn build(n: u32, fencing: bool, nodir: bool) -> Cluster {
        let bus = Arc::new(Bus::default());
        let mut nodes = HashMap::new();
        for id in 1..=n {
            let mut node = Node::new(id, NodeLimits::default());
            let view = ClusterView {
                nodes: (1..=n).collect(),
                fencing,
                two_node: true,
                lockspaces: nodir_view(nodir),
                ..ClusterView::default()
            };
            node.set_cluster(
                view,
                Arc::new(Wire {
                    from: id,
                    bus: Arc::clone(&bus),
                }),
            );
            nodes.insert(id, node);
        }
        let mut c = Cluster {
            nodes,
            bus,
            messages: 0,
            cut: Default::default(),
            held: VecDeque::new(),
            nodir,
        };
        c.connect_all();
        c
    }

    /// Nodes 1 to 3 of a three-node cluster, `prepare`d, no session up
    /// yet; only those in `running` run (the others are left out).
    fn unconnected(running: &[u32], prepare: impl Fn(&mut Node)) -> Cluster {
        let bus = Arc::new(Bus::default());
        let mut nodes = HashMap::new();
        for &id in running {
            let mut node = Node::new(id, NodeLimits::default());
            node.set_cluster(
                ClusterView {
                    nodes: vec![1, 2, 3],
                    ..ClusterView::default()
                },
                Arc::new(Wire {
                    from: id,
                    bus: Arc::clone(&bus),
                }),
            );
            prepare(&mut node);
            nodes.insert(id, node);
        }
        Cluster {
            nodes,
            bus,
            messages: 0,
            cut: Default::default(),
            held: VecDeque::new(),
            nodir: false,
        }
    }

    /// Every node sees every other one come up; the coordinator's first
    /// generation makes them all members.
    fn connect_all(&mut self) {
        let ids: Vec<u32> = self.nodes.keys().copied().collect();
        for &a in &ids {
            for &b in &ids {
                if a != b {
                    self.nodes.get_mut(&a).unwrap().peer_up(b, u64::from(b));
                }
            }
        }
        self.run();
        for n in self.nodes.values() {
            assert!(!n.operations_blocked(), "node {} did not join", n.node_id());
        }
        self.messages = 0;
    }

    /// Delivers messages until none is left.
    fn run(&mut self) {
        loop {
            let m = self.bus.0.lock().unwrap().pop_front();
            let Some((from, to, payload)) = m else { return };
            if self.cut.contains(&(from, to)) {
                self.held.push_back((from, to, payload));
                continue;
            }
            self.messages += 1;
            // A dead node hears nothing.
            if let Some(n) = self.nodes.get_mut(&to) {
                n.on_peer_message(from, &payload);
            }
        }
    }

    /// Delivers at most `limit` messages; whether none is left then.
    fn run_at_most(&mut self, limit: usize) -> bool {
        for _ in 0..limit {
            let m = self.bus.0.lock().unwrap().pop_front();
            let Some((from, to, payload)) = m else {
                return true;
            };
            self.messages += 1;
            if let Some(n) = self.nodes.get_mut(&to) {
                n.on_peer_message(from, &payload);
            }
        }
        self.bus.0.lock().unwrap().is_empty()
    }

    fn open(&mut self, node: u32, ls: &[u8]) -> Handle {
        self.open_with(node, ls, 0)
    }

    /// A handle on a lockspace created with `flags` (udlm's extensions).
    fn open_with(&mut self, node: u32, ls: &[u8], flags: u32) -> Handle {
        let n = self.nodes.get_mut(&node).unwrap();
        let (owner, token) = n.open(ls, Some((0o600, flags)), CREDS).unwrap();
        let (ours, theirs) = sys::seqpacket_pair().unwrap();
        n.attach(token, EventSink::new(theirs), CREDS).unwrap();
        Handle {
            node,
            owner,
            events: ours,
        }
    }

    fn lock(&mut self, h: &Handle, name: &[u8], mode: u8, flags: u32) -> u32 {
        self.lock_with(h, name, mode, flags, 0)
    }

    fn unlock(&mut self, h: &Handle, lkid: u32) {
        self.nodes
            .get_mut(&h.node)
            .unwrap()
            .unlock(h.owner, lkid, 0, None, 0, 5)
            .expect("unlock accepted");
        self.run();
    }

    fn tick(&mut self, node: u32, now_ms: u64) {
        self.nodes.get_mut(&node).unwrap().tick(now_ms);
        self.run();
    }

    /// A lock call with every argument, returning the lock id.
    fn lock_with(&mut self, h: &Handle, name: &[u8], mode: u8, flags: u32, lkid: u32) -> u32 {
        self.lock_args(
            h,
            LockArgs {
                mode,
                flags,
                lkid,
                name,
                lvb: (flags & lkf::VALBLK != 0).then_some([7; 32]),
                user: USER,
                tid: 1,
                ..LockArgs::default()
            },
        )
    }

    /// A lock call inside the parent lock `parent` (hierarchical lockspaces).
    fn lock_with_parent(&mut self, h: &Handle, name: &[u8], mode: u8, parent: u32) -> u32 {
        self.lock_args(
            h,
            LockArgs {
                mode,
                name,
                user: USER,
                tid: 1,
                parent,
                ..LockArgs::default()
            },
        )
    }

    /// A lock call with `args` as given; the messages it causes are run.
    fn lock_args(&mut self, h: &Handle, args: LockArgs<'_>) -> u32 {
        let id = self
            .nodes
            .get_mut(&h.node)
            .unwrap()
            .lock(h.owner, args)
            .expect("lock accepted");
        self.run();
        id
    }

    /// Node `dead` stops (its process is gone): the others lose their
    /// sessions with it, and after the lease the coordinator recovers.
    fn kill(&mut self, dead: u32, lease_ms: u64) {
        self.nodes.remove(&dead);
        self.bus
            .0
            .lock()
            .unwrap()
            .retain(|m| m.0 != dead && m.1 != dead);
        let ids: Vec<u32> = self.nodes.keys().copied().collect();
        for &n in &ids {
            let node = self.nodes.get_mut(&n).unwrap();
            node.tick(1);
            node.peer_down(dead);
        }
        self.run();
        for &n in &ids {
            self.nodes.get_mut(&n).unwrap().tick(lease_ms + 2);
            self.run();
        }
    }

    /// Cuts every link between `side` and the other nodes; both ends lose
    /// their sessions.
    fn partition(&mut self, side: &[u32], now_ms: u64) {
        let ids: Vec<u32> = self.nodes.keys().copied().collect();
        for &a in &ids {
            for &b in &ids {
                if a != b && side.contains(&a) != side.contains(&b) {
                    self.cut.insert((a, b));
                    let n = self.nodes.get_mut(&a).unwrap();
                    n.tick(now_ms);
                    n.peer_down(b);
                }
            }
        }
        self.run();
    }

    /// Delivers at most `n` messages.
    fn step(&mut self, n: usize) {
        for _ in 0..n {
            let m = self.bus.0.lock().unwrap().pop_front();
            let Some((from, to, payload)) = m else { return };
            if let Some(node) = self.nodes.get_mut(&to) {
                node.on_peer_message(from, &payload);
            }
        }
    }

    /// Node `dead` stops; the others see its session go, nothing more.
    fn crash(&mut self, dead: u32, now_ms: u64) {
        self.nodes.remove(&dead);
        self.bus
            .0
            .lock()
            .unwrap()
            .retain(|m| m.0 != dead && m.1 != dead);
        let ids: Vec<u32> = self.nodes.keys().copied().collect();
        for n in ids {
            let node = self.nodes.get_mut(&n).unwrap();
            node.tick(now_ms);
            node.peer_down(dead);
        }
    }

    /// Every node's clock moves to `now_ms`.
    fn tick_all(&mut self, now_ms: u64) {
        let ids: Vec<u32> = self.nodes.keys().copied().collect();
        for n in ids {
            self.tick(n, now_ms);
        }
    }

    /// The cut links are back, with the same incarnations.
    fn heal(&mut self) {
        let cut: Vec<(u32, u32)> = self.cut.iter().copied().collect();
        self.release_held();
        for (a, b) in cut {
            self.nodes.get_mut(&a).unwrap().peer_up(b, u64::from(b));
        }
        self.run();
    }

    /// The cut links carry again what waited on them (slow links, not
    /// lost sessions: nobody sees a session go or come).
    fn release_held(&mut self) {
        self.cut.clear();
        let held: Vec<_> = self.held.drain(..).collect();
        self.bus.0.lock().unwrap().extend(held);
    }

    /// A restarted node `id` (empty) comes up with a new incarnation.
    fn restart(&mut self, id: u32, incarnation: u64) {
        self.restart_unrun(id, incarnation);
        self.run();
    }

    /// `restart`, leaving the messages it causes undelivered.
    fn restart_unrun(&mut self, id: u32, incarnation: u64) {
        let n = self.nodes.len() as u32 + 1;
        let mut node = Node::new(id, NodeLimits::default());
        node.set_cluster(
            ClusterView {
                nodes: (1..=n).collect(),
                lockspaces: nodir_view(self.nodir),
                ..ClusterView::default()
            },
            Arc::new(Wire {
                from: id,
                bus: Arc::clone(&self.bus),
            }),
        );
        self.nodes.insert(id, node);
        let ids: Vec<u32> = self.nodes.keys().copied().collect();
        for &other in &ids {
            if other != id {
                self.nodes.get_mut(&other).unwrap().peer_up(id, incarnation);
                self.nodes
                    .get_mut(&id)
                    .unwrap()
                    .peer_up(other, u64::from(other));
            }
        }
    }

    /// Node 2 dies; generation 2 delivers `cut_after` messages before node
    /// 2 comes back (the messages of its return left undelivered), so that
    /// generation 3 follows one left unfinished somewhere (class T).
    fn leave_generation_2_halfway(&mut self, cut_after: usize) {
        self.crash(2, 1);
        self.run();
        for n in [1, 3] {
            self.nodes.get_mut(&n).unwrap().tick(LEASE_MS + 2);
        }
        self.step(cut_after);
        self.restart_unrun(2, 99);
    }

    fn masters(&self, node: u32, ls: &[u8], name: &[u8]) -> bool {
        self.nodes[&node]
            .lockspace_engine(ls)
            .is_some_and(|e| e.has_resource(name))
    }
}

/// Six names (`prefix` and a number) that node 1 masters when it asks
/// first, and whose directory node it is, among nodes 1 to 3: a recovery
/// that moves every name to its directory node leaves them with node 1.
fn names_directed_to_1(prefix: &str) -> Vec<Vec<u8>> {
    let all = [(1, 1), (2, 1), (3, 1)];
    (0..200)
        .map(|i| format!("{prefix}{i}").into_bytes())
        .filter(|n| udlm::cluster::config::directory_node(n, &all) == Some(1))
        .take(6)
        .collect()
}

/// The lockspace configuration of a `ClusterView`: "ls" `nodir` or not.
fn nodir_view(nodir: bool) -> HashMap<Vec<u8>, (bool, Vec<(u32, u32)>)> {
    let mut m = HashMap::new();
    if nodir {
        m.insert(b"ls".to_vec(), (true, Vec::new()));
    }
    m
}

/// Callbacks delivered to a handle so far, decoded.
fn received(h: &Handle) -> Vec<Callback> {
    let mut out = Vec::new();
    let mut buf = [0u8; CALLBACK_LEN + 1];
    while let Ok(n) = sys::recv(h.events.as_raw_fd(), &mut buf, true) {
        if n == 0 {
            break;
        }
        out.push(Callback::decode(&buf[..n]).unwrap());
    }
    out
}

/// Callbacks delivered to a handle so far: (blocking, lkid, status).
fn callbacks(h: &Handle) -> Vec<(bool, u32, i32)> {
    received(h)
        .into_iter()
        .map(|cb| (cb.blocking, cb.lkid, cb.status))
        .collect()
}

/// Callbacks with their status-block flags: (blocking, lkid, status, sb_flags).
fn callbacks_with_flags(h: &Handle) -> Vec<(bool, u32, i32, u8)> {
    received(h)
        .into_iter()
        .map(|cb| (cb.blocking, cb.lkid, cb.status, cb.sb_flags))
        .collect()
}

/// Completions with the value block they carry: (lkid, status, lvb).
fn completions_with_lvb(h: &Handle) -> Vec<(u32, i32, Option<[u8; 32]>)> {
    received(h)
        .into_iter()
        .filter(|cb| !cb.blocking)
        .map(|cb| (cb.lkid, cb.status, cb.lvb))
        .collect()
}

const G: i32 = 0;
const UNLOCK: i32 = Status::EUNLOCK;

#[test]
fn grants_and_basts_cross_nodes() {
    let mut c = Cluster::new(3);
    let a = c.open(1, b"ls");
    let b = c.open(2, b"ls");
    let x = c.lock(&a, b"r", 5, 0);
    assert_eq!(callbacks(&a), vec![(false, x, G)]);
    let y = c.lock(&b, b"r", 5, 0);
    assert_eq!(callbacks(&b), vec![]);
    assert_eq!(
        callbacks(&a),
        vec![(true, x, G)],
        "node 1's holder gets a BAST"
    );
    let z = c.lock(&b, b"r", 5, lkf::NOQUEUE);
    assert_eq!(callbacks(&b), vec![(false, z, libc::EAGAIN)]);
    c.unlock(&a, x);
    assert_eq!(callbacks(&a), vec![(false, x, UNLOCK)]);
    assert_eq!(callbacks(&b), vec![(false, y, G)]);
}

#[test]
fn the_first_asker_masters_and_look_ups_are_cached() {
    let mut c = Cluster::new(3);
    let hs: Vec<Handle> = (1..=3).map(|n| c.open(n, b"ls")).collect();
    for (i, h) in hs.iter().enumerate() {
        let name = format!("first-{i}");
        let before = c.messages;
        let id = c.lock(h, name.as_bytes(), 3, 0);
        assert_eq!(callbacks(h), vec![(false, id, G)]);
        assert!(
            c.masters(h.node, b"ls", name.as_bytes()),
            "node {} masters what it asked first",
            h.node
        );
        assert!(c.messages - before <= 2, "at most one look-up round trip");
        // A second lock by the same node: no message at all.
        let before = c.messages;
        let id2 = c.lock(h, name.as_bytes(), 3, 0);
        assert_eq!(callbacks(h), vec![(false, id2, G)]);
        assert_eq!(c.messages, before);
    }
}

#[test]
fn idle_masters_are_forgotten_and_stale_caches_recover() {
    let mut c = Cluster::new(3);
    let h1 = c.open(1, b"ls");
    let h2 = c.open(2, b"ls");
    let h3 = c.open(3, b"ls");
    // Node 2 masters "x"; node 1 uses it too and caches that.
    let a = c.lock(&h2, b"x", 3, 0);
    let b = c.lock(&h1, b"x", 3, 0);
    assert!(c.masters(2, b"ls", b"x"));
    assert_eq!(callbacks(&h1), vec![(false, b, G)]);
    c.unlock(&h1, b);
    c.unlock(&h2, a);
    assert_eq!(callbacks(&h1), vec![(false, b, UNLOCK)]);
    assert_eq!(callbacks(&h2), vec![(false, a, G), (false, a, UNLOCK)]);
    assert!(!c.masters(2, b"ls", b"x"), "no lock is left on x");
    // Only node 2 and the directory node pass the grace period; node 1
    // keeps its (now stale) cached master.
    for n in [2, 3] {
        c.tick(n, 0);
        c.tick(n, RESOURCE_GRACE_MS + 1);
    }
    // Node 3 asks: the directory forgot node 2, so node 3 becomes master.
    let d = c.lock(&h3, b"x", 5, 0);
    assert_eq!(callbacks(&h3), vec![(false, d, G)]);
    assert!(c.masters(3, b"ls", b"x"));
    // Node 1 still believes node 2 masters x: node 2 says it does not, node 1
    // asks the directory and ends up queued behind node 3's EX.
    let e = c.lock(&h1, b"x", 3, 0);
    assert_eq!(callbacks(&h1), vec![]);
    assert!(!c.masters(2, b"ls", b"x"));
    c.unlock(&h3, d);
    assert_eq!(callbacks(&h1), vec![(false, e, G)]);
    assert_eq!(callbacks(&h2), vec![], "node 2 heard nothing of the others");
}

/// A random workload on 3 nodes with messages delivered in random order
/// across node pairs (in order within a pair), ticks that expire idle
/// masters, and after every step the cluster-wide invariant: the modes the
/// programs of all nodes believe they hold on one resource are compatible.
/// At the end everything is unlocked and no lock is left anywhere.
#[test]
fn random_workload_keeps_holders_compatible_across_nodes() {
    if let Some(seed) = std::env::var("UDLM_CLUSTER_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return run_random(seed);
    }
    let seeds: u64 = std::env::var("UDLM_CLUSTER_SEEDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    for seed in 1..=seeds {
        run_random(seed);
    }
}

fn run_random(seed: u64) {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut c = Cluster::new(3);
    let handles: Vec<Handle> = (1..=3)
        .flat_map(|n| [n, n])
        .map(|n| c.open(n, b"ls"))
        .collect();
    // Per handle: lkids it believes alive (granted or pending).
    let mut live: Vec<Vec<u32>> = vec![Vec::new(); handles.len()];
    let mut granted: Vec<std::collections::HashSet<u32>> = vec![Default::default(); handles.len()];
    let names: [&[u8]; 3] = [b"a", b"b", b"c"];
    let mut now = 0u64;
    for step in 0..400 {
        match rnd(10) {
            0..=2 => {
                let h = rnd(handles.len() as u64) as usize;
                let mode = rnd(6) as u8;
                let flags = if rnd(3) == 0 { lkf::NOQUEUE } else { 0 };
                let name = names[rnd(3) as usize];
                let user = USER;
                let args = LockArgs {
                    mode,
                    flags,
                    lkid: 0,
                    name,
                    lvb: None,
                    user,
                    tid: 1,
                    ..LockArgs::default()
                };
                let hd = &handles[h];
                if let Ok(id) = c.nodes.get_mut(&hd.node).unwrap().lock(hd.owner, args) {
                    live[h].push(id);
                }
            }
            3 => {
                let h = rnd(handles.len() as u64) as usize;
                if !live[h].is_empty() {
                    let id = live[h][rnd(live[h].len() as u64) as usize];
                    let flags = lkf::CONVERT
                        | [0, lkf::NOQUEUE, lkf::QUECVT, lkf::CONVDEADLK][rnd(4) as usize];
                    let user = USER;
                    let args = LockArgs {
                        mode: rnd(6) as u8,
                        flags,
                        lkid: id,
                        name: b"",
                        lvb: None,
                        user,
                        tid: 1,
                        ..LockArgs::default()
                    };
                    let hd = &handles[h];
                    let _ = c.nodes.get_mut(&hd.node).unwrap().lock(hd.owner, args);
                }
            }
            4..=5 => {
                let h = rnd(handles.len() as u64) as usize;
                if !live[h].is_empty() {
                    let i = rnd(live[h].len() as u64) as usize;
                    let id = live[h][i];
                    let hd = &handles[h];
                    let flags = [0, lkf::FORCEUNLOCK, lkf::CANCEL][rnd(3) as usize];
                    let _ = c
                        .nodes
                        .get_mut(&hd.node)
                        .unwrap()
                        .unlock(hd.owner, id, flags, None, 0, 5);
                }
            }
            6 => {
                now += RESOURCE_GRACE_MS / 2;
                let n = 1 + rnd(3) as u32;
                c.nodes.get_mut(&n).unwrap().tick(now);
            }
            _ => deliver_one(&mut c, &mut rnd),
        }
        // Forget the ids whose life ended (their final callback arrived).
        for (h, hd) in handles.iter().enumerate() {
            for (blocking, lkid, status) in callbacks(hd) {
                if blocking {
                    continue;
                }
                if status == 0 {
                    granted[h].insert(lkid);
                }
                // EAGAIN, EDEADLK and ECANCEL end a new request, not a
                // conversion of a granted lock.
                let failed =
                    status == Status::ECANCEL || status == libc::EAGAIN || status == libc::EDEADLK;
                if status == UNLOCK || (failed && !granted[h].contains(&lkid)) {
                    live[h].retain(|&id| id != lkid);
                    granted[h].remove(&lkid);
                }
            }
        }
        check_compatible(&c, seed, step);
    }
    // Drain, then release everything.
    for _ in 0..10_000 {
        if c.bus.0.lock().unwrap().is_empty() {
            break;
        }
        deliver_one(&mut c, &mut rnd);
    }
    c.run();
    for (h, hd) in handles.iter().enumerate() {
        for &id in &live[h] {
            let _ = c.nodes.get_mut(&hd.node).unwrap().unlock(
                hd.owner,
                id,
                lkf::FORCEUNLOCK,
                None,
                0,
                5,
            );
        }
        c.run();
        let _ = callbacks(hd);
    }
    for h in &handles {
        c.nodes.get_mut(&h.node).unwrap().close(h.owner);
        c.run();
    }
    for (id, n) in &c.nodes {
        assert_eq!(
            n.lock_counts(),
            (0, 0),
            "seed {seed}: node {id} keeps locks after everything was released: {:?}",
            n.query(&udlm::proto::Query::Lockdump(b"ls".to_vec()), CREDS)
        );
    }
}

/// Delivers the oldest message of a random sender/receiver pair.
fn deliver_one(c: &mut Cluster, rnd: &mut impl FnMut(u64) -> u64) {
    let pick = {
        let q = c.bus.0.lock().unwrap();
        if q.is_empty() {
            return;
        }
        let (from, to, _) = q[rnd(q.len() as u64) as usize];
        q.iter().position(|(f, t, _)| *f == from && *t == to)
    };
    let Some(i) = pick else { return };
    let (from, to, payload) = c.bus.0.lock().unwrap().remove(i).unwrap();
    c.messages += 1;
    c.nodes
        .get_mut(&to)
        .unwrap()
        .on_peer_message(from, &payload);
}

fn check_compatible(c: &Cluster, seed: u64, step: usize) {
    for name in [&b"a"[..], b"b", b"c"] {
        let masters: Vec<u32> = c
            .nodes
            .iter()
            .filter(|(_, n)| {
                n.lockspace_engine(b"ls")
                    .is_some_and(|e| e.has_resource(name))
            })
            .map(|(&id, _)| id)
            .collect();
        assert!(
            masters.len() <= 1,
            "seed {seed} step {step}: {:?} mastered on nodes {masters:?}",
            String::from_utf8_lossy(name)
        );
    }
    let mut held: Vec<(u32, Vec<u8>, udlm::types::ResName, udlm::types::Mode)> = Vec::new();
    for (&id, n) in &c.nodes {
        for (ls, name, mode) in n.held_locks() {
            held.push((id, ls, name, mode));
        }
    }
    for (i, a) in held.iter().enumerate() {
        for b in &held[i + 1..] {
            if a.1 == b.1 && a.2 == b.2 {
                assert!(
                    a.3.compatible(b.3),
                    "seed {seed} step {step}: node {} holds {} and node {} holds {} on {:?}",
                    a.0,
                    a.3,
                    b.0,
                    b.3,
                    a.2
                );
            }
        }
    }
}

const LEASE_MS: u64 = udlm::cluster::config::DEFAULT_LEASE_MS;
const VALNOTVALID: u8 = udlm::types::sbf::VALNOTVALID;

/// Node 3 dies holding EX (with VALBLK) on names it masters and on names
/// node 1 masters; node 1 waits on all of them, node 2 holds a PR that must
/// survive. After the lease the survivors recover: every wait is granted
/// with VALNOTVALID (an EX holder died), node 2's PR is untouched, and the
/// restarted node 3 joins again and locks like anyone.
#[test]
fn a_dead_nodes_locks_are_dropped_and_waiters_granted() {
    let mut c = Cluster::new(3);
    let h1 = c.open(1, b"ls");
    let h2 = c.open(2, b"ls");
    let h3 = c.open(3, b"ls");
    let names: Vec<Vec<u8>> = (0..12).map(|i| format!("res-{i}").into_bytes()).collect();
    let mut waits = Vec::new();
    for (i, name) in names.iter().enumerate() {
        // Even names: node 1 asks first (NL) and masters them; odd names:
        // node 3 masters them.
        // Where node 1 masters, it writes a value first (EX, then down to
        // NL); where node 3 masters, node 3 writes it the same way.
        let nl = if i % 2 == 0 {
            let id = c.lock_with(&h1, name, 5, lkf::VALBLK, 0);
            c.lock_with(&h1, name, 0, lkf::CONVERT | lkf::VALBLK, id);
            assert_eq!(callbacks(&h1).len(), 2);
            Some(id)
        } else {
            let id = c.lock_with(&h3, name, 5, lkf::VALBLK, 0);
            c.lock_with(&h3, name, 0, lkf::CONVERT | lkf::VALBLK, id);
            c.unlock(&h3, id);
            assert_eq!(callbacks(&h3).len(), 3);
            None
        };
        let x = c.lock_with(&h3, name, 5, lkf::VALBLK, 0);
        assert_eq!(callbacks(&h3), vec![(false, x, G)]);
        let w = match nl {
            Some(id) => {
                assert_eq!(callbacks(&h1), vec![]);
                c.lock_with(&h1, name, 5, lkf::CONVERT | lkf::VALBLK, id)
            }
            None => c.lock_with(&h1, name, 5, lkf::VALBLK, 0),
        };
        waits.push(w);
        assert_eq!(callbacks(&h1), vec![]);
        assert_eq!(
            callbacks(&h3),
            vec![(true, x, G)],
            "node 3's EX is blocking"
        );
    }
    let keep = c.lock(&h2, b"keep", 3, 0);
    assert_eq!(callbacks(&h2), vec![(false, keep, G)]);
    drop(h3);
    c.kill(3, LEASE_MS);
    let mut got = callbacks_with_flags(&h1);
    got.sort_unstable();
    // Every name had an EX holder with VALBLK on node 3: where node 1
    // masters the name, that holder's death invalidated the value; where
    // node 3 mastered it, the value is lost with it, and node 1's waiting
    // VALBLK request tells the new master so.
    let mut want: Vec<(bool, u32, i32, u8)> =
        waits.iter().map(|&w| (false, w, G, VALNOTVALID)).collect();
    want.sort_unstable();
    assert_eq!(got, want, "every waiter granted, the LVB marked not valid");
    // Node 2's PR survived: an EX NOQUEUE from node 1 is refused.
    let t = c.lock(&h1, b"keep", 5, lkf::NOQUEUE);
    assert_eq!(callbacks(&h1), vec![(false, t, libc::EAGAIN)]);
    c.unlock(&h2, keep);
    assert_eq!(callbacks(&h2), vec![(false, keep, UNLOCK)]);
    // Node 3 comes back empty and takes part again.
    c.restart(3, 33);
    assert!(c.nodes.values().all(|n| !n.operations_blocked()));
    let h3 = c.open(3, b"ls");
    let y = c.lock(&h3, &names[1], 5, 0);
    assert_eq!(callbacks(&h3), vec![]);
    c.unlock(&h1, waits[1]);
    assert_eq!(
        callbacks(&h1),
        vec![(true, waits[1], G), (false, waits[1], UNLOCK)]
    );
    assert_eq!(callbacks(&h3), vec![(false, y, G)]);
}

/// A survivor's granted locks on a resource whose master died keep their
/// modes on the new master, with the LVB a PR holder had read; conversions
/// and requests that waited there are sent again and end as before.
#[test]
fn survivors_locks_move_to_the_new_master_with_their_lvb() {
    let mut c = Cluster::new(3);
    let h1 = c.open(1, b"ls");
    let h2 = c.open(2, b"ls");
    let h3 = c.open(3, b"ls");
    // Node 3 masters "m" and writes an LVB through EX, then goes down to NL.
    let x = c.lock_with(&h3, b"m", 5, lkf::VALBLK, 0);
    c.lock_with(&h3, b"m", 0, lkf::CONVERT | lkf::VALBLK, x);
    assert_eq!(callbacks(&h3).len(), 2);
    // Node 1 reads it in PR; node 2 holds PR and waits to go up to EX;
    // node 1 has a second request for EX waiting.
    let a = c.lock_with(&h1, b"m", 3, lkf::VALBLK, 0);
    assert_eq!(callbacks_with_flags(&h1), vec![(false, a, G, 0)]);
    let b = c.lock(&h2, b"m", 3, 0);
    assert_eq!(callbacks(&h2), vec![(false, b, G)]);
    c.lock_with(&h2, b"m", 5, lkf::CONVERT, b);
    let w = c.lock(&h1, b"m", 5, 0);
    assert_eq!(callbacks(&h1), vec![(true, a, G)]);
    assert_eq!(callbacks(&h2), vec![]);
    drop(h3);
    c.kill(3, LEASE_MS);
    // Nothing changed for the programs yet: PRs held, conversion and
    // request still waiting (the conversion, sent again, may repeat its
    // BAST to node 1's PR: no completion though).
    assert_eq!(callbacks(&h2), vec![]);
    assert!(callbacks(&h1).iter().all(|c| c.0 && c.1 == a));
    // Node 1 gives up its PR: node 2's conversion is granted first.
    c.unlock(&h1, a);
    assert_eq!(callbacks(&h1), vec![(false, a, UNLOCK)]);
    assert_eq!(callbacks(&h2), vec![(false, b, G), (true, b, G)]);
    // Node 2 lets go (writing nothing); node 1's EX is granted, and a VALBLK
    // conversion reads the value node 3 wrote: recovered from node 1's PR,
    // still valid.
    c.unlock(&h2, b);
    assert_eq!(callbacks(&h2), vec![(false, b, UNLOCK)]);
    assert_eq!(callbacks(&h1), vec![(false, w, G)]);
    let r = c.lock_with(&h1, b"m", 3, lkf::VALBLK | lkf::CONVERT, w);
    let got = callbacks_with_flags(&h1);
    assert_eq!(got, vec![(false, r, G, 0)], "the LVB was recovered valid");
}

/// A node shutting down cleanly says so: the others recover at once,
/// without waiting for its lease.
#[test]
fn a_node_that_leaves_is_recovered_without_waiting_for_its_lease() {
    let mut c = Cluster::new(3);
    let h1 = c.open(1, b"ls");
    let h3 = c.open(3, b"ls");
    let x = c.lock(&h3, b"r", 5, 0);
    assert_eq!(callbacks(&h3), vec![(false, x, G)]);
    let w = c.lock(&h1, b"r", 5, 0);
    assert_eq!(callbacks(&h1), vec![]);
    c.nodes.get_mut(&3).unwrap().leave();
    c.run();
    c.nodes.remove(&3);
    for n in [1, 2] {
        c.nodes.get_mut(&n).unwrap().peer_down(3);
    }
    c.run();
    assert_eq!(
        callbacks(&h1),
        vec![(false, w, G)],
        "granted with no tick at all"
    );
    drop(h3);
}

/// The two nodes of a pair shut down at the same moment: each hears the
/// other leave, and neither may answer with a generation of its own (each
/// new generation's word made the other start one, thousands in the 200 ms
/// a leaving daemon waits before it exits).
#[test]
fn two_nodes_leaving_at_once_fall_silent() {
    let mut c = Cluster::new(2);
    let _h1 = c.open(1, b"ls");
    let _h2 = c.open(2, b"ls");
    c.nodes.get_mut(&1).unwrap().leave();
    c.nodes.get_mut(&2).unwrap().leave();
    assert!(c.run_at_most(1000), "still talking after 1000 messages");
}

/// A node cut off from the majority stops after half its lease: its
/// waiting request fails with ENOLCK and its locks are gone; the majority
/// takes them over only after the whole lease; after the heal the node
/// joins again afresh and locks like the others.
#[test]
fn a_node_without_majority_stops_before_the_others_take_over() {
    let mut c = Cluster::new(3);
    let h1 = c.open(1, b"ls");
    let h2 = c.open(2, b"ls");
    let held = c.lock(&h1, b"held-by-1", 5, 0);
    let y = c.lock(&h2, b"held-by-2", 5, 0);
    assert_eq!(callbacks(&h2), vec![(false, y, G)]);
    let waits = c.lock(&h1, b"held-by-2", 5, 0);
    assert_eq!(callbacks(&h1), vec![(false, held, G)]);
    assert_eq!(callbacks(&h2), vec![(true, y, G)]);
    let z = c.lock(&h2, b"held-by-1", 5, 0);
    assert_eq!(callbacks(&h1), vec![(true, held, G)]);
    c.partition(&[1], 10);
    c.tick_all(10 + LEASE_MS / 2 - 1);
    assert_eq!(callbacks(&h1), vec![], "not yet");
    assert!(!c.nodes[&1].operations_blocked());
    c.tick_all(10 + LEASE_MS / 2);
    assert_eq!(
        callbacks(&h1),
        vec![(false, waits, libc::ENOLCK)],
        "the minority fails its waiting request"
    );
    assert!(c.nodes[&1].operations_blocked(), "and stops granting");
    assert_eq!(
        callbacks(&h2),
        vec![],
        "the majority still waits for the lease"
    );
    c.tick_all(10 + LEASE_MS + 1);
    assert_eq!(
        callbacks(&h2),
        vec![(false, z, G)],
        "then takes node 1's EX over"
    );
    c.heal();
    assert!(c.nodes.values().all(|n| !n.operations_blocked()));
    let again = c.lock(&h1, b"free", 5, 0);
    assert_eq!(callbacks(&h1), vec![(false, again, G)]);
    let blocked = c.lock(&h1, b"held-by-1", 5, 0);
    assert_eq!(callbacks(&h1), vec![]);
    c.unlock(&h2, z);
    assert_eq!(callbacks(&h1), vec![(false, blocked, G)]);
}

/// Node 2 loses its link with node 3, which keeps its majority through
/// node 1. Node 1 then crashes and comes back empty; before it reaches
/// node 3 again it starts a generation with node 2 alone. Node 3 lost its
/// majority only when node 1 crashed, so it may still be running with its
/// locks for a lease from then, however old node 2's own cut is: node 2
/// must not take node 3's names over meanwhile (sim seed 3010706, where it
/// mastered a name node 3 still mastered).
#[test]
fn a_node_cut_off_from_one_member_keeps_its_lease_through_another() {
    let mut c = Cluster::new(3);
    let h2 = c.open(2, b"ls");
    let h3 = c.open(3, b"ls");
    let x = c.lock(&h3, b"r", 5, 0);
    assert_eq!(callbacks(&h3), vec![(false, x, G)]);
    let w = c.lock(&h2, b"r", 5, 0);
    assert_eq!(callbacks(&h3), vec![(true, x, G)]);
    assert!(c.masters(3, b"ls", b"r"));
    // The 2-3 link goes; 1 still sees both, so nobody recovers.
    for (a, b) in [(2, 3), (3, 2)] {
        c.cut.insert((a, b));
        let n = c.nodes.get_mut(&a).unwrap();
        n.tick(10);
        n.peer_down(b);
    }
    c.run();
    c.tick_all(10 + 2 * LEASE_MS);
    assert!(c.nodes.values().all(|n| !n.operations_blocked()));
    // Node 1 crashes and restarts, and reaches node 2 first.
    let t = 20 + 2 * LEASE_MS;
    c.crash(1, t);
    c.run();
    let mut n1 = Node::new(1, NodeLimits::default());
    n1.set_cluster(
        ClusterView {
            nodes: vec![1, 2, 3],
            ..ClusterView::default()
        },
        Arc::new(Wire {
            from: 1,
            bus: Arc::clone(&c.bus),
        }),
    );
    n1.tick(t + 5);
    c.nodes.insert(1, n1);
    c.nodes.get_mut(&2).unwrap().tick(t + 5);
    c.nodes.get_mut(&2).unwrap().peer_up(1, 100);
    c.nodes.get_mut(&1).unwrap().peer_up(2, 2);
    c.run();
    assert_eq!(callbacks(&h2), vec![], "node 3's EX still stands");
    assert!(
        !c.masters(2, b"ls", b"r"),
        "node 2 took over a name node 3 may still master"
    );
    // Node 1 reaches node 3 before node 3's lease ran out: all three again.
    c.nodes.get_mut(&3).unwrap().tick(t + 10);
    c.nodes.get_mut(&1).unwrap().tick(t + 10);
    c.nodes.get_mut(&3).unwrap().peer_up(1, 100);
    c.nodes.get_mut(&1).unwrap().peer_up(3, 3);
    c.run();
    assert_eq!(callbacks(&h2), vec![], "node 3's EX still stands");
    assert!(c.masters(3, b"ls", b"r") && !c.masters(2, b"ls", b"r"));
    drop(h3);
    let _ = w;
}

/// Node 3 holds back a Start from node 2 while it sees node 1, which is
/// lower. Then node 3 is cut off, loses its majority and fences itself:
/// its locks, masterships and directory records are gone. That old Start
/// counts on them; taking it up once node 1 is out of its view made node 3
/// a member of a generation it could not serve, where it answered a
/// look-up from its empty directory while node 1 held EX on the name it
/// had mastered (sim seed 3404100 with `--skew-div 3`).
#[test]
fn a_node_that_fenced_itself_takes_up_no_start_it_held_back() {
    use udlm::cluster::config::directory_node;
    let members = [(1, 1), (2, 1), (3, 1)];
    let name = (0..100)
        .map(|i| format!("d{i}").into_bytes())
        .find(|n| directory_node(n, &members) == Some(3))
        .expect("a name of node 3's directory");
    let mut c = Cluster::new(3);
    let h1 = c.open(1, b"ls");
    let h2 = c.open(2, b"ls");
    let h3 = c.open(3, b"ls");
    c.lock(&h3, &name, 0, 0);
    let x = c.lock(&h1, &name, 5, 0);
    assert_eq!(callbacks(&h1), vec![(false, x, G)]);
    assert!(c.masters(3, b"ls", &name));
    let start = PeerMsg::Start {
        gen: 2,
        members: vec![2, 3],
        fresh: vec![],
    };
    c.nodes
        .get_mut(&3)
        .unwrap()
        .on_peer_message(2, &start.encode());
    assert!(
        !c.nodes[&3].operations_blocked(),
        "held back: node 1 is lower"
    );
    c.partition(&[3], 10);
    c.tick(3, 10 + LEASE_MS / 2 + 1);
    assert!(c.nodes[&3].operations_blocked(), "node 3 fenced itself");
    drop(h3);
    c.heal();
    assert!(c.nodes.values().all(|n| !n.operations_blocked()));
    let y = c.lock(&h2, &name, 5, lkf::NOQUEUE);
    assert_eq!(
        callbacks(&h2),
        vec![(false, y, libc::EAGAIN)],
        "node 2 was granted EX beside node 1's"
    );
}

/// A second cancel while the first is on its way to a remote master
/// returns 0 and adds nothing (spec 6.4): no second cancel goes out, whose
/// refusal, once the first had reverted the conversion, ended the next
/// conversion with EINVAL (sim seed 4149973).
#[test]
fn a_second_cancel_in_flight_adds_nothing() {
    let mut c = Cluster::new(3);
    let h1 = c.open(1, b"ls");
    let h2 = c.open(2, b"ls");
    // Node 2 asks first: it masters "r".
    let pr = c.lock(&h2, b"r", 3, 0);
    let l = c.lock(&h1, b"r", 1, 0);
    let _ = (callbacks(&h1), callbacks(&h2));
    c.lock_with(&h1, b"r", 5, lkf::CONVERT, l);
    assert_eq!(callbacks(&h1), vec![], "CR -> EX waits behind PR");
    let n1 = c.nodes.get_mut(&1).unwrap();
    assert_eq!(n1.unlock(h1.owner, l, lkf::CANCEL, None, 0, 5), Ok(0));
    assert_eq!(n1.unlock(h1.owner, l, lkf::CANCEL, None, 0, 5), Ok(0));
    // The cancels reach node 2, and the first one's answer comes back.
    c.step(3);
    assert_eq!(callbacks(&h1), vec![(false, l, Status::ECANCEL)]);
    // The lock is CR again; its next conversion waits, and nothing else
    // comes (whatever else node 2 answered is on its way behind).
    c.lock_with(&h1, b"r", 5, lkf::CONVERT, l);
    assert_eq!(callbacks(&h1), vec![]);
    let _ = callbacks(&h2);
    c.unlock(&h2, pr);
    assert_eq!(callbacks(&h1), vec![(false, l, G)]);
}

/// A handle closed while a recovery runs: its node tells the masters of
/// its locks when the recovery ends, but the recovery may move those
/// names, and a master kept through a generation left unfinished may hold
/// a copy of a lock that its node, having closed the handle, never sends
/// again: a granted lock (sim seed 3024108), or a waiting request whose
/// node no longer knew any master for it (3232368). No lock of the handle
/// may outlive it anywhere.
#[test]
fn a_handle_closed_while_names_move_leaves_no_lock_behind() {
    close_while_names_move(false);
    close_while_names_move(true);
}

/// Node 3's handle holds EX on names node 2 masters among four nodes (or,
/// `waiting`, waits for them behind node 1's EX) and is closed in the
/// second of two recoveries, the first left unfinished by node 2.
fn close_while_names_move(waiting: bool) {
    use udlm::cluster::config::directory_node;
    // Names node 2 masters among four nodes but not among three: they
    // leave node 2 when node 4 dies and come back when it returns. (A
    // name that stayed with node 2 would make node 3 tell node 2 of the
    // close anyway.)
    let all = [(1, 1), (2, 1), (3, 1), (4, 1)];
    let names: Vec<Vec<u8>> = (0..200)
        .map(|i| format!("o{i}").into_bytes())
        .filter(|n| directory_node(n, &all) == Some(2) && directory_node(n, &all[..3]) != Some(2))
        .take(8)
        .collect();
    assert!(!names.is_empty());
    let mut c = Cluster::nodir(4);
    let h1 = c.open(1, b"ls");
    let h3 = c.open(3, b"ls");
    let mut first = Vec::new();
    for name in &names {
        if waiting {
            first.push(c.lock(&h1, name, 5, 0));
        }
        c.lock(&h3, name, 5, 0);
        assert!(c.masters(2, b"ls", name));
    }
    let _ = (callbacks(&h1), callbacks(&h3));
    // Node 4 dies: every name is hashed again over nodes 1 to 3. From
    // node 3's Quiet marker on, what node 3 sends node 2 is slow: nodes 1
    // and 3 rebuild and move the names; node 2, still without that
    // marker, does not, and keeps its copies.
    c.crash(4, 1);
    c.run();
    for n in 1..=3 {
        c.nodes.get_mut(&n).unwrap().tick(LEASE_MS + 2);
    }
    loop {
        let m = c.bus.0.lock().unwrap().pop_front();
        let Some((from, to, payload)) = m else { break };
        let quiet_3_to_2 = (from, to) == (3, 2)
            && matches!(
                PeerMsg::decode(&payload),
                Ok(PeerMsg::Barrier {
                    gen: 2,
                    phase: 2,
                    ..
                })
            );
        if quiet_3_to_2 {
            c.cut.insert((3, 2));
        }
        if c.cut.contains(&(from, to)) {
            c.held.push_back((from, to, payload));
        } else {
            c.nodes
                .get_mut(&to)
                .unwrap()
                .on_peer_message(from, &payload);
        }
    }
    assert!(
        c.cut.contains(&(3, 2)),
        "node 3 sent node 2 its Quiet marker"
    );
    // Node 4 is back: the next generation hashes the names over all four
    // again, so node 2 masters its names once more. Node 3's program
    // exits before node 3 sends its locks there.
    c.restart_unrun(4, 99);
    loop {
        let m = c.bus.0.lock().unwrap().pop_front();
        let (from, to, payload) = m.expect("node 3 hears of generation 3");
        if c.cut.contains(&(from, to)) {
            c.held.push_back((from, to, payload));
            continue;
        }
        let start =
            to == 3 && matches!(PeerMsg::decode(&payload), Ok(PeerMsg::Start { gen: 3, .. }));
        c.nodes
            .get_mut(&to)
            .unwrap()
            .on_peer_message(from, &payload);
        if start {
            break;
        }
    }
    c.nodes.get_mut(&3).unwrap().close(h3.owner);
    drop(h3);
    c.run();
    c.release_held();
    c.run();
    assert!(c.nodes.values().all(|n| !n.operations_blocked()));
    for id in first {
        c.unlock(&h1, id);
    }
    let p = c.open(1, b"ls");
    for name in &names {
        let x = c.lock(&p, name, 5, lkf::NOQUEUE);
        let got = callbacks(&p);
        assert_eq!(
            got,
            vec![(false, x, G)],
            "{} (waiting: {waiting}): a lock of the closed handle outlived it",
            String::from_utf8_lossy(name)
        );
    }
}

/// Three nodes with a fence command configured: node 3 holds EX on "r"
/// (its handle closed, as if its process were gone) and node 1 waits for
/// it with request `w`.
fn ex_on_3_waited_for_by_1() -> (Cluster, Handle, u32) {
    let mut c = Cluster::with_fencing(3, true);
    let (h1, h3, w) = hold_on_3_wait_on_1(&mut c);
    drop(h3);
    (c, h1, w)
}

/// Node 3 holds EX on "r" (handle h3), node 1 waits for it with request
/// `w` (handle h1): (h1, h3, w).
fn hold_on_3_wait_on_1(c: &mut Cluster) -> (Handle, Handle, u32) {
    let h1 = c.open(1, b"ls");
    let h3 = c.open(3, b"ls");
    let x = c.lock(&h3, b"r", 5, 0);
    assert_eq!(callbacks(&h3), vec![(false, x, G)]);
    let w = c.lock(&h1, b"r", 5, 0);
    assert_eq!(callbacks(&h3), vec![(true, x, G)]);
    (h1, h3, w)
}

/// With a fence command configured, the survivors take a lost node's locks
/// over only once the command has fenced it.
#[test]
fn a_lost_node_is_fenced_before_its_locks_go() {
    let (mut c, h1, w) = ex_on_3_waited_for_by_1();
    c.kill(3, LEASE_MS);
    c.tick_all(3 * LEASE_MS);
    assert_eq!(callbacks(&h1), vec![], "no recovery before fencing");
    assert_eq!(c.nodes[&1].fence_wanted(), vec![3]);
    assert!(
        c.nodes[&2].fence_wanted().is_empty(),
        "only the coordinator fences"
    );
    c.nodes.get_mut(&1).unwrap().fenced(3);
    c.run();
    assert_eq!(callbacks(&h1), vec![(false, w, G)]);
    assert!(c.nodes[&1].fence_wanted().is_empty());
}

/// A second node dies while the survivors recover from the first: the
/// recovery in progress is abandoned for a new generation, which ends with
/// both nodes' locks gone and the waiters granted.
#[test]
fn a_death_during_recovery_restarts_it() {
    for cut_after in [0, 3, 8, 15, 30] {
        let mut c = Cluster::new(5);
        let h1 = c.open(1, b"ls");
        let h4 = c.open(4, b"ls");
        let h5 = c.open(5, b"ls");
        let a = c.lock(&h5, b"five", 5, 0);
        let b = c.lock(&h4, b"four", 5, 0);
        let wa = c.lock(&h1, b"five", 5, 0);
        let wb = c.lock(&h1, b"four", 5, 0);
        assert_eq!(callbacks(&h1), vec![]);
        let _ = (a, b, callbacks(&h4), callbacks(&h5));
        c.crash(5, 1);
        c.run();
        for n in 1..=4 {
            c.nodes.get_mut(&n).unwrap().tick(LEASE_MS + 2);
        }
        // Node 1 has started a generation; part of it is delivered.
        assert!(c.nodes[&1].operations_blocked());
        c.step(cut_after);
        assert!(c.nodes[&1].operations_blocked(), "still recovering");
        c.crash(4, LEASE_MS + 3);
        c.run();
        c.tick_all(2 * LEASE_MS + 10);
        let mut got = callbacks(&h1);
        got.sort_unstable();
        let mut want = vec![(false, wa, G), (false, wb, G)];
        want.sort_unstable();
        assert_eq!(got, want, "cut after {cut_after} messages");
        assert!(c.nodes.values().all(|n| !n.operations_blocked()));
        drop((h4, h5));
    }
}

/// A generation that some members rebuilt and others did not (the dead
/// master came back before it finished) must not leave two masters for a
/// name: one node moved the name in it, the other did not, and each sends
/// its locks where it thinks the name now lives. Cut at every point of the
/// abandoned generation, every name ends with one master holding both
/// survivors' locks, and a new EX cannot be granted beside them. Names
/// where a survivor waited behind the dead node's lock move too: its
/// waiting request alone made a node without locks on the name its master
/// in the abandoned generation.
#[test]
fn a_generation_left_halfway_leaves_one_master_per_name() {
    let names: Vec<Vec<u8>> = (0..12).map(|i| format!("r{i}").into_bytes()).collect();
    let waited: Vec<Vec<u8>> = (0..12).map(|i| format!("w{i}").into_bytes()).collect();
    let kept: Vec<Vec<u8>> = (0..12).map(|i| format!("k{i}").into_bytes()).collect();
    for cut_after in 0..40 {
        let mut c = Cluster::new(3);
        let h1 = c.open(1, b"ls");
        let h2 = c.open(2, b"ls");
        let h3 = c.open(3, b"ls");
        for name in &names {
            // Node 2 asks first: it masters every name.
            c.lock(&h2, name, 0, 0);
            c.lock(&h1, name, 2, 0);
            c.lock(&h3, name, 1, 0);
        }
        let mut waiting: Vec<(bool, u32, i32)> = Vec::new();
        for name in &waited {
            c.lock(&h2, name, 4, 0);
            c.lock(&h3, name, 1, 0);
            waiting.push((false, c.lock(&h3, name, 3, 0), G));
        }
        assert!(names.iter().chain(&waited).all(|n| c.masters(2, b"ls", n)));
        // Names node 1 masters, where a request or a conversion of node 3
        // waits behind node 1's EX.
        let mut still_waiting = Vec::new();
        for (i, name) in kept.iter().enumerate() {
            c.lock(&h1, name, 5, 0);
            let w = if i % 2 == 0 {
                c.lock(&h3, name, 5, 0)
            } else {
                // A conversion waits instead.
                let l = c.lock(&h3, name, 0, 0);
                c.lock_with(&h3, name, 5, lkf::CONVERT, l)
            };
            still_waiting.push(w);
        }
        assert!(kept.iter().all(|n| c.masters(1, b"ls", n)));
        let _ = (callbacks(&h1), callbacks(&h3));
        drop(h2);
        c.crash(2, 1);
        c.run();
        for n in [1, 3] {
            c.nodes.get_mut(&n).unwrap().tick(LEASE_MS + 2);
        }
        // Node 1 has started generation 2 without node 2; part of it runs
        // before node 2 is back and generation 3 takes it in afresh.
        assert!(c.nodes[&1].operations_blocked());
        c.step(cut_after);
        c.restart(2, 99);
        c.run();
        assert!(c.nodes.values().all(|n| !n.operations_blocked()));
        let mut granted = callbacks(&h3);
        granted.sort_unstable();
        assert_eq!(granted, waiting, "cut after {cut_after}");
        // Node 3's requests and conversions behind node 1's EX still wait,
        // wherever the recovery sent them again: node 3 knows each is
        // queued (not in flight, which would make a plain unlock EBUSY),
        // so a plain unlock takes the lock back at once.
        for &w in &still_waiting {
            if let Err(e) = c
                .nodes
                .get_mut(&3)
                .unwrap()
                .unlock(h3.owner, w, 0, None, 0, 5)
            {
                panic!("cut after {cut_after}: unlock of waiting lock {w:x}: {e:?}");
            }
            c.run();
        }
        let mut unlocked = callbacks(&h3);
        unlocked.sort_unstable();
        let mut want: Vec<_> = still_waiting.iter().map(|&w| (false, w, UNLOCK)).collect();
        want.sort_unstable();
        assert_eq!(unlocked, want, "cut after {cut_after}");
        // A new lock from every node must find the one master.
        let probes: Vec<Handle> = [1, 2, 3].into_iter().map(|n| c.open(n, b"ls")).collect();
        for name in names.iter().chain(&waited) {
            for p in &probes {
                let x = c.lock(p, name, 5, lkf::NOQUEUE);
                let at = (cut_after, p.node, String::from_utf8_lossy(name));
                assert_eq!(callbacks(p), vec![(false, x, libc::EAGAIN)], "{at:?}");
                let masters: Vec<u32> = [1, 2, 3]
                    .into_iter()
                    .filter(|&n| c.masters(n, b"ls", name))
                    .collect();
                assert_eq!(masters.len(), 1, "{at:?}: mastered by {masters:?}");
            }
        }
        // Node 1's EX locks may hear node 3's waiting requests again
        // from a new master (a BAST); nothing else.
        let h1_got = callbacks(&h1);
        assert!(
            h1_got.iter().all(|c| c.0),
            "cut after {cut_after}: {h1_got:?}"
        );
        assert_eq!(callbacks(&h3), vec![]);
    }
}

/// A handle closed on a master after its Quiet marker frees its locks, but
/// what they held back is granted only when the recovery ends: a grant sent
/// while the others rebuild could reach a node that has rebuilt without it
/// (the resource may be moving away from here).
#[test]
fn a_close_while_rebuilding_grants_nothing_until_the_end() {
    use udlm::node::recovery::Phase;
    let mut c = Cluster::new(3);
    let h3 = c.open(3, b"ls");
    let h1 = c.open(1, b"ls");
    let h2 = c.open(2, b"ls");
    let x = c.lock(&h3, b"r", 5, 0);
    let w = c.lock(&h1, b"r", 5, 0);
    assert_eq!(callbacks(&h3), vec![(false, x, G), (true, x, 0)]);
    assert_eq!(callbacks(&h1), vec![]);
    assert!(c.masters(3, b"ls", b"r"));
    drop(h2);
    c.crash(2, 1);
    c.run();
    for n in [1, 3] {
        c.nodes.get_mut(&n).unwrap().tick(LEASE_MS + 2);
    }
    while c.nodes[&3].phase() == Phase::Running {
        c.step(1);
    }
    while c.nodes[&3].phase() == Phase::Stopping {
        c.step(1);
    }
    assert!(matches!(
        c.nodes[&3].phase(),
        Phase::Quiet | Phase::Rebuilding
    ));
    c.nodes.get_mut(&3).unwrap().close(h3.owner);
    while c.nodes[&3].phase() != Phase::Running {
        assert_eq!(callbacks(&h1), vec![], "granted while node 3 rebuilds");
        c.step(1);
    }
    c.run();
    assert_eq!(callbacks(&h1), vec![(false, w, G)]);
}

/// A conversion that writes the value block (EX to EX here), on its way to
/// a master that dies, is sent again to the new master with the value its
/// caller gave, not with zeros: the next reader sees that value.
#[test]
fn a_writing_conversion_sent_again_keeps_its_value_block() {
    let mut c = Cluster::new(3);
    let h2 = c.open(2, b"ls");
    let h3 = c.open(3, b"ls");
    let h1 = c.open(1, b"ls");
    c.lock(&h2, b"r", 0, 0);
    assert!(c.masters(2, b"ls", b"r"));
    let x = c.lock_with(&h3, b"r", 5, lkf::VALBLK, 0);
    let _ = (callbacks(&h2), callbacks(&h3));
    drop(h2);
    c.crash(2, 1);
    c.lock_args(
        &h3,
        LockArgs {
            mode: 5,
            flags: lkf::CONVERT | lkf::VALBLK,
            lkid: x,
            name: b"r",
            lvb: Some([9; 32]),
            user: USER,
            tid: 1,
            ..LockArgs::default()
        },
    );
    c.tick_all(LEASE_MS + 2);
    c.run();
    assert!(c.nodes.values().all(|n| !n.operations_blocked()));
    assert_eq!(
        completions_with_lvb(&h3),
        vec![(x, G, None)],
        "a write hands nothing back"
    );
    let y = c.lock_with(&h1, b"r", 3, lkf::VALBLK, 0);
    c.unlock(&h3, x);
    assert_eq!(completions_with_lvb(&h1), vec![(y, G, Some([9; 32]))]);
}

/// In a two-node cluster the survivor goes on alone (corosync's
/// `two_node`), but only once the pair has formed.
#[test]
fn two_node_survivor_recovers_alone_once_paired() {
    let mut lone = Node::new(1, NodeLimits::default());
    lone.set_cluster(
        ClusterView {
            nodes: vec![1, 2],
            two_node: true,
            ..ClusterView::default()
        },
        Arc::new(Wire {
            from: 1,
            bus: Arc::new(Bus::default()),
        }),
    );
    lone.tick(10 * LEASE_MS);
    assert!(
        lone.operations_blocked(),
        "wait for all: never alone before pairing"
    );

    let mut c = Cluster::new(2);
    let h1 = c.open(1, b"ls");
    let h2 = c.open(2, b"ls");
    let x = c.lock(&h2, b"r", 5, 0);
    assert_eq!(callbacks(&h2), vec![(false, x, G)]);
    let w = c.lock(&h1, b"r", 5, 0);
    drop(h2);
    c.kill(2, LEASE_MS);
    assert_eq!(callbacks(&h1), vec![(false, w, G)]);
    assert!(
        !c.nodes[&1].operations_blocked(),
        "node 1 did not fence itself"
    );
}

/// Two nodes that cannot reach each other both believe they coordinate and
/// start a generation with the same number through the third: the third
/// joins one of them, the other stalls harmlessly, and once all links are
/// up one generation makes everybody a member.
#[test]
fn rival_coordinators_converge() {
    let mut c = Cluster::unconnected(&[1, 2, 3], |_| {});
    // 1-3 and 2-3 come up; 1-2 does not.
    for (a, b) in [(1, 3), (3, 1), (2, 3), (3, 2)] {
        c.nodes.get_mut(&a).unwrap().peer_up(b, u64::from(b));
    }
    c.run();
    let joined: Vec<u32> = (1..=3)
        .filter(|n| !c.nodes[n].operations_blocked())
        .collect();
    assert!(joined.len() == 2 && joined.contains(&3), "{joined:?}");
    for (a, b) in [(1, 2), (2, 1)] {
        c.nodes.get_mut(&a).unwrap().peer_up(b, u64::from(b));
    }
    c.run();
    assert!(c.nodes.values().all(|n| !n.operations_blocked()));
    let h1 = c.open(1, b"ls");
    let h2 = c.open(2, b"ls");
    let x = c.lock(&h1, b"r", 5, 0);
    let y = c.lock(&h2, b"r", 5, lkf::NOQUEUE);
    assert_eq!(callbacks(&h1), vec![(false, x, G)]);
    assert_eq!(callbacks(&h2), vec![(false, y, libc::EAGAIN)]);
}

// ----- membership from outside (node/control.rs) ---------------------------

/// A node told from outside that a lost node is dead and fenced (here a
/// member that does not coordinate) passes the news on: the recovery runs
/// at once, without the lease, and stands in for the fence command.
#[test]
fn a_node_declared_fenced_is_recovered_without_waiting_for_its_lease() {
    let (mut c, h1, w) = ex_on_3_waited_for_by_1();
    c.crash(3, 10);
    c.run();
    c.tick_all(20);
    assert_eq!(callbacks(&h1), vec![], "the lease runs");
    c.nodes.get_mut(&2).unwrap().declare_fenced(3, 2);
    c.run();
    assert_eq!(
        callbacks(&h1),
        vec![(false, w, G)],
        "granted long before the lease, told through node 2"
    );
    assert!(c.nodes[&1].fence_wanted().is_empty());
}

/// A node added while locks are held and a request waits joins through a
/// generation, even though one member hears of it late (its Start waits
/// there); nothing held is lost and it takes part in locking. Once dead
/// past its lease it is removed, and the survivors keep their locks.
#[test]
fn a_node_added_at_runtime_joins_and_a_dead_one_is_removed() {
    let mut c = Cluster::new(3);
    let h1 = c.open(1, b"ls");
    let h2 = c.open(2, b"ls");
    let names: Vec<Vec<u8>> = (0..8).map(|i| format!("n-{i}").into_bytes()).collect();
    let held: Vec<u32> = names.iter().map(|n| c.lock(&h1, n, 5, 0)).collect();
    assert_eq!(callbacks(&h1).len(), names.len());
    let waiting = c.lock(&h2, &names[0], 3, 0);
    assert_eq!(callbacks(&h2), vec![]);
    assert_eq!(callbacks(&h1), vec![(true, held[0], G)]);
    // Node 4 starts with the four nodes configured; nodes 1 and 3 are told
    // first, node 2 later.
    let mut n4 = Node::new(4, NodeLimits::default());
    n4.set_cluster(
        ClusterView {
            nodes: vec![1, 2, 3, 4],
            two_node: true,
            ..ClusterView::default()
        },
        Arc::new(Wire {
            from: 4,
            bus: Arc::clone(&c.bus),
        }),
    );
    c.nodes.insert(4, n4);
    for n in [1, 3] {
        c.nodes
            .get_mut(&n)
            .unwrap()
            .add_configured_node(4, "10.0.0.4:21064".into());
    }
    for (a, b) in [(1, 4), (4, 1), (3, 4), (4, 3), (4, 2)] {
        c.nodes.get_mut(&a).unwrap().peer_up(b, u64::from(b));
    }
    c.run();
    assert!(
        c.nodes[&2].operations_blocked() || c.nodes[&4].operations_blocked(),
        "the generation with node 4 waits for node 2 to know it"
    );
    c.nodes
        .get_mut(&2)
        .unwrap()
        .add_configured_node(4, "10.0.0.4:21064".into());
    c.nodes.get_mut(&2).unwrap().peer_up(4, 4);
    c.run();
    assert!(
        c.nodes.values().all(|n| !n.operations_blocked()),
        "all four are members"
    );
    assert_eq!(callbacks(&h2), vec![], "node 2 still waits behind node 1");
    let h4 = c.open(4, b"ls");
    for n in &names {
        let t = c.lock(&h4, n, 5, lkf::NOQUEUE);
        assert_eq!(
            callbacks(&h4),
            vec![(false, t, libc::EAGAIN)],
            "node 1 still holds it"
        );
    }
    c.unlock(&h1, held[0]);
    assert_eq!(
        callbacks(&h2),
        vec![(false, waiting, G)],
        "the waiter is granted"
    );
    let own = c.lock(&h4, b"node-4", 5, 0);
    assert_eq!(callbacks(&h4), vec![(false, own, G)]);
    let t = c.lock(&h1, b"node-4", 5, lkf::NOQUEUE);
    assert_eq!(
        callbacks(&h1),
        vec![(false, held[0], UNLOCK), (false, t, libc::EAGAIN)]
    );
    // Node 4 dies; after its lease it is gone, and then removed.
    drop(h4);
    c.kill(4, LEASE_MS);
    for n in 1..=3 {
        assert!(!c.nodes[&n].node_may_be_running(4));
        c.nodes.get_mut(&n).unwrap().remove_configured_node(4);
    }
    c.run();
    assert!(c.nodes.values().all(|n| !n.operations_blocked()));
    let again = c.lock(&h2, b"node-4", 5, 0);
    assert_eq!(
        callbacks(&h2),
        vec![(false, again, G)],
        "node 4's lock went"
    );
    for n in &names[1..] {
        let t = c.lock(&h2, n, 5, lkf::NOQUEUE);
        assert_eq!(
            callbacks(&h2),
            vec![(false, t, libc::EAGAIN)],
            "node 1 keeps it"
        );
    }
}

// ----- an outside membership source (node/corosync.rs) ---------------------

/// With an outside source (corosync), its quorum and group decide: a node
/// out of the group counts as lost although its session is up; without
/// quorum it fences itself after half its lease, and once it said it
/// stopped the others recover without it; back in the group, it rejoins.
#[test]
fn an_outside_source_decides_quorum_and_liveness() {
    let mut c = Cluster::new(3);
    for n in 1..=3 {
        let node = c.nodes.get_mut(&n).unwrap();
        node.set_external_quorum(true);
        node.set_external_group(&[1, 2, 3]);
    }
    c.run();
    let (h1, h3, w) = hold_on_3_wait_on_1(&mut c);
    // Node 3's corosync stops: the others see it leave the group, node 3
    // loses quorum; every session stays up.
    c.tick_all(100);
    for n in [1, 2] {
        c.nodes.get_mut(&n).unwrap().set_external_group(&[1, 2]);
    }
    c.nodes.get_mut(&3).unwrap().set_external_quorum(false);
    c.run();
    c.tick_all(100 + LEASE_MS / 2 - 1);
    assert_eq!(callbacks(&h1), vec![], "node 3 may still hold r");
    c.tick_all(100 + LEASE_MS / 2 + 1);
    assert!(c.nodes[&3].operations_blocked(), "node 3 fenced itself");
    assert_eq!(callbacks(&h3), vec![], "(its lock dropped; no completion)");
    assert_eq!(
        callbacks(&h1),
        vec![(false, w, G)],
        "granted once node 3 said it stopped, before its lease"
    );
    // Node 3's corosync is back.
    c.nodes.get_mut(&3).unwrap().set_external_quorum(true);
    for n in 1..=3 {
        c.nodes.get_mut(&n).unwrap().set_external_group(&[1, 2, 3]);
    }
    c.run();
    assert!(c.nodes.values().all(|n| !n.operations_blocked()));
    let h3 = c.open(3, b"ls");
    let y = c.lock(&h3, b"r", 5, lkf::NOQUEUE);
    assert_eq!(
        callbacks(&h3),
        vec![(false, y, libc::EAGAIN)],
        "node 1 holds r"
    );
}

/// With an outside source, a node in its group that this node cannot
/// reach yet may hold locks: no generation goes on without it, even with
/// quorum; once connected, both join.
#[test]
fn an_outside_source_group_member_not_reached_holds_generations_back() {
    let mut c = Cluster::unconnected(&[1, 2], |node| {
        node.set_external_quorum(true);
        node.set_external_group(&[1, 2]);
    });
    c.run();
    assert!(
        c.nodes.values().all(|n| n.operations_blocked()),
        "neither starts alone while the other is in the group"
    );
    c.nodes.get_mut(&1).unwrap().peer_up(2, 2);
    c.nodes.get_mut(&2).unwrap().peer_up(1, 1);
    c.run();
    assert!(c.nodes.values().all(|n| !n.operations_blocked()));
}

/// The members of [`tree_cluster`], with their weights, as
/// `directory_node` takes them.
const TREE_MEMBERS: [(u32, u32); 3] = [(1, 1), (2, 1), (3, 1)];

/// Three nodes, each with a handle on the hierarchical lockspace "tree".
fn tree_cluster() -> (Cluster, Vec<Handle>) {
    let mut c = Cluster::new(3);
    let hs = (1..=3)
        .map(|n| c.open_with(n, b"tree", udlm::types::lsfl::UDLM_HIERARCHY))
        .collect();
    (c, hs)
}

/// A hierarchical lockspace: a child resource is mastered where its parent
/// resource is, even when another node asks for it first, whichever node is
/// the directory node of the tree (the asker, the parent's master, or a
/// third node); the directory stays the authority, so every later asker
/// finds the same master.
#[test]
fn a_tree_is_mastered_where_its_root_is() {
    use udlm::cluster::config::directory_node;
    use udlm::node::hierarchy::child_name;
    use udlm::types::ResName;
    let (mut c, hs) = tree_cluster();
    let members = TREE_MEMBERS;
    let mut directories = std::collections::BTreeSet::new();
    for i in 0..12 {
        let root = format!("root-{i}");
        let dir = directory_node(root.as_bytes(), &members).unwrap();
        directories.insert(dir);
        // Node 2 asks first and masters the root.
        let r2 = c.lock(&hs[1], root.as_bytes(), 0, 0);
        let r1 = c.lock(&hs[0], root.as_bytes(), 0, 0);
        let r3 = c.lock(&hs[2], root.as_bytes(), 0, 0);
        assert!(c.masters(2, b"tree", root.as_bytes()));
        let child = child_name(&ResName::new(root.as_bytes()).unwrap(), b"leaf");
        let a = c.lock_with_parent(&hs[0], b"leaf", 5, r1);
        assert_eq!(callbacks(&hs[0]), vec![(false, r1, G), (false, a, G)]);
        assert!(
            c.masters(2, b"tree", child.as_bytes()),
            "root-{i} (directory node {dir}): the child asked for by node 1 is mastered by node 2"
        );
        assert!(!c.masters(1, b"tree", child.as_bytes()));
        // Node 3 finds the same master; its request waits behind node 1's EX.
        let b = c.lock_with_parent(&hs[2], b"leaf", 5, r3);
        assert_eq!(callbacks(&hs[2]), vec![(false, r3, G)]);
        c.unlock(&hs[0], a);
        assert_eq!(callbacks(&hs[2]), vec![(false, b, G)]);
        assert!(!c.masters(3, b"tree", child.as_bytes()));
        // Known now: a second lock inside the tree costs one round trip.
        let before = c.messages;
        let again = c.lock_with_parent(&hs[0], b"leaf", 0, r1);
        assert_eq!(c.messages - before, 2);
        for (h, id) in [(&hs[0], again), (&hs[2], b)] {
            c.unlock(h, id);
        }
        for (h, id) in [(&hs[0], r1), (&hs[1], r2), (&hs[2], r3)] {
            c.unlock(h, id);
        }
        for h in &hs {
            callbacks(h);
        }
    }
    assert_eq!(
        directories.len(),
        3,
        "every position of the directory node was tried"
    );
}

/// Two requests of node 1 on a new child name, where node 1 is the child's
/// directory node and the parent's master is node 2: the first makes node 2
/// the master (`Assign`) and waits for its answer; the second must wait
/// behind it, not go to node 2 at once and overtake it. The order of
/// requests on one name is the order of the grants.
#[test]
fn a_request_behind_a_pending_assignment_keeps_its_place() {
    use udlm::cluster::config::directory_node;
    use udlm::node::hierarchy::child_name;
    use udlm::types::ResName;
    let (mut c, hs) = tree_cluster();
    let members = TREE_MEMBERS;
    let root = (0..256)
        .map(|i| format!("root-{i}"))
        .find(|r| {
            let child = child_name(&ResName::new(r.as_bytes()).unwrap(), b"leaf");
            directory_node(child.as_bytes(), &members) == Some(1)
        })
        .expect("a root whose child has node 1 as directory node");
    let r2 = c.lock(&hs[1], root.as_bytes(), 0, 0);
    let r1 = c.lock(&hs[0], root.as_bytes(), 0, 0);
    assert!(c.masters(2, b"tree", root.as_bytes()));
    assert_eq!(callbacks(&hs[0]), vec![(false, r1, G)]);
    let ex_child = || LockArgs {
        mode: 5,
        name: b"leaf",
        user: USER,
        tid: 1,
        parent: r1,
        ..LockArgs::default()
    };
    let n1 = c.nodes.get_mut(&1).unwrap();
    let first = n1.lock(hs[0].owner, ex_child()).expect("lock accepted");
    let second = n1.lock(hs[0].owner, ex_child()).expect("lock accepted");
    c.run();
    assert_eq!(
        callbacks(&hs[0]),
        vec![(false, first, G), (true, first, 0)],
        "the first request is granted, the second waits behind it (and blocks it)"
    );
    c.unlock(&hs[0], first);
    assert_eq!(
        callbacks(&hs[0]),
        vec![(false, first, UNLOCK), (false, second, G)]
    );
    let child = child_name(&ResName::new(root.as_bytes()).unwrap(), b"leaf");
    assert!(c.masters(2, b"tree", child.as_bytes()));
    c.unlock(&hs[0], second);
    c.unlock(&hs[0], r1);
    c.unlock(&hs[1], r2);
}

/// Lock timeouts with a remote master: when the master that was told to end
/// the wait dies before it does, the request is sent again to the new master
/// after the recovery and the timeout is sent again after `TIMEOUT_RETRY_MS`
/// (1 s): the request still ends with ETIMEDOUT instead of waiting forever.
#[test]
fn a_timeout_lost_with_its_master_is_sent_again() {
    use udlm::types::lsfl;
    let mut c = Cluster::new(3);
    let h1 = c.open_with(1, b"tmo", lsfl::UDLM_TIMEOUT);
    let h2 = c.open_with(2, b"tmo", lsfl::UDLM_TIMEOUT);
    let h3 = c.open_with(3, b"tmo", lsfl::UDLM_TIMEOUT);
    // Node 3 asks first and masters "r"; node 2 holds it in EX.
    let n3 = c.lock(&h3, b"r", 0, 0);
    let x = c.lock(&h2, b"r", 5, 0);
    assert_eq!(callbacks(&h3), vec![(false, n3, G)]);
    assert_eq!(callbacks(&h2), vec![(false, x, G)]);
    let w = c.lock_args(
        &h1,
        LockArgs {
            mode: 5,
            flags: lkf::TIMEOUT,
            name: b"r",
            user: USER,
            tid: 1,
            timeout_cs: 50,
            ..LockArgs::default()
        },
    );
    assert_eq!(callbacks(&h1), vec![]);
    // The deadline passes: node 1 tells node 3, which dies before it reads it.
    c.nodes.get_mut(&1).unwrap().tick(600);
    drop(h3);
    c.crash(3, 600);
    c.run();
    assert_eq!(
        callbacks(&h1),
        vec![],
        "the message to end the wait was lost"
    );
    c.tick_all(600 + LEASE_MS + 2);
    assert!(c.nodes.values().all(|n| !n.operations_blocked()));
    assert_eq!(
        callbacks(&h1),
        vec![],
        "sent again to the new master, waiting"
    );
    c.tick_all(600 + LEASE_MS + 1_100);
    assert_eq!(callbacks(&h1), vec![(false, w, libc::ETIMEDOUT)]);
    // Node 2's EX is untouched; after it goes, "r" is free for node 1.
    c.unlock(&h2, x);
    let got = callbacks(&h2);
    // (BASTs for node 1's request: from the old master and the new one.)
    assert_eq!(got.last(), Some(&(false, x, UNLOCK)));
    assert!(got[..got.len() - 1]
        .iter()
        .all(|&(blocking, id, _)| blocking && id == x));
    let y = c.lock(&h1, b"r", 5, lkf::NOQUEUE);
    assert_eq!(callbacks(&h1), vec![(false, y, G)]);
}

/// An orphan adopted after its handle closed with a conversion pending on a
/// remote master: the master cancelled that conversion when it orphaned the
/// lock, so a recovery that follows must not send it again, and the adopter
/// must never see it granted.
#[test]
fn an_adopted_orphan_forgets_the_conversion_its_old_handle_left() {
    let mut c = Cluster::new(3);
    let h1 = c.open(1, b"ls");
    let h2 = c.open(2, b"ls");
    let h3 = c.open(3, b"ls");
    // Node 3 masters "r"; node 2 holds it in EX.
    let n3 = c.lock(&h3, b"r", 0, 0);
    let x = c.lock(&h2, b"r", 5, 0);
    let _ = (callbacks(&h3), callbacks(&h2));
    // Node 1: a PERSISTENT NL lock, converting to EX behind node 2's EX.
    let p = c.lock(&h1, b"r", 0, lkf::PERSISTENT);
    c.lock_with(&h1, b"r", 5, lkf::CONVERT | lkf::PERSISTENT, p);
    assert_eq!(callbacks(&h1), vec![(false, p, G)]);
    // Its handle closes: an orphan in NL, the conversion cancelled.
    c.nodes.get_mut(&1).unwrap().close(h1.owner);
    c.run();
    let a = c.open(1, b"ls");
    let adopted = c.lock(&a, b"r", 0, lkf::ORPHAN | lkf::PERSISTENT);
    assert_eq!(adopted, p);
    // The master dies; node 2's EX and node 1's NL move to the new master.
    let _ = n3;
    drop(h3);
    c.kill(3, LEASE_MS);
    let _ = callbacks(&h2);
    c.unlock(&h2, x);
    assert_eq!(callbacks(&h2), vec![(false, x, UNLOCK)]);
    assert_eq!(callbacks(&a), vec![], "no conversion was pending any more");
    // Still NL: EX NOQUEUE from node 2 would conflict with an EX, not NL.
    let y = c.lock(&h2, b"r", 5, lkf::NOQUEUE);
    assert_eq!(callbacks(&h2), vec![(false, y, G)]);
}

/// Node 1 masters "r" (it holds NL there); nodes 2 and 3 hold PR; node 3
/// converts to EX and waits; node 2's PR->EX|CONVDEADLK is demoted to NL,
/// which lets node 3's conversion through. Returns the cluster, the three
/// handles and the ids of node 2's and node 3's locks.
fn demotion_on_node_2() -> (Cluster, [Handle; 3], u32, u32) {
    let mut c = Cluster::new(3);
    let h1 = c.open(1, b"ls");
    let h2 = c.open(2, b"ls");
    let h3 = c.open(3, b"ls");
    let keeper = c.lock(&h1, b"r", 0, 0);
    assert!(c.masters(1, b"ls", b"r"));
    let a = c.lock(&h2, b"r", 3, 0);
    let b = c.lock(&h3, b"r", 3, 0);
    assert_eq!(callbacks(&h1), vec![(false, keeper, G)]);
    assert_eq!(callbacks(&h2), vec![(false, a, G)]);
    assert_eq!(callbacks(&h3), vec![(false, b, G)]);
    c.lock_with(&h3, b"r", 5, lkf::CONVERT, b);
    c.lock_with(&h2, b"r", 5, lkf::CONVERT | lkf::CONVDEADLK, a);
    assert_eq!(
        callbacks(&h3),
        vec![(false, b, G), (true, b, 0)],
        "node 3's conversion went through, and blocks node 2's"
    );
    assert_eq!(
        callbacks_with_flags(&h2),
        vec![(true, a, 0, 0)],
        "node 2's BAST from node 3's conversion"
    );
    (c, [h1, h2, h3], a, b)
}

/// A CONVDEADLK demotion reaches the lock's node at once (sim class K):
/// the master that demoted node 2's lock dies; the survivors must rebuild
/// node 2's lock at NL, not at PR beside node 3's EX, and its conversion's
/// completion still reports the demotion.
#[test]
fn a_demotion_outlives_the_master_that_made_it() {
    let (mut c, [_h1, h2, h3], a, b) = demotion_on_node_2();
    c.kill(1, LEASE_MS);
    for n in c.nodes.values() {
        if let Some(e) = n.lockspace_engine(b"ls") {
            e.check_invariants();
        }
    }
    c.unlock(&h3, b);
    assert_eq!(
        callbacks_with_flags(&h2),
        vec![(false, a, G, udlm::types::sbf::DEMOTED)],
        "node 2's conversion granted, demoted on the way"
    );
}

/// A demoted conversion that is cancelled ends with ECANCEL and a clean
/// status block, the lock staying NL: the node's note of the demotion
/// marks only the conversion's grant (as on the kernel: oracle,
/// cluster-tests/xnode.c step 16).
#[test]
fn a_cancelled_demoted_conversion_reports_no_demotion() {
    let (mut c, [_h1, h2, _h3], a, _) = demotion_on_node_2();
    c.nodes
        .get_mut(&2)
        .unwrap()
        .unlock(h2.owner, a, lkf::CANCEL, None, 0, 5)
        .expect("cancel accepted");
    c.run();
    assert_eq!(
        callbacks_with_flags(&h2),
        vec![(false, a, Status::Cancelled.to_user(), 0)]
    );
}

/// A handle closed during a recovery: its node tells the master only when
/// the recovery has finished (after its Stop marker a node originates no
/// lock message; a master told at once released and granted while the
/// others rebuilt, and the waiter's copy lost the grant: sim seed 23935
/// then). The waiter is granted once the recovery is over.
#[test]
fn a_close_during_a_recovery_reaches_the_master_afterwards() {
    let mut c = Cluster::new(4);
    let h1 = c.open(1, b"ls");
    let h2 = c.open(2, b"ls");
    let h3 = c.open(3, b"ls");
    let keeper = c.lock(&h2, b"r", 0, 0);
    assert!(c.masters(2, b"ls", b"r"));
    let x = c.lock(&h3, b"r", 5, 0);
    let w = c.lock(&h1, b"r", 3, 0);
    assert_eq!(callbacks(&h2), vec![(false, keeper, G)]);
    assert_eq!(callbacks(&h3), vec![(false, x, G), (true, x, 0)]);
    assert_eq!(callbacks(&h1), vec![]);

    // Node 4 dies; once its lease has run out, node 1 starts a generation.
    c.nodes.remove(&4);
    for n in 1..=3 {
        let node = c.nodes.get_mut(&n).unwrap();
        node.tick(1);
        node.peer_down(4);
    }
    c.run();
    c.nodes.get_mut(&1).unwrap().tick(LEASE_MS + 2);
    while !c.nodes[&3].operations_blocked() {
        assert!(
            !c.bus.0.lock().unwrap().is_empty(),
            "node 3 never entered the recovery"
        );
        c.run_at_most(1);
    }
    let before = c.bus.0.lock().unwrap().len();
    c.nodes.get_mut(&3).unwrap().close(h3.owner);
    let sent: Vec<PeerMsg> = c
        .bus
        .0
        .lock()
        .unwrap()
        .iter()
        .skip(before)
        .filter(|m| m.0 == 3)
        .map(|m| PeerMsg::decode(&m.2).unwrap())
        .collect();
    assert!(
        !sent
            .iter()
            .any(|m| matches!(m, PeerMsg::CloseOwner { .. } | PeerMsg::Unlock { .. })),
        "node 3 told a master during the recovery: {sent:?}"
    );
    c.run();
    for n in 1..=3 {
        c.tick(n, LEASE_MS + 3);
    }
    assert!(c.nodes.values().all(|n| !n.operations_blocked()));
    assert_eq!(
        callbacks(&h1),
        vec![(false, w, G)],
        "granted after the recovery"
    );
    check_compatible(&c, 0, 0);
}

/// A demoted lock unlocked while its conversion waits ends with EUNLOCK and
/// a clean status block: an unlock is a new operation (spec §2.3).
#[test]
fn an_unlocked_demoted_lock_reports_no_demotion() {
    let (mut c, [_h1, h2, _h3], a, _) = demotion_on_node_2();
    c.unlock(&h2, a);
    assert_eq!(callbacks_with_flags(&h2), vec![(false, a, UNLOCK, 0)]);
}

/// Peer messages that arrive together are applied as one batch, and the
/// handle gets their callbacks as the kernel gives a process callbacks it
/// has not read yet: per lock, in order, locks in the order of their first
/// pending callback. Here node 2 sends a BAST for x, a BAST for y, then
/// the end of x's unlock: the handle reads x's two callbacks, then y's.
#[test]
fn callbacks_of_messages_that_arrive_together_are_grouped_per_lock() {
    for batched in [true, false] {
        let mut c = Cluster::new(2);
        let a = c.open(1, b"ls");
        let b = c.open(2, b"ls");
        // Node 2 asks first, so it masters both names.
        c.lock(&b, b"r1", 0, 0);
        c.lock(&b, b"r2", 0, 0);
        let x = c.lock(&a, b"r1", 3, 0);
        let y = c.lock(&a, b"r2", 3, 0);
        assert_eq!(callbacks(&a), vec![(false, x, G), (false, y, G)]);
        // x's unlock leaves node 1 and waits on the wire...
        c.nodes
            .get_mut(&1)
            .unwrap()
            .unlock(a.owner, x, 0, None, 0, 5)
            .unwrap();
        let unlock: Vec<_> = c.bus.0.lock().unwrap().drain(..).collect();
        assert_eq!(unlock.len(), 1);
        // ...while node 2's EX requests cause a BAST for x and one for y.
        for name in [&b"r1"[..], b"r2"] {
            let n2 = c.nodes.get_mut(&2).unwrap();
            n2.lock(
                b.owner,
                LockArgs {
                    mode: 5,
                    name,
                    user: USER,
                    tid: 1,
                    ..LockArgs::default()
                },
            )
            .unwrap();
        }
        c.nodes
            .get_mut(&2)
            .unwrap()
            .on_peer_message(1, &unlock[0].2);
        let to_1: Vec<Vec<u8>> = c
            .bus
            .0
            .lock()
            .unwrap()
            .drain(..)
            .filter(|m| m.1 == 1)
            .map(|m| m.2)
            .collect();
        assert_eq!(to_1.len(), 3, "BAST x, BAST y, the end of x's unlock");
        let n1 = c.nodes.get_mut(&1).unwrap();
        if batched {
            n1.apply_batch(&to_1, |n, m| n.on_peer_message(2, m));
            assert_eq!(
                callbacks(&a),
                vec![(true, x, G), (false, x, UNLOCK), (true, y, G)]
            );
        } else {
            for m in &to_1 {
                n1.on_peer_message(2, m);
            }
            assert_eq!(
                callbacks(&a),
                vec![(true, x, G), (true, y, G), (false, x, UNLOCK)],
                "one at a time, each message's callbacks go at once"
            );
        }
    }
}

/// A waiting request with a timeout, on a master that keeps it through a
/// generation that follows one left unfinished: the recovery sends the
/// request again (it cannot know the master kept it), through a look-up.
/// Its timeout comes meanwhile and ends the copy the master held; the
/// copy sent again then arrives after that end. It must not live on at
/// the master with nobody to end it, holding the name for good (sim seed
/// 5200859).
#[test]
fn a_request_sent_again_that_ends_meanwhile_leaves_no_copy() {
    use udlm::types::lsfl;
    let names = names_directed_to_1("t");
    let mut resent = 0;
    for cut_after in 0..40 {
        let mut c = Cluster::new(3);
        let h1 = c.open_with(1, b"tmo", lsfl::UDLM_TIMEOUT);
        let h2 = c.open_with(2, b"tmo", lsfl::UDLM_TIMEOUT);
        let h3 = c.open_with(3, b"tmo", lsfl::UDLM_TIMEOUT);
        let mut held = Vec::new();
        for name in &names {
            held.push(c.lock(&h1, name, 5, 0));
            c.lock_args(
                &h3,
                LockArgs {
                    mode: 5,
                    flags: lkf::TIMEOUT,
                    name,
                    user: USER,
                    tid: 1,
                    timeout_cs: 2_000,
                    ..LockArgs::default()
                },
            );
            assert!(c.masters(1, b"tmo", name));
        }
        let _ = (callbacks(&h1), callbacks(&h3));
        drop(h2);
        c.leave_generation_2_halfway(cut_after);
        // As soon as node 3 has finished generation 3 (its look-ups for
        // the requests it sends again are out), their deadline passes.
        let mut ticked = false;
        loop {
            let m = c.bus.0.lock().unwrap().pop_front();
            let Some((from, to, payload)) = m else { break };
            if matches!(PeerMsg::decode(&payload), Ok(PeerMsg::Lookup { .. })) && from == 3 {
                resent += 1;
            }
            if let Some(n) = c.nodes.get_mut(&to) {
                n.on_peer_message(from, &payload);
            }
            if !ticked && !c.nodes[&3].operations_blocked() {
                ticked = true;
                c.nodes.get_mut(&3).unwrap().tick(25_000);
            }
        }
        assert!(c.nodes.values().all(|n| !n.operations_blocked()));
        let ended = callbacks(&h3);
        assert!(
            ended.iter().all(|&(_, _, s)| s == libc::ETIMEDOUT),
            "cut after {cut_after}: {ended:?}"
        );
        // Node 1's locks go; nothing of node 3's requests may remain.
        for id in held {
            c.unlock(&h1, id);
        }
        let p = c.open_with(2, b"tmo", lsfl::UDLM_TIMEOUT);
        for name in &names {
            let x = c.lock(&p, name, 5, lkf::NOQUEUE);
            assert_eq!(
                callbacks(&p),
                vec![(false, x, G)],
                "cut after {cut_after}, {}: a request outlived its end",
                String::from_utf8_lossy(name)
            );
        }
    }
    assert!(resent > 0, "no request was sent again through a look-up");
}

/// A conversion waiting on a master that keeps it through a generation
/// that follows one left unfinished: the recovery sends the conversion
/// again (its node cannot know the master kept it). What blocked it goes
/// while the others rebuild, so the master grants it when its recovery
/// ends; the conversion sent again must not be granted a second time
/// (sim seed 5418601: two completions for one conversion).
#[test]
fn a_conversion_sent_again_is_answered_once() {
    use udlm::node::recovery::Phase;
    let names = names_directed_to_1("v");
    let mut rebuilt_in_rehash = 0;
    for cut_after in 0..40 {
        let mut c = Cluster::new(3);
        let h1 = c.open(1, b"ls");
        let h2 = c.open(2, b"ls");
        let h3 = c.open(3, b"ls");
        let mut converting = Vec::new();
        for name in &names {
            c.lock(&h1, name, 3, 0);
            let l = c.lock(&h3, name, 0, 0);
            c.lock_with(&h3, name, 5, lkf::CONVERT, l);
            converting.push(l);
            assert!(c.masters(1, b"ls", name));
        }
        let _ = (callbacks(&h1), callbacks(&h3));
        drop(h2);
        c.leave_generation_2_halfway(cut_after);
        // Node 1's PR locks go while node 1 rebuilds (its program exits):
        // the conversions are granted when its recovery ends.
        let mut closed = false;
        while !c.bus.0.lock().unwrap().is_empty() {
            c.step(1);
            let p = c.nodes[&1].phase();
            if !closed && matches!(p, Phase::Quiet | Phase::Rebuilding) {
                closed = true;
                c.nodes.get_mut(&1).unwrap().close(h1.owner);
            }
        }
        assert!(c.nodes.values().all(|n| !n.operations_blocked()));
        if !closed {
            c.nodes.get_mut(&1).unwrap().close(h1.owner);
            c.run();
        } else {
            rebuilt_in_rehash += 1;
        }
        let mut got = callbacks(&h3);
        got.sort_unstable();
        let want: Vec<_> = converting.iter().map(|&l| (false, l, G)).collect();
        assert_eq!(got, want, "cut after {cut_after}: one grant per conversion");
    }
    assert!(rebuilt_in_rehash > 0);
}

/// A request waiting on a master that never rebuilt the generation in
/// which the request's node moved it elsewhere (`nodir`: the name is
/// hashed over the members). In the next generation that master, once
/// every member has stopped, drops a departed holder's EX from the copy it
/// kept and grants the request, as it may at that point. The grant must
/// make that master the lock's master on the requester's node, so that
/// the rebuild sends the granted lock on; otherwise the program holds an
/// EX that no master knows of (sim seed 5505319).
#[test]
fn a_grant_from_a_master_left_behind_is_rebuilt() {
    use udlm::cluster::config::directory_node;
    let over = |n: &[u8], members: &[u32]| {
        let m: Vec<(u32, u32)> = members.iter().map(|&x| (x, 1)).collect();
        directory_node(n, &m)
    };
    // Mastered on node 1 among all five, on node 2 without node 4, on
    // node 3 or 5 without nodes 2 and 4.
    let name = (0..2000)
        .map(|i| format!("g{i}").into_bytes())
        .find(|n| {
            over(n, &[1, 2, 3, 4, 5]) == Some(1)
                && over(n, &[1, 2, 3, 5]) == Some(2)
                && matches!(over(n, &[1, 3, 5]), Some(3) | Some(5))
        })
        .expect("such a name");
    let mut c = Cluster::nodir(5);
    let h2 = c.open(2, b"ls");
    let h3 = c.open(3, b"ls");
    let h5 = c.open(5, b"ls");
    let x = c.lock(&h2, &name, 5, 0);
    let w = c.lock(&h3, &name, 5, 0);
    assert!(c.masters(1, b"ls", &name));
    let _ = (callbacks(&h2), callbacks(&h3));
    // Node 4 dies: generation 2 moves the name to node 2. Node 2's Quiet
    // marker is slow to reach node 1, so node 1 never rebuilds it (and
    // keeps its copy); node 3 sends its request's RecLock to node 2.
    c.crash(4, 1);
    c.run();
    for n in [1, 2, 3, 5] {
        c.nodes.get_mut(&n).unwrap().tick(LEASE_MS + 2);
    }
    loop {
        let m = c.bus.0.lock().unwrap().pop_front();
        let Some((from, to, payload)) = m else { break };
        let quiet_2_to_1 = (from, to) == (2, 1)
            && matches!(
                PeerMsg::decode(&payload),
                Ok(PeerMsg::Barrier {
                    gen: 2,
                    phase: 2,
                    ..
                })
            );
        if quiet_2_to_1 {
            c.cut.insert((2, 1));
        }
        if c.cut.contains(&(from, to)) {
            c.held.push_back((from, to, payload));
        } else if let Some(n) = c.nodes.get_mut(&to) {
            n.on_peer_message(from, &payload);
        }
    }
    assert!(
        c.cut.contains(&(2, 1)),
        "node 2 sent node 1 its Quiet marker"
    );
    assert!(c.masters(1, b"ls", &name), "node 1 kept its copy");
    // Node 2 dies too: in generation 3 node 1 drops node 2's EX and
    // grants node 3's request from the copy it kept.
    drop(h2);
    c.cut.clear();
    c.held.clear();
    let t = 2 * LEASE_MS + 10;
    c.crash(2, t);
    c.run();
    for n in [1, 3, 5] {
        c.nodes.get_mut(&n).unwrap().tick(t + LEASE_MS + 2);
        c.run();
    }
    c.run();
    assert!(c.nodes.values().all(|n| !n.operations_blocked()));
    let _ = x;
    assert_eq!(callbacks(&h3), vec![(false, w, G)]);
    // Node 3 holds EX: nobody else may have it.
    let y = c.lock(&h5, &name, 5, lkf::NOQUEUE);
    assert_eq!(
        callbacks(&h5),
        vec![(false, y, libc::EAGAIN)],
        "node 3's EX was forgotten"
    );
}

/// A lock may be converted, unlocked or cancelled through another handle of
/// its lockspace, as on the kernel (capi-tests/cases/
/// lock_of_another_handle.c), its completions still going to its own
/// handle, but only a handle of the same process: another process's call
/// gets ENOENT, since the routine and lksb it passes would be used in the
/// owner's process.
#[test]
fn a_lock_is_acted_on_through_another_handle_of_its_process_only() {
    let mut c = Cluster::new(2);
    let h1 = c.open(1, b"ls");
    let h2 = c.open(1, b"ls");
    let theirs = PeerCreds { pid: 2, ..CREDS };
    let n = c.nodes.get_mut(&1).unwrap();
    let (other, token) = n.open(b"ls", Some((0o600, 0)), theirs).unwrap();
    let (_link, node_end) = sys::seqpacket_pair().unwrap();
    n.attach(token, EventSink::new(node_end), theirs).unwrap();
    let x = c.lock(&h1, b"r", 5, 0);
    assert_eq!(callbacks(&h1), vec![(false, x, G)]);
    let n = c.nodes.get_mut(&1).unwrap();
    let convert = LockArgs {
        mode: 0,
        flags: lkf::CONVERT,
        lkid: x,
        user: USER,
        tid: 2,
        ..LockArgs::default()
    };
    assert_eq!(n.lock(other, convert), Err(Errno::NoEnt));
    assert_eq!(n.unlock(other, x, 0, None, 0, 5), Err(Errno::NoEnt));
    assert_eq!(n.deadlock_cancel(other, x, 0), Err(Errno::NoEnt));
    // Another handle of the same process: accepted, answered to the owner.
    c.lock_with(&h2, b"r", 0, lkf::CONVERT, x);
    assert_eq!(callbacks(&h1), vec![(false, x, G)]);
    c.unlock(&h2, x);
    assert_eq!(callbacks(&h1), vec![(false, x, UNLOCK)]);
    assert_eq!(callbacks(&h2), vec![]);
}
