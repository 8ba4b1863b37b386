//! The faithful NEXMark generator, after Beam's `NexmarkGenerator` (as
//! nexmark-flink and RisingWave's `nexmark` crate port it).
//!
//! Rules implemented, each as in Beam unless marked *differs*:
//!
//! * Event `n` (after the out-of-order permutation, below) is a person when
//!   `n % 50 == 0`, an auction when `n % 50` is 1 to 3, a bid otherwise.
//! * Its timestamp is `base_time_ms + n / rate` (a constant rate; Beam's
//!   square and sine rate shapes are not implemented).
//! * Out of order: with group size `g > 1`, event number `n` becomes
//!   `(n / g) * g + (n * 953) % g`, a permutation inside each group of `g`;
//!   events carry the permuted number's timestamp, so a watermark lag of
//!   `g / rate` covers the disorder.
//! * Ids: person and auction ids follow the epoch `n / 50` (one person and
//!   three auctions per epoch), offset by 1000. A non-hot person reference
//!   is uniform over the 1000 most recent people plus a lead of 10 not yet
//!   created; a non-hot auction reference is uniform over the 100 most
//!   recent auctions plus a lead of 10.
//! * Hot keys: a bid's auction is hot with probability 1/2 (the most recent
//!   multiple of 100), its bidder with probability 3/4 (the most recent
//!   multiple of 100, plus one), an auction's seller with probability 3/4.
//! * Price: `round(10^(U·6) · 100)` cents; the reserve is the initial bid
//!   plus another such price; `expires` is the auction's time plus a uniform
//!   length up to twice the time 100 auctions take to arrive.
//! * Category `10 + U(5)`; names from Beam's first- and last-name lists;
//!   cities and states from its lists; a 16-digit credit card.
//! * Sizes: an `extra` string pads each event to 200 (person), 500 (auction)
//!   or 100 (bid) bytes on average, ±20%. Bids also carry `channel` and
//!   `url` as in nexmark-flink (half of them one of four hot channels).
//! * Randomness: *differs*. Beam seeds `java.util.Random` with the event id;
//!   here each event seeds a SplitMix64 with the run's seed and the event
//!   number, so the distributions match Beam's but not the values. Any event
//!   can be generated on its own, which lets generator instances split the
//!   sequence without coordination.
//! * Strings: *differs* in cost only. Beam draws every character; here a
//!   random string is a slice of a pool of random text made once per
//!   process (one allocation and one copy per string, no per-character
//!   random draws). The characters follow Beam's alphabet: lower-case
//!   letters, with a space one time in thirteen.

use crate::model::{Auction, Bid, Event, Person};
use std::fmt::Write;
use std::sync::OnceLock;

/// Events per epoch: one person, three auctions, 46 bids.
pub const PROPORTION_DENOMINATOR: u64 = 50;
/// Persons per epoch.
pub const PERSON_PROPORTION: u64 = 1;
/// Auctions per epoch.
pub const AUCTION_PROPORTION: u64 = 3;
/// The first person id.
pub const FIRST_PERSON_ID: u64 = 1000;
/// The first auction id.
pub const FIRST_AUCTION_ID: u64 = 1000;
/// The first category id.
pub const FIRST_CATEGORY_ID: u64 = 10;
/// Number of categories.
pub const NUM_CATEGORIES: u64 = 5;
/// People a non-hot reference picks from.
const NUM_ACTIVE_PEOPLE: u64 = 1000;
/// Auctions a non-hot reference picks from.
const NUM_IN_FLIGHT_AUCTIONS: u64 = 100;
/// References may point this many ids past the newest person.
const PERSON_ID_LEAD: u64 = 10;
/// References may point this many ids past the newest auction.
const AUCTION_ID_LEAD: u64 = 10;
/// Hot auctions, bidders and sellers are the most recent multiple of this.
const HOT_ID_STEP: u64 = 100;
/// A bid's auction is hot unless a draw below this is 0 (probability 1/2).
const HOT_AUCTION_RATIO: u64 = 2;
/// A bid's bidder is hot unless a draw below this is 0 (probability 3/4).
const HOT_BIDDERS_RATIO: u64 = 4;
/// An auction's seller is hot unless a draw below this is 0 (3/4).
const HOT_SELLERS_RATIO: u64 = 4;
/// A bid's channel is hot unless a draw below this is 0 (1/2).
const HOT_CHANNELS_RATIO: u64 = 2;
/// Number of non-hot channels.
const CHANNELS_NUMBER: u64 = 10_000;
/// Average sizes in bytes that `extra` pads to.
const AVG_PERSON_BYTES: usize = 200;
const AVG_AUCTION_BYTES: usize = 500;
const AVG_BID_BYTES: usize = 100;
/// The multiplier of Beam's out-of-order permutation (a prime, so the
/// permutation is one for any group size not a multiple of it).
const OUT_OF_ORDER_MULTIPLIER: u64 = 953;

