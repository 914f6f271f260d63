//! The node: every lockspace and every open handle of one host, and this
//! host's part in the cluster.
//!
//! With the kernel DLM all processes of a host share one node; udlm keeps
//! that model. A [`Node`] owns the lockspaces, the handles ("owners", spec
//! §6.1) and their event links. Every input — a handle's request, a handle
//! closing, a message from another node — runs under the caller's lock on the
//! node. Outputs are callbacks written to event links without blocking, and
//! messages handed to the peer transport without blocking.
//!
//! Two tables per lockspace:
//! * `locks`: every lock of this node's handles, by the id the program sees
//!   (the "process copy"). It knows where the lock's resource is mastered.
//! * `engine`: the resources this node masters, with the locks of every node
//!   on them (the "master copies"); `holders` maps each engine lock to its
//!   process copy: here, or (node, id) elsewhere.
//!
//! Where a resource is mastered: in a one-node cluster, here. Otherwise the
//! name's directory node (the name hashed over the configured nodes, with the
//! lockspace's `master` weights) records the master; the first node to ask
//! becomes it, and askers cache the answer. With `nodir=1` the directory node
//! itself is the master and nobody asks (static mastering). Directory records
//! and mastered resources stay for the life of the lockspace on that node.
//!
//! Callbacks are grouped per lock as the kernel delivers them (all pending
//! callbacks of one lock together, locks in the order their first callback
//! was queued).
//!
//! Decisions where the kernel's rules do not carry over:
//! * Creating a lockspace needs no privilege: whoever can reach the node's
//!   socket (its runtime directory's permissions decide) may create one. The
//!   creator's uid/gid own it, and the `mode` given at creation (0 means
//!   0660, the kernel's udev default) decides who else may open it; root
//!   always may. Refusal is `EACCES`.
//! * A lockspace force-destroyed while other handles are still open leaves
//!   those handles working on nothing: their calls fail with `ENOENT`.
//! * A remote operation the master refuses although this node accepted it
//!   (which cannot happen while both follow the rules) completes with the
//!   master's error as its status, and is logged.

pub mod configfs;
pub mod control;
#[cfg(feature = "corosync")]
pub mod corosync;
pub mod deadlock;
pub mod handles;
pub mod hierarchy;
pub mod inspect;
pub mod link;
pub mod peer;
pub mod recovery;
pub mod server;
pub mod sink;

use crate::cluster::config::directory_node;
use crate::engine::{
    check_lock_args, check_unlock_flags, quecvt_legal, Engine, Event, Request as EngineRequest,
    DEFAULT_MAX_LOCKS,
};
use crate::fasthash::FastMap;
use crate::proto::{Callback, InlineAsk, UserArgs};
use crate::sys::PeerCreds;
use crate::types::{
    lkf, lsfl, sbf, Errno, LockId, Lvb, Mode, Owner, ResName, Status, LOCKSPACE_LEN,
};
use peer::PeerMsg;
use sink::{EventSink, Packet};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

/// Bounds of one node.
#[derive(Clone, Debug)]
pub struct NodeLimits {
    pub max_lockspaces: usize,
    pub max_handles: usize,
    pub max_locks_per_lockspace: u32,
}

impl Default for NodeLimits {
    fn default() -> Self {
        NodeLimits {
            max_lockspaces: 4096,
            max_handles: 65536,
            max_locks_per_lockspace: DEFAULT_MAX_LOCKS,
        }
    }
}

/// `UDLM_DEADLOCK_DETECT_MS`, which wins over the config (for tests).
fn detect_ms_from_env() -> Option<u64> {
    std::env::var("UDLM_DEADLOCK_DETECT_MS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
}

/// How long a node keeps knowing the master of a name nobody here uses
/// (and a master its mastership of a resource without locks).
pub const RESOURCE_GRACE_MS: u64 = 10_000;

/// Sends lock-protocol messages to other nodes without blocking. Returns
/// false when the message could not be queued.
pub trait PeerLink: Send + Sync {
    fn send(&self, to: u32, payload: Vec<u8>) -> bool;
    /// The peers with a live session, for status reports.
    fn connected(&self) -> Vec<u32> {
        Vec::new()
    }
}

/// Where resources of a lockspace are mastered, from the config.
#[derive(Clone, Debug, Default)]
pub struct ClusterView {
    /// Every configured node id, sorted.
    pub nodes: Vec<u32>,
    /// The cluster's name and each node's address, for status reports.
    pub cluster_name: String,
    pub addresses: HashMap<u32, String>,
    /// Per lockspace: static mastering, and `master` weights.
    pub lockspaces: HashMap<Vec<u8>, (bool, Vec<(u32, u32)>)>,
    /// How long an unreachable peer stays a member (0: the default).
    pub lease_ms: u64,
    /// Self-fencing kills the programs holding this node's locks.
    pub self_fence_abort: bool,
    /// A fence command must succeed before a lost node's locks go.
    pub fencing: bool,
    /// `deadlock_detect_ms` when the config sets it (0: detection off).
    pub deadlock_detect_ms: Option<u64>,
    /// A two-node cluster whose survivor goes on alone (`two_node`).
    pub two_node: bool,
}

impl ClusterView {
    pub fn single(node_id: u32) -> ClusterView {
        ClusterView {
            nodes: vec![node_id],
            ..ClusterView::default()
        }
    }

    /// The settings of `ls`: its own `lockspace`/`master` lines, else those
    /// written for `*` (a udlm extension: every other lockspace).
    fn placement(&self, ls: &[u8]) -> Option<&(bool, Vec<(u32, u32)>)> {
        self.lockspaces
            .get(ls)
            .or_else(|| self.lockspaces.get(&b"*"[..]))
    }

    fn members(&self, ls: &[u8]) -> Vec<(u32, u32)> {
        match self.placement(ls) {
            Some((_, w)) if !w.is_empty() => w.clone(),
            _ => self.nodes.iter().map(|&n| (n, 1)).collect(),
        }
    }

    fn nodir(&self, ls: &[u8]) -> bool {
        self.placement(ls).is_some_and(|(n, _)| *n)
    }
}

/// A remote node's handle, as an engine owner: the top bit marks it, then
/// the node id, then the handle's own number.
fn remote_owner(node: u32, owner: u64) -> Owner {
    Owner((1 << 63) | ((node as u64) << 40) | (owner & ((1 << 40) - 1)))
}

fn is_local_owner(o: Owner) -> bool {
    o.0 >> 63 == 0
}

/// Who a master copy belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Holder {
    Local(u32),
    Remote(u32, u32),
}

/// Where a process copy's resource is mastered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Master {
    /// Here: the engine lock id.
    Local(u32),
    /// On that node (keyed there by our lock id).
    Remote(u32),
    /// Not known yet: the operation waits for the directory's answer.
    Unknown,
}

/// The state of a remotely mastered lock as its node sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RemoteState {
    /// A request or conversion was sent; no answer yet.
    InFlight,
    Waiting,
    Converting,
    Granted,
}

/// Where a request that a recovery sends again stands (`LocalLock::resend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RequestResend {
    None,
    /// Listed to go out when the recovery ends.
    Listed,
    /// Sent to this master; no answer yet shows one copy there.
    SentTo(u32),
}

struct LocalLock {
    owner: Owner,
    user: UserArgs,
    name: ResName,
    master: Master,
    state: RemoteState,
    grmode: i8,
    flags: u32,
    pid: u32,
    orphan: bool,
    /// A force-unlock was issued while a request was in flight: the grant
    /// that may still come is not reported (spec §6.3).
    overlap_unlock: bool,
    incarnation: u32,
    /// The initial request (mode, flags, LVB) while it is in flight to a
    /// remote master, to send again if that node no longer masters the name.
    request: Option<(u8, u32, Option<Lvb>)>,
    /// Down-conversions completed here whose master's completion is still
    /// to come (and to be dropped).
    silent_completions: u32,
    /// An unlock was sent to the remote master: the program no longer
    /// holds the lock, whatever the last completion said.
    releasing: bool,
    /// An up-conversion (mode, flags) on its way to or queued on the
    /// remote master, to send again if that master dies.
    convert: Option<(u8, u32)>,
    /// A recovery listed the conversion to send again when it finishes
    /// (`Resend::Convert`), and no answer to it has come since. An answer
    /// held back meanwhile (from a master that finished a generation this
    /// node left unfinished) may complete the conversion before the list
    /// is sent; sent then, it would wait for an answer that never comes.
    convert_resend: bool,
    /// A request a recovery sends again while a master may still hold a
    /// copy of it (`recover_process_copy`): listed, then sent to a master,
    /// until a master's answer shows one copy of it there. An answer that
    /// ends the lock may concern the copy held before, and the one sent
    /// again would then live on at its master with nobody to end it (sim
    /// seed 5200859: a timeout crossed the request a recovery sent again).
    resend: RequestResend,
    /// A cancel was sent to the remote master.
    cancelling: bool,
    /// The remote master demoted this lock to NL (`LKF_CONVDEADLK`) while
    /// its conversion waits: the next completion reports `DLM_SBF_DEMOTED`
    /// even if a recovery moved the lock to a master that never knew.
    demoted: bool,
    /// The value block of the last completion that carried one (for
    /// recovering the resource's LVB, spec §8.5).
    lvb: Option<Lvb>,
    /// When the waiting request or conversion ends with ETIMEDOUT
    /// (`LKF_TIMEOUT` in a `UDLM_LSFL_TIMEOUT` lockspace); the entry in
    /// [`Node::timers`] with another time is stale.
    deadline_ms: Option<u64>,
    /// When this waiting lock next makes its node ask for a deadlock round.
    wait_check_ms: Option<u64>,
    /// Hierarchical lockspaces: the parent lock, and how many live locks
    /// have this one as parent (node/hierarchy.rs).
    parent: Option<u32>,
    children: u32,
}

/// See [`Node::begin_inline`].
struct InlineSlot {
    owner: Owner,
    ask: InlineAsk,
    held: Option<Packet>,
    /// Something else went to the handle during the call: no inlining.
    spoiled: bool,
}

/// A lock operation waiting for the directory's answer about its resource.
enum Parked {
    Request {
        lkid: u32,
        mode: u8,
        flags: u32,
        lvb: Option<Lvb>,
    },
}

struct Lockspace {
    /// Opened on this node (not just state kept for other nodes).
    visible: bool,
    /// The udlm extensions its creator asked for on this node
    /// (`lsfl::UDLM_TIMEOUT`, `lsfl::UDLM_HIERARCHY`).
    features: u32,
    /// Creations not yet matched by a release (spec §2.10).
    create_count: u32,
    perm: u32,
    uid: u32,
    gid: u32,
    engine: Engine,
    holders: FastMap<u32, Holder>,
    remote_index: FastMap<(u32, u32), u32>,
    locks: FastMap<u32, LocalLock>,
    free_ids: BinaryHeap<Reverse<u32>>,
    next_id: u32,
    next_incarnation: u32,
    /// Masters known here (cached answers, and what this node masters).
    masters: FastMap<ResName, u32>,
    /// Lookups in progress, with what waits for them.
    lookups: FastMap<ResName, Vec<Parked>>,
    /// Directory records kept by this node: name → master.
    directory: FastMap<ResName, u32>,
    /// This node's locks per resource name (process copies).
    name_refs: FastMap<ResName, u32>,
    /// Known masters not used here since that time (ms), to forget after
    /// [`RESOURCE_GRACE_MS`].
    idle_since: FastMap<ResName, u64>,
    /// Requests and conversions to send again when a recovery ends.
    resend: Vec<recovery::Resend>,
    /// The LVBs of resources rebuilt here by the recovery in progress.
    recovered_lvb: FastMap<ResName, recovery::RecoveredLvb>,
    /// Ids of remotely mastered locks whose handle closed, by id: (owner,
    /// master). Not used again until that master confirms the close
    /// (`OwnerClosed`) or leaves, so that nothing it still says about the
    /// old lock reaches a new one.
    closing: FastMap<u32, (u64, u32)>,
}

impl Lockspace {
    fn new(max_locks: u32) -> Lockspace {
        Lockspace {
            visible: false,
            features: 0,
            create_count: 0,
            perm: 0o660,
            uid: 0,
            gid: 0,
            engine: Engine::new(max_locks),
            holders: FastMap::default(),
            remote_index: FastMap::default(),
            locks: FastMap::default(),
            free_ids: BinaryHeap::new(),
            next_id: 1,
            next_incarnation: 0,
            masters: FastMap::default(),
            lookups: FastMap::default(),
            directory: FastMap::default(),
            name_refs: FastMap::default(),
            idle_since: FastMap::default(),
            resend: Vec::new(),
            recovered_lvb: FastMap::default(),
            closing: FastMap::default(),
        }
    }

    fn alloc_id(&mut self) -> u32 {
        match self.free_ids.pop() {
            Some(Reverse(id)) => id,
            None => {
                self.next_id += 1;
                self.next_id - 1
            }
        }
    }

    fn free_id(&mut self, id: u32) {
        if self.forget_lock(id).is_some() {
            self.free_ids.push(Reverse(id));
        }
    }

