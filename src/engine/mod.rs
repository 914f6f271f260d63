//! The lock engine: one lockspace's resources on their master, as a pure
//! state machine.
//!
//! An input (request, convert, unlock, cancel, owner close, purge) goes in;
//! the engine changes its queues and appends [`Event`]s (completion ASTs and
//! BASTs addressed to owners) to an output buffer that the caller drains.
//! There is no I/O, no thread, no clock and no global state here, so the node,
//! the tests and the simulator all drive the very same code.
//!
//! The rules are those of `spec/libdlm-behaviour.md` §3 to §6: the grant
//! rules of "VAXcluster Principles" as the Linux DLM applies them (conversion
//! priority, QUECVT, NOORDER, HEADQUE, EXPEDITE, ALTPR/ALTCW, conversion
//! deadlock handling), BAST generation and suppression, the LVB read/write
//! table and invalidation, unlock/cancel in every state, and orphans.
//!
//! Decisions where the reference is buggy or unknowable (spec §10):
//! * a completion carries LVB bytes only when the completing operation used
//!   `LKF_VALBLK` (§5.3), and only for read or no-op transitions;
//! * an unlock from PW/EX with `LKF_VALBLK` writes the LVB the unlock carried
//!   (§5.6);
//! * convert, unlock and cancel are restricted to the owning handle
//!   (`ENOENT` otherwise);
//! * a lock id is free again as soon as the lock's last completion has been
//!   generated; events carry an `incarnation` so that a reader can tell two
//!   locks that shared an id apart;
//! * convert checks `EBUSY` (lock not granted) before the QUECVT legality
//!   `EINVAL`, as current kernels do.
//!
//! Room for what is planned (DESIGN "Beyond libdlm"): a resource has a slot
//! for a parent resource, and locks are plain records to which a wait timer
//! can be added; the wait-for graph can be derived from the queues.

#[cfg(test)]
mod tests;

use crate::fasthash::FastHash;
use crate::types::{lkf, sbf, Errno, LockId, Lvb, Mode, Owner, ResName, Status, LVB_LEN};
use hashbrown::HashTable;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hash::{BuildHasher, Hasher};

/// A mode inside the engine, with -1 ("IV") for "none".
type RawMode = i8;
const IV: RawMode = -1;
const NIL: u32 = u32::MAX;

/// Default bound on live locks in one lockspace of one node.
pub const DEFAULT_MAX_LOCKS: u32 = 1 << 24;

fn raw_compat(granted: RawMode, requested: RawMode) -> bool {
    if granted < 0 || requested < 0 {
        return true;
    }
    mode_of(granted).compatible(mode_of(requested))
}

fn mode_of(raw: RawMode) -> Mode {
    Mode::from_raw(raw as i64).expect("a valid mode")
}

/// What a grant or conversion does with the LVB (spec §5.2): 1 = the lock
/// reads the resource's value, 0 = the lock writes it, -1 = nothing.
fn lvb_transfer(from: RawMode, to: RawMode) -> i8 {
    const T: [[i8; 6]; 7] = [
        [1, 1, 1, 1, 1, 1],    // new request
        [1, 1, 1, 1, 1, 1],    // NL
        [-1, 1, 1, 1, 1, 1],   // CR
        [-1, -1, 1, 1, 1, 1],  // CW
        [-1, -1, -1, 1, 1, 1], // PR
        [0, 0, 0, 0, 0, 1],    // PW
        [0, 0, 0, 0, 0, 0],    // EX
    ];
    if to < 0 {
        return -1;
    }
    T[(from + 1) as usize][to as usize]
}

/// Which upward conversions may use QUECVT (spec §3.3); `from` is the
/// granted mode (-1 for none).
pub fn quecvt_legal(from: i8, to: Mode) -> bool {
    from >= 0 && ((to as RawMode) > from || (from == Mode::Pr as RawMode && to == Mode::Cw))
}

/// The queue a lock is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueKind {
    Granted = 0,
    Converting = 1,
    Waiting = 2,
}

/// An output of the engine, addressed to the owner of a lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A completion AST: the outcome of the lock's latest operation.
    Completion {
        owner: Owner,
        lkid: LockId,
        incarnation: u32,
        status: Status,
        sb_flags: u8,
        /// The 32 bytes to copy into the caller's LVB buffer, if any.
        lvb: Option<Lvb>,
        /// The lock's life ends with this callback; its id may be reused.
        end_of_life: bool,
    },
    /// A blocking AST: another request is blocked by this lock in `mode`.
    Blocking {
        owner: Owner,
        lkid: LockId,
        incarnation: u32,
        mode: Mode,
    },
}

impl Event {
    pub fn owner(&self) -> Owner {
        match self {
            Event::Completion { owner, .. } | Event::Blocking { owner, .. } => *owner,
        }
    }
    pub fn lkid(&self) -> LockId {
        match self {
            Event::Completion { lkid, .. } | Event::Blocking { lkid, .. } => *lkid,
        }
    }
}

/// A new lock request as the engine sees it (already stripped of `LKF_WAIT`).
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub owner: Owner,
    /// Thread id of the caller; orphans are purged by it (spec §6.2).
    pub pid: u32,
    /// Raw mode as passed by the caller (validated here).
    pub mode: i32,
    pub flags: u32,
    pub name: &'a [u8],
    /// The caller's LVB, present when `LKF_VALBLK` is set.
    pub lvb: Option<&'a Lvb>,
    /// Whether the caller registered a BAST routine.
    pub has_bast: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LastCallback {
    None,
    Completion,
    Blocking(RawMode),
}

struct Lock {
    owner: Owner,
    /// Order of acquisition within the owner, for closing in order.
    owner_seq: u64,
    res: u32,
    prev: u32,
    next: u32,
    flags: u32,
    pid: u32,
    incarnation: u32,
    lvbseq: u32,
    grmode: RawMode,
    rqmode: RawMode,
    highbast: RawMode,
    last_completion_mode: Option<RawMode>,
    last_callback: LastCallback,
    queue: Option<QueueKind>,
    sb_flags: u8,
    has_bast: bool,
    orphan: bool,
    /// Being released silently (owner closed or purged): no callbacks.
    dead: bool,
    /// Its owner is closing: callbacks still count (for suppression and
    /// LVB rules, as in the kernel, where they are queued and then
    /// discarded) but none is emitted.
    muted: bool,
    /// What the next ECANCEL of this lock reports instead: EDEADLK after
    /// `dlm_ls_deadlock_cancel` (spec §2.11) or the deadlock detector,
    /// ETIMEDOUT after an `LKF_TIMEOUT` expired.
    cancel_status: Option<Status>,
    lvb: Option<Box<Lvb>>,
    /// The engine's change counter at this lock's last change of queue,
    /// mode or owner: two reads with the same stamp saw the lock unchanged
    /// in between (what the deadlock detector's confirmation relies on).
    stamp: u64,
}

#[derive(Clone, Copy, Default)]
struct List {
    head: u32,
    tail: u32,
}

impl List {
    const EMPTY: List = List {
        head: NIL,
        tail: NIL,
    };
}

struct Resource {
    name: ResName,
    hash: u64,
    queues: [List; 3],
    nlocks: u32,
    lvb: Option<Box<Lvb>>,
    lvbseq: u32,
    valnotvalid: bool,
    /// Reserved for hierarchical locks: the parent resource, or NIL.
    #[allow(dead_code)]
    parent: u32,
}

fn hash_name(name: &[u8]) -> u64 {
    let mut h = FastHash.build_hasher();
    h.write(name);
    h.write_u8(name.len() as u8);
    h.finish()
}

/// A lock rebuilt on a new master by recovery (see
/// [`Engine::recover_granted`]).
#[derive(Clone, Copy, Debug)]
pub struct RecoveredLock<'a> {
    pub owner: Owner,
    pub pid: u32,
    pub name: &'a [u8],
    /// The granted mode (0..=5).
    pub mode: u8,
    pub flags: u32,
    pub has_bast: bool,
    pub orphan: bool,
}