const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
const HOT_URLS: [&str; 4] = [
    "https://www.nexmark.com/googl/item.htm?query=1",
    "https://www.nexmark.com/faceb/item.htm?query=1",
    "https://www.nexmark.com/baidu/item.htm?query=1",
    "https://www.nexmark.com/apple/item.htm?query=1",
];

/// Bytes of random text that random strings are sliced from: longer than
/// the longest string asked for (an auction's `extra`, under 500 bytes), and
/// long enough that slices at random offsets do not visibly repeat.
const TEXT_POOL_BYTES: usize = 16 * 1024;

/// The per-event random number generator: SplitMix64, seeded from the run's
/// seed and the event number. Fast, and good enough for benchmark data.
pub(crate) struct Rng(u64);

impl Rng {
    /// The generator of event `n` of a run seeded with `seed`.
    pub(crate) fn new(seed: u64, n: u64) -> Self {
        Rng(seed ^ mix64(n.wrapping_add(0x632b_e59b_d9b4_e019)))
    }

    #[inline]
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix64(self.0)
    }

    /// Uniform in `0..bound` (`bound > 0`); the modulo bias is below 2^-40
    /// for the bounds used here.
    #[inline]
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        debug_assert!(bound > 0);
        self.next_u64() % bound
    }

    /// Uniform in `[0, 1)`.
    #[inline]
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// SplitMix64's finaliser.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn text_pool() -> &'static str {
    static POOL: OnceLock<String> = OnceLock::new();
    POOL.get_or_init(|| {
        let mut rng = Rng::new(0x7e47_9001, 0);
        (0..TEXT_POOL_BYTES)
            .map(|_| {
                // Beam's alphabet: a space one time in 13, else a letter.
                if rng.below(13) == 0 {
                    ' '
                } else {
                    (b'a' + rng.below(26) as u8) as char
                }
            })
            .collect()
    })
}

/// Random text of exactly `len` bytes (at most the pool's size).
fn exact_string(rng: &mut Rng, len: usize) -> String {
    let pool = text_pool();
    let len = len.min(pool.len());
    let start = rng.below((pool.len() - len + 1) as u64) as usize;
    pool[start..start + len].to_string()
}

/// Random text of 1 to `max_len` bytes.
fn string_up_to(rng: &mut Rng, max_len: usize) -> String {
    let len = 1 + rng.below(max_len as u64) as usize;
    exact_string(rng, len)
}

/// Padding that brings an event of `current` bytes to `average` ± 20%.
fn extra(rng: &mut Rng, current: usize, average: usize) -> String {
    if current > average {
        return String::new();
    }
    let desired = average - current;
    let delta = (desired as f64 * 0.2).round() as usize;
    let len = desired - delta + rng.below(2 * delta as u64 + 1) as usize;
    exact_string(rng, len)
}

/// `round(10^(U·6) · 100)`: prices in cents from $1 to $1M, log-uniform.
#[inline]
fn price(rng: &mut Rng) -> u64 {
    (10f64.powf(rng.unit() * 6.0) * 100.0).round() as u64
}

