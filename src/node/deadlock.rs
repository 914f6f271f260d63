//! Cluster-wide deadlock detection (a udlm extension; include/udlm.h).
//!
//! The kernel finds only conversion deadlocks on one resource (engine,
//! spec §3.5). A cycle of waits across resources and nodes — handle A waits
//! for a lock B holds while B waits for one A holds — hangs forever there.
//! udlm finds such cycles and breaks each by ending one waiting request (or
//! conversion) with EDEADLK, as `dlm_ls_deadlock_cancel` would.
//!
//! The graph. Its vertices are lock owners (handles, named cluster-wide by
//! node and handle id); an edge A → B says a request or conversion of A
//! cannot be granted while a lock of B holds an incompatible mode on the same
//! resource ([`Engine::wait_edges`]: certain blocking only, no queue order;
//! `LKF_NODLCKWT` waiters and `LKF_NODLCKBLK` holders are left out). An
//! owner waiting for itself is not a deadlock (a program may queue behind
//! its own lock and release that lock later).
//!
//! When. A request or conversion still waiting `deadlock_detect_ms` after it
//! was made (default [`DEFAULT_DETECT_MS`], `0` turns detection off) makes
//! its node ask the lockspace's detector for a round, and again every
//! `deadlock_detect_ms` while it waits; nothing happens while nobody waits
//! that long. The detector is the lowest member node; one round at a time
//! per lockspace.
//!
//! A round. (1) Collect: every member sends the edges of the resources it
//! masters (bounded, [`MAX_EDGES_PER_NODE`]; an edge left out can only hide
//! a cycle). (2) Search: the detector looks for a cycle, owners in
//! ascending order, and picks as victim the waiting lock of the cycle whose
//! owner has the highest id (node id, then handle id: the newest handle of
//! the highest node). (3) Confirm: every edge of the cycle is checked on its
//! master again, after all reports came in; an edge holds if neither lock
//! changed (same change stamp) since it was reported. (4) The victim's master
//! ends the victim with EDEADLK if its edge still holds.
//!
//! Why no false positive. Each confirmed edge held without a break from its
//! report (time r_i) to its confirmation (c_i), and every c_i comes after
//! every r_i; so at the moment of the last report all edges held at once:
//! the cycle was real. Recoveries rebuild engines with new stamps, so no
//! edge survives one; a round that sees the membership change is dropped.
//! The simulator checks the claim against its global view.

use super::peer::{EdgeWire, PeerMsg, MAX_EDGES_PER_MESSAGE};
use super::{is_local_owner, remote_owner, Master, Node};
use crate::engine::WaitEdge;
use crate::types::{LockId, Owner, Status};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How long a request waits before a round is asked for, by default.
pub const DEFAULT_DETECT_MS: u64 = 5000;
/// Most edges one node reports in a round.
pub const MAX_EDGES_PER_NODE: usize = 4096;
/// A round not finished by then is dropped (a member did not answer).
const ROUND_TIMEOUT_MS: u64 = 5000;

/// A round in progress on the detector.
pub(super) struct Round {
    id: u64,
    gen: u64,
    started_ms: u64,
    /// Members whose report is not complete yet.
    pending: BTreeSet<u32>,
    /// Edges reported, with the master that reported each.
    edges: Vec<(u32, EdgeWire)>,
    confirming: Option<Confirming>,
}

/// A cycle being confirmed.
struct Confirming {
    /// Its edges in order, each with the node that masters it.
    cycle: Vec<(u32, EdgeWire)>,
    /// Indexes of the edges whose master has not confirmed yet.
    pending: BTreeSet<u32>,
    /// The edge whose waiter is the victim.
    victim: usize,
}

/// Deadlock detection state of a node.
#[derive(Default)]
pub(super) struct Detector {
    /// Rounds this node runs as detector, per lockspace.
    rounds: HashMap<Vec<u8>, Round>,
    next_round: u64,
    /// When this node last asked for a round, per lockspace.
    asked_ms: HashMap<Vec<u8>, u64>,
    /// Deadlocks broken here, for status reports.
    pub victims: u64,
    /// Cycles found and confirmed here, kept for the simulator's check
    /// when it asked.
    searches: Option<Vec<DeadlockEvent>>,
}