    /// Ends lock `id`, whose request is still waiting for the directory's
    /// answer (it never reached a master): its parked request goes, and so
    /// does the lock.
    fn end_parked_request(&mut self, id: u32) {
        if let Some(name) = self.locks.get(&id).map(|l| l.name) {
            if let Some(parked) = self.lookups.get_mut(&name) {
                parked.retain(|p| !matches!(p, Parked::Request { lkid, .. } if *lkid == id));
            }
        }
        self.free_id(id);
    }

    /// Removes the process copy `id`, leaving the id unused but not free.
    fn forget_lock(&mut self, id: u32) -> Option<LocalLock> {
        let l = self.locks.remove(&id)?;
        if let Some(pl) = l.parent.and_then(|p| self.locks.get_mut(&p)) {
            pl.children = pl.children.saturating_sub(1);
        }
        if let Some(n) = self.name_refs.get_mut(&l.name) {
            *n -= 1;
            if *n == 0 {
                self.name_refs.remove(&l.name);
            }
        }
        Some(l)
    }

    /// Takes lock `id` away from its handle, keeping the id in reserve
    /// until its master `master` has forgotten it.
    fn retire_id(&mut self, id: u32, master: u32) {
        let Some(owner) = self.locks.get(&id).map(|l| l.owner.0) else {
            return;
        };
        self.retire_id_until(id, master, owner);
    }

    /// [`Lockspace::retire_id`] until `master` confirms the close of `key`
    /// (`OwnerClosed`).
    fn retire_id_until(&mut self, id: u32, master: u32, key: u64) {
        if master == 0 {
            // Between masters during a recovery: nobody to wait for.
            return self.free_id(id);
        }
        if self.forget_lock(id).is_some() {
            self.closing.insert(id, (key, master));
        }
    }

    /// Ids in reserve for `owner`'s locks on `master` (all owners if None)
    /// may be used again.
    fn release_retired(&mut self, owner: Option<u64>, master: u32) {
        let ids: Vec<u32> = self
            .closing
            .iter()
            .filter(|(_, &(o, m))| m == master && owner.map_or(true, |x| x == o))
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            self.closing.remove(&id);
            self.free_ids.push(Reverse(id));
        }
    }

    fn has_locks(&self) -> bool {
        !self.locks.is_empty() || !self.engine.is_empty()
    }
}

struct Handle {
    ls: Option<Vec<u8>>,
    sink: Option<Arc<EventSink>>,
    creds: PeerCreds,
}

/// One host's lock state.
pub struct Node {
    node_id: u32,
    limits: NodeLimits,
    cluster: ClusterView,
    peers: Option<Arc<dyn PeerLink>>,
    lockspaces: FastMap<Vec<u8>, Lockspace>,
    handles: FastMap<Owner, Handle>,
    tokens: FastMap<u64, Owner>,
    next_owner: u64,
    events: Vec<Event>,
    /// Callbacks to hand to event links at the end of the current input.
    out: Vec<(Owner, (u32, u32), Packet)>,
    /// Set while a batch of peer messages is applied
    /// ([`Node::apply_batch`]): the callbacks wait for its end.
    batching: bool,
    /// The `_wait` call being served, whose completion may go back in its
    /// reply instead of on the event link ([`InlineAsk`]).
    inline: Option<InlineSlot>,
    /// The time of the last tick, in ms (only ever compared with itself).
    now_ms: u64,
    /// Log every message from other nodes (`UDLM_TRACE=1`).
    trace: bool,
    membership: recovery::Membership,
    /// Who has which lockspace, for the configfs-compatible view.
    spaces: configfs::Spaces,
    /// Where membership and quorum come from, as JSON (node/control.rs);
    /// empty when nobody said.
    membership_source: String,
    /// Lock timers due, by time: (when, kind, lockspace, lock id), kind
    /// [`TIMER_TIMEOUT`] or [`TIMER_DEADLOCK_CHECK`]. An entry whose lock
    /// has another time for that kind is stale and skipped.
    timers: std::collections::BTreeSet<(u64, u8, Vec<u8>, u32)>,
    /// How long a request waits before deadlock detection looks (0: never).
    deadlock_detect_ms: u64,
    detector: deadlock::Detector,
    /// Queries waiting for a master's answer.
    inspects: inspect::Inspects,
}

/// Timer kinds: the end of an `LKF_TIMEOUT`...
const TIMER_TIMEOUT: u8 = 0;
/// ...and a request waiting long enough to look for a deadlock.
const TIMER_DEADLOCK_CHECK: u8 = 1;

/// Most pending lock timeouts of one node; a request with `LKF_TIMEOUT`
/// beyond it is refused with ENOMEM.
pub const MAX_TIMERS: usize = 1 << 20;
/// The longest `LKF_TIMEOUT` honoured (one day); longer ones are cut to it.
pub const MAX_TIMEOUT_CS: u64 = 8_640_000;
/// How long after sending a timeout to a remote master it is sent again if
/// the lock still waits (the first may have gone to a master that lost the
/// resource in a recovery).
const TIMEOUT_RETRY_MS: u64 = 1000;

/// A lock request from a handle, as the C library sent it.
#[derive(Clone, Debug, Default)]
pub struct LockArgs<'a> {
    pub mode: u8,
    pub flags: u32,
    pub lkid: u32,
    pub name: &'a [u8],
    pub lvb: Option<Lvb>,
    pub user: UserArgs,
    pub tid: u32,
    /// The call's `parent` (used in hierarchical lockspaces only).
    pub parent: u32,
    /// Centiseconds a request may wait with `LKF_TIMEOUT` (in lockspaces
    /// created with `UDLM_LSFL_TIMEOUT` only).
    pub timeout_cs: u64,
}

impl Node {
    pub fn new(node_id: u32, limits: NodeLimits) -> Node {
        Node {
            node_id,
            limits,
            cluster: ClusterView::single(node_id),
            peers: None,
            lockspaces: FastMap::default(),
            handles: FastMap::default(),
            tokens: FastMap::default(),
            next_owner: 1,
            events: Vec::new(),
            out: Vec::new(),
            batching: false,
            inline: None,
            now_ms: 0,
            trace: std::env::var_os("UDLM_TRACE").is_some_and(|v| v == "1"),
            timers: std::collections::BTreeSet::new(),
            deadlock_detect_ms: detect_ms_from_env().unwrap_or(deadlock::DEFAULT_DETECT_MS),
            detector: deadlock::Detector::default(),
            inspects: inspect::Inspects::default(),
            membership: recovery::Membership::new(
                node_id,
                crate::cluster::config::DEFAULT_LEASE_MS,
            ),
            spaces: configfs::Spaces::default(),
            membership_source: String::new(),
        }
    }

    /// Says where membership and quorum come from (a JSON object), for
    /// `udlm status`.
    pub fn set_membership_source(&mut self, json: String) {
        self.membership_source = json;
    }

    fn membership_source_json(&self) -> &str {
        if self.membership_source.is_empty() {
            "null"
        } else {
            &self.membership_source
        }
    }

    /// Joins a cluster: `cluster` says where names are mastered, `peers`
    /// carries messages to the other nodes.
    /// With other nodes configured, nothing is granted until the first
    /// recovery generation has made this node a member (recovery.rs).
    pub fn set_cluster(&mut self, cluster: ClusterView, peers: Arc<dyn PeerLink>) {
        if cluster.lease_ms > 0 {
            self.membership.lease_ms = cluster.lease_ms;
        }
        self.membership.self_fence_abort = cluster.self_fence_abort;
        self.membership.fencing = cluster.fencing;
        if let (Some(ms), None) = (cluster.deadlock_detect_ms, detect_ms_from_env()) {
            self.deadlock_detect_ms = ms;
        }
        let multi = cluster.nodes.len() > 1;
        self.cluster = cluster;
        self.peers = Some(peers);
        if multi {
            self.membership.wait_to_join();
        }
    }

    /// Sets where names are mastered and how the cluster is described,
    /// without peers (a one-node cluster).
    pub fn set_view(&mut self, cluster: ClusterView) {
        if let (Some(ms), None) = (cluster.deadlock_detect_ms, detect_ms_from_env()) {
            self.deadlock_detect_ms = ms;
        }
        self.cluster = cluster;
    }

    pub fn node_id(&self) -> u32 {
        self.node_id
    }

    // ----- handles and lockspaces ------------------------------------------

    /// Opens a handle on lockspace `name`, creating the lockspace when
    /// `create` is given (`(mode, flags)`). Returns the new owner and the
    /// token that attaches its event link.
    pub fn open(
        &mut self,
        name: &[u8],
        create: Option<(u32, u32)>,
        creds: PeerCreds,
    ) -> Result<(Owner, u64), Errno> {
        if name.is_empty() || name.len() > LOCKSPACE_LEN {
            return Err(Errno::Inval);
        }
        if self.handles.len() >= self.limits.max_handles {
            return Err(Errno::NoMem);
        }
        if let Some((_, flags)) = create {
            if flags & lsfl::SOFTIRQ != 0 {
                return Err(Errno::Inval);
            }
        }
        let exists = self.lockspaces.get(name).is_some_and(|l| l.visible);
        match (exists, create) {
            (true, None) => self.check_access(name, creds)?,
            (true, Some((_, flags))) => {
                if flags & lsfl::NEWEXCL != 0 {
                    return Err(Errno::Exist);
                }
                self.check_access(name, creds)?;
                let ls = self.lockspaces.get_mut(name).expect("lockspace");
                ls.create_count = ls.create_count.saturating_add(1);
            }
            (false, None) => return Err(Errno::NoEnt),
            (false, Some((mode, flags))) => {
                if !self.lockspaces.contains_key(name)
                    && self.lockspaces.len() >= self.limits.max_lockspaces
                {
                    return Err(Errno::NoMem);
                }
                let max = self.limits.max_locks_per_lockspace;
                let ls = self
                    .lockspaces
                    .entry(name.to_vec())
                    .or_insert_with(|| Lockspace::new(max));
                ls.visible = true;
                ls.features = flags & (lsfl::UDLM_TIMEOUT | lsfl::UDLM_HIERARCHY);
                ls.create_count = 1;
                ls.perm = if mode & 0o777 == 0 {
                    0o660
                } else {
                    mode & 0o777
                };
                ls.uid = creds.uid;
                ls.gid = creds.gid;
            }
        }
        let owner = Owner(self.next_owner);
        self.next_owner += 1;
        let mut token = crate::sys::random_u64();
        while token == 0 || self.tokens.contains_key(&token) {
            token = crate::sys::random_u64();
        }
        self.tokens.insert(token, owner);
        self.handles.insert(
            owner,
            Handle {
                ls: Some(name.to_vec()),
                sink: None,
                creds,
            },
        );
        Ok((owner, token))
    }

    pub fn has_token(&self, token: u64) -> bool {
        self.tokens.contains_key(&token)
    }

    /// Attaches the event link of the handle named by `token`. The peer must
    /// be the same user that opened it.
    pub fn attach(
        &mut self,
        token: u64,
        sink: Arc<EventSink>,
        creds: PeerCreds,
    ) -> Result<Owner, Errno> {
        let owner = *self.tokens.get(&token).ok_or(Errno::NoEnt)?;
        let h = self.handles.get_mut(&owner).ok_or(Errno::NoEnt)?;
        if h.creds.uid != creds.uid {
            return Err(Errno::Acces);
        }
        self.tokens.remove(&token);
        h.sink = Some(sink);
        Ok(owner)
    }

    /// A handle went away (closed, or its process died): its locks are
    /// released or orphaned (spec §6.1) and pending callbacks dropped.
    pub fn close(&mut self, owner: Owner) {
        self.tokens.retain(|_, o| *o != owner);
        let Some(h) = self.handles.remove(&owner) else {
            return;
        };
        let Some(ls_name) = h.ls else { return };
        let me = self.node_id;
        let mut masters_told: Vec<u32> = Vec::new();
        let mut silent_cancels: Vec<(u32, u32)> = Vec::new();
        if let Some(ls) = self.lockspaces.get_mut(&ls_name) {
            ls.engine.close_owner(owner);
            // Remotely mastered locks: their masters release or orphan them.
            let mut ids: Vec<u32> = ls
                .locks
                .iter()
                .filter(|(_, l)| l.owner == owner)
                .map(|(&id, _)| id)
                .collect();
            ids.sort_unstable();
            for id in ids {
                let l = ls.locks.get_mut(&id).expect("lock");
                match l.master {
                    Master::Local(e) => {
                        // Kept by the engine as an orphan: the process copy
                        // must say so too, should the resource move.
                        if ls
                            .engine
                            .lock_info_by_id(LockId(e))
                            .is_some_and(|i| i.orphan)
                        {
                            l.orphan = true;
                        }
                    }
                    Master::Remote(m) => {
                        if m != 0 && !masters_told.contains(&m) {
                            masters_told.push(m);
                        }
                        if l.flags & lkf::PERSISTENT != 0 && l.grmode >= 0 && !l.releasing {
                            l.orphan = true;
                        } else {
                            // A request not granted yet is cancelled, even
                            // PERSISTENT (spec §6.1): the master may grant it
                            // before it hears of the close, so it is told.
                            if l.grmode < 0 && m != me && m != 0 {
                                silent_cancels.push((m, id));
                            }
                            ls.retire_id(id, m);
                        }
                    }
                    Master::Unknown => {
                        // Its request waits for the directory: that answer
                        // must not apply it to a later lock with this id.
                        ls.end_parked_request(id);
                    }
                }
            }
        }
        for (m, lkid) in silent_cancels {
            self.send_after_recovery(
                m,
                PeerMsg::Unlock {
                    ls: ls_name.clone(),
                    lkid,
                    flags: 0,
                    lvb: None,
                    silent: true,
                },
            );
        }
        if self.recovering() {
            self.close_after_recovery(&ls_name, owner.0);
        } else {
            for m in masters_told {
                if m != me {
                    self.send(
                        m,
                        PeerMsg::CloseOwner {
                            ls: ls_name.clone(),
                            owner: owner.0,
                        },
                    );
                }
            }
        }
        self.flush(&ls_name);
    }

