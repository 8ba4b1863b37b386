//! The events of Hazelcast's nexmark-jet harness (`big-data-benchmark`),
//! so that Jet's published figures can be compared.
//!
//! nexmark-jet does not run the NEXMark generator: each query reads its own
//! simple events, made from the sequence number `seq` alone, with event
//! time equal to the scheduled emission time. The rules, per query:
//!
//! * Q0, Q1, Q2: bids with `auction = seq % keys`, `price = random(seq, 100)`.
//! * Q5, Q13: bids with `auction = seq % keys`, price 0: a uniform spread
//!   over `keys` (10 000) auctions.
//! * Q7: bids with `auction = seq` and `price = random(seq, max(1, seq / 100))`.
//! * Q8: persons with `id = random(seq, keys)` on even `seq` and auctions
//!   with `seller = random(137 · seq, keys)` on odd `seq` (*differs*: Jet
//!   reads two sources of equal rate; one source alternating them gives the
//!   same mix and the same event count per second). Names are left empty
//!   here and in the Java harness alike.
//!
//! `random(x, n)` is Hazelcast's `HashUtil.fastLongMix(x)`, made
//! non-negative, modulo `n`; `bench/jet` uses the same function. Strings are
//! empty, so generating a bid allocates nothing.

use crate::model::{Auction, Bid, Event, Person};
use crate::Query;

/// Distinct keys (auctions, people) of the Jet variant: nexmark-jet's
/// default `num-distinct-keys`.
pub const JET_KEYS: u64 = 10_000;

/// Hazelcast's `HashUtil.fastLongMix`: multiply by 2^64 / φ and fold.
#[inline]
pub fn fast_long_mix(x: u64) -> u64 {
    let h = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let h = h ^ (h >> 32);
    h ^ (h >> 16)
}

/// nexmark-jet's `getRandom(seq, range)`: a hash of `seq` below `range`.
#[inline]
pub fn jet_random(seq: u64, range: u64) -> u64 {
    (fast_long_mix(seq) & (i64::MAX as u64)) % range.max(1)
}

/// The settings of a Jet-variant event stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JetConfig {
    /// The query whose events to make.
    pub query: Query,
    /// Timestamp of event 0, ms since the epoch.
    pub base_time_ms: i64,
    /// Events per second of event time.
    pub rate_per_sec: f64,
    /// Distinct keys.
    pub keys: u64,
}

impl JetConfig {
    /// Whether nexmark-jet defines events for `query`.
    pub fn supports(query: Query) -> bool {
        !matches!(query, Query::Q3 | Query::Q4)
    }

    /// The event `seq`.
    #[inline]
    pub fn event(&self, seq: u64) -> Event {
        let ts = self.base_time_ms + (seq as f64 * 1000.0 / self.rate_per_sec) as i64;
        let bid = |auction, price| {
            Event::Bid(Bid {
                auction,
                bidder: seq,
                price,
                channel: String::new(),
                url: String::new(),
                date_time: ts,
                extra: String::new(),
            })
        };
        match self.query {
            Query::Q5 | Query::Q13 | Query::Q13Map => bid(seq % self.keys, 0),
            Query::Q7 => bid(seq, jet_random(seq, (seq / 100).max(1))),
            Query::Q8 if seq % 2 == 0 => Event::Person(Box::new(Person {
                id: jet_random(seq, self.keys),
                name: String::new(),
                email_address: String::new(),
                credit_card: String::new(),
                city: String::new(),
                state: String::new(),
                date_time: ts,
                extra: String::new(),
            })),
            Query::Q8 => Event::Auction(Box::new(Auction {
                id: seq,
                item_name: String::new(),
                description: String::new(),
                initial_bid: 0,
                reserve: 0,
                date_time: ts,
                expires: ts,
                seller: jet_random(137 * seq, self.keys),
                category: 0,
                extra: String::new(),
            })),
            _ => bid(seq % self.keys, jet_random(seq, 100)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_mixing_then_values_match_hazelcasts_fast_long_mix() {
        // Computed with HashUtil.fastLongMix in Java (two's complement).
        assert_eq!(fast_long_mix(0), 0);
        let h = 1u64.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let h = h ^ (h >> 32);
        assert_eq!(fast_long_mix(1), h ^ (h >> 16));
        assert!(jet_random(12_345, 100) < 100);
    }

    #[test]
    fn when_q5_events_then_auctions_cycle_over_the_keys() {
        let config = JetConfig {
            query: Query::Q5,
            base_time_ms: 0,
            rate_per_sec: 1000.0,
            keys: JET_KEYS,
        };
        let Event::Bid(b) = config.event(10_003) else {
            panic!("Q5 events are bids")
        };
        assert_eq!((b.auction, b.date_time), (3, 10_003));
    }
}
