//! The threads' part of a pool's shared state, under the pool's mutex: each thread's slot (its
//! running job and counts, on cache lines of its own, reused by a later thread), the join
//! handles, the threads that have exited unjoined, and those still exiting (left the counts,
//! running their stop hook). Its methods are the only way to it.

use std::collections::HashMap;
use std::sync::Arc;

use crossbeam_utils::CachePadded;

use super::metrics::Slot;
use crate::sync::thread::JoinHandle;

pub(super) struct Threads {
    /// The threads' slots, by number; a slot is held by one thread at a time.
    slots: Vec<Arc<CachePadded<Slot>>>,
    /// Slots no thread holds.
    free_slots: Vec<usize>,
    /// Join handles of the threads, by number. A thread that exits leaves its own, and its
    /// number in `exited`, for `shutdown` or the next thread to exit to join.
    workers: HashMap<u64, JoinHandle<()>>,
    exited: Vec<u64>,
    /// Threads that have decided to leave (and no longer count in `metrics.threads`) but are
    /// still running their stop hook.
    exiting: usize,
}

impl Threads {
    pub(super) fn new() -> Self {
        Threads {
            slots: Vec::new(),
            free_slots: Vec::new(),
            workers: HashMap::new(),
            exited: Vec::new(),
            exiting: 0,
        }
    }

    /// Every slot, held or free, by number: what `metrics`, the supervisor, the watcher and
    /// a shutdown's report read.
    pub(super) fn slots(&self) -> &[Arc<CachePadded<Slot>>] {
        &self.slots
    }

    /// Threads that have left the counts and still run their stop hook.
    pub(super) fn exiting(&self) -> usize {
        self.exiting
    }

    /// A slot for a thread about to start: a free one, else a new one.
    pub(super) fn take_slot(&mut self) -> (usize, Arc<CachePadded<Slot>>) {
        let index = self.free_slots.pop().unwrap_or_else(|| {
            self.slots.push(Arc::new(CachePadded::new(Slot::new())));
            self.slots.len() - 1
        });
        (index, Arc::clone(&self.slots[index]))
    }

    /// The thread for slot `index` could not be spawned: the slot is free again.
    pub(super) fn spawn_failed(&mut self, index: usize) {
        self.free_slots.push(index);
    }

    /// The thread numbered `number` has been spawned.
    pub(super) fn spawned(&mut self, number: u64, handle: JoinHandle<()>) {
        self.workers.insert(number, handle);
    }

    /// A thread has left the counts, to run its stop hook (`leave`).
    pub(super) fn leaving(&mut self) {
        self.exiting += 1;
    }

    /// A thread that was leaving stays (`rejoin`), or has run its stop hook and is exiting
    /// (`exited`).
    pub(super) fn not_exiting(&mut self) {
        self.exiting -= 1;
    }

    /// The thread of slot `index` has run its stop hook: it no longer counts as exiting, and
    /// its slot is free.
    pub(super) fn exited_slot(&mut self, index: usize) {
        self.not_exiting();
        self.free_slots.push(index);
    }

    /// The thread numbered `number` is past its loop: its handle waits to be joined.
    pub(super) fn exited(&mut self, number: u64) {
        self.exited.push(number);
    }

    /// The handles of the threads that have exited, taken out to be joined after the lock.
    pub(super) fn take_exited(&mut self) -> Vec<JoinHandle<()>> {
        let exited = std::mem::take(&mut self.exited);
        exited
            .iter()
            .filter_map(|number| self.workers.remove(number))
            .collect()
    }
}
