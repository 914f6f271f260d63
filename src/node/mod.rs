//! The node: every lockspace and every open handle of one host.
//!
//! With the kernel DLM all processes of a host share one node; udlm keeps
//! that model. A [`Node`] owns the lockspaces (each with its engine), the
//! handles ("owners", spec §6.1) and their event links. Every input — a
//! handle's request, a handle closing — runs under the caller's lock on the
//! node; the engine's events are turned into callbacks carrying the
//! program's own routine, argument and lksb pointer, grouped per lock as the
//! kernel delivers them (all pending callbacks of one lock together, locks in
//! the order their first callback was queued), and written to the owners'
//! event links without blocking.
//!
//! Decisions where the kernel's rules do not carry over:
//! * Creating a lockspace needs no privilege: whoever can reach the node's
//!   socket (its runtime directory's permissions decide) may create one. The
//!   creator's uid/gid own it, and the `mode` given at creation (0 means
//!   0660, the kernel's udev default) decides who else may open it; root
//!   always may. Refusal is `EACCES`.
//! * A lockspace force-destroyed while other handles are still open leaves
//!   those handles working on nothing: their calls fail with `ENOENT`.

pub mod server;
pub mod sink;

use crate::engine::{Engine, Event, Request as EngineRequest, DEFAULT_MAX_LOCKS};
use crate::proto::{Callback, UserArgs};
use crate::sys::PeerCreds;
use crate::types::{lkf, lsfl, Errno, LockId, Lvb, Owner, Status, LOCKSPACE_LEN};
use sink::{EventSink, Packet};
use std::collections::HashMap;
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
        NodeLimits { max_lockspaces: 4096, max_handles: 65536, max_locks_per_lockspace: DEFAULT_MAX_LOCKS }
    }
}

struct Lockspace {
    name: Vec<u8>,
    engine: Engine,
    /// Creations not yet matched by a release (spec §2.10).
    create_count: u32,
    perm: u32,
    uid: u32,
    gid: u32,
    /// What each live lock's program passed, keyed by lock id.
    users: HashMap<u32, UserArgs>,
}

struct Handle {
    ls: Option<u64>,
    sink: Option<Arc<EventSink>>,
    creds: PeerCreds,
}

/// One host's lock state.
pub struct Node {
    node_id: u32,
    limits: NodeLimits,
    names: HashMap<Vec<u8>, u64>,
    lockspaces: HashMap<u64, Lockspace>,
    handles: HashMap<Owner, Handle>,
    tokens: HashMap<u64, Owner>,
    next_id: u64,
    events: Vec<Event>,
}

/// A lock request from a handle, as the C library sent it.
#[derive(Clone, Debug)]
pub struct LockArgs<'a> {
    pub mode: u8,
    pub flags: u32,
    pub lkid: u32,
    pub name: &'a [u8],
    pub lvb: Option<Lvb>,
    pub user: UserArgs,
    pub tid: u32,
}

impl Node {
    pub fn new(node_id: u32, limits: NodeLimits) -> Node {
        Node {
            node_id,
            limits,
            names: HashMap::new(),
            lockspaces: HashMap::new(),
            handles: HashMap::new(),
            tokens: HashMap::new(),
            next_id: 1,
            events: Vec::new(),
        }
    }

    pub fn node_id(&self) -> u32 {
        self.node_id
    }

    /// Opens a handle on lockspace `name`, creating the lockspace when
    /// `create` is given (`(mode, flags)`). Returns the new owner and the
    /// token that attaches its event link.
    pub fn open(&mut self, name: &[u8], create: Option<(u32, u32)>, creds: PeerCreds) -> Result<(Owner, u64), Errno> {
        if name.is_empty() || name.len() > LOCKSPACE_LEN {
            return Err(Errno::Inval);
        }
        if self.handles.len() >= self.limits.max_handles {
            return Err(Errno::NoMem);
        }
        let ls_id = match (self.names.get(name).copied(), create) {
            (Some(id), None) => {
                self.check_access(id, creds)?;
                id
            }
            (Some(id), Some((_, flags))) => {
                if flags & lsfl::SOFTIRQ != 0 {
                    return Err(Errno::Inval);
                }
                if flags & lsfl::NEWEXCL != 0 {
                    return Err(Errno::Exist);
                }
                self.check_access(id, creds)?;
                let ls = self.lockspaces.get_mut(&id).expect("named lockspace");
                ls.create_count = ls.create_count.saturating_add(1);
                id
            }
            (None, None) => return Err(Errno::NoEnt),
            (None, Some((mode, flags))) => {
                if flags & lsfl::SOFTIRQ != 0 {
                    return Err(Errno::Inval);
                }
                if self.lockspaces.len() >= self.limits.max_lockspaces {
                    return Err(Errno::NoMem);
                }
                let id = self.fresh_id();
                let perm = if mode & 0o777 == 0 { 0o660 } else { mode & 0o777 };
                self.lockspaces.insert(
                    id,
                    Lockspace {
                        name: name.to_vec(),
                        engine: Engine::new(self.limits.max_locks_per_lockspace),
                        create_count: 1,
                        perm,
                        uid: creds.uid,
                        gid: creds.gid,
                        users: HashMap::new(),
                    },
                );
                self.names.insert(name.to_vec(), id);
                id
            }
        };
        let owner = Owner(self.fresh_id());
        let mut token = crate::sys::random_u64();
        while token == 0 || self.tokens.contains_key(&token) {
            token = crate::sys::random_u64();
        }
        self.tokens.insert(token, owner);
        self.handles.insert(owner, Handle { ls: Some(ls_id), sink: None, creds });
        Ok((owner, token))
    }

