//! The query call (a udlm extension, `udlm_query_resource` and
//! `udlm_query_lock` in include/udlm.h): what a resource's master knows of
//! it — the master node, the LVB and whether it is valid, and every lock
//! on it with its queue, modes, flags, node, lock id and pid.
//!
//! Only the master has the whole picture, so the question goes there: the
//! asking node answers itself when it masters the name, else sends
//! `Inspect` to the master it knows, or to the name's directory node, which
//! passes it on to the master it has on record (at most [`MAX_HOPS`]
//! times). The master sends the answer back to the asking node in
//! `InspectPart` pieces. A name no node masters has no locks anywhere: the
//! answer is ENOENT; asking never makes anyone a master.
//!
//! A caller reaches this through a lockspace handle, so the lockspace's
//! access rules were checked when the handle was opened. The answer is a
//! snapshot; it is bounded to [`MAX_INSPECT_LOCKS`] locks (the total count
//! is always given). A master that does not answer within
//! [`INSPECT_WAIT_MS`] makes the call fail with EAGAIN.

use super::peer::PeerMsg;
use super::{is_local_owner, Holder, Node};
use crate::cluster::config::directory_node;
use crate::types::{Errno, Lvb, Owner, ResName, LVB_LEN};
use std::collections::HashMap;

/// Most locks an answer lists.
pub const MAX_INSPECT_LOCKS: usize = 4096;
/// How long a caller waits for the master's answer.
pub const INSPECT_WAIT_MS: u64 = 2000;
/// Most questions of one node waiting for their answer.
const MAX_PENDING_INSPECTS: usize = 256;
/// Bytes of an answer per `InspectPart` message.
pub const INSPECT_PART_BYTES: usize = super::peer::INSPECT_PART_MAX;
/// How often a question may be passed on before it is given up.
const MAX_HOPS: u8 = 3;
/// An answer grows to at most this many bytes.
const MAX_ANSWER_BYTES: usize = 16 + LVB_LEN + MAX_INSPECT_LOCKS * LOCK_VIEW_LEN;
const LOCK_VIEW_LEN: usize = 20;

/// Queue codes of [`LockView::queue`] (as in include/udlm.h).
pub const QUEUE_GRANTED: u8 = 0;
pub const QUEUE_CONVERT: u8 = 1;
pub const QUEUE_WAIT: u8 = 2;

/// One lock of a resource, as its master sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockView {
    /// The node of the lock's owner, and the lock's id there.
    pub node: u32,
    pub lkid: u32,
    pub pid: u32,
    pub flags: u32,
    /// Modes as `LKM_*`, -1 for none.
    pub granted: i8,
    pub requested: i8,
    pub queue: u8,
    pub orphan: bool,
}

/// A resource as its master sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceView {
    pub master: u32,
    pub lvb: Option<Lvb>,
    pub lvb_valid: bool,
    /// Every lock on the resource, even beyond those listed.
    pub nlocks: u32,
    pub locks: Vec<LockView>,
}

impl ResourceView {
    pub fn encode(&self) -> Vec<u8> {
        let n = self.locks.len().min(MAX_INSPECT_LOCKS);
        let mut b = Vec::with_capacity(16 + LVB_LEN + n * LOCK_VIEW_LEN);
        b.extend_from_slice(&self.master.to_le_bytes());
        b.push(self.lvb_valid as u8);
        b.push(self.lvb.is_some() as u8);
        b.extend_from_slice(&self.lvb.unwrap_or([0; LVB_LEN]));
        b.extend_from_slice(&self.nlocks.to_le_bytes());
        b.extend_from_slice(&(n as u16).to_le_bytes());
        for l in &self.locks[..n] {
            b.extend_from_slice(&l.node.to_le_bytes());
            b.extend_from_slice(&l.lkid.to_le_bytes());
            b.extend_from_slice(&l.pid.to_le_bytes());
            b.extend_from_slice(&l.flags.to_le_bytes());
            b.push(l.granted as u8);
            b.push(l.requested as u8);
            b.push(l.queue);
            b.push(l.orphan as u8);
        }
        b
    }

