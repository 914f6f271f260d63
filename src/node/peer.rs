//! The lock protocol between nodes: what one node's lockspace says to
//! another's, carried as payloads by the peer transport (`net`), which
//! delivers them per peer in order and exactly once.
//!
//! Each message names its lockspace and, for lock operations, the
//! requesting node's own lock id: a master keys the locks it holds for
//! other nodes by (node, lock id), so a requester never waits for the
//! master's id and may send an unlock or cancel right behind its request
//! (the per-peer order makes the master see them in that order).
//!
//! Encoding: one type byte, then little-endian fields; names are a length
//! byte and bytes (lockspace ≤ 64, resource ≤ 64); an LVB is a tag byte and
//! 32 bytes. The decoder rejects truncated, oversized, trailing or unknown
//! input with an error and never panics.

use crate::types::{Lvb, LOCKSPACE_LEN, LVB_LEN, RESNAME_MAXLEN};

/// Largest encoded peer message.
pub const MAX_PEER_MESSAGE: usize = 512;

/// Most answer bytes in one `InspectPart` message.
pub const INSPECT_PART_MAX: usize = 384;

/// Most wait-for edges in one `DlEdges` message.
pub const MAX_EDGES_PER_MESSAGE: usize = 8;

/// One wait-for edge as a master reports it to the deadlock detector
/// (node/deadlock.rs): lock ids are the master's, owners are global
/// (node and handle, see `global_owner`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EdgeWire {
    pub waiter: u32,
    pub waiter_owner: u64,
    pub waiter_stamp: u64,
    pub blocker: u32,
    pub blocker_owner: u64,
    pub blocker_stamp: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerMsg {
    /// Who masters `name`? Sent to the name's directory node.
    Lookup {
        ls: Vec<u8>,
        name: Vec<u8>,
    },
    LookupReply {
        ls: Vec<u8>,
        name: Vec<u8>,
        master: u32,
    },
    /// A `Lookup` for a resource inside a tree (node/hierarchy.rs): when
    /// `name` has no master yet, the directory makes `near` (the master of
    /// the parent resource, as the asker knows it) its master, if `near` is
    /// a member, so that a tree stays where its root is.
    LookupNear {
        ls: Vec<u8>,
        name: Vec<u8>,
        near: u32,
    },
    /// From the directory node: the receiver masters `name` from now on
    /// and answers `asker`'s look-up itself (with a `LookupReply`), so that
    /// the asker's request cannot overtake the news.
    Assign {
        ls: Vec<u8>,
        name: Vec<u8>,
        asker: u32,
    },
    /// A new lock on a resource this node masters.
    Request {
        ls: Vec<u8>,
        name: Vec<u8>,
        lkid: u32,
        owner: u64,
        pid: u32,
        mode: u8,
        flags: u32,
        lvb: Option<Lvb>,
        has_bast: bool,
    },
    Convert {
        ls: Vec<u8>,
        lkid: u32,
        pid: u32,
        mode: u8,
        flags: u32,
        lvb: Option<Lvb>,
        has_bast: bool,
    },
    /// Unlock, cancel or force-unlock; `silent` releases with no callback
    /// (purge).
    Unlock {
        ls: Vec<u8>,
        lkid: u32,
        flags: u32,
        lvb: Option<Lvb>,
        silent: bool,
    },
    DeadlockCancel {
        ls: Vec<u8>,
        lkid: u32,
        flags: u32,
    },
    /// The requester's lock `lkid` ran out of its `LKF_TIMEOUT`: if it still
    /// waits, end it with ETIMEDOUT (a granted lock stays as it is).
    Timeout {
        ls: Vec<u8>,
        lkid: u32,
    },
    /// Deadlock detection (node/deadlock.rs): a lock of the sender has
    /// waited long in `ls`; the detector (lowest member) runs a round.
    DlAsk {
        ls: Vec<u8>,
    },
    /// Detector to every member: report your wait-for edges of `ls`.
    DlCollect {
        ls: Vec<u8>,
        round: u64,
    },
    /// A member's edges, in pieces; `last` ends its report.
    DlEdges {
        ls: Vec<u8>,
        round: u64,
        edges: Vec<EdgeWire>,
        last: bool,
    },
    /// Detector to a master: does edge `index` of the cycle still hold?
    DlConfirm {
        ls: Vec<u8>,
        round: u64,
        index: u32,
        edge: EdgeWire,
    },
    DlConfirmed {
        ls: Vec<u8>,
        round: u64,
        index: u32,
        ok: bool,
    },
    /// Detector to the victim's master: end the waiter of `edge` with
    /// EDEADLK if the edge still holds.
    DlVictim {
        ls: Vec<u8>,
        round: u64,
        edge: EdgeWire,
    },
    /// A query about `name` (node/inspect.rs) from node `origin`, passed
    /// on `hops` times so far.
    Inspect {
        ls: Vec<u8>,
        name: Vec<u8>,
        token: u64,
        origin: u32,
        hops: u8,
    },
    /// A piece of the master's answer to query `token`; `found` false: no
    /// node masters the name.
    InspectPart {
        ls: Vec<u8>,
        token: u64,
        found: bool,
        data: Vec<u8>,
        last: bool,
    },
    /// The requester's handle `owner` closed.
    CloseOwner {
        ls: Vec<u8>,
        owner: u64,
    },
    /// The master has released or orphaned every lock of the requester's
    /// handle `owner`: no message about them follows, so their ids may be
    /// used again.
    OwnerClosed {
        ls: Vec<u8>,
        owner: u64,
    },
    /// Sent before `OwnerClosed`: closing the handle left the sender's
    /// lock `lkid` an orphan in granted mode `mode`, another mode than
    /// before the close (a conversion granted or cancelled on the way).
    OrphanMode {
        ls: Vec<u8>,
        lkid: u32,
        mode: i8,
    },
    /// The orphan `lkid` of the sender was adopted by its handle `owner`.
    Adopt {
        ls: Vec<u8>,
        lkid: u32,
        owner: u64,
        pid: u32,
        flags: u32,
        has_bast: bool,
    },
    /// Purge your own orphans of `pid` (0: all).
    PurgeOrphans {
        ls: Vec<u8>,
        pid: u32,
    },
    /// A completion for the requester's lock `lkid`; `mode` is the lock's
    /// granted mode afterwards (-1: none).
    Cast {
        ls: Vec<u8>,
        lkid: u32,
        status: i32,
        sb_flags: u8,
        lvb: Option<Lvb>,
        mode: i8,
        end_of_life: bool,
    },
    Bast {
        ls: Vec<u8>,
        lkid: u32,
        mode: u8,
    },
    /// The request or conversion was queued on the master.
    Queued {
        ls: Vec<u8>,
        lkid: u32,
    },
    /// The master demoted the lock to NL (`LKF_CONVDEADLK`) while its
    /// conversion waits: the owner's copy holds NL from now on.
    Demoted {
        ls: Vec<u8>,
        lkid: u32,
    },
    /// The master refused an operation the requester had accepted.
    Refused {
        ls: Vec<u8>,
        lkid: u32,
        errno: i32,
    },
    /// The receiver does not master the resource of request `lkid` (any
    /// more): ask the directory again.
    NotMaster {
        ls: Vec<u8>,
        lkid: u32,
    },
    /// The sender no longer masters `name`: forget the directory record.
    Remove {
        ls: Vec<u8>,
        name: Vec<u8>,
    },
    // ----- membership and recovery (node/recovery.rs); `ls` is empty for
    // the first three.
    /// Where the sender stands, sent when a session comes up and whenever
    /// that changes: its current generation, and whether it holds valid
    /// lock state from generation `settled` with those `members`.
    Hello {
        gen: u64,
        settled: u64,
        joined: bool,
        members: Vec<u32>,
    },
    /// From the coordinator: recovery generation `gen` with these members;
    /// the `fresh` ones drop whatever state they had before.
    Start {
        gen: u64,
        members: Vec<u32>,
        fresh: Vec<u32>,
    },
    /// The sender finished `phase` of generation `gen`, started by
    /// `coordinator`. `settled` is the last generation the sender had
    /// rebuilt when it sent its Stop marker: members that differ in it
    /// differ in where they think resources are mastered
    /// (node/recovery.rs, "Abandoned generations").
    Barrier {
        gen: u64,
        coordinator: u32,
        phase: u8,
        settled: u64,
    },
    /// The sender is shutting down cleanly: no need to wait for its lease.
    Leave,
    /// The sender was told from outside (`udlm node fenced`, a fencing
    /// system) that `node` is dead and fenced: its lease need not run out
    /// before its locks are recovered (node/control.rs).
    Fenced {
        node: u32,
    },
    /// Rebuilding the directory: the sender masters `name`.
    DirRecord {
        ls: Vec<u8>,
        name: Vec<u8>,
    },
    /// Rebuilding the directory: `master` masters `name` (sent by a node
    /// that rebuilds a lock there, so that the record exists before the
    /// directory node finishes, whenever `master` itself says so).
    DirHint {
        ls: Vec<u8>,
        name: Vec<u8>,
        master: u32,
    },
    /// Rebuilding a resource on its new master: the sender's lock `lkid`,
    /// granted in `mode`; `lvb` is the value it holds when it used VALBLK.
    RecLock {
        ls: Vec<u8>,
        name: Vec<u8>,
        lkid: u32,
        owner: u64,
        pid: u32,
        mode: u8,
        flags: u32,
        has_bast: bool,
        orphan: bool,
        lvb: Option<Lvb>,
    },
}