/// What the detector did, for the simulator: a cycle found by a search,
/// and later (if every edge holds) its confirmation. A confirmed cycle must
/// be one of the global state at the time of the search (module doc: each
/// confirmed edge held from its report, before the search, to its
/// confirmation, after it).
#[derive(Clone, Debug)]
pub enum DeadlockEvent {
    Found {
        ls: Vec<u8>,
        round: u64,
        /// The cycle's edges in order, each with the node that masters it.
        cycle: Vec<(u32, EdgeWire)>,
        /// The edge whose waiter is the victim.
        victim: usize,
    },
    Confirmed {
        ls: Vec<u8>,
        round: u64,
    },
}

/// The cluster-wide name of an engine owner on master `me`.
pub fn global_owner(me: u32, o: Owner) -> u64 {
    if is_local_owner(o) {
        remote_owner(me, o.0).0
    } else {
        o.0
    }
}

/// The node and handle id of a cluster-wide owner name.
pub fn owner_parts(g: u64) -> (u32, u64) {
    (((g >> 40) & ((1 << 23) - 1)) as u32, g & ((1 << 40) - 1))
}

/// The engine owner on master `me` of a cluster-wide owner name.
fn engine_owner(me: u32, g: u64) -> Owner {
    match owner_parts(g) {
        (node, handle) if node == me => Owner(handle),
        _ => Owner(g),
    }
}

fn to_wire(me: u32, e: &WaitEdge) -> EdgeWire {
    EdgeWire {
        waiter: e.waiter.0,
        waiter_owner: global_owner(me, e.waiter_owner),
        waiter_stamp: e.waiter_stamp,
        blocker: e.blocker.0,
        blocker_owner: global_owner(me, e.blocker_owner),
        blocker_stamp: e.blocker_stamp,
    }
}

fn from_wire(me: u32, e: &EdgeWire) -> WaitEdge {
    WaitEdge {
        waiter: LockId(e.waiter),
        waiter_owner: engine_owner(me, e.waiter_owner),
        waiter_stamp: e.waiter_stamp,
        blocker: LockId(e.blocker),
        blocker_owner: engine_owner(me, e.blocker_owner),
        blocker_stamp: e.blocker_stamp,
    }
}

/// A cycle of owners in `edges`, as indexes into `edges` in cycle order;
/// the search is deterministic (owners and edges in ascending order).
pub fn find_cycle(edges: &[(u32, EdgeWire)]) -> Option<Vec<usize>> {
    let mut out: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
    for (i, (_, e)) in edges.iter().enumerate() {
        if e.waiter_owner != e.blocker_owner {
            out.entry(e.waiter_owner).or_default().push(i);
        }
    }
    for v in out.values_mut() {
        v.sort_by_key(|&i| (edges[i].1.blocker_owner, edges[i].0, edges[i].1.waiter));
    }
    // Iterative depth-first search; colour 1 = on the path, 2 = done.
    let mut colour: HashMap<u64, u8> = HashMap::new();
    for &start in out.keys() {
        if colour.contains_key(&start) {
            continue;
        }
        // (owner, next edge to try), and the edge taken into each owner.
        let mut stack: Vec<(u64, usize)> = vec![(start, 0)];
        let mut via: Vec<usize> = Vec::new();
        colour.insert(start, 1);
        while let Some(top) = stack.len().checked_sub(1) {
            let (owner, next) = stack[top];
            let succ = out.get(&owner).map(Vec::as_slice).unwrap_or(&[]);
            if next == succ.len() {
                colour.insert(owner, 2);
                stack.pop();
                via.pop();
                continue;
            }
            stack[top].1 += 1;
            let i = succ[next];
            let to = edges[i].1.blocker_owner;
            match colour.get(&to) {
                Some(1) => {
                    // A cycle: from `to`'s place on the path back to here.
                    let pos = stack.iter().position(|&(o, _)| o == to).expect("on path");
                    let mut cycle: Vec<usize> = via[pos..].to_vec();
                    cycle.push(i);
                    return Some(cycle);
                }
                Some(_) => {}
                None => {
                    colour.insert(to, 1);
                    stack.push((to, 0));
                    via.push(i);
                }
            }
        }
    }
    None
}