    /// Rejects truncated, oversized or trailing input and values out of
    /// range.
    pub fn decode(b: &[u8]) -> Result<ResourceView, &'static str> {
        if b.len() > MAX_ANSWER_BYTES {
            return Err("answer too long");
        }
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8], &'static str> {
            let s = b.get(at..at + n).ok_or("answer truncated")?;
            at += n;
            Ok(s)
        };
        let u32_of = |s: &[u8]| u32::from_le_bytes(s.try_into().expect("4 bytes"));
        let master = u32_of(take(4)?);
        let flags = take(2)?;
        if flags[0] > 1 || flags[1] > 1 {
            return Err("bad flag byte");
        }
        let mut lvb = [0u8; LVB_LEN];
        lvb.copy_from_slice(take(LVB_LEN)?);
        let nlocks = u32_of(take(4)?);
        let count = u16::from_le_bytes(take(2)?.try_into().expect("2 bytes")) as usize;
        if count > MAX_INSPECT_LOCKS || count as u64 > u64::from(nlocks) {
            return Err("bad lock count");
        }
        let mut locks = Vec::with_capacity(count);
        for _ in 0..count {
            let node = u32_of(take(4)?);
            let lkid = u32_of(take(4)?);
            let pid = u32_of(take(4)?);
            let fl = u32_of(take(4)?);
            let m = take(4)?;
            let mode_ok = |x: u8| (x as i8) >= -1 && (x as i8) <= 5;
            if !mode_ok(m[0]) || !mode_ok(m[1]) || m[2] > QUEUE_WAIT || m[3] > 1 {
                return Err("bad lock entry");
            }
            locks.push(LockView {
                node,
                lkid,
                pid,
                flags: fl,
                granted: m[0] as i8,
                requested: m[1] as i8,
                queue: m[2],
                orphan: m[3] == 1,
            });
        }
        if at != b.len() {
            return Err("trailing bytes");
        }
        Ok(ResourceView {
            master,
            lvb: (flags[1] == 1).then_some(lvb),
            lvb_valid: flags[0] == 1,
            nlocks,
            locks,
        })
    }
}

/// What a caller asks about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InspectTarget {
    /// A resource by name.
    Name(Vec<u8>),
    /// The resource of one of the caller's locks, and that lock.
    Lock(u32),
}

/// The outcome of [`Node::inspect`]: an answer now, or a token to wait on.
#[derive(Debug)]
pub enum InspectStep {
    Done(Result<ResourceView, Errno>),
    Pending(u64),
}

/// Questions of this node waiting for their master's answer.
#[derive(Default)]
pub(super) struct Inspects {
    next_token: u64,
    pending: HashMap<u64, Pending>,
}

struct Pending {
    ls: Vec<u8>,
    /// Only this lock (of this node) is to be reported, for a lock query.
    only: Option<u32>,
    bytes: Vec<u8>,
    done: Option<Result<ResourceView, Errno>>,
}

fn keep_only(mut v: ResourceView, me: u32, only: Option<u32>) -> Result<ResourceView, Errno> {
    if let Some(id) = only {
        v.locks.retain(|l| l.node == me && l.lkid == id);
        if v.locks.is_empty() {
            return Err(Errno::NoEnt);
        }
    }
    Ok(v)
}

impl Node {
    /// Starts the query of `owner` (a handle) about `target`.
    pub fn inspect(&mut self, owner: Owner, target: InspectTarget) -> InspectStep {
        let ls_name = match self.ls_of(owner) {
            Ok(n) => n,
            Err(e) => return InspectStep::Done(Err(e)),
        };
        let me = self.node_id;
        let (name, only) = match target {
            InspectTarget::Name(n) => match ResName::new(&n) {
                Some(r) if !n.is_empty() => (r, None),
                _ => return InspectStep::Done(Err(Errno::Inval)),
            },
            InspectTarget::Lock(id) => {
                let ls = self.lockspaces.get(&ls_name).expect("lockspace");
                match ls.locks.get(&id).filter(|l| l.owner == owner) {
                    Some(l) => (l.name, Some(id)),
                    None => return InspectStep::Done(Err(Errno::NoEnt)),
                }
            }
        };
        let target_node = match self.known_master(&ls_name, &name) {
            Some(m) if m == me => {
                let v = self.local_view(&ls_name, &name).ok_or(Errno::NoEnt);
                return InspectStep::Done(v.and_then(|v| keep_only(v, me, only)));
            }
            Some(m) => m,
            None => match directory_node(name.as_bytes(), &self.weighted_members(&ls_name)) {
                Some(d) if d == me => {
                    let rec = self
                        .lockspaces
                        .get(&ls_name)
                        .and_then(|l| l.directory.get(&name).copied());
                    match rec {
                        Some(m) if m != me => m,
                        _ => return InspectStep::Done(Err(Errno::NoEnt)),
                    }
                }
                Some(d) => d,
                None => return InspectStep::Done(Err(Errno::NoEnt)),
            },
        };
        if self.inspects.pending.len() >= MAX_PENDING_INSPECTS {
            return InspectStep::Done(Err(Errno::Again));
        }
        self.inspects.next_token += 1;
        let token = self.inspects.next_token;
        self.inspects.pending.insert(
            token,
            Pending {
                ls: ls_name.clone(),
                only,
                bytes: Vec::new(),
                done: None,
            },
        );
        self.send(
            target_node,
            PeerMsg::Inspect {
                ls: ls_name,
                name: name.as_bytes().to_vec(),
                token,
                origin: me,
                hops: 0,
            },
        );
        InspectStep::Pending(token)
    }