/// A read-only view of one lock, for dumps and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockInfo {
    pub lkid: LockId,
    pub owner: Owner,
    pub pid: u32,
    pub queue: QueueKind,
    pub granted: Option<Mode>,
    pub requested: Option<Mode>,
    pub flags: u32,
    pub orphan: bool,
}

/// A read-only view of one resource, for dumps and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    pub name: ResName,
    pub lvb: Option<Lvb>,
    pub lvb_valid: bool,
    pub granted: Vec<LockInfo>,
    pub converting: Vec<LockInfo>,
    pub waiting: Vec<LockInfo>,
}

/// "Lock `waiter` cannot be granted while lock `blocker` holds its mode":
/// one edge of the wait-for graph the deadlock detector searches. The
/// stamps say in which state each lock was seen (see [`Engine::edge_holds`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WaitEdge {
    pub waiter: LockId,
    pub waiter_owner: Owner,
    pub waiter_stamp: u64,
    pub blocker: LockId,
    pub blocker_owner: Owner,
    pub blocker_stamp: u64,
}

/// One lockspace's lock state on its master.
pub struct Engine {
    table: HashTable<u32>,
    resources: Vec<Option<Resource>>,
    free_resources: Vec<u32>,
    locks: Vec<Option<Lock>>,
    free_ids: BinaryHeap<Reverse<u32>>,
    live_locks: u32,
    max_locks: u32,
    orphans: Vec<u32>,
    /// Names whose value block was lost in a recovery while no lock held
    /// them here: the resource starts not valid when it is created.
    lost_lvbs: std::collections::HashSet<ResName>,
    next_owner_seq: u64,
    next_incarnation: u32,
    events: Vec<Event>,
    /// Locks demoted to NL by `LKF_CONVDEADLK` since the last
    /// [`Engine::take_demotions`]: a node mastering them for another node
    /// tells that node at once, so that a recovery cannot rebuild the old
    /// mode next to the lock the demotion let in (at most one entry per
    /// lock: a demoted lock is NL and cannot be demoted again).
    demotions: Vec<LockId>,
    /// Counts changes to locks; see `Lock::stamp`.
    changes: u64,
    /// No grant processing until released ([`Engine::hold_grants`]).
    grants_held: bool,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new(DEFAULT_MAX_LOCKS)
    }
}

/// Result of the first step of a new request or a conversion.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    Granted,
    Queued,
    Again,
    Deadlock,
}

impl Engine {
    /// An empty lockspace that holds at most `max_locks` live locks.
    pub fn new(max_locks: u32) -> Engine {
        Engine {
            table: HashTable::new(),
            resources: Vec::new(),
            free_resources: Vec::new(),
            locks: Vec::new(),
            free_ids: BinaryHeap::new(),
            live_locks: 0,
            max_locks: max_locks.clamp(1, u32::MAX - 1),
            orphans: Vec::new(),
            lost_lvbs: std::collections::HashSet::new(),
            next_owner_seq: 0,
            next_incarnation: 0,
            events: Vec::new(),
            demotions: Vec::new(),
            changes: 0,
            grants_held: false,
        }
    }

    /// Moves the events generated so far into `out`, oldest first.
    pub fn drain_events(&mut self, out: &mut Vec<Event>) {
        out.append(&mut self.events);
    }

    /// The locks demoted by `LKF_CONVDEADLK` since the last call.
    pub fn take_demotions(&mut self) -> Vec<LockId> {
        std::mem::take(&mut self.demotions)
    }

    /// The events generated and not yet drained, oldest first.
    pub fn pending_events(&self) -> &[Event] {
        &self.events
    }

