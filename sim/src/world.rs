//! The simulated cluster: real `udlm::node::Node`s, a network of ordered
//! per-peer links with latency, drops, partitions and restarts, per-node
//! clocks that drift, programs that lock at random, and the checks.
//!
//! Time is global and discrete (µs). Each step takes the earliest pending
//! event: a message delivery, a transport notification (session down/up), a
//! node's tick, a program's operation, a fault, or a scheduled action (heal,
//! restart, fence). After every step the invariants are checked.
//!
//! The programs' view (the "model") is built only from what the node told
//! them: lock ids returned by calls, errors, and the callbacks read from the
//! handles' event sockets.

use crate::fmt as pf;
use crate::rng::Rng;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::os::fd::{AsRawFd, OwnedFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use udlm::engine::QueueKind;
use udlm::node::deadlock::{global_owner, owner_parts};
use udlm::node::hierarchy::child_name;
use udlm::node::inspect::{InspectStep, InspectTarget, ResourceView};
use udlm::node::peer::PeerMsg;
use udlm::node::sink::EventSink;
use udlm::node::{ClusterView, LockArgs, Node, NodeLimits, PeerLink};
use udlm::proto::{Callback, UserArgs, CALLBACK_LEN};
use udlm::sys::{self, PeerCreds};
use udlm::types::{lkf, lsfl, sbf, Errno, Mode, Owner, ResName, Status};

pub const LOCKSPACES: [&[u8]; 2] = [b"ls0", b"ls1"];
pub const NAMES: [&[u8]; 4] = [b"r0", b"r1", b"r2", b"r3"];
/// The names a child request gives inside its parent's resource.
const CHILD_NAMES: [&[u8]; 2] = [b"c0", b"c1"];
/// Deepest child resource the workload makes (the roots are depth 0).
const MAX_DEPTH: u8 = 2;
/// Resource indices: NAMES first, then the child resources derived so far
/// (at most 4 + 8 + 16 with two child names and depth 2).
const MAX_RES: usize = 32;
const NRES: usize = LOCKSPACES.len() * MAX_RES;
/// Lockspace flags of the lockspace that has the udlm extensions on.
const EXT_LSFL: u32 = lsfl::UDLM_TIMEOUT | lsfl::UDLM_HIERARCHY;
const ETIMEDOUT: i32 = libc::ETIMEDOUT;
/// How long the node waits before it sends a lock's timeout to its master
/// again (node/mod.rs `TIMEOUT_RETRY_MS`, private).
const TIMEOUT_RETRY_MS: u64 = 1000;

const NL: u8 = 0;
const CW: u8 = 2;
const PR: u8 = 3;
const PW: u8 = 4;
const EX: u8 = 5;
const NONE: u8 = 6; // "not granted", in mode masks

const EUNLOCK: i32 = Status::EUNLOCK;
const ECANCEL: i32 = Status::ECANCEL;
const EAGAIN: i32 = libc::EAGAIN;
const EDEADLK: i32 = libc::EDEADLK;
const ENOLCK: i32 = libc::ENOLCK;

const MAX_HANDLES_PER_NODE: usize = 3;
const MAX_LOCKS_PER_HANDLE: usize = 6;
/// The routines a program registers (echoed in callbacks).
const AST: u64 = 0xa57;
const BAST: u64 = 0xba57;
const BASTARG: u64 = 0xbba;

/// What a run may vary, beyond the seed.
#[derive(Clone, Debug)]
pub struct Options {
    /// Cluster size (default: from the seed, 3 to 9, mostly small).
    pub nodes: Option<usize>,
    /// Faults (crashes, partitions, link drops, leaves, lulls).
    pub faults: bool,
    /// `dlm_release_lockspace` with force=1 sometimes.
    pub force_release: bool,
    /// Single-link cuts that last longer than the lease (connectivity that
    /// is not transitive).
    pub long_link_cuts: bool,
    /// Largest difference between the two ends noticing a session loss, as
    /// a fraction of the lease (1/N); the transport bounds it by its
    /// heartbeat timeout.
    pub detect_skew_div: u64,
    /// Bound on the steps of the random phase.
    pub max_steps: u64,
    /// Record a readable trace.
    pub trace: bool,
    /// Check that no two running nodes master one resource (off: only
    /// what programs see is checked).
    pub master_check: bool,
    /// Stay clear of the failure classes already found, to look for
    /// others: node 1 never fails and keeps a majority, cuts are too short
    /// for a node to fence itself, crashed nodes come back only after the
    /// others recovered, lockspaces are closed but never released.
    pub avoid_known_bugs: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            nodes: None,
            faults: true,
            force_release: false,
            long_link_cuts: true,
            detect_skew_div: 10,
            max_steps: 900,
            trace: false,
            master_check: true,
            avoid_known_bugs: false,
        }
    }
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub seed: u64,
    pub steps: u64,
    pub sim_ms: u64,
    pub summary: String,
    /// The first invariant broken, with the step it was found at.
    pub failure: Option<String>,
    pub trace: Vec<String>,
}

// ----- the network ------------------------------------------------------

#[derive(Default)]
struct Outbox(Mutex<Vec<(u32, u32, Vec<u8>)>>);

/// A node's `PeerLink`: everything goes to the shared outbox, which the
/// simulator moves onto links after each step.
struct Wire {
    from: u32,
    out: Arc<Outbox>,
    /// The peers whose session the node was told is up (for status).
    up: Arc<Mutex<BTreeSet<u32>>>,
}

impl PeerLink for Wire {
    fn send(&self, to: u32, payload: Vec<u8>) -> bool {
        self.out
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((self.from, to, payload));
        true
    }

    fn connected(&self) -> Vec<u32> {
        self.up
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }
}

struct Msg {
    payload: Vec<u8>,
    /// The sender's transport incarnation.
    src_inc: u64,
    at: u64,
}

#[derive(Clone, Copy, Debug)]
enum Note {
    Down(u32),
    Up(u32, u64),
}

struct Slot {
    id: u32,
    node: Option<Node>,
    /// Transport incarnation of the current process.
    inc: u64,
    /// How many times this node started (model keys).
    gen: u32,
    started: u64,
    rate_ppm: i64,
    next_tick: u64,
    notes: VecDeque<(u64, Note)>,
    /// What the node was told of each peer (incarnation when up).
    told: Vec<Option<u64>>,
    /// The last state queued for each peer (up with incarnation, or down).
    intended: Vec<Option<u64>>,
    crashed_at: u64,
    /// The local clock value of the node's last tick (its `now_ms`).
    last_tick_local: u64,
    /// Shared with the node's `Wire`: peers told up.
    up: Arc<Mutex<BTreeSet<u32>>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Restart(u32),
    Uncut(u32, u32),
    Fence { coordinator: u32, target: u32 },
}

// ----- the programs' view ----------------------------------------------

struct HandleM {
    node: u32,
    gen: u32,
    ls: usize,
    owner: Owner,
    fd: Option<OwnedFd>,
    /// Its lockspace was destroyed under it: calls fail with ENOENT.
    detached: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LState {
    Live,
    /// PERSISTENT, granted when its handle closed: owned by nobody.
    Orphan,
    /// Its handle closed while it was pending: an orphan or nothing.
    MaybeOrphan,
    /// Its lockspace was force-released under it.
    Leaked,
    Ended,
}

#[derive(Clone, Copy, Debug)]
enum Pending {
    Request {
        mode: u8,
        flags: u32,
    },
    Convert {
        mode: u8,
        flags: u32,
        tag: Option<u64>,
    },
}

impl Pending {
    fn flags(&self) -> u32 {
        match *self {
            Pending::Request { flags, .. } | Pending::Convert { flags, .. } => flags,
        }
    }
    fn mode(&self) -> u8 {
        match *self {
            Pending::Request { mode, .. } | Pending::Convert { mode, .. } => mode,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct UnlockM {
    flags: u32,
    /// Issued while a request or conversion to PW/EX waited, with VALBLK:
    /// it writes its value if the master granted the lock first.
    may_write_late: bool,
    tag: Option<u64>,
}

struct LockM {
    node: u32,
    gen: u32,
    ls: usize,
    lkid: u32,
    handle: Option<usize>,
    name: usize,
    state: LState,
    /// The granted mode the program was told.
    gr: Option<u8>,
    /// A CONVDEADLK conversion is pending: the lock may be at NL already.
    uncertain: bool,
    /// Modes an orphan may be in (its handle closed mid-operation).
    orphan_modes: u8,
    pending: Option<Pending>,
    /// A cancel answered 0: a callback will follow.
    cancel: bool,
    unlock: Option<UnlockM>,
    /// The flags of the last accepted lock or convert call.
    flags: u32,
    valblk: bool,
    user: UserArgs,
    incarnation: Option<u32>,
    /// A cancel ended a conversion and no conversion followed: the engine
    /// then refuses another cancel with EINVAL (a kernel quirk it keeps).
    cancelled_conv: bool,
    /// A CONVDEADLK conversion was cancelled: the lock may have been
    /// demoted to NL before (the cancel resets sb_flags, so DEMOTED is not
    /// reported, as in the kernel). Until its next grant it is at its old
    /// mode or NL.
    gr_unknown: bool,
    /// Hierarchical lockspace: the parent lock (model index).
    parent: Option<usize>,
    /// The pending operation has an `LKF_TIMEOUT` that counts: the
    /// requester's clock (its `now_ms`) must reach this before ETIMEDOUT.
    timeout_at: Option<u64>,
    /// Changes whenever the program calls on the lock or hears of it (the
    /// query checks judge only locks left alone while the query ran).
    version: u64,
    /// Modes the lock was granted before conversions its master may not
    /// have heard of yet (a conversion down completes on the requesting
    /// node at once); cleared by a conversion up, which the master grants
    /// after the earlier ones on the same link.
    stale: u8,
}

impl LockM {
    fn key(&self) -> (u32, u32, usize, u32) {
        (self.node, self.gen, self.ls, self.lkid)
    }

    /// The modes a program's lock may be in at its master right now (a
    /// mask; 0 when no program holds it). A pending conversion may already
    /// be granted there; a CONVDEADLK one may have been demoted to NL. An
    /// unlock issued means the program no longer relies on the lock.
    fn held(&self) -> u8 {
        if self.state != LState::Live || self.unlock.is_some() {
            return 0;
        }
        let Some(g) = self.gr else { return 0 };
        let mut m = 1u8 << g;
        if self.gr_unknown {
            m |= 1 << NL;
        }
        if let Some(Pending::Convert { mode, flags, .. }) = self.pending {
            m |= 1 << mode;
            if flags & lkf::ALTPR != 0 {
                m |= 1 << PR;
            }
            if flags & lkf::ALTCW != 0 {
                m |= 1 << CW;
            }
            if flags & lkf::CONVDEADLK != 0 {
                m |= 1 << NL;
            }
        }
        m
    }

    /// The modes the node may report for it (bit NONE: not granted).
    fn mask(&self) -> u8 {
        match self.state {
            LState::Ended => 0,
            LState::Orphan => self.orphan_modes,
            LState::MaybeOrphan => self.orphan_modes | (1 << NONE),
            LState::Live | LState::Leaked => {
                let mut m = match self.gr {
                    Some(g) => 1 << g,
                    None => 1 << NONE,
                };
                if self.uncertain || self.gr_unknown {
                    m |= 1 << NL;
                }
                m
            }
        }
    }

    /// The granted modes (bit NONE: not granted) its master may show while
    /// the program hears nothing of it: a pending operation may already
    /// be granted, in an alternate mode, or demoted to NL.
    fn master_modes(&self) -> u8 {
        let mut m = self.mask() | self.stale;
        if let Some(p) = self.pending {
            m |= 1 << p.mode();
            let f = p.flags();
            if f & lkf::ALTPR != 0 {
                m |= 1 << PR;
            }
            if f & lkf::ALTCW != 0 {
                m |= 1 << CW;
            }
            if f & lkf::CONVDEADLK != 0 {
                m |= 1 << NL;
            }
        }
        m
    }

    fn settled(&self) -> bool {
        self.state == LState::Live
            && self.pending.is_none()
            && self.unlock.is_none()
            && !self.uncertain
            && !self.gr_unknown
            && self.gr.is_some()
    }
}

/// What the programs know of one resource's value block.
#[derive(Clone, Copy, Debug, Default)]
struct LvbM {
    next_tag: u64,
    /// The newest value known written or read valid (None: unknown).
    floor: Option<u64>,
    /// The resource may have lost its value (no locks anywhere, or its
    /// master died) since the floor was set.
    maybe_reset: bool,
}

fn lvb_encode(ls: usize, name: usize, tag: u64) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&tag.to_le_bytes());
    b[8] = 0xa5;
    b[9] = ls as u8;
    b[10] = name as u8;
    b
}

/// Ok(None) for zeros, Ok(Some((ls, name, tag))) for ours.
fn lvb_decode(b: &[u8; 32]) -> Result<Option<(usize, usize, u64)>, ()> {
    if b.iter().all(|&x| x == 0) {
        return Ok(None);
    }
    if b[8] == 0xa5 && b[11..].iter().all(|&x| x == 0) {
        let tag = u64::from_le_bytes(b[..8].try_into().unwrap());
        return Ok(Some((b[9] as usize, b[10] as usize, tag)));
    }
    Err(())
}

/// Spec §5.2: 1 the grant reads the resource's LVB, 0 it writes it, -1
/// nothing. `from` None is a new request.
fn transfer(from: Option<u8>, to: u8) -> i8 {
    match from {
        None | Some(0) => 1,
        Some(f @ 1..=3) => {
            if to >= f {
                1
            } else {
                -1
            }
        }
        Some(4) if to == EX => 1,
        _ => 0,
    }
}

fn compatible(a: u8, b: u8) -> bool {
    let m = |x: u8| Mode::from_raw(i64::from(x)).expect("mode");
    m(a).compatible(m(b))
}

/// The static lock-call checks of spec §2.4, written from the spec.
fn lock_args_valid(mode: u8, flags: u32) -> bool {
    let has = |f: u32| flags & f != 0;
    !(mode > EX
        || has(lkf::CANCEL)
        || (has(lkf::QUECVT) && !has(lkf::CONVERT))
        || (has(lkf::CONVDEADLK) && !has(lkf::CONVERT))
        || (has(lkf::CONVDEADLK) && has(lkf::NOQUEUE))
        || (has(lkf::EXPEDITE) && (has(lkf::CONVERT) || has(lkf::QUECVT) || has(lkf::NOQUEUE)))
        || (has(lkf::EXPEDITE) && mode != NL))
}

/// Spec §3.3: the upward conversions QUECVT allows.
fn quecvt_ok(from: u8, to: u8) -> bool {
    to > from || (from == PR && to == CW)
}

/// Kuhn's matching: can every item be given a distinct candidate whose
/// mask contains the item's mode?
fn matchable(items: &[u8], cands: &[u8]) -> bool {
    fn augment(
        i: usize,
        items: &[u8],
        cands: &[u8],
        seen: &mut [bool],
        owner: &mut [Option<usize>],
    ) -> bool {
        for c in 0..cands.len() {
            if cands[c] & (1 << items[i]) != 0 && !seen[c] {
                seen[c] = true;
                if owner[c].is_none() || augment(owner[c].unwrap(), items, cands, seen, owner) {
                    owner[c] = Some(i);
                    return true;
                }
            }
        }
        false
    }
    let mut owner = vec![None; cands.len()];
    for i in 0..items.len() {
        let mut seen = vec![false; cands.len()];
        if !augment(i, items, cands, &mut seen, &mut owner) {
            return false;
        }
    }
    true
}

fn creds() -> PeerCreds {
    // The node kills the processes of a self-fenced node's holders by pid;
    // our own pid is the one it never kills. The simulator models the kill.
    PeerCreds {
        pid: std::process::id(),
        uid: 0,
        gid: 0,
    }
}

pub fn panic_text(e: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = e.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = e.downcast_ref::<String>() {
        s.clone()
    } else {
        "(non-text panic)".into()
    }
}

/// Per-event bookkeeping.
#[derive(Default)]
struct EventCtx {
    /// Handles that received ENOLCK in this step, per node.
    enolck: Vec<(u32, usize)>,
}

pub struct Sim {
    seed: u64,
    opts: Options,
    rng: Rng,
    n: usize,
    lease_ms: u64,
    lease: u64,
    tick_us: u64,
    lat_us: u64,
    fencing: bool,
    nodir: bool,
    weights: Option<Vec<u32>>,
    now: u64,
    steps: u64,
    slots: Vec<Slot>,
    out: Arc<Outbox>,
    links: Vec<VecDeque<Msg>>,
    last_dst_inc: Vec<Option<u64>>,
    cut: Vec<u32>,
    actions: Vec<(u64, Action)>,
    next_op: u64,
    op_mean: u64,
    next_fault: u64,
    end_random: u64,
    lull_until: u64,
    last_restart: u64,
    last_crash: u64,
    /// Avoiding known bugs: LVB values are not judged around a master's
    /// death (a survivor's stale copy may be rebuilt as valid).
    lvb_blind_until: u64,
    final_phase: bool,
    handles: Vec<HandleM>,
    locks: Vec<LockM>,
    index: BTreeMap<(u32, u32, usize, u32), usize>,
    lvbs: [LvbM; NRES],
    next_inc: u64,
    op_id: u64,
    trace: Option<Vec<String>>,
    failure: Option<String>,
    touched: Vec<u32>,
    ctx: EventCtx,
    fences_pending: BTreeSet<u32>,
    stats: BTreeMap<&'static str, u64>,
    /// Every lock of every node's engines just before the last call that
    /// could end a deadlock search (node, lockspace, lock id): the global
    /// view the no-false-deadlock check compares a cycle with.
    wait_snapshot: Option<Snapshot>,
    /// Cycles found, by (detector, lockspace, round), with the view of
    /// their search, until confirmed.
    deadlock_found: HashMap<(u32, Vec<u8>, u64), FoundCycle>,
    /// EDEADLK completions that verified deadlock cycles allow, per (node,
    /// handle owner id).
    deadlock_allowed: HashMap<(u32, u64), u32>,
    /// The extensions' decisions come from a stream of their own, so that
    /// the older decisions keep their draws as far as possible.
    xrng: Rng,
    /// The lockspace created with UDLM_LSFL_TIMEOUT | UDLM_LSFL_HIERARCHY.
    ext_ls: usize,
    /// Resource names by index: NAMES, then child names as derived.
    res: Vec<Vec<u8>>,
    res_ix: HashMap<Vec<u8>, usize>,
    /// (parent resource, child name index) -> resource.
    child_ix: BTreeMap<(usize, usize), usize>,
    res_depth: Vec<u8>,
    /// Counts faults, transport notifications, restarts and resets: the
    /// query checks that compare an answer with the programs' view hold
    /// only when nothing of the kind happened while the query ran.
    epoch: u64,
    /// Queries waiting for their answer.
    queries: Vec<QueryM>,
}

/// A query in flight, with what the programs knew when it was asked.
struct QueryM {
    node: u32,
    gen: u32,
    h: usize,
    ls: usize,
    name: usize,
    /// A lock query: this lock (model index) only.
    only: Option<usize>,
    token: u64,
    asked_at: u64,
    epoch: u64,
    /// Every model lock on the resource when asked, with its version.
    versions: Vec<(usize, u64)>,
}

/// Why `cycle` is not a cycle of waits in the global state `snap`, if so.
fn false_deadlock(
    ls: &[u8],
    cycle: &[(u32, udlm::node::peer::EdgeWire)],
    snap: &Snapshot,
) -> Option<String> {
    let k = cycle.len();
    if k < 2 {
        return Some("a cycle of fewer than two edges".into());
    }
    let owners: BTreeSet<u64> = cycle.iter().map(|(_, e)| e.waiter_owner).collect();
    if owners.len() != k {
        return Some("an owner waits twice in the cycle".into());
    }
    for (i, (m, e)) in cycle.iter().enumerate() {
        if e.blocker_owner != cycle[(i + 1) % k].1.waiter_owner {
            return Some(format!("edge {i} does not lead to edge {}", (i + 1) % k));
        }
        let w = snap.get(&(*m, ls.to_vec(), e.waiter));
        let b = snap.get(&(*m, ls.to_vec(), e.blocker));
        let ok = match (w, b) {
            (Some(w), Some(b)) => {
                w.owner == e.waiter_owner
                    && b.owner == e.blocker_owner
                    && matches!(w.queue, QueueKind::Converting | QueueKind::Waiting)
                    && match (b.granted, w.requested) {
                        (Some(g), Some(r)) => !g.compatible(r),
                        _ => false,
                    }
            }
            _ => false,
        };
        if !ok {
            return Some(format!(
                "edge {i} (n{m} lock {} waits for lock {}) is not in the global state",
                e.waiter, e.blocker
            ));
        }
    }
    None
}

/// A cycle a detector found: its edges with their masters, the victim's
/// edge, and the global view of the moment it was found.
type FoundCycle = (Vec<(u32, udlm::node::peer::EdgeWire)>, usize, Snapshot);

/// Every lock of every engine: (node, lockspace, lock id) → what it is.
type Snapshot = HashMap<(u32, Vec<u8>, u32), SnapLock>;

/// One lock in [`Sim::wait_snapshot`].
#[derive(Clone)]
struct SnapLock {
    owner: u64,
    queue: QueueKind,
    granted: Option<Mode>,
    requested: Option<Mode>,
}

impl Sim {
    pub fn new(seed: u64, opts: Options) -> Sim {
        let mut rng = Rng::new(seed);
        let n = opts.nodes.unwrap_or_else(|| {
            let r = rng.below(100);
            if r < 50 {
                3
            } else if r < 70 {
                4
            } else if r < 85 {
                5
            } else {
                rng.range(6, 9) as usize
            }
        });
        let n = n.clamp(3, 9);
        let lease_ms = rng.pick(&[300u64, 400, 600, 2000]);
        let lease = lease_ms * 1000;
        let tick_us = lease / 10;
        let lat_us = rng.range(lease / 400, lease / 100).max(50);
        let fencing = rng.chance(1, 5);
        let nodir = rng.chance(3, 10) && !opts.avoid_known_bugs;
        let weights = rng
            .chance(1, 5)
            .then(|| (0..n).map(|_| rng.range(0, 3) as u32).collect());
        let op_mean = lease / rng.range(15, 40);
        let faults = opts.faults && !rng.chance(1, 10);
        let end_random = lease * rng.range(3, 7);
        let mut xrng = Rng::new(seed ^ 0x7e57_0e47_5ee1_d0e5);
        let ext_ls = xrng.below(LOCKSPACES.len() as u64) as usize;
        let mut sim = Sim {
            seed,
            rng,
            n,
            lease_ms,
            lease,
            tick_us,
            lat_us,
            fencing,
            nodir,
            weights,
            now: 0,
            steps: 0,
            slots: Vec::new(),
            out: Arc::new(Outbox::default()),
            links: (0..n * n).map(|_| VecDeque::new()).collect(),
            last_dst_inc: vec![None; n * n],
            cut: vec![0; n * n],
            actions: Vec::new(),
            next_op: 0,
            op_mean,
            next_fault: u64::MAX,
            end_random,
            lull_until: 0,
            last_restart: 0,
            last_crash: 0,
            lvb_blind_until: 0,
            final_phase: false,
            handles: Vec::new(),
            locks: Vec::new(),
            index: BTreeMap::new(),
            lvbs: [LvbM::default(); NRES],
            next_inc: 1,
            op_id: 1,
            trace: opts.trace.then(Vec::new),
            failure: None,
            touched: Vec::new(),
            ctx: EventCtx::default(),
            fences_pending: BTreeSet::new(),
            stats: BTreeMap::new(),
            wait_snapshot: None,
            deadlock_found: HashMap::new(),
            deadlock_allowed: HashMap::new(),
            xrng,
            ext_ls,
            res: NAMES.iter().map(|n| n.to_vec()).collect(),
            res_ix: NAMES
                .iter()
                .enumerate()
                .map(|(i, n)| (n.to_vec(), i))
                .collect(),
            child_ix: BTreeMap::new(),
            res_depth: vec![0; NAMES.len()],
            epoch: 0,
            queries: Vec::new(),
            opts,
        };
        if faults {
            sim.next_fault = sim.lease / 2 + sim.rng.below(sim.lease);
        }
        sim
    }

