//! Membership and lockspace recovery: which nodes take part, and how the
//! survivors rebuild the lock state when a node dies, restarts or joins
//! (DESIGN "Cluster"; the kernel's sequence is spec §8.5).
//!
//! Liveness. A peer is *live* while its session is up, or while it has been
//! down for less than `lease_ms` and it is a member. A node that never came
//! up is not live. A restarted peer (new transport incarnation) has lost
//! everything: it is live, but its old locks must be dropped. When another
//! member's session goes down (or it restarts), the lease of every member
//! already down starts again: connectivity need not be transitive, and a
//! node cut off from us may have kept its majority through the one just
//! lost, until now.
//!
//! Generations. The lowest live node id is the coordinator. Whenever its
//! live view differs from the current members (a node died, came up,
//! restarted, or reported another generation), and the view is a majority
//! of the configured nodes (quorum), it starts generation `gen + 1` by
//! sending `Start { gen, members, fresh }` to every member; `fresh` are the
//! members whose earlier state is void (new, restarted, or excluded by an
//! earlier generation). Every member, coordinator included, then runs three
//! phases, each closed by a barrier: it sends `Barrier { gen, phase }` to
//! every other member and waits for everyone's. Because each peer link
//! delivers in order, a node holding everyone's marker of a phase knows it
//! has received everything they sent before it.
//!
//! 1. *Stop*: local lock calls wait (the server retries them afterwards,
//!    exactly as the kernel blocks them); lookups in flight are forgotten,
//!    their requests to be sent again. Messages still arriving are the old
//!    generation's and are handled normally; nothing new is originated
//!    (a handle closed meanwhile tells every member when the recovery
//!    finishes, since it may move the names of its locks:
//!    `Membership::deferred`).
//!    When all have stopped, nobody originates an old-generation message
//!    any more: the directory is cleared and the departed nodes' locks are
//!    dropped from every resource mastered here (a PW/EX holder's death
//!    invalidates the LVB; waiters behind them are granted).
//! 2. *Rebuild*: (all old traffic, answers included, has arrived.) Every
//!    master tells each name's new directory node that it masters it
//!    (`DirRecord`). A resource whose master departed (or, with `nodir`,
//!    whose hashed master changed) gets as new master its directory node
//!    under the new members, which every node computes alike; each node
//!    sends its granted locks there (`RecLock`, with the LVB it holds). An
//!    unlock or cancel that was on its way to a departed master completes
//!    here as if the master had answered; requests and conversions that
//!    were waiting on it are sent again after the recovery (a conversion
//!    only if no answer to it came meanwhile).
//! 3. *Finish*: each rebuilt resource takes its LVB from a holder above CR,
//!    else from any holder that used VALBLK marked not valid (so the next
//!    VALBLK grant carries DLM_SBF_VALNOTVALID); grant processing runs; lock
//!    messages parked meanwhile are handled; requests are sent again; local
//!    calls resume.
//!
//! From its Quiet marker to the end a node's engine grants nothing (a
//! handle closing meanwhile frees its locks; what they held back is granted
//! at the end): a grant sent then could reach a node that has rebuilt
//! without it.
//!
//! Abandoned generations. A newer `Start` during a recovery simply begins
//! again. Lock messages from nodes outside the generation in progress are
//! held, and handled only if a later generation takes their sender back as
//! it was, and no generation stopped here has dropped its locks meanwhile
//! (what such a node sends from outside is void, and so is what it sends
//! before its Stop marker of the generation that takes it back); a node that finished the third barrier before us sees its new
//! lock messages parked until we finish too. If we leave the generation
//! unfinished, what it parked, and whatever the nodes that finished it send
//! later, waits for the next generation's Stop barrier: only then have the
//! locks rebuilt in the one left behind surely arrived here. Between a
//! fresh node and any peer, whatever was sent before the peer's Stop marker
//! speaks of a life that is over: dropped. Members that rebuilt a
//! generation left unfinished and members that did not differ in where
//! names live: each Stop marker carries the last generation its sender
//! rebuilt, and when these differ every name moves to its directory node
//! under the new members, as with `nodir`, instead of staying with a master
//! that only some believe in; every lock is sent to its master again. A
//! master that already holds a lock sent to it keeps it, but takes back its
//! waiting conversion, which the lock's node sends again at the end (so it
//! is answered once); it ignores a `Request` for a request it holds
//! (answering `Queued` while it waits). If the copy it held ends before the
//! request sent again arrives, the request's node removes the copy sent
//! again (a silent unlock on the same link) and never reuses the lock id.
//! A grant makes its sender the lock's master on the owner's node, even
//! one that this node moved the lock away from in a generation that master
//! never rebuilt: the next rebuild sends the lock on. When they agree, a master
//! that stays holds every lock sent to it, and nothing is sent again. A
//! `RecLock` to a master that is not the name's directory node goes with a
//! `DirHint` to the directory node.
//!
//! Left-out nodes. A coordinator leaves out the nodes it cannot see; a
//! member may still see one of them running (connectivity that is not
//! transitive, or a cut younger than the lease). Such a member passes the
//! `Start` on to that node, which fences itself on hearing of a generation
//! without it, and holds back its own Stop marker until that node has said
//! (by a `Hello` without state) that it stopped, or its lease has run out
//! here. So no member drops a node's locks while that node may still use
//! them. A member that sees a live node lower than the coordinator defers
//! the coordinator's `Start` until that node is gone from its view: the
//! lowest node anyone sees coordinates, and two coordinators do not take
//! turns excluding each other. (A node that fences itself meanwhile
//! forgets that `Start`: it counted on state the node no longer has.)
//!
//! Leaving and fencing. A node shutting down (SIGTERM) sends `Leave`: the
//! others recover at once instead of waiting for its lease. With
//! `fence_cmd` configured, the coordinator does not start a generation that
//! drops a lost member until `fence_cmd NODEID` has exited 0 for it (the
//! daemon runs it; [`Node::fence_wanted`], [`Node::fenced`]). A member that
//! sees no majority of the configured nodes among its *connected* peers for
//! `lease_ms / 2` fences itself: it stops granting, its programs' waiting
//! requests complete with ENOLCK, its locks are dropped, and with
//! `self_fence=abort` (the default) every process that held one is killed;
//! it joins again afresh once it sees a majority.
//!
//! Membership from outside (node/control.rs). The configured nodes may
//! change while the node runs: a node *added* is one more configured node,
//! which joins through the normal generations once its session comes up
//! (it is fresh: it brings no locks). A node *removed* stops being
//! configured; it is refused unless it may no longer be running (its
//! session is down and its lease has run out, it left cleanly, or it was
//! declared fenced), so its locks are dropped by the next generation only
//! once it is known dead. A node *declared fenced* (`udlm node fenced`,
//! as an external fencing system would) counts as gone at once, like one
//! that left: recovery need not wait for its lease; the news is passed to
//! every connected peer (`Fenced`), since each member holds its Stop
//! marker while it still sees the node within its lease. A node told that
//! it is itself fenced fences itself: the others are dropping its locks.
//! Members may differ for a moment in the nodes they know: a `Start` that
//! names a node this node does not know waits (as a deferred Start) until
//! it is added here, and the directory is hashed over the generation's
//! members, not over each node's configured list, so that every member
//! computes the same masters.
//!
//! An outside source (corosync, node/corosync.rs) may replace the
//! majority rule and udlm's own idea of liveness: its quorum decides
//! whether a coordinator may start a generation (and whether this node
//! must fence itself), provided every node of its group is in the view (a
//! group member not reached yet may hold locks); a node out of its group
//! counts as lost from that moment even while its session is up, is
//! dropped once it says it stopped or its lease has run out, and its word
//! that it stopped is no reason for a new generation. A node without the
//! source's quorum joins no generation.
//!
//! Safety. Two holders of incompatible locks could only exist if two
//! masters granted the same name, or a dead node's lock were dropped while
//! its holder still used it. The first cannot happen: masters change only
//! inside a generation, on every member at once, after the Stop barrier,
//! and only a coordinator with a majority starts one (two majorities always
//! share a node, which accepts one generation number at a time). For the
//! second: the survivors drop a node's locks only after `lease_ms` without
//! a session with it, and without losing any other member through which it
//! may have kept its majority, while the node itself, losing its majority
//! at about the same moment (a cut is seen by both ends within
//! `peer_timeout_ms`), stops after `lease_ms / 2` and kills its lock
//! holders; a member that still sees it holds the recovery back (left-out
//! nodes, above). The margin is
//! `lease_ms / 2` minus the difference between the two ends' detection
//! times and their scheduling delays; clocks only need to run at about the
//! same rate (each node measures its own intervals with a monotonic clock).
//! A node frozen for longer than the margin (SIGSTOP, a VM paused) while
//! holding locks defeats any lease; `fence_cmd` (power off, kill the VM)
//! closes that gap as the kernel DLM's fencing does (spec §8.4).

use super::peer::PeerMsg;
use super::{is_local_owner, Holder, Master, Node, Parked, RemoteState, RequestResend};
use crate::cluster::config::directory_node;
use crate::engine::RecoveredLock;
use crate::types::{lkf, Lvb, Mode, ResName, Status};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Where this node stands in the cluster's recovery cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Not a member of any generation yet (or excluded): lock calls wait.
    Down,
    Stopping,
    Quiet,
    Rebuilding,
    Running,
}

