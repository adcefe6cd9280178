//! Vacuums of the tables whose rows churn, run by the process that churned them (PostgreSQL).
//!
//! Two tables take a new row version for nearly every write: `pending_events`, which every event
//! passes through (written by the write, moved by the sequencer), and `groups`, whose row takes a
//! version bump for each member change. Where autovacuum is off or behind (it visits a database
//! once a minute at best), their dead versions piled up: `pending_events` held 26 MB for 410 live
//! rows after 115,000 events, read in full by the sequencer's pass ten times a second, and a
//! group's row after 15,000 member PATCHes sat at the end of a chain of dead versions that every
//! read of its name walked (`GET /Users` of its members at half the rate; docs/benchmarks.md).
//! Each process therefore vacuums such a table once it has churned it enough, and once at start
//! for what an earlier process left. A vacuum already running is skipped, not waited for; a
//! role that does not own the table only gets a warning.

use std::sync::atomic::{AtomicU64, Ordering};

/// A table vacuumed by [`Churn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Churned {
    /// Events moved out of it by the sequencer.
    PendingEvents,
    /// Group rows rewritten (member changes bump the group's version).
    Groups,
}

impl Churned {
    const ALL: [Churned; 2] = [Churned::PendingEvents, Churned::Groups];

    fn index(self) -> usize {
        self as usize
    }

    /// New row versions between two vacuums: about a megabyte of dead events; for groups, few
    /// enough that a group's chain of versions stays short (a vacuum of `groups` touches only
    /// the pages written since the last one).
    pub(super) const fn threshold(self) -> u64 {
        match self {
            Churned::PendingEvents => 5_000,
            Churned::Groups => 1_000,
        }
    }

    /// Neither truncates `pending_events`: the table says `vacuum_truncate = false` (migration
    /// 0013), which a `VACUUM` follows unless told otherwise, as autovacuum does.
    pub(super) const fn vacuum(self) -> &'static str {
        match self {
            Churned::PendingEvents => "VACUUM (SKIP_LOCKED) pending_events",
            Churned::Groups => "VACUUM (SKIP_LOCKED) groups",
        }
    }
}

/// Row versions this process has left in each [`Churned`] table since it last vacuumed it.
#[derive(Debug)]
pub(super) struct Churn([AtomicU64; 2]);

impl Churn {
    /// Every table due, for what an earlier process left.
    pub(super) fn due_at_start() -> Self {
        Self(Churned::ALL.map(|table| AtomicU64::new(table.threshold())))
    }

    pub(super) fn add(&self, table: Churned, versions: u64) {
        self.0[table.index()].fetch_add(versions, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub(super) fn count(&self, table: Churned) -> u64 {
        self.0[table.index()].load(Ordering::Relaxed)
    }

    /// The tables due for a vacuum, their counts started again.
    pub(super) fn take_due(&self) -> Vec<Churned> {
        Churned::ALL
            .into_iter()
            .filter(|table| {
                let count = &self.0[table.index()];
                count.load(Ordering::Relaxed) >= table.threshold() && {
                    count.store(0, Ordering::Relaxed);
                    true
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::{Churn, Churned};

    #[test]
    fn a_table_is_due_at_start_then_once_it_churned_past_its_threshold() {
        let churn = Churn::due_at_start();
        assert_eq!(churn.take_due(), Churned::ALL);
        assert!(churn.take_due().is_empty());
        churn.add(Churned::Groups, Churned::Groups.threshold() - 1);
        churn.add(Churned::PendingEvents, Churned::PendingEvents.threshold());
        assert_eq!(churn.take_due(), [Churned::PendingEvents]);
        churn.add(Churned::Groups, 1);
        assert_eq!(churn.take_due(), [Churned::Groups]);
    }
}