    /// `dlm_release_lockspace`: close the handle, then drop one creation
    /// reference; the last one destroys the lockspace unless locks remain
    /// and `force` is 0 (spec §2.10). The outcome of the removal is not
    /// reported, exactly like libdlm.
    pub fn release(&mut self, owner: Owner, force: u32) -> Result<(), Errno> {
        let ls_name = self.handles.get(&owner).ok_or(Errno::NoEnt)?.ls.clone();
        self.close(owner);
        let Some(ls_name) = ls_name else {
            return Ok(());
        };
        let Some(ls) = self.lockspaces.get_mut(&ls_name) else {
            return Ok(());
        };
        if ls.create_count > 1 {
            ls.create_count -= 1;
            return Ok(());
        }
        if force == 0 && ls.has_locks() {
            return Ok(());
        }
        if force != 0 {
            // Destroying the lockspace drops this node's orphans with it
            // (dlm_tool leave after lvmlockd died), wherever they are
            // mastered; other nodes' locks it masters stay.
            self.purge_orphans(&ls_name, 0);
            self.flush(&ls_name);
        }
        let Some(ls) = self.lockspaces.get_mut(&ls_name) else {
            return Ok(());
        };
        ls.create_count = 0;
        ls.visible = false;
        if self.cluster.nodes.len() <= 1 {
            self.lockspaces.remove(&ls_name);
        } else {
            // Masterships of names without locks are given up now, with the
            // directory told, so that nobody is sent here to a lockspace
            // that no longer exists (the next asker becomes the master).
            let idle: Vec<ResName> = ls
                .masters
                .iter()
                .filter(|(n, &m)| m == self.node_id && !ls.engine.has_resource(n.as_bytes()))
                .map(|(n, _)| *n)
                .collect();
            for name in idle {
                self.give_up_mastership(&ls_name, name);
            }
            self.forget_if_unused(&ls_name);
        }
        for h in self.handles.values_mut() {
            if h.ls.as_deref() == Some(&ls_name[..]) {
                h.ls = None;
            }
        }
        Ok(())
    }

    // ----- lock operations from handles ----------------------------------

    /// A lock request, conversion or orphan adoption. Returns the lock id.
    pub fn lock(&mut self, owner: Owner, a: LockArgs<'_>) -> Result<u32, Errno> {
        let ls_name = self.ls_of(owner)?;
        let flags = a.flags & !lkf::WAIT;
        let timed = flags & lkf::TIMEOUT != 0
            && flags & lkf::ORPHAN == 0
            && self
                .lockspaces
                .get(&ls_name)
                .is_some_and(|l| l.features & lsfl::UDLM_TIMEOUT != 0);
        if timed && self.timers.len() >= MAX_TIMERS {
            self.prune_timers();
            if self.timers.len() >= MAX_TIMERS {
                return Err(Errno::NoMem);
            }
        }
        let r = if flags & lkf::CONVERT != 0 {
            self.convert(&ls_name, owner, &a, flags).map(|_| a.lkid)
        } else if flags & lkf::ORPHAN != 0 {
            self.adopt(&ls_name, owner, &a, flags)
        } else {
            self.request(&ls_name, owner, &a, flags)
        };
        if let Ok(id) = r {
            let deadline = timed.then(|| self.now_ms + a.timeout_cs.min(MAX_TIMEOUT_CS) * 10);
            self.set_timer(TIMER_TIMEOUT, &ls_name, id, deadline);
        }
        self.flush(&ls_name);
        if let Ok(id) = r {
            if self.deadlock_detect_ms > 0
                && flags & lkf::ORPHAN == 0
                && self.timers.len() < MAX_TIMERS
            {
                let check = self
                    .lock_waits(&ls_name, id)
                    .then(|| self.now_ms + self.deadlock_detect_ms);
                self.set_timer(TIMER_DEADLOCK_CHECK, &ls_name, id, check);
            }
        }
        r
    }

    // ----- lock timeouts (udlm extension) ---------------------------------
    //
    // Decisions: the clock starts when the request or conversion is made
    // (not when it is queued); a timeout of 0 (or none passed) ends a
    // request not granted at once at the next tick, as the kernels that had
    // timeouts did; the timer runs on the requesting node, which ends a
    // waiting lock itself when it masters the resource and else asks the
    // master; a grant that wins the race is kept.

    /// Sets (or with None clears) lock `id`'s timer of `kind`.
    fn set_timer(&mut self, kind: u8, ls_name: &[u8], id: u32, when: Option<u64>) {
        let Some(l) = self
            .lockspaces
            .get_mut(ls_name)
            .and_then(|ls| ls.locks.get_mut(&id))
        else {
            return;
        };
        let slot = if kind == TIMER_TIMEOUT {
            &mut l.deadline_ms
        } else {
            &mut l.wait_check_ms
        };
        if let Some(old) = slot.take() {
            self.timers.remove(&(old, kind, ls_name.to_vec(), id));
        }
        if let Some(t) = when {
            *slot = Some(t);
            self.timers.insert((t, kind, ls_name.to_vec(), id));
        }
    }

    /// Lock `id`'s deadlock check came due: if it still waits, ask for a
    /// round, and look again after as long.
    fn deadlock_check_due(&mut self, ls_name: &[u8], id: u32, due: u64) {
        let current = self
            .lockspaces
            .get_mut(ls_name)
            .and_then(|ls| ls.locks.get_mut(&id))
            .is_some_and(|l| l.wait_check_ms == Some(due));
        if !current {
            return;
        }
        if !self.lock_waits(ls_name, id) || self.deadlock_detect_ms == 0 {
            self.set_timer(TIMER_DEADLOCK_CHECK, ls_name, id, None);
            return;
        }
        self.ask_for_round(ls_name);
        let next = self.now_ms + self.deadlock_detect_ms;
        self.set_timer(TIMER_DEADLOCK_CHECK, ls_name, id, Some(next));
    }

    /// Drops timer entries whose lock is gone or has another time.
    fn prune_timers(&mut self) {
        let lockspaces = &self.lockspaces;
        self.timers.retain(|(t, kind, ls, id)| {
            lockspaces
                .get(ls)
                .and_then(|l| l.locks.get(id))
                .is_some_and(|l| {
                    let slot = if *kind == TIMER_TIMEOUT {
                        l.deadline_ms
                    } else {
                        l.wait_check_ms
                    };
                    slot == Some(*t)
                })
        });
    }

    /// Ends the waiting requests and conversions whose timeout has come.
    fn expire_timers(&mut self) {
        let now = self.now_ms;
        while let Some(first) = self.timers.first() {
            if first.0 > now {
                break;
            }
            let (deadline, kind, ls_name, id) = self.timers.pop_first().expect("a timer");
            if kind == TIMER_DEADLOCK_CHECK {
                self.deadlock_check_due(&ls_name, id, deadline);
                continue;
            }
            let Some(ls) = self.lockspaces.get_mut(&ls_name) else {
                continue;
            };
            let Some(l) = ls.locks.get_mut(&id) else {
                continue;
            };
            if l.deadline_ms != Some(deadline) {
                continue;
            }
            l.deadline_ms = None;
            if l.orphan || l.releasing || l.overlap_unlock {
                continue;
            }
            match l.master {
                Master::Local(elkid) => {
                    ls.engine.end_wait(LockId(elkid), Status::TimedOut);
                }
                Master::Unknown => {
                    // Still waiting for the directory's answer: the request
                    // never reached a master and simply ends here.
                    let cb = Self::callback_for(l, false, Status::TimedOut.to_user(), 0, None);
                    self.out.push((l.owner, (id, l.incarnation), cb.encode()));
                    ls.end_parked_request(id);
                }
                Master::Remote(m) => {
                    if l.state == RemoteState::Granted || l.cancelling {
                        continue;
                    }
                    let retry = now + TIMEOUT_RETRY_MS;
                    l.deadline_ms = Some(retry);
                    self.timers
                        .insert((retry, TIMER_TIMEOUT, ls_name.clone(), id));
                    self.send(
                        m,
                        PeerMsg::Timeout {
                            ls: ls_name.clone(),
                            lkid: id,
                        },
                    );
                }
            }
            self.flush(&ls_name);
        }
    }

    fn request(
        &mut self,
        ls_name: &[u8],
        owner: Owner,
        a: &LockArgs<'_>,
        flags: u32,
    ) -> Result<u32, Errno> {
        check_lock_args(a.mode as i32, flags)?;
        let (name, parent) = self.request_name(ls_name, owner, a)?;
        let near = parent.and_then(|p| match self.lockspaces[ls_name].locks[&p].master {
            Master::Local(_) => Some(self.node_id),
            Master::Remote(m) => Some(m),
            Master::Unknown => None,
        });
        let master = self.master_near(ls_name, &name, near);
        let me = self.node_id;
        let ls = self.lockspaces.get_mut(ls_name).expect("lockspace");
        let local_master = master == Some(me);
        let elkid = if local_master {
            let req = EngineRequest {
                owner,
                pid: a.tid,
                mode: a.mode as i32,
                flags,
                name: name.as_bytes(),
                lvb: a.lvb.as_ref(),
                has_bast: a.user.bast != 0,
            };
            Some(ls.engine.request(req)?.0)
        } else if ls.locks.len() as u32 >= self.limits.max_locks_per_lockspace {
            return Err(Errno::NoMem);
        } else {
            None
        };
        let id = ls.alloc_id();
        ls.next_incarnation = ls.next_incarnation.wrapping_add(1);
        let lock = LocalLock {
            owner,
            user: a.user,
            name,
            master: match (elkid, master) {
                (Some(e), _) => Master::Local(e),
                (None, Some(m)) => Master::Remote(m),
                (None, None) => Master::Unknown,
            },
            state: RemoteState::InFlight,
            grmode: -1,
            flags,
            pid: a.tid,
            orphan: false,
            overlap_unlock: false,
            incarnation: ls.next_incarnation,
            request: None,
            silent_completions: 0,
            convert_resend: false,
            resend: RequestResend::None,
            demoted: false,
            releasing: false,
            convert: None,
            cancelling: false,
            lvb: None,
            deadline_ms: None,
            wait_check_ms: None,
            parent: None,
            children: 0,
        };
        ls.locks.insert(id, lock);
        *ls.name_refs.entry(name).or_insert(0) += 1;
        if let Some(p) = parent {
            if let Some(l) = ls.locks.get_mut(&id) {
                l.parent = Some(p);
            }
            if let Some(pl) = ls.locks.get_mut(&p) {
                pl.children += 1;
            }
        }
        if let Some(e) = elkid {
            ls.holders.insert(e, Holder::Local(id));
            return Ok(id);
        }
        let lvb = if flags & lkf::VALBLK != 0 {
            a.lvb
        } else {
            None
        };
        if let Some(l) = ls.locks.get_mut(&id) {
            l.request = Some((a.mode, flags, lvb));
        }
        match master {
            Some(m) => self.send_request(ls_name, m, id, a.mode, flags, lvb),
            None => self.park(
                ls_name,
                name,
                Parked::Request {
                    lkid: id,
                    mode: a.mode,
                    flags,
                    lvb,
                },
            ),
        }
        Ok(id)
    }

    /// The resource a new request names, and its parent lock: in a
    /// hierarchical lockspace a non-zero `parent` must be a granted lock of
    /// the same handle, and the resource is a child of its resource
    /// (node/hierarchy.rs); elsewhere `parent` is ignored, as by the kernel.
    fn request_name(
        &self,
        ls_name: &[u8],
        owner: Owner,
        a: &LockArgs<'_>,
    ) -> Result<(ResName, Option<u32>), Errno> {
        let name = ResName::new(a.name).ok_or(Errno::Inval)?;
        let ls = self.lockspaces.get(ls_name).expect("lockspace");
        if ls.features & lsfl::UDLM_HIERARCHY == 0 {
            return Ok((name, None));
        }
        if a.parent == 0 {
            if hierarchy::is_child_name(a.name) {
                return Err(Errno::Inval);
            }
            return Ok((name, None));
        }
        let p = ls
            .locks
            .get(&a.parent)
            .filter(|p| p.owner == owner && !p.orphan && !p.releasing && p.grmode >= 0)
            .ok_or(Errno::Inval)?;
        if a.name.is_empty() {
            return Err(Errno::Inval);
        }
        Ok((hierarchy::child_name(&p.name, a.name), Some(a.parent)))
    }