    fn describe(&self) -> String {
        let clocks: Vec<String> = self
            .slots
            .iter()
            .map(|s| format!("n{}:{:+.1}%", s.id, s.rate_ppm as f64 / 10_000.0))
            .collect();
        format!(
            "seed {}: {} nodes, lease {} ms, tick {} ms, latency ~{} us, fencing={}, nodir ls1={}, weights ls0={:?}, timeouts+hierarchy ls{}, op every ~{} ms, faults={}, random phase {} ms, clocks [{}]",
            self.seed,
            self.n,
            self.lease_ms,
            self.tick_us / 1000,
            self.lat_us,
            self.fencing,
            self.nodir,
            self.weights,
            self.ext_ls,
            self.op_mean / 1000,
            self.next_fault != u64::MAX,
            self.end_random / 1000,
            clocks.join(" ")
        )
    }

    // ----- trace ---------------------------------------------------------

    fn tr(&mut self, f: impl FnOnce() -> String) {
        if let Some(t) = self.trace.as_mut() {
            let line = format!(
                "[{:>9.3} ms #{:<5}] {}",
                self.now as f64 / 1000.0,
                self.steps,
                f()
            );
            t.push(line);
        }
    }

    /// The node's own log lines (stderr), when captured.
    fn tr_logs(&mut self) {
        if self.trace.is_none() {
            return;
        }
        let text = crate::capture::take();
        if text.is_empty() {
            return;
        }
        let pid = format!("process {}", std::process::id());
        for line in text.lines() {
            let l = format!(
                "              log: {}",
                line.replace(&pid, "process <the sim>")
            );
            self.trace.as_mut().unwrap().push(l);
        }
    }

    fn fail(&mut self, msg: String) {
        if self.failure.is_none() {
            let m = format!(
                "step {} at {:.3} ms: {msg}",
                self.steps,
                self.now as f64 / 1000.0
            );
            self.tr(|| format!("FAILURE: {msg}"));
            self.failure = Some(m);
            if self.trace.is_some() {
                // The nodes' own view, for the diagnosis.
                let mut lines = Vec::new();
                for x in 1..=self.n as u32 {
                    let Some(node) = self.node_ref(x) else {
                        continue;
                    };
                    for ls in LOCKSPACES {
                        let d = node.query(&udlm::proto::Query::Lockdump(ls.to_vec()), creds());
                        lines.push(format!(
                            "  n{x} lockdump {}: {d:?}",
                            String::from_utf8_lossy(ls)
                        ));
                    }
                    let st = node.query(&udlm::proto::Query::Status, creds());
                    lines.push(format!("  n{x} status: {st:?}"));
                }
                if let Some(t) = self.trace.as_mut() {
                    t.extend(lines);
                }
            }
        }
    }

    fn stat(&mut self, k: &'static str) {
        *self.stats.entry(k).or_insert(0) += 1;
    }

    // ----- nodes ------------------------------------------------------------

    fn view(&self) -> ClusterView {
        let mut lockspaces = HashMap::new();
        if self.nodir {
            lockspaces.insert(b"ls1".to_vec(), (true, Vec::new()));
        }
        if let Some(w) = &self.weights {
            let ws: Vec<(u32, u32)> = (1..=self.n as u32).zip(w.iter().copied()).collect();
            lockspaces.insert(b"ls0".to_vec(), (false, ws));
        }
        ClusterView {
            nodes: (1..=self.n as u32).collect(),
            lockspaces,
            lease_ms: self.lease_ms,
            self_fence_abort: true,
            fencing: self.fencing,
            two_node: false,
            ..ClusterView::default()
        }
    }

    fn new_node(&mut self, id: u32) -> Node {
        let up = Arc::new(Mutex::new(BTreeSet::new()));
        self.slots[(id - 1) as usize].up = Arc::clone(&up);
        let mut node = Node::new(id, NodeLimits::default());
        node.record_deadlock_searches();
        node.set_cluster(
            self.view(),
            Arc::new(Wire {
                from: id,
                out: Arc::clone(&self.out),
                up,
            }),
        );
        node
    }

    fn set_told(&mut self, x: u32, p: u32, v: Option<u64>) {
        let s = &mut self.slots[(x - 1) as usize];
        s.told[(p - 1) as usize] = v;
        let mut up = s.up.lock().unwrap_or_else(|e| e.into_inner());
        if v.is_some() {
            up.insert(p);
        } else {
            up.remove(&p);
        }
    }

    fn alive(&self, id: u32) -> bool {
        self.slots[(id - 1) as usize].node.is_some()
    }

    fn li(&self, from: u32, to: u32) -> usize {
        (from - 1) as usize * self.n + (to - 1) as usize
    }

    fn is_cut(&self, a: u32, b: u32) -> bool {
        self.cut[self.li(a, b)] > 0
    }

    fn local_ms(&self, id: u32) -> u64 {
        let s = &self.slots[(id - 1) as usize];
        let el = (self.now - s.started) as i128;
        let local = el * (1_000_000 + s.rate_ppm as i128) / 1_000_000;
        (local.max(0) as u64) / 1000
    }

    /// Runs `f` on node `id`, catching a panic as a failure.
    fn call<R>(&mut self, id: u32, f: impl FnOnce(&mut Node) -> R) -> Option<R> {
        let slot = &mut self.slots[(id - 1) as usize];
        let node = slot.node.as_mut()?;
        let r = catch_unwind(AssertUnwindSafe(|| f(node)));
        if !self.touched.contains(&id) {
            self.touched.push(id);
        }
        match r {
            Ok(r) => Some(r),
            Err(e) => {
                let msg = crate::runner::last_panic().unwrap_or_else(|| panic_text(&*e));
                self.fail(format!("node {id} panicked: {msg}"));
                None
            }
        }
    }

    fn node_ref(&self, id: u32) -> Option<&Node> {
        self.slots[(id - 1) as usize].node.as_ref()
    }

    fn blocked(&self, id: u32) -> bool {
        self.node_ref(id).is_none_or(|n| n.operations_blocked())
    }

    // ----- the run -----------------------------------------------------------