    /// Attaches the event link of the handle named by `token`. The peer must
    /// be the same user that opened it.
    pub fn attach(&mut self, token: u64, sink: Arc<EventSink>, creds: PeerCreds) -> Result<Owner, Errno> {
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
        let Some(h) = self.handles.remove(&owner) else { return };
        if let Some(ls_id) = h.ls {
            if let Some(ls) = self.lockspaces.get_mut(&ls_id) {
                ls.engine.close_owner(owner);
                self.flush(ls_id);
            }
        }
    }

    /// `dlm_release_lockspace`: close the handle, then drop one creation
    /// reference; the last one destroys the lockspace unless locks remain
    /// and `force` is 0 (spec §2.10). The outcome of the removal is not
    /// reported, exactly like libdlm.
    pub fn release(&mut self, owner: Owner, force: u32) -> Result<(), Errno> {
        let ls_id = self.handles.get(&owner).ok_or(Errno::NoEnt)?.ls;
        self.close(owner);
        let Some(ls_id) = ls_id else { return Ok(()) };
        let Some(ls) = self.lockspaces.get_mut(&ls_id) else { return Ok(()) };
        if ls.create_count > 1 {
            ls.create_count -= 1;
            return Ok(());
        }
        if force == 0 && !ls.engine.is_empty() {
            return Ok(());
        }
        let ls = self.lockspaces.remove(&ls_id).expect("lockspace");
        self.names.remove(&ls.name);
        for h in self.handles.values_mut() {
            if h.ls == Some(ls_id) {
                h.ls = None;
            }
        }
        Ok(())
    }

    /// A lock request, conversion or orphan adoption. Returns the lock id.
    pub fn lock(&mut self, owner: Owner, a: LockArgs<'_>) -> Result<u32, Errno> {
        let ls_id = self.ls_of(owner)?;
        let ls = self.lockspaces.get_mut(&ls_id).expect("lockspace");
        let flags = a.flags & !lkf::WAIT;
        let has_bast = a.user.bast != 0;
        let result = if flags & lkf::CONVERT != 0 {
            // The kernel takes the new routines and lksb before validating.
            if let Some(u) = ls.users.get_mut(&a.lkid) {
                if ls.engine.lock_info_by_id(LockId(a.lkid)).is_some_and(|i| i.owner == owner && !i.orphan) {
                    *u = a.user;
                }
            }
            ls.engine
                .convert(owner, a.tid, LockId(a.lkid), a.mode as i32, flags, a.lvb.as_ref(), has_bast)
                .map(|_| a.lkid)
        } else {
            let req = EngineRequest {
                owner,
                pid: a.tid,
                mode: a.mode as i32,
                flags,
                name: a.name,
                lvb: a.lvb.as_ref(),
                has_bast,
            };
            let r = if flags & lkf::ORPHAN != 0 { ls.engine.adopt_orphan(req) } else { ls.engine.request(req) };
            r.map(|id| {
                ls.users.insert(id.0, a.user);
                id.0
            })
        };
        self.flush(ls_id);
        result
    }

    /// Unlock or cancel. `astarg` 0 keeps the lock's argument; the lksb of
    /// the call becomes the lock's (spec §2.5). Returns 1 when no callback
    /// will follow (a cancel with nothing to cancel), else 0.
    pub fn unlock(&mut self, owner: Owner, lkid: u32, flags: u32, lvb: Option<Lvb>, astarg: u64, lksb: u64) -> Result<u64, Errno> {
        let ls_id = self.ls_of(owner)?;
        let ls = self.lockspaces.get_mut(&ls_id).expect("lockspace");
        let flags = flags & !lkf::WAIT;
        if ls.engine.lock_info_by_id(LockId(lkid)).is_some_and(|i| i.owner == owner && !i.orphan) {
            if let Some(u) = ls.users.get_mut(&lkid) {
                if astarg != 0 {
                    u.astarg = astarg;
                }
                u.lksb = lksb;
            }
        }
        let lvb = if flags & lkf::VALBLK != 0 { lvb } else { None };
        let r = ls.engine.unlock(owner, LockId(lkid), flags, lvb.as_ref());
        let silent = !ls.engine.pending_events().iter().any(|e| e.lkid().0 == lkid && e.owner() == owner);
        self.flush(ls_id);
        r.map(|_| silent as u64)
    }