    fn send_request(
        &mut self,
        ls_name: &[u8],
        m: u32,
        id: u32,
        mode: u8,
        flags: u32,
        lvb: Option<Lvb>,
    ) {
        let Some(l) = self
            .lockspaces
            .get(ls_name)
            .and_then(|ls| ls.locks.get(&id))
        else {
            return;
        };
        let msg = PeerMsg::Request {
            ls: ls_name.to_vec(),
            name: l.name.as_bytes().to_vec(),
            lkid: id,
            owner: l.owner.0,
            pid: l.pid,
            mode,
            flags,
            lvb,
            has_bast: l.user.bast != 0,
        };
        self.send(m, msg);
    }

    fn convert(
        &mut self,
        ls_name: &[u8],
        caller: Owner,
        a: &LockArgs<'_>,
        flags: u32,
    ) -> Result<(), Errno> {
        let owner = self.owner_acted_for(ls_name, caller, a.lkid)?;
        let ls = self.lockspaces.get_mut(ls_name).expect("lockspace");
        let l = ls.locks.get_mut(&a.lkid).expect("lock");
        // The kernel takes the new routines and lksb before validating.
        l.user = a.user;
        let mode = check_lock_args(a.mode as i32, flags | lkf::CONVERT)?;
        match l.master {
            Master::Local(elkid) => {
                let elkid = elkid;
                ls.engine.convert(
                    owner,
                    a.tid,
                    LockId(elkid),
                    a.mode as i32,
                    flags,
                    a.lvb.as_ref(),
                    a.user.bast != 0,
                )?;
                let l = ls.locks.get_mut(&a.lkid).expect("lock");
                l.flags = flags;
                l.pid = a.tid;
                Ok(())
            }
            Master::Unknown => Err(Errno::Busy),
            Master::Remote(m) => {
                if l.state != RemoteState::Granted || l.releasing {
                    return Err(Errno::Busy);
                }
                if flags & lkf::QUECVT != 0 && !quecvt_legal(l.grmode, mode) {
                    return Err(Errno::Inval);
                }
                l.flags = flags;
                l.pid = a.tid;
                let lvb = if flags & lkf::VALBLK != 0 {
                    a.lvb
                } else {
                    None
                };
                let from = l.grmode;
                let to = mode as i8;
                if lvb.is_some() && from >= Mode::Pw as i8 && to <= from {
                    // Written by this conversion: what a recovery must
                    // rebuild, not the value last read.
                    l.lvb = lvb;
                }
                let middle = (from == Mode::Pr as i8 && to == Mode::Cw as i8)
                    || (from == Mode::Cw as i8 && to == Mode::Pr as i8);
                if to < from && !middle {
                    // A down-conversion is always granted: like the kernel,
                    // complete it here at once and let the master follow
                    // (its completion will be dropped). Only a read or
                    // no-op transition hands the caller's LVB back.
                    l.grmode = to;
                    l.silent_completions += 1;
                    let back = if from <= Mode::Pr as i8 { lvb } else { None };
                    let cb = Self::callback_for(l, false, Status::Granted.to_user(), 0, back);
                    self.out
                        .push((l.owner, (a.lkid, l.incarnation), cb.encode()));
                } else {
                    l.state = RemoteState::InFlight;
                    l.convert = Some((a.mode, flags));
                }
                let msg = PeerMsg::Convert {
                    ls: ls_name.to_vec(),
                    lkid: a.lkid,
                    pid: a.tid,
                    mode: a.mode,
                    flags,
                    lvb,
                    has_bast: a.user.bast != 0,
                };
                self.send(m, msg);
                Ok(())
            }
        }
    }

    fn adopt(
        &mut self,
        ls_name: &[u8],
        owner: Owner,
        a: &LockArgs<'_>,
        flags: u32,
    ) -> Result<u32, Errno> {
        let ls = self.lockspaces.get_mut(ls_name).expect("lockspace");
        let req = EngineRequest {
            owner,
            pid: a.tid,
            mode: a.mode as i32,
            flags,
            name: a.name,
            lvb: None,
            has_bast: a.user.bast != 0,
        };
        // Orphans this node's handles left on resources mastered here...
        let local = ls.engine.adopt_orphan_where(req, is_local_owner);
        match local {
            Ok(elkid) => {
                if let Some(Holder::Local(id)) = ls.holders.get(&elkid.0).copied() {
                    let granted = ls
                        .engine
                        .lock_info_by_id(elkid)
                        .and_then(|i| i.granted)
                        .map_or(-1, |m| m as i8);
                    if let Some(l) = ls.locks.get_mut(&id) {
                        l.owner = owner;
                        l.orphan = false;
                        l.user = a.user;
                        l.flags = flags;
                        l.pid = a.tid;
                        // A request granted silently while the old handle
                        // closed was never seen here: the engine says how
                        // the orphan stands (a parent must be granted).
                        l.grmode = granted;
                        l.state = RemoteState::Granted;
                        l.request = None;
                        l.convert = None;
                    }
                    return Ok(id);
                }
                return Err(Errno::NoEnt);
            }
            Err(Errno::NoEnt) | Err(Errno::Again) => {}
            Err(e) => return Err(e),
        }
        let engine_other_mode = matches!(local, Err(Errno::Again));
        // ...and those on resources mastered elsewhere.
        let mut other_mode = engine_other_mode;
        let mut found = None;
        let mut ids: Vec<u32> = ls
            .locks
            .iter()
            .filter(|(_, l)| l.orphan)
            .map(|(&id, _)| id)
            .collect();
        ids.sort_unstable();
        for id in ids {
            let l = &ls.locks[&id];
            // Orphans mastered here were the engine's to find above (its
            // mode is the true one: a conversion may have been granted
            // silently while the handle closed).
            if l.name.as_bytes() != a.name || matches!(l.master, Master::Local(_)) {
                continue;
            }
            if l.grmode as i32 != a.mode as i32 {
                other_mode = true;
                continue;
            }
            found = Some(id);
            break;
        }
        let Some(id) = found else {
            return Err(if other_mode {
                Errno::Again
            } else {
                Errno::NoEnt
            });
        };
        let l = ls.locks.get_mut(&id).expect("lock");
        l.owner = owner;
        l.orphan = false;
        l.user = a.user;
        l.flags = flags;
        l.pid = a.tid;
        // The master cancelled whatever was pending when it orphaned the
        // lock: an orphan is simply granted, with nothing to send again
        // after a recovery.
        l.state = RemoteState::Granted;
        l.convert = None;
        l.cancelling = false;
        if let Master::Remote(m) = l.master {
            let msg = PeerMsg::Adopt {
                ls: ls_name.to_vec(),
                lkid: id,
                owner: owner.0,
                pid: a.tid,
                flags,
                has_bast: a.user.bast != 0,
            };
            self.send(m, msg);
        }
        Ok(id)
    }

    /// Whether an adoption (`LKF_ORPHAN`) of `name` by handle `owner` should
    /// wait: an orphan of that name mastered elsewhere had a conversion
    /// pending when its handle closed, and its master has not yet said what
    /// became of it (`OrphanMode`, `OwnerClosed`), so its mode is not known.
    pub fn adoption_unsettled(&self, owner: Owner, name: &[u8]) -> bool {
        let Some(ls) = self
            .handles
            .get(&owner)
            .and_then(|h| h.ls.as_ref())
            .and_then(|n| self.lockspaces.get(n))
        else {
            return false;
        };
        ls.locks.values().any(|l| {
            l.orphan
                && l.state != RemoteState::Granted
                && matches!(l.master, Master::Remote(_))
                && l.name.as_bytes() == name
        })
    }

    /// Unlock or cancel. `astarg` 0 keeps the lock's argument; the lksb of
    /// the call becomes the lock's (spec §2.5). Returns 1 when no callback
    /// will follow (a cancel with nothing to cancel), else 0.
    pub fn unlock(
        &mut self,
        owner: Owner,
        lkid: u32,
        flags: u32,
        lvb: Option<Lvb>,
        astarg: u64,
        lksb: u64,
    ) -> Result<u64, Errno> {
        let ls_name = self.ls_of(owner)?;
        let flags = flags & !lkf::WAIT;
        let lvb = if flags & lkf::VALBLK != 0 { lvb } else { None };
        let r = self.unlock_inner(&ls_name, owner, lkid, flags, lvb, astarg, lksb);
        self.flush(&ls_name);
        r
    }

    #[allow(clippy::too_many_arguments)]
    fn unlock_inner(
        &mut self,
        ls_name: &[u8],
        caller: Owner,
        lkid: u32,
        flags: u32,
        lvb: Option<Lvb>,
        astarg: u64,
        lksb: u64,
    ) -> Result<u64, Errno> {
        let owner = self.owner_acted_for(ls_name, caller, lkid)?;
        let ls = self.lockspaces.get_mut(ls_name).expect("lockspace");
        let l = ls.locks.get_mut(&lkid).expect("lock");
        if astarg != 0 {
            l.user.astarg = astarg;
        }
        l.user.lksb = lksb;
        check_unlock_flags(flags)?;
        if l.children > 0 && flags & lkf::CANCEL == 0 {
            // Its children go first (node/hierarchy.rs).
            return Err(Errno::NotEmpty);
        }
        match l.master {
            Master::Local(elkid) => {
                ls.engine
                    .unlock(owner, LockId(elkid), flags, lvb.as_ref())?;
                let silent = !ls
                    .engine
                    .pending_events()
                    .iter()
                    .any(|e| e.lkid().0 == elkid && e.owner() == owner);
                Ok(silent as u64)
            }
            Master::Unknown => {
                // Still waiting for the directory: a cancel or force-unlock
                // ends the request here; a plain unlock must wait.
                if flags & (lkf::CANCEL | lkf::FORCEUNLOCK) == 0 {
                    return Err(Errno::Busy);
                }
                let status = if flags & lkf::CANCEL != 0 {
                    Status::Cancelled
                } else {
                    Status::Unlocked
                };
                let cb = Self::callback_for(l, false, status.to_user(), 0, None);
                let key = (lkid, l.incarnation);
                self.out.push((owner, key, cb.encode()));
                let ls = self.lockspaces.get_mut(ls_name).expect("lockspace");
                ls.end_parked_request(lkid);
                Ok(0)
            }
            Master::Remote(m) => {
                // An unlock already on its way: the kernel refuses a cancel
                // or force-unlock (EINVAL) and a plain unlock (EBUSY).
                if l.releasing {
                    return Err(if flags & (lkf::CANCEL | lkf::FORCEUNLOCK) != 0 {
                        Errno::Inval
                    } else {
                        Errno::Busy
                    });
                }
                if flags & lkf::CANCEL != 0 {
                    if l.state == RemoteState::Granted {
                        return Ok(1);
                    }
                    if l.cancelling {
                        // A cancel is on its way already: 0 and no second
                        // one (spec 6.4), whose refusal by the master, once
                        // the first had reverted the conversion, would end a
                        // later conversion with EINVAL (sim seed 4149973).
                        return Ok(0);
                    }
                    l.cancelling = true;
                } else if l.state == RemoteState::InFlight {
                    if flags & lkf::FORCEUNLOCK == 0 {
                        return Err(Errno::Busy);
                    }
                    l.overlap_unlock = true;
                }
                if flags & lkf::CANCEL == 0 {
                    l.releasing = true;
                }
                let msg = PeerMsg::Unlock {
                    ls: ls_name.to_vec(),
                    lkid,
                    flags,
                    lvb,
                    silent: false,
                };
                self.send(m, msg);
                Ok(0)
            }
        }
    }

    /// The owner of lock `lkid` of lockspace `ls_name`, for a conversion,
    /// unlock or cancel by handle `caller`. The kernel finds a lock by its
    /// id alone, so a second handle may act on a lock of the first: the
    /// lock stays the first's, and its completions go there, with the
    /// routine, argument and lksb of the call (checked on the kernel:
    /// capi-tests/cases/lock_of_another_handle.c). udlm allows this between
    /// handles of one process only. The kernel also lets another process
    /// do it, but then that process's routine and lksb pointers would be
    /// used in the owner's process, where they point nowhere. So a handle
    /// of another process gets ENOENT, as for an unknown id. Orphans are
    /// adopted, not acted on (ENOENT).
    fn owner_acted_for(&self, ls_name: &[u8], caller: Owner, lkid: u32) -> Result<Owner, Errno> {
        let owner = self
            .lockspaces
            .get(ls_name)
            .and_then(|ls| ls.locks.get(&lkid))
            .filter(|l| !l.orphan)
            .map(|l| l.owner)
            .ok_or(Errno::NoEnt)?;
        let pid = |o: &Owner| self.handles.get(o).map(|h| h.creds.pid);
        if owner == caller || pid(&owner).is_some_and(|p| Some(p) == pid(&caller)) {
            Ok(owner)
        } else {
            Err(Errno::NoEnt)
        }
    }