    pub fn run(mut self) -> Outcome {
        for id in 1..=self.n as u32 {
            let rate = self.rng.range(0, 100_000) as i64 - 50_000;
            let tick0 = self.rng.below(self.tick_us);
            let inc = self.fresh_inc();
            self.slots.push(Slot {
                id,
                node: None,
                inc,
                gen: 1,
                started: 0,
                rate_ppm: rate,
                next_tick: tick0,
                notes: VecDeque::new(),
                told: vec![None; self.n],
                intended: vec![None; self.n],
                crashed_at: 0,
                last_tick_local: 0,
                up: Arc::new(Mutex::new(BTreeSet::new())),
            });
        }
        for id in 1..=self.n as u32 {
            let node = self.new_node(id);
            self.slots[(id - 1) as usize].node = Some(node);
        }
        let d = self.describe();
        self.tr(|| d);
        for a in 1..=self.n as u32 {
            for b in a + 1..=self.n as u32 {
                self.session_up(a, b);
            }
        }
        self.next_op = self.rng.below(self.op_mean);
        // The random phase.
        while self.failure.is_none()
            && self.now < self.end_random
            && self.steps < self.opts.max_steps
        {
            self.step();
        }
        // Quiet down, heal, restart, release everything, check.
        if self.failure.is_none() {
            self.finale();
        }
        let summary = format!(
            "{} nodes, lease {} ms, {} steps, {:.0} ms simulated; {}",
            self.n,
            self.lease_ms,
            self.steps,
            self.now as f64 / 1000.0,
            self.stats
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
        // Close what is still open (the nodes' ends go with the nodes).
        for h in &mut self.handles {
            h.fd = None;
        }
        Outcome {
            seed: self.seed,
            steps: self.steps,
            sim_ms: self.now / 1000,
            summary,
            failure: self.failure.take(),
            trace: self.trace.take().unwrap_or_default(),
        }
    }

    fn fresh_inc(&mut self) -> u64 {
        let i = self.next_inc;
        self.next_inc += 1;
        // Incarnations are random 64-bit numbers in the transport.
        (i << 32) | (self.rng.next_u64() & 0xffff_ffff)
    }

    /// One event: the earliest due.
    fn step(&mut self) {
        #[derive(Clone, Copy)]
        enum Ev {
            Tick(u32),
            Note(u32),
            Deliver(u32, u32),
            Op,
            Fault,
            Action(usize),
        }
        let mut best: Option<(u64, Ev)> = None;
        let mut consider = |t: u64, e: Ev| {
            if best.is_none_or(|(bt, _)| t < bt) {
                best = Some((t, e));
            }
        };
        for s in &self.slots {
            if s.node.is_some() {
                consider(s.next_tick, Ev::Tick(s.id));
                if let Some(&(t, _)) = s.notes.front() {
                    consider(t, Ev::Note(s.id));
                }
            }
        }
        for from in 1..=self.n as u32 {
            for to in 1..=self.n as u32 {
                if from == to {
                    continue;
                }
                let li = self.li(from, to);
                let Some(m) = self.links[li].front() else {
                    continue;
                };
                let rx = &self.slots[(to - 1) as usize];
                if rx.node.is_some()
                    && self.cut[li] == 0
                    && rx.told[(from - 1) as usize] == Some(m.src_inc)
                {
                    consider(m.at, Ev::Deliver(from, to));
                }
            }
        }
        if !self.final_phase {
            consider(self.next_op, Ev::Op);
            consider(self.next_fault, Ev::Fault);
        }
        for (i, &(t, _)) in self.actions.iter().enumerate() {
            consider(t, Ev::Action(i));
        }
        let Some((t, ev)) = best else {
            // Nothing at all can happen (every node dead and nothing
            // scheduled): only the finale restarts them.
            self.now = self.end_random.max(self.now);
            return;
        };
        self.now = self.now.max(t);
        self.steps += 1;
        self.touched.clear();
        self.ctx = EventCtx::default();
        match ev {
            Ev::Tick(id) => self.do_tick(id),
            Ev::Note(id) => self.do_note(id),
            Ev::Deliver(from, to) => self.do_deliver(from, to),
            Ev::Op => {
                self.do_op();
                let no = self.now + 1 + self.rng.below(2 * self.op_mean);
                self.next_op = self.next_op.max(no);
            }
            Ev::Fault => {
                self.do_fault();
                let nf = self.now + self.lease / 2 + self.rng.below(2 * self.lease);
                self.next_fault = self.next_fault.max(nf);
            }
            Ev::Action(i) => {
                let (_, a) = self.actions.swap_remove(i);
                self.do_action(a);
            }
        }
        self.after_step();
    }

    fn take_wait_snapshot(&mut self) {
        let mut snap = HashMap::new();
        for id in 1..=self.n as u32 {
            let Some(node) = self.node_ref(id) else {
                continue;
            };
            for ls in node.lockspace_names_with_state() {
                let Some(engine) = node.lockspace_engine(&ls) else {
                    continue;
                };
                for r in engine.resources() {
                    for l in r.granted.iter().chain(&r.converting).chain(&r.waiting) {
                        snap.insert(
                            (id, ls.clone(), l.lkid.0),
                            SnapLock {
                                owner: global_owner(id, l.owner),
                                queue: l.queue,
                                granted: l.granted,
                                requested: l.requested,
                            },
                        );
                    }
                }
            }
        }
        self.wait_snapshot = Some(snap);
    }

    /// No false deadlock: a cycle node `id`'s detector found and then
    /// confirmed must be a cycle of the global state just before the call
    /// in which it was found (the protocol's claim, node/deadlock.rs). A
    /// verified cycle allows one EDEADLK for its victim's handle.
    fn check_deadlock_searches(&mut self, id: u32) {
        use udlm::node::deadlock::DeadlockEvent;
        let events = self
            .call(id, |n| n.take_deadlock_searches())
            .unwrap_or_default();
        // A view serves only the call it was taken for.
        let view = self.wait_snapshot.take();
        for ev in events {
            match ev {
                DeadlockEvent::Found {
                    ls,
                    round,
                    cycle,
                    victim,
                } => {
                    self.stat("deadlock cycles found");
                    let Some(snap) = view.clone() else {
                        self.fail(format!(
                            "n{id} found a deadlock cycle with no view to check it"
                        ));
                        return;
                    };
                    if self.deadlock_found.len() > 1000 {
                        self.deadlock_found.clear();
                    }
                    self.deadlock_found
                        .insert((id, ls, round), (cycle, victim, snap));
                }
                DeadlockEvent::Confirmed { ls, round } => {
                    let Some((cycle, victim, snap)) =
                        self.deadlock_found.remove(&(id, ls.clone(), round))
                    else {
                        self.fail(format!("n{id} confirmed a deadlock cycle it never found"));
                        return;
                    };
                    self.stat("deadlock cycles confirmed");
                    if let Some(why) = false_deadlock(&ls, &cycle, &snap) {
                        self.fail(format!("n{id}: false deadlock: {why}"));
                        return;
                    }
                    let (node, handle) = owner_parts(cycle[victim].1.waiter_owner);
                    *self.deadlock_allowed.entry((node, handle)).or_insert(0) += 1;
                }
            }
        }
    }

    fn do_tick(&mut self, id: u32) {
        let local = self.local_ms(id);
        self.tr(|| format!("tick n{id} (local clock {local} ms)"));
        // A tick may run a whole deadlock round alone (one member).
        if self
            .node_ref(id)
            .is_some_and(|n| n.is_deadlock_detector_alone())
        {
            self.take_wait_snapshot();
        }
        self.slots[(id - 1) as usize].last_tick_local = local;
        self.call(id, |n| n.tick(local));
        self.check_deadlock_searches(id);
        // In a quiet spell with every node up, ticks are sparse (they only
        // age idle masters); they are back to their pace before it ends.
        let quiet = self.now < self.lull_until && self.all_connected();
        let base = if quiet { 1_000_000 } else { self.tick_us };
        let jitter = self.rng.range(base * 7 / 10, base * 13 / 10);
        let mut next = self.now + jitter;
        if quiet {
            next = next.min(self.lull_until + self.rng.below(self.tick_us));
        }
        self.slots[(id - 1) as usize].next_tick = next;
        self.stat("ticks");
    }

    fn all_connected(&self) -> bool {
        self.slots.iter().all(|s| s.node.is_some()) && self.cut.iter().all(|&c| c == 0)
    }

    fn do_note(&mut self, id: u32) {
        let Some((_, note)) = self.slots[(id - 1) as usize].notes.pop_front() else {
            return;
        };
        self.epoch += 1;
        match note {
            Note::Down(p) => {
                self.tr(|| format!("n{id}: transport says session with n{p} is down"));
                self.set_told(id, p, None);
                // What the peer's earlier incarnation sent and we did not
                // get is gone with that session.
                let keep = self
                    .node_ref(p)
                    .is_some()
                    .then(|| self.slots[(p - 1) as usize].inc);
                let li = self.li(p, id);
                self.links[li].retain(|m| Some(m.src_inc) == keep);
                self.call(id, |n| n.peer_down(p));
            }
            Note::Up(p, inc) => {
                self.tr(|| {
                    format!("n{id}: transport says session with n{p} is up (incarnation {inc:#x})")
                });
                self.set_told(id, p, Some(inc));
                self.call(id, |n| n.peer_up(p, inc));
            }
        }
    }

    fn do_deliver(&mut self, from: u32, to: u32) {
        let li = self.li(from, to);
        let Some(m) = self.links[li].pop_front() else {
            return;
        };
        if self.trace.is_some() {
            let text = pf::peer_msg(&m.payload);
            self.tr(|| format!("deliver n{from} -> n{to}: {text}"));
        }
        self.stat("messages");
        // The last report of a deadlock round starts the search: the state
        // of this moment is what the cycle must be found in.
        let report = matches!(
            PeerMsg::decode(&m.payload),
            Ok(PeerMsg::DlEdges { last: true, .. })
        );
        if report {
            self.take_wait_snapshot();
        }
        self.call(to, |n| n.on_peer_message(from, &m.payload));
        self.check_deadlock_searches(to);
    }

    /// Moves what nodes sent onto the links.
    fn flush_outbox(&mut self) {
        let sent: Vec<(u32, u32, Vec<u8>)> =
            std::mem::take(&mut *self.out.0.lock().unwrap_or_else(|e| e.into_inner()));
        for (from, to, payload) in sent {
            if to == from && self.opts.avoid_known_bugs {
                // Known (FINDINGS P): a query whose path leads back to the
                // asking node answers it by a message to itself.
                let text = pf::peer_msg(&payload);
                self.tr(|| format!("  n{from} -> n{to} (to itself, dropped: known bug P): {text}"));
                self.stat("known_message_to_self");
                continue;
            }
            if to == from || to == 0 || to as usize > self.n {
                let text = pf::peer_msg(&payload);
                self.fail(format!("n{from} sent a message to node {to}: {text}"));
                continue;
            }
            if !self.alive(to) {
                // Queued for a dead process: the transport drops it when the
                // peer comes back with a new incarnation.
                if self.trace.is_some() {
                    let text = pf::peer_msg(&payload);
                    self.tr(|| format!("  n{from} -> n{to} (dead, dropped): {text}"));
                }
                continue;
            }
            let lat = self.latency();
            let li = self.li(from, to);
            let last = self.links[li].back().map_or(0, |m| m.at);
            let at = (self.now + lat).max(last);
            let src_inc = self.slots[(from - 1) as usize].inc;
            self.links[li].push_back(Msg {
                payload,
                src_inc,
                at,
            });
        }
    }

    fn latency(&mut self) -> u64 {
        let base = self.rng.range(self.lat_us / 2, self.lat_us * 3 / 2);
        if self.rng.chance(3, 100) {
            base + self.rng.below(self.lease / 10)
        } else {
            base
        }
    }

    // ----- sessions -------------------------------------------------------

    fn push_note(&mut self, x: u32, at: u64, note: Note) {
        let s = &mut self.slots[(x - 1) as usize];
        let at = s.notes.back().map_or(at, |&(t, _)| t.max(at));
        s.notes.push_back((at, note));
    }

    fn notify_up(&mut self, x: u32, y: u32, at: u64) {
        let inc = self.slots[(y - 1) as usize].inc;
        let cur = self.slots[(x - 1) as usize].intended[(y - 1) as usize];
        if cur == Some(inc) {
            return;
        }
        if cur.is_some() {
            self.push_note(x, at, Note::Down(y));
        }
        self.push_note(x, at, Note::Up(y, inc));
        self.slots[(x - 1) as usize].intended[(y - 1) as usize] = Some(inc);
    }

    fn notify_down(&mut self, x: u32, y: u32, at: u64) {
        if self.slots[(x - 1) as usize].intended[(y - 1) as usize].is_none() {
            return;
        }
        self.push_note(x, at, Note::Down(y));
        self.slots[(x - 1) as usize].intended[(y - 1) as usize] = None;
    }

    /// The session between a and b is (re)established.
    fn session_up(&mut self, a: u32, b: u32) {
        for (x, y) in [(a, b), (b, a)] {
            let li = self.li(x, y);
            let y_inc = self.slots[(y - 1) as usize].inc;
            if self.last_dst_inc[li].is_some_and(|i| i != y_inc) {
                // The peer restarted: what was queued for it is discarded.
                self.links[li].clear();
            }
            self.last_dst_inc[li] = Some(y_inc);
            let mut t = self.now;
            for k in 0..self.links[li].len() {
                let lat = self.latency();
                let m = &mut self.links[li][k];
                t = t.max(m.at).max(self.now + lat);
                m.at = t;
            }
            let d = self.rng.below(self.lease / 50 + 1);
            self.notify_up(x, y, self.now + d);
        }
    }

    /// The session between a and b is lost (both alive).
    fn session_down(&mut self, a: u32, b: u32) {
        for (x, y) in [(a, b), (b, a)] {
            let d = self
                .rng
                .below(self.lease / self.opts.detect_skew_div.max(1) + 1);
            self.notify_down(x, y, self.now + d);
        }
    }

    fn add_cut(&mut self, a: u32, b: u32) {
        self.epoch += 1;
        let (i, j) = (self.li(a, b), self.li(b, a));
        self.cut[i] += 1;
        self.cut[j] += 1;
        if self.cut[i] == 1 && self.alive(a) && self.alive(b) {
            self.session_down(a, b);
        }
    }

    fn remove_cut(&mut self, a: u32, b: u32) {
        self.epoch += 1;
        let (i, j) = (self.li(a, b), self.li(b, a));
        if self.cut[i] == 0 {
            return;
        }
        self.cut[i] -= 1;
        self.cut[j] -= 1;
        if self.cut[i] == 0 && self.alive(a) && self.alive(b) {
            self.session_up(a, b);
        }
    }

    // ----- faults -----------------------------------------------------------

    /// How long a crashed node stays down.
    fn downtime(&mut self) -> u64 {
        if self.opts.avoid_known_bugs {
            // Back only after the others recovered without it.
            self.lease * 5 / 2 + self.rng.below(2 * self.lease)
        } else {
            self.lease / 5 + self.rng.below(4 * self.lease)
        }
    }

    fn do_fault(&mut self) {
        let ids: Vec<u32> = (1..=self.n as u32).collect();
        let avoid = self.opts.avoid_known_bugs;
        if avoid
            && (self.now < self.last_restart + 2 * self.lease
                || ids.iter().any(|&i| self.alive(i) && self.blocked(i)))
        {
            // A node still joining may exclude peers it cannot see yet
            // (a known bug): no fault until everyone runs.
            return;
        }
        // Node 1 (the coordinator) is spared when avoiding known bugs.
        let victims: Vec<u32> = ids
            .iter()
            .copied()
            .filter(|&i| self.alive(i) && !(avoid && i == 1))
            .collect();
        let r = self.rng.below(100);
        // Avoiding known bugs, a majority stays alive (nobody fences).
        let alive_n = ids.iter().filter(|&&i| self.alive(i)).count();
        let can_kill = !avoid || (alive_n - 1) * 2 > self.n;
        if (r < 22 || (80..88).contains(&r)) && !can_kill {
            return;
        }
        if r < 22 {
            if victims.is_empty() {
                return;
            }
            let x = self.rng.pick(&victims);
            let down = self.downtime();
            self.tr(|| format!("FAULT: n{x} crashes (restart in {} ms)", down / 1000));
            self.crash(x, false);
            self.actions.push((self.now + down, Action::Restart(x)));
            self.stat("crashes");
        } else if r < 47 {
            let mut side: Vec<u32> = ids
                .iter()
                .copied()
                .filter(|_| self.rng.chance(1, 2))
                .collect();
            if side.is_empty() || side.len() == self.n {
                side = vec![self.rng.range(1, self.n as u64) as u32];
            }
            if avoid {
                // Node 1 on the majority side.
                if side.contains(&1) != (side.len() * 2 > self.n) {
                    side = ids.iter().copied().filter(|i| !side.contains(i)).collect();
                }
                if side.len() * 2 == self.n {
                    let moved = *side.iter().find(|&&i| i != 1).unwrap_or(&side[0]);
                    if side.contains(&1) {
                        side.push(*ids.iter().find(|i| !side.contains(i)).unwrap());
                    } else {
                        side.retain(|&i| i != moved);
                    }
                }
            }
            let dur = self.cut_duration(true);
            self.tr(|| {
                format!(
                    "FAULT: partition {side:?} from the rest for {} ms",
                    dur / 1000
                )
            });
            for &a in &ids {
                for &b in &ids {
                    if a < b && side.contains(&a) != side.contains(&b) {
                        self.add_cut(a, b);
                        self.actions.push((self.now + dur, Action::Uncut(a, b)));
                    }
                }
            }
            self.stat("partitions");
        } else if r < 80 {
            let a = self.rng.range(1, self.n as u64) as u32;
            let mut b = self.rng.range(1, self.n as u64 - 1) as u32;
            if b >= a {
                b += 1;
            }
            let dur = self.cut_duration(self.opts.long_link_cuts && !avoid);
            self.tr(|| format!("FAULT: link n{a}-n{b} drops for {} ms", dur / 1000));
            self.add_cut(a, b);
            self.actions.push((self.now + dur, Action::Uncut(a, b)));
            self.stat("link_drops");
        } else if r < 88 {
            if victims.is_empty() {
                return;
            }
            let x = self.rng.pick(&victims);
            let down = self.downtime();
            self.tr(|| {
                format!(
                    "FAULT: n{x} shuts down cleanly (leave), restart in {} ms",
                    down / 1000
                )
            });
            self.call(x, |n| n.leave());
            self.flush_outbox();
            self.crash(x, true);
            self.actions.push((self.now + down, Action::Restart(x)));
            self.stat("leaves");
        } else if r < 93 {
            // A quiet spell longer than the idle-master grace period.
            if !self.all_connected() {
                return;
            }
            let d = (udlm::node::RESOURCE_GRACE_MS + 1500) * 1000;
            self.tr(|| format!("FAULT: no program does anything for {} ms", d / 1000));
            self.lull_until = self.now + d;
            let resume = self.lull_until + self.tick_us * 2;
            self.next_op = self.next_op.max(resume);
            self.next_fault = self.next_fault.max(resume);
            self.end_random = self.end_random.max(resume + self.lease);
            self.stat("lulls");
        } else {
            // Nothing this time.
        }
    }

    fn cut_duration(&mut self, long_ok: bool) -> u64 {
        let r = self.rng.below(100);
        let l = self.lease;
        if self.opts.avoid_known_bugs {
            // Never long enough for a node to fence itself.
            return self.rng.range(l / 100, l / 4);
        }
        if r < 45 || !long_ok && r < 85 {
            self.rng.range(l / 100, l / 4)
        } else if r < 85 || !long_ok {
            self.rng.range(l / 4, l * 9 / 10)
        } else {
            self.rng.range(l, 3 * l)
        }
    }

    fn do_action(&mut self, a: Action) {
        match a {
            Action::Restart(x) => {
                let busy = self.cut.iter().any(|&c| c > 0)
                    || self.now < self.last_crash + self.lease * 5 / 2
                    || (1..=self.n as u32).any(|i| self.alive(i) && self.blocked(i));
                if self.opts.avoid_known_bugs && busy {
                    // A node joining while others are cut off may exclude
                    // them at once (a known bug): later.
                    self.actions
                        .push((self.now + self.lease / 2, Action::Restart(x)));
                } else if !self.alive(x) {
                    self.restart(x);
                }
            }
            Action::Uncut(a, b) => {
                self.tr(|| format!("link n{a}-n{b} reconnects"));
                self.remove_cut(a, b);
            }
            Action::Fence {
                coordinator,
                target,
            } => {
                self.fences_pending.remove(&target);
                self.epoch += 1;
                if self.alive(target) {
                    self.tr(|| format!("fence_cmd {target} (asked by n{coordinator}): n{target} is powered off"));
                    self.crash(target, false);
                    let down = if self.final_phase {
                        self.lease / 10
                    } else {
                        self.lease / 5 + self.rng.below(2 * self.lease)
                    };
                    self.actions
                        .push((self.now + down, Action::Restart(target)));
                    self.stat("fenced");
                } else {
                    self.tr(|| format!("fence_cmd {target} (asked by n{coordinator}): n{target} is already down"));
                }
                if self.alive(coordinator) {
                    self.call(coordinator, |n| n.fenced(target));
                }
            }
        }
    }

    /// Node x stops at once (its programs with it). With `graceful`, what
    /// it sent reaches the peers.
    fn crash(&mut self, x: u32, graceful: bool) {
        self.epoch += 1;
        let xi = (x - 1) as usize;
        // Resources it mastered may lose their value blocks.
        if let Some(node) = self.slots[xi].node.as_ref() {
            for (lsi, ls) in LOCKSPACES.iter().enumerate() {
                if let Some(e) = node.lockspace_engine(ls) {
                    for (ni, name) in self.res.iter().enumerate() {
                        if e.has_resource(name) {
                            let lv = &mut self.lvbs[lsi * MAX_RES + ni];
                            lv.maybe_reset = true;
                            if self.opts.avoid_known_bugs {
                                // Known: the new master may rebuild an older
                                // value (a survivor's last read) as valid.
                                lv.floor = None;
                            }
                        }
                    }
                }
            }
        }
        if self.opts.avoid_known_bugs {
            self.lvb_blind_until = self.now + 3 * self.lease;
        }
        // Its programs die with it.
        let gen = self.slots[xi].gen;
        for h in 0..self.handles.len() {
            if self.handles[h].node == x && self.handles[h].gen == gen {
                self.handles[h].fd = None;
            }
        }
        let keys: Vec<usize> = self
            .index
            .iter()
            .filter(|(k, _)| k.0 == x && k.1 == gen)
            .map(|(_, &i)| i)
            .collect();
        for li in keys {
            self.end_lock(li);
        }
        self.slots[xi].node = None;
        self.slots[xi].crashed_at = self.now;
        self.last_crash = self.now;
        self.slots[xi].notes.clear();
        for p in 0..self.n {
            self.slots[xi].told[p] = None;
            self.slots[xi].intended[p] = None;
        }
        for y in 1..=self.n as u32 {
            if y == x {
                continue;
            }
            let into = self.li(y, x);
            self.links[into].clear();
            let outl = self.li(x, y);
            if !self.alive(y) {
                self.links[outl].clear();
                continue;
            }
            let session =
                self.cut[outl] == 0 && self.slots[(y - 1) as usize].intended[xi].is_some();
            if !session {
                self.links[outl].clear();
                continue;
            }
            // What was on the wire may still arrive, then the peer notices.
            let len = self.links[outl].len();
            let keep = if graceful {
                len
            } else {
                self.rng.range(0, len as u64) as usize
            };
            self.links[outl].truncate(keep);
            let last = self.links[outl].back().map_or(0, |m| m.at);
            let d = self
                .rng
                .below(self.lease / self.opts.detect_skew_div.max(1) + 1);
            let at = (self.now + d).max(last + 1);
            self.notify_down(y, x, at);
        }
    }

    fn restart(&mut self, x: u32) {
        let xi = (x - 1) as usize;
        let inc = self.fresh_inc();
        self.tr(|| format!("n{x} restarts (incarnation {inc:#x})"));
        {
            let s = &mut self.slots[xi];
            s.inc = inc;
            s.gen += 1;
            s.started = self.now;
            s.last_tick_local = 0;
        }
        let node = self.new_node(x);
        let tick = self.rng.below(self.tick_us);
        let s = &mut self.slots[xi];
        s.node = Some(node);
        s.next_tick = self.now + tick;
        for y in 1..=self.n as u32 {
            if y != x && self.alive(y) && !self.is_cut(x, y) {
                self.session_up(x, y);
            }
        }
        self.last_restart = self.now;
        self.epoch += 1;
        self.stat("restarts");
    }

    // ----- after every step -----------------------------------------------

    fn after_step(&mut self) {
        self.flush_outbox();
        if self.any_blocked() {
            // A recovery: the query checks skip this stretch.
            self.epoch += 1;
        }
        let touched = self.touched.clone();
        for &x in &touched {
            self.drain_node(x);
        }
        for &x in &touched {
            if self.alive(x) && self.failure.is_none() {
                self.check_node(x);
            }
        }
        // Killed programs' handles were closed: that may send messages.
        self.flush_outbox();
        for x in std::mem::take(&mut self.touched) {
            if !touched.contains(&x) {
                self.drain_node(x);
            }
        }
        self.poll_queries();
        self.tr_logs();
        if self.failure.is_none() {
            self.check_global();
        }
        if self.fencing {
            self.watch_fencing();
        }
    }

    fn watch_fencing(&mut self) {
        for x in 1..=self.n as u32 {
            let Some(node) = self.node_ref(x) else {
                continue;
            };
            for t in node.fence_wanted() {
                if self.fences_pending.insert(t) {
                    let d = self.rng.range(self.lease / 20, self.lease / 2);
                    self.actions.push((
                        self.now + d,
                        Action::Fence {
                            coordinator: x,
                            target: t,
                        },
                    ));
                }
            }
        }
    }

    /// Reads every callback waiting on node x's handles.
    fn drain_node(&mut self, x: u32) {
        let mut buf = [0u8; CALLBACK_LEN + 1];
        for h in 0..self.handles.len() {
            if self.handles[h].node != x {
                continue;
            }
            while let Some(fd) = self.handles[h].fd.as_ref() {
                match sys::recv(fd.as_raw_fd(), &mut buf, true) {
                    Ok(0) => break,
                    Ok(n) => match Callback::decode(&buf[..n]) {
                        Ok(cb) => self.on_callback(h, cb),
                        Err(e) => {
                            self.fail(format!("undecodable callback on handle h{h}: {e:?}"));
                            break;
                        }
                    },
                    Err(_) => break,
                }
            }
        }
    }

    // ----- callbacks: the programs' view --------------------------------

    fn end_lock(&mut self, li: usize) {
        let k = self.locks[li].key();
        self.locks[li].version += 1;
        self.locks[li].state = LState::Ended;
        self.index.remove(&k);
    }

    fn on_callback(&mut self, h: usize, cb: Callback) {
        let hd = &self.handles[h];
        let key = (hd.node, hd.gen, hd.ls, cb.lkid);
        let (node, ls) = (hd.node, hd.ls);
        let what = if cb.blocking {
            "BAST".to_string()
        } else {
            format!(
                "{}{}{}",
                pf::status(cb.status),
                if cb.sb_flags != 0 {
                    format!(" [{}]", pf::sb_flags(cb.sb_flags))
                } else {
                    String::new()
                },
                cb.lvb
                    .map(|v| format!(" {}", pf::lvb_text(&v)))
                    .unwrap_or_default()
            )
        };
        self.tr(|| format!("  callback n{node} h{h} ls{ls} lock {}: {what}", cb.lkid));
        self.stat("callbacks");
        let Some(&li) = self.index.get(&key) else {
            self.fail(format!(
                "n{node} h{h}: callback ({what}) for lock {} that the program does not have",
                cb.lkid
            ));
            return;
        };
        self.locks[li].version += 1;
        let l = &self.locks[li];
        if l.handle != Some(h) || !matches!(l.state, LState::Live | LState::Leaked) {
            let st = l.state;
            self.fail(format!(
                "n{node} h{h}: callback ({what}) for lock {} in state {st:?} of handle {:?}",
                cb.lkid, l.handle
            ));
            return;
        }
        match l.incarnation {
            None => self.locks[li].incarnation = Some(cb.incarnation),
            Some(i) if i != cb.incarnation => {
                self.fail(format!(
                    "n{node} h{h} lock {}: callback with incarnation {} after {i}",
                    cb.lkid, cb.incarnation
                ));
                return;
            }
            _ => {}
        }
        if cb.blocking {
            self.on_bast(li, &cb);
        } else {
            self.on_completion(li, &cb);
        }
    }

    fn on_bast(&mut self, li: usize, cb: &Callback) {
        let l = &self.locks[li];
        let who = format!("n{} lock {}", l.node, l.lkid);
        if l.gr.is_none() {
            let overlap = l.unlock.is_some_and(|u| u.flags & lkf::FORCEUNLOCK != 0);
            if overlap && self.opts.avoid_known_bugs {
                // Known: the grant an overlapping force-unlock suppressed
                // is followed by its BAST.
                self.stat("known_bast_after_suppressed_grant");
                return;
            }
            self.fail(format!(
                "{who}: BAST for a lock that was never granted{}",
                if overlap {
                    " (its grant was suppressed by an overlapping force-unlock)"
                } else {
                    ""
                }
            ));
            return;
        }
        if l.user.bast == 0 {
            // The library calls no routine for a null address: as good as
            // no BAST (the engine kept the routine a refused convert
            // dropped).
            if cb.func != 0 {
                self.fail(format!(
                    "{who}: BAST with routine {:#x} after the program turned BASTs off",
                    cb.func
                ));
            }
            self.stat("null_basts");
            return;
        }
        if cb.func != l.user.bast || cb.arg != l.user.bastarg {
            self.fail(format!(
                "{who}: BAST with routine {:#x}/{:#x}, want {:#x}/{:#x}",
                cb.func, cb.arg, l.user.bast, l.user.bastarg
            ));
        }
    }

    fn on_completion(&mut self, li: usize, cb: &Callback) {
        let st = cb.status;
        let f = cb.sb_flags;
        let (who, user) = {
            let l = &self.locks[li];
            (
                format!("n{} lock {} ({})", l.node, l.lkid, pf::status(st)),
                l.user,
            )
        };
        if cb.func != user.ast || cb.arg != user.astarg || cb.lksb != user.lksb {
            self.fail(format!(
                "{who}: completion with routine/arg/lksb {:#x}/{:#x}/{:#x}, want {:#x}/{:#x}/{:#x}",
                cb.func, cb.arg, cb.lksb, user.ast, user.astarg, user.lksb
            ));
            return;
        }
        if f & !(sbf::DEMOTED | sbf::VALNOTVALID | sbf::ALTMODE) != 0 {
            self.fail(format!("{who}: unknown sb_flags {f:#x}"));
            return;
        }
        let l = &self.locks[li];
        if st == EUNLOCK {
            let Some(u) = l.unlock else {
                self.fail(format!("{who}: EUNLOCK without an unlock"));
                return;
            };
            if f != 0 || cb.lvb.is_some() {
                self.fail(format!("{who}: EUNLOCK with sb_flags {f:#x} or an LVB"));
                return;
            }
            // An unlock from PW/EX writes the value it carried.
            let r = l.ls * MAX_RES + l.name;
            // (IVVALBLK of the last conversion stays in the lock's flags
            // and turns the write into an invalidation.)
            if u.flags & lkf::VALBLK != 0 && (u.flags | l.flags) & lkf::IVVALBLK == 0 {
                match (l.gr, l.uncertain) {
                    (Some(g), false) if g >= PW => {
                        // The unlock may also have emptied the resource,
                        // which drops the value it just wrote.
                        self.lvbs[r].floor = if self.now < self.lvb_blind_until {
                            None
                        } else {
                            u.tag
                        };
                        self.lvbs[r].maybe_reset = true;
                    }
                    (Some(g), true) if g >= PW => self.lvbs[r].floor = None,
                    _ => {}
                }
            }
            self.end_lock(li);
            return;
        }
        if st == ENOLCK {
            let ok = l.gr.is_none() && matches!(l.pending, Some(Pending::Request { .. }));
            if !ok {
                self.fail(format!(
                    "{who}: ENOLCK for a lock that is not a waiting request"
                ));
                return;
            }
            let (node, h) = (l.node, l.handle.unwrap_or(usize::MAX));
            self.ctx.enolck.push((node, h));
            self.end_lock(li);
            return;
        }
        let Some(p) = l.pending else {
            self.fail(format!("{who}: completion while no operation is pending"));
            return;
        };
        let pflags = p.flags();
        let conv = matches!(p, Pending::Convert { .. });
        let demoted = f & sbf::DEMOTED != 0;
        let altmode = f & sbf::ALTMODE != 0;
        if demoted && !(conv && pflags & lkf::CONVDEADLK != 0) {
            self.fail(format!("{who}: DEMOTED without a CONVDEADLK conversion"));
            return;
        }
        if st != 0 && f & (sbf::VALNOTVALID | sbf::ALTMODE) != 0 {
            self.fail(format!("{who}: failed completion with sb_flags {f:#x}"));
            return;
        }
        if st != 0 && cb.lvb.is_some() {
            self.fail(format!("{who}: failed completion carries an LVB"));
            return;
        }
        match st {
            0 => {
                let rq = p.mode();
                let new = if altmode {
                    let alt = if pflags & lkf::ALTPR != 0 && rq != PR {
                        Some(PR)
                    } else if pflags & lkf::ALTCW != 0 && rq != CW {
                        Some(CW)
                    } else {
                        None
                    };
                    match alt {
                        Some(a) => a,
                        None => {
                            self.fail(format!("{who}: ALTMODE without an alternate mode"));
                            return;
                        }
                    }
                } else {
                    rq
                };
                let prev = if conv { l.gr } else { None };
                let unsure = demoted || l.gr_unknown;
                self.check_lvb_on_grant(li, cb, p, prev, new, unsure);
                let l = &mut self.locks[li];
                match prev {
                    Some(g) if rq > g => l.stale = 0,
                    Some(g) => l.stale |= 1 << g,
                    None => {}
                }
                l.gr = Some(new);
                l.uncertain = false;
                l.gr_unknown = false;
                l.pending = None;
                l.cancel = false;
            }
            EAGAIN => {
                if pflags & lkf::NOQUEUE == 0 {
                    self.fail(format!("{who}: EAGAIN without NOQUEUE"));
                    return;
                }
                self.op_failed(li, conv);
            }
            EDEADLK => {
                let handle = l.handle.map(|h| self.handles[h].owner.0);
                let allowed = handle
                    .and_then(|h| self.deadlock_allowed.get_mut(&(l.node, h)))
                    .filter(|n| **n > 0);
                if let Some(n) = allowed {
                    // The victim of a verified deadlock cycle. Like a
                    // cancel: a CONVDEADLK conversion may have been demoted
                    // before it ended, and the end does not say so.
                    *n -= 1;
                    self.stat("deadlock victims");
                    if demoted {
                        self.locks[li].gr = Some(NL);
                    }
                    self.op_failed(li, conv);
                    if conv && !demoted && pflags & lkf::CONVDEADLK != 0 {
                        self.locks[li].gr_unknown = true;
                    }
                    return;
                }
                if !conv || pflags & (lkf::CONVDEADLK | lkf::NOQUEUE) != 0 {
                    self.fail(format!(
                        "{who}: EDEADLK for a {} with flags {}",
                        if conv { "conversion" } else { "request" },
                        pf::flags(pflags)
                    ));
                    return;
                }
                self.op_failed(li, conv);
            }
            ETIMEDOUT => {
                let (node, ls, timeout_at) = (l.node, l.ls, l.timeout_at);
                if pflags & lkf::TIMEOUT == 0 || ls != self.ext_ls {
                    self.fail(format!(
                        "{who}: ETIMEDOUT for a {} with flags {} in ls{ls} (timeouts on in ls{})",
                        if conv { "conversion" } else { "request" },
                        pf::flags(pflags),
                        self.ext_ls
                    ));
                    return;
                }
                let clock = self.slots[(node - 1) as usize].last_tick_local;
                if let Some(t) = timeout_at.filter(|&t| clock < t) {
                    self.fail(format!(
                        "{who}: ETIMEDOUT at local clock {clock} ms, before its timeout ({t} ms)"
                    ));
                    return;
                }
                self.stat("timeouts");
                // Like a cancel: a CONVDEADLK conversion may have been
                // demoted before it ended.
                if demoted {
                    self.locks[li].gr = Some(NL);
                }
                self.op_failed(li, conv);
                if conv && !demoted && pflags & lkf::CONVDEADLK != 0 {
                    self.locks[li].gr_unknown = true;
                }
            }
            ECANCEL => {
                if !l.cancel {
                    self.fail(format!("{who}: ECANCEL without a cancel"));
                    return;
                }
                if demoted {
                    self.locks[li].gr = Some(NL);
                }
                if conv {
                    self.locks[li].cancelled_conv = true;
                }
                self.op_failed(li, conv);
                if conv && !demoted && pflags & lkf::CONVDEADLK != 0 {
                    self.locks[li].gr_unknown = true;
                }
            }
            _ => {
                self.fail(format!(
                    "{who}: unexpected status {st} for a pending {} with flags {}",
                    if conv { "conversion" } else { "request" },
                    pf::flags(pflags)
                ));
            }
        }
    }

    /// The pending operation failed: a request's lock ends, a conversion's
    /// stays granted as it was.
    fn op_failed(&mut self, li: usize, conv: bool) {
        if conv {
            let l = &mut self.locks[li];
            l.pending = None;
            l.timeout_at = None;
            l.cancel = false;
            l.uncertain = false;
        } else {
            self.end_lock(li);
        }
    }

    /// LVB rules of a successful grant: what it reads must not go back, what
    /// it writes becomes the newest value.
    fn check_lvb_on_grant(
        &mut self,
        li: usize,
        cb: &Callback,
        p: Pending,
        prev: Option<u8>,
        new: u8,
        demoted: bool,
    ) {
        let l = &self.locks[li];
        let (ls, name) = (l.ls, l.name);
        let r = ls * MAX_RES + name;
        let who = format!("n{} lock {} on ls{ls} r{name}", l.node, l.lkid);
        let valblk = p.flags() & lkf::VALBLK != 0;
        let t = transfer(prev, new);
        if !demoted {
            let want = valblk && t != 0;
            if want != cb.lvb.is_some() {
                self.fail(format!(
                    "{who}: grant {} -> {} with VALBLK={valblk} {} an LVB",
                    prev.map_or("new", pf::mode),
                    pf::mode(new),
                    if cb.lvb.is_some() { "carries" } else { "lacks" }
                ));
                return;
            }
        }
        let mut tag = None;
        if let Some(v) = cb.lvb.as_ref() {
            match lvb_decode(v) {
                Err(()) => {
                    self.fail(format!("{who}: LVB that nobody wrote: {}", pf::lvb_text(v)));
                    return;
                }
                Ok(Some((vls, vname, vt))) => {
                    if (vls, vname) != (ls, name) {
                        self.fail(format!(
                            "{who}: LVB of another resource: {}",
                            pf::lvb_text(v)
                        ));
                        return;
                    }
                    if vt >= self.lvbs[r].next_tag {
                        self.fail(format!("{who}: LVB #{vt} was never written"));
                        return;
                    }
                    tag = Some(vt);
                }
                Ok(None) => tag = Some(0),
            }
        }
        let notvalid = cb.sb_flags & sbf::VALNOTVALID != 0;
        let blind = self.now < self.lvb_blind_until;
        if blind {
            self.lvbs[r].floor = None;
        }
        // A waiting request its program unlocked before hearing of the
        // grant: the master granted it before the unlock reached it, and
        // the grant's news may come after later grants to others (and
        // after the value the unlock wrote), as on the kernel. Its read is
        // older than what others saw since; it says nothing of the order.
        let unlocked_first = self.locks[li].unlock.is_some();
        // Such an unlock still on its way may yet write an older value
        // (see `UnlockM::may_write_late`): no read is judged meanwhile.
        let late_writer = self.locks.iter().any(|o| {
            o.ls == ls
                && o.name == name
                && o.state != LState::Ended
                && o.unlock.is_some_and(|u| u.may_write_late)
        });
        if late_writer {
            self.lvbs[r].floor = None;
        }
        if valblk
            && t == 1
            && !demoted
            && new >= CW
            && !notvalid
            && !blind
            && !unlocked_first
            && !late_writer
        {
            // A read that conflicts with every writer: never older.
            let got = tag.unwrap_or(0);
            let lv = self.lvbs[r];
            let bad = match lv.floor {
                Some(fl) if got < fl => !(got == 0 && lv.maybe_reset),
                _ => false,
            };
            if bad {
                self.fail(format!(
                    "{who}: {} grant read LVB #{got}, but #{} was written or read before (no VALNOTVALID)",
                    pf::mode(new),
                    lv.floor.unwrap_or(0)
                ));
                return;
            }
            if got > 0 || lv.floor.is_none() {
                let lv = &mut self.lvbs[r];
                lv.floor = Some(lv.floor.unwrap_or(0).max(got));
            }
            self.stat("lvb_reads");
        }
        // A write: a conversion from PW/EX (other than PW -> EX), granted
        // mode counted (an up-conversion granted in an alternate mode below
        // PW writes what the caller passed: zeros).
        if let Pending::Convert { tag, flags, .. } = p {
            let writes = t == 0
                && !demoted
                && prev.is_some_and(|g| g >= PW)
                && flags & lkf::VALBLK != 0
                && flags & lkf::IVVALBLK == 0;
            if writes && !blind {
                let lv = &mut self.lvbs[r];
                lv.floor = Some(tag.unwrap_or(0));
                lv.maybe_reset = false;
                self.stat("lvb_writes");
            }
        }
    }

    // ----- per-node checks ------------------------------------------------

    fn model_locks_of(&self, x: u32) -> Vec<usize> {
        let gen = self.slots[(x - 1) as usize].gen;
        self.index
            .range((x, gen, 0, 0)..=(x, gen, usize::MAX, u32::MAX))
            .map(|(_, &i)| i)
            .collect()
    }

    /// The node's locks against what its programs were told; a node that
    /// dropped everything reset itself (self-fence or rejoining afresh).
    fn check_node(&mut self, x: u32) {
        let Some(node) = self.node_ref(x) else {
            return;
        };
        let (pc, mc) = node.lock_counts();
        let held = node.held_locks();
        let mine = self.model_locks_of(x);
        let definite = mine
            .iter()
            .filter(|&&i| self.locks[i].state != LState::MaybeOrphan)
            .count();
        let maybe = mine.len() - definite;
        let enolck: Vec<usize> = self
            .ctx
            .enolck
            .iter()
            .filter(|(n, _)| *n == x)
            .map(|&(_, h)| h)
            .collect();
        // What the programs hold in a settled state must be held by the node.
        let mut want: BTreeMap<(usize, usize, u8), usize> = BTreeMap::new();
        for &i in &mine {
            let l = &self.locks[i];
            if l.settled() {
                *want.entry((l.ls, l.name, l.gr.unwrap())).or_insert(0) += 1;
            }
        }
        let mut have: BTreeMap<(usize, usize, u8), usize> = BTreeMap::new();
        for (ls, name, mode) in &held {
            let lsi = LOCKSPACES.iter().position(|l| *l == &ls[..]);
            let ni = self.res_ix.get(name.as_bytes()).copied();
            if let (Some(lsi), Some(ni)) = (lsi, ni) {
                *have.entry((lsi, ni, *mode as u8)).or_insert(0) += 1;
            }
        }
        let missing: Vec<(usize, usize, u8)> = want
            .iter()
            .filter(|(k, &c)| have.get(k).copied().unwrap_or(0) < c)
            .map(|(k, _)| *k)
            .collect();
        let dropped = pc < definite || !missing.is_empty();
        if dropped || !enolck.is_empty() {
            if pc == 0 && mc == 0 {
                self.apply_reset(x, &enolck);
                return;
            }
            if !enolck.is_empty() {
                self.fail(format!(
                    "n{x}: ENOLCK without the node resetting (it keeps {pc} locks)"
                ));
            } else {
                self.fail(format!(
                    "n{x}: the node no longer holds what its programs were granted: missing {:?}; node has {pc} process copies, programs know {definite} (+{maybe} maybe)",
                    missing.iter().map(|&(l, n, m)| format!("ls{l} r{n} {}", pf::mode(m))).collect::<Vec<_>>()
                ));
            }
            return;
        }
        if pc > definite + maybe {
            self.fail(format!(
                "n{x}: the node has {pc} process copies but its programs know {definite} locks (+{maybe} that may be orphans)"
            ));
            return;
        }
        // What the node believes held must be something the programs have.
        for lsi in 0..LOCKSPACES.len() {
            for ni in 0..self.res.len() {
                let items: Vec<u8> = held
                    .iter()
                    .filter(|(ls, name, _)| {
                        &ls[..] == LOCKSPACES[lsi] && name.as_bytes() == &self.res[ni][..]
                    })
                    .map(|(_, _, m)| *m as u8)
                    .collect();
                if items.is_empty() {
                    continue;
                }
                let cands: Vec<u8> = mine
                    .iter()
                    .map(|&i| &self.locks[i])
                    .filter(|l| l.ls == lsi && l.name == ni)
                    .map(|l| l.mask())
                    .collect();
                if !matchable(&items, &cands) {
                    let im: Vec<&str> = items.iter().map(|&m| pf::mode(m)).collect();
                    self.fail(format!(
                        "n{x}: node believes its programs hold {im:?} on ls{lsi} r{ni}, but they were told otherwise (masks {cands:?})"
                    ));
                    return;
                }
            }
        }
        // The engines' structural invariants.
        let node = self.node_ref(x).unwrap();
        for ls in LOCKSPACES {
            if let Some(e) = node.lockspace_engine(ls) {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| e.check_invariants())) {
                    let msg = panic_text(&*p);
                    self.fail(format!(
                        "n{x} {}: engine invariant broken: {msg}",
                        String::from_utf8_lossy(ls)
                    ));
                    return;
                }
            }
        }
    }