impl Phase {
    fn barrier(self) -> Option<u8> {
        match self {
            Phase::Stopping => Some(1),
            Phase::Quiet => Some(2),
            Phase::Rebuilding => Some(3),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Phase::Down => "waiting to join",
            Phase::Stopping => "stopping",
            Phase::Quiet => "rebuilding the directory",
            Phase::Rebuilding => "rebuilding locks",
            Phase::Running => "running",
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum PeerState {
    Up { incarnation: u64 },
    Down { since_ms: u64 },
}

/// The `mode` of a `RecLock` that only names a resource the sender waits
/// for (no granted lock).
const NOT_GRANTED: u8 = 0xff;

/// Bound on barrier marker sets kept for generations not finished yet.
const MAX_MARKER_SETS: usize = 4096;

/// Bound on lock messages parked while this node finishes a recovery.
const MAX_PARKED_MESSAGES: usize = 1 << 20;

/// Membership state of one node.
pub struct Membership {
    pub lease_ms: u64,
    peers: HashMap<u32, PeerState>,
    pub gen: u64,
    pub coordinator: u32,
    pub members: Vec<u32>,
    pub phase: Phase,
    fresh: Vec<u32>,
    /// Members of the last generation rebuilt here, with the incarnations
    /// they had then.
    settled: Vec<u32>,
    settled_gen: u64,
    settled_incarnation: HashMap<u32, u64>,
    /// What joined peers said of themselves (generation, members) when
    /// their session came up: a coordinator that is new itself learns from
    /// them who holds state.
    reports: HashMap<u32, (u64, Vec<u32>, u64)>,
    /// The transport incarnation each peer had when last seen up.
    known_incarnation: HashMap<u32, u64>,
    /// Peers whose Hello arrived since their session came up: only with
    /// every live peer's word does the coordinator know who holds state.
    heard: BTreeSet<u32>,
    /// Peers that said they were shutting down (no lease to wait for).
    left: BTreeSet<u32>,
    /// This node said it is shutting down: it starts no generation any
    /// more (two nodes leaving at once would otherwise restart generations
    /// at each other's every word until they exit).
    leaving: bool,
    /// Since when this node has seen no majority (ms).
    no_majority_since: Option<u64>,
    pub self_fence_abort: bool,
    /// A fence command must succeed for a lost node before its locks go.
    pub fencing: bool,
    /// Both nodes of a two-node cluster have been members together.
    paired: bool,
    /// Lost nodes the coordinator waits to see fenced, and those fenced.
    fence_wanted: BTreeSet<u32>,
    fenced: BTreeSet<u32>,
    /// Nodes whose locks this generation drops.
    departed: Vec<u32>,
    /// Barrier markers received, by (generation, its coordinator, phase):
    /// two coordinators that picked the same number are not confused.
    /// Each sender's marker comes with its `settled` generation.
    markers: BTreeMap<(u64, u32, u8), BTreeMap<u32, u64>>,
    /// `settled_gen` when this node sent its Stop marker of the current
    /// generation: what its markers report.
    settled_at_stop: u64,
    /// The generation being rebuilt follows one that some members rebuilt
    /// and others did not (their Stop markers report different settled
    /// generations): every resource goes to its directory node.
    rehash: bool,
    /// When this node entered the generation in progress (ms).
    gen_started_ms: u64,
    max_gen_seen: u64,
    /// Something the coordinator must act on: a peer restarted, or said it
    /// stands elsewhere.
    resync: bool,
    /// Lock messages from peers that finished the current generation
    /// before this node did.
    parked: Vec<(u32, Vec<u8>)>,
    /// Messages parked in a generation this node left unfinished, and
    /// whatever their senders sent after them: handled once the next
    /// generation's Stop barrier is complete, when every message of the
    /// one left behind (rebuilt locks still on their way here) has arrived.
    parked_earlier: Vec<(u32, Vec<u8>)>,
    parked_earlier_from: BTreeSet<u32>,
    /// The generation this node left after its Stop barrier, unfinished,
    /// and the members that finished its third phase: what they send from
    /// then on may act on locks rebuilt in it that have not reached this
    /// node yet, so it is parked (`parked_earlier`) until the next Stop
    /// barrier is complete.
    left_unfinished: Option<(u64, u32)>,
    finished_earlier: BTreeSet<u32>,
    /// The silent cancels of a handle closed during a recovery: sent when
    /// the recovery finishes, since after its Stop marker a node originates
    /// no lock message (a master told at once would release and grant
    /// while the others rebuild).
    deferred: Vec<(u32, PeerMsg)>,
    /// Handles (lockspace, owner) closed during a recovery: every member
    /// hears of each close when the recovery finishes (see
    /// `Node::close_after_recovery`).
    closed_in_recovery: BTreeSet<(Vec<u8>, u64)>,
    pub completed_generations: u64,
    /// Nodes the current generation leaves out that this node still sees
    /// alive: its Stop marker waits until each has confirmed that it
    /// stopped (a Hello without state) or is no longer live here.
    awaiting_exclusion: BTreeSet<u32>,
    /// Lock messages from nodes outside the generation in progress: if a
    /// later generation takes them back as they were, they are handled
    /// then (nothing a member sent may be lost); otherwise they are void.
    held: Vec<(u32, Vec<u8>)>,
    /// Nodes whose locks a generation dropped here and that no generation
    /// stopped here has taken in since: what they send from outside speaks
    /// of that life and is void, even if a later generation that has not
    /// heard of it yet takes them back as they were.
    dropped: BTreeSet<u32>,
    /// A Start from a coordinator while this node sees a lower live node
    /// (connectivity that is not transitive): taken up once that node is
    /// gone from the view, unless a newer generation came first.
    deferred_start: Option<(u32, u64, Vec<u32>, Vec<u32>)>,
    /// Quorum from an outside source (corosync's votequorum): when set, it
    /// replaces the majority of connected nodes.
    external_quorum: Option<bool>,
    /// Nodes the outside source says are not running udlm (out of its
    /// group), since when (ms): lost from then on, whatever the transport
    /// says; their lease runs from then. (A BTreeMap: a HashMap more per
    /// node would shift the simulator's hash keys, hence every seed.)
    external_out: BTreeMap<u32, u64>,
    /// The outside source's group (nodes where udlm runs), once heard.
    external_group: Option<Vec<u32>>,
}

impl Membership {
    /// Whether `from`'s Stop marker of the generation in progress is here:
    /// what it sent after it belongs to this generation.
    fn stop_marker_from(&self, from: u32) -> bool {
        self.markers
            .get(&(self.gen, self.coordinator, 1))
            .is_some_and(|s| s.contains_key(&from))
    }

    pub fn new(me: u32, lease_ms: u64) -> Membership {
        Membership {
            lease_ms,
            peers: HashMap::new(),
            gen: 0,
            coordinator: me,
            members: vec![me],
            phase: Phase::Running,
            fresh: Vec::new(),
            settled: vec![me],
            settled_gen: 0,
            settled_incarnation: HashMap::new(),
            reports: HashMap::new(),
            known_incarnation: HashMap::new(),
            heard: BTreeSet::new(),
            left: BTreeSet::new(),
            leaving: false,
            no_majority_since: None,
            self_fence_abort: false,
            fencing: false,
            paired: false,
            fence_wanted: BTreeSet::new(),
            fenced: BTreeSet::new(),
            departed: Vec::new(),
            markers: BTreeMap::new(),
            settled_at_stop: 0,
            rehash: false,
            gen_started_ms: 0,
            max_gen_seen: 0,
            resync: false,
            parked: Vec::new(),
            parked_earlier: Vec::new(),
            parked_earlier_from: BTreeSet::new(),
            left_unfinished: None,
            finished_earlier: BTreeSet::new(),
            deferred: Vec::new(),
            closed_in_recovery: BTreeSet::new(),
            completed_generations: 0,
            awaiting_exclusion: BTreeSet::new(),
            deferred_start: None,
            held: Vec::new(),
            dropped: BTreeSet::new(),
            external_quorum: None,
            external_out: BTreeMap::new(),
            external_group: None,
        }
    }

    /// For a node of a cluster with peers: nothing is granted until the
    /// first generation.
    pub fn wait_to_join(&mut self) {
        self.phase = Phase::Down;
        self.settled.clear();
    }

    /// Whether this node (`me`) has sent its Stop marker of the current
    /// generation (its own marker is recorded when it goes out).
    fn stop_marker_sent(&self, me: u32) -> bool {
        self.markers
            .get(&(self.gen, self.coordinator, 1))
            .is_some_and(|s| s.contains_key(&me))
    }

    fn incarnation(&self, node: u32) -> Option<u64> {
        match self.peers.get(&node) {
            Some(PeerState::Up { incarnation }) => Some(*incarnation),
            _ => None,
        }
    }
}

/// One of this node's locks on a resource that moves away.
type OwnLock = (u32, Option<u8>, Option<(u8, u32)>);

/// A request or conversion to send again once the recovery is over.
#[derive(Clone, Copy, Debug)]
pub enum Resend {
    Request(u32),
    Convert { lkid: u32, mode: u8, flags: u32 },
}

/// What recovery learned about the LVB of a resource rebuilt here.
#[derive(Clone, Copy, Debug, Default)]
pub struct RecoveredLvb {
    /// From a holder above CR: authoritative.
    pub best: Option<Lvb>,
    /// From any holder that used VALBLK.
    pub any: Option<Lvb>,
    pub valblk_seen: bool,
}

impl Node {
    pub fn phase(&self) -> Phase {
        self.membership.phase
    }

    /// Whether local lock calls must wait (a recovery is in progress, or
    /// this node has not joined its cluster yet).
    pub fn operations_blocked(&self) -> bool {
        self.membership.phase != Phase::Running
    }

    /// Whether a finished generation has every one of `peers` as a member
    /// (no recovery running): a node just started has then joined them.
    pub fn settled_with(&self, peers: &[u32]) -> bool {
        self.membership.phase == Phase::Running
            && peers.iter().all(|p| self.membership.members.contains(p))
    }

    /// Sends `msg` now, or when the recovery in progress finishes (see
    /// `Membership::deferred`).
    pub(super) fn send_after_recovery(&mut self, to: u32, msg: PeerMsg) {
        let defer = self.multi_node()
            && self.membership.phase != Phase::Running
            && self.membership.deferred.len() < MAX_PARKED_MESSAGES;
        if defer {
            self.membership.deferred.push((to, msg));
        } else {
            self.send(to, msg);
        }
    }

    /// Whether a recovery is in progress (or this node has not joined yet)
    /// in a cluster of several nodes: lock messages wait for its end.
    pub(super) fn recovering(&self) -> bool {
        self.multi_node() && self.membership.phase != Phase::Running
    }

    /// A handle of lockspace `ls` closed during a recovery: every member
    /// hears of it when the recovery finishes (see `finish`), whatever the
    /// handle's locks were waiting for. The recovery may move their names,
    /// and a master kept through a generation left unfinished may still
    /// hold a request its node has since forgotten (sim seed 3232368: a
    /// request sent again as `RecLock` to a master that then died, closed
    /// while the old master, master again after a rehash, still had it).
    pub(super) fn close_after_recovery(&mut self, ls: &[u8], owner: u64) {
        let m = &mut self.membership;
        if m.closed_in_recovery.len() < MAX_PARKED_MESSAGES {
            m.closed_in_recovery.insert((ls.to_vec(), owner));
            return;
        }
        // The list is full: better a close told during the recovery than
        // one never told.
        self.tell_close_to_members(ls.to_vec(), owner);
    }

    fn tell_close_to_members(&mut self, ls: Vec<u8>, owner: u64) {
        let others: Vec<u32> = (self.membership.members.iter().copied())
            .filter(|&n| n != self.node_id)
            .collect();
        for n in others {
            self.send(
                n,
                PeerMsg::CloseOwner {
                    ls: ls.clone(),
                    owner,
                },
            );
        }
    }

    fn multi_node(&self) -> bool {
        self.cluster.nodes.len() > 1
    }

    /// The transport's session with `node` came up.
    pub fn peer_up(&mut self, node: u32, incarnation: u64) {
        // (A node removed a moment ago may still report in: ignored.)
        if !self.multi_node() || node == self.node_id || !self.cluster.nodes.contains(&node) {
            return;
        }
        let m = &mut self.membership;
        if let Some(&old) = m.settled_incarnation.get(&node) {
            if old != incarnation && m.settled.contains(&node) {
                m.resync = true;
                m.reports.remove(&node);
            }
        }
        let restarted = matches!(
            m.known_incarnation.insert(node, incarnation),
            Some(old) if old != incarnation
        );
        let was_up = matches!(
            m.peers.insert(node, PeerState::Up { incarnation }),
            Some(PeerState::Up { .. })
        );
        // What a peer said of itself holds until it restarts (a reconnect
        // of the same process may deliver nothing new).
        if restarted {
            m.heard.remove(&node);
        }
        if restarted && was_up {
            // Its earlier life ended unseen: as if its session went down now.
            self.restart_leases_lost_through(node);
        }
        let m = &mut self.membership;
        m.left.remove(&node);
        m.fenced.remove(&node);
        m.fence_wanted.remove(&node);
        // The transport drops what was queued for an earlier incarnation:
        // markers of a recovery in progress are sent again.
        if restarted && m.members.contains(&node) && m.stop_marker_sent(self.node_id) {
            if let Some(p) = m.phase.barrier() {
                let (gen, coordinator, settled) = (m.gen, m.coordinator, m.settled_at_stop);
                for phase in 1..=p {
                    self.send(
                        node,
                        PeerMsg::Barrier {
                            gen,
                            coordinator,
                            phase,
                            settled,
                        },
                    );
                }
            }
        }
        let hello = self.hello();
        self.send(node, hello);
        self.check_membership();
    }

    /// The transport lost its session with `node` (it may come back).
    pub fn peer_down(&mut self, node: u32) {
        if !self.multi_node() || node == self.node_id || !self.cluster.nodes.contains(&node) {
            return;
        }
        let now = self.now_ms;
        self.membership
            .peers
            .insert(node, PeerState::Down { since_ms: now });
        self.restart_leases_lost_through(node);
        self.check_membership();
    }

    /// `via` went down or restarted: every member whose session with this
    /// node is already down may have kept its majority through `via` until
    /// now (connectivity need not be transitive), so it may be running with
    /// its locks until a whole lease from now. Without this, a node cut off
    /// from us but not from `via` counted as stopped once our own session
    /// with it was a lease old, and a generation that `via` (restarted,
    /// knowing nothing of it) started without it took over its names while
    /// it still mastered them (sim seed 3010706).
    fn restart_leases_lost_through(&mut self, via: u32) {
        let now = self.now_ms;
        let m = &mut self.membership;
        for (&node, state) in m.peers.iter_mut() {
            if node != via
                && m.members.contains(&node)
                && !m.left.contains(&node)
                && !m.fenced.contains(&node)
            {
                if let PeerState::Down { since_ms } = state {
                    *since_ms = now;
                }
            }
        }
    }

    /// The state of the link with `node`, as far as liveness goes: an
    /// outside membership source that has the node out of its group
    /// overrides a session that is still up.
    fn liveness(&self, node: u32) -> Option<PeerState> {
        let m = &self.membership;
        let link = m.peers.get(&node).copied();
        match (m.external_out.get(&node), link) {
            (Some(&out), Some(PeerState::Down { since_ms })) => Some(PeerState::Down {
                since_ms: since_ms.min(out),
            }),
            (Some(&out), Some(PeerState::Up { .. })) => Some(PeerState::Down { since_ms: out }),
            // Never seen here, and not in the group: not running udlm.
            (Some(_), None) => None,
            (None, link) => link,
        }
    }

    /// The nodes this node believes alive, itself included, sorted.
    fn live_view(&self) -> Vec<u32> {
        let m = &self.membership;
        let mut v: Vec<u32> = self
            .cluster
            .nodes
            .iter()
            .copied()
            .filter(|&n| {
                n == self.node_id
                    || !m.left.contains(&n)
                        && match self.liveness(n) {
                            Some(PeerState::Up { .. }) => true,
                            // (Out of the outside source's group, but still
                            // connected: live until its lease ends, unless
                            // it said it stopped.)
                            Some(PeerState::Down { since_ms }) => {
                                m.members.contains(&n)
                                    && self.now_ms.saturating_sub(since_ms) < m.lease_ms
                                    && !(m.external_out.contains_key(&n)
                                        && self.peer_connected(n)
                                        && !m.reports.contains_key(&n))
                            }
                            None => false,
                        }
            })
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Whether `node` may still be running with the locks it had: its
    /// session is up, or went down less than a lease ago without a clean
    /// leave.
    fn may_be_running(&self, node: u32) -> bool {
        let m = &self.membership;
        !m.left.contains(&node)
            && match self.liveness(node) {
                Some(PeerState::Up { .. }) => true,
                Some(PeerState::Down { since_ms }) => {
                    self.now_ms.saturating_sub(since_ms) < m.lease_ms
                }
                None => false,
            }
    }

    /// A majority of the configured nodes; in a two-node cluster
    /// (`two_node`), one node once both have been members together.
    fn quorate(&self, view: &[u32]) -> bool {
        // With an outside source, its quorum, and every node of its group
        // in the view: a node in the group that this node cannot reach yet
        // may hold locks, so no generation goes on without it (a node
        // starting alone is safe: the others run no udlm).
        if let Some(q) = self.membership.external_quorum {
            let group = self.membership.external_group.as_deref();
            return q
                && group.is_some_and(|g| {
                    g.iter()
                        .all(|n| view.contains(n) || !self.cluster.nodes.contains(n))
                });
        }
        view.len() * 2 > self.cluster.nodes.len() || self.two_node_alone()
    }

    /// Two-node mode lets the survivor of a pair go on alone, as corosync's
    /// `two_node` does, once the pair has formed (`wait_for_all`).
    fn two_node_alone(&self) -> bool {
        self.cluster.two_node && self.cluster.nodes.len() == 2 && self.membership.paired
    }

    /// The coordinator's duty: start a generation when the live view and
    /// the current members disagree.
    pub(super) fn check_membership(&mut self) {
        if !self.multi_node() || self.membership.leaving {
            return;
        }
        self.check_majority();
        self.release_stop_marker();
        self.take_up_deferred_start();
        let view = self.live_view();
        if view.first() != Some(&self.node_id) || !self.quorate(&view) {
            return;
        }
        let m = &self.membership;
        // A peer we see is, by its recent word, with a lower node that we
        // do not see: that node coordinates (an asymmetric cut); yield for
        // a lease, so that two coordinators do not take turns forever.
        let me = self.node_id;
        let lower_elsewhere = m.reports.iter().any(|(n, (_, members, at))| {
            view.contains(n)
                && self.now_ms.saturating_sub(*at) < m.lease_ms
                && members.iter().any(|&x| x < me && !view.contains(&x))
        });
        if lower_elsewhere {
            return;
        }
        let idle_down = m.phase == Phase::Down;
        let stalled = m.phase.barrier().is_some()
            && m.coordinator == self.node_id
            && self.now_ms.saturating_sub(m.gen_started_ms) > 3 * m.lease_ms + 2000;
        if stalled {
            eprintln!(
                "udlmd: recovery generation {} did not finish in time; starting another",
                m.gen
            );
        }
        if !(idle_down || stalled || view != m.members || m.resync) {
            return;
        }
        let unheard = view.iter().any(|n| {
            *n != self.node_id
                && matches!(m.peers.get(n), Some(PeerState::Up { .. }))
                && !m.heard.contains(n)
        });
        if unheard {
            return;
        }
        // A member lost without a clean leave is fenced first, when the
        // config says how.
        if m.fencing {
            let lost: Vec<u32> = m
                .settled
                .iter()
                .copied()
                .filter(|n| !view.contains(n) && !m.left.contains(n) && !m.fenced.contains(n))
                .collect();
            if !lost.is_empty() {
                let m = &mut self.membership;
                for n in lost {
                    if m.fence_wanted.insert(n) {
                        eprintln!("udlmd: node {n} is lost; waiting for fence_cmd to fence it before recovery");
                    }
                }
                return;
            }
        }
        let gen = m.gen.max(m.max_gen_seen) + 1;
        // Who holds state worth keeping: the members of the newest
        // generation that this node or a live peer completed.
        let me = self.node_id;
        let me_settled = m.completed_generations > 0 && m.settled.contains(&me);
        let (mut base_gen, mut base) = if me_settled {
            (m.settled_gen, m.settled.clone())
        } else {
            (0, Vec::new())
        };
        for (n, (g, members, _)) in &m.reports {
            if view.contains(n) && *g > base_gen && members.contains(n) {
                base_gen = *g;
                base = members.clone();
            }
        }
        let fresh: Vec<u32> = view
            .iter()
            .copied()
            .filter(|&n| {
                let restarted = n != me
                    && matches!(
                        (m.settled_incarnation.get(&n), m.incarnation(n)),
                        (Some(a), Some(b)) if *a != b
                    );
                // A peer that says it holds no valid state.
                let empty = n != me && m.heard.contains(&n) && !m.reports.contains_key(&n);
                // Made fresh by a generation that did not finish: it has
                // dropped its state since its last report.
                let reset = m.phase.barrier().is_some() && m.fresh.contains(&n);
                !base.contains(&n) || (n == me && !me_settled) || restarted || empty || reset
            })
            .collect();
        self.membership.resync = false;
        eprintln!(
            "udlmd: node {} starts recovery generation {gen} with members {view:?}{}",
            self.node_id,
            if fresh.is_empty() {
                String::new()
            } else {
                format!(" (joining afresh: {fresh:?})")
            }
        );
        for &n in &view {
            if n != self.node_id {
                let msg = PeerMsg::Start {
                    gen,
                    members: view.clone(),
                    fresh: fresh.clone(),
                };
                self.send(n, msg);
            }
        }
        self.accept_start(self.node_id, gen, view, fresh);
    }

    /// A membership message (Hello, Start, Barrier) from `from`.
    pub(super) fn membership_message(&mut self, from: u32, msg: PeerMsg) {
        match msg {
            PeerMsg::Start {
                gen,
                members,
                fresh,
            } => {
                let m = &mut self.membership;
                m.max_gen_seen = m.max_gen_seen.max(gen);
                if members.contains(&self.node_id) && m.external_quorum == Some(false) {
                    // The outside source says this node has no quorum: it
                    // takes part in no generation, and says so.
                    let hello = self.hello();
                    self.send(from, hello);
                    return;
                }
                if !members.contains(&self.node_id) {
                    // A member of ours passes on a generation that leaves
                    // this node out: its locks are about to be dropped
                    // there, so it stops now, then says so.
                    if gen >= m.gen && m.phase != Phase::Down {
                        self.fence_self(&format!(
                            "recovery generation {gen} (told by node {from}) leaves this node out"
                        ));
                    }
                    let hello = self.hello();
                    self.send(from, hello);
                    return;
                }
                if gen > self.membership.gen && self.state_void_for(&fresh) {
                    // This node's state is void (it never joined, or it
                    // reset itself since the coordinator last heard from
                    // it): a generation that counts on its earlier locks,
                    // masterships and directory records would lose them
                    // (two masters of one name, seen by the simulator). It
                    // says where it stands; the coordinator starts again
                    // with it afresh.
                    let hello = self.hello();
                    self.send(from, hello);
                    return;
                }
                if gen > self.membership.gen {
                    let lower_live = self.live_view().first().is_some_and(|&n| n < from);
                    let unknown = self.unknown_members(&members);
                    if !unknown.is_empty() {
                        eprintln!(
                            "udlmd: recovery generation {gen} (from node {from}) includes node(s) {unknown:?}, \
                             which this node does not know; it waits until they are added here (udlm node add)"
                        );
                    }
                    if lower_live || !unknown.is_empty() {
                        // The coordinator cannot see a node that this node
                        // sees: that node coordinates while it lives.
                        self.membership.deferred_start = Some((from, gen, members, fresh));
                        return;
                    }
                    self.accept_start(from, gen, members, fresh);
                } else if gen < self.membership.gen {
                    // A coordinator behind the times: tell it where we are.
                    let hello = self.hello();
                    self.send(from, hello);
                }
            }
            PeerMsg::Hello {
                gen,
                settled,
                joined,
                members,
            } => {
                let m = &mut self.membership;
                m.max_gen_seen = m.max_gen_seen.max(gen);
                m.heard.insert(from);
                if !joined && m.awaiting_exclusion.remove(&from) {
                    self.release_stop_marker();
                }
                let m = &mut self.membership;
                if joined {
                    let now = self.now_ms;
                    m.reports.insert(from, (settled, members.clone(), now));
                } else {
                    m.reports.remove(&from);
                }
                let in_step = joined && settled == m.settled_gen && members == m.settled;
                // A node out of the outside source's group that says it
                // stopped is news for no generation (it would only be left
                // out again, and say so again).
                let stopped_outside = !joined && m.external_out.contains_key(&from);
                if (!in_step || gen != m.gen) && !stopped_outside {
                    m.resync = true;
                }
                self.check_membership();
            }
            PeerMsg::Leave => {
                eprintln!("udlmd: node {from} is leaving the cluster");
                self.membership.left.insert(from);
                self.check_membership();
            }
            PeerMsg::Fenced { node } => {
                if node == self.node_id {
                    if self.membership.phase != Phase::Down {
                        self.fence_self(&format!("node {from} says this node was fenced"));
                    }
                } else if self.cluster.nodes.contains(&node) && !self.peer_connected(node) {
                    self.declare_fenced(node, from);
                }
            }
            PeerMsg::Barrier {
                gen,
                coordinator,
                phase,
                settled,
            } => {
                let m = &mut self.membership;
                m.max_gen_seen = m.max_gen_seen.max(gen);
                if gen >= m.gen && (1..=3).contains(&phase) && m.markers.len() < MAX_MARKER_SETS {
                    m.markers
                        .entry((gen, coordinator, phase))
                        .or_default()
                        .insert(from, settled);
                    self.advance();
                } else if phase == 3 && m.left_unfinished == Some((gen, coordinator)) {
                    m.finished_earlier.insert(from);
                }
            }
            _ => {}
        }
    }

    /// What this node says of itself.
    fn hello(&self) -> PeerMsg {
        let m = &self.membership;
        let valid = m.completed_generations > 0 && m.settled.contains(&self.node_id);
        PeerMsg::Hello {
            gen: m.gen,
            settled: m.settled_gen,
            joined: valid,
            members: if valid { m.settled.clone() } else { Vec::new() },
        }
    }

    /// Tells every connected peer where this node stands now.
    fn broadcast_hello(&mut self) {
        let hello = self.hello();
        let up: Vec<u32> = self
            .membership
            .peers
            .iter()
            .filter(|(_, p)| matches!(p, PeerState::Up { .. }))
            .map(|(&n, _)| n)
            .collect();
        for n in up {
            self.send(n, hello.clone());
        }
    }

    /// Whether a lock message from `from` is handled now (true), dropped,
    /// or parked until this node finishes its recovery.
    pub(super) fn admit(&mut self, from: u32, payload: &[u8]) -> bool {
        if !self.multi_node() {
            return true;
        }
        let m = &mut self.membership;
        if !m.members.contains(&from) {
            if m.dropped.contains(&from) {
                return false;
            }
            if m.phase.barrier().is_some() && m.held.len() < MAX_PARKED_MESSAGES {
                m.held.push((from, payload.to_vec()));
            }
            return false;
        }
        // A member whose locks a generation stopped here dropped, taken in
        // again by a generation that has not stopped here yet: what it sent
        // before its Stop marker of this one speaks of the life whose locks
        // went (sim seed 3803888: a grant it made before it fenced itself,
        // held up by a partition, reached a request whose master had moved
        // away from it).
        if m.dropped.contains(&from) && !m.stop_marker_from(from) {
            return false;
        }
        if m.phase == Phase::Running {
            return true;
        }
        if m.phase == Phase::Down {
            return false;
        }
        // A node joining afresh has no state from before: whatever a peer
        // sent it ahead of its Stop marker (held up by a cut, say) speaks of
        // locks that no longer exist there; and what a fresh peer sent
        // before its own marker speaks of its earlier life (answers of a
        // master whose resources have moved since).
        if (m.fresh.contains(&self.node_id) || m.fresh.contains(&from)) && !m.stop_marker_from(from)
        {
            return false;
        }
        if m.parked_earlier_from.contains(&from) || m.finished_earlier.contains(&from) {
            // It finished the generation this node left, or this is behind
            // what it sent before: it waits for the Stop barrier.
            if m.parked_earlier.len() + m.parked.len() >= MAX_PARKED_MESSAGES {
                eprintln!(
                    "udlmd: too many messages parked during recovery; dropping one from node {from}"
                );
                return false;
            }
            m.parked_earlier.push((from, payload.to_vec()));
            m.parked_earlier_from.insert(from);
            return false;
        }
        let finished = m
            .markers
            .get(&(m.gen, m.coordinator, 3))
            .is_some_and(|s| s.contains_key(&from));
        if !finished {
            return true;
        }
        if m.parked.len() + m.parked_earlier.len() >= MAX_PARKED_MESSAGES {
            eprintln!(
                "udlmd: too many messages parked during recovery; dropping one from node {from}"
            );
            return false;
        }
        m.parked.push((from, payload.to_vec()));
        false
    }

    fn accept_start(&mut self, coordinator: u32, gen: u64, members: Vec<u32>, fresh: Vec<u32>) {
        let me = self.node_id;
        // Every node that may still run with locks, whatever generation
        // this node leaves (an abandoned one may have left them out too).
        let seen_alive: Vec<u32> = self
            .cluster
            .nodes
            .iter()
            .copied()
            .filter(|&n| n != me && self.may_be_running(n))
            .collect();
        if fresh.contains(&me) && self.membership.phase != Phase::Down {
            self.reset_state("this node rejoins the cluster afresh");
        }
        {
            let m = &mut self.membership;
            if matches!(m.phase, Phase::Quiet | Phase::Rebuilding) {
                m.left_unfinished = Some((m.gen, m.coordinator));
                m.finished_earlier = m
                    .markers
                    .get(&(m.gen, m.coordinator, 3))
                    .map(|s| s.keys().copied().filter(|&n| n != me).collect())
                    .unwrap_or_default();
            }
            m.gen = gen;
            m.coordinator = coordinator;
            m.members = members;
            m.fresh = fresh;
            m.phase = Phase::Stopping;
            m.rehash = false;
            m.markers.retain(|&(g, _, _), _| g >= gen);
            m.gen_started_ms = self.now_ms;
            // (The count towards fencing this node goes on: a coordinator's
            // view counts members within their lease, which says nothing
            // about this node's own links.)
            m.deferred_start = None;
        }
        // Old messages are handled as usual while stopping.
        self.hold_grants(false);
        // Nodes left out that this node still sees: they hear of the
        // generation from here and must stop before their locks go.
        let left_out: BTreeSet<u32> = seen_alive
            .into_iter()
            .filter(|n| *n != me && !self.membership.members.contains(n))
            .collect();
        for &n in &left_out {
            let m = &self.membership;
            let msg = PeerMsg::Start {
                gen,
                members: m.members.clone(),
                fresh: m.fresh.clone(),
            };
            self.send(n, msg);
        }
        self.membership.awaiting_exclusion = left_out;
        // Messages parked from peers that finished the generation this
        // node leaves unfinished wait for this one's Stop barrier: the
        // others' rebuilt locks of that generation may still be on their
        // way here, and a request handled before them could be granted
        // beside a lock it conflicts with.
        {
            let m = &mut self.membership;
            let parked = std::mem::take(&mut m.parked);
            m.parked_earlier_from
                .extend(parked.iter().map(|(from, _)| *from));
            m.parked_earlier.extend(parked);
        }
        // Messages held back from nodes this generation takes in are all
        // older than its Stop markers: handled now, in the order they came.
        let held = std::mem::take(&mut self.membership.held);
        for (from, payload) in held {
            let m = &self.membership;
            if m.dropped.contains(&from) {
                continue;
            }
            if m.members.contains(&from) {
                self.on_peer_message(from, &payload);
            } else {
                self.membership.held.push((from, payload));
            }
        }
        // Lookups in flight belong to the old generation: their answers are
        // ignored and the requests go out again afterwards.
        for ls in self.lockspaces.values_mut() {
            for (_, parked) in ls.lookups.drain() {
                for p in parked {
                    let Parked::Request { lkid, .. } = p;
                    ls.resend.push(Resend::Request(lkid));
                }
            }
        }
        self.release_stop_marker();
    }

    /// Sends this node's Stop marker once no node left out by the current
    /// generation may still be running with locks.
    fn release_stop_marker(&mut self) {
        if self.membership.phase != Phase::Stopping
            || self.membership.stop_marker_sent(self.node_id)
        {
            return;
        }
        let still: BTreeSet<u32> = self
            .membership
            .awaiting_exclusion
            .iter()
            .copied()
            .filter(|&n| self.may_be_running(n))
            .collect();
        let m = &mut self.membership;
        m.awaiting_exclusion = still;
        if !m.awaiting_exclusion.is_empty() {
            return;
        }
        self.broadcast_barrier(1);
        self.advance();
    }

    /// Takes up a deferred Start once the lower node that held it back is
    /// gone from the view.
    fn take_up_deferred_start(&mut self) {
        let Some((from, gen, _, _)) = &self.membership.deferred_start else {
            return;
        };
        let (from, gen) = (*from, *gen);
        if gen <= self.membership.gen {
            self.membership.deferred_start = None;
            return;
        }
        if self.live_view().first().is_some_and(|&n| n < from) {
            return;
        }
        let waiting_for_nodes = self
            .membership
            .deferred_start
            .as_ref()
            .is_some_and(|(_, _, members, _)| !self.unknown_members(members).is_empty());
        if waiting_for_nodes {
            return;
        }
        if let Some((from, gen, members, fresh)) = self.membership.deferred_start.take() {
            if self.state_void_for(&fresh) {
                // This node reset itself since the Start came (sim seed
                // 3404100: it fenced itself, took up an old Start that
                // counted on its locks and directory, and answered a
                // look-up from its empty directory while another node
                // held a lock it had granted): as in `membership_message`.
                let hello = self.hello();
                self.send(from, hello);
                return;
            }
            self.accept_start(from, gen, members, fresh);
        }
    }

    /// Whether a generation that takes in afresh only `fresh` would count
    /// on state this node does not have (it never joined, or reset itself
    /// since).
    fn state_void_for(&self, fresh: &[u32]) -> bool {
        self.membership.completed_generations == 0 && !fresh.contains(&self.node_id)
    }

    fn broadcast_barrier(&mut self, phase: u8) {
        let me = self.node_id;
        let m = &mut self.membership;
        if phase == 1 {
            m.settled_at_stop = m.settled_gen;
        }
        let (gen, coordinator, settled) = (m.gen, m.coordinator, m.settled_at_stop);
        m.markers
            .entry((gen, coordinator, phase))
            .or_default()
            .insert(me, settled);
        let members = m.members.clone();
        for n in members {
            if n != me {
                self.send(
                    n,
                    PeerMsg::Barrier {
                        gen,
                        coordinator,
                        phase,
                        settled,
                    },
                );
            }
        }
    }

    fn barrier_complete(&self, phase: u8) -> bool {
        let m = &self.membership;
        m.markers
            .get(&(m.gen, m.coordinator, phase))
            .is_some_and(|s| m.members.iter().all(|n| s.contains_key(n)))
    }

    /// Moves through the phases whose barriers are complete.
    fn advance(&mut self) {
        while let Some(p) = self.membership.phase.barrier() {
            if !self.barrier_complete(p) {
                return;
            }
            match p {
                1 => {
                    self.all_stopped();
                    self.membership.phase = Phase::Quiet;
                    // From the Quiet marker on, a grant made here (a handle
                    // closing, a timeout) could reach a node after it has
                    // rebuilt without it: grants wait for the end.
                    self.hold_grants(true);
                    self.broadcast_barrier(2);
                }
                2 => {
                    self.rebuild();
                    self.membership.phase = Phase::Rebuilding;
                    self.broadcast_barrier(3);
                }
                _ => {
                    self.finish();
                    return;
                }
            }
        }
    }

    /// The members' locks as seen through the new member list: where a
    /// resource is mastered from now on.
    pub(super) fn weighted_members(&self, ls: &[u8]) -> Vec<(u32, u32)> {
        if !self.multi_node() {
            return self.cluster.members(ls);
        }
        let members = &self.membership.members;
        match self.cluster.placement(ls) {
            Some((_, w)) if !w.is_empty() => w
                .iter()
                .copied()
                .filter(|(n, _)| members.contains(n))
                .collect(),
            // Every member counts once, whether or not this node has it
            // configured yet (members added at runtime; module doc).
            _ => {
                let mut v: Vec<(u32, u32)> = members.iter().map(|&n| (n, 1)).collect();
                v.sort_unstable();
                v.dedup();
                v
            }
        }
    }

    /// Nobody originates old-generation messages any more: clear the
    /// directory, drop the departed nodes' locks.
    fn all_stopped(&mut self) {
        let me = self.node_id;
        // Every member's old traffic has arrived: what was parked from a
        // generation left unfinished is handled now, unless its sender (or
        // this node) starts afresh.
        let earlier = std::mem::take(&mut self.membership.parked_earlier);
        self.membership.parked_earlier_from.clear();
        self.membership.finished_earlier.clear();
        self.membership.left_unfinished = None;
        for (from, payload) in earlier {
            let m = &self.membership;
            if m.members.contains(&from) && !m.fresh.contains(&from) && !m.fresh.contains(&me) {
                self.on_peer_message(from, &payload);
            }
        }
        let m = &self.membership;
        let mut departed: Vec<u32> = m
            .settled
            .iter()
            .copied()
            .filter(|n| !m.members.contains(n))
            .chain(m.fresh.iter().copied())
            .filter(|&n| n != me)
            .collect();
        departed.sort_unstable();
        departed.dedup();
        self.membership.departed = departed.clone();
        // What a departed node sent while it was outside the generation,
        // or sends from outside later, is void now that its locks go.
        let m = &mut self.membership;
        m.held.retain(|(from, _)| !departed.contains(from));
        let members = m.members.clone();
        m.dropped.retain(|n| !members.contains(n));
        m.dropped
            .extend(departed.iter().copied().filter(|n| !members.contains(n)));
        let names: Vec<Vec<u8>> = self.lockspaces.keys().cloned().collect();
        for ls_name in names {
            let ls = self.lockspaces.get_mut(&ls_name).expect("lockspace");
            ls.directory.clear();
            if !departed.is_empty() {
                let owners: std::collections::HashSet<u64> = ls
                    .holders
                    .iter()
                    .filter(|(_, h)| matches!(h, Holder::Remote(n, _) if departed.contains(n)))
                    .filter_map(|(&e, _)| ls.engine.lock_owner(crate::types::LockId(e)))
                    .map(|o| o.0)
                    .collect();
                ls.engine
                    .release_owners_where(|o| !is_local_owner(o) && owners.contains(&o.0));
                ls.holders
                    .retain(|_, h| !matches!(h, Holder::Remote(n, _) if departed.contains(n)));
                ls.remote_index.retain(|(n, _), _| !departed.contains(n));
                ls.masters.retain(|_, m| !departed.contains(m));
                for &n in &departed {
                    ls.release_retired(None, n);
                }
                // Orphans whose close a departed master never confirmed:
                // nothing is pending for them any more (their copies go to
                // the new master with the mode known here), and adoptions
                // need not wait for an answer that will not come.
                for l in ls.locks.values_mut() {
                    if l.orphan && matches!(l.master, Master::Remote(n) if departed.contains(&n)) {
                        l.state = RemoteState::Granted;
                        l.convert = None;
                        l.cancelling = false;
                    }
                }
            }
            self.flush(&ls_name);
        }
    }

    /// The new master of a resource whose current master is `current`.
    fn new_master(&self, ls: &[u8], name: &ResName, current: Option<u32>) -> u32 {
        let me = self.node_id;
        let m = &self.membership;
        if !self.cluster.nodir(ls) && !m.rehash {
            if let Some(c) = current {
                if m.members.contains(&c) && !m.departed.contains(&c) {
                    return c;
                }
            }
        }
        directory_node(name.as_bytes(), &self.weighted_members(ls)).unwrap_or(me)
    }

    /// Phase 2: tell the directory what is mastered here, move resources
    /// whose master changed, send the survivors' locks to their new masters.
    fn rebuild(&mut self) {
        let me = self.node_id;
        let rehash = self.members_disagree_on_masters();
        self.membership.rehash = rehash;
        if rehash {
            eprintln!(
                "udlmd: node {me}: generation {} follows one that was left unfinished; \
                 every resource moves to its directory node",
                self.membership.gen
            );
        }
        let names: Vec<Vec<u8>> = self.lockspaces.keys().cloned().collect();
        for ls_name in names {
            let nodir = self.cluster.nodir(&ls_name);
            if rehash {
                // Masters cached for names of other nodes may be stale, and
                // names this node took on without a lock granted yet (a
                // waiting request's `RecLock`) move like the others.
                let ls = self.lockspaces.get_mut(&ls_name).expect("lockspace");
                ls.masters.retain(|_, m| *m == me);
                let mut names: Vec<ResName> = ls.masters.keys().copied().collect();
                names.retain(|n| self.new_master(&ls_name, n, Some(me)) != me);
                let ls = self.lockspaces.get_mut(&ls_name).expect("lockspace");
                for n in names {
                    ls.masters.remove(&n);
                    ls.recovered_lvb.remove(&n);
                }
            }
            // Resources mastered here that move away (nodir, or after an
            // abandoned generation): their holders here become remote
            // holders of the new master.
            if nodir || rehash {
                let here: Vec<ResName> = self
                    .lockspaces
                    .get(&ls_name)
                    .expect("lockspace")
                    .engine
                    .resources()
                    .iter()
                    .map(|r| r.name)
                    .collect();
                for name in here {
                    if self.new_master(&ls_name, &name, Some(me)) != me {
                        self.move_away(&ls_name, &name);
                    }
                }
            }
            // Our process copies whose master departed or moved.
            let mut ids: Vec<u32> = self
                .lockspaces
                .get(&ls_name)
                .expect("lockspace")
                .locks
                .iter()
                .filter(|(_, l)| matches!(l.master, Master::Remote(_)))
                .map(|(&id, _)| id)
                .collect();
            ids.sort_unstable();
            for id in ids {
                let ls = self.lockspaces.get(&ls_name).expect("lockspace");
                let Some(l) = ls.locks.get(&id) else { continue };
                let Master::Remote(cur) = l.master else {
                    continue;
                };
                let name = l.name;
                let new = self.new_master(&ls_name, &name, Some(cur));
                if self.trace {
                    eprintln!(
                        "udlmd: node {me}: generation {}: lock {id} master {cur} -> {new}",
                        self.membership.gen
                    );
                }
                // A master that left and is back afresh (restarted, or
                // healed after fencing itself) knows nothing of our lock,
                // even when the name maps to it again. A master kept
                // without a rehash holds the lock as it stands, pending
                // operation included (an abandoned generation that moved
                // it here delivered its `RecLock` before our Stop marker):
                // sending the operation again would complete it twice.
                if new != cur || self.membership.departed.contains(&cur) || rehash {
                    self.recover_process_copy(&ls_name, id, new);
                }
            }
            // Directory records for what this node masters now.
            let weighted = self.weighted_members(&ls_name);
            let ls = self.lockspaces.get_mut(&ls_name).expect("lockspace");
            if !nodir {
                let mut mine: Vec<ResName> = ls
                    .masters
                    .iter()
                    .filter(|(_, &m)| m == me)
                    .map(|(n, _)| *n)
                    .collect();
                mine.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
                for name in mine {
                    match directory_node(name.as_bytes(), &weighted) {
                        Some(d) if d != me => self.send(
                            d,
                            PeerMsg::DirRecord {
                                ls: ls_name.clone(),
                                name: name.as_bytes().to_vec(),
                            },
                        ),
                        _ => {
                            self.lockspaces
                                .get_mut(&ls_name)
                                .expect("lockspace")
                                .directory
                                .insert(name, me);
                        }
                    }
                }
            } else {
                // Static masters: keep only the names that stay here, with
                // or without locks on them now.
                let kept: Vec<ResName> = self
                    .lockspaces
                    .get(&ls_name)
                    .expect("lockspace")
                    .masters
                    .iter()
                    .filter(|(_, &m)| m == me)
                    .map(|(n, _)| *n)
                    .filter(|n| self.new_master(&ls_name, n, Some(me)) == me)
                    .collect();
                let ls = self.lockspaces.get_mut(&ls_name).expect("lockspace");
                ls.masters.clear();
                ls.masters.extend(kept.into_iter().map(|n| (n, me)));
            }
            self.flush(&ls_name);
        }
        let m = &mut self.membership;
        m.settled = m.members.clone();
        m.settled_gen = m.gen;
        if m.members.len() >= 2 {
            m.paired = true;
        }
        let incarnations: HashMap<u32, u64> = m
            .members
            .iter()
            .filter_map(|&n| m.incarnation(n).map(|i| (n, i)))
            .collect();
        m.settled_incarnation = incarnations;
    }

    fn hold_grants(&mut self, held: bool) {
        for ls in self.lockspaces.values_mut() {
            ls.engine.hold_grants(held);
        }
    }

    /// Whether the members of the generation being rebuilt may differ in
    /// where they think resources are mastered: they last rebuilt in
    /// different generations (an abandoned one that some of them rebuilt),
    /// as their Stop markers say. Fresh members bring no state.
    fn members_disagree_on_masters(&self) -> bool {
        let m = &self.membership;
        let Some(stops) = m.markers.get(&(m.gen, m.coordinator, 1)) else {
            return false;
        };
        let mut settled = m
            .members
            .iter()
            .filter(|n| !m.fresh.contains(n))
            .filter_map(|n| stops.get(n));
        let first = settled.next();
        settled.any(|s| Some(s) != first)
    }

    /// A resource mastered here moves to another node (nodir with new
    /// members, or every resource after an abandoned generation): our own
    /// locks on it are rebuilt there like any holder's.
    fn move_away(&mut self, ls_name: &[u8], name: &ResName) {
        let ls = self.lockspaces.get_mut(ls_name).expect("lockspace");
        let info = ls.engine.resources().into_iter().find(|r| r.name == *name);
        let Some(info) = info else { return };
        let lvb = info.lvb.filter(|_| info.lvb_valid);
        // (lock id here, granted mode, pending (mode, flags))
        let mut ours: Vec<OwnLock> = Vec::new();
        for (queue, locks) in [
            (0u8, &info.granted),
            (1, &info.converting),
            (2, &info.waiting),
        ] {
            for li in locks {
                if let Some(Holder::Local(id)) = ls.holders.remove(&li.lkid.0) {
                    let granted = li.granted.map(|m| m as u8);
                    let pending = match queue {
                        1 | 2 => li.requested.map(|m| (m as u8, li.flags)),
                        _ => None,
                    };
                    ours.push((id, granted, pending));
                } else {
                    ls.holders.remove(&li.lkid.0);
                }
            }
        }
        ls.remote_index.retain(|_, e| ls.holders.contains_key(e));
        ls.engine.discard_resource(name.as_bytes());
        ls.masters.remove(name);
        for (id, granted, pending) in ours {
            let Some(l) = ls.locks.get_mut(&id) else {
                continue;
            };
            l.master = Master::Remote(0);
            match granted {
                Some(g) => {
                    l.grmode = g as i8;
                    l.state = RemoteState::Granted;
                    if l.flags & lkf::VALBLK != 0 {
                        l.lvb = lvb;
                    }
                    if let Some((mode, flags)) = pending {
                        l.convert = Some((mode, flags));
                    }
                }
                None => {
                    l.grmode = -1;
                    l.state = RemoteState::Waiting;
                    if let Some((mode, flags)) = pending {
                        let valblk = (flags & lkf::VALBLK != 0).then_some([0u8; 32]);
                        l.request = Some((mode, flags, valblk));
                    }
                }
            }
        }
        // Now they are ordinary process copies of a departed master.
    }

    /// One of our locks whose master departed or moved to `new`.
    fn recover_process_copy(&mut self, ls_name: &[u8], id: u32, new: u32) {
        let me = self.node_id;
        let ls = self.lockspaces.get_mut(ls_name).expect("lockspace");
        let Some(l) = ls.locks.get_mut(&id) else {
            return;
        };
        l.silent_completions = 0;
        if l.releasing {
            // The unlock (or force-unlock) completes as if answered.
            let cb = Self::callback_for(l, false, Status::Unlocked.to_user(), 0, None);
            if !l.orphan {
                self.out.push((l.owner, (id, l.incarnation), cb.encode()));
            }
            ls.free_id(id);
            return;
        }
        if l.grmode < 0 {
            if l.orphan || l.cancelling {
                if l.cancelling && !l.orphan {
                    let cb = Self::callback_for(l, false, Status::Cancelled.to_user(), 0, None);
                    self.out.push((l.owner, (id, l.incarnation), cb.encode()));
                }
                ls.free_id(id);
                return;
            }
            // A request still to be granted: sent again afterwards. The new
            // master hears of the name now, for the LVB's sake.
            let (name, flags) = (l.name, l.flags);
            if new == me {
                note_lvb(&mut ls.recovered_lvb, name, NOT_GRANTED, flags, None);
            } else {
                let msg = PeerMsg::RecLock {
                    ls: ls_name.to_vec(),
                    name: name.as_bytes().to_vec(),
                    lkid: id,
                    owner: l.owner.0,
                    pid: l.pid,
                    mode: NOT_GRANTED,
                    flags,
                    has_bast: false,
                    orphan: false,
                    lvb: None,
                };
                self.send(new, msg);
                self.hint_directory(ls_name, name, new);
            }
            let ls = self.lockspaces.get_mut(ls_name).expect("lockspace");
            let Some(l) = ls.locks.get_mut(&id) else {
                return;
            };
            // Its master may still hold the request (a resync after an
            // abandoned generation): its answer, if it comes first, applies
            // as usual and the request sent again is ignored there. Either
            // way the request is on its way again: a plain unlock waits
            // for the answer (EBUSY), as while it first went out.
            if l.master != Master::Remote(new) || self.membership.departed.contains(&new) {
                l.master = Master::Unknown;
            }
            l.state = RemoteState::InFlight;
            l.resend = RequestResend::Listed;
            if l.request.is_none() {
                let valblk = (l.flags & lkf::VALBLK != 0).then_some([0u8; 32]);
                let mode = l.convert.map(|c| c.0).unwrap_or(Mode::Nl as u8);
                l.request = Some((mode, l.flags, valblk));
            }
            ls.resend.push(Resend::Request(id));
            return;
        }
        if l.cancelling {
            let cb = Self::callback_for(l, false, Status::Cancelled.to_user(), 0, None);
            self.out.push((l.owner, (id, l.incarnation), cb.encode()));
            l.convert = None;
        }
        l.cancelling = false;
        l.state = RemoteState::Granted;
        if let Some((mode, flags)) = l.convert.take() {
            l.convert_resend = true;
            ls.resend.push(Resend::Convert {
                lkid: id,
                mode,
                flags,
            });
        }
        let mode = l.grmode as u8;
        let lvb = if l.flags & lkf::VALBLK != 0 {
            l.lvb
        } else {
            None
        };
        if new == me {
            let rec = RecoveredLock {
                owner: l.owner,
                pid: l.pid,
                name: l.name.as_bytes(),
                mode,
                flags: l.flags,
                has_bast: l.user.bast != 0,
                orphan: l.orphan,
            };
            let name = l.name;
            let flags = l.flags;
            match ls.engine.recover_granted(rec) {
                Ok(e) => {
                    l.master = Master::Local(e.0);
                    ls.holders.insert(e.0, Holder::Local(id));
                    ls.masters.insert(name, me);
                    note_lvb(&mut ls.recovered_lvb, name, mode, flags, lvb);
                }
                Err(e) => {
                    eprintln!("udlmd: cannot rebuild lock {id}: {e:?}");
                    ls.free_id(id);
                }
            }
        } else {
            l.master = Master::Remote(new);
            ls.masters.insert(l.name, new);
            let msg = PeerMsg::RecLock {
                ls: ls_name.to_vec(),
                name: l.name.as_bytes().to_vec(),
                lkid: id,
                owner: l.owner.0,
                pid: l.pid,
                mode,
                flags: l.flags,
                has_bast: l.user.bast != 0,
                orphan: l.orphan,
                lvb,
            };
            let name = l.name;
            self.send(new, msg);
            self.hint_directory(ls_name, name, new);
        }
    }

    /// Tells the directory node of `name` that `master` masters it, for
    /// the case where `master` learns it only from our `RecLock`, after
    /// its own directory records went out.
    fn hint_directory(&mut self, ls_name: &[u8], name: ResName, master: u32) {
        if self.cluster.nodir(ls_name) {
            return;
        }
        let me = self.node_id;
        match directory_node(name.as_bytes(), &self.weighted_members(ls_name)) {
            Some(d) if d == master => {}
            Some(d) if d == me => {
                if let Some(ls) = self.lockspaces.get_mut(ls_name) {
                    ls.directory.entry(name).or_insert(master);
                }
            }
            Some(d) => self.send(
                d,
                PeerMsg::DirHint {
                    ls: ls_name.to_vec(),
                    name: name.as_bytes().to_vec(),
                    master,
                },
            ),
            None => {}
        }
    }

    /// A recovery message (DirRecord, RecLock) for lockspace `ls_name`.
    pub(super) fn recovery_message(&mut self, from: u32, msg: PeerMsg) {
        let me = self.node_id;
        // One that arrives while a newer generation stops comes from a
        // generation this node left before its end (others may have
        // finished it): it is applied like any message of that time, and
        // the newer generation's rebuild starts from there.
        match msg {
            PeerMsg::DirRecord { ls, name } => {
                let Some(rn) = ResName::new(&name) else {
                    return;
                };
                if let Some(l) = self.lockspaces.get_mut(&ls) {
                    l.directory.insert(rn, from);
                    // A claim made here only for a waiting request of a
                    // node whose master was a dead node's stale cache (it
                    // had given the name up): the name lives on `from`.
                    if l.masters.get(&rn) == Some(&me) && !l.engine.has_resource(&name) {
                        l.masters.remove(&rn);
                        l.recovered_lvb.remove(&rn);
                    }
                }
            }
            PeerMsg::DirHint { ls, name, master } => {
                let Some(rn) = ResName::new(&name) else {
                    return;
                };
                if !self.membership.members.contains(&master) {
                    return;
                }
                if let Some(l) = self.lockspaces.get_mut(&ls) {
                    l.directory.entry(rn).or_insert(master);
                }
            }
            PeerMsg::RecLock {
                ls,
                name,
                lkid,
                owner,
                pid,
                mode,
                flags,
                has_bast,
                orphan,
                lvb,
            } => {
                let Some(rn) = ResName::new(&name) else {
                    return;
                };
                let nodir = self.cluster.nodir(&ls);
                let dir = directory_node(&name, &self.weighted_members(&ls));
                let Some(l) = self.lockspaces.get_mut(&ls) else {
                    return;
                };
                // A resource that was never lost here keeps its LVB.
                let live = l.engine.has_resource(&name) && !l.recovered_lvb.contains_key(&rn);
                if let Some(&e) = l.remote_index.get(&(from, lkid)) {
                    // Sent again after an abandoned generation, or to a
                    // master kept through a rehash: held already. A
                    // conversion still waiting here goes, silently: the
                    // sender sends it again when the recovery ends, and
                    // answered here meanwhile (granted, or ended by a
                    // timeout) it would be answered twice, or applied again
                    // after it ended (sim seed 5418601: two grants of one
                    // conversion).
                    if mode != NOT_GRANTED {
                        l.engine.withdraw_conversion(crate::types::LockId(e));
                    }
                    return;
                }
                if mode == NOT_GRANTED {
                    // A waiting request of the sender, which comes again
                    // later: this node masters the name from now on,
                    // unless a surviving master has told this directory
                    // node that it masters the name (the sender's master
                    // was a stale cache; its request finds the name there).
                    let elsewhere = !nodir
                        && dir == Some(me)
                        && l.directory.get(&rn).is_some_and(|&m| m != me && m != from);
                    if elsewhere && !l.engine.has_resource(&name) {
                        return;
                    }
                    if !live {
                        note_lvb(&mut l.recovered_lvb, rn, mode, flags, None);
                    }
                    l.masters.insert(rn, me);
                    if !nodir && dir == Some(me) {
                        l.directory.insert(rn, me);
                    }
                    return;
                }
                let rec = RecoveredLock {
                    owner: super::remote_owner(from, owner),
                    pid,
                    name: &name,
                    mode,
                    flags,
                    has_bast,
                    orphan,
                };
                match l.engine.recover_granted(rec) {
                    Ok(e) => {
                        l.holders.insert(e.0, Holder::Remote(from, lkid));
                        l.remote_index.insert((from, lkid), e.0);
                        l.masters.insert(rn, me);
                        if !nodir && dir == Some(me) {
                            l.directory.insert(rn, me);
                        }
                        if !live {
                            note_lvb(&mut l.recovered_lvb, rn, mode, flags, lvb);
                        }
                    }
                    Err(e) => eprintln!("udlmd: cannot rebuild lock {lkid} of node {from}: {e:?}"),
                }
            }
            _ => {}
        }
    }

    /// Phase 3 done: LVBs, grants, parked messages, requests sent again.
    fn finish(&mut self) {
        let names: Vec<Vec<u8>> = self.lockspaces.keys().cloned().collect();
        for ls_name in &names {
            let ls = self.lockspaces.get_mut(ls_name).expect("lockspace");
            for (name, r) in ls.recovered_lvb.drain() {
                if r.valblk_seen {
                    let valid = r.best.is_some();
                    ls.engine
                        .set_recovered_lvb(name.as_bytes(), r.best.or(r.any), valid);
                }
            }
            ls.engine.hold_grants(false);
            ls.engine.grant_everything();
        }
        let m = &mut self.membership;
        m.phase = Phase::Running;
        m.completed_generations += 1;
        m.departed.clear();
        m.held.clear();
        m.rehash = false;
        let gen = m.gen;
        let parked = std::mem::take(&mut m.parked);
        eprintln!(
            "udlmd: node {} finished recovery generation {gen}, members {:?}",
            self.node_id, m.members
        );
        for ls_name in &names {
            self.flush(ls_name);
        }
        self.broadcast_hello();
        for (to, msg) in std::mem::take(&mut self.membership.deferred) {
            self.send(to, msg);
        }
        // The names of a handle closed meanwhile may have moved, and a
        // master kept through a generation left unfinished may still hold a
        // copy of its locks that its node never sent again: every member
        // hears of the close, once, after what the handle's own deferred
        // messages said (sim seed 3024108: a lock outlived its handle on
        // such a master).
        for (ls, owner) in std::mem::take(&mut self.membership.closed_in_recovery) {
            self.tell_close_to_members(ls, owner);
        }
        for (from, payload) in parked {
            self.on_peer_message(from, &payload);
        }
        for ls_name in &names {
            let resend = match self.lockspaces.get_mut(ls_name) {
                Some(ls) => std::mem::take(&mut ls.resend),
                None => continue,
            };
            // A request may be listed by an abandoned generation and again
            // by this one: it goes out once.
            let mut requested = std::collections::HashSet::new();
            for r in resend {
                if let Resend::Request(lkid) = r {
                    if !requested.insert(lkid) {
                        continue;
                    }
                }
                self.resend(ls_name, r);
            }
            self.flush(ls_name);
        }
    }

    fn resend(&mut self, ls_name: &[u8], r: Resend) {
        if self.trace {
            eprintln!("udlmd: node {} resends {r:?}", self.node_id);
        }
        match r {
            Resend::Request(lkid) => {
                let Some(l) = self
                    .lockspaces
                    .get(ls_name)
                    .and_then(|ls| ls.locks.get(&lkid))
                else {
                    return;
                };
                let Some((mode, flags, lvb)) = l.request else {
                    return;
                };
                let name = l.name;
                let master = self.master_of(ls_name, &name);
                self.park(
                    ls_name,
                    name,
                    Parked::Request {
                        lkid,
                        mode,
                        flags,
                        lvb,
                    },
                );
                if let Some(m) = master {
                    self.resolved(ls_name, name, m);
                }
            }
            Resend::Convert { lkid, mode, flags } => {
                let ls = self.lockspaces.get_mut(ls_name).expect("lockspace");
                let Some(l) = ls.locks.get_mut(&lkid) else {
                    return;
                };
                // Answered since it was listed (sim seed 3716280: a grant
                // parked from a generation left unfinished), or listed
                // twice: it goes out at most once, and only while it waits.
                if !std::mem::take(&mut l.convert_resend) {
                    return;
                }
                // A conversion from PW or EX to a mode not above it writes
                // the value block its caller gave (kept in the copy); any
                // other reads, and what it carries does not matter.
                let writes = l.grmode >= Mode::Pw as i8 && mode as i8 <= l.grmode;
                let lvb = (flags & lkf::VALBLK != 0).then(|| match l.lvb {
                    Some(v) if writes => v,
                    _ => [0u8; 32],
                });
                match l.master {
                    Master::Local(e) => {
                        let (owner, pid, bast) = (l.owner, l.pid, l.user.bast != 0);
                        if let Err(err) = ls.engine.convert(
                            owner,
                            pid,
                            crate::types::LockId(e),
                            mode as i32,
                            flags,
                            lvb.as_ref(),
                            bast,
                        ) {
                            let cb = Self::callback_for(l, false, err.to_raw(), 0, None);
                            self.out.push((owner, (lkid, l.incarnation), cb.encode()));
                        }
                    }
                    Master::Remote(m) => {
                        l.state = RemoteState::InFlight;
                        l.convert = Some((mode, flags));
                        let msg = PeerMsg::Convert {
                            ls: ls_name.to_vec(),
                            lkid,
                            pid: l.pid,
                            mode,
                            flags,
                            lvb,
                            has_bast: l.user.bast != 0,
                        };
                        self.send(m, msg);
                    }
                    Master::Unknown => {}
                }
            }
        }
    }

    /// This node's earlier state is void (it was excluded, or lost its
    /// majority): every lock of its handles is dropped; requests still
    /// waiting complete with ENOLCK.
    pub(super) fn reset_state(&mut self, why: &str) {
        // The locks they speak of are gone with everything else.
        self.membership.deferred.clear();
        self.membership.closed_in_recovery.clear();
        let mut dropped = 0usize;
        let mut holders: BTreeSet<u32> = BTreeSet::new();
        let names: Vec<Vec<u8>> = self.lockspaces.keys().cloned().collect();
        for ls_name in &names {
            let max = self.limits.max_locks_per_lockspace;
            let ls = self.lockspaces.get_mut(ls_name).expect("lockspace");
            let mut ids: Vec<u32> = ls.locks.keys().copied().collect();
            ids.sort_unstable();
            for id in ids {
                let l = &ls.locks[&id];
                let granted = match l.master {
                    Master::Local(e) => ls
                        .engine
                        .lock_info_by_id(crate::types::LockId(e))
                        .is_some_and(|i| i.granted.is_some()),
                    _ => l.grmode >= 0,
                };
                if !granted && !l.orphan {
                    let cb = Self::callback_for(l, false, libc::ENOLCK, 0, None);
                    self.out.push((l.owner, (id, l.incarnation), cb.encode()));
                }
                if !l.orphan {
                    if let Some(h) = self.handles.get(&l.owner) {
                        holders.insert(h.creds.pid);
                    }
                }
                dropped += 1;
                ls.free_id(id);
            }
            ls.engine = crate::engine::Engine::new(max);
            ls.holders.clear();
            ls.remote_index.clear();
            ls.masters.clear();
            ls.lookups.clear();
            ls.directory.clear();
            ls.resend.clear();
            ls.recovered_lvb.clear();
        }
        let m = &mut self.membership;
        m.parked.clear();
        m.parked_earlier.clear();
        m.parked_earlier_from.clear();
        m.finished_earlier.clear();
        m.left_unfinished = None;
        m.held.clear();
        m.dropped.clear();
        m.settled.clear();
        m.completed_generations = 0;
        if dropped > 0 {
            eprintln!(
                "udlmd: node {}: {why}; {dropped} lock(s) of its programs are dropped",
                self.node_id
            );
        }
        self.deliver_callbacks();
        if self.membership.self_fence_abort {
            for pid in holders {
                eprintln!("udlmd: self_fence=abort: ending process {pid}, which held locks");
                crate::sys::kill_process(pid);
            }
        }
    }

    /// A member that has seen no majority for half its lease stops: the
    /// others will take its locks over once the lease has run out.
    fn check_majority(&mut self) {
        let m = &self.membership;
        let connected = 1 + self
            .cluster
            .nodes
            .iter()
            .filter(|&&n| {
                n != self.node_id && matches!(m.peers.get(&n), Some(PeerState::Up { .. }))
            })
            .count();
        let have = match m.external_quorum {
            Some(q) => q,
            None => connected * 2 > self.cluster.nodes.len() || self.two_node_alone(),
        };
        if have {
            self.membership.no_majority_since = None;
            return;
        }
        let now = self.now_ms;
        let since = *self.membership.no_majority_since.get_or_insert(now);
        let m = &self.membership;
        if m.phase == Phase::Down || now.saturating_sub(since) < m.lease_ms / 2 {
            return;
        }
        eprintln!(
            "udlmd: node {}: no majority of the {} configured nodes for {} ms: this node stops granting (self_fence={})",
            self.node_id,
            self.cluster.nodes.len(),
            now.saturating_sub(since),
            if m.self_fence_abort { "abort" } else { "log" }
        );
        self.fence_self("cut off from the majority");
    }

    /// This node stops: its locks are dropped (its programs told as
    /// `self_fence` says), and it waits to join again afresh.
    fn fence_self(&mut self, why: &str) {
        self.reset_state(why);
        let me = self.node_id;
        let m = &mut self.membership;
        m.phase = Phase::Down;
        m.members = vec![me];
        m.settled.clear();
        m.completed_generations = 0;
        m.no_majority_since = None;
        m.awaiting_exclusion.clear();
        m.fresh.clear();
        // A Start held back before counts on what this node just dropped.
        m.deferred_start = None;
        // Whoever still hears this node learns that it left the generation
        // (a coordinator waiting for its markers starts another).
        self.broadcast_hello();
    }

    /// This node is shutting down: the others need not wait for a lease.
    /// Returns whether anyone was told.
    pub fn leave(&mut self) -> bool {
        let me = self.node_id;
        self.membership.leaving = true;
        let members = self.membership.members.clone();
        let mut told = false;
        for n in members {
            if n != me {
                self.send(n, PeerMsg::Leave);
                told = true;
            }
        }
        told
    }

    /// Lost nodes waiting for the fence command (the daemon runs it).
    pub fn fence_wanted(&self) -> Vec<u32> {
        self.membership.fence_wanted.iter().copied().collect()
    }

    /// The fence command succeeded for `node`.
    pub fn fenced(&mut self, node: u32) {
        let m = &mut self.membership;
        if m.fence_wanted.remove(&node) {
            eprintln!("udlmd: node {node} is fenced");
            m.fenced.insert(node);
            self.check_membership();
        }
    }

    // ----- membership changes from outside (node/control.rs) -------------

    /// The members of `members` this node does not have configured.
    fn unknown_members(&self, members: &[u32]) -> Vec<u32> {
        members
            .iter()
            .copied()
            .filter(|n| *n != self.node_id && !self.cluster.nodes.contains(n))
            .collect()
    }

    /// Whether the transport's session with `node` is up.
    pub fn peer_connected(&self, node: u32) -> bool {
        matches!(self.membership.peers.get(&node), Some(PeerState::Up { .. }))
    }

    /// Whether `node` may still be running with the locks it had: its
    /// session is up, or was lost less than a lease ago, and it neither
    /// left nor was declared fenced. A node never seen is not running.
    pub fn node_may_be_running(&self, node: u32) -> bool {
        self.may_be_running(node)
    }

    /// How long ago the session with `node` was lost (ms), if it is down.
    pub fn node_down_for_ms(&self, node: u32) -> Option<u64> {
        match self.membership.peers.get(&node) {
            Some(PeerState::Down { since_ms }) => Some(self.now_ms.saturating_sub(*since_ms)),
            _ => None,
        }
    }

    /// Node `id` (reached at `address`, for reports) becomes a configured
    /// node; it joins through the next generation once its session is up.
    pub fn add_configured_node(&mut self, id: u32, address: String) {
        if id == self.node_id || self.cluster.nodes.contains(&id) {
            return;
        }
        self.cluster.nodes.push(id);
        self.cluster.nodes.sort_unstable();
        self.cluster.addresses.insert(id, address);
        eprintln!("udlmd: node {id} added to the configured nodes");
        self.check_membership();
    }

    /// Node `id` is no longer configured. The caller has checked that it
    /// cannot be running ([`Node::node_may_be_running`]): the next
    /// generation drops its locks, as a departed member's.
    pub fn remove_configured_node(&mut self, id: u32) {
        if id == self.node_id || !self.cluster.nodes.contains(&id) {
            return;
        }
        self.cluster.nodes.retain(|&n| n != id);
        self.cluster.addresses.remove(&id);
        let m = &mut self.membership;
        m.peers.remove(&id);
        m.reports.remove(&id);
        m.heard.remove(&id);
        m.awaiting_exclusion.remove(&id);
        eprintln!("udlmd: node {id} removed from the configured nodes");
        self.release_stop_marker();
        self.check_membership();
    }

    /// Node `id` is now reached at `address` (reports only; the transport
    /// dials the new address).
    pub fn set_node_address(&mut self, id: u32, address: String) {
        if self.cluster.nodes.contains(&id) {
            self.cluster.addresses.insert(id, address);
        }
    }

    /// Node `node`, not connected here, is dead and fenced, as `by` says
    /// (this node's id when told from outside): it counts as gone without
    /// waiting for its lease, as a node that left does, and the fence
    /// command need not run for it. The news goes to every connected peer.
    pub fn declare_fenced(&mut self, node: u32, by: u32) {
        let m = &mut self.membership;
        let new = m.left.insert(node) | m.fenced.insert(node);
        m.fence_wanted.remove(&node);
        if !new {
            return;
        }
        if by == self.node_id {
            eprintln!("udlmd: node {node} is dead and fenced (told from outside)");
        } else {
            eprintln!("udlmd: node {node} is dead and fenced (told by node {by})");
        }
        let up: Vec<u32> = self
            .membership
            .peers
            .iter()
            .filter(|(&n, p)| n != node && n != by && matches!(p, PeerState::Up { .. }))
            .map(|(&n, _)| n)
            .collect();
        for n in up {
            self.send(n, PeerMsg::Fenced { node });
        }
        self.release_stop_marker();
        self.check_membership();
    }

    /// Quorum as the outside source (corosync's votequorum) says: from now
    /// on it replaces the majority rule, for starting generations and for
    /// this node's own fencing (after `lease_ms / 2` without quorum).
    pub fn set_external_quorum(&mut self, quorate: bool) {
        if self.membership.external_quorum != Some(quorate) {
            eprintln!(
                "udlmd: the membership source says this node is {}",
                if quorate { "quorate" } else { "not quorate" }
            );
        }
        self.membership.external_quorum = Some(quorate);
        self.check_membership();
    }

    /// Quorum as the outside source last said (`None`: no such source).
    pub fn external_quorum(&self) -> Option<bool> {
        self.membership.external_quorum
    }

    /// The nodes where udlm runs, as the outside source's group has them:
    /// every other configured node counts as lost from now on (its lease
    /// running), even while its session is up; one back in the group is
    /// judged by its session again.
    pub fn set_external_group(&mut self, group: &[u32]) {
        let now = self.now_ms;
        let me = self.node_id;
        let nodes = self.cluster.nodes.clone();
        let m = &mut self.membership;
        let mut g = group.to_vec();
        g.sort_unstable();
        g.dedup();
        m.external_group = Some(g);
        for n in nodes {
            if n == me || group.contains(&n) {
                if m.external_out.remove(&n).is_some() {
                    eprintln!("udlmd: node {n} is back in the membership source's group");
                }
            } else if !m.external_out.contains_key(&n) {
                eprintln!("udlmd: node {n} is out of the membership source's group");
                m.external_out.insert(n, now);
            }
        }
        self.check_membership();
    }

    /// For `udlm status`.
    pub(super) fn membership_json(&self) -> String {
        let m = &self.membership;
        let view = if self.multi_node() {
            self.live_view()
        } else {
            vec![self.node_id]
        };
        format!(
            "\"generation\":{},\"coordinator\":{},\"members\":{:?},\"state\":\"{}\",\"quorate\":{},\"live\":{:?},\"fencing\":{:?}",
            m.gen,
            m.coordinator,
            m.members,
            m.phase.name(),
            !self.multi_node() || self.quorate(&view),
            view,
            m.fence_wanted.iter().collect::<Vec<_>>()
        )
    }
}

fn note_lvb(
    table: &mut crate::fasthash::FastMap<ResName, RecoveredLvb>,
    name: ResName,
    mode: u8,
    flags: u32,
    lvb: Option<Lvb>,
) {
    let e = table.entry(name).or_default();
    if flags & lkf::VALBLK == 0 {
        return;
    }
    e.valblk_seen = true;
    if let Some(v) = lvb {
        if mode > Mode::Cr as u8 && mode <= Mode::Ex as u8 {
            e.best = Some(v);
        }
        e.any = Some(v);
    }
}