    pub fn deadlock_cancel(&mut self, caller: Owner, lkid: u32, flags: u32) -> Result<(), Errno> {
        let ls_name = self.ls_of(caller)?;
        let owner = self.owner_acted_for(&ls_name, caller, lkid)?;
        let ls = self.lockspaces.get_mut(&ls_name).expect("lockspace");
        let l = ls.locks.get(&lkid).expect("lock");
        check_unlock_flags(flags)?;
        let r = match l.master {
            Master::Local(elkid) => ls.engine.deadlock_cancel(owner, LockId(elkid), flags),
            Master::Unknown => Ok(()),
            Master::Remote(m) => {
                let msg = PeerMsg::DeadlockCancel {
                    ls: ls_name.clone(),
                    lkid,
                    flags,
                };
                self.send(m, msg);
                Ok(())
            }
        };
        self.flush(&ls_name);
        r
    }

    /// `dlm_ls_purge` (spec §2.11). `tid` is the calling thread's id: when it
    /// equals `pid` the caller's own locks go, silently.
    pub fn purge(&mut self, owner: Owner, nodeid: u32, pid: u32, tid: u32) -> Result<(), Errno> {
        let ls_name = self.ls_of(owner)?;
        if nodeid != 0 && nodeid != self.node_id {
            if self.cluster.nodes.contains(&nodeid) {
                self.send(
                    nodeid,
                    PeerMsg::PurgeOrphans {
                        ls: ls_name.clone(),
                        pid,
                    },
                );
            }
            return Ok(());
        }
        if pid == tid {
            self.purge_owner(&ls_name, owner);
            if let Some(s) = self.handles.get(&owner).and_then(|h| h.sink.as_ref()) {
                s.discard_backlog();
            }
            self.out.retain(|(o, _, _)| *o != owner);
        } else {
            self.purge_orphans(&ls_name, pid);
        }
        self.flush(&ls_name);
        Ok(())
    }

    fn purge_owner(&mut self, ls_name: &[u8], owner: Owner) {
        let Some(ls) = self.lockspaces.get_mut(ls_name) else {
            return;
        };
        ls.engine.purge_owner(owner);
        self.release_remote_locks(ls_name, |l| l.owner == owner && !l.orphan);
    }

    fn purge_orphans(&mut self, ls_name: &[u8], pid: u32) {
        let Some(ls) = self.lockspaces.get_mut(ls_name) else {
            return;
        };
        ls.engine.purge_orphans_where(pid, is_local_owner);
        self.release_remote_locks(ls_name, |l| l.orphan && (pid == 0 || l.pid == pid));
    }

    /// Releases silently (FORCEUNLOCK|IVVALBLK, no callback) the remotely
    /// mastered locks that `which` selects. Their ids stay in reserve until
    /// each master confirms, after the unlocks, the close of a fresh owner
    /// key that names this release: whatever it still sends about the old
    /// locks (a grant on its way) arrives before that.
    fn release_remote_locks(&mut self, ls_name: &[u8], which: impl Fn(&LocalLock) -> bool) {
        let key = self.next_owner;
        let Some(ls) = self.lockspaces.get_mut(ls_name) else {
            return;
        };
        let mut victims: Vec<(u32, u32)> = ls
            .locks
            .iter()
            .filter_map(|(&id, l)| match l.master {
                Master::Remote(m) if which(l) => Some((id, m)),
                _ => None,
            })
            .collect();
        victims.sort_unstable();
        if victims.is_empty() {
            return;
        }
        for &(id, m) in &victims {
            ls.retire_id_until(id, m, key);
        }
        self.next_owner += 1;
        let flags = lkf::FORCEUNLOCK | lkf::IVVALBLK;
        let mut masters: Vec<u32> = Vec::new();
        for (id, m) in victims {
            if !masters.contains(&m) {
                masters.push(m);
            }
            self.send(
                m,
                PeerMsg::Unlock {
                    ls: ls_name.to_vec(),
                    lkid: id,
                    flags,
                    lvb: None,
                    silent: true,
                },
            );
        }
        for m in masters {
            self.send(
                m,
                PeerMsg::CloseOwner {
                    ls: ls_name.to_vec(),
                    owner: key,
                },
            );
        }
    }

    // ----- messages from other nodes -------------------------------------

    /// A message from node `from` (in order, exactly once per peer).
    pub fn on_peer_message(&mut self, from: u32, payload: &[u8]) {
        let msg = match PeerMsg::decode(payload) {
            Ok(m) => m,
            Err(e) => {
                eprintln!(
                    "udlmd: dropping a malformed message from node {from}: {}",
                    e.0
                );
                return;
            }
        };
        if self.trace {
            eprintln!("udlmd: node {} <- node {from}: {msg:?}", self.node_id);
        }
        if msg.is_membership() {
            self.membership_message(from, msg);
            return;
        }
        if !self.admit(from, payload) {
            return;
        }
        if Self::is_deadlock_message(&msg) {
            self.deadlock_message(from, msg);
            return;
        }
        if Self::is_inspect_message(&msg) {
            self.inspect_message(from, msg);
            return;
        }
        let ls_name = msg.lockspace().to_vec();
        if !self.lockspaces.contains_key(&ls_name) {
            if self.lockspaces.len() >= self.limits.max_lockspaces {
                eprintln!("udlmd: too many lockspaces; dropping a message from node {from}");
                return;
            }
            let max = self.limits.max_locks_per_lockspace;
            self.lockspaces.insert(ls_name.clone(), Lockspace::new(max));
        }
        if matches!(
            msg,
            PeerMsg::DirRecord { .. } | PeerMsg::DirHint { .. } | PeerMsg::RecLock { .. }
        ) {
            self.recovery_message(from, msg);
        } else {
            self.handle_peer_message(from, msg);
        }
        self.flush(&ls_name);
    }

    /// A look-up from `from`, this node being the name's directory node.
    fn look_up(&mut self, from: u32, ls: Vec<u8>, name: Vec<u8>, near: Option<u32>) {
        let Some(rn) = ResName::new(&name) else {
            return;
        };
        if let Some(master) = self.direct(&ls, &rn, from, near) {
            self.send(from, PeerMsg::LookupReply { ls, name, master });
        }
    }