    /// Node x dropped all its locks (a self-fence or a fresh rejoin): with
    /// self_fence=abort the programs that had locks are killed.
    fn apply_reset(&mut self, x: u32, enolck: &[usize]) {
        let mine = self.model_locks_of(x);
        let mut victims: BTreeSet<usize> = enolck
            .iter()
            .copied()
            .filter(|&h| h != usize::MAX)
            .collect();
        for &i in &mine {
            let l = &self.locks[i];
            if l.state == LState::Live || l.state == LState::Leaked {
                if let Some(h) = l.handle {
                    victims.insert(h);
                }
            }
        }
        let phase = self.node_ref(x).map(|n| n.phase().name()).unwrap_or("dead");
        self.tr(|| format!("n{x} RESET (phase now {phase:?}): self_fence=abort kills the programs of handles {victims:?}"));
        self.stat("resets");
        self.epoch += 1;
        for i in mine {
            self.end_lock(i);
        }
        for r in 0..NRES {
            self.lvbs[r].maybe_reset = true;
            if self.opts.avoid_known_bugs {
                self.lvbs[r].floor = None;
                self.lvb_blind_until = self.now + 3 * self.lease;
            }
        }
        for h in victims {
            if self.handles[h].fd.is_none() {
                continue;
            }
            self.handles[h].fd = None;
            let owner = self.handles[h].owner;
            self.call(x, |n| n.close(owner));
        }
    }