impl Node {
    /// The node that runs the deadlock rounds of every lockspace.
    fn detector_node(&self) -> u32 {
        self.live_members()
            .into_iter()
            .min()
            .unwrap_or(self.node_id)
    }

    fn live_members(&self) -> Vec<u32> {
        if self.cluster.nodes.len() <= 1 {
            vec![self.node_id]
        } else {
            self.membership.members.clone()
        }
    }

    /// Sends `msg` to `to`, or handles it at once when `to` is this node.
    fn dl_send(&mut self, to: u32, msg: PeerMsg) {
        if to == self.node_id {
            self.deadlock_message(to, msg);
        } else {
            self.send(to, msg);
        }
    }

    /// A lock of this node has waited `deadlock_detect_ms` in `ls`.
    pub(super) fn ask_for_round(&mut self, ls: &[u8]) {
        let now = self.now_ms;
        let every = self.deadlock_detect_ms;
        if let Some(&t) = self.detector.asked_ms.get(ls) {
            if now.saturating_sub(t) < every {
                return;
            }
        }
        self.detector.asked_ms.insert(ls.to_vec(), now);
        let d = self.detector_node();
        self.dl_send(d, PeerMsg::DlAsk { ls: ls.to_vec() });
    }

    /// Drops rounds that took too long, and old request times.
    pub(super) fn deadlock_tick(&mut self) {
        let now = self.now_ms;
        let gen = self.membership.gen;
        self.detector
            .rounds
            .retain(|_, r| r.gen == gen && now.saturating_sub(r.started_ms) < ROUND_TIMEOUT_MS);
        let keep = self.deadlock_detect_ms.max(1) * 4;
        self.detector
            .asked_ms
            .retain(|_, t| now.saturating_sub(*t) < keep);
    }

    /// Whether `msg` belongs to deadlock detection.
    pub fn is_deadlock_message(msg: &PeerMsg) -> bool {
        matches!(
            msg,
            PeerMsg::DlAsk { .. }
                | PeerMsg::DlCollect { .. }
                | PeerMsg::DlEdges { .. }
                | PeerMsg::DlConfirm { .. }
                | PeerMsg::DlConfirmed { .. }
                | PeerMsg::DlVictim { .. }
        )
    }