    /// The events generated so far, oldest first; the buffer is emptied.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    pub fn lock_count(&self) -> usize {
        self.live_locks as usize
    }

    pub fn resource_count(&self) -> usize {
        self.table.len()
    }

    /// Whether any lock (orphans included) is on the resource `name`.
    pub fn has_resource(&self, name: &[u8]) -> bool {
        self.find_resource(name).is_some()
    }

    pub fn is_empty(&self) -> bool {
        self.live_locks == 0
    }

    /// Whether `owner` holds any lock.
    pub fn owner_has_locks(&self, owner: Owner) -> bool {
        self.locks
            .iter()
            .flatten()
            .any(|l| l.owner == owner && !l.orphan)
    }

    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }

    // ----- inputs -------------------------------------------------------

    /// A new lock request (spec §2.4, §3). Returns the new lock id; the
    /// outcome arrives as a completion event (even when granted at once).
    pub fn request(&mut self, req: Request<'_>) -> Result<LockId, Errno> {
        let mode = check_lock_args(req.mode, req.flags)?;
        if req.flags & lkf::CONVERT != 0 || req.flags & lkf::ORPHAN != 0 {
            return Err(Errno::Inval);
        }
        let name = ResName::new(req.name).ok_or(Errno::Inval)?;
        if self.live_locks >= self.max_locks {
            return Err(Errno::NoMem);
        }
        let r = self.find_or_create_resource(name);
        let l = self.alloc_lock(Lock {
            owner: req.owner,
            owner_seq: 0,
            res: r,
            prev: NIL,
            next: NIL,
            flags: req.flags,
            pid: req.pid,
            incarnation: 0,
            lvbseq: 0,
            grmode: IV,
            rqmode: mode as RawMode,
            highbast: 0,
            last_completion_mode: None,
            last_callback: LastCallback::None,
            queue: None,
            sb_flags: 0,
            has_bast: req.has_bast,
            orphan: false,
            dead: false,
            muted: false,
            cancel_status: None,
            stamp: 0,
            // A new lock's value block starts zeroed: the kernel ignores the
            // caller's bytes on a request (observed: a VALBLK read of a
            // never-written LVB gives zeros whatever the buffer held).
            lvb: req.lvb.map(|_| Box::new([0u8; LVB_LEN])),
        });
        self.res_mut(r).nlocks += 1;

        let outcome = self.do_request(r, l);
        match outcome {
            Outcome::Again => {
                if req.flags & lkf::NOQUEUEBAST != 0 {
                    self.send_blocking_asts(r, l, true);
                }
                let _ = self.free_lock(l);
            }
            Outcome::Queued => self.send_blocking_asts(r, l, false),
            Outcome::Granted | Outcome::Deadlock => {}
        }
        Ok(LockId(l + 1))
    }

    /// A conversion of the caller's lock `lkid` to `mode` (spec §2.4, §3).
    #[allow(clippy::too_many_arguments)]
    pub fn convert(
        &mut self,
        owner: Owner,
        pid: u32,
        lkid: LockId,
        mode: i32,
        flags: u32,
        lvb: Option<&Lvb>,
        has_bast: bool,
    ) -> Result<(), Errno> {
        let l = self.find_owned(owner, lkid)?;
        let mode = check_lock_args(mode, flags | lkf::CONVERT)?;
        let lk = self.lock(l);
        if lk.queue != Some(QueueKind::Granted) {
            return Err(Errno::Busy);
        }
        if flags & lkf::QUECVT != 0 && !quecvt_legal(lk.grmode, mode) {
            return Err(Errno::Inval);
        }
        let lk = self.lock_mut(l);
        lk.flags = flags;
        lk.sb_flags = 0;
        lk.pid = pid;
        lk.rqmode = mode as RawMode;
        lk.has_bast = has_bast;
        lk.cancel_status = None;
        if let Some(v) = lvb {
            match &mut lk.lvb {
                Some(b) => **b = *v,
                None => lk.lvb = Some(Box::new(*v)),
            }
        }
        let r = lk.res;
        match self.do_convert(r, l) {
            Outcome::Granted => self.grant_pending_locks(r),
            Outcome::Again => {
                if flags & lkf::NOQUEUEBAST != 0 {
                    self.send_blocking_asts(r, l, true);
                }
            }
            Outcome::Queued => self.send_blocking_asts(r, l, false),
            Outcome::Deadlock => {}
        }
        Ok(())
    }

    /// An unlock, cancel (`LKF_CANCEL`) or force-unlock (`LKF_FORCEUNLOCK`)
    /// of the caller's lock (spec §2.5, §6.3, §6.4). `lvb` is the caller's
    /// LVB when `LKF_VALBLK` is set.
    pub fn unlock(
        &mut self,
        owner: Owner,
        lkid: LockId,
        flags: u32,
        lvb: Option<&Lvb>,
    ) -> Result<(), Errno> {
        let l = self.find_owned(owner, lkid)?;
        check_unlock_flags(flags)?;
        if !self.validate_unlock(l, flags)? {
            return Ok(());
        }
        if let Some(v) = lvb {
            let lk = self.lock_mut(l);
            match &mut lk.lvb {
                Some(b) => **b = *v,
                None => lk.lvb = Some(Box::new(*v)),
            }
        }
        if flags & lkf::CANCEL != 0 {
            self.cancel_lock(l);
        } else {
            self.unlock_lock(l);
        }
        Ok(())
    }

    /// `dlm_ls_deadlock_cancel`: cancel like `LKF_CANCEL`, but the victim's
    /// completion reports `EDEADLK` (spec §2.11).
    pub fn deadlock_cancel(&mut self, owner: Owner, lkid: LockId, flags: u32) -> Result<(), Errno> {
        let l = self.find_owned(owner, lkid)?;
        check_unlock_flags(flags)?;
        if !self.validate_unlock(l, flags)? {
            return Ok(());
        }
        self.lock_mut(l).cancel_status = Some(Status::Deadlock);
        self.cancel_lock(l);
        Ok(())
    }

    /// Ends a request or conversion that is still waiting, whoever owns it,
    /// as a cancel that reports `status` (`TimedOut` when its `LKF_TIMEOUT`
    /// ran out, `Deadlock` for a victim of the deadlock detector). Returns
    /// false, changing nothing, when the lock is granted, unknown, or
    /// already being cancelled: the race with a grant is lost quietly.
    pub fn end_wait(&mut self, lkid: LockId, status: Status) -> bool {
        let Some(l) = self.live_lock(lkid) else {
            return false;
        };
        let lk = self.lock(l);
        if lk.orphan || lk.dead || lk.queue.is_none() {
            return false;
        }
        // As a program's cancel: refused if one is under way, nothing to
        // do for a granted lock.
        if self.validate_unlock(l, lkf::CANCEL) != Ok(true) {
            return false;
        }
        self.lock_mut(l).cancel_status = Some(status);
        self.cancel_lock(l);
        // Unlike a program's cancel, this one leaves no trace: the lock (a
        // conversion's, still granted) may be cancelled or converted again
        // as if its conversion had been refused.
        if let Some(Some(lk)) = self.locks.get_mut(l as usize) {
            lk.flags &= !lkf::CANCEL;
        }
        true
    }

    /// The wait-for edges of this engine, at most `limit` of them (the
    /// detector may then miss a cycle, never invent one). Only certain
    /// blocking counts: a waiting request or conversion and a lock of
    /// another owner holding a mode incompatible with the requested one.
    /// Queue order is left out (a request behind another could be granted
    /// out of order with NOORDER or EXPEDITE). A waiter with
    /// `LKF_NODLCKWT` does not count as waiting, a holder with
    /// `LKF_NODLCKBLK` not as blocking; orphans and locks being cancelled
    /// count as neither.
    pub fn wait_edges(&self, limit: usize) -> Vec<WaitEdge> {
        let mut out = Vec::new();
        for res in self.resources.iter().flatten() {
            if res.queues[QueueKind::Converting as usize].head == NIL
                && res.queues[QueueKind::Waiting as usize].head == NIL
            {
                continue;
            }
            for wq in [QueueKind::Converting, QueueKind::Waiting] {
                let mut w = res.queues[wq as usize].head;
                while w != NIL {
                    let wl = self.lock(w);
                    let waits = wl.flags & (lkf::NODLCKWT | lkf::CANCEL) == 0
                        && !wl.orphan
                        && !wl.dead
                        && wl.rqmode != IV;
                    if waits {
                        for hq in [QueueKind::Granted, QueueKind::Converting] {
                            let mut h = res.queues[hq as usize].head;
                            while h != NIL {
                                let hl = self.lock(h);
                                let blocks = h != w
                                    && hl.owner != wl.owner
                                    && hl.grmode != IV
                                    && hl.flags & lkf::NODLCKBLK == 0
                                    && !hl.dead
                                    && !raw_compat(hl.grmode, wl.rqmode);
                                if blocks {
                                    if out.len() >= limit {
                                        return out;
                                    }
                                    out.push(WaitEdge {
                                        waiter: LockId(w + 1),
                                        waiter_owner: wl.owner,
                                        waiter_stamp: wl.stamp,
                                        blocker: LockId(h + 1),
                                        blocker_owner: hl.owner,
                                        blocker_stamp: hl.stamp,
                                    });
                                }
                                h = hl.next;
                            }
                        }
                    }
                    w = wl.next;
                }
            }
        }
        out
    }

    /// Whether both locks of `e` are still in the state in which
    /// [`Engine::wait_edges`] saw them; then the edge held without a break
    /// from that reading until now.
    pub fn edge_holds(&self, e: &WaitEdge) -> bool {
        let same = |id: LockId, owner: Owner, stamp: u64| {
            self.live_lock(id).is_some_and(|l| {
                let lk = self.lock(l);
                lk.stamp == stamp && lk.owner == owner && !lk.dead
            })
        };
        let cancelling = self
            .live_lock(e.waiter)
            .is_some_and(|l| self.lock(l).flags & lkf::CANCEL != 0);
        !cancelling
            && same(e.waiter, e.waiter_owner, e.waiter_stamp)
            && same(e.blocker, e.blocker_owner, e.blocker_stamp)
    }

    /// `LKF_ORPHAN` without `LKF_CONVERT`: adopt an orphan with exactly this
    /// name and granted mode (spec §6.2). No completion is generated.
    pub fn adopt_orphan(&mut self, req: Request<'_>) -> Result<LockId, Errno> {
        self.adopt_orphan_where(req, |_| true)
    }

    /// [`Engine::adopt_orphan`] among the orphans whose last owner passes
    /// `eligible` (a node adopts only the orphans its own handles left).
    pub fn adopt_orphan_where(
        &mut self,
        req: Request<'_>,
        eligible: impl Fn(Owner) -> bool,
    ) -> Result<LockId, Errno> {
        let mut other_mode = false;
        let mut found = None;
        for &l in &self.orphans {
            let lk = self.lock(l);
            if !eligible(lk.owner) || self.res(lk.res).name.as_bytes() != req.name {
                continue;
            }
            if lk.grmode as i32 != req.mode {
                other_mode = true;
                continue;
            }
            found = Some(l);
            break;
        }
        let Some(l) = found else {
            return Err(if other_mode {
                Errno::Again
            } else {
                Errno::NoEnt
            });
        };
        self.adopt_orphan_id(LockId(l + 1), req.owner, req.pid, req.flags, req.has_bast)?;
        Ok(LockId(l + 1))
    }

    /// Hands the orphan `lkid` to `owner` (adoption decided elsewhere: the
    /// orphan's home node chose it).
    pub fn adopt_orphan_id(
        &mut self,
        lkid: LockId,
        owner: Owner,
        pid: u32,
        flags: u32,
        has_bast: bool,
    ) -> Result<(), Errno> {
        let l = lkid.0.checked_sub(1).ok_or(Errno::NoEnt)?;
        let i = self
            .orphans
            .iter()
            .position(|&x| x == l)
            .ok_or(Errno::NoEnt)?;
        self.orphans.remove(i);
        let seq = self.next_owner_seq();
        self.touch(l);
        let lk = self.lock_mut(l);
        lk.orphan = false;
        lk.owner = owner;
        lk.owner_seq = seq;
        lk.flags = flags;
        lk.pid = pid;
        lk.has_bast = has_bast;
        Ok(())
    }

    /// The owner of a live lock, orphans included.
    pub fn lock_owner(&self, lkid: LockId) -> Option<Owner> {
        let l = lkid.0.checked_sub(1)?;
        self.locks.get(l as usize)?.as_ref().map(|lk| lk.owner)
    }

    /// The owner's handle closed (spec §6.1): its PERSISTENT locks become
    /// orphans (pending requests cancelled), the others are force-unlocked
    /// with LVB invalidation. No callback goes to the closed owner.
    pub fn close_owner(&mut self, owner: Owner) {
        let locks = self.owner_locks(owner);
        // Silence every lock of the owner first: releasing one may grant or
        // block another of its locks, and the closed handle hears nothing.
        for &l in &locks {
            self.lock_mut(l).muted = true;
        }
        for l in locks {
            if self.locks[l as usize].is_none() {
                continue;
            }
            if self.lock(l).flags & lkf::PERSISTENT != 0 {
                self.orphan_lock(l);
            } else {
                self.release_silently(l);
            }
        }
    }

    /// `dlm_ls_purge` of the caller's own locks: every lock of the owner is
    /// force-unlocked silently, PERSISTENT or not (spec §2.11).
    pub fn purge_owner(&mut self, owner: Owner) {
        let locks = self.owner_locks(owner);
        for &l in &locks {
            self.lock_mut(l).muted = true;
        }
        for l in locks {
            if self.locks[l as usize].is_some() {
                self.release_silently(l);
            }
        }
    }

    /// Takes back a conversion that is still waiting, with no callback:
    /// the lock is granted at its mode as if it had never asked (a
    /// recovery: its node sends the conversion again when the recovery
    /// ends). Returns whether a conversion was waiting.
    pub fn withdraw_conversion(&mut self, lkid: LockId) -> bool {
        let Some(l) = self.live_lock(lkid) else {
            return false;
        };
        let lk = self.lock(l);
        if lk.orphan || lk.dead || lk.queue != Some(QueueKind::Converting) {
            return false;
        }
        let r = lk.res;
        self.revert_lock(r, l);
        self.grant_pending_locks(r);
        true
    }

    /// Force-unlocks one lock with LVB invalidation and no callback (a
    /// remote node purged its orphan, or its owner's own locks).
    pub fn release_lock_silently(&mut self, lkid: LockId) -> Result<(), Errno> {
        let l = lkid.0.checked_sub(1).ok_or(Errno::NoEnt)?;
        if self.locks.get(l as usize).is_none_or(|x| x.is_none()) {
            return Err(Errno::NoEnt);
        }
        self.orphans.retain(|&x| x != l);
        self.release_silently(l);
        Ok(())
    }

    /// `dlm_ls_purge` of orphans: those whose last requester was `pid`, or
    /// all of them when `pid` is 0 (spec §6.2).
    pub fn purge_orphans(&mut self, pid: u32) {
        self.purge_orphans_where(pid, |_| true)
    }

    /// [`Engine::purge_orphans`] among the orphans whose last owner passes
    /// `eligible`.
    pub fn purge_orphans_where(&mut self, pid: u32, eligible: impl Fn(Owner) -> bool) {
        let victims: Vec<u32> = self
            .orphans
            .iter()
            .copied()
            .filter(|&l| (pid == 0 || self.lock(l).pid == pid) && eligible(self.lock(l).owner))
            .collect();
        self.orphans.retain(|l| !victims.contains(l));
        for l in victims {
            self.release_silently(l);
        }
    }

    // ----- recovery (node/recovery.rs) -----------------------------------

    /// Drops, silently, every lock whose owner passes `departed` (locks of
    /// a node that left the cluster), orphans included. A PW or EX holder's
    /// removal invalidates the LVB, as its close would; waiters behind the
    /// removed locks are granted.
    pub fn release_owners_where(&mut self, departed: impl Fn(Owner) -> bool) {
        let victims: Vec<u32> = self
            .locks
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.as_ref().filter(|l| departed(l.owner)).map(|_| i as u32))
            .collect();
        for &l in &victims {
            self.lock_mut(l).muted = true;
        }
        self.orphans.retain(|l| !victims.contains(l));
        for l in victims {
            if self.locks[l as usize].is_none() {
                continue;
            }
            // A writer that used VALBLK may have changed the value it never
            // wrote back: the next VALBLK reader is told, even when nobody
            // had written a value yet.
            let (r, writer) = {
                let lk = self.lock(l);
                (
                    lk.res,
                    lk.grmode >= Mode::Pw as RawMode && lk.flags & lkf::VALBLK != 0,
                )
            };
            if writer {
                self.lose_lvb(r);
            }
            self.release_silently(l);
        }
    }

    /// Rebuilds a lock on a resource that changed master: granted in `mode`
    /// at once, with no grant processing and no event (the survivors'
    /// granted locks are compatible with each other by construction).
    pub fn recover_granted(&mut self, lock: RecoveredLock<'_>) -> Result<LockId, Errno> {
        let mode = Mode::from_raw(i64::from(lock.mode)).ok_or(Errno::Inval)?;
        let name = ResName::new(lock.name).ok_or(Errno::Inval)?;
        if self.live_locks >= self.max_locks {
            return Err(Errno::NoMem);
        }
        let r = self.find_or_create_resource(name);
        let l = self.alloc_lock(Lock {
            owner: lock.owner,
            owner_seq: 0,
            res: r,
            prev: NIL,
            next: NIL,
            flags: lock.flags & !(lkf::CONVERT | lkf::CANCEL | lkf::FORCEUNLOCK | lkf::IVVALBLK),
            pid: lock.pid,
            incarnation: 0,
            lvbseq: 0,
            grmode: mode as RawMode,
            rqmode: IV,
            highbast: 0,
            last_completion_mode: Some(mode as RawMode),
            last_callback: LastCallback::Completion,
            queue: None,
            sb_flags: 0,
            has_bast: lock.has_bast,
            orphan: lock.orphan,
            dead: false,
            muted: false,
            cancel_status: None,
            stamp: 0,
            lvb: (lock.flags & lkf::VALBLK != 0).then(|| Box::new([0u8; LVB_LEN])),
        });
        self.res_mut(r).nlocks += 1;
        self.add_to_queue(r, l, QueueKind::Granted, false);
        if lock.orphan {
            self.orphans.push(l);
        }
        Ok(LockId(l + 1))
    }

    /// Sets the value block of a resource rebuilt by recovery: the value a
    /// holder above CR had (valid), or the best one known marked not valid
    /// (spec §8.5 step 7).
    pub fn set_recovered_lvb(&mut self, name: &[u8], lvb: Option<Lvb>, valid: bool) {
        let Some(r) = self.find_resource(name) else {
            if !valid {
                if let Some(n) = ResName::new(name) {
                    self.lost_lvbs.insert(n);
                }
            }
            return;
        };
        if let Some(v) = lvb {
            let res = self.res_mut(r);
            res.lvb = Some(Box::new(v));
            res.lvbseq = res.lvbseq.wrapping_add(1);
        }
        if valid {
            self.res_mut(r).valnotvalid = false;
        } else {
            self.lose_lvb(r);
        }
    }

    /// The value is not valid any more; a value that never existed reads as
    /// zeros, so that a VALBLK reader is told (a resource without a value
    /// block reports nothing, spec §5.2).
    fn lose_lvb(&mut self, r: u32) {
        let res = self.res_mut(r);
        res.valnotvalid = true;
        if res.lvb.is_none() {
            res.lvb = Some(Box::new([0u8; LVB_LEN]));
        }
    }

    /// Forgets a resource and every lock on it, without events: it is
    /// mastered elsewhere from now on and its holders rebuild it there.
    pub fn discard_resource(&mut self, name: &[u8]) {
        let Some(r) = self.find_resource(name) else {
            return;
        };
        for k in [
            QueueKind::Granted,
            QueueKind::Converting,
            QueueKind::Waiting,
        ] {
            loop {
                let l = self.res(r).queues[k as usize].head;
                if l == NIL {
                    break;
                }
                self.remove_from_queue(r, l);
                self.orphans.retain(|&x| x != l);
                if !self.free_lock(l) {
                    return;
                }
            }
        }
    }

    /// While held, releasing or cancelling a lock grants nothing and sends
    /// no BAST: a node rebuilding after a recovery must not answer for a
    /// resource whose locks are still arriving or leaving. Whatever would
    /// have been granted is granted by [`Engine::grant_everything`].
    pub fn hold_grants(&mut self, held: bool) {
        self.grants_held = held;
    }

    /// Grant processing on every resource (after a recovery, when queue
    /// order was not preserved).
    pub fn grant_everything(&mut self) {
        let all: Vec<u32> = (0..self.resources.len() as u32)
            .filter(|&r| self.resources[r as usize].is_some())
            .collect();
        for r in all {
            if self.resources[r as usize].is_some() {
                self.grant_pending_locks(r);
            }
        }
    }

    fn find_resource(&self, name: &[u8]) -> Option<u32> {
        let name = ResName::new(name)?;
        let hash = hash_name(name.as_bytes());
        let resources = &self.resources;
        self.table
            .find(hash, |&r| {
                resources[r as usize]
                    .as_ref()
                    .is_some_and(|x| x.name == name)
            })
            .copied()
    }

    // ----- queries ------------------------------------------------------

    /// Every resource with its queues, for dumps and tests.
    pub fn resources(&self) -> Vec<ResourceInfo> {
        let mut out = Vec::with_capacity(self.table.len());
        for r in self.resources.iter().flatten() {
            out.push(self.resource_view(r));
        }
        out.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        out
    }

    /// One resource and its locks, if it exists here.
    pub fn resource_info(&self, name: &[u8]) -> Option<ResourceInfo> {
        let r = self.find_resource(name)?;
        Some(self.resource_view(self.res(r)))
    }

    fn resource_view(&self, r: &Resource) -> ResourceInfo {
        let q = |k: QueueKind| -> Vec<LockInfo> {
            let mut v = Vec::new();
            let mut l = r.queues[k as usize].head;
            while l != NIL {
                v.push(self.lock_info(l));
                l = self.lock(l).next;
            }
            v
        };
        ResourceInfo {
            name: r.name,
            lvb: r.lvb.as_deref().copied(),
            lvb_valid: !r.valnotvalid,
            granted: q(QueueKind::Granted),
            converting: q(QueueKind::Converting),
            waiting: q(QueueKind::Waiting),
        }
    }

    /// One lock, for dumps and tests.
    pub fn lock_info_by_id(&self, lkid: LockId) -> Option<LockInfo> {
        let l = lkid.0.checked_sub(1)?;
        self.locks.get(l as usize)?.as_ref()?;
        Some(self.lock_info(l))
    }

    fn lock_info(&self, l: u32) -> LockInfo {
        let lk = self.lock(l);
        LockInfo {
            lkid: LockId(l + 1),
            owner: lk.owner,
            pid: lk.pid,
            queue: lk.queue.unwrap_or(QueueKind::Waiting),
            granted: (lk.grmode >= 0).then(|| mode_of(lk.grmode)),
            requested: (lk.rqmode >= 0).then(|| mode_of(lk.rqmode)),
            flags: lk.flags,
            orphan: lk.orphan,
        }
    }

    /// Checks the structural invariants; panics with a description when one
    /// is broken. Meant for tests and the simulator.
    pub fn check_invariants(&self) {
        let mut on_queue = 0u32;
        for (ri, r) in self.resources.iter().enumerate() {
            let Some(r) = r else { continue };
            let mut holders: Vec<RawMode> = Vec::new();
            let mut count = 0;
            for k in [
                QueueKind::Granted,
                QueueKind::Converting,
                QueueKind::Waiting,
            ] {
                let mut prev = NIL;
                let mut l = r.queues[k as usize].head;
                while l != NIL {
                    let lk = self.lock(l);
                    assert_eq!(lk.res as usize, ri, "lock {} on a foreign resource", l + 1);
                    assert_eq!(lk.queue, Some(k), "lock {} queue tag", l + 1);
                    assert_eq!(lk.prev, prev, "lock {} back link", l + 1);
                    match k {
                        QueueKind::Granted => {
                            assert!(lk.grmode >= 0, "granted lock {} without mode", l + 1)
                        }
                        QueueKind::Converting => {
                            assert!(
                                lk.grmode >= 0 && lk.rqmode >= 0,
                                "converting lock {} modes",
                                l + 1
                            )
                        }
                        QueueKind::Waiting => {
                            assert!(lk.grmode < 0, "waiting lock {} has a mode", l + 1)
                        }
                    }
                    if lk.grmode >= 0 {
                        for &h in &holders {
                            assert!(
                                raw_compat(h, lk.grmode),
                                "incompatible holders on {:?}",
                                r.name
                            );
                        }
                        holders.push(lk.grmode);
                    }
                    count += 1;
                    prev = l;
                    l = lk.next;
                }
                assert_eq!(r.queues[k as usize].tail, prev, "queue tail");
            }
            assert_eq!(count, r.nlocks, "lock count of {:?}", r.name);
            assert!(r.nlocks > 0, "empty resource {:?} kept", r.name);
            on_queue += count;
        }
        assert_eq!(
            on_queue, self.live_locks,
            "every live lock on exactly one queue"
        );
        assert_eq!(self.locks.iter().flatten().count() as u32, self.live_locks);
        for &l in &self.orphans {
            assert!(self.lock(l).orphan);
        }
    }

    // ----- the grant machinery (spec §3) ----------------------------------

    fn do_request(&mut self, r: u32, l: u32) -> Outcome {
        if self.can_be_granted(r, l, true, false).0 {
            self.grant_lock(r, l);
            self.queue_completion(l, Status::Granted);
            return Outcome::Granted;
        }
        if self.lock(l).flags & lkf::NOQUEUE == 0 {
            let head = self.lock(l).flags & lkf::HEADQUE != 0;
            self.add_to_queue(r, l, QueueKind::Waiting, head);
            return Outcome::Queued;
        }
        self.queue_completion(l, Status::Again);
        Outcome::Again
    }

    fn do_convert(&mut self, r: u32, l: u32) -> Outcome {
        let (grantable, deadlock) = self.can_be_granted(r, l, true, false);
        if grantable {
            self.grant_lock(r, l);
            self.queue_completion(l, Status::Granted);
            return Outcome::Granted;
        }
        let flags = self.lock(l).flags;
        if deadlock && flags & lkf::NODLCKWT == 0 {
            self.revert_lock(r, l);
            self.queue_completion(l, Status::Deadlock);
            return Outcome::Deadlock;
        }
        if self.lock(l).sb_flags & sbf::DEMOTED != 0 {
            // Demotion to NL may let earlier conversions through, and then
            // perhaps this one.
            self.grant_pending_convert(r, None);
            if self.can_be_granted_plain(r, l, true, false) {
                self.grant_lock(r, l);
                self.queue_completion(l, Status::Granted);
                return Outcome::Granted;
            }
        }
        if flags & lkf::NOQUEUE == 0 {
            self.remove_from_queue(r, l);
            self.add_to_queue(r, l, QueueKind::Converting, flags & lkf::HEADQUE != 0);
            return Outcome::Queued;
        }
        self.queue_completion(l, Status::Again);
        Outcome::Again
    }

    fn unlock_lock(&mut self, l: u32) {
        let r = self.lock(l).res;
        self.write_lvb_on_unlock(r, l);
        self.remove_from_queue(r, l);
        self.lock_mut(l).grmode = IV;
        self.queue_completion(l, Status::Unlocked);
        if self.free_lock(l) {
            self.grant_pending_locks(r);
        }
    }

    fn cancel_lock(&mut self, l: u32) {
        let r = self.lock(l).res;
        let before = self.lock(l).queue;
        self.revert_lock(r, l);
        if before == Some(QueueKind::Granted) {
            return;
        }
        self.queue_completion(l, Status::Cancelled);
        if before == Some(QueueKind::Waiting) && !self.free_lock(l) {
            return;
        }
        self.grant_pending_locks(r);
    }

    /// The unlock-side checks (spec §2.5). `Ok(false)` means "accepted,
    /// nothing to do" (the reference's swallowed EBUSY).
    fn validate_unlock(&mut self, l: u32, flags: u32) -> Result<bool, Errno> {
        let lk = self.lock(l);
        if flags & lkf::CANCEL != 0 {
            if lk.flags & lkf::CANCEL != 0 {
                return Err(Errno::Inval);
            }
            if lk.queue == Some(QueueKind::Granted) {
                return Ok(false);
            }
        } else if flags & lkf::FORCEUNLOCK != 0 && lk.flags & lkf::FORCEUNLOCK != 0 {
            return Err(Errno::Inval);
        }
        let lk = self.lock_mut(l);
        lk.flags |= flags;
        lk.sb_flags = 0;
        Ok(true)
    }

    fn orphan_lock(&mut self, l: u32) {
        self.touch(l);
        let r = self.lock(l).res;
        let before = self.lock(l).queue;
        let lk = self.lock_mut(l);
        lk.orphan = true;
        lk.muted = false;
        self.revert_lock(r, l);
        match before {
            Some(QueueKind::Granted) => self.orphans.push(l),
            Some(QueueKind::Converting) => {
                self.orphans.push(l);
                self.grant_pending_locks(r);
            }
            _ => {
                if self.free_lock(l) {
                    self.grant_pending_locks(r);
                }
            }
        }
    }

    /// FORCEUNLOCK|IVVALBLK with no callback (close, purge).
    fn release_silently(&mut self, l: u32) {
        let lk = self.lock_mut(l);
        lk.dead = true;
        lk.muted = false;
        lk.flags |= lkf::FORCEUNLOCK | lkf::IVVALBLK;
        self.unlock_lock(l);
    }

    fn can_be_granted_plain(&self, r: u32, l: u32, now: bool, recover: bool) -> bool {
        let lk = self.lock(l);
        let conv = lk.grmode != IV;
        if lk.flags & lkf::EXPEDITE != 0 {
            return true;
        }
        if self.queue_conflict(r, QueueKind::Granted, l)
            || self.queue_conflict(r, QueueKind::Converting, l)
        {
            return false;
        }
        if conv && recover {
            return true;
        }
        let converting_empty = self.res(r).queues[QueueKind::Converting as usize].head == NIL;
        if now && conv {
            return lk.flags & lkf::QUECVT == 0 || converting_empty;
        }
        if lk.flags & lkf::NOORDER != 0 {
            return true;
        }
        if conv {
            return self.res(r).queues[QueueKind::Converting as usize].head == l;
        }
        let waiting = self.res(r).queues[QueueKind::Waiting as usize].head;
        if now {
            converting_empty && waiting == NIL
        } else {
            converting_empty && waiting == l
        }
    }

    /// Whether the lock can be granted, trying the alternate mode and
    /// resolving conversion deadlocks. Returns (grantable, deadlock seen).
    fn can_be_granted(&mut self, r: u32, l: u32, now: bool, recover: bool) -> (bool, bool) {
        if self.can_be_granted_plain(r, l, now, recover) {
            return (true, false);
        }
        let lk = self.lock(l);
        let rqmode = lk.rqmode;
        if lk.grmode != IV && lk.flags & lkf::NOQUEUE == 0 && self.conversion_deadlock(r, l) {
            let lk = self.lock_mut(l);
            if lk.flags & lkf::CONVDEADLK != 0 {
                lk.grmode = Mode::Nl as RawMode;
                lk.sb_flags |= sbf::DEMOTED;
                self.touch(l);
                if self.demotions.len() < self.max_locks as usize {
                    self.demotions.push(LockId(l + 1));
                }
                return (false, false);
            }
            return (false, true);
        }
        let alt = if rqmode != Mode::Pr as RawMode && lk.flags & lkf::ALTPR != 0 {
            Mode::Pr as RawMode
        } else if rqmode != Mode::Cw as RawMode && lk.flags & lkf::ALTCW != 0 {
            Mode::Cw as RawMode
        } else {
            return (false, false);
        };
        self.lock_mut(l).rqmode = alt;
        if self.can_be_granted_plain(r, l, now, false) {
            self.lock_mut(l).sb_flags |= sbf::ALTMODE;
            (true, false)
        } else {
            self.lock_mut(l).rqmode = rqmode;
            (false, false)
        }
    }

    fn queue_conflict(&self, r: u32, k: QueueKind, l: u32) -> bool {
        let rq = self.lock(l).rqmode;
        let mut x = self.res(r).queues[k as usize].head;
        while x != NIL {
            let other = self.lock(x);
            if x != l && !raw_compat(other.grmode, rq) {
                return true;
            }
            x = other.next;
        }
        false
    }

    /// Spec §3.5: the converting lock's granted mode blocks a conversion
    /// queued ahead of it, or (behind it) the two block each other.
    fn conversion_deadlock(&self, r: u32, l2: u32) -> bool {
        let lk2 = self.lock(l2);
        let mut passed = false;
        let mut x = self.res(r).queues[QueueKind::Converting as usize].head;
        while x != NIL {
            let lk1 = self.lock(x);
            if x == l2 {
                passed = true;
            } else if !passed {
                if !raw_compat(lk2.grmode, lk1.rqmode) {
                    return true;
                }
            } else if !raw_compat(lk2.grmode, lk1.rqmode) && !raw_compat(lk1.grmode, lk2.rqmode) {
                return true;
            }
            x = lk1.next;
        }
        false
    }

    /// Grants what can be granted after a change (spec §3.7), conversions
    /// first, then sends BASTs for the highest mode still blocked.
    fn grant_pending_locks(&mut self, r: u32) {
        if self.grants_held {
            return;
        }
        let mut cw = false;
        let high = self.grant_pending_convert(r, Some(&mut cw));
        let high = self.grant_pending_wait(r, high, &mut cw);
        if high == IV {
            return;
        }
        let mut x = self.res(r).queues[QueueKind::Granted as usize].head;
        while x != NIL {
            let lk = self.lock(x);
            let next = lk.next;
            if lock_requires_bast(lk.grmode, lk.highbast, high, cw) {
                let mode = if cw && high == Mode::Pr as RawMode && lk.grmode == Mode::Pr as RawMode
                {
                    Mode::Cw as RawMode
                } else {
                    high
                };
                self.queue_blocking(x, mode);
                self.lock_mut(x).highbast = high;
            }
            x = next;
        }
    }

    /// Returns the highest mode of the conversions still blocked.
    fn grant_pending_convert(&mut self, r: u32, mut cw: Option<&mut bool>) -> RawMode {
        let mut quit = false;
        loop {
            let mut grant_restart = false;
            let mut demote_restart = false;
            let mut hi = IV;
            let mut x = self.res(r).queues[QueueKind::Converting as usize].head;
            while x != NIL {
                let next = self.lock(x).next;
                let demoted = self.lock(x).sb_flags & sbf::DEMOTED != 0;
                let (grantable, deadlock) = self.can_be_granted(r, x, false, false);
                if grantable {
                    self.grant_lock(r, x);
                    self.queue_completion(x, Status::Granted);
                    grant_restart = true;
                } else if !demoted && self.lock(x).sb_flags & sbf::DEMOTED != 0 {
                    demote_restart = true;
                } else if deadlock {
                    let lk = self.lock(x);
                    if lk.flags & lkf::NODLCKWT != 0 && lk.highbast < lk.rqmode {
                        let m = lk.rqmode;
                        self.queue_blocking(x, m);
                        self.lock_mut(x).highbast = m;
                    }
                } else {
                    let m = self.lock(x).rqmode;
                    hi = hi.max(m);
                    if m == Mode::Cw as RawMode {
                        if let Some(c) = cw.as_deref_mut() {
                            *c = true;
                        }
                    }
                }
                x = next;
            }
            if grant_restart {
                continue;
            }
            if demote_restart && !quit {
                quit = true;
                continue;
            }
            return hi;
        }
    }

    fn grant_pending_wait(&mut self, r: u32, mut high: RawMode, cw: &mut bool) -> RawMode {
        let mut x = self.res(r).queues[QueueKind::Waiting as usize].head;
        while x != NIL {
            let next = self.lock(x).next;
            if self.can_be_granted(r, x, false, false).0 {
                self.grant_lock(r, x);
                self.queue_completion(x, Status::Granted);
            } else {
                let m = self.lock(x).rqmode;
                high = high.max(m);
                if m == Mode::Cw as RawMode {
                    *cw = true;
                }
            }
            x = next;
        }
        high
    }

    /// BASTs to the holders that block `l`'s requested mode: the granted
    /// queue, and with `all` (NOQUEUEBAST) the converting queue too.
    fn send_blocking_asts(&mut self, r: u32, l: u32, all: bool) {
        let rq = self.lock(l).rqmode;
        let kinds: &[QueueKind] = if all {
            &[QueueKind::Granted, QueueKind::Converting]
        } else {
            &[QueueKind::Granted]
        };
        for &k in kinds {
            let mut x = self.res(r).queues[k as usize].head;
            while x != NIL {
                let lk = self.lock(x);
                let next = lk.next;
                if x != l && modes_require_bast(lk.grmode, lk.highbast, rq) {
                    self.queue_blocking(x, rq);
                    self.lock_mut(x).highbast = rq;
                }
                x = next;
            }
        }
    }

    fn grant_lock(&mut self, r: u32, l: u32) {
        self.read_or_write_lvb_on_grant(r, l);
        let (grmode, rqmode, queue) = {
            let lk = self.lock(l);
            (lk.grmode, lk.rqmode, lk.queue)
        };
        // A queued conversion granted in an alternate mode equal to its
        // granted mode must still leave the converting queue (the kernel
        // moves only on a mode change and leaves such a lock behind).
        if grmode != rqmode || queue.is_some_and(|q| q != QueueKind::Granted) {
            self.lock_mut(l).grmode = rqmode;
            if queue.is_some() {
                self.remove_from_queue(r, l);
            }
            self.add_to_queue(r, l, QueueKind::Granted, false);
        }
        let lk = self.lock_mut(l);
        lk.rqmode = IV;
        lk.highbast = 0;
    }

    /// Puts a converting lock back to its granted mode, or takes a waiting
    /// request off its queue (the caller frees it).
    fn revert_lock(&mut self, r: u32, l: u32) {
        self.lock_mut(l).rqmode = IV;
        match self.lock(l).queue {
            Some(QueueKind::Converting) => {
                self.remove_from_queue(r, l);
                self.add_to_queue(r, l, QueueKind::Granted, false);
            }
            Some(QueueKind::Waiting) => {
                self.remove_from_queue(r, l);
                self.lock_mut(l).grmode = IV;
            }
            _ => {}
        }
    }

    // ----- lock value blocks (spec §5) ------------------------------------

    fn read_or_write_lvb_on_grant(&mut self, r: u32, l: u32) {
        let (gr, rq, flags) = {
            let lk = self.lock(l);
            (lk.grmode, lk.rqmode, lk.flags)
        };
        let op = lvb_transfer(gr, rq);
        let (res, lk) = self.res_and_lock(r, l);
        if op == 1 {
            if flags & lkf::VALBLK == 0 || lk.lvb.is_none() {
                return;
            }
            let Some(value) = res.lvb.as_deref() else {
                return;
            };
            if let Some(b) = lk.lvb.as_deref_mut() {
                *b = *value;
            }
            lk.lvbseq = res.lvbseq;
        } else if op == 0 {
            if flags & lkf::IVVALBLK != 0 {
                res.valnotvalid = true;
                return;
            }
            if flags & lkf::VALBLK == 0 {
                return;
            }
            let Some(value) = lk.lvb.as_deref() else {
                return;
            };
            res.lvb = Some(Box::new(*value));
            res.lvbseq = res.lvbseq.wrapping_add(1);
            lk.lvbseq = res.lvbseq;
            res.valnotvalid = false;
        }
        if res.valnotvalid {
            lk.sb_flags |= sbf::VALNOTVALID;
        }
    }

    fn write_lvb_on_unlock(&mut self, r: u32, l: u32) {
        let (res, lk) = self.res_and_lock(r, l);
        if lk.grmode < Mode::Pw as RawMode {
            return;
        }
        if lk.flags & lkf::IVVALBLK != 0 {
            res.valnotvalid = true;
            return;
        }
        if lk.flags & lkf::VALBLK == 0 {
            return;
        }
        let Some(value) = lk.lvb.as_deref() else {
            return;
        };
        res.lvb = Some(Box::new(*value));
        res.lvbseq = res.lvbseq.wrapping_add(1);
        res.valnotvalid = false;
    }

    // ----- callbacks (spec §4) ------------------------------------------

    fn queue_completion(&mut self, l: u32, status: Status) {
        let lk = self.lock_mut(l);
        let status = match lk.cancel_status.take() {
            Some(s) if status == Status::Cancelled => s,
            other => {
                lk.cancel_status = other;
                status
            }
        };
        let end_of_life = match status {
            Status::Unlocked => true,
            Status::Cancelled | Status::Deadlock | Status::Again | Status::TimedOut => {
                lk.grmode == IV
            }
            Status::Granted => false,
        };
        if lk.orphan || lk.dead {
            return;
        }
        let prev = lk.last_completion_mode.unwrap_or(IV);
        let lvb = match &lk.lvb {
            Some(v)
                if status == Status::Granted
                    && lk.flags & lkf::VALBLK != 0
                    && lvb_transfer(prev, lk.grmode) != 0 =>
            {
                Some(**v)
            }
            _ => None,
        };
        lk.last_completion_mode = Some(lk.grmode);
        lk.last_callback = LastCallback::Completion;
        if lk.muted {
            return;
        }
        let ev = Event::Completion {
            owner: lk.owner,
            lkid: LockId(l + 1),
            incarnation: lk.incarnation,
            status,
            sb_flags: lk.sb_flags,
            lvb,
            end_of_life,
        };
        self.events.push(ev);
    }

    fn queue_blocking(&mut self, l: u32, mode: RawMode) {
        let lk = self.lock_mut(l);
        if lk.orphan || lk.dead || !lk.has_bast {
            return;
        }
        if let Some(cm) = lk.last_completion_mode {
            if raw_compat(mode, cm) {
                return;
            }
        }
        if let LastCallback::Blocking(prev) = lk.last_callback {
            if prev == mode || (prev > mode && prev > Mode::Pr as RawMode) {
                return;
            }
        }
        lk.last_callback = LastCallback::Blocking(mode);
        if lk.muted {
            return;
        }
        let ev = Event::Blocking {
            owner: lk.owner,
            lkid: LockId(l + 1),
            incarnation: lk.incarnation,
            mode: mode_of(mode),
        };
        self.events.push(ev);
    }

    // ----- storage --------------------------------------------------------

    fn lock(&self, l: u32) -> &Lock {
        self.locks[l as usize].as_ref().expect("live lock")
    }

    fn lock_mut(&mut self, l: u32) -> &mut Lock {
        self.locks[l as usize].as_mut().expect("live lock")
    }

    fn res(&self, r: u32) -> &Resource {
        self.resources[r as usize].as_ref().expect("live resource")
    }

    fn res_mut(&mut self, r: u32) -> &mut Resource {
        self.resources[r as usize].as_mut().expect("live resource")
    }

    fn res_and_lock(&mut self, r: u32, l: u32) -> (&mut Resource, &mut Lock) {
        let res = self.resources[r as usize].as_mut().expect("live resource");
        let lk = self.locks[l as usize].as_mut().expect("live lock");
        (res, lk)
    }

    fn find_owned(&self, owner: Owner, lkid: LockId) -> Result<u32, Errno> {
        let l = lkid.0.checked_sub(1).ok_or(Errno::NoEnt)?;
        match self.locks.get(l as usize) {
            Some(Some(lk)) if lk.owner == owner && !lk.orphan => Ok(l),
            _ => Err(Errno::NoEnt),
        }
    }

    fn live_lock(&self, lkid: LockId) -> Option<u32> {
        let l = lkid.0.checked_sub(1)?;
        matches!(self.locks.get(l as usize), Some(Some(_))).then_some(l)
    }

    fn next_owner_seq(&mut self) -> u64 {
        self.next_owner_seq += 1;
        self.next_owner_seq
    }

    fn owner_locks(&self, owner: Owner) -> Vec<u32> {
        let mut v: Vec<(u64, u32)> = self
            .locks
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                l.as_ref()
                    .filter(|l| l.owner == owner && !l.orphan)
                    .map(|l| (l.owner_seq, i as u32))
            })
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, l)| l).collect()
    }

    fn alloc_lock(&mut self, mut lock: Lock) -> u32 {
        lock.owner_seq = self.next_owner_seq();
        self.next_incarnation = self.next_incarnation.wrapping_add(1);
        lock.incarnation = self.next_incarnation;
        self.live_locks += 1;
        match self.free_ids.pop() {
            Some(Reverse(l)) => {
                self.locks[l as usize] = Some(lock);
                l
            }
            None => {
                self.locks.push(Some(lock));
                (self.locks.len() - 1) as u32
            }
        }
    }

    /// Forgets a lock that is on no queue; drops its resource when it was
    /// the last lock there (the LVB goes with it, spec §5.1). Returns whether
    /// the resource is still there.
    fn free_lock(&mut self, l: u32) -> bool {
        let lk = self.locks[l as usize].take().expect("live lock");
        debug_assert!(lk.queue.is_none());
        self.live_locks -= 1;
        self.free_ids.push(Reverse(l));
        let r = lk.res;
        let res = self.res_mut(r);
        res.nlocks -= 1;
        if res.nlocks == 0 {
            let hash = res.hash;
            let res = self.resources[r as usize].take().expect("live resource");
            drop(res);
            if let Ok(entry) = self.table.find_entry(hash, |&x| x == r) {
                entry.remove();
            }
            self.free_resources.push(r);
            return false;
        }
        true
    }

    fn find_or_create_resource(&mut self, name: ResName) -> u32 {
        let hash = hash_name(name.as_bytes());
        let resources = &self.resources;
        if let Some(&r) = self.table.find(hash, |&r| {
            resources[r as usize]
                .as_ref()
                .is_some_and(|x| x.name == name)
        }) {
            return r;
        }
        let res = Resource {
            name,
            hash,
            queues: [List::EMPTY; 3],
            nlocks: 0,
            lvb: None,
            lvbseq: 0,
            valnotvalid: false,
            parent: NIL,
        };
        let r = match self.free_resources.pop() {
            Some(r) => {
                self.resources[r as usize] = Some(res);
                r
            }
            None => {
                self.resources.push(Some(res));
                (self.resources.len() - 1) as u32
            }
        };
        let resources = &self.resources;
        self.table.insert_unique(hash, r, |&x| {
            resources[x as usize].as_ref().map_or(0, |x| x.hash)
        });
        if self.lost_lvbs.remove(&name) {
            self.lose_lvb(r);
        }
        r
    }

    /// Marks lock `l` as changed (see `Lock::stamp`).
    fn touch(&mut self, l: u32) {
        self.changes += 1;
        let c = self.changes;
        self.lock_mut(l).stamp = c;
    }

    fn add_to_queue(&mut self, r: u32, l: u32, k: QueueKind, at_head: bool) {
        self.touch(l);
        let before = match k {
            // Granted locks are kept ordered: a newly granted lock goes before
            // the first lock whose requested mode is lower than its mode,
            // which in practice is the head (so BASTs reach the newest holder
            // first, as observed on the kernel DLM).
            QueueKind::Granted => {
                let mode = self.lock(l).grmode;
                let mut x = self.res(r).queues[k as usize].head;
                while x != NIL && self.lock(x).rqmode >= mode {
                    x = self.lock(x).next;
                }
                x
            }
            _ if at_head => self.res(r).queues[k as usize].head,
            _ => NIL,
        };
        let prev = if before == NIL {
            self.res(r).queues[k as usize].tail
        } else {
            self.lock(before).prev
        };
        {
            let lk = self.lock_mut(l);
            debug_assert!(lk.queue.is_none());
            lk.queue = Some(k);
            lk.prev = prev;
            lk.next = before;
        }
        if prev == NIL {
            self.res_mut(r).queues[k as usize].head = l;
        } else {
            self.lock_mut(prev).next = l;
        }
        if before == NIL {
            self.res_mut(r).queues[k as usize].tail = l;
        } else {
            self.lock_mut(before).prev = l;
        }
    }

    fn remove_from_queue(&mut self, r: u32, l: u32) {
        self.touch(l);
        let (k, prev, next) = {
            let lk = self.lock_mut(l);
            let k = lk.queue.take().expect("lock on a queue");
            let p = (k, lk.prev, lk.next);
            lk.prev = NIL;
            lk.next = NIL;
            p
        };
        if prev == NIL {
            self.res_mut(r).queues[k as usize].head = next;
        } else {
            self.lock_mut(prev).next = next;
        }
        if next == NIL {
            self.res_mut(r).queues[k as usize].tail = prev;
        } else {
            self.lock_mut(next).prev = prev;
        }
    }
}