/// Most members a generation can have (bounds the membership messages).
pub const MAX_MEMBERS: usize = 60;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadMessage(pub &'static str);

struct W(Vec<u8>);
impl W {
    fn u8(&mut self, v: u8) {
        self.0.push(v)
    }
    fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes())
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes())
    }
    fn name(&mut self, b: &[u8]) {
        self.u8(b.len() as u8);
        self.0.extend_from_slice(b)
    }
    fn members(&mut self, m: &[u32]) {
        debug_assert!(m.len() <= MAX_MEMBERS);
        self.u8(m.len().min(MAX_MEMBERS) as u8);
        for &id in m.iter().take(MAX_MEMBERS) {
            self.u32(id);
        }
    }
    fn edge(&mut self, e: &EdgeWire) {
        self.u32(e.waiter);
        self.u64(e.waiter_owner);
        self.u64(e.waiter_stamp);
        self.u32(e.blocker);
        self.u64(e.blocker_owner);
        self.u64(e.blocker_stamp);
    }
    fn lvb(&mut self, l: &Option<Lvb>) {
        match l {
            Some(v) => {
                self.u8(1);
                self.0.extend_from_slice(v)
            }
            None => self.u8(0),
        }
    }
}

struct R<'a>(&'a [u8]);
impl<'a> R<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], BadMessage> {
        if self.0.len() < n {
            return Err(BadMessage("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, BadMessage> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, BadMessage> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn bool(&mut self) -> Result<bool, BadMessage> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(BadMessage("bad boolean")),
        }
    }
    fn u32(&mut self) -> Result<u32, BadMessage> {
        Ok(u32::from_le_bytes(
            self.take(4)?
                .try_into()
                .map_err(|_| BadMessage("truncated"))?,
        ))
    }
    fn u64(&mut self) -> Result<u64, BadMessage> {
        Ok(u64::from_le_bytes(
            self.take(8)?
                .try_into()
                .map_err(|_| BadMessage("truncated"))?,
        ))
    }
    fn name(&mut self, max: usize) -> Result<Vec<u8>, BadMessage> {
        let n = self.u8()? as usize;
        if n > max {
            return Err(BadMessage("name too long"));
        }
        Ok(self.take(n)?.to_vec())
    }
    /// A sorted list of distinct node ids, at most [`MAX_MEMBERS`].
    fn edge(&mut self) -> Result<EdgeWire, BadMessage> {
        Ok(EdgeWire {
            waiter: self.u32()?,
            waiter_owner: self.u64()?,
            waiter_stamp: self.u64()?,
            blocker: self.u32()?,
            blocker_owner: self.u64()?,
            blocker_stamp: self.u64()?,
        })
    }
    fn members(&mut self) -> Result<Vec<u32>, BadMessage> {
        let n = self.u8()? as usize;
        if n > MAX_MEMBERS {
            return Err(BadMessage("too many members"));
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.u32()?);
        }
        if v.windows(2).any(|p| p[0] >= p[1]) || v.contains(&0) {
            return Err(BadMessage("members not sorted, repeated or 0"));
        }
        Ok(v)
    }
    fn lvb(&mut self) -> Result<Option<Lvb>, BadMessage> {
        if !self.bool()? {
            return Ok(None);
        }
        let b = self.take(LVB_LEN)?;
        let mut v = [0u8; LVB_LEN];
        v.copy_from_slice(b);
        Ok(Some(v))
    }
}

