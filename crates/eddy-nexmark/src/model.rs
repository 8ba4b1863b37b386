//! The NEXMark event types: people, auctions and bids.
//!
//! Field names follow nexmark-flink's schema (`date_time` is the event time
//! in milliseconds since the epoch). Persons and auctions are boxed inside
//! [`Event`] so that the enum stays the size of a bid: bids are 92% of the
//! faithful stream and all of most Jet-variant streams, and every queue hop
//! moves the whole enum.

use serde::{Deserialize, Serialize};

/// A person registering with the auction site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Person id (from 1000 in the faithful generator).
    pub id: u64,
    /// "First Last".
    pub name: String,
    /// A random address.
    pub email_address: String,
    /// Sixteen digits in groups of four.
    pub credit_card: String,
    /// One of ten US cities.
    pub city: String,
    /// One of AZ, CA, ID, OR, WA, WY.
    pub state: String,
    /// Event time, ms since the epoch.
    pub date_time: i64,
    /// Padding up to the average person size.
    pub extra: String,
}

/// An item put up for auction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auction {
    /// Auction id (from 1000 in the faithful generator).
    pub id: u64,
    /// Item name.
    pub item_name: String,
    /// Item description.
    pub description: String,
    /// Opening price in cents.
    pub initial_bid: u64,
    /// Reserve price in cents, above the initial bid.
    pub reserve: u64,
    /// Event time, ms since the epoch.
    pub date_time: i64,
    /// When the auction closes, ms since the epoch.
    pub expires: i64,
    /// The person selling.
    pub seller: u64,
    /// Category id, 10 to 14.
    pub category: u64,
    /// Padding up to the average auction size.
    pub extra: String,
}

/// A bid on an auction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bid {
    /// The auction bid on.
    pub auction: u64,
    /// The person bidding.
    pub bidder: u64,
    /// Price in cents.
    pub price: u64,
    /// Where the bid came from (`Google`, `channel-42`, …).
    pub channel: String,
    /// The page the bid was placed on.
    pub url: String,
    /// Event time, ms since the epoch.
    pub date_time: i64,
    /// Padding up to the average bid size.
    pub extra: String,
}

/// One NEXMark event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A new person.
    Person(Box<Person>),
    /// A new auction.
    Auction(Box<Auction>),
    /// A bid.
    Bid(Bid),
}

impl Event {
    /// The event time, ms since the epoch.
    #[inline]
    pub fn date_time(&self) -> i64 {
        match self {
            Event::Person(p) => p.date_time,
            Event::Auction(a) => a.date_time,
            Event::Bid(b) => b.date_time,
        }
    }

    /// The bid, if this is one.
    #[inline]
    pub fn into_bid(self) -> Option<Bid> {
        match self {
            Event::Bid(b) => Some(b),
            _ => None,
        }
    }

    /// Approximate size in bytes as nexmark counts it: eight per number
    /// plus the string lengths.
    pub fn byte_size(&self) -> usize {
        match self {
            Event::Person(p) => {
                8 + p.name.len()
                    + p.email_address.len()
                    + p.credit_card.len()
                    + p.city.len()
                    + p.state.len()
                    + 8
                    + p.extra.len()
            }
            Event::Auction(a) => {
                8 + a.item_name.len() + a.description.len() + 8 * 6 + a.extra.len()
            }
            Event::Bid(b) => 8 * 4 + b.channel.len() + b.url.len() + b.extra.len(),
        }
    }
}