    /// The answer to question `token`, once complete (it is then forgotten).
    pub fn inspect_answer(&mut self, token: u64) -> Option<Result<ResourceView, Errno>> {
        let ls = &self.inspects.pending.get(&token)?.ls;
        if !self.lockspaces.get(ls).is_some_and(|l| l.visible) {
            // Released meanwhile: like any call on the handle now.
            self.inspects.pending.remove(&token);
            return Some(Err(Errno::NoEnt));
        }
        let done = self.inspects.pending.get(&token)?.done.is_some();
        if !done {
            return None;
        }
        self.inspects.pending.remove(&token).and_then(|p| p.done)
    }

    /// The caller stopped waiting for question `token`.
    pub fn inspect_abandon(&mut self, token: u64) {
        self.inspects.pending.remove(&token);
    }

    /// The master of `name` when known here without asking (cached, this
    /// node's own, static, or the only node). Unlike `Node::master_of` it
    /// never makes a master or starts a look-up: a query must change
    /// nothing.
    fn known_master(&self, ls_name: &[u8], name: &ResName) -> Option<u32> {
        let me = self.node_id;
        if self.cluster.nodes.len() <= 1 {
            return Some(me);
        }
        if self.cluster.nodir(ls_name) {
            return directory_node(name.as_bytes(), &self.weighted_members(ls_name));
        }
        let ls = self.lockspaces.get(ls_name)?;
        if ls.engine.has_resource(name.as_bytes()) {
            return Some(me);
        }
        ls.masters.get(name).copied()
    }

    /// What this node, as master, knows of `name`.
    fn local_view(&self, ls_name: &[u8], name: &ResName) -> Option<ResourceView> {
        let me = self.node_id;
        let ls = self.lockspaces.get(ls_name)?;
        let info = ls.engine.resource_info(name.as_bytes())?;
        let total = info.granted.len() + info.converting.len() + info.waiting.len();
        let mut locks = Vec::with_capacity(total.min(MAX_INSPECT_LOCKS));
        let queues = [
            (QUEUE_GRANTED, &info.granted),
            (QUEUE_CONVERT, &info.converting),
            (QUEUE_WAIT, &info.waiting),
        ];
        for (queue, list) in queues {
            for l in list.iter() {
                if locks.len() >= MAX_INSPECT_LOCKS {
                    break;
                }
                let (node, lkid) = match ls.holders.get(&l.lkid.0) {
                    Some(Holder::Local(id)) => (me, *id),
                    Some(Holder::Remote(n, id)) => (*n, *id),
                    None => (owner_node(me, l.owner), 0),
                };
                locks.push(LockView {
                    node,
                    lkid,
                    pid: l.pid,
                    flags: l.flags,
                    granted: l.granted.map_or(-1, |m| m as i8),
                    requested: l.requested.map_or(-1, |m| m as i8),
                    queue,
                    orphan: l.orphan,
                });
            }
        }
        Some(ResourceView {
            master: me,
            lvb: info.lvb,
            lvb_valid: info.lvb_valid,
            nlocks: total as u32,
            locks,
        })
    }

    /// An answer for `origin`, which may be this node itself: the question
    /// went round and came back after this node became the master.
    fn inspect_reply(&mut self, origin: u32, part: PeerMsg) {
        if origin == self.node_id {
            self.inspect_message(origin, part);
        } else {
            self.send(origin, part);
        }
    }

    pub(super) fn is_inspect_message(msg: &PeerMsg) -> bool {
        matches!(msg, PeerMsg::Inspect { .. } | PeerMsg::InspectPart { .. })
    }

