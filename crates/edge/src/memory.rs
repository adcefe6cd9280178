//! A budget for the memory request bodies take while they are read, parsed and written.
//!
//! A JSON body costs many times its size once parsed: every value becomes a node of its own
//! (`[0,0,0,…]` costs some 40 times its bytes), and normalising a resource builds a second
//! document. A handful of large bodies at once could take a replica past its container's memory
//! limit, and with it every tenant served there. So each request with a body reserves memory in
//! two steps, and keeps it until it is answered: its declared length (the body limit when it
//! declares none) before a byte is read, then, once read, an estimate of the parsed documents
//! from the number of JSON values the bytes hold ([`json_nodes`] × [`NODE_COST`]) before it is
//! parsed. Requests beyond the budget wait for memory to be given back, and past `wait` are
//! refused with 503 and `Retry-After`. A body whose estimate exceeds the whole budget can never
//! be served and is refused at once; any other body fits, alone if need be.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ScimError;

/// Estimated bytes per JSON value (or object key) of a request, for the parsed document, the
/// normalised one built from it and what the store makes of it, allocator overhead included.
/// Measured on groups of small members, the worst legal shape: see docs/benchmarks.md.
pub const NODE_COST: usize = 384;

/// Budget granularity: semaphores count in `u32`, so reservations are in KiB.
const UNIT: usize = 1024;

pub struct BodyBudget {
    units: Arc<Semaphore>,
    total_units: u32,
    wait: Duration,
}

/// Memory reserved for one request's body, given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
}

impl BodyBudget {
    /// A budget of `bytes` (0: no budget).
    pub fn new(bytes: usize, wait: Duration) -> Self {
        let total_units = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX).min(Semaphore::MAX_PERMITS as u32);
        Self { units: Arc::new(Semaphore::new(total_units as usize)), total_units, wait }
    }

    /// The whole budget in bytes; `None` when there is none.
    pub fn capacity(&self) -> Option<usize> {
        (self.total_units > 0).then(|| self.total_units as usize * UNIT)
    }

    /// Add `bytes` to `reservation` (at most the whole budget in all), waiting for memory for at
    /// most the budget's wait.
    pub async fn reserve(&self, reservation: &mut Reservation, bytes: usize) -> Result<(), ScimError> {
        if self.total_units == 0 {
            return Ok(());
        }
        let held = reservation.permit.as_ref().map_or(0, |p| p.num_permits());
        let wanted = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX).max(1);
        let room = self.total_units.saturating_sub(u32::try_from(held).unwrap_or(u32::MAX));
        let units = wanted.min(room);
        if units == 0 {
            return Ok(());
        }
        match tokio::time::timeout(self.wait, self.units.clone().acquire_many_owned(units)).await {
            Ok(Ok(permit)) => {
                match &mut reservation.permit {
                    Some(held) => held.merge(permit),
                    None => reservation.permit = Some(permit),
                }
                Ok(())
            }
            Ok(Err(_closed)) => Err(ScimError::Unavailable("the server is shutting down")),
            Err(_elapsed) => Err(ScimError::Unavailable("the server is busy with other large requests; retry later")),
        }
    }

    /// Bytes reserved right now.
    pub fn reserved(&self) -> usize {
        (self.total_units as usize).saturating_sub(self.units.available_permits()) * UNIT
    }
}

impl Reservation {
    pub fn empty() -> Self {
        Self { permit: None }
    }
}

/// How many values and object keys the JSON text `bytes` holds, at most: one more than its
/// separators and openings outside strings. One pass, no allocation.
pub fn json_nodes(bytes: &[u8]) -> usize {
    let (mut nodes, mut in_string, mut escaped) = (1usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'{' | b'[' | b',' | b':' => nodes += 1,
                _ => {}
            }
        }
    }
    nodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bodies_beyond_the_budget_wait_then_are_refused() {
        let budget = BodyBudget::new(100 * 1024, Duration::from_millis(50));
        let mut first = Reservation::empty();
        budget.reserve(&mut first, 60 * 1024).await.unwrap();
        assert_eq!(budget.reserved(), 60 * 1024);
        let mut second = Reservation::empty();
        budget.reserve(&mut second, 30 * 1024).await.unwrap();
        let refused = budget.reserve(&mut second, 30 * 1024).await.unwrap_err();
        assert!(matches!(refused, ScimError::Unavailable(_)), "{refused:?}");
        drop((first, second));
        assert_eq!(budget.reserved(), 0, "given back when answered");
        // One request never holds more than the whole budget.
        let mut alone = Reservation::empty();
        budget.reserve(&mut alone, 60 * 1024).await.unwrap();
        budget.reserve(&mut alone, 600 * 1024).await.unwrap();
        assert_eq!(budget.reserved(), 100 * 1024);
    }

    #[tokio::test]
    async fn no_budget_reserves_nothing() {
        let budget = BodyBudget::new(0, Duration::ZERO);
        let mut r = Reservation::empty();
        budget.reserve(&mut r, usize::MAX).await.unwrap();
        assert_eq!(budget.capacity(), None);
    }

    #[test]
    fn json_nodes_counts_values_and_keys_not_string_content() {
        assert_eq!(json_nodes(br#"{"a":1,"b":[1,2]}"#), 7);
        assert_eq!(json_nodes(br#"{"a":"x,y:[{\"\\","b":2}"#), 5);
        assert_eq!(json_nodes(b"[0,0,0,0]"), 5);
        assert_eq!(json_nodes(b"1"), 1);
    }
}