    // ----- global checks --------------------------------------------------

    fn check_global(&mut self) {
        // No two incompatible locks held by programs on one resource: a
        // conflict is certain when no pair of the modes the two locks may
        // be in is compatible.
        let mut held: Vec<(usize, usize, u8, usize)> = Vec::new();
        for &i in self.index.values() {
            let l = &self.locks[i];
            let m = l.held();
            if m != 0 {
                held.push((l.ls, l.name, m, i));
            }
        }
        held.sort_unstable();
        let show = |m: u8| -> String {
            (0..6u8)
                .filter(|b| m & (1 << b) != 0)
                .map(pf::mode)
                .collect::<Vec<_>>()
                .join("/")
        };
        for a in 0..held.len() {
            for b in a + 1..held.len() {
                if (held[a].0, held[a].1) != (held[b].0, held[b].1) {
                    break;
                }
                let ok = (0..6u8).any(|x| {
                    held[a].2 & (1 << x) != 0
                        && (0..6u8).any(|y| held[b].2 & (1 << y) != 0 && compatible(x, y))
                });
                if !ok {
                    let (la, lb) = (&self.locks[held[a].3], &self.locks[held[b].3]);
                    let msg = format!(
                        "MUTUAL EXCLUSION: on ls{} r{}, n{} h{} lock {} holds {} while n{} h{} lock {} holds {}",
                        held[a].0,
                        held[a].1,
                        la.node,
                        la.handle.unwrap_or(usize::MAX),
                        la.lkid,
                        show(held[a].2),
                        lb.node,
                        lb.handle.unwrap_or(usize::MAX),
                        lb.lkid,
                        show(held[b].2)
                    );
                    self.fail(msg);
                    return;
                }
            }
        }
        // One master per resource among running nodes; value blocks of
        // resources with no locks anywhere are gone.
        for lsi in 0..LOCKSPACES.len() {
            for ni in 0..self.res.len() {
                let mut masters = Vec::new();
                let mut anywhere = false;
                for s in &self.slots {
                    let Some(node) = s.node.as_ref() else {
                        continue;
                    };
                    if node
                        .lockspace_engine(LOCKSPACES[lsi])
                        .is_some_and(|e| e.has_resource(&self.res[ni]))
                    {
                        anywhere = true;
                        if !node.operations_blocked() {
                            masters.push(s.id);
                        }
                    }
                }
                if masters.len() > 1 && self.opts.master_check {
                    self.fail(format!(
                        "ls{lsi} r{ni} is mastered by running nodes {masters:?} at once"
                    ));
                    return;
                }
                if !anywhere {
                    self.lvbs[lsi * MAX_RES + ni].maybe_reset = true;
                }
            }
        }
    }

    // ----- the workload ------------------------------------------------------

    fn next_op_id(&mut self) -> u64 {
        self.op_id += 1;
        self.op_id
    }

    fn live_handles(&self, x: u32) -> Vec<usize> {
        let gen = self.slots[(x - 1) as usize].gen;
        (0..self.handles.len())
            .filter(|&h| {
                let hd = &self.handles[h];
                hd.node == x && hd.gen == gen && hd.fd.is_some()
            })
            .collect()
    }

    fn locks_of_handle(&self, h: usize) -> Vec<usize> {
        self.index
            .values()
            .copied()
            .filter(|&i| self.locks[i].handle == Some(h) && self.locks[i].state == LState::Live)
            .collect()
    }

    fn do_op(&mut self) {
        let alive: Vec<u32> = (1..=self.n as u32).filter(|&i| self.alive(i)).collect();
        if alive.is_empty() {
            return;
        }
        let x = self.rng.pick(&alive);
        let blocked = self.blocked(x);
        let hs = self.live_handles(x);
        let r = self.rng.below(100);
        if hs.is_empty() || (hs.len() < MAX_HANDLES_PER_NODE && r < 6) {
            if !blocked {
                self.op_open(x);
            }
            return;
        }
        let h = self.rng.pick(&hs);
        // A handle with a request in flight may hit a known bug when it
        // closes (parked look-ups outlive it).
        // Avoiding known bugs, programs unlock everything before they
        // close (ids of closed handles' locks are reused while the masters
        // still talk about them).
        let closable = !self.opts.avoid_known_bugs || self.locks_of_handle(h).is_empty();
        if r < 9 && closable {
            self.op_close(h, None);
            return;
        }
        if r < 11 && closable {
            if self.opts.avoid_known_bugs {
                self.op_close(h, None);
            } else {
                let force = u32::from(self.opts.force_release && self.rng.chance(1, 3));
                self.op_close(h, Some(force));
            }
            return;
        }
        if blocked {
            // Lock calls wait while the node recovers; the program tries
            // again later.
            return;
        }
        if self.xrng.chance(1, 12) {
            self.op_query(h);
            return;
        }
        let locks = self.locks_of_handle(h);
        let pick = |s: &mut Sim| -> Option<usize> {
            (!locks.is_empty()).then(|| locks[s.rng.below(locks.len() as u64) as usize])
        };
        match r {
            11..=46 => {
                if locks.len() < MAX_LOCKS_PER_HANDLE {
                    self.op_request(h);
                } else if let Some(li) = pick(self) {
                    self.op_unlock(h, li, 1);
                }
            }
            47..=65 => {
                if let Some(li) = pick(self) {
                    self.op_convert(h, li);
                }
            }
            66..=84 => {
                if let Some(li) = pick(self) {
                    let kind = if self.rng.chance(1, 3) { 1 } else { 0 };
                    self.op_unlock(h, li, kind);
                }
            }
            85..=93 => {
                if let Some(li) = pick(self) {
                    self.op_unlock(h, li, 2);
                }
            }
            94..=97 => self.op_adopt(h),
            _ => self.op_purge(h),
        }
    }

    fn handle_desc(&self, h: usize) -> String {
        let hd = &self.handles[h];
        format!("n{} h{h} ls{}", hd.node, hd.ls)
    }

