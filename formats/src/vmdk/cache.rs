//! A bounded, thread-safe cache of decoded grain tables shared by every extent of a chain.
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Default memory budget for cached grain tables (decoded as u64 entries).
pub const DEFAULT_BUDGET: usize = 16 << 20;
const SLOTS: usize = 4096;

type Slot = Option<(u64, Arc<[u64]>)>;

/// Direct-mapped cache keyed by (extent id, GT index). Entries are `Arc`ed so readers never
/// hold a lock while using a table; the total size of cached tables stays within the budget.
pub struct GtCache {
    slots: Vec<Mutex<Slot>>,
    bytes: AtomicUsize,
    budget: usize,
    next_id: AtomicU64,
    gd_entries: AtomicU64,
}

impl GtCache {
    pub fn new(budget: usize) -> Arc<Self> {
        Arc::new(GtCache {
            slots: (0..SLOTS).map(|_| Mutex::new(None)).collect(),
            bytes: AtomicUsize::new(0),
            budget,
            next_id: AtomicU64::new(1),
            gd_entries: AtomicU64::new(0),
        })
    }

    /// A fresh id for one extent's tables.
    pub fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Accounts for `n` more grain-directory entries held in memory; `Err(total)` past the
    /// chain-wide limit.
    pub fn reserve_gd(&self, n: u64) -> Result<(), u64> {
        let total = self.gd_entries.fetch_add(n, Ordering::Relaxed) + n;
        if total > super::tables::MAX_CHAIN_GD_ENTRIES {
            return Err(total);
        }
        Ok(())
    }

    fn slot(&self, key: u64) -> &Mutex<Slot> {
        // Consecutive tables of one extent land in consecutive slots.
        let h = key.wrapping_add((key >> 32).wrapping_mul(0x9e37_79b9));
        &self.slots[(h % SLOTS as u64) as usize]
    }

    /// The table for `key`, loading it with `load` on a miss (outside any lock).
    pub fn get_or_load<E>(
        &self,
        id: u64,
        index: u64,
        load: impl FnOnce() -> Result<Vec<u64>, E>,
    ) -> Result<Arc<[u64]>, E> {
        let key = (id << 32) ^ index;
        let slot = self.slot(key);
        if let Ok(guard) = slot.lock() {
            if let Some((k, t)) = guard.as_ref() {
                if *k == key {
                    return Ok(t.clone());
                }
            }
        }
        let table: Arc<[u64]> = load()?.into();
        let size = table.len() * 8;
        if let Ok(mut guard) = slot.lock() {
            let old = guard.as_ref().map_or(0, |(_, t)| t.len() * 8);
            let now = self.bytes.load(Ordering::Relaxed);
            if now - old.min(now) + size <= self.budget {
                self.bytes.fetch_sub(old, Ordering::Relaxed);
                self.bytes.fetch_add(size, Ordering::Relaxed);
                *guard = Some((key, table.clone()));
            }
        }
        Ok(table)
    }
}