    pub fn deadlock_cancel(&mut self, owner: Owner, lkid: u32, flags: u32) -> Result<(), Errno> {
        let ls_id = self.ls_of(owner)?;
        let r = self.lockspaces.get_mut(&ls_id).expect("lockspace").engine.deadlock_cancel(owner, LockId(lkid), flags);
        self.flush(ls_id);
        r
    }

    /// `dlm_ls_purge` (spec §2.11). `tid` is the calling thread's id: when it
    /// equals `pid` the caller's own locks go, silently.
    pub fn purge(&mut self, owner: Owner, nodeid: u32, pid: u32, tid: u32) -> Result<(), Errno> {
        let ls_id = self.ls_of(owner)?;
        if nodeid != 0 && nodeid != self.node_id {
            // Orphans live on their own node; other nodes are reached by the
            // cluster layer, which a one-host node does not have.
            return Ok(());
        }
        let ls = self.lockspaces.get_mut(&ls_id).expect("lockspace");
        if pid == tid {
            ls.engine.purge_owner(owner);
            if let Some(s) = self.handles.get(&owner).and_then(|h| h.sink.as_ref()) {
                s.discard_backlog();
            }
            self.flush(ls_id);
        } else {
            ls.engine.purge_orphans(pid);
            self.flush(ls_id);
        }
        Ok(())
    }

    /// Names of the lockspaces that exist on this node.
    pub fn lockspace_names(&self) -> Vec<Vec<u8>> {
        let mut v: Vec<Vec<u8>> = self.names.keys().cloned().collect();
        v.sort();
        v
    }

    pub fn lockspace_engine(&self, name: &[u8]) -> Option<&Engine> {
        self.names.get(name).and_then(|id| self.lockspaces.get(id)).map(|l| &l.engine)
    }

    pub fn has_token(&self, token: u64) -> bool {
        self.tokens.contains_key(&token)
    }

    fn fresh_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn ls_of(&self, owner: Owner) -> Result<u64, Errno> {
        let h = self.handles.get(&owner).ok_or(Errno::NotConn)?;
        h.ls.ok_or(Errno::NoEnt)
    }

    fn check_access(&self, ls_id: u64, creds: PeerCreds) -> Result<(), Errno> {
        let ls = &self.lockspaces[&ls_id];
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

    /// Turns the engine's events into callbacks and hands them to the
    /// owners' event links, grouped per lock (spec §4.4, oracle 04).
    fn flush(&mut self, ls_id: u64) {
        let Some(ls) = self.lockspaces.get_mut(&ls_id) else { return };
        ls.engine.drain_events(&mut self.events);
        if self.events.is_empty() {
            return;
        }
        // Owners in first-appearance order; per owner, locks in
        // first-appearance order; per lock, callbacks in order.
        let mut per_owner: Vec<(Owner, Vec<((u32, u32), Vec<Packet>)>)> = Vec::new();
        for ev in self.events.drain(..) {
            let (key, cb) = match ev {
                Event::Completion { owner, lkid, incarnation, status, sb_flags, lvb, end_of_life } => {
                    let user = if end_of_life { ls.users.remove(&lkid.0) } else { ls.users.get(&lkid.0).copied() };
                    let user = user.unwrap_or_default();
                    let cb = Callback {
                        blocking: false,
                        lkid: lkid.0,
                        incarnation,
                        status: status.to_user(),
                        sb_flags,
                        lvb,
                        func: user.ast,
                        arg: user.astarg,
                        lksb: user.lksb,
                    };
                    ((owner, lkid.0, incarnation), cb)
                }
                Event::Blocking { owner, lkid, incarnation, .. } => {
                    let user = ls.users.get(&lkid.0).copied().unwrap_or_default();
                    let cb = Callback {
                        blocking: true,
                        lkid: lkid.0,
                        incarnation,
                        status: Status::Granted.to_user(),
                        sb_flags: 0,
                        lvb: None,
                        func: user.bast,
                        arg: user.bastarg,
                        lksb: user.lksb,
                    };
                    ((owner, lkid.0, incarnation), cb)
                }
            };
            let (owner, lkid, inc) = key;
            let slot = match per_owner.iter().position(|(o, _)| *o == owner) {
                Some(i) => i,
                None => {
                    per_owner.push((owner, Vec::new()));
                    per_owner.len() - 1
                }
            };
            let locks = &mut per_owner[slot].1;
            match locks.iter_mut().find(|(k, _)| *k == (lkid, inc)) {
                Some((_, v)) => v.push(cb.encode()),
                None => locks.push(((lkid, inc), vec![cb.encode()])),
            }
        }
        // Locks whose life ended without a callback (silent releases) leave
        // no user args behind.
        let engine = &ls.engine;
        if ls.users.len() > engine.lock_count() {
            ls.users.retain(|&id, _| engine.lock_info_by_id(LockId(id)).is_some());
        }
        for (owner, locks) in per_owner {
            let Some(sink) = self.handles.get(&owner).and_then(|h| h.sink.clone()) else { continue };
            let packets: Vec<Packet> = locks.into_iter().flat_map(|(_, v)| v).collect();
            sink.send(&packets);
        }
    }
}