    fn handle_peer_message(&mut self, from: u32, msg: PeerMsg) {
        let me = self.node_id;
        match msg {
            PeerMsg::Lookup { ls, name } => self.look_up(from, ls, name, None),
            PeerMsg::LookupReply { ls, name, master } => {
                let Some(rn) = ResName::new(&name) else {
                    return;
                };
                self.resolved(&ls, rn, master);
            }
            PeerMsg::LookupNear { ls, name, near } => self.look_up(from, ls, name, Some(near)),
            PeerMsg::Assign { ls, name, asker } => {
                let Some(rn) = ResName::new(&name) else {
                    return;
                };
                if self.operations_blocked() {
                    // Sent before a recovery that clears the directory and
                    // makes the asker look again: mastering it now would
                    // leave a master the rebuilt directory does not know.
                    return;
                }
                let l = self.lockspaces.get_mut(&ls).expect("lockspace");
                l.masters.insert(rn, me);
                if asker == me {
                    self.resolved(&ls, rn, me);
                } else {
                    self.send(
                        asker,
                        PeerMsg::LookupReply {
                            ls,
                            name,
                            master: me,
                        },
                    );
                }
            }
            PeerMsg::Request {
                ls,
                name,
                lkid,
                owner,
                pid,
                mode,
                flags,
                lvb,
                has_bast,
            } => {
                let Some(rn) = ResName::new(&name) else {
                    return self.refuse(from, &ls, lkid, Errno::Inval);
                };
                let static_master = self.cluster.nodir(&ls)
                    && directory_node(&name, &self.weighted_members(&ls)) == Some(me);
                let l = self.lockspaces.get_mut(&ls).expect("lockspace");
                if !static_master && l.masters.get(&rn) != Some(&me) {
                    // A stale answer: the asker must consult the directory.
                    self.send(from, PeerMsg::NotMaster { ls, lkid });
                    return;
                }
                l.masters.insert(rn, me);
                l.idle_since.remove(&rn);
                if let Some(&e) = l.remote_index.get(&(from, lkid)) {
                    // Sent again by a recovery while this node kept it: if
                    // it still waits, the sender hears so again (its copy
                    // counts the request as in flight until answered).
                    let waiting = l
                        .engine
                        .lock_info_by_id(LockId(e))
                        .is_some_and(|i| i.granted.is_none());
                    if waiting {
                        self.send(from, PeerMsg::Queued { ls, lkid });
                    }
                    return;
                }
                let req = EngineRequest {
                    owner: remote_owner(from, owner),
                    pid,
                    mode: mode as i32,
                    flags,
                    name: &name,
                    lvb: lvb.as_ref(),
                    has_bast,
                };
                match l.engine.request(req) {
                    Ok(elkid) => {
                        l.holders.insert(elkid.0, Holder::Remote(from, lkid));
                        l.remote_index.insert((from, lkid), elkid.0);
                        let answered =
                            l.engine.pending_events().iter().any(
                                |e| matches!(e, Event::Completion { lkid: x, .. } if *x == elkid),
                            );
                        if !answered {
                            self.send(from, PeerMsg::Queued { ls, lkid });
                        }
                    }
                    Err(e) => self.refuse(from, &ls, lkid, e),
                }
            }
            PeerMsg::Convert {
                ls,
                lkid,
                pid,
                mode,
                flags,
                lvb,
                has_bast,
            } => {
                let l = self.lockspaces.get_mut(&ls).expect("lockspace");
                let Some(&elkid) = l.remote_index.get(&(from, lkid)) else {
                    return self.refuse(from, &ls, lkid, Errno::NoEnt);
                };
                let owner = l.engine.lock_owner(LockId(elkid)).unwrap_or(Owner(0));
                let already = l.engine.lock_info_by_id(LockId(elkid)).is_some_and(|i| {
                    i.queue == crate::engine::QueueKind::Converting
                        && i.requested.is_some_and(|r| r as u8 == mode)
                });
                if already {
                    // Sent again by a recovery: the conversion still waits,
                    // as the sender hears again.
                    self.send(from, PeerMsg::Queued { ls, lkid });
                    return;
                }
                match l.engine.convert(
                    owner,
                    pid,
                    LockId(elkid),
                    mode as i32,
                    flags,
                    lvb.as_ref(),
                    has_bast,
                ) {
                    Ok(()) => {
                        let answered = l.engine.pending_events().iter().any(
                            |e| matches!(e, Event::Completion { lkid: x, .. } if x.0 == elkid),
                        );
                        if !answered {
                            self.send(from, PeerMsg::Queued { ls, lkid });
                        }
                    }
                    Err(e) => self.refuse(from, &ls, lkid, e),
                }
            }
            PeerMsg::Unlock {
                ls,
                lkid,
                flags,
                lvb,
                silent,
            } => {
                let l = self.lockspaces.get_mut(&ls).expect("lockspace");
                let Some(&elkid) = l.remote_index.get(&(from, lkid)) else {
                    return;
                };
                if silent {
                    let _ = l.engine.release_lock_silently(LockId(elkid));
                } else {
                    let owner = l.engine.lock_owner(LockId(elkid)).unwrap_or(Owner(0));
                    if let Err(e) = l.engine.unlock(owner, LockId(elkid), flags, lvb.as_ref()) {
                        self.refuse(from, &ls, lkid, e);
                    }
                }
            }
            PeerMsg::DeadlockCancel { ls, lkid, flags } => {
                let l = self.lockspaces.get_mut(&ls).expect("lockspace");
                let Some(&elkid) = l.remote_index.get(&(from, lkid)) else {
                    return;
                };
                let owner = l.engine.lock_owner(LockId(elkid)).unwrap_or(Owner(0));
                let _ = l.engine.deadlock_cancel(owner, LockId(elkid), flags);
            }
            PeerMsg::Timeout { ls, lkid } => {
                let l = self.lockspaces.get_mut(&ls).expect("lockspace");
                if let Some(&elkid) = l.remote_index.get(&(from, lkid)) {
                    l.engine.end_wait(LockId(elkid), Status::TimedOut);
                }
            }
            PeerMsg::CloseOwner { ls, owner } => {
                let l = self.lockspaces.get_mut(&ls).expect("lockspace");
                let closing = remote_owner(from, owner);
                let granted = |l: &Lockspace, e: u32| {
                    l.engine
                        .lock_info_by_id(LockId(e))
                        .map(|i| i.granted.map_or(-1, |m| m as i8))
                };
                let mut before: Vec<(u32, u32, Option<i8>)> = l
                    .remote_index
                    .iter()
                    .filter(|(&(n, _), &e)| {
                        n == from && l.engine.lock_owner(LockId(e)) == Some(closing)
                    })
                    .map(|(&(_, id), &e)| (id, e, granted(l, e)))
                    .collect();
                before.sort_unstable();
                l.engine.close_owner(closing);
                // The owner's node knows each orphan's mode as it last heard
                // it; releasing the other locks may have granted a pending
                // conversion silently, and orphaning cancels the others.
                for (id, e, was) in before {
                    let l = &self.lockspaces[&ls];
                    let orphaned = l
                        .engine
                        .lock_info_by_id(LockId(e))
                        .is_some_and(|i| i.orphan && i.owner == closing);
                    let now = granted(l, e);
                    if orphaned && now != was {
                        let mode = now.unwrap_or(-1);
                        self.send(
                            from,
                            PeerMsg::OrphanMode {
                                ls: ls.clone(),
                                lkid: id,
                                mode,
                            },
                        );
                    }
                }
                self.send(from, PeerMsg::OwnerClosed { ls, owner });
            }
            PeerMsg::OrphanMode { ls, lkid, mode } => {
                if let Some(l) = self
                    .lockspaces
                    .get_mut(&ls)
                    .and_then(|l| l.locks.get_mut(&lkid))
                    .filter(|l| l.orphan && l.master == Master::Remote(from))
                {
                    l.grmode = mode;
                }
            }
            PeerMsg::OwnerClosed { ls, owner } => {
                let l = self.lockspaces.get_mut(&ls).expect("lockspace");
                l.release_retired(Some(owner), from);
                // Its orphans there are settled: whatever was pending when
                // the handle closed has been granted or cancelled.
                for c in l.locks.values_mut() {
                    if c.orphan && c.owner.0 == owner && c.master == Master::Remote(from) {
                        c.state = RemoteState::Granted;
                        c.convert = None;
                        c.cancelling = false;
                    }
                }
            }
            PeerMsg::Adopt {
                ls,
                lkid,
                owner,
                pid,
                flags,
                has_bast,
            } => {
                let l = self.lockspaces.get_mut(&ls).expect("lockspace");
                if let Some(&elkid) = l.remote_index.get(&(from, lkid)) {
                    let _ = l.engine.adopt_orphan_id(
                        LockId(elkid),
                        remote_owner(from, owner),
                        pid,
                        flags,
                        has_bast,
                    );
                }
            }
            PeerMsg::PurgeOrphans { ls, pid } => self.purge_orphans(&ls, pid),
            PeerMsg::Cast {
                ls,
                lkid,
                status,
                sb_flags,
                lvb,
                mode,
                end_of_life,
            } => {
                // A grant comes from the node that holds the lock as its
                // master. A copy whose master this node lost track of in a
                // recovery (its name moved to a node that then left, sim
                // seed 5505319) is rebuilt from there by the next recovery,
                // not forgotten while its program holds it.
                if mode >= 0 && !end_of_life {
                    if let Some(l) = self
                        .lockspaces
                        .get_mut(&ls)
                        .and_then(|l| l.locks.get_mut(&lkid))
                        .filter(|l| !matches!(l.master, Master::Local(_)))
                    {
                        l.master = Master::Remote(from);
                    }
                }
                self.remote_completion(&ls, lkid, status, sb_flags, lvb, mode, end_of_life)
            }
            PeerMsg::Bast { ls, lkid, .. } => {
                let Some(l) = self.lockspaces.get(&ls).and_then(|l| l.locks.get(&lkid)) else {
                    return;
                };
                // No BAST for a lock whose grant the program never saw.
                if l.orphan || l.user.bast == 0 || l.overlap_unlock {
                    return;
                }
                let cb = Self::callback_for(l, true, 0, 0, None);
                self.out.push((l.owner, (lkid, l.incarnation), cb.encode()));
            }
            PeerMsg::Queued { ls, lkid } => {
                if let Some(l) = self
                    .lockspaces
                    .get_mut(&ls)
                    .and_then(|l| l.locks.get_mut(&lkid))
                {
                    // One copy of a request sent again is held there now.
                    l.resend = RequestResend::None;
                    if l.state == RemoteState::InFlight {
                        l.state = if l.grmode < 0 {
                            RemoteState::Waiting
                        } else {
                            RemoteState::Converting
                        };
                    }
                }
            }
            PeerMsg::Demoted { ls, lkid } => {
                if let Some(l) = self
                    .lockspaces
                    .get_mut(&ls)
                    .and_then(|l| l.locks.get_mut(&lkid))
                {
                    // Only a lock still waiting for its conversion: a
                    // completion that overtook this word settled the mode.
                    if l.convert.is_some() && l.grmode > 0 {
                        l.grmode = 0;
                        l.demoted = true;
                    }
                }
            }
            PeerMsg::NotMaster { ls, lkid } => {
                let Some(l) = self
                    .lockspaces
                    .get_mut(&ls)
                    .and_then(|l| l.locks.get_mut(&lkid))
                else {
                    return;
                };
                let Some((mode, flags, lvb)) = l.request else {
                    return;
                };
                let name = l.name;
                if l.overlap_unlock {
                    // Force-unlocked while in flight: it simply ends here.
                    let cb = Self::callback_for(l, false, Status::Unlocked.to_user(), 0, None);
                    self.out.push((l.owner, (lkid, l.incarnation), cb.encode()));
                    self.lockspaces
                        .get_mut(&ls)
                        .expect("lockspace")
                        .free_id(lkid);
                    return;
                }
                if l.cancelling {
                    // Cancelled while in flight, and it reached no master:
                    // the cancel (dropped there) completes here.
                    let cb = Self::callback_for(l, false, Status::Cancelled.to_user(), 0, None);
                    self.out.push((l.owner, (lkid, l.incarnation), cb.encode()));
                    self.lockspaces
                        .get_mut(&ls)
                        .expect("lockspace")
                        .free_id(lkid);
                    return;
                }
                l.master = Master::Unknown;
                let blocked = self.operations_blocked();
                let lsm = self.lockspaces.get_mut(&ls).expect("lockspace");
                lsm.masters.remove(&name);
                if blocked {
                    // A recovery is under way: ask again when it is over.
                    lsm.resend.push(recovery::Resend::Request(lkid));
                    return;
                }
                match self.master_of(&ls, &name) {
                    Some(m) if m == me => {
                        self.park(
                            &ls,
                            name,
                            Parked::Request {
                                lkid,
                                mode,
                                flags,
                                lvb,
                            },
                        );
                        self.resolved(&ls, name, me);
                    }
                    Some(m) => {
                        if let Some(l) = self
                            .lockspaces
                            .get_mut(&ls)
                            .and_then(|l| l.locks.get_mut(&lkid))
                        {
                            l.master = Master::Remote(m);
                        }
                        self.send_request(&ls, m, lkid, mode, flags, lvb);
                    }
                    None => self.park(
                        &ls,
                        name,
                        Parked::Request {
                            lkid,
                            mode,
                            flags,
                            lvb,
                        },
                    ),
                }
            }
            PeerMsg::Remove { ls, name } => {
                let Some(rn) = ResName::new(&name) else {
                    return;
                };
                let l = self.lockspaces.get_mut(&ls).expect("lockspace");
                if l.directory.get(&rn) == Some(&from) {
                    l.directory.remove(&rn);
                }
            }
            PeerMsg::Refused { ls, lkid, errno } => {
                eprintln!("udlmd: node {from} refused an operation on lock {lkid} of lockspace {:?}: errno {errno}", String::from_utf8_lossy(&ls));
                let Some(l) = self
                    .lockspaces
                    .get_mut(&ls)
                    .and_then(|l| l.locks.get_mut(&lkid))
                else {
                    return;
                };
                l.convert = None;
                l.cancelling = false;
                if l.state == RemoteState::InFlight {
                    // A refused conversion leaves the lock in the mode the
                    // master still holds it in.
                    let eol = l.grmode < 0;
                    let mode = l.grmode;
                    l.state = RemoteState::Granted;
                    self.remote_completion(&ls, lkid, errno, 0, None, mode, eol);
                }
            }
            // Handled by on_peer_message before this point.
            PeerMsg::Hello { .. }
            | PeerMsg::Start { .. }
            | PeerMsg::Barrier { .. }
            | PeerMsg::Leave
            | PeerMsg::Fenced { .. }
            | PeerMsg::DirRecord { .. }
            | PeerMsg::DirHint { .. }
            | PeerMsg::DlAsk { .. }
            | PeerMsg::DlCollect { .. }
            | PeerMsg::DlEdges { .. }
            | PeerMsg::DlConfirm { .. }
            | PeerMsg::DlConfirmed { .. }
            | PeerMsg::DlVictim { .. }
            | PeerMsg::Inspect { .. }
            | PeerMsg::InspectPart { .. }
            | PeerMsg::RecLock { .. } => {}
        }
    }

    fn refuse(&mut self, to: u32, ls: &[u8], lkid: u32, e: Errno) {
        self.send(
            to,
            PeerMsg::Refused {
                ls: ls.to_vec(),
                lkid,
                errno: e.to_raw(),
            },
        );
    }

    /// A completion for one of our remotely mastered locks.
    #[allow(clippy::too_many_arguments)]
    fn remote_completion(
        &mut self,
        ls_name: &[u8],
        lkid: u32,
        status: i32,
        sb_flags: u8,
        lvb: Option<Lvb>,
        mode: i8,
        end_of_life: bool,
    ) {
        let Some(ls) = self.lockspaces.get_mut(ls_name) else {
            return;
        };
        let Some(l) = ls.locks.get_mut(&lkid) else {
            return;
        };
        if l.silent_completions > 0 && status == 0 && !end_of_life {
            l.silent_completions -= 1;
            return;
        }
        l.grmode = mode;
        l.request = None;
        l.convert = None;
        l.convert_resend = false;
        l.cancelling = false;
        // Only the conversion's grant reports it: a cancel, timeout or
        // deadlock end starts the status block afresh, as the master's
        // engine does.
        let sb_flags = if std::mem::take(&mut l.demoted) && status == 0 && !end_of_life {
            sb_flags | sbf::DEMOTED
        } else {
            sb_flags
        };
        if lvb.is_some() {
            l.lvb = lvb;
        }
        l.state = if mode >= 0 {
            RemoteState::Granted
        } else {
            RemoteState::Waiting
        };
        // A grant that lost the race with a force-unlock is not reported.
        let suppressed = l.overlap_unlock && status == 0 && !end_of_life;
        if !suppressed && !l.orphan {
            let cb = Self::callback_for(l, false, status, sb_flags, lvb);
            self.out.push((l.owner, (lkid, l.incarnation), cb.encode()));
        }
        let resend = std::mem::replace(&mut l.resend, RequestResend::None);
        if !end_of_life {
            return;
        }
        let RequestResend::SentTo(m) = resend else {
            return ls.free_id(lkid);
        };
        // The copy sent again may still be made there after this answer:
        // it goes silently, and the id is never used again, so that an
        // answer to that copy finds no lock here.
        ls.forget_lock(lkid);
        self.send_after_recovery(
            m,
            PeerMsg::Unlock {
                ls: ls_name.to_vec(),
                lkid,
                flags: 0,
                lvb: None,
                silent: true,
            },
        );
    }

    fn callback_for(
        l: &LocalLock,
        blocking: bool,
        status: i32,
        sb_flags: u8,
        lvb: Option<Lvb>,
    ) -> Callback {
        Callback {
            blocking,
            lkid: 0,
            incarnation: l.incarnation,
            status,
            sb_flags,
            lvb,
            func: if blocking { l.user.bast } else { l.user.ast },
            arg: if blocking {
                l.user.bastarg
            } else {
                l.user.astarg
            },
            lksb: l.user.lksb,
        }
    }

    // ----- where resources live ------------------------------------------

    /// The master of `name`, when known without asking anyone.
    fn master_of(&mut self, ls_name: &[u8], name: &ResName) -> Option<u32> {
        self.master_near(ls_name, name, None)
    }

    /// [`Node::master_of`] for a resource inside a tree: `near`, the master
    /// of its parent resource, becomes its master if it has none yet (the
    /// directory decides, as for any name: `LookupNear`).
    fn master_near(&mut self, ls_name: &[u8], name: &ResName, near: Option<u32>) -> Option<u32> {
        let me = self.node_id;
        let near = near.filter(|&n| n != me);
        if self.cluster.nodes.len() <= 1 {
            return Some(me);
        }
        let members = self.weighted_members(ls_name);
        let dir = directory_node(name.as_bytes(), &members).unwrap_or(me);
        let nodir = self.cluster.nodir(ls_name);
        let ls = self.lockspaces.get_mut(ls_name).expect("lockspace");
        if let Some(&m) = ls.masters.get(name) {
            return Some(m);
        }
        if nodir {
            ls.masters.insert(*name, dir);
            return Some(dir);
        }
        if ls.lookups.contains_key(name) {
            // An earlier request waits for the answer: this one after it.
            return None;
        }
        if dir == me {
            return match self.direct(ls_name, name, me, near) {
                Some(m) => {
                    let ls = self.lockspaces.get_mut(ls_name).expect("lockspace");
                    ls.masters.insert(*name, m);
                    Some(m)
                }
                None => {
                    let ls = self.lockspaces.get_mut(ls_name).expect("lockspace");
                    ls.lookups.insert(*name, Vec::new());
                    None
                }
            };
        }
        ls.lookups.insert(*name, Vec::new());
        let ls = ls_name.to_vec();
        let name = name.as_bytes().to_vec();
        let msg = match near {
            Some(near) => PeerMsg::LookupNear { ls, name, near },
            None => PeerMsg::Lookup { ls, name },
        };
        self.send(dir, msg);
        None
    }