/// The settings of a faithful generator run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeneratorConfig {
    /// Seed of all random choices.
    pub seed: u64,
    /// Timestamp of event 0, ms since the epoch.
    pub base_time_ms: i64,
    /// Events per second of event time (also the open-loop emission rate
    /// when the harness runs at a fixed rate).
    pub rate_per_sec: f64,
    /// Out-of-order group size; 1 for in order.
    pub out_of_order_group: u64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 0,
            // Beam's default base time: 2015-07-15 00:00:00 UTC.
            base_time_ms: 1_436_918_400_000,
            rate_per_sec: 1_000_000.0,
            out_of_order_group: 1,
        }
    }
}

// Beam's `lastBase0PersonId` is `epoch * persons + min(offset, persons - 1)`;
// with one person per epoch that is the epoch itself.
const _: () = assert!(PERSON_PROPORTION == 1);

/// Base-0 id of the newest person at event `n`.
#[inline]
fn last_person(n: u64) -> u64 {
    n / PROPORTION_DENOMINATOR
}

/// Base-0 id of the newest auction at event `n` (0 before the first one).
#[inline]
fn last_auction(n: u64) -> u64 {
    let epoch = n / PROPORTION_DENOMINATOR;
    let offset = n % PROPORTION_DENOMINATOR;
    let (epoch, offset) = if offset < PERSON_PROPORTION {
        // A person: the newest auctions are the previous epoch's.
        match epoch.checked_sub(1) {
            Some(previous) => (previous, AUCTION_PROPORTION - 1),
            None => return 0,
        }
    } else if offset >= PERSON_PROPORTION + AUCTION_PROPORTION {
        (epoch, AUCTION_PROPORTION - 1)
    } else {
        (epoch, offset - PERSON_PROPORTION)
    };
    epoch * AUCTION_PROPORTION + offset
}

/// A base-0 person id among the active people (and a few not yet created).
#[inline]
fn some_person(n: u64, rng: &mut Rng) -> u64 {
    let people = last_person(n) + 1;
    let active = people.min(NUM_ACTIVE_PEOPLE);
    people - active + rng.below(active + PERSON_ID_LEAD)
}

/// A base-0 auction id among those in flight (and a few not yet created).
#[inline]
fn some_auction(n: u64, rng: &mut Rng) -> u64 {
    let max = last_auction(n);
    let min = max.saturating_sub(NUM_IN_FLIGHT_AUCTIONS);
    min + rng.below(max - min + 1 + AUCTION_ID_LEAD)
}

impl GeneratorConfig {
    /// The event number that the `n`-th emitted event carries (the
    /// out-of-order permutation; `n` itself when in order).
    #[inline]
    pub fn adjusted_event_number(&self, n: u64) -> u64 {
        let g = self.out_of_order_group.max(1);
        if g == 1 {
            return n;
        }
        (n / g) * g + n.wrapping_mul(OUT_OF_ORDER_MULTIPLIER) % g
    }

    /// The timestamp of event number `n`.
    #[inline]
    pub fn timestamp_of(&self, n: u64) -> i64 {
        self.base_time_ms + (n as f64 * 1000.0 / self.rate_per_sec) as i64
    }

    /// The largest amount, in ms, by which an event's timestamp can be below
    /// one emitted before it: the watermark lag the stream needs.
    pub fn disorder_ms(&self) -> i64 {
        let g = self.out_of_order_group.max(1);
        if g == 1 {
            0
        } else {
            (g as f64 * 1000.0 / self.rate_per_sec).ceil() as i64
        }
    }

    /// The `n`-th event of the stream.
    pub fn event(&self, n: u64) -> Event {
        let id = self.adjusted_event_number(n);
        let ts = self.timestamp_of(id);
        let mut rng = Rng::new(self.seed, id);
        let rem = id % PROPORTION_DENOMINATOR;
        if rem < PERSON_PROPORTION {
            Event::Person(Box::new(person(id, ts, &mut rng)))
        } else if rem < PERSON_PROPORTION + AUCTION_PROPORTION {
            Event::Auction(Box::new(self.auction(id, ts, &mut rng)))
        } else {
            Event::Bid(bid(id, ts, &mut rng))
        }
    }

