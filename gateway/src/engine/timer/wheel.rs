//! One shard's timers: a slab of entries threaded onto a hashed wheel of [`SLOTS`] ticks.
//!
//! An entry lives in the slot of its deadline tick (mod [`SLOTS`]), on a doubly linked list
//! made of slab indices, so arming and cancelling are O(1) and allocate nothing once the slab
//! has grown to the shard's peak number of live timers. The clock visits one slot per tick
//! and fires the entries there whose deadline has come; a deadline more than [`SLOTS`] ticks
//! away is simply passed over on the earlier visits.
//!
//! An entry belongs to its owner (one `Within`) from [`Wheel::arm`] until
//! [`Wheel::release`]: firing only marks it [`Entry::Fired`], so a slab index is never
//! reused while an owner still holds it, and no generation counter is needed.
//!
//! No method runs foreign code: wakers are handed in already cloned and handed back to be
//! woken or dropped by the caller, outside the shard's lock (waking, cloning or dropping a
//! waker may run arbitrary executor code, which could reach this lock again).

use std::task::Waker;

/// Ticks on the wheel: one turn is [`SLOTS`] × the clock's grain (10.24 s).
pub(super) const SLOTS: usize = 1024;

const NIL: u32 = u32::MAX;

enum Entry {
    /// On the wheel: waits for `deadline`.
    Armed {
        waker: Waker,
        deadline: u64,
        slot: u16,
        prev: u32,
        next: u32,
    },
    /// Its deadline came and its waker was taken to be woken; the owner frees it.
    Fired,
    /// Unused; `next` is the next free entry.
    Free { next: u32 },
}

/// What [`Wheel::refresh`] found.
pub(super) enum Refresh {
    /// Still waiting; the stored waker already wakes the caller's task.
    Waiting,
    /// Still waiting, but the stored waker is another one: call [`Wheel::swap_waker`].
    NewWaker,
    /// The deadline came: the entry is freed.
    Fired,
}

pub(super) struct Wheel {
    entries: Vec<Entry>,
    free: u32,
    heads: [u32; SLOTS],
    /// The last tick the clock has processed; entries due by then are fired.
    done: u64,
    /// Entries on the wheel (not fired, not free).
    armed: usize,
}

// === impl Wheel ===

impl Wheel {
    pub(super) const fn new() -> Self {
        Wheel {
            entries: Vec::new(),
            free: NIL,
            heads: [NIL; SLOTS],
            done: 0,
            armed: 0,
        }
    }

    /// Entries waiting on the wheel.
    pub(super) fn armed(&self) -> usize {
        self.armed
    }

    /// Puts a timer on the wheel that fires once the clock reaches tick `deadline`, and
    /// returns its index (the owner's until [`Wheel::release`]). A deadline already passed
    /// goes to the next tick's slot.
    pub(super) fn arm(&mut self, waker: Waker, deadline: u64) -> u32 {
        let tick = deadline.max(self.done.saturating_add(1));
        let slot = (tick % SLOTS as u64) as u16;
        let next = self.heads[usize::from(slot)];
        let entry = Entry::Armed {
            waker,
            deadline,
            slot,
            prev: NIL,
            next,
        };
        let i = match self.entries.get_mut(self.free as usize) {
            Some(free) => {
                let i = self.free;
                self.free = match free {
                    Entry::Free { next } => *next,
                    // Not reachable: the free list holds free entries only.
                    _ => NIL,
                };
                *free = entry;
                i
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as u32
            }
        };
        if let Some(Entry::Armed { prev, .. }) = self.entries.get_mut(next as usize) {
            *prev = i;
        }
        self.heads[usize::from(slot)] = i;
        self.armed += 1;
        i
    }

    /// Checks entry `i` for its owner's re-poll.
    pub(super) fn refresh(&mut self, i: u32, waker: &Waker) -> Refresh {
        match self.entries.get(i as usize) {
            Some(Entry::Armed { waker: w, .. }) if w.will_wake(waker) => Refresh::Waiting,
            Some(Entry::Armed { .. }) => Refresh::NewWaker,
            _ => {
                self.free(i);
                Refresh::Fired
            }
        }
    }

    /// Stores `waker` in entry `i` and returns the old one, if the entry is still armed.
    /// If it fired since [`Wheel::refresh`], frees it and hands `waker` back as `Err`.
    /// Either way the caller drops the returned waker outside the lock.
    pub(super) fn swap_waker(&mut self, i: u32, waker: Waker) -> Result<Waker, Waker> {
        match self.entries.get_mut(i as usize) {
            Some(Entry::Armed { waker: w, .. }) => Ok(std::mem::replace(w, waker)),
            _ => {
                self.free(i);
                Err(waker)
            }
        }
    }

    /// Frees entry `i` for good (the owner is done with it): cancels it if still armed and
    /// returns its waker, for the caller to drop outside the lock.
    pub(super) fn release(&mut self, i: u32) -> Option<Waker> {
        let waker = self.unlink(i);
        self.free(i);
        waker
    }

    /// Moves the wheel to tick `now`: every armed entry with `deadline <= now` becomes
    /// [`Entry::Fired`] and its waker is pushed onto `woken`.
    pub(super) fn advance(&mut self, now: u64, woken: &mut Vec<Waker>) {
        if now <= self.done {
            return;
        }
        if self.armed == 0 {
            self.done = now;
            return;
        }
        // A clock that fell a whole turn (or more) behind visits every slot once.
        let turns = (now - self.done).min(SLOTS as u64);
        for tick in self.done + 1..=self.done + turns {
            let mut i = self.heads[(tick % SLOTS as u64) as usize];
            while let Some(Entry::Armed { deadline, next, .. }) = self.entries.get(i as usize) {
                let (due, after) = (*deadline <= now, *next);
                if due && let Some(w) = self.unlink(i) {
                    woken.push(w);
                }
                i = after;
            }
        }
        self.done = now;
    }

    /// Takes entry `i` off the wheel (when armed) and returns its waker; leaves it
    /// [`Entry::Fired`].
    fn unlink(&mut self, i: u32) -> Option<Waker> {
        let entry = self.entries.get_mut(i as usize)?;
        let Entry::Armed {
            slot, prev, next, ..
        } = *entry
        else {
            return None;
        };
        let Entry::Armed { waker, .. } = std::mem::replace(entry, Entry::Fired) else {
            return None;
        };
        match self.entries.get_mut(prev as usize) {
            Some(Entry::Armed { next: n, .. }) => *n = next,
            _ => self.heads[usize::from(slot)] = next,
        }
        if let Some(Entry::Armed { prev: p, .. }) = self.entries.get_mut(next as usize) {
            *p = prev;
        }
        self.armed -= 1;
        Some(waker)
    }

    fn free(&mut self, i: u32) {
        if let Some(e) = self.entries.get_mut(i as usize) {
            if matches!(e, Entry::Free { .. }) {
                return;
            }
            *e = Entry::Free { next: self.free };
            self.free = i;
        }
    }

    /// Slab size: the shard's peak of live timers (test hook).
    #[cfg(test)]
    pub(super) fn capacity_used(&self) -> usize {
        self.entries.len()
    }

    /// Whether entry `i` is free (test hook).
    #[cfg(test)]
    pub(super) fn is_free(&self, i: u32) -> bool {
        matches!(self.entries.get(i as usize), Some(Entry::Free { .. }))
    }
}