    pub(super) fn inspect_message(&mut self, from: u32, msg: PeerMsg) {
        let me = self.node_id;
        match msg {
            PeerMsg::Inspect {
                ls,
                name,
                token,
                origin,
                hops,
            } => {
                let Some(rn) = ResName::new(&name) else {
                    return;
                };
                let masters_it = self.known_master(&ls, &rn) == Some(me);
                let next = if masters_it || hops >= MAX_HOPS {
                    None
                } else {
                    match directory_node(&name, &self.weighted_members(&ls)) {
                        Some(d) if d == me => self
                            .lockspaces
                            .get(&ls)
                            .and_then(|l| l.directory.get(&rn).copied())
                            .filter(|&m| m != me),
                        // Back to the directory only when it asked from its
                        // cache (hops 0): its own record may know better.
                        Some(d) if d != from || hops == 0 => Some(d),
                        _ => None,
                    }
                };
                if let Some(n) = next {
                    self.send(
                        n,
                        PeerMsg::Inspect {
                            ls,
                            name,
                            token,
                            origin,
                            hops: hops + 1,
                        },
                    );
                    return;
                }
                let view = if masters_it {
                    self.local_view(&ls, &rn)
                } else {
                    None
                };
                let Some(view) = view else {
                    self.inspect_reply(
                        origin,
                        PeerMsg::InspectPart {
                            ls,
                            token,
                            found: false,
                            data: Vec::new(),
                            last: true,
                        },
                    );
                    return;
                };
                let bytes = view.encode();
                let parts: Vec<&[u8]> = bytes.chunks(INSPECT_PART_BYTES).collect();
                let n = parts.len();
                for (i, p) in parts.into_iter().enumerate() {
                    self.inspect_reply(
                        origin,
                        PeerMsg::InspectPart {
                            ls: ls.clone(),
                            token,
                            found: true,
                            data: p.to_vec(),
                            last: i + 1 == n,
                        },
                    );
                }
            }
            PeerMsg::InspectPart {
                ls,
                token,
                found,
                data,
                last,
            } => {
                let Some(p) = self.inspects.pending.get_mut(&token) else {
                    return;
                };
                if p.ls != ls || p.done.is_some() {
                    return;
                }
                if !found {
                    p.done = Some(Err(Errno::NoEnt));
                    return;
                }
                if p.bytes.len() + data.len() > MAX_ANSWER_BYTES {
                    p.done = Some(Err(Errno::Proto));
                    return;
                }
                p.bytes.extend_from_slice(&data);
                if last {
                    let v = ResourceView::decode(&p.bytes).map_err(|_| Errno::Proto);
                    p.done = Some(v.and_then(|v| keep_only(v, me, p.only)));
                }
            }
            _ => {}
        }
    }
}

/// The node of an engine owner on master `me`.
fn owner_node(me: u32, o: Owner) -> u32 {
    if is_local_owner(o) {
        me
    } else {
        super::deadlock::owner_parts(o.0).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ResourceView {
        ResourceView {
            master: 3,
            lvb: Some([7; LVB_LEN]),
            lvb_valid: false,
            nlocks: 5,
            locks: vec![
                LockView {
                    node: 1,
                    lkid: 9,
                    pid: 1234,
                    flags: 0x8,
                    granted: 5,
                    requested: -1,
                    queue: QUEUE_GRANTED,
                    orphan: false,
                },
                LockView {
                    node: 2,
                    lkid: 1,
                    pid: 1,
                    flags: 0,
                    granted: -1,
                    requested: 3,
                    queue: QUEUE_WAIT,
                    orphan: true,
                },
            ],
        }
    }

    #[test]
    fn an_answer_round_trips() {
        let v = sample();
        assert_eq!(ResourceView::decode(&v.encode()).unwrap(), v);
        let empty = ResourceView {
            master: 1,
            lvb: None,
            lvb_valid: true,
            nlocks: 0,
            locks: vec![],
        };
        assert_eq!(ResourceView::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn malformed_answers_are_rejected() {
        let b = sample().encode();
        for cut in 0..b.len() {
            assert!(ResourceView::decode(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut long = b.clone();
        long.push(0);
        assert!(ResourceView::decode(&long).is_err());
        // A mode out of range, a queue out of range, more listed than exist.
        let first_lock = 4 + 2 + LVB_LEN + 4 + 2;
        let mut bad = b.clone();
        bad[first_lock + 16] = 9;
        assert!(ResourceView::decode(&bad).is_err());
        let mut bad = b.clone();
        bad[first_lock + 18] = 3;
        assert!(ResourceView::decode(&bad).is_err());
        let mut bad = b.clone();
        bad[4 + 2 + LVB_LEN..4 + 2 + LVB_LEN + 4].copy_from_slice(&1u32.to_le_bytes());
        assert!(ResourceView::decode(&bad).is_err());
        assert!(ResourceView::decode(&vec![0; MAX_ANSWER_BYTES + 1]).is_err());
    }
}