    fn auction(&self, id: u64, ts: i64, rng: &mut Rng) -> Auction {
        let seller = if rng.below(HOT_SELLERS_RATIO) > 0 {
            (last_person(id) / HOT_ID_STEP) * HOT_ID_STEP
        } else {
            some_person(id, rng)
        };
        let category = FIRST_CATEGORY_ID + rng.below(NUM_CATEGORIES);
        let initial_bid = price(rng);
        // Up to twice the time until 100 more auctions have arrived.
        let events_for_auctions =
            NUM_IN_FLIGHT_AUCTIONS * PROPORTION_DENOMINATOR / AUCTION_PROPORTION;
        let horizon_ms = self.timestamp_of(id + events_for_auctions) - ts;
        let expires = ts + 1 + rng.below((horizon_ms * 2).max(1) as u64) as i64;
        let item_name = string_up_to(rng, 20);
        let description = string_up_to(rng, 100);
        let reserve = initial_bid + price(rng);
        let current = 8 + item_name.len() + description.len() + 8 * 5;
        Auction {
            id: FIRST_AUCTION_ID + last_auction(id),
            item_name,
            description,
            initial_bid,
            reserve,
            date_time: ts,
            expires,
            seller: FIRST_PERSON_ID + seller,
            category,
            extra: extra(rng, current, AVG_AUCTION_BYTES),
        }
    }
}

fn person(id: u64, ts: i64, rng: &mut Rng) -> Person {
    let first = FIRST_NAMES[rng.below(FIRST_NAMES.len() as u64) as usize];
    let last = LAST_NAMES[rng.below(LAST_NAMES.len() as u64) as usize];
    let mut name = String::with_capacity(first.len() + 1 + last.len());
    name.push_str(first);
    name.push(' ');
    name.push_str(last);
    let mut email_address = string_up_to(rng, 7);
    email_address.push('@');
    email_address.push_str(&string_up_to(rng, 5));
    email_address.push_str(".com");
    let mut credit_card = String::with_capacity(19);
    for group in 0..4 {
        if group > 0 {
            credit_card.push(' ');
        }
        let _ = write!(credit_card, "{:04}", rng.below(10_000));
    }
    let city = US_CITIES[rng.below(US_CITIES.len() as u64) as usize].to_string();
    let state = US_STATES[rng.below(US_STATES.len() as u64) as usize].to_string();
    let current =
        8 + name.len() + email_address.len() + credit_card.len() + city.len() + state.len();
    Person {
        id: FIRST_PERSON_ID + last_person(id),
        name,
        email_address,
        credit_card,
        city,
        state,
        date_time: ts,
        extra: extra(rng, current, AVG_PERSON_BYTES),
    }
}