    fn op_open(&mut self, x: u32) {
        let ls = self.rng.below(2) as usize;
        let create = self.rng.chance(4, 5);
        let flags = self.ls_flags(ls);
        let visible = self
            .node_ref(x)
            .is_some_and(|n| n.lockspace_names().iter().any(|v| &v[..] == LOCKSPACES[ls]));
        let r = self.call(x, |n| {
            n.open(LOCKSPACES[ls], create.then_some((0o600, flags)), creds())
        });
        let Some(r) = r else { return };
        self.stat("opens");
        match r {
            Ok((owner, token)) => {
                if !create && !visible {
                    self.fail(format!(
                        "n{x}: open of ls{ls}, which does not exist here, succeeded"
                    ));
                    return;
                }
                let (ours, theirs) = match sys::seqpacket_pair() {
                    Ok(p) => p,
                    Err(e) => {
                        self.fail(format!("socketpair: {e}"));
                        return;
                    }
                };
                let a = self.call(x, |n| n.attach(token, EventSink::new(theirs), creds()));
                if a != Some(Ok(owner)) {
                    self.fail(format!("n{x}: attach of a new handle failed: {a:?}"));
                    return;
                }
                let gen = self.slots[(x - 1) as usize].gen;
                self.handles.push(HandleM {
                    node: x,
                    gen,
                    ls,
                    owner,
                    fd: Some(ours),
                    detached: false,
                });
                let h = self.handles.len() - 1;
                self.tr(|| format!("op n{x}: open ls{ls} (create={create}) -> h{h}"));
            }
            Err(Errno::NoEnt) if !create && !visible => {
                self.tr(|| format!("op n{x}: open ls{ls} (no create) -> ENOENT"));
            }
            Err(e) => self.fail(format!(
                "n{x}: open of ls{ls} (create={create}) failed: {e}"
            )),
        }
    }

    /// close (`release` None) or dlm_release_lockspace(force).
    fn op_close(&mut self, h: usize, release: Option<u32>) {
        let x = self.handles[h].node;
        let ls = self.handles[h].ls;
        let owner = self.handles[h].owner;
        let d = self.handle_desc(h);
        // The program closes: it reads nothing more.
        self.model_close(h);
        match release {
            None => {
                self.tr(|| format!("op {d}: close"));
                self.call(x, |n| n.close(owner));
            }
            Some(force) => {
                let r = self.call(x, |n| n.release(owner, force));
                self.tr(|| format!("op {d}: release lockspace (force={force}) -> {r:?}"));
                match r {
                    Some(Ok(())) => {}
                    Some(Err(Errno::NoEnt)) if self.handles[h].detached => {}
                    Some(Err(e)) => self.fail(format!("{d}: release failed: {e}")),
                    None => return,
                }
                let still = self
                    .node_ref(x)
                    .is_some_and(|n| n.lockspace_names().iter().any(|v| &v[..] == LOCKSPACES[ls]));
                if !still {
                    // The lockspace is gone here: other handles on it work on
                    // nothing, their locks with it.
                    let gen = self.slots[(x - 1) as usize].gen;
                    for o in 0..self.handles.len() {
                        let hd = &self.handles[o];
                        if hd.node == x
                            && hd.gen == gen
                            && hd.ls == ls
                            && hd.fd.is_some()
                            && !hd.detached
                        {
                            self.handles[o].detached = true;
                            for li in self.locks_of_handle(o) {
                                self.locks[li].state = LState::Leaked;
                            }
                            self.tr(|| format!("  h{o} now works on nothing"));
                        }
                    }
                }
            }
        }
        self.stat("closes");
    }

    fn model_close(&mut self, h: usize) {
        let ids: Vec<usize> = self
            .index
            .values()
            .copied()
            .filter(|&i| self.locks[i].handle == Some(h))
            .collect();
        for li in ids {
            let l = &mut self.locks[li];
            l.version += 1;
            if l.state == LState::Leaked {
                continue;
            }
            if l.flags & lkf::PERSISTENT != 0 {
                let mut modes = match l.gr {
                    Some(g) => 1u8 << g,
                    None => 0,
                };
                if l.uncertain || l.gr_unknown {
                    modes |= 1 << NL;
                }
                // A conversion or request granted while the close travels.
                if let Some(p) = l.pending {
                    modes |= 1 << p.mode();
                    let f = p.flags();
                    if f & lkf::ALTPR != 0 {
                        modes |= 1 << PR;
                    }
                    if f & lkf::ALTCW != 0 {
                        modes |= 1 << CW;
                    }
                    if f & lkf::CONVDEADLK != 0 {
                        modes |= 1 << NL;
                    }
                }
                l.orphan_modes = modes;
                l.handle = None;
                l.state = if l.gr.is_some()
                    && l.unlock.is_none()
                    && l.pending.is_none()
                    && !l.uncertain
                    && !l.gr_unknown
                {
                    LState::Orphan
                } else {
                    LState::MaybeOrphan
                };
                l.pending = None;
                l.cancel = false;
            } else {
                self.end_lock(li);
            }
        }
        self.handles[h].fd = None;
    }

    fn user_args(&mut self, bast_on: bool) -> UserArgs {
        let id = self.next_op_id();
        UserArgs {
            ast: AST,
            astarg: id,
            bast: if bast_on { BAST } else { 0 },
            bastarg: BASTARG,
            lksb: id,
        }
    }

    fn op_request(&mut self, h: usize) {
        let x = self.handles[h].node;
        let ls = self.handles[h].ls;
        let name = self.rng.below(NAMES.len() as u64) as usize;
        let mode = self.rng.below(6) as u8;
        let valblk = self.rng.chance(2, 5);
        let mut flags = 0;
        if valblk {
            flags |= lkf::VALBLK;
        }
        if self.rng.chance(15, 100) {
            flags |= lkf::NOQUEUE;
            if self.rng.chance(1, 5) {
                flags |= lkf::NOQUEUEBAST;
            }
        }
        if self.rng.chance(8, 100) {
            flags |= lkf::NOORDER;
        }
        if self.rng.chance(5, 100) {
            flags |= lkf::HEADQUE;
        }
        if mode == NL && flags & lkf::NOQUEUE == 0 && self.rng.chance(1, 3) {
            flags |= lkf::EXPEDITE;
        }
        match self.rng.below(20) {
            0 => flags |= lkf::ALTPR,
            1 => flags |= lkf::ALTCW,
            _ => {}
        }
        if self.rng.chance(15, 100) {
            flags |= lkf::PERSISTENT;
        }
        if self.rng.chance(2, 100) {
            // A call the rules refuse.
            flags |= self
                .rng
                .pick(&[lkf::CONVDEADLK, lkf::QUECVT, lkf::CANCEL, lkf::EXPEDITE]);
        }
        let valid = lock_args_valid(mode, flags);
        let bast_on = self.rng.chance(9, 10);
        let user = self.user_args(bast_on);
        // The extensions, from their own stream.
        let ext = ls == self.ext_ls;
        let timeout = self.draw_timeout(ext);
        if timeout.is_some() {
            flags |= lkf::TIMEOUT;
        }
        let child = self.draw_parent(h, ext);
        let (parent_id, parent, parent_ok, comp) = match child {
            Some(c) => c,
            None => (0, None, true, None),
        };
        if parent.is_some() {
            // Children are never orphans (an orphan child's parent link is
            // left out of the model).
            flags &= !lkf::PERSISTENT;
        }
        // The resource locked: a child of the parent's, or the name itself
        // (outside the hierarchical lockspace `parent` is ignored).
        let (res, arg_name): (usize, &'static [u8]) = match (parent, comp) {
            (Some(p), Some(c)) => {
                let pn = self.locks[p].name;
                (self.child_res(pn, c), CHILD_NAMES[c])
            }
            (None, Some(c)) if ext => (name, CHILD_NAMES[c]),
            _ => (name, NAMES[name]),
        };
        let args = LockArgs {
            mode,
            flags,
            lkid: 0,
            name: arg_name,
            lvb: valblk.then_some([0u8; 32]),
            user,
            tid: 1,
            parent: parent_id,
            timeout_cs: timeout.unwrap_or(0),
        };
        let owner = self.handles[h].owner;
        let r = self.call(x, |n| n.lock(owner, args));
        let Some(r) = r else { return };
        let d = self.handle_desc(h);
        self.tr(|| {
            format!(
                "op {d}: lock r{res}{} {} flags={}{}{} -> {r:?}",
                if parent_id != 0 {
                    format!(
                        " (as {} under lock {parent_id}, a {} parent)",
                        String::from_utf8_lossy(arg_name),
                        if parent_ok { "valid" } else { "invalid" }
                    )
                } else {
                    String::new()
                },
                pf::mode(mode),
                pf::flags(flags),
                timeout
                    .map(|t| format!(" timeout={t}cs"))
                    .unwrap_or_default(),
                if ext { " [ext]" } else { "" }
            )
        });
        self.stat("requests");
        if parent.is_some() {
            self.stat("child requests");
        }
        let detached = self.handles[h].detached;
        match r {
            Ok(id) => {
                if detached || !valid || !parent_ok {
                    self.fail(format!(
                        "{d}: lock call accepted (valid={valid}, detached={detached}, parent valid={parent_ok})"
                    ));
                    return;
                }
                let gen = self.handles[h].gen;
                let key = (x, gen, ls, id);
                if let Some(&other) = self.index.get(&key) {
                    let st = self.locks[other].state;
                    if st != LState::MaybeOrphan {
                        self.fail(format!(
                            "{d}: new lock got id {id}, still used by a lock in state {st:?}"
                        ));
                        return;
                    }
                    // A pending request of a closed handle: gone, not orphaned.
                    self.end_lock(other);
                }
                let timeout_at = timeout.filter(|_| ext).map(|cs| {
                    self.slots[(x - 1) as usize].last_tick_local
                        + cs.min(udlm::node::MAX_TIMEOUT_CS) * 10
                });
                self.locks.push(LockM {
                    node: x,
                    gen,
                    ls,
                    lkid: id,
                    handle: Some(h),
                    name: res,
                    state: LState::Live,
                    gr: None,
                    uncertain: false,
                    orphan_modes: 0,
                    pending: Some(Pending::Request { mode, flags }),
                    cancel: false,
                    unlock: None,
                    flags,
                    valblk,
                    user,
                    incarnation: None,
                    cancelled_conv: false,
                    gr_unknown: false,
                    parent,
                    timeout_at,
                    version: 0,
                    stale: 0,
                });
                self.index.insert(key, self.locks.len() - 1);
            }
            Err(Errno::NoEnt) if detached => {}
            Err(Errno::Inval) if !valid || !parent_ok => {
                if !parent_ok {
                    self.stat("invalid parents refused");
                }
            }
            Err(e) => self.fail(format!(
                "{d}: lock call failed: {e} (valid={valid}, detached={detached})"
            )),
        }
    }

    fn op_convert(&mut self, h: usize, li: usize) {
        let x = self.handles[h].node;
        let (lkid, name, valblk, gr, old_flags) = {
            let l = &self.locks[li];
            (l.lkid, l.name, l.valblk, l.gr, l.flags)
        };
        let mode = self.rng.below(6) as u8;
        let mut flags = lkf::CONVERT;
        if valblk {
            flags |= lkf::VALBLK;
        }
        if self.rng.chance(4, 5) {
            flags |= old_flags & lkf::PERSISTENT;
        } else if self.rng.chance(1, 3) {
            flags |= lkf::PERSISTENT;
        }
        match self.rng.below(10) {
            0 | 1 => {
                flags |= lkf::NOQUEUE;
                if self.rng.chance(1, 5) {
                    flags |= lkf::NOQUEUEBAST;
                }
            }
            // (A known bug: a demotion is lost when the master dies.)
            2 | 3 if !self.opts.avoid_known_bugs => flags |= lkf::CONVDEADLK,
            _ => {}
        }
        if self.rng.chance(15, 100) {
            flags |= lkf::QUECVT;
        }
        match self.rng.below(20) {
            0 => flags |= lkf::ALTPR,
            1 => flags |= lkf::ALTCW,
            _ => {}
        }
        // (HEADQUE is for new requests: a conversion put ahead of one whose
        // granted mode blocks it waits forever, undetected, as in the
        // kernel.)
        if self.rng.chance(3, 100) {
            flags |= lkf::NOORDER;
        }
        if self.rng.chance(5, 100) {
            flags |= lkf::IVVALBLK;
        }
        if self.rng.chance(2, 100) {
            flags |= self
                .rng
                .pick(&[lkf::EXPEDITE, lkf::CONVDEADLK | lkf::NOQUEUE, lkf::CANCEL]);
        }
        if self.locks[li].parent.is_some() {
            flags &= !lkf::PERSISTENT;
        }
        let ext = self.handles[h].ls == self.ext_ls;
        let timeout = self.draw_timeout(ext);
        if timeout.is_some() {
            flags |= lkf::TIMEOUT;
        }
        let valid = lock_args_valid(mode, flags);
        // A conversion from PW/EX writes the value it carries.
        let writes = gr.is_some() && transfer(gr, mode) == 0;
        let r_idx = self.handles[h].ls * MAX_RES + name;
        let tag = (valblk && writes).then(|| {
            let lv = &mut self.lvbs[r_idx];
            lv.next_tag = lv.next_tag.max(1);
            lv.next_tag += 1;
            lv.next_tag - 1
        });
        let lvb = valblk.then(|| match tag {
            Some(t) => lvb_encode(self.handles[h].ls, name, t),
            None => [0u8; 32],
        });
        let bast_on = self.rng.chance(9, 10);
        let user = self.user_args(bast_on);
        let args = LockArgs {
            mode,
            flags,
            lkid,
            // (A conversion names its lock by id.)
            name: NAMES[name.min(NAMES.len() - 1)],
            lvb,
            user,
            tid: 1,
            timeout_cs: timeout.unwrap_or(0),
            ..LockArgs::default()
        };
        let owner = self.handles[h].owner;
        let r = self.call(x, |n| n.lock(owner, args));
        let Some(r) = r else { return };
        let d = self.handle_desc(h);
        self.tr(|| {
            format!(
                "op {d}: convert lock {lkid} (r{name}, granted {}) to {} flags={}{}{} -> {r:?}",
                gr.map_or("-", pf::mode),
                pf::mode(mode),
                pf::flags(flags),
                timeout
                    .map(|t| format!(" timeout={t}cs"))
                    .unwrap_or_default(),
                lvb.map(|v| format!(" {}", pf::lvb_text(&v)))
                    .unwrap_or_default()
            )
        });
        self.stat("converts");
        if self.handles[h].detached {
            if r != Err(Errno::NoEnt) {
                self.fail(format!("{d}: convert on a destroyed lockspace: {r:?}"));
            }
            return;
        }
        // The call takes the new routines and lksb before any check.
        self.locks[li].user = user;
        self.locks[li].version += 1;
        let l = &self.locks[li];
        let busy = l.pending.is_some() || l.unlock.is_some();
        let expect: Result<u32, Errno> = if !valid {
            Err(Errno::Inval)
        } else if busy {
            Err(Errno::Busy)
        } else if flags & lkf::QUECVT != 0 && !quecvt_ok(gr.unwrap_or(NL), mode) {
            Err(Errno::Inval)
        } else {
            Ok(lkid)
        };
        // At NL unknown to the program, QUECVT may be judged differently.
        let also_ok = l.gr_unknown
            && valid
            && !busy
            && flags & lkf::QUECVT != 0
            && (r == Ok(lkid) || r == Err(Errno::Inval));
        if r != expect && !also_ok {
            self.fail(format!(
                "{d}: convert of lock {lkid} returned {r:?}, expected {expect:?} (pending {:?}, unlock {:?})",
                l.pending, l.unlock
            ));
            return;
        }
        if r.is_ok() {
            let timeout_at = timeout.filter(|_| ext).map(|cs| {
                self.slots[(x - 1) as usize].last_tick_local
                    + cs.min(udlm::node::MAX_TIMEOUT_CS) * 10
            });
            let l = &mut self.locks[li];
            l.timeout_at = timeout_at;
            l.pending = Some(Pending::Convert { mode, flags, tag });
            l.cancelled_conv = false;
            l.flags = flags;
            l.uncertain = flags & lkf::CONVDEADLK != 0;
        }
    }

