// SPDX-License-Identifier: GPL-2.0

//! Mapping (swap type, offset) to a backend slot.
//!
//! Each enabled swap area gets a contiguous range of backend slots, first
//! fit, so a far memory region is shared by all areas without overlap.
//! Ranges change only in `init`/`release`, which frontswap serialises; the
//! store and load paths just read two atomics.

use core::sync::atomic::{AtomicU64, Ordering::Acquire, Ordering::Release};
use kernel::prelude::*;

/// MAX_SWAPFILES on x86-64 with every swap entry type configured is below 32.
pub(crate) const MAX_AREAS: usize = 32;

pub(crate) struct SlotMap {
    base: [AtomicU64; MAX_AREAS],
    len: [AtomicU64; MAX_AREAS],
}

impl SlotMap {
    pub(crate) const fn new() -> Self {
        Self {
            base: [const { AtomicU64::new(0) }; MAX_AREAS],
            len: [const { AtomicU64::new(0) }; MAX_AREAS],
        }
    }

    /// Gives area `area` a range of up to `pages` slots below `nr_slots`;
    /// returns how many it got (0 if the backend is full).
    pub(crate) fn assign(&self, area: usize, pages: u64, nr_slots: u64) -> u64 {
        if area >= MAX_AREAS {
            return 0;
        }
        self.len[area].store(0, Release);
        // Candidate starts: 0 and the end of every other range.
        let mut best: Option<(u64, u64)> = None;
        let ends = (0..MAX_AREAS).filter_map(|a| self.end_of(a));
        for start in Iterator::chain(core::iter::once(0), ends) {
            let end = (0..MAX_AREAS)
                .filter_map(|a| self.range(a))
                .filter(|&(b, _)| b >= start)
                .map(|(b, _)| b)
                .min()
                .unwrap_or(nr_slots)
                .min(nr_slots);
            if self.overlaps(start) || end <= start {
                continue;
            }
            let room = (end - start).min(pages);
            if best.map_or(true, |(_, r)| room > r) {
                best = Some((start, room));
            }
            if room == pages {
                break;
            }
        }
        let (start, room) = best.unwrap_or((0, 0));
        self.base[area].store(start, Release);
        self.len[area].store(room, Release);
        room
    }

    pub(crate) fn release(&self, area: usize) {
        if area < MAX_AREAS {
            self.len[area].store(0, Release);
        }
    }

    /// The backend slot of `offset` in `area`, or `ENOSPC` if it has none.
    pub(crate) fn slot(&self, area: usize, offset: u64) -> Result<u64> {
        if area >= MAX_AREAS || offset >= self.len[area].load(Acquire) {
            return Err(ENOSPC);
        }
        Ok(self.base[area].load(Acquire) + offset)
    }

    fn range(&self, area: usize) -> Option<(u64, u64)> {
        let len = self.len[area].load(Acquire);
        (len > 0).then(|| (self.base[area].load(Acquire), len))
    }

    fn end_of(&self, area: usize) -> Option<u64> {
        self.range(area).map(|(b, l)| b + l)
    }

    fn overlaps(&self, slot: u64) -> bool {
        (0..MAX_AREAS)
            .filter_map(|a| self.range(a))
            .any(|(b, l)| slot >= b && slot < b + l)
    }
}