fn bid(id: u64, ts: i64, rng: &mut Rng) -> Bid {
    let auction = if rng.below(HOT_AUCTION_RATIO) > 0 {
        (last_auction(id) / HOT_ID_STEP) * HOT_ID_STEP
    } else {
        some_auction(id, rng)
    };
    let bidder = if rng.below(HOT_BIDDERS_RATIO) > 0 {
        (last_person(id) / HOT_ID_STEP) * HOT_ID_STEP + 1
    } else {
        some_person(id, rng)
    };
    let price = price(rng);
    let (channel, url) = if rng.below(HOT_CHANNELS_RATIO) > 0 {
        let i = rng.below(HOT_CHANNELS.len() as u64) as usize;
        (HOT_CHANNELS[i].to_string(), HOT_URLS[i].to_string())
    } else {
        let n = rng.below(CHANNELS_NUMBER);
        let mut url = String::with_capacity(80);
        url.push_str("https://www.nexmark.com/");
        for _ in 0..3 {
            url.push_str(&exact_string(rng, 5));
            url.push('/');
        }
        let _ = write!(url, "item.htm?query=1&channel_id={n}");
        (format!("channel-{n}"), url)
    };
    Bid {
        auction: FIRST_AUCTION_ID + auction,
        bidder: FIRST_PERSON_ID + bidder,
        price,
        channel,
        url,
        date_time: ts,
        extra: extra(rng, 8 * 4, AVG_BID_BYTES),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn when_events_generated_twice_then_identical() {
        let config = GeneratorConfig {
            seed: 7,
            ..GeneratorConfig::default()
        };
        for n in [0, 1, 4, 49, 50, 12_345] {
            assert_eq!(config.event(n), config.event(n));
        }
    }

    #[test]
    fn when_many_events_then_proportions_are_1_3_46() {
        let config = GeneratorConfig::default();
        let (mut people, mut auctions, mut bids) = (0, 0, 0);
        for n in 0..5000 {
            match config.event(n) {
                Event::Person(_) => people += 1,
                Event::Auction(_) => auctions += 1,
                Event::Bid(_) => bids += 1,
            }
        }
        assert_eq!((people, auctions, bids), (100, 300, 4600));
    }

    #[test]
    fn when_ids_generated_then_they_grow_with_the_epoch() {
        let config = GeneratorConfig::default();
        let Event::Person(p) = config.event(100) else {
            panic!("event 100 is a person")
        };
        assert_eq!(p.id, FIRST_PERSON_ID + 2);
        let Event::Auction(a) = config.event(103) else {
            panic!("event 103 is an auction")
        };
        assert_eq!(a.id, FIRST_AUCTION_ID + 2 * 3 + 2);
        assert!(a.seller <= p.id + PERSON_ID_LEAD);
        assert!(a.reserve > a.initial_bid && a.expires > a.date_time);
        assert!((10..15).contains(&a.category));
    }

    #[test]
    fn when_many_events_then_average_sizes_are_near_the_targets() {
        let config = GeneratorConfig::default();
        let mut sums = [(0usize, 0usize); 3];
        for n in 0..50_000 {
            let e = config.event(n);
            let slot = match e {
                Event::Person(_) => 0,
                Event::Auction(_) => 1,
                Event::Bid(_) => 2,
            };
            // Bids' channel and url come on top of the 100 bytes.
            let size = match &e {
                Event::Bid(b) => e.byte_size() - b.channel.len() - b.url.len(),
                _ => e.byte_size(),
            };
            sums[slot].0 += size;
            sums[slot].1 += 1;
        }
        let averages: Vec<f64> = sums.iter().map(|(s, c)| *s as f64 / *c as f64).collect();
        for (average, target) in averages.iter().zip([200.0, 500.0, 100.0]) {
            assert!((average - target).abs() < target * 0.05, "{averages:?}");
        }
    }

    #[test]
    fn when_bids_generated_then_half_go_to_hot_auctions() {
        let config = GeneratorConfig::default();
        let bids: Vec<Bid> = (0..20_000)
            .filter_map(|n| config.event(n).into_bid())
            .collect();
        let hot = bids
            .iter()
            .filter(|b| (b.auction - FIRST_AUCTION_ID) % HOT_ID_STEP == 0)
            .count();
        let share = hot as f64 / bids.len() as f64;
        // 1/2 hot, plus the uniform picks that land on a multiple of 100.
        assert!((0.48..0.58).contains(&share), "{share}");
    }

    #[test]
    fn when_out_of_order_then_each_group_is_a_permutation() {
        let config = GeneratorConfig {
            out_of_order_group: 16,
            ..GeneratorConfig::default()
        };
        let mut seen: Vec<u64> = (0..64).map(|n| config.adjusted_event_number(n)).collect();
        assert_ne!(seen, (0..64).collect::<Vec<_>>());
        seen.sort_unstable();
        assert_eq!(seen, (0..64).collect::<Vec<_>>());
        let lag = config.disorder_ms();
        let ts: Vec<i64> = (0..64).map(|n| config.event(n).date_time()).collect();
        let mut top = i64::MIN;
        for t in ts {
            assert!(t >= top.saturating_sub(lag));
            top = top.max(t);
        }
    }
}