    /// kind 0: unlock, 1: force-unlock, 2: cancel.
    fn op_unlock(&mut self, h: usize, li: usize, kind: u32) {
        let x = self.handles[h].node;
        let (lkid, name, valblk) = {
            let l = &self.locks[li];
            (l.lkid, l.name, l.valblk)
        };
        let ls = self.handles[h].ls;
        let mut flags = match kind {
            0 => 0,
            1 => lkf::FORCEUNLOCK,
            _ => lkf::CANCEL,
        };
        let mut tag = None;
        if kind != 2 {
            if valblk {
                if self.rng.chance(7, 10) {
                    flags |= lkf::VALBLK;
                    let lv = &mut self.lvbs[ls * MAX_RES + name];
                    lv.next_tag = lv.next_tag.max(1);
                    lv.next_tag += 1;
                    tag = Some(lv.next_tag - 1);
                } else {
                    flags |= lkf::IVVALBLK;
                }
            } else if self.rng.chance(1, 10) {
                flags |= lkf::IVVALBLK;
            }
        }
        let invalid = self.rng.chance(1, 100);
        if invalid {
            flags |= lkf::CANCEL | lkf::FORCEUNLOCK;
        }
        let astarg = if self.rng.chance(1, 2) {
            self.next_op_id()
        } else {
            0
        };
        let lksb = self.next_op_id();
        let lvb = tag.map(|t| lvb_encode(ls, name, t));
        let owner = self.handles[h].owner;
        let r = self.call(x, |n| n.unlock(owner, lkid, flags, lvb, astarg, lksb));
        let Some(r) = r else { return };
        let d = self.handle_desc(h);
        self.tr(|| {
            format!(
                "op {d}: {} lock {lkid} (r{name}) flags={}{} -> {r:?}",
                ["unlock", "force-unlock", "cancel"][kind as usize],
                pf::flags(flags),
                lvb.map(|v| format!(" {}", pf::lvb_text(&v)))
                    .unwrap_or_default()
            )
        });
        self.stat("unlocks");
        if self.handles[h].detached {
            if r != Err(Errno::NoEnt) {
                self.fail(format!("{d}: unlock on a destroyed lockspace: {r:?}"));
            }
            return;
        }
        {
            let l = &mut self.locks[li];
            l.version += 1;
            l.user.lksb = lksb;
            if astarg != 0 {
                l.user.astarg = astarg;
            }
        }
        let children = self.children_of(li);
        let l = &self.locks[li];
        let pending = l.pending.is_some();
        let ok: bool = if invalid {
            r == Err(Errno::Inval)
        } else if children > 0 && kind != 2 {
            // Its children go first.
            r == Err(Errno::NotEmpty)
        } else if l.unlock.is_some() {
            match kind {
                0 => r == Err(Errno::Busy),
                _ => r == Err(Errno::Inval),
            }
        } else {
            match kind {
                2 => {
                    if pending {
                        matches!(r, Ok(0) | Ok(1))
                    } else {
                        // A master here refuses a cancel after a cancelled
                        // conversion (EINVAL); a remote one is not asked.
                        r == Ok(1) || (l.cancelled_conv && r == Err(Errno::Inval))
                    }
                }
                0 => r == Ok(0) || (pending && r == Err(Errno::Busy)),
                _ => r == Ok(0),
            }
        };
        if !ok {
            self.fail(format!(
                "{d}: {} of lock {lkid} returned {r:?} (pending {:?}, unlock {:?}, cancel {}, {children} children)",
                ["unlock", "force-unlock", "cancel"][kind as usize],
                l.pending,
                l.unlock,
                l.cancel
            ));
            return;
        }
        if r == Err(Errno::NotEmpty) {
            self.stat("unlocks refused for children");
        }
        if r == Ok(0) {
            let l = &self.locks[li];
            // An unlock of a request or conversion to PW/EX still waiting
            // writes its value if the master grants the lock before the
            // unlock reaches it (the kernel too): from now on nothing is
            // known of the value until the next write.
            let may_write_late =
                kind != 2 && flags & lkf::VALBLK != 0 && l.pending.is_some_and(|p| p.mode() >= PW);
            if may_write_late {
                let r = l.ls * MAX_RES + l.name;
                self.lvbs[r].floor = None;
            }
            let l = &mut self.locks[li];
            if kind == 2 {
                l.cancel = true;
            } else {
                l.unlock = Some(UnlockM {
                    flags,
                    tag,
                    may_write_late,
                });
            }
        }
    }

    fn orphans_of(&self, x: u32, ls: usize) -> Vec<usize> {
        self.model_locks_of(x)
            .into_iter()
            .filter(|&i| {
                let l = &self.locks[i];
                l.ls == ls && matches!(l.state, LState::Orphan | LState::MaybeOrphan)
            })
            .collect()
    }

    fn op_adopt(&mut self, h: usize) {
        let x = self.handles[h].node;
        let ls = self.handles[h].ls;
        let orphans = self.orphans_of(x, ls);
        let (name, mode, valblk) = if !orphans.is_empty() && self.rng.chance(4, 5) {
            let o = &self.locks[self.rng.pick(&orphans)];
            let modes: Vec<u8> = (0..6).filter(|m| o.orphan_modes & (1 << m) != 0).collect();
            let m = if modes.is_empty() {
                NL
            } else {
                self.rng.pick(&modes)
            };
            (o.name, m, o.valblk)
        } else {
            (
                self.rng.below(NAMES.len() as u64) as usize,
                self.rng.below(6) as u8,
                self.rng.chance(1, 2),
            )
        };
        let mut flags = lkf::ORPHAN | lkf::PERSISTENT;
        if valblk {
            flags |= lkf::VALBLK;
        }
        let user = self.user_args(true);
        let args = LockArgs {
            mode,
            flags,
            lkid: 0,
            name: NAMES[name],
            lvb: None,
            user,
            tid: 1,
            ..LockArgs::default()
        };
        let owner = self.handles[h].owner;
        // udlmd holds an adoption back while the orphan's remote master has
        // not said how a conversion pending at the close ended
        // (server::lock_when_ready): here it is simply not made now.
        if self
            .node_ref(x)
            .is_some_and(|n| n.adoption_unsettled(owner, NAMES[name]))
        {
            let d = self.handle_desc(h);
            self.tr(|| format!("op {d}: adopt orphan r{name}: waits for its mode to settle"));
            return;
        }
        let r = self.call(x, |n| n.lock(owner, args));
        let Some(r) = r else { return };
        let d = self.handle_desc(h);
        self.tr(|| format!("op {d}: adopt orphan r{name} {} -> {r:?}", pf::mode(mode)));
        self.stat("adopts");
        if self.handles[h].detached {
            if r != Err(Errno::NoEnt) {
                self.fail(format!("{d}: adopt on a destroyed lockspace: {r:?}"));
            }
            return;
        }
        let gen = self.handles[h].gen;
        match r {
            Ok(id) => {
                let li = match self.index.get(&(x, gen, ls, id)) {
                    Some(&li) => li,
                    None => {
                        self.fail(format!(
                            "{d}: adopted lock {id}, which is no orphan the programs know"
                        ));
                        return;
                    }
                };
                let l = &self.locks[li];
                if !matches!(l.state, LState::Orphan | LState::MaybeOrphan)
                    || l.name != name
                    || l.orphan_modes & (1 << mode) == 0
                {
                    let st = l.state;
                    self.fail(format!(
                        "{d}: adopted lock {id} (state {st:?}, r{}, modes {:#b}) for r{name} {}",
                        l.name,
                        l.orphan_modes,
                        pf::mode(mode)
                    ));
                    return;
                }
                let l = &mut self.locks[li];
                l.version += 1;
                l.state = LState::Live;
                l.handle = Some(h);
                l.gr = Some(mode);
                l.uncertain = false;
                l.pending = None;
                l.cancel = false;
                l.unlock = None;
                l.flags = flags;
                l.valblk = valblk;
                l.user = user;
            }
            Err(Errno::NoEnt) | Err(Errno::Again) => {
                let certain = orphans.iter().any(|&i| {
                    let l = &self.locks[i];
                    l.state == LState::Orphan && l.name == name && l.orphan_modes == 1 << mode
                });
                if certain {
                    self.fail(format!(
                        "{d}: adopt of r{name} {} failed ({r:?}) though an orphan in that mode exists",
                        pf::mode(mode)
                    ));
                }
            }
            Err(e) => self.fail(format!("{d}: adopt failed: {e}")),
        }
    }

    fn op_purge(&mut self, h: usize) {
        let x = self.handles[h].node;
        let ls = self.handles[h].ls;
        let owner = self.handles[h].owner;
        let r = self.call(x, |n| n.purge(owner, 0, 0, 1));
        let Some(r) = r else { return };
        let d = self.handle_desc(h);
        self.tr(|| format!("op {d}: purge this node's orphans -> {r:?}"));
        self.stat("purges");
        if self.handles[h].detached {
            if r != Err(Errno::NoEnt) {
                self.fail(format!("{d}: purge on a destroyed lockspace: {r:?}"));
            }
            return;
        }
        if r != Ok(()) {
            self.fail(format!("{d}: purge failed: {r:?}"));
            return;
        }
        for li in self.orphans_of(x, ls) {
            self.end_lock(li);
        }
    }

    // ----- the udlm extensions: timeouts, hierarchy, queries ---------------

    fn ls_flags(&self, ls: usize) -> u32 {
        if ls == self.ext_ls {
            EXT_LSFL
        } else {
            0
        }
    }

    /// `LKF_TIMEOUT` now and then, in centiseconds up to a lease (0: ends
    /// at the next tick if not granted). Rarely outside the lockspace
    /// created with UDLM_LSFL_TIMEOUT, where it must be ignored.
    fn draw_timeout(&mut self, ext: bool) -> Option<u64> {
        let (num, den) = if ext { (1, 4) } else { (1, 25) };
        if !self.xrng.chance(num, den) {
            return None;
        }
        Some(if self.xrng.chance(1, 8) {
            0
        } else {
            self.xrng.range(1, self.lease_ms / 10)
        })
    }

    /// Sometimes a child request: (the `parent` argument, the parent lock
    /// when it is a valid one, whether the node must accept the parent, the
    /// child name). In the hierarchical lockspace the parent is a granted
    /// lock of the handle, or else one the node must refuse (a request of
    /// the handle not granted yet, another handle's lock, no lock); in the
    /// other lockspace `parent` is ignored, as by the kernel.
    fn draw_parent(
        &mut self,
        h: usize,
        ext: bool,
    ) -> Option<(u32, Option<usize>, bool, Option<usize>)> {
        let (num, den) = if ext { (3, 10) } else { (1, 30) };
        if !self.xrng.chance(num, den) {
            return None;
        }
        let comp = Some(self.xrng.below(CHILD_NAMES.len() as u64) as usize);
        let mine = self.locks_of_handle(h);
        if !ext {
            let id = if !mine.is_empty() && self.xrng.chance(1, 2) {
                self.locks[mine[self.xrng.below(mine.len() as u64) as usize]].lkid
            } else {
                0x7fff_0000
            };
            return Some((id, None, true, comp));
        }
        let valid: Vec<usize> = mine
            .iter()
            .copied()
            .filter(|&i| {
                let l = &self.locks[i];
                l.gr.is_some() && l.unlock.is_none() && self.res_depth[l.name] < MAX_DEPTH
            })
            .collect();
        if !valid.is_empty() && self.xrng.chance(4, 5) {
            let p = valid[self.xrng.below(valid.len() as u64) as usize];
            return Some((self.locks[p].lkid, Some(p), true, comp));
        }
        if valid.is_empty() && self.xrng.chance(1, 2) {
            // (Not every request of a handle without a granted lock.)
            return None;
        }
        let hd = &self.handles[h];
        let (x, gen, ls) = (hd.node, hd.gen, hd.ls);
        let waiting: Vec<u32> = mine
            .iter()
            .map(|&i| &self.locks[i])
            .filter(|l| l.gr.is_none())
            .map(|l| l.lkid)
            .collect();
        let others: Vec<u32> = self
            .index
            .iter()
            .filter(|(k, &i)| {
                k.0 == x && k.1 == gen && k.2 == ls && self.locks[i].handle != Some(h)
            })
            .map(|(k, _)| k.3)
            .collect();
        let id = match self.xrng.below(3) {
            0 if !waiting.is_empty() => waiting[self.xrng.below(waiting.len() as u64) as usize],
            1 if !others.is_empty() => others[self.xrng.below(others.len() as u64) as usize],
            _ => 0x7fff_0000 + self.xrng.below(16) as u32,
        };
        Some((id, None, false, comp))
    }

    /// The resource of child `comp` inside resource `parent`, named as the
    /// node names it (`hierarchy::child_name`).
    fn child_res(&mut self, parent: usize, comp: usize) -> usize {
        if let Some(&r) = self.child_ix.get(&(parent, comp)) {
            return r;
        }
        let pn = ResName::new(&self.res[parent]).expect("a resource name");
        let bytes = child_name(&pn, CHILD_NAMES[comp]).as_bytes().to_vec();
        let i = self.res.len();
        assert!(i < MAX_RES, "too many child resources");
        self.res.push(bytes.clone());
        self.res_ix.insert(bytes, i);
        self.res_depth.push(self.res_depth[parent] + 1);
        self.child_ix.insert((parent, comp), i);
        self.tr(|| format!("  (r{i} is child c{comp} of r{parent})"));
        i
    }

    /// The locks the programs have with lock `li` as parent.
    fn children_of(&self, li: usize) -> usize {
        self.index
            .values()
            .filter(|&&i| self.locks[i].parent == Some(li))
            .count()
    }

    fn any_blocked(&self) -> bool {
        (1..=self.n as u32).any(|i| self.alive(i) && self.blocked(i))
    }

    /// The query call, on a resource by name or on one of the handle's
    /// locks; checked at once or when its answer arrives.
    fn op_query(&mut self, h: usize) {
        let x = self.handles[h].node;
        let ls = self.handles[h].ls;
        let owner = self.handles[h].owner;
        let mine = self.locks_of_handle(h);
        let (target, name, only) = if !mine.is_empty() && self.xrng.chance(1, 3) {
            let li = mine[self.xrng.below(mine.len() as u64) as usize];
            let l = &self.locks[li];
            (InspectTarget::Lock(l.lkid), l.name, Some(li))
        } else {
            let name = self.xrng.below(self.res.len() as u64) as usize;
            (InspectTarget::Name(self.res[name].clone()), name, None)
        };
        let what = format!("{target:?}");
        let Some(step) = self.call(x, |n| n.inspect(owner, target)) else {
            return;
        };
        self.stat("queries");
        let versions: Vec<(usize, u64)> = self
            .index
            .values()
            .map(|&i| (i, &self.locks[i]))
            .filter(|(_, l)| l.ls == ls && l.name == name)
            .map(|(i, l)| (i, l.version))
            .collect();
        let d = self.handle_desc(h);
        let mut q = QueryM {
            node: x,
            gen: self.slots[(x - 1) as usize].gen,
            h,
            ls,
            name,
            only,
            token: 0,
            asked_at: self.now,
            // A query asked during a recovery is never compared.
            epoch: if self.any_blocked() {
                u64::MAX
            } else {
                self.epoch
            },
            versions,
        };
        match step {
            InspectStep::Done(r) => {
                self.tr(|| format!("op {d}: query r{name} ({what}) -> {r:?}"));
                self.check_query(&q, r, true);
            }
            InspectStep::Pending(token) => {
                self.tr(|| format!("op {d}: query r{name} ({what}) -> pending, token {token}"));
                q.token = token;
                self.queries.push(q);
            }
        }
    }

    /// Answers that arrived; questions whose node died are dropped, those
    /// unanswered for INSPECT_WAIT_MS abandoned (as the daemon does).
    fn poll_queries(&mut self) {
        if self.queries.is_empty() {
            return;
        }
        let mut keep = Vec::new();
        for q in std::mem::take(&mut self.queries) {
            let s = &mut self.slots[(q.node - 1) as usize];
            let Some(node) = s.node.as_mut().filter(|_| s.gen == q.gen) else {
                continue;
            };
            if self.now > q.asked_at + udlm::node::inspect::INSPECT_WAIT_MS * 1000 {
                node.inspect_abandon(q.token);
                self.stat("queries abandoned");
                continue;
            }
            match node.inspect_answer(q.token) {
                Some(r) => {
                    let d = self.handle_desc(q.h);
                    self.tr(|| format!("  {d}: query r{} answered: {r:?}", q.name));
                    self.check_query(&q, r, false);
                }
                None => keep.push(q),
            }
        }
        keep.append(&mut self.queries);
        self.queries = keep;
    }