/// Whether a granted lock should be told about a newly queued request
/// (spec §4.2). PR and CW block each other without either being higher, so
/// a repeat is allowed up to EX.
fn modes_require_bast(grmode: RawMode, highbast: RawMode, rqmode: RawMode) -> bool {
    let pr = Mode::Pr as RawMode;
    let cw = Mode::Cw as RawMode;
    if (grmode == pr && rqmode == cw) || (grmode == cw && rqmode == pr) {
        return highbast < Mode::Ex as RawMode;
    }
    highbast < rqmode && !raw_compat(grmode, rqmode)
}

/// Whether a granted lock blocks the highest still-blocked mode after grant
/// processing (spec §4.2).
fn lock_requires_bast(grmode: RawMode, highbast: RawMode, high: RawMode, cw: bool) -> bool {
    // Only a PR holder is special here (told CW while a CW request waits); a
    // CW holder already told about PR is not told again (kernel 5.x/6.1).
    if grmode == Mode::Pr as RawMode && cw {
        return highbast < Mode::Ex as RawMode;
    }
    highbast < high && !raw_compat(grmode, high)
}

/// The checks that need no state (spec §2.4, kernel side). Returns the mode.
pub fn check_lock_args(mode: i32, flags: u32) -> Result<Mode, Errno> {
    let mode = Mode::from_raw(mode as i64).ok_or(Errno::Inval)?;
    let has = |f: u32| flags & f != 0;
    let bad = has(lkf::CANCEL)
        || (has(lkf::QUECVT) && !has(lkf::CONVERT))
        || (has(lkf::CONVDEADLK) && !has(lkf::CONVERT))
        || (has(lkf::CONVDEADLK) && has(lkf::NOQUEUE))
        || (has(lkf::EXPEDITE) && (has(lkf::CONVERT) || has(lkf::QUECVT) || has(lkf::NOQUEUE)))
        || (has(lkf::EXPEDITE) && mode != Mode::Nl);
    if bad {
        return Err(Errno::Inval);
    }
    Ok(mode)
}

/// The flag checks of an unlock (spec §2.5).
pub fn check_unlock_flags(flags: u32) -> Result<(), Errno> {
    if flags & !lkf::UNLOCK_MASK != 0 || (flags & lkf::CANCEL != 0 && flags & lkf::FORCEUNLOCK != 0)
    {
        return Err(Errno::Inval);
    }
    Ok(())
}

/// Size of the LVB, re-exported for callers that size buffers.
pub const LVB_SIZE: usize = LVB_LEN;