    /// As the directory node of `name`, the answer to `asker`'s look-up: the
    /// master on record, else a new one, recorded — `near` (the master of
    /// the parent resource of a tree) when it is another member, else the
    /// asker. None when `near` became the master and answers the asker
    /// itself ([`Node::assign`]).
    fn direct(
        &mut self,
        ls_name: &[u8],
        name: &ResName,
        asker: u32,
        near: Option<u32>,
    ) -> Option<u32> {
        let me = self.node_id;
        let members = self.weighted_members(ls_name);
        let ls = self.lockspaces.get_mut(ls_name).expect("lockspace");
        let master = match ls.directory.get(name) {
            Some(&m) => m,
            None => {
                let near = near.filter(|&n| n != asker && members.iter().any(|&(m, _)| m == n));
                let m = near.unwrap_or(asker);
                ls.directory.insert(*name, m);
                if m != me && m != asker {
                    self.assign(ls_name, name, m, asker);
                    return None;
                }
                m
            }
        };
        if master == me {
            ls.masters.insert(*name, me);
        }
        Some(master)
    }

    /// As the directory node of `name`: makes `master` its master, which
    /// answers `asker`'s look-up itself.
    fn assign(&mut self, ls_name: &[u8], name: &ResName, master: u32, asker: u32) {
        let msg = PeerMsg::Assign {
            ls: ls_name.to_vec(),
            name: name.as_bytes().to_vec(),
            asker,
        };
        self.send(master, msg);
    }

    fn park(&mut self, ls_name: &[u8], name: ResName, p: Parked) {
        if let Some(ls) = self.lockspaces.get_mut(ls_name) {
            ls.lookups.entry(name).or_default().push(p);
        }
    }

    /// The directory answered: run what waited for it.
    fn resolved(&mut self, ls_name: &[u8], name: ResName, master: u32) {
        let me = self.node_id;
        let Some(ls) = self.lockspaces.get_mut(ls_name) else {
            return;
        };
        // Nothing waits for it: an answer from before a recovery.
        let Some(parked) = ls.lookups.remove(&name) else {
            return;
        };
        ls.masters.insert(name, master);
        for p in parked {
            let Parked::Request {
                lkid,
                mode,
                flags,
                lvb,
            } = p;
            let ls = self.lockspaces.get_mut(ls_name).expect("lockspace");
            let Some(l) = ls.locks.get_mut(&lkid) else {
                continue;
            };
            if l.request.is_none() {
                // Answered since it waited here (a master kept through a
                // recovery granted the copy it held): it goes nowhere.
                continue;
            }
            if master != me {
                l.master = Master::Remote(master);
                if l.resend == RequestResend::Listed {
                    l.resend = RequestResend::SentTo(master);
                }
                self.send_request(ls_name, master, lkid, mode, flags, lvb);
                continue;
            }
            let req = EngineRequest {
                owner: l.owner,
                pid: l.pid,
                mode: mode as i32,
                flags,
                name: name.as_bytes(),
                lvb: lvb.as_ref(),
                has_bast: l.user.bast != 0,
            };
            match ls.engine.request(req) {
                Ok(elkid) => {
                    l.master = Master::Local(elkid.0);
                    ls.holders.insert(elkid.0, Holder::Local(lkid));
                }
                Err(e) => {
                    let cb = Self::callback_for(l, false, e.to_raw(), 0, None);
                    self.out.push((l.owner, (lkid, l.incarnation), cb.encode()));
                    ls.free_id(lkid);
                }
            }
            // Route this request's events now: the next one may reuse an
            // engine id that this one's end of life just freed.
            self.flush(ls_name);
        }
    }

    // ----- time ------------------------------------------------------------

    /// Moves the node's clock forward to `now_ms` (the same time base as
    /// [`Node::tick`]) without the tick's work, for an event that comes
    /// between ticks and must be dated exactly.
    pub fn advance_clock(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
    }