    pub(super) fn deadlock_message(&mut self, from: u32, msg: PeerMsg) {
        let me = self.node_id;
        match msg {
            PeerMsg::DlAsk { ls } => {
                if self.detector_node() != me || self.detector.rounds.contains_key(&ls) {
                    return;
                }
                if self.detector.rounds.len() >= self.limits.max_lockspaces {
                    return;
                }
                self.detector.next_round += 1;
                let members = self.live_members();
                let round = Round {
                    id: self.detector.next_round,
                    gen: self.membership.gen,
                    started_ms: self.now_ms,
                    pending: members.iter().copied().collect(),
                    edges: Vec::new(),
                    confirming: None,
                };
                let id = round.id;
                self.detector.rounds.insert(ls.clone(), round);
                for m in members {
                    self.dl_send(
                        m,
                        PeerMsg::DlCollect {
                            ls: ls.clone(),
                            round: id,
                        },
                    );
                }
            }
            PeerMsg::DlCollect { ls, round } => {
                let edges: Vec<EdgeWire> = self
                    .lockspaces
                    .get(&ls)
                    .map(|l| l.engine.wait_edges(MAX_EDGES_PER_NODE))
                    .unwrap_or_default()
                    .iter()
                    .map(|e| to_wire(me, e))
                    .collect();
                let mut chunks: Vec<&[EdgeWire]> = edges.chunks(MAX_EDGES_PER_MESSAGE).collect();
                if chunks.is_empty() {
                    chunks.push(&[]);
                }
                let n = chunks.len();
                for (i, c) in chunks.into_iter().enumerate() {
                    self.dl_send(
                        from,
                        PeerMsg::DlEdges {
                            ls: ls.clone(),
                            round,
                            edges: c.to_vec(),
                            last: i + 1 == n,
                        },
                    );
                }
            }
            PeerMsg::DlEdges {
                ls,
                round,
                edges,
                last,
            } => {
                let Some(r) = self.detector.rounds.get_mut(&ls) else {
                    return;
                };
                if r.id != round || !r.pending.contains(&from) || r.confirming.is_some() {
                    return;
                }
                r.edges.extend(edges.into_iter().map(|e| (from, e)));
                if last {
                    r.pending.remove(&from);
                }
                if r.pending.is_empty() {
                    self.search(&ls);
                }
            }
            PeerMsg::DlConfirm {
                ls,
                round,
                index,
                edge,
            } => {
                let ok = self
                    .lockspaces
                    .get(&ls)
                    .is_some_and(|l| l.engine.edge_holds(&from_wire(me, &edge)));
                self.dl_send(
                    from,
                    PeerMsg::DlConfirmed {
                        ls,
                        round,
                        index,
                        ok,
                    },
                );
            }
            PeerMsg::DlConfirmed {
                ls,
                round,
                index,
                ok,
            } => {
                let Some(r) = self.detector.rounds.get_mut(&ls) else {
                    return;
                };
                let Some(Confirming {
                    cycle,
                    pending,
                    victim,
                }) = r.confirming.as_mut()
                else {
                    return;
                };
                if r.id != round || cycle.get(index as usize).map(|c| c.0) != Some(from) {
                    return;
                }
                if !ok {
                    // Something moved: no deadlock to break (a later round
                    // will look again if someone still waits).
                    self.detector.rounds.remove(&ls);
                    return;
                }
                pending.remove(&index);
                if pending.is_empty() {
                    let (master, edge) = cycle[*victim];
                    self.detector.rounds.remove(&ls);
                    if let Some(log) = self.detector.searches.as_mut() {
                        log.push(DeadlockEvent::Confirmed {
                            ls: ls.clone(),
                            round,
                        });
                    }
                    self.dl_send(master, PeerMsg::DlVictim { ls, round, edge });
                }
            }
            PeerMsg::DlVictim { ls, edge, .. } => {
                let Some(l) = self.lockspaces.get_mut(&ls) else {
                    return;
                };
                let e = from_wire(me, &edge);
                if l.engine.edge_holds(&e) && l.engine.end_wait(e.waiter, Status::Deadlock) {
                    self.detector.victims += 1;
                    eprintln!(
                        "udlmd: deadlock in lockspace {:?}: ended a waiting request with EDEADLK",
                        String::from_utf8_lossy(&ls)
                    );
                }
                self.flush(&ls);
            }
            _ => {}
        }
    }

    /// Every report is in: look for a cycle and have it confirmed.
    fn search(&mut self, ls: &[u8]) {
        let Some(r) = self.detector.rounds.get_mut(ls) else {
            return;
        };
        let Some(cycle) = find_cycle(&r.edges) else {
            self.detector.rounds.remove(ls);
            return;
        };
        let cycle: Vec<(u32, EdgeWire)> = cycle.iter().map(|&i| r.edges[i]).collect();
        let victim = (0..cycle.len())
            .max_by_key(|&i| cycle[i].1.waiter_owner)
            .expect("a cycle has edges");
        let id = r.id;
        r.edges = Vec::new();
        if let Some(log) = self.detector.searches.as_mut() {
            log.push(DeadlockEvent::Found {
                ls: ls.to_vec(),
                round: id,
                cycle: cycle.clone(),
                victim,
            });
        }
        r.confirming = Some(Confirming {
            cycle: cycle.clone(),
            pending: (0..cycle.len() as u32).collect(),
            victim,
        });
        for (i, (master, edge)) in cycle.into_iter().enumerate() {
            self.dl_send(
                master,
                PeerMsg::DlConfirm {
                    ls: ls.to_vec(),
                    round: id,
                    index: i as u32,
                    edge,
                },
            );
        }
    }