impl PeerMsg {
    /// Messages about the cluster, not about a lockspace.
    pub fn is_membership(&self) -> bool {
        matches!(
            self,
            PeerMsg::Hello { .. }
                | PeerMsg::Start { .. }
                | PeerMsg::Barrier { .. }
                | PeerMsg::Leave
                | PeerMsg::Fenced { .. }
        )
    }

    pub fn lockspace(&self) -> &[u8] {
        match self {
            PeerMsg::Lookup { ls, .. }
            | PeerMsg::LookupReply { ls, .. }
            | PeerMsg::LookupNear { ls, .. }
            | PeerMsg::Assign { ls, .. }
            | PeerMsg::Request { ls, .. }
            | PeerMsg::Convert { ls, .. }
            | PeerMsg::Unlock { ls, .. }
            | PeerMsg::DeadlockCancel { ls, .. }
            | PeerMsg::Timeout { ls, .. }
            | PeerMsg::DlAsk { ls }
            | PeerMsg::DlCollect { ls, .. }
            | PeerMsg::DlEdges { ls, .. }
            | PeerMsg::DlConfirm { ls, .. }
            | PeerMsg::DlConfirmed { ls, .. }
            | PeerMsg::DlVictim { ls, .. }
            | PeerMsg::Inspect { ls, .. }
            | PeerMsg::InspectPart { ls, .. }
            | PeerMsg::CloseOwner { ls, .. }
            | PeerMsg::OwnerClosed { ls, .. }
            | PeerMsg::OrphanMode { ls, .. }
            | PeerMsg::Adopt { ls, .. }
            | PeerMsg::PurgeOrphans { ls, .. }
            | PeerMsg::Cast { ls, .. }
            | PeerMsg::Bast { ls, .. }
            | PeerMsg::Queued { ls, .. }
            | PeerMsg::Demoted { ls, .. }
            | PeerMsg::Refused { ls, .. }
            | PeerMsg::NotMaster { ls, .. }
            | PeerMsg::Remove { ls, .. }
            | PeerMsg::DirRecord { ls, .. }
            | PeerMsg::DirHint { ls, .. }
            | PeerMsg::RecLock { ls, .. } => ls,
            PeerMsg::Hello { .. }
            | PeerMsg::Start { .. }
            | PeerMsg::Barrier { .. }
            | PeerMsg::Leave
            | PeerMsg::Fenced { .. } => &[],
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = W(Vec::with_capacity(96));
        match self {
            PeerMsg::Lookup { ls, name } => {
                w.u8(1);
                w.name(ls);
                w.name(name);
            }
            PeerMsg::LookupReply { ls, name, master } => {
                w.u8(2);
                w.name(ls);
                w.name(name);
                w.u32(*master);
            }
            PeerMsg::LookupNear { ls, name, near } => {
                w.u8(34);
                w.name(ls);
                w.name(name);
                w.u32(*near);
            }
            PeerMsg::Assign { ls, name, asker } => {
                w.u8(35);
                w.name(ls);
                w.name(name);
                w.u32(*asker);
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
                w.u8(3);
                w.name(ls);
                w.name(name);
                w.u32(*lkid);
                w.u64(*owner);
                w.u32(*pid);
                w.u8(*mode);
                w.u32(*flags);
                w.lvb(lvb);
                w.u8(*has_bast as u8);
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
                w.u8(4);
                w.name(ls);
                w.u32(*lkid);
                w.u32(*pid);
                w.u8(*mode);
                w.u32(*flags);
                w.lvb(lvb);
                w.u8(*has_bast as u8);
            }
            PeerMsg::Unlock {
                ls,
                lkid,
                flags,
                lvb,
                silent,
            } => {
                w.u8(5);
                w.name(ls);
                w.u32(*lkid);
                w.u32(*flags);
                w.lvb(lvb);
                w.u8(*silent as u8);
            }
            PeerMsg::DeadlockCancel { ls, lkid, flags } => {
                w.u8(6);
                w.name(ls);
                w.u32(*lkid);
                w.u32(*flags);
            }
            PeerMsg::Timeout { ls, lkid } => {
                w.u8(24);
                w.name(ls);
                w.u32(*lkid);
            }
            PeerMsg::DlAsk { ls } => {
                w.u8(25);
                w.name(ls);
            }
            PeerMsg::DlCollect { ls, round } => {
                w.u8(26);
                w.name(ls);
                w.u64(*round);
            }
            PeerMsg::DlEdges {
                ls,
                round,
                edges,
                last,
            } => {
                debug_assert!(edges.len() <= MAX_EDGES_PER_MESSAGE);
                w.u8(27);
                w.name(ls);
                w.u64(*round);
                w.u8(*last as u8);
                w.u8(edges.len().min(MAX_EDGES_PER_MESSAGE) as u8);
                for e in edges.iter().take(MAX_EDGES_PER_MESSAGE) {
                    w.edge(e);
                }
            }
            PeerMsg::DlConfirm {
                ls,
                round,
                index,
                edge,
            } => {
                w.u8(28);
                w.name(ls);
                w.u64(*round);
                w.u32(*index);
                w.edge(edge);
            }
            PeerMsg::DlConfirmed {
                ls,
                round,
                index,
                ok,
            } => {
                w.u8(29);
                w.name(ls);
                w.u64(*round);
                w.u32(*index);
                w.u8(*ok as u8);
            }
            PeerMsg::DlVictim { ls, round, edge } => {
                w.u8(30);
                w.name(ls);
                w.u64(*round);
                w.edge(edge);
            }
            PeerMsg::Inspect {
                ls,
                name,
                token,
                origin,
                hops,
            } => {
                w.u8(31);
                w.name(ls);
                w.name(name);
                w.u64(*token);
                w.u32(*origin);
                w.u8(*hops);
            }
            PeerMsg::InspectPart {
                ls,
                token,
                found,
                data,
                last,
            } => {
                debug_assert!(data.len() <= INSPECT_PART_MAX);
                w.u8(32);
                w.name(ls);
                w.u64(*token);
                w.u8(*found as u8);
                w.u8(*last as u8);
                w.u16(data.len().min(INSPECT_PART_MAX) as u16);
                w.0.extend_from_slice(&data[..data.len().min(INSPECT_PART_MAX)]);
            }
            PeerMsg::CloseOwner { ls, owner } => {
                w.u8(7);
                w.name(ls);
                w.u64(*owner);
            }
            PeerMsg::OwnerClosed { ls, owner } => {
                w.u8(22);
                w.name(ls);
                w.u64(*owner);
            }
            PeerMsg::OrphanMode { ls, lkid, mode } => {
                w.u8(36);
                w.name(ls);
                w.u32(*lkid);
                w.u8(*mode as u8);
            }
            PeerMsg::Adopt {
                ls,
                lkid,
                owner,
                pid,
                flags,
                has_bast,
            } => {
                w.u8(8);
                w.name(ls);
                w.u32(*lkid);
                w.u64(*owner);
                w.u32(*pid);
                w.u32(*flags);
                w.u8(*has_bast as u8);
            }
            PeerMsg::PurgeOrphans { ls, pid } => {
                w.u8(9);
                w.name(ls);
                w.u32(*pid);
            }
            PeerMsg::Cast {
                ls,
                lkid,
                status,
                sb_flags,
                lvb,
                mode,
                end_of_life,
            } => {
                w.u8(10);
                w.name(ls);
                w.u32(*lkid);
                w.u32(*status as u32);
                w.u8(*sb_flags);
                w.lvb(lvb);
                w.u8(*mode as u8);
                w.u8(*end_of_life as u8);
            }
            PeerMsg::Bast { ls, lkid, mode } => {
                w.u8(11);
                w.name(ls);
                w.u32(*lkid);
                w.u8(*mode);
            }
            PeerMsg::Queued { ls, lkid } => {
                w.u8(12);
                w.name(ls);
                w.u32(*lkid);
            }
            PeerMsg::Demoted { ls, lkid } => {
                w.u8(37);
                w.name(ls);
                w.u32(*lkid);
            }
            PeerMsg::Refused { ls, lkid, errno } => {
                w.u8(13);
                w.name(ls);
                w.u32(*lkid);
                w.u32(*errno as u32);
            }
            PeerMsg::NotMaster { ls, lkid } => {
                w.u8(14);
                w.name(ls);
                w.u32(*lkid);
            }
            PeerMsg::Remove { ls, name } => {
                w.u8(15);
                w.name(ls);
                w.name(name);
            }
            PeerMsg::Hello {
                gen,
                settled,
                joined,
                members,
            } => {
                w.u8(16);
                w.name(&[]);
                w.u64(*gen);
                w.u64(*settled);
                w.u8(*joined as u8);
                w.members(members);
            }
            PeerMsg::Start {
                gen,
                members,
                fresh,
            } => {
                w.u8(17);
                w.name(&[]);
                w.u64(*gen);
                w.members(members);
                w.members(fresh);
            }
            PeerMsg::Barrier {
                gen,
                coordinator,
                phase,
                settled,
            } => {
                w.u8(18);
                w.name(&[]);
                w.u64(*gen);
                w.u32(*coordinator);
                w.u8(*phase);
                w.u64(*settled);
            }
            PeerMsg::Leave => {
                w.u8(21);
                w.name(&[]);
            }
            PeerMsg::Fenced { node } => {
                w.u8(33);
                w.name(&[]);
                w.u32(*node);
            }
            PeerMsg::DirRecord { ls, name } => {
                w.u8(19);
                w.name(ls);
                w.name(name);
            }
            PeerMsg::DirHint { ls, name, master } => {
                w.u8(23);
                w.name(ls);
                w.name(name);
                w.u32(*master);
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
                w.u8(20);
                w.name(ls);
                w.name(name);
                w.u32(*lkid);
                w.u64(*owner);
                w.u32(*pid);
                w.u8(*mode);
                w.u32(*flags);
                w.u8(*has_bast as u8);
                w.u8(*orphan as u8);
                w.lvb(lvb);
            }
        }
        w.0
    }

    pub fn decode(b: &[u8]) -> Result<PeerMsg, BadMessage> {
        if b.len() > MAX_PEER_MESSAGE {
            return Err(BadMessage("oversized"));
        }
        let mut r = R(b);
        let t = r.u8()?;
        let ls = r.name(LOCKSPACE_LEN)?;
        let no_lockspace = ls.is_empty();
        let m = match t {
            1 => PeerMsg::Lookup {
                ls,
                name: r.name(RESNAME_MAXLEN)?,
            },
            2 => PeerMsg::LookupReply {
                ls,
                name: r.name(RESNAME_MAXLEN)?,
                master: r.u32()?,
            },
            34 => PeerMsg::LookupNear {
                ls,
                name: r.name(RESNAME_MAXLEN)?,
                near: r.u32()?,
            },
            35 => PeerMsg::Assign {
                ls,
                name: r.name(RESNAME_MAXLEN)?,
                asker: r.u32()?,
            },
            3 => PeerMsg::Request {
                ls,
                name: r.name(RESNAME_MAXLEN)?,
                lkid: r.u32()?,
                owner: r.u64()?,
                pid: r.u32()?,
                mode: r.u8()?,
                flags: r.u32()?,
                lvb: r.lvb()?,
                has_bast: r.bool()?,
            },
            4 => PeerMsg::Convert {
                ls,
                lkid: r.u32()?,
                pid: r.u32()?,
                mode: r.u8()?,
                flags: r.u32()?,
                lvb: r.lvb()?,
                has_bast: r.bool()?,
            },
            5 => PeerMsg::Unlock {
                ls,
                lkid: r.u32()?,
                flags: r.u32()?,
                lvb: r.lvb()?,
                silent: r.bool()?,
            },
            6 => PeerMsg::DeadlockCancel {
                ls,
                lkid: r.u32()?,
                flags: r.u32()?,
            },
            7 => PeerMsg::CloseOwner {
                ls,
                owner: r.u64()?,
            },
            24 => PeerMsg::Timeout { ls, lkid: r.u32()? },
            25 => PeerMsg::DlAsk { ls },
            26 => PeerMsg::DlCollect {
                ls,
                round: r.u64()?,
            },
            27 => {
                let round = r.u64()?;
                let last = r.bool()?;
                let n = r.u8()? as usize;
                if n > MAX_EDGES_PER_MESSAGE {
                    return Err(BadMessage("too many edges"));
                }
                let mut edges = Vec::with_capacity(n);
                for _ in 0..n {
                    edges.push(r.edge()?);
                }
                PeerMsg::DlEdges {
                    ls,
                    round,
                    edges,
                    last,
                }
            }
            28 => PeerMsg::DlConfirm {
                ls,
                round: r.u64()?,
                index: r.u32()?,
                edge: r.edge()?,
            },
            29 => PeerMsg::DlConfirmed {
                ls,
                round: r.u64()?,
                index: r.u32()?,
                ok: r.bool()?,
            },
            30 => PeerMsg::DlVictim {
                ls,
                round: r.u64()?,
                edge: r.edge()?,
            },
            31 => PeerMsg::Inspect {
                ls,
                name: r.name(RESNAME_MAXLEN)?,
                token: r.u64()?,
                origin: r.u32()?,
                hops: r.u8()?,
            },
            32 => {
                let token = r.u64()?;
                let found = r.bool()?;
                let last = r.bool()?;
                let n = r.u16()? as usize;
                if n > INSPECT_PART_MAX {
                    return Err(BadMessage("answer piece too long"));
                }
                PeerMsg::InspectPart {
                    ls,
                    token,
                    found,
                    data: r.take(n)?.to_vec(),
                    last,
                }
            }
            22 => PeerMsg::OwnerClosed {
                ls,
                owner: r.u64()?,
            },
            36 => PeerMsg::OrphanMode {
                ls,
                lkid: r.u32()?,
                mode: r.u8()? as i8,
            },
            8 => PeerMsg::Adopt {
                ls,
                lkid: r.u32()?,
                owner: r.u64()?,
                pid: r.u32()?,
                flags: r.u32()?,
                has_bast: r.bool()?,
            },
            9 => PeerMsg::PurgeOrphans { ls, pid: r.u32()? },
            10 => PeerMsg::Cast {
                ls,
                lkid: r.u32()?,
                status: r.u32()? as i32,
                sb_flags: r.u8()?,
                lvb: r.lvb()?,
                mode: r.u8()? as i8,
                end_of_life: r.bool()?,
            },
            11 => PeerMsg::Bast {
                ls,
                lkid: r.u32()?,
                mode: r.u8()?,
            },
            12 => PeerMsg::Queued { ls, lkid: r.u32()? },
            37 => PeerMsg::Demoted { ls, lkid: r.u32()? },
            13 => PeerMsg::Refused {
                ls,
                lkid: r.u32()?,
                errno: r.u32()? as i32,
            },
            14 => PeerMsg::NotMaster { ls, lkid: r.u32()? },
            15 => PeerMsg::Remove {
                ls,
                name: r.name(RESNAME_MAXLEN)?,
            },
            16 => PeerMsg::Hello {
                gen: r.u64()?,
                settled: r.u64()?,
                joined: r.bool()?,
                members: r.members()?,
            },
            17 => PeerMsg::Start {
                gen: r.u64()?,
                members: r.members()?,
                fresh: r.members()?,
            },
            18 => PeerMsg::Barrier {
                gen: r.u64()?,
                coordinator: r.u32()?,
                phase: r.u8()?,
                settled: r.u64()?,
            },
            21 => PeerMsg::Leave,
            33 => PeerMsg::Fenced { node: r.u32()? },
            19 => PeerMsg::DirRecord {
                ls,
                name: r.name(RESNAME_MAXLEN)?,
            },
            23 => PeerMsg::DirHint {
                ls,
                name: r.name(RESNAME_MAXLEN)?,
                master: r.u32()?,
            },
            20 => PeerMsg::RecLock {
                ls,
                name: r.name(RESNAME_MAXLEN)?,
                lkid: r.u32()?,
                owner: r.u64()?,
                pid: r.u32()?,
                mode: r.u8()?,
                flags: r.u32()?,
                has_bast: r.bool()?,
                orphan: r.bool()?,
                lvb: r.lvb()?,
            },
            _ => return Err(BadMessage("unknown message type")),
        };
        if !r.0.is_empty() {
            return Err(BadMessage("trailing bytes"));
        }
        let membership = m.is_membership();
        if no_lockspace != membership {
            return Err(BadMessage("lockspace name missing or unexpected"));
        }
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge_sample() -> EdgeWire {
        EdgeWire {
            waiter: 1,
            waiter_owner: u64::MAX,
            waiter_stamp: 3,
            blocker: u32::MAX,
            blocker_owner: 5,
            blocker_stamp: u64::MAX,
        }
    }

    fn samples() -> Vec<PeerMsg> {
        let ls = b"ls".to_vec();
        vec![
            PeerMsg::Lookup {
                ls: ls.clone(),
                name: vec![],
            },
            PeerMsg::LookupReply {
                ls: ls.clone(),
                name: vec![7; 64],
                master: 3,
            },
            PeerMsg::LookupNear {
                ls: ls.clone(),
                name: vec![0xFF; 21],
                near: 2,
            },
            PeerMsg::Assign {
                ls: ls.clone(),
                name: vec![1; 64],
                asker: u32::MAX,
            },
            PeerMsg::Request {
                ls: ls.clone(),
                name: b"r".to_vec(),
                lkid: 9,
                owner: u64::MAX,
                pid: 77,
                mode: 5,
                flags: 0x8,
                lvb: Some([3; 32]),
                has_bast: true,
            },
            PeerMsg::Convert {
                ls: ls.clone(),
                lkid: 1,
                pid: 2,
                mode: 3,
                flags: 4,
                lvb: None,
                has_bast: false,
            },
            PeerMsg::Unlock {
                ls: ls.clone(),
                lkid: 1,
                flags: 2,
                lvb: Some([0; 32]),
                silent: true,
            },
            PeerMsg::DeadlockCancel {
                ls: ls.clone(),
                lkid: 1,
                flags: 0,
            },
            PeerMsg::Timeout {
                ls: ls.clone(),
                lkid: 9,
            },
            PeerMsg::DlAsk { ls: ls.clone() },
            PeerMsg::DlCollect {
                ls: ls.clone(),
                round: 3,
            },
            PeerMsg::DlEdges {
                ls: ls.clone(),
                round: 3,
                edges: vec![],
                last: true,
            },
            PeerMsg::DlEdges {
                ls: vec![b'l'; LOCKSPACE_LEN],
                round: u64::MAX,
                edges: vec![edge_sample(); MAX_EDGES_PER_MESSAGE],
                last: false,
            },
            PeerMsg::DlConfirm {
                ls: ls.clone(),
                round: 4,
                index: 2,
                edge: edge_sample(),
            },
            PeerMsg::DlConfirmed {
                ls: ls.clone(),
                round: 4,
                index: 2,
                ok: true,
            },
            PeerMsg::DlVictim {
                ls: ls.clone(),
                round: 4,
                edge: edge_sample(),
            },
            PeerMsg::Inspect {
                ls: ls.clone(),
                name: vec![b'n'; RESNAME_MAXLEN],
                token: u64::MAX,
                origin: 3,
                hops: 2,
            },
            PeerMsg::InspectPart {
                ls: vec![b'l'; LOCKSPACE_LEN],
                token: 1,
                found: true,
                data: vec![0xa5; INSPECT_PART_MAX],
                last: false,
            },
            PeerMsg::InspectPart {
                ls: ls.clone(),
                token: 2,
                found: false,
                data: vec![],
                last: true,
            },
            PeerMsg::CloseOwner {
                ls: ls.clone(),
                owner: 5,
            },
            PeerMsg::OwnerClosed {
                ls: ls.clone(),
                owner: 5,
            },
            PeerMsg::OrphanMode {
                ls: ls.clone(),
                lkid: 9,
                mode: 5,
            },
            PeerMsg::Adopt {
                ls: ls.clone(),
                lkid: 4,
                owner: 6,
                pid: 7,
                flags: 8,
                has_bast: true,
            },
            PeerMsg::PurgeOrphans {
                ls: ls.clone(),
                pid: 0,
            },
            PeerMsg::Cast {
                ls: ls.clone(),
                lkid: 1,
                status: 65538,
                sb_flags: 2,
                lvb: None,
                mode: -1,
                end_of_life: true,
            },
            PeerMsg::Bast {
                ls: ls.clone(),
                lkid: 1,
                mode: 5,
            },
            PeerMsg::Queued {
                ls: ls.clone(),
                lkid: 1,
            },
            PeerMsg::Demoted {
                ls: ls.clone(),
                lkid: 1,
            },
            PeerMsg::Refused {
                ls: ls.clone(),
                lkid: 1,
                errno: 16,
            },
            PeerMsg::NotMaster {
                ls: ls.clone(),
                lkid: 2,
            },
            PeerMsg::Remove {
                ls: ls.clone(),
                name: b"gone".to_vec(),
            },
            PeerMsg::Hello {
                gen: 7,
                settled: 6,
                joined: true,
                members: vec![1, 2, 5],
            },
            PeerMsg::Start {
                gen: u64::MAX,
                members: (1..=MAX_MEMBERS as u32).collect(),
                fresh: (1..=MAX_MEMBERS as u32).map(|n| n * 7).collect(),
            },
            PeerMsg::Barrier {
                gen: 3,
                coordinator: 1,
                phase: 2,
                settled: 2,
            },
            PeerMsg::Leave,
            PeerMsg::Fenced { node: 3 },
            PeerMsg::DirRecord {
                ls: ls.clone(),
                name: vec![],
            },
            PeerMsg::DirHint {
                ls: ls.clone(),
                name: vec![1],
                master: 3,
            },
            PeerMsg::RecLock {
                ls,
                name: vec![9; 64],
                lkid: 3,
                owner: 1 << 40,
                pid: 12,
                mode: 5,
                flags: 0x40,
                has_bast: true,
                orphan: false,
                lvb: Some([7; 32]),
            },
        ]
    }

    #[test]
    fn membership_lists_must_be_sorted_distinct_and_bounded() {
        let bad = [vec![2, 1], vec![1, 1], vec![0, 3]];
        for members in bad {
            let mut b = vec![17, 0];
            b.extend_from_slice(&1u64.to_le_bytes());
            b.push(members.len() as u8);
            for m in &members {
                b.extend_from_slice(&u32::to_le_bytes(*m));
            }
            b.push(0);
            assert!(PeerMsg::decode(&b).is_err(), "{members:?}");
        }
        let mut b = vec![17, 0];
        b.extend_from_slice(&1u64.to_le_bytes());
        b.push(MAX_MEMBERS as u8 + 1);
        assert!(PeerMsg::decode(&b).is_err());
        // A lock message needs a lockspace; a membership message has none.
        assert!(PeerMsg::decode(&[18, 1, b'x', 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1]).is_err());
        assert!(PeerMsg::decode(&[19, 0, 0]).is_err());
    }

    #[test]
    fn every_message_round_trips() {
        for m in samples() {
            assert_eq!(PeerMsg::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn truncated_extended_and_unknown_messages_are_rejected() {
        for m in samples() {
            let b = m.encode();
            for n in 0..b.len() {
                assert!(PeerMsg::decode(&b[..n]).is_err(), "{m:?} cut at {n}");
            }
            let mut longer = b.clone();
            longer.push(1);
            assert!(PeerMsg::decode(&longer).is_err());
        }
        assert!(PeerMsg::decode(&[99, 1, b'x']).is_err());
        assert!(PeerMsg::decode(&[1, 65]).is_err());
        assert!(PeerMsg::decode(&vec![1u8; MAX_PEER_MESSAGE + 1]).is_err());
    }

    /// Random bytes and mutations of valid messages: errors, never panics.
    #[test]
    fn random_input_never_panics() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let valid: Vec<Vec<u8>> = samples().iter().map(|m| m.encode()).collect();
        for i in 0..20_000 {
            let mut b = if i % 2 == 0 {
                valid[(next() as usize) % valid.len()].clone()
            } else {
                (0..(next() % 120) as usize).map(|_| next() as u8).collect()
            };
            for _ in 0..(next() % 4) {
                if !b.is_empty() {
                    let at = (next() as usize) % b.len();
                    b[at] = next() as u8;
                }
            }
            if let Ok(m) = PeerMsg::decode(&b) {
                assert_eq!(PeerMsg::decode(&m.encode()).unwrap(), m);
            }
        }
    }
}