    /// Advances the node's clock (ms, from any fixed origin): forgets the
    /// masters of names nobody here has used for [`RESOURCE_GRACE_MS`], and
    /// gives up masterships of resources left without locks, telling their
    /// directory node.
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        if !self.operations_blocked() {
            self.expire_timers();
        }
        self.deadlock_tick();
        if self.cluster.nodes.len() <= 1 {
            return;
        }
        self.check_membership();
        if self.operations_blocked() {
            return;
        }
        let me = self.node_id;
        let mut gone: Vec<ResName> = Vec::new();
        let names: Vec<Vec<u8>> = self.lockspaces.keys().cloned().collect();
        for ls_name in names {
            let ls = self.lockspaces.get_mut(&ls_name).expect("lockspace");
            let known: Vec<(ResName, u32)> = ls.masters.iter().map(|(n, m)| (*n, *m)).collect();
            for (name, master) in known {
                let busy = ls.name_refs.contains_key(&name)
                    || ls.lookups.contains_key(&name)
                    || (master == me && ls.engine.has_resource(name.as_bytes()));
                if busy {
                    ls.idle_since.remove(&name);
                    continue;
                }
                let since = *ls.idle_since.entry(name).or_insert(now_ms);
                if now_ms.saturating_sub(since) < RESOURCE_GRACE_MS {
                    continue;
                }
                ls.idle_since.remove(&name);
                if master == me {
                    gone.push(name);
                } else {
                    ls.masters.remove(&name);
                }
            }
            ls.idle_since.retain(|n, _| ls.masters.contains_key(n));
            for name in gone.drain(..) {
                self.give_up_mastership(&ls_name, name);
            }
            self.forget_if_unused(&ls_name);
        }
    }

    /// Stops mastering `name`, which has no locks here, and tells its
    /// directory node so that the next asker becomes its master.
    fn give_up_mastership(&mut self, ls_name: &[u8], name: ResName) {
        let me = self.node_id;
        let nodir = self.cluster.nodir(ls_name);
        let members = self.weighted_members(ls_name);
        let Some(ls) = self.lockspaces.get_mut(ls_name) else {
            return;
        };
        debug_assert!(!ls.engine.has_resource(name.as_bytes()));
        ls.masters.remove(&name);
        ls.idle_since.remove(&name);
        if nodir {
            return;
        }
        match directory_node(name.as_bytes(), &members) {
            Some(d) if d == me => {
                if ls.directory.get(&name) == Some(&me) {
                    ls.directory.remove(&name);
                }
            }
            Some(d) => self.send(
                d,
                PeerMsg::Remove {
                    ls: ls_name.to_vec(),
                    name: name.as_bytes().to_vec(),
                },
            ),
            None => {}
        }
    }

    /// Drops a lockspace no program here has open once it holds nothing
    /// for anyone: no locks, no directory records, no masterships, no
    /// look-ups or recovery state.
    fn forget_if_unused(&mut self, ls_name: &[u8]) {
        let me = self.node_id;
        let Some(ls) = self.lockspaces.get(ls_name) else {
            return;
        };
        let unused = !ls.visible
            && !ls.has_locks()
            && ls.directory.is_empty()
            && ls.lookups.is_empty()
            && ls.resend.is_empty()
            && ls.recovered_lvb.is_empty()
            && ls.closing.is_empty()
            && !ls.masters.values().any(|&m| m == me)
            && !self
                .handles
                .values()
                .any(|h| h.ls.as_deref() == Some(ls_name));
        if unused {
            self.lockspaces.remove(ls_name);
        }
    }

    // ----- read-only queries (udlm status / ls / lockdump) ---------------

    /// Answers a query from `udlm` as a JSON document. A lockdump follows
    /// the lockspace's access rules.
    pub fn query(&self, q: &crate::proto::Query, creds: PeerCreds) -> Result<String, Errno> {
        use crate::proto::Query;
        use std::fmt::Write;
        let mut o = String::new();
        match q {
            Query::Status => {
                let connected = self
                    .peers
                    .as_ref()
                    .map(|p| p.connected())
                    .unwrap_or_default();
                let addr = self.cluster.addresses.get(&self.node_id);
                let _ = write!(
                    o,
                    "{{\"node_id\":{},\"address\":{},\"cluster_name\":{},\"nodes\":[",
                    self.node_id,
                    json_opt(addr),
                    json_str(self.cluster.cluster_name.as_bytes())
                );
                let nodes = if self.cluster.nodes.is_empty() {
                    vec![self.node_id]
                } else {
                    self.cluster.nodes.clone()
                };
                for (i, n) in nodes.iter().enumerate() {
                    let up = *n == self.node_id || connected.contains(n);
                    let _ = write!(
                        o,
                        "{}{{\"id\":{n},\"address\":{},\"connected\":{up}}}",
                        if i > 0 { "," } else { "" },
                        json_opt(self.cluster.addresses.get(n))
                    );
                }
                let seen = nodes
                    .iter()
                    .filter(|n| **n == self.node_id || connected.contains(n))
                    .count();
                // (An outside source, corosync, has the last word.)
                let have = self.external_quorum().unwrap_or(seen * 2 > nodes.len());
                let _ = write!(o, "],\"quorum\":{{\"have\":{have},\"members_seen\":{seen},\"configured\":{}}},\"lockspaces\":[", nodes.len());
                for (i, name) in self.lockspace_names().iter().enumerate() {
                    // A lockspace's members are the members of the current
                    // generation: every member may master or hold any of its
                    // resources.
                    let members: Vec<String> = if self.cluster.nodes.len() > 1 {
                        self.membership
                            .members
                            .iter()
                            .map(|n| n.to_string())
                            .collect()
                    } else {
                        nodes.iter().map(|n| n.to_string()).collect()
                    };
                    // Static mastering (`nodir=1`) and the udlm
                    // extensions its creator here asked for.
                    let features = self.lockspaces.get(name).map_or(0, |l| l.features);
                    let mut ext = Vec::new();
                    if features & lsfl::UDLM_TIMEOUT != 0 {
                        ext.push("\"timeouts\"");
                    }
                    if features & lsfl::UDLM_HIERARCHY != 0 {
                        ext.push("\"hierarchy\"");
                    }
                    let _ = write!(
                        o,
                        "{}{{\"name\":{},\"members\":[{}],\"mastering\":\"{}\",\"extensions\":[{}]}}",
                        if i > 0 { "," } else { "" },
                        json_str(name),
                        members.join(","),
                        if self.cluster.nodir(name) { "static" } else { "directory" },
                        ext.join(",")
                    );
                }
                let _ = write!(
                    o,
                    "],\"membership\":{},\"recovery\":{{{}}}}}",
                    self.membership_source_json(),
                    self.membership_json()
                );
            }
            Query::Lockspaces => {
                o.push_str("{\"lockspaces\":[");
                for (i, name) in self.lockspace_names().iter().enumerate() {
                    let ls = &self.lockspaces[name];
                    let handles = self
                        .handles
                        .values()
                        .filter(|h| h.ls.as_deref() == Some(&name[..]))
                        .count();
                    let _ = write!(
                        o,
                        "{}{{\"name\":{},\"handles\":{handles},\"locks\":{},\"resources\":{}}}",
                        if i > 0 { "," } else { "" },
                        json_str(name),
                        ls.locks.len(),
                        ls.engine.resource_count()
                    );
                }
                o.push_str("]}");
            }
            Query::Lockdump(name) => {
                let ls = self
                    .lockspaces
                    .get(name)
                    .filter(|l| l.visible)
                    .ok_or(Errno::NoEnt)?;
                self.check_access(name, creds)?;
                let _ = write!(o, "{{\"lockspace\":{},\"resources\":[", json_str(name));
                let mut first = true;
                for r in ls.engine.resources() {
                    let lvb = r
                        .lvb
                        .map(|v| format!("\"{}\"", hex(&v)))
                        .unwrap_or_else(|| "null".into());
                    let _ = write!(o, "{}{{\"name\":{},\"name_hex\":\"{}\",\"master\":{},\"lvb\":{lvb},\"lvb_valid\":{}", if first { "" } else { "," }, json_str(r.name.as_bytes()), hex(r.name.as_bytes()), self.node_id, r.lvb_valid);
                    first = false;
                    for (label, q) in [
                        ("granted", &r.granted),
                        ("converting", &r.converting),
                        ("waiting", &r.waiting),
                    ] {
                        let _ = write!(o, ",\"{label}\":[");
                        for (i, l) in q.iter().enumerate() {
                            let (id, node) = match ls.holders.get(&l.lkid.0) {
                                Some(Holder::Local(id)) => (*id, self.node_id),
                                Some(Holder::Remote(n, id)) => (*id, *n),
                                None => (l.lkid.0, self.node_id),
                            };
                            let requested = if label == "granted" {
                                None
                            } else {
                                l.requested
                            };
                            let _ = write!(o, "{}{{\"id\":{id},\"granted\":{},\"requested\":{},\"flags\":\"{:#x}\",\"pid\":{},\"node\":{node}{}}}", if i > 0 { "," } else { "" }, json_mode(l.granted), json_mode(requested), l.flags, l.pid, if l.orphan { ",\"orphan\":true" } else { "" });
                        }
                        o.push(']');
                    }
                    o.push('}');
                }
                // Locks of this node on resources mastered elsewhere.
                let mut remote: Vec<(&u32, &LocalLock)> = ls
                    .locks
                    .iter()
                    .filter(|(_, l)| matches!(l.master, Master::Remote(_) | Master::Unknown))
                    .collect();
                remote.sort_by_key(|(id, _)| **id);
                for (id, l) in remote {
                    let master = match l.master {
                        Master::Remote(m) => m.to_string(),
                        _ => "null".into(),
                    };
                    let (queue, requested) = match l.state {
                        RemoteState::Granted => ("granted", None),
                        RemoteState::Converting => ("converting", None),
                        _ if l.grmode >= 0 => ("converting", None),
                        _ => ("waiting", None::<Mode>),
                    };
                    let gr = Mode::from_raw(l.grmode as i64);
                    let entry = format!("{{\"id\":{id},\"granted\":{},\"requested\":{},\"flags\":\"{:#x}\",\"pid\":{},\"node\":{}{}}}", json_mode(gr), json_mode(requested), l.flags, l.pid, self.node_id, if l.orphan { ",\"orphan\":true" } else { "" });
                    let _ = write!(o, "{}{{\"name\":{},\"name_hex\":\"{}\",\"master\":{master},\"lvb\":null,\"lvb_valid\":true", if first { "" } else { "," }, json_str(l.name.as_bytes()), hex(l.name.as_bytes()));
                    first = false;
                    for label in ["granted", "converting", "waiting"] {
                        let _ = write!(
                            o,
                            ",\"{label}\":[{}]",
                            if label == queue { entry.as_str() } else { "" }
                        );
                    }
                    o.push('}');
                }
                o.push_str("]}");
            }
        }
        Ok(o)
    }

    // ----- plumbing ------------------------------------------------------

    fn send(&self, to: u32, msg: PeerMsg) {
        match &self.peers {
            Some(p) => {
                if !p.send(to, msg.encode()) {
                    eprintln!("udlmd: cannot queue a message to node {to}");
                }
            }
            None => eprintln!("udlmd: no peer link for a message to node {to}"),
        }
    }

    /// Every lock of this node's handles that settled on a granted mode, as
    /// (lockspace, resource, mode): what the programs here know they hold.
    /// For invariant checks.
    pub fn held_locks(&self) -> Vec<(Vec<u8>, ResName, Mode)> {
        let mut v = Vec::new();
        for (name, ls) in &self.lockspaces {
            for l in ls.locks.values() {
                if l.releasing {
                    continue;
                }
                // With a conversion pending on a remote master the lock holds
                // either mode (or NL, demoted by CONVDEADLK) until the
                // completion says which: only settled locks count.
                let held = match l.master {
                    Master::Local(e) => {
                        ls.engine.lock_info_by_id(LockId(e)).and_then(|i| i.granted)
                    }
                    Master::Remote(_) if l.state == RemoteState::Granted => {
                        Mode::from_raw(l.grmode as i64)
                    }
                    _ => None,
                };
                if let Some(m) = held {
                    v.push((name.clone(), l.name, m));
                }
            }
        }
        v
    }

    /// Locks of this node's handles (process copies) and master copies held
    /// here, for leak checks.
    pub fn lock_counts(&self) -> (usize, usize) {
        let local = self.lockspaces.values().map(|l| l.locks.len()).sum();
        let master = self
            .lockspaces
            .values()
            .map(|l| l.engine.lock_count())
            .sum();
        (local, master)
    }

    /// Names of the lockspaces that exist on this node.
    /// Every lockspace this node keeps state for, opened here or not (a
    /// node masters resources of lockspaces only others use).
    pub fn lockspace_names_with_state(&self) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = self.lockspaces.keys().cloned().collect();
        v.sort();
        v
    }

    pub fn lockspace_names(&self) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = self
            .lockspaces
            .iter()
            .filter(|(_, l)| l.visible)
            .map(|(n, _)| n.clone())
            .collect();
        v.sort();
        v
    }

    pub fn lockspace_engine(&self, name: &[u8]) -> Option<&Engine> {
        self.lockspaces.get(name).map(|l| &l.engine)
    }

    fn ls_of(&self, owner: Owner) -> Result<Vec<u8>, Errno> {
        let h = self.handles.get(&owner).ok_or(Errno::NotConn)?;
        let name = h.ls.clone().ok_or(Errno::NoEnt)?;
        if self.lockspaces.get(&name).is_some_and(|l| l.visible) {
            Ok(name)
        } else {
            Err(Errno::NoEnt)
        }
    }

    fn check_access(&self, name: &[u8], creds: PeerCreds) -> Result<(), Errno> {
        let ls = &self.lockspaces[name];
        if creds.uid == 0 {
            return Ok(());
        }
        let bits = if creds.uid == ls.uid {
            ls.perm >> 6
        } else if creds.gid == ls.gid {
            ls.perm >> 3
        } else {
            ls.perm
        };
        if bits & 6 == 6 {
            Ok(())
        } else {
            Err(Errno::Acces)
        }
    }

    /// Routes the engine's events: callbacks for this node's handles, casts
    /// and BASTs for other nodes'. Then writes out the callbacks, grouped per
    /// lock (spec §4.4, oracle 04).
    fn flush(&mut self, ls_name: &[u8]) {
        let mut to_peers: Vec<(u32, PeerMsg)> = Vec::new();
        if let Some(ls) = self.lockspaces.get_mut(ls_name) {
            // Before the completions: a demoted lock may be granted in the
            // same pass, and its node must see the demotion first.
            for lkid in ls.engine.take_demotions() {
                if let Some(&Holder::Remote(node, id)) = ls.holders.get(&lkid.0) {
                    to_peers.push((
                        node,
                        PeerMsg::Demoted {
                            ls: ls_name.to_vec(),
                            lkid: id,
                        },
                    ));
                }
            }
            ls.engine.drain_events(&mut self.events);
            for ev in self.events.drain(..) {
                let elkid = ev.lkid().0;
                let Some(&holder) = ls.holders.get(&elkid) else {
                    continue;
                };
                match (holder, ev) {
                    (
                        Holder::Local(id),
                        Event::Completion {
                            status,
                            sb_flags,
                            lvb,
                            end_of_life,
                            ..
                        },
                    ) => {
                        let gr = ls
                            .engine
                            .lock_info_by_id(LockId(elkid))
                            .and_then(|i| i.granted);
                        if let Some(l) = ls.locks.get_mut(&id) {
                            l.grmode = gr.map_or(-1, |m| m as i8);
                            l.state = if gr.is_some() {
                                RemoteState::Granted
                            } else {
                                RemoteState::Waiting
                            };
                            let cb = Self::callback_for(l, false, status.to_user(), sb_flags, lvb);
                            self.out.push((l.owner, (id, l.incarnation), cb.encode()));
                        }
                        if end_of_life {
                            ls.holders.remove(&elkid);
                            ls.free_id(id);
                        }
                    }
                    (Holder::Local(id), Event::Blocking { .. }) => {
                        if let Some(l) = ls.locks.get(&id) {
                            let cb = Self::callback_for(l, true, 0, 0, None);
                            self.out.push((l.owner, (id, l.incarnation), cb.encode()));
                        }
                    }
                    (
                        Holder::Remote(node, id),
                        Event::Completion {
                            status,
                            sb_flags,
                            lvb,
                            end_of_life,
                            ..
                        },
                    ) => {
                        let gr = ls
                            .engine
                            .lock_info_by_id(LockId(elkid))
                            .and_then(|i| i.granted);
                        let mode = if end_of_life {
                            -1
                        } else {
                            gr.map_or(-1, |m| m as i8)
                        };
                        to_peers.push((
                            node,
                            PeerMsg::Cast {
                                ls: ls_name.to_vec(),
                                lkid: id,
                                status: status.to_user(),
                                sb_flags,
                                lvb,
                                mode,
                                end_of_life,
                            },
                        ));
                        if end_of_life {
                            ls.holders.remove(&elkid);
                            ls.remote_index.remove(&(node, id));
                        }
                    }
                    (Holder::Remote(node, id), Event::Blocking { mode, .. }) => {
                        to_peers.push((
                            node,
                            PeerMsg::Bast {
                                ls: ls_name.to_vec(),
                                lkid: id,
                                mode: mode as u8,
                            },
                        ));
                    }
                }
            }
            // Locks released without a callback (silent releases, closes)
            // leave no mapping behind.
            if ls.holders.len() > ls.engine.lock_count() {
                let engine = &ls.engine;
                let gone: Vec<(u32, Holder)> = ls
                    .holders
                    .iter()
                    .filter(|(&e, _)| engine.lock_info_by_id(LockId(e)).is_none())
                    .map(|(&e, &h)| (e, h))
                    .collect();
                for (e, h) in gone {
                    ls.holders.remove(&e);
                    match h {
                        Holder::Local(id) => ls.free_id(id),
                        Holder::Remote(node, id) => {
                            ls.remote_index.remove(&(node, id));
                        }
                    }
                }
            }
        }
        for (node, msg) in to_peers {
            self.send(node, msg);
        }
        self.deliver_callbacks();
    }

    /// Applies `batch` in order and hands the callbacks they caused to
    /// the event links together at the end: a handle then gets them in
    /// one write and its program wakes once. Their order is the one the
    /// kernel gives callbacks a process has not read yet: per lock, in
    /// order, locks in the order of their first pending callback.
    pub fn apply_batch<T>(&mut self, batch: &[T], mut apply: impl FnMut(&mut Node, &T)) {
        self.batching = true;
        // (A panic must not leave the callbacks held for good.)
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for item in batch {
                apply(self, item);
            }
        }));
        self.batching = false;
        self.deliver_callbacks();
        if let Err(p) = r {
            std::panic::resume_unwind(p);
        }
    }

    fn deliver_callbacks(&mut self) {
        if self.out.is_empty() || self.batching {
            return;
        }
        // Owners in first-appearance order; per owner, locks in
        // first-appearance order; per lock, callbacks in order.
        let mut per_owner: Vec<(Owner, Vec<((u32, u32), Vec<Packet>)>)> = Vec::new();
        for (owner, key, mut packet) in self.out.drain(..) {
            packet[4..8].copy_from_slice(&key.0.to_le_bytes());
            let slot = match per_owner.iter().position(|(o, _)| *o == owner) {
                Some(i) => i,
                None => {
                    per_owner.push((owner, Vec::new()));
                    per_owner.len() - 1
                }
            };
            let locks = &mut per_owner[slot].1;
            match locks.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(packet),
                None => locks.push((key, vec![packet])),
            }
        }
        for (owner, locks) in per_owner {
            let Some(sink) = self.handles.get(&owner).and_then(|h| h.sink.clone()) else {
                continue;
            };
            let mut packets: Vec<Packet> = locks.into_iter().flat_map(|(_, v)| v).collect();
            if let Some(slot) = self.inline.as_mut().filter(|s| s.owner == owner) {
                let completion = |p: &Packet| p[0] == 0 && p[48..56] == slot.ask.func.to_le_bytes();
                if slot.held.is_none()
                    && !slot.spoiled
                    && packets.len() == 1
                    && completion(&packets[0])
                    && sink.read_all(slot.ask.seen)
                {
                    slot.held = packets.pop();
                    continue;
                }
                // Anything else for the handle: what was held goes first.
                slot.spoiled = true;
                if let Some(h) = slot.held.take() {
                    packets.insert(0, h);
                }
            }
            sink.send(&packets);
        }
    }

    /// How many callbacks were ever queued for handle `owner`'s event
    /// link: a handle that got none between two of its calls did not wait
    /// for one in between.
    pub fn callbacks_queued(&self, owner: Owner) -> u64 {
        self.handles
            .get(&owner)
            .and_then(|h| h.sink.as_ref())
            .map_or(0, |s| s.queued())
    }

    /// A `_wait` call of handle `owner` begins ([`InlineAsk`]): until
    /// [`Node::end_inline`], a completion that is the first and only
    /// callback for the handle is held back instead of sent.
    pub fn begin_inline(&mut self, owner: Owner, ask: InlineAsk) {
        // What an earlier call that never ended (a panic) held goes now.
        self.end_inline(0);
        self.inline = Some(InlineSlot {
            owner,
            ask,
            held: None,
            spoiled: false,
        });
    }

    /// The call of [`Node::begin_inline`] is over: the completion of its
    /// lock `lkid` to put in the reply, if it was held back; anything else
    /// held goes on the event link.
    pub fn end_inline(&mut self, lkid: u32) -> Option<Packet> {
        self.deliver_callbacks();
        let slot = self.inline.take()?;
        let held = slot.held?;
        if held[4..8] == lkid.to_le_bytes() {
            return Some(held);
        }
        if let Some(sink) = self.handles.get(&slot.owner).and_then(|h| h.sink.clone()) {
            sink.send(&[held]);
        }
        None
    }
}

/// A mode as the peer protocol carries it.
pub fn mode_from_wire(m: u8) -> Option<Mode> {
    Mode::from_raw(m as i64)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn json_mode(m: Option<Mode>) -> String {
    m.map(|m| format!("\"{m}\""))
        .unwrap_or_else(|| "null".into())
}

fn json_opt(s: Option<&String>) -> String {
    s.map(|s| json_str(s.as_bytes()))
        .unwrap_or_else(|| "null".into())
}

/// A JSON string of (lossily decoded) bytes.
pub(crate) fn json_str(b: &[u8]) -> String {
    let mut o = String::from("\"");
    for c in String::from_utf8_lossy(b).chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}