    /// Whether this node would run a deadlock round all by itself (it is
    /// the only member), within one call.
    pub fn is_deadlock_detector_alone(&self) -> bool {
        self.live_members() == [self.node_id]
    }

    /// Keeps every cycle found from now on for [`Node::take_deadlock_searches`]
    /// (the simulator checks each against its global view).
    pub fn record_deadlock_searches(&mut self) {
        self.detector.searches.get_or_insert_with(Vec::new);
    }

    pub fn take_deadlock_searches(&mut self) -> Vec<DeadlockEvent> {
        self.detector
            .searches
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Whether this node's lock `id` in `ls` still waits for a grant.
    pub(super) fn lock_waits(&self, ls: &[u8], id: u32) -> bool {
        let Some(l) = self
            .lockspaces
            .get(ls)
            .and_then(|l| l.locks.get(&id).map(|x| (l, x)))
        else {
            return false;
        };
        let (space, lock) = l;
        if lock.orphan || lock.releasing {
            return false;
        }
        match lock.master {
            Master::Local(e) => space
                .engine
                .lock_info_by_id(LockId(e))
                .is_some_and(|i| i.queue != crate::engine::QueueKind::Granted),
            Master::Remote(_) | Master::Unknown => lock.state != super::RemoteState::Granted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(waiter_owner: u64, blocker_owner: u64, waiter: u32) -> (u32, EdgeWire) {
        (
            1,
            EdgeWire {
                waiter,
                waiter_owner,
                waiter_stamp: 1,
                blocker: 100 + waiter,
                blocker_owner,
                blocker_stamp: 1,
            },
        )
    }

    #[test]
    fn a_two_owner_cycle_is_found_in_order() {
        let edges = vec![e(1, 2, 10), e(3, 1, 11), e(2, 1, 12)];
        let c = find_cycle(&edges).expect("cycle");
        let owners: Vec<(u64, u64)> = c
            .iter()
            .map(|&i| (edges[i].1.waiter_owner, edges[i].1.blocker_owner))
            .collect();
        assert_eq!(owners, vec![(1, 2), (2, 1)]);
    }

    #[test]
    fn chains_and_self_waits_are_not_cycles() {
        assert_eq!(find_cycle(&[e(1, 2, 1), e(2, 3, 2), e(3, 4, 3)]), None);
        assert_eq!(find_cycle(&[e(1, 1, 1), e(2, 2, 2)]), None);
        assert_eq!(find_cycle(&[]), None);
        // A diamond without a way back.
        assert_eq!(
            find_cycle(&[e(1, 2, 1), e(1, 3, 2), e(2, 4, 3), e(3, 4, 4)]),
            None
        );
    }

    #[test]
    fn a_long_cycle_behind_a_tail_is_found_whole() {
        let edges = vec![e(9, 1, 1), e(1, 2, 2), e(2, 3, 3), e(3, 4, 4), e(4, 2, 5)];
        let c = find_cycle(&edges).expect("cycle");
        let mut owners: Vec<u64> = c.iter().map(|&i| edges[i].1.waiter_owner).collect();
        owners.sort_unstable();
        assert_eq!(owners, vec![2, 3, 4]);
        // Consecutive: each edge's blocker is the next edge's waiter.
        for k in 0..c.len() {
            let next = c[(k + 1) % c.len()];
            assert_eq!(edges[c[k]].1.blocker_owner, edges[next].1.waiter_owner);
        }
    }

    #[test]
    fn owner_names_round_trip_between_masters() {
        for me in [1u32, 7, 300] {
            for o in [
                Owner(1),
                Owner(12345),
                remote_owner(2, 9),
                remote_owner(me + 1, 1),
            ] {
                assert_eq!(engine_owner(me, global_owner(me, o)), o);
            }
        }
        // The same handle has the same name on every master.
        assert_eq!(
            global_owner(3, Owner(5)),
            global_owner(4, remote_owner(3, 5))
        );
    }
}