    /// A query's answer against what the programs know. Locks the programs
    /// left alone while the query ran (same version) are compared, and only
    /// when no fault, notification or recovery happened meanwhile.
    fn check_query(&mut self, q: &QueryM, r: Result<ResourceView, Errno>, immediate: bool) {
        let who = format!(
            "n{} h{} query of ls{} r{}{}",
            q.node,
            q.h,
            q.ls,
            q.name,
            if q.only.is_some() { " (lock)" } else { "" }
        );
        let detached = self.handles[q.h].detached;
        // The handle closed while it waited (its lockspace released with
        // it, or not): ENOENT is a fair answer then.
        let closed = self.handles[q.h].fd.is_none();
        let stable = q.epoch == self.epoch && !self.any_blocked();
        let unchanged = |s: &Sim, i: usize, v: u64| {
            s.locks[i].version == v && s.locks[i].state != LState::Ended
        };
        // Locks settled from the question to the answer.
        let settled: Vec<usize> = q
            .versions
            .iter()
            .filter(|&&(i, v)| {
                unchanged(self, i, v) && self.locks[i].settled() && q.only.is_none_or(|o| o == i)
            })
            .map(|&(i, _)| i)
            .collect();
        let view = match r {
            Err(Errno::NoEnt) if detached || closed => return,
            Err(Errno::Again) => {
                self.stat("queries EAGAIN");
                return;
            }
            Err(Errno::NoEnt) => {
                if let Some(li) = q.only.filter(|_| immediate) {
                    let l = &self.locks[li];
                    self.fail(format!(
                        "{who}: ENOENT for lock {} that the handle has ({:?})",
                        l.lkid, l.state
                    ));
                    return;
                }
                if stable && !settled.is_empty() && self.opts.avoid_known_bugs {
                    // Known (FINDINGS Q): a stale cached master on the
                    // asking node, which is the name's directory node.
                    self.stat("known_query_enoent");
                } else if stable && !settled.is_empty() {
                    let l = &self.locks[settled[0]];
                    self.fail(format!(
                        "{who}: ENOENT while n{} lock {} holds it at {} all along",
                        l.node,
                        l.lkid,
                        pf::mode(l.gr.unwrap_or(NL))
                    ));
                }
                self.stat("queries ENOENT");
                return;
            }
            Err(e) => {
                self.fail(format!("{who}: failed with {e} (detached={detached})"));
                return;
            }
            Ok(v) => v,
        };
        if detached {
            self.fail(format!("{who}: answered on a destroyed lockspace"));
            return;
        }
        self.stat("queries answered");
        if immediate && view.master != q.node {
            self.fail(format!(
                "{who}: answered at once by n{} naming n{} as master",
                q.node, view.master
            ));
            return;
        }
        if view.master == 0 || view.master as usize > self.n {
            self.fail(format!("{who}: master n{} is no node", view.master));
            return;
        }
        if let Some(b) = view.lvb.as_ref() {
            match lvb_decode(b) {
                Err(()) => {
                    self.fail(format!("{who}: LVB that nobody wrote: {}", pf::lvb_text(b)));
                    return;
                }
                Ok(Some((vls, vname, vt))) => {
                    let next = self.lvbs[q.ls * MAX_RES + q.name].next_tag;
                    if (vls, vname) != (q.ls, q.name) || vt >= next {
                        self.fail(format!(
                            "{who}: LVB of ls{vls} r{vname} #{vt} (next tag here #{next})"
                        ));
                        return;
                    }
                }
                Ok(None) => {}
            }
        }
        if let Some(li) = q.only {
            let l = &self.locks[li];
            if view
                .locks
                .iter()
                .any(|v| v.node != q.node || v.lkid != l.lkid)
            {
                self.fail(format!(
                    "{who}: a lock query of lock {} lists other locks: {:?}",
                    l.lkid, view.locks
                ));
                return;
            }
        }
        if !stable {
            return;
        }
        use udlm::node::inspect::QUEUE_GRANTED;
        for lv in &view.locks {
            if lv.lkid == 0 || lv.node == 0 || lv.node as usize > self.n {
                continue;
            }
            let gen = self.slots[(lv.node - 1) as usize].gen;
            let Some(&i) = self.index.get(&(lv.node, gen, q.ls, lv.lkid)) else {
                continue;
            };
            let Some(&(_, v0)) = q.versions.iter().find(|(j, _)| *j == i) else {
                continue;
            };
            if !unchanged(self, i, v0) {
                continue;
            }
            let l = &self.locks[i];
            let bit = if lv.granted < 0 {
                NONE
            } else {
                lv.granted as u8
            };
            let bad_mode = l.master_modes() & (1 << bit) == 0;
            let bad_settled = settled.contains(&i)
                && (lv.queue != QUEUE_GRANTED || (l.gr != Some(bit) && l.stale & (1 << bit) == 0));
            if bad_mode || bad_settled {
                self.fail(format!(
                    "{who}: master n{} shows n{} lock {} as {lv:?}, but its program was told {:?} (pending {:?}, state {:?})",
                    view.master,
                    lv.node,
                    lv.lkid,
                    l.gr.map(pf::mode),
                    l.pending,
                    l.state
                ));
                return;
            }
        }
        if settled.is_empty() || view.locks.len() < view.nlocks as usize {
            return;
        }
        self.stat("queries compared");
        for &i in &settled {
            let l = &self.locks[i];
            if !view
                .locks
                .iter()
                .any(|v| v.node == l.node && v.lkid == l.lkid)
            {
                self.fail(format!(
                    "{who}: master n{} does not list n{} lock {} ({} all along): {:?}",
                    view.master,
                    l.node,
                    l.lkid,
                    pf::mode(l.gr.unwrap_or(NL)),
                    view.locks
                ));
                return;
            }
        }
        // The master named is the (one running) node whose engine has it.
        let has: Vec<u32> = (1..=self.n as u32)
            .filter(|&m| {
                self.node_ref(m).is_some_and(|n| {
                    n.lockspace_engine(LOCKSPACES[q.ls])
                        .is_some_and(|e| e.has_resource(&self.res[q.name]))
                })
            })
            .collect();
        if has != [view.master] {
            self.fail(format!(
                "{who}: answer names n{} as master, the engines with the resource are {has:?}",
                view.master
            ));
        }
    }

    // ----- the end of a run -----------------------------------------------

    /// A program's call outside the random phase, as a step of its own.
    fn program_step(&mut self, f: impl FnOnce(&mut Sim)) {
        self.steps += 1;
        self.touched.clear();
        self.ctx = EventCtx::default();
        f(self);
        self.after_step();
    }

    fn quiet(&self) -> bool {
        self.slots
            .iter()
            .all(|s| s.notes.is_empty() && s.node.as_ref().is_some_and(|n| !n.operations_blocked()))
            && self.links.iter().all(|l| {
                // Deadlock rounds go on while someone waits (every
                // deadlock_detect_ms): they are not movement.
                l.iter().all(|m| {
                    PeerMsg::decode(&m.payload).is_ok_and(|p| Node::is_deadlock_message(&p))
                })
            })
            && self.cut.iter().all(|&c| c == 0)
            && self.actions.is_empty()
    }

    /// Runs until nothing moves for two leases (every node running, no
    /// message, no notification).
    fn quiesce(&mut self, what: &str) -> bool {
        let mut since: Option<u64> = None;
        let limit = self.steps + 60_000;
        while self.failure.is_none() {
            if self.quiet() {
                let s = *since.get_or_insert(self.now);
                if self.now >= s + 2 * self.lease {
                    return true;
                }
            } else {
                since = None;
            }
            if self.steps >= limit {
                let blocked: Vec<String> = self
                    .slots
                    .iter()
                    .map(|s| {
                        format!(
                            "n{}:{}",
                            s.id,
                            s.node.as_ref().map_or("dead", |n| n.phase().name())
                        )
                    })
                    .collect();
                let msgs: Vec<String> = (1..=self.n as u32)
                    .flat_map(|a| (1..=self.n as u32).map(move |b| (a, b)))
                    .filter(|&(a, b)| a != b && !self.links[self.li(a, b)].is_empty())
                    .map(|(a, b)| {
                        let l = &self.links[self.li(a, b)];
                        format!(
                            "n{a}->n{b}: {} (head from incarnation {:#x} at {} us; n{b} was told {:?})",
                            l.len(),
                            l[0].src_inc,
                            l[0].at,
                            self.slots[(b - 1) as usize].told[(a - 1) as usize]
                        )
                    })
                    .collect();
                self.fail(format!(
                    "no quiescence {what} after 60000 steps: nodes {blocked:?}, messages in flight {msgs:?}, {} actions",
                    self.actions.len()
                ));
                return false;
            }
            self.step();
        }
        false
    }

    fn finale(&mut self) {
        self.final_phase = true;
        self.lull_until = 0;
        self.tr(|| "FINALE: heal every link, restart every crashed node, run to quiescence".into());
        self.actions
            .retain(|(_, a)| matches!(a, Action::Fence { .. }));
        for a in 1..=self.n as u32 {
            for b in a + 1..=self.n as u32 {
                while self.is_cut(a, b) {
                    self.remove_cut(a, b);
                }
            }
        }
        for x in 1..=self.n as u32 {
            if self.alive(x) {
                continue;
            }
            if self.opts.avoid_known_bugs {
                let at = self
                    .now
                    .max(self.slots[(x - 1) as usize].crashed_at + self.lease * 5 / 2);
                self.actions.push((at, Action::Restart(x)));
            } else {
                self.restart(x);
            }
        }
        if !self.quiesce("after healing") {
            return;
        }
        self.check_quiescent();
        if self.failure.is_some() {
            return;
        }
        self.tr(|| "FINALE: release everything".into());
        let (mut before, mut stalled) = (usize::MAX, 0);
        for round in 0.. {
            // Orphans go by purge.
            for x in 1..=self.n as u32 {
                for ls in 0..LOCKSPACES.len() {
                    if self.orphans_of(x, ls).is_empty() {
                        continue;
                    }
                    if let Some(h) = self.ensure_handle(x, ls) {
                        self.program_step(|s| s.op_purge(h));
                    }
                }
            }
            // Every settled lock is force-unlocked; pending ones complete
            // as the others go, and are unlocked next round.
            let settled: Vec<usize> = self
                .index
                .values()
                .copied()
                .filter(|&i| {
                    let l = &self.locks[i];
                    l.state == LState::Live
                        && l.pending.is_none()
                        && l.unlock.is_none()
                        && l.handle.is_some_and(|h| !self.handles[h].detached)
                        // Children go before their parents (ENOTEMPTY).
                        && self.children_of(i) == 0
                })
                .collect();
            for li in settled {
                if self.failure.is_some() {
                    return;
                }
                let h = self.locks[li].handle.unwrap();
                self.program_step(|s| s.op_unlock(h, li, 1));
            }
            if !self.quiesce("while releasing") {
                return;
            }
            self.check_quiescent();
            if self.failure.is_some() {
                return;
            }
            let left = self
                .index
                .values()
                .filter(|&&i| self.locks[i].state != LState::Leaked)
                .count();
            self.tr(|| format!("FINALE: after release round {round}, {left} locks remain"));
            if left == 0 {
                break;
            }
            // Each round lets at least one waiter through, unless stuck.
            if left >= before {
                stalled += 1;
                if stalled >= 3 {
                    break;
                }
            } else {
                stalled = 0;
            }
            before = left;
        }
        let left: Vec<String> = self
            .index
            .values()
            .map(|&i| {
                let l = &self.locks[i];
                format!(
                    "n{} h{:?} ls{} r{} lock {} {:?} gr={:?} pending={:?} unlock={:?}",
                    l.node,
                    l.handle,
                    l.ls,
                    l.name,
                    l.lkid,
                    l.state,
                    l.gr.map(pf::mode),
                    l.pending,
                    l.unlock
                )
            })
            .collect();
        if !left.is_empty() {
            self.fail(format!(
                "locks that never completed or could not be released: {}",
                left.join("; ")
            ));
            return;
        }
        // Every handle closes.
        for h in 0..self.handles.len() {
            if self.handles[h].fd.is_some() {
                self.program_step(|s| s.op_close(h, None));
            }
        }
        if !self.quiesce("after closing") {
            return;
        }
        for x in 1..=self.n as u32 {
            let node = self.node_ref(x).unwrap();
            let counts = node.lock_counts();
            let resources: usize = LOCKSPACES
                .iter()
                .filter_map(|ls| node.lockspace_engine(ls))
                .map(|e| e.resource_count())
                .sum();
            if counts != (0, 0) || resources != 0 {
                let dump: Vec<String> = LOCKSPACES
                    .iter()
                    .map(|ls| {
                        format!(
                            "{:?}",
                            node.query(&udlm::proto::Query::Lockdump(ls.to_vec()), creds())
                        )
                    })
                    .collect();
                self.fail(format!(
                    "n{x} keeps locks after everything was released: (process copies, master copies) = {counts:?}, {resources} resources; {}",
                    dump.join(" ")
                ));
                return;
            }
        }
        self.tr(|| "FINALE: every lock released, every node empty".into());
    }

    /// An open handle of node x on lockspace ls, opening one if needed.
    fn ensure_handle(&mut self, x: u32, ls: usize) -> Option<usize> {
        let gen = self.slots[(x - 1) as usize].gen;
        if let Some(h) = (0..self.handles.len()).find(|&h| {
            let hd = &self.handles[h];
            hd.node == x && hd.gen == gen && hd.ls == ls && hd.fd.is_some() && !hd.detached
        }) {
            return Some(h);
        }
        let flags = self.ls_flags(ls);
        let r = self.call(x, |n| n.open(LOCKSPACES[ls], Some((0o600, flags)), creds()))?;
        let Ok((owner, token)) = r else {
            self.fail(format!("n{x}: cannot open ls{ls} to purge: {r:?}"));
            return None;
        };
        let (ours, theirs) = sys::seqpacket_pair().ok()?;
        let a = self.call(x, |n| n.attach(token, EventSink::new(theirs), creds()));
        if a != Some(Ok(owner)) {
            self.fail(format!("n{x}: attach failed: {a:?}"));
            return None;
        }
        self.handles.push(HandleM {
            node: x,
            gen,
            ls,
            owner,
            fd: Some(ours),
            detached: false,
        });
        let h = self.handles.len() - 1;
        self.tr(|| format!("op n{x}: open ls{ls} -> h{h} (to purge orphans)"));
        Some(h)
    }

    /// Once everything is delivered and every node runs: nothing is left
    /// half-done, and the masters' locks are exactly the programs' locks.
    fn check_quiescent(&mut self) {
        for &i in self.index.values() {
            let l = &self.locks[i];
            if l.state != LState::Live {
                continue;
            }
            let who = format!(
                "n{} h{:?} lock {} (ls{} r{})",
                l.node, l.handle, l.lkid, l.ls, l.name
            );
            if l.unlock.is_some() {
                self.fail(format!("{who}: its unlock never completed"));
                return;
            }
            if l.cancel {
                self.fail(format!(
                    "{who}: its cancel was never answered (pending {:?})",
                    l.pending
                ));
                return;
            }
            if let Some(p) = l.pending {
                // A timeout sent to a master that lost the lock in a
                // recovery is sent again after a second (the node's
                // TIMEOUT_RETRY_MS): only later is it overdue.
                let clock = self.slots[(l.node - 1) as usize].last_tick_local;
                let overdue = l
                    .timeout_at
                    .is_some_and(|t| clock >= t + TIMEOUT_RETRY_MS + self.lease_ms);
                if overdue {
                    self.fail(format!(
                        "{who}: its LKF_TIMEOUT operation {p:?} neither granted nor timed out (due at local {:?} ms)",
                        l.timeout_at
                    ));
                    return;
                }
                if p.flags() & lkf::NOQUEUE != 0 {
                    self.fail(format!(
                        "{who}: its NOQUEUE operation {p:?} was never answered"
                    ));
                    return;
                }
            }
        }
        // Master copies by holder node, against the programs' locks.
        let mut engine: BTreeMap<(u32, usize, usize), Vec<u8>> = BTreeMap::new();
        for m in 1..=self.n as u32 {
            let Some(node) = self.node_ref(m) else {
                continue;
            };
            for (lsi, ls) in LOCKSPACES.iter().enumerate() {
                let Some(e) = node.lockspace_engine(ls) else {
                    continue;
                };
                for r in e.resources() {
                    let Some(ni) = self.res_ix.get(r.name.as_bytes()).copied() else {
                        continue;
                    };
                    for li in r.granted.iter().chain(&r.converting).chain(&r.waiting) {
                        let o = li.owner.0;
                        let holder = if o >> 63 == 0 {
                            m
                        } else {
                            ((o >> 40) & 0x7f_ffff) as u32
                        };
                        let mode = li.granted.map_or(NONE, |g| g as u8);
                        engine.entry((holder, lsi, ni)).or_default().push(mode);
                    }
                }
            }
        }
        let mut model: BTreeMap<(u32, usize, usize), (Vec<u8>, usize)> = BTreeMap::new();
        for &i in self.index.values() {
            let l = &self.locks[i];
            let e = model.entry((l.node, l.ls, l.name)).or_default();
            e.0.push(l.mask());
            if l.state != LState::MaybeOrphan {
                e.1 += 1;
            }
        }
        let keys: BTreeSet<(u32, usize, usize)> =
            engine.keys().chain(model.keys()).copied().collect();
        for k in keys {
            let items = engine.get(&k).cloned().unwrap_or_default();
            let (cands, required) = model.get(&k).cloned().unwrap_or_default();
            let (h, ls, name) = k;
            if !matchable(&items, &cands) {
                let im: Vec<&str> = items
                    .iter()
                    .map(|&m| if m == NONE { "waiting" } else { pf::mode(m) })
                    .collect();
                self.fail(format!(
                    "masters hold locks of n{h} on ls{ls} r{name} ({im:?}) that its programs do not have (masks {cands:?}): a lock survived its owner"
                ));
                return;
            }
            if items.len() < required {
                self.fail(format!(
                    "n{h}'s programs have {required} locks on ls{ls} r{name}, the masters only {}: a lock was lost",
                    items.len()
                ));
                return;
            }
        }
    }
}
