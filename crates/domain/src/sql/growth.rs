//! When a PostgreSQL connection's cached plans have been outgrown: once a table or index they
//! were made on has doubled since (PostgreSQL).
//!
//! On tables never analyzed (a new tenant's first sync, where autovacuum is off or has not come
//! round yet) PostgreSQL costs a plan by each relation's size on disk as it is at planning time.
//! A plan cached on nearly empty tables may read a tenant's rows by `tenant_id` alone, and growth
//! does not invalidate it the way an `ANALYZE` does. Replacing every connection once it was 2 s
//! old bounded that, at the price of a new backend and a new plan for every statement on each
//! connection every 2 s, busy or idle. Instead, one connection reads the relations' sizes every
//! [`super::PoolSettings::growth_check`] as it is handed out, and a relation at twice its size
//! of the last doubling makes every connection opened before stale. Between doublings a plan was
//! made on at least half of every relation, so it stays the plan a new one would be.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Pages of every table and index of the store's schema, as PostgreSQL plans with them.
pub(super) const RELATION_PAGES: &str = "SELECT CAST(c.relname AS TEXT), \
     CAST(pg_relation_size(c.oid) / current_setting('block_size')::int AS BIGINT) \
     FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace \
     WHERE s.nspname = current_schema() AND c.relkind IN ('r', 'i')";

/// A table never vacuumed that has fewer pages is planned as if it had this many
/// (`estimate_rel_size`): growth below it changes no plan.
const FLOOR_PAGES: i64 = 10;

/// The relations' sizes at their last doubling, and when that was.
#[derive(Debug)]
pub(super) struct TableGrowth {
    started: Instant,
    every: Duration,
    /// Milliseconds after `started` of the last check claimed.
    checked_at: AtomicU64,
    /// Milliseconds after `started` of the last doubling, plus one (0: none yet).
    grown_at: AtomicU64,
    /// Pages of each relation when the last doubling was seen, lowered when one shrinks; a
    /// relation not in it counts as [`FLOOR_PAGES`].
    pages: Mutex<HashMap<String, i64>>,
}

impl TableGrowth {
    /// Sizes to be read every `every`.
    pub(super) fn new(every: Duration) -> Self {
        Self {
            started: Instant::now(),
            every,
            checked_at: AtomicU64::new(0),
            grown_at: AtomicU64::new(0),
            pages: Mutex::new(HashMap::new()),
        }
    }

    /// Milliseconds since `started`.
    fn now(&self) -> u64 {
        millis(self.started.elapsed())
    }

    /// Whether the sizes are due to be read, claiming that for the caller (one caller per
    /// period, whichever connection is handed out first).
    pub(super) fn claim_check(&self) -> bool {
        let now = self.now();
        let last = self.checked_at.load(Ordering::Relaxed);
        now >= last.saturating_add(millis(self.every))
            && self.checked_at.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }

    /// Take in the sizes just read ([`RELATION_PAGES`]); whether a relation doubled, which
    /// makes every connection opened until now stale.
    pub(super) fn record(&self, sizes: Vec<(String, i64)>) -> bool {
        let planned = |pages: i64| pages.max(FLOOR_PAGES);
        let mut known = self.pages.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let doubled = sizes
            .iter()
            .any(|(relation, pages)| planned(*pages) >= 2 * planned(known.get(relation).copied().unwrap_or(0)));
        if doubled {
            *known = sizes.into_iter().collect();
            self.grown_at.store(self.now() + 1, Ordering::Relaxed);
        } else {
            // A relation rewritten smaller has its plans made again by PostgreSQL itself; its
            // growth from there counts.
            for (relation, pages) in sizes {
                known.entry(relation).and_modify(|known| *known = (*known).min(pages));
            }
        }
        doubled
    }

    /// Whether a connection `age` old was opened before the last doubling.
    pub(super) fn outgrew(&self, age: Duration) -> bool {
        let grown_at = self.grown_at.load(Ordering::Relaxed);
        grown_at > 0 && self.now().saturating_sub(millis(age)) < grown_at - 1
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(of: &[(&str, i64)]) -> Vec<(String, i64)> {
        of.iter().map(|(relation, pages)| ((*relation).to_owned(), *pages)).collect()
    }

    #[test]
    fn a_relation_outgrows_plans_when_it_doubles_past_the_planners_floor() {
        let growth = TableGrowth::new(Duration::ZERO);
        assert!(!growth.record(sizes(&[("users", 0), ("users_pkey", 1)])), "empty tables plan as 10 pages");
        assert!(!growth.record(sizes(&[("users", 19)])));
        assert!(growth.record(sizes(&[("users", 20), ("users_pkey", 3)])));
        assert!(!growth.record(sizes(&[("users", 39), ("users_pkey", 19)])), "twice the size at the last doubling");
        assert!(growth.record(sizes(&[("users", 40), ("users_pkey", 19)])));
        // Rewritten smaller, a relation's growth counts from there.
        assert!(!growth.record(sizes(&[("users", 10)])));
        assert!(growth.record(sizes(&[("users", 20)])));
    }

    #[test]
    fn connections_opened_before_a_doubling_are_stale_and_later_ones_are_not() {
        let growth = TableGrowth::new(Duration::ZERO);
        assert!(!growth.outgrew(Duration::from_secs(3600)), "no doubling yet");
        std::thread::sleep(Duration::from_millis(20));
        growth.record(sizes(&[("users", 100)]));
        assert!(growth.outgrew(Duration::from_millis(10)));
        std::thread::sleep(Duration::from_millis(20));
        assert!(!growth.outgrew(Duration::from_millis(5)), "opened after the doubling");
    }

    #[test]
    fn one_caller_per_period_reads_the_sizes() {
        let growth = TableGrowth::new(Duration::from_millis(50));
        assert!(!growth.claim_check(), "not before the first period has passed");
        std::thread::sleep(Duration::from_millis(60));
        assert!(growth.claim_check());
        assert!(!growth.claim_check());
    }
}
