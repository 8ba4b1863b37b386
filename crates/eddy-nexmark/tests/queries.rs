//! Each query against a straightforward reference implementation (plain
//! loops over the same events), at parallelism 1 and 2, compared regardless
//! of order.

use eddy_nexmark::queries::{self, EnrichedBid, QueryConfig};
use eddy_nexmark::{Event, GeneratorConfig, JetConfig, Query};
use eddy_pipeline::sinks::CollectSink;
use eddy_pipeline::sources::ItemsSource;
use eddy_pipeline::{Pipeline, Sinks, Sources};
use eddy_runtime::{Eddy, EddyConfig, JobConfig};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

/// Events of the faithful generator: 20 000 at 1000 per second, 20 s of
/// event time, so that every window kind closes several times.
fn faithful_events() -> Vec<Event> {
    let config = GeneratorConfig {
        seed: 42,
        base_time_ms: 1_000_000,
        rate_per_sec: 1000.0,
        out_of_order_group: 1,
    };
    (0..20_000).map(|n| config.event(n)).collect()
}

type Build<T> = fn(&Pipeline, ItemsSource<Event>, &QueryConfig, CollectSink<T>);

/// Runs a query over `events` at parallelism 1 and 2; returns both outputs.
fn run_query<T: Clone + eddy_core::State>(
    build: Build<T>,
    events: &[Event],
    config: &QueryConfig,
) -> Vec<Vec<T>> {
    let eddy = Eddy::new(EddyConfig::with_threads(2));
    [1, 2]
        .into_iter()
        .map(|parallelism| {
            let p = Pipeline::new();
            let (sink, out) = Sinks::collect();
            build(&p, Sources::items(events.to_vec()), config, sink);
            eddy.submit(p, JobConfig::default().parallelism(parallelism))
                .unwrap()
                .join()
                .unwrap();
            out.take()
        })
        .collect()
}

/// Checks each output equals `expected` as a multiset.
fn assert_same<T: Ord + Debug + Clone>(what: &str, outputs: Vec<Vec<T>>, mut expected: Vec<T>) {
    assert!(
        !expected.is_empty(),
        "{what}: the reference produced nothing; the input is too small"
    );
    expected.sort();
    for (i, mut out) in outputs.into_iter().enumerate() {
        out.sort();
        assert_eq!(
            out.len(),
            expected.len(),
            "{what}: run {i} has another number of results"
        );
        assert!(
            out == expected,
            "{what}: run {i} differs from the reference"
        );
    }
}

fn bids(events: &[Event]) -> Vec<eddy_nexmark::Bid> {
    events.iter().filter_map(|e| e.clone().into_bid()).collect()
}

fn bid_key(b: &eddy_nexmark::Bid) -> (i64, u64, u64, u64, String) {
    (b.date_time, b.auction, b.bidder, b.price, b.extra.clone())
}

#[test]
fn when_q0_then_every_bid_passes() {
    let events = faithful_events();
    let out = run_query(queries::q0, &events, &QueryConfig::faithful(0));
    let keyed = out
        .into_iter()
        .map(|o| o.iter().map(bid_key).collect())
        .collect();
    assert_same("q0", keyed, bids(&events).iter().map(bid_key).collect());
}

#[test]
fn when_q1_then_prices_are_in_euros() {
    let events = faithful_events();
    let out = run_query(queries::q1, &events, &QueryConfig::faithful(0));
    let expected = bids(&events)
        .into_iter()
        .map(|mut b| {
            b.price = b.price * 908 / 1000;
            bid_key(&b)
        })
        .collect();
    assert_same(
        "q1",
        out.into_iter()
            .map(|o| o.iter().map(bid_key).collect())
            .collect(),
        expected,
    );
}

#[test]
fn when_q2_then_bids_on_every_123rd_auction() {
    let events = faithful_events();
    let expected = bids(&events)
        .into_iter()
        .filter(|b| b.auction % 123 == 0)
        .map(|b| queries::AuctionPrice {
            auction: b.auction,
            price: b.price,
        })
        .collect();
    assert_same(
        "q2",
        run_query(queries::q2, &events, &QueryConfig::faithful(0)),
        expected,
    );
}

#[test]
fn when_q3_then_local_sellers_join_their_category_10_auctions() {
    let events = faithful_events();
    let mut sellers = HashMap::new();
    for e in &events {
        if let Event::Person(p) = e {
            if ["OR", "ID", "CA"].contains(&p.state.as_str()) {
                sellers.insert(p.id, (p.name.clone(), p.city.clone(), p.state.clone()));
            }
        }
    }
    let mut expected = Vec::new();
    for e in &events {
        if let Event::Auction(a) = e {
            if let (10, Some((name, city, state))) = (a.category, sellers.get(&a.seller)) {
                expected.push(queries::LocalItem {
                    name: name.clone(),
                    city: city.clone(),
                    state: state.clone(),
                    auction: a.id,
                });
            }
        }
    }
    assert_same(
        "q3",
        run_query(queries::q3, &events, &QueryConfig::faithful(0)),
        expected,
    );
}

#[test]
fn when_q4_then_final_averages_match_the_winning_prices() {
    let events = faithful_events();
    let mut bids_by_auction: HashMap<u64, Vec<eddy_nexmark::Bid>> = HashMap::new();
    for b in bids(&events) {
        bids_by_auction.entry(b.auction).or_default().push(b);
    }
    let mut best: HashMap<u64, u64> = HashMap::new();
    for e in &events {
        if let Event::Auction(a) = e {
            for b in bids_by_auction.get(&a.id).into_iter().flatten() {
                if (a.date_time..=a.expires).contains(&b.date_time) {
                    let p = best.entry(a.id).or_insert(0);
                    *p = (*p).max(b.price);
                }
            }
        }
    }
    let mut per_category: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for e in &events {
        if let Event::Auction(a) = e {
            if let Some(price) = best.get(&a.id) {
                let c = per_category.entry(a.category).or_insert((0, 0));
                c.0 += 1;
                c.1 += price;
            }
        }
    }
    let expected: Vec<(u64, u64, u64)> = per_category
        .iter()
        .map(|(cat, (n, sum))| (*cat, *n, (*sum as f64 / *n as f64).to_bits()))
        .collect();
    let outputs = run_query(queries::q4, &events, &QueryConfig::faithful(0))
        .into_iter()
        .map(|out| {
            let mut last: BTreeMap<u64, (u64, f64)> = BTreeMap::new();
            for a in out {
                let entry = last.entry(a.category).or_insert((0, f64::MIN));
                if (a.auctions, a.average_price) > *entry {
                    *entry = (a.auctions, a.average_price);
                }
            }
            last.into_iter()
                .map(|(cat, (n, avg))| (cat, n, avg.to_bits()))
                .collect()
        })
        .collect();
    assert_same("q4", outputs, expected);
}

/// Q5 by loops: per window end, count bids per auction, keep the maxima.
fn q5_reference(events: &[Event], size_ms: i64, slide_ms: i64) -> Vec<queries::HotItem> {
    let bids = bids(events);
    let first = bids.iter().map(|b| b.date_time).min().unwrap();
    let last = bids.iter().map(|b| b.date_time).max().unwrap();
    let mut end = (first.div_euclid(slide_ms) + 1) * slide_ms;
    let mut expected = Vec::new();
    while end - size_ms <= last {
        let mut counts: HashMap<u64, i64> = HashMap::new();
        for b in bids
            .iter()
            .filter(|b| (end - size_ms..end).contains(&b.date_time))
        {
            *counts.entry(b.auction).or_insert(0) += 1;
        }
        if let Some(max) = counts.values().max().copied() {
            for (auction, n) in counts {
                if n == max {
                    expected.push(queries::HotItem {
                        window_end: end,
                        auction,
                        bids: n,
                    });
                }
            }
        }
        end += slide_ms;
    }
    expected
}

#[test]
fn when_q5_then_each_window_reports_its_most_bid_auctions() {
    let events = faithful_events();
    let expected = q5_reference(&events, 10_000, 2_000);
    assert_same(
        "q5",
        run_query(queries::q5, &events, &QueryConfig::faithful(0)),
        expected,
    );
}

#[test]
fn when_q5_on_jet_events_then_top_10_counts_per_20_ms_slide() {
    let config = JetConfig {
        query: Query::Q5,
        base_time_ms: 0,
        rate_per_sec: 100_000.0,
        keys: 100,
    };
    let events: Vec<Event> = (0..4_000).map(|n| config.event(n)).collect();
    // Which of the tied auctions make the top 10 depends on arrival order:
    // compare the counts per window, which do not.
    let top_counts = |rows: Vec<queries::HotItem>| -> Vec<(i64, i64)> {
        let mut per_window: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for r in rows {
            per_window.entry(r.window_end).or_default().push(r.bids);
        }
        per_window
            .into_iter()
            .flat_map(|(end, mut counts)| {
                counts.sort_unstable_by(|a, b| b.cmp(a));
                counts.truncate(10);
                counts.into_iter().map(move |c| (end, c))
            })
            .collect()
    };
    let mut all_counts = Vec::new();
    let size_ms = 10_000;
    let bids = bids(&events);
    let last = bids.iter().map(|b| b.date_time).max().unwrap();
    let mut end = 20;
    while end - size_ms <= last {
        let mut counts: HashMap<u64, i64> = HashMap::new();
        for b in bids
            .iter()
            .filter(|b| (end - size_ms..end).contains(&b.date_time))
        {
            *counts.entry(b.auction).or_insert(0) += 1;
        }
        all_counts.extend(counts.into_iter().map(|(auction, bids)| queries::HotItem {
            window_end: end,
            auction,
            bids,
        }));
        end += 20;
    }
    let outputs = run_query(queries::q5, &events, &QueryConfig::jet());
    assert!(
        outputs
            .iter()
            .all(|o| o.len() == top_counts(o.clone()).len()),
        "at most 10 rows per window"
    );
    assert_same(
        "q5 jet",
        outputs.into_iter().map(top_counts).collect(),
        top_counts(all_counts),
    );
}

#[test]
fn when_q7_then_each_window_reports_its_highest_bids() {
    let events = faithful_events();
    let mut windows: BTreeMap<i64, Vec<eddy_nexmark::Bid>> = BTreeMap::new();
    for b in bids(&events) {
        windows
            .entry((b.date_time.div_euclid(10_000) + 1) * 10_000)
            .or_default()
            .push(b);
    }
    let mut expected = Vec::new();
    for (end, bids) in windows {
        let max = bids.iter().map(|b| b.price).max().unwrap();
        for b in bids.into_iter().filter(|b| b.price == max) {
            let bid = queries::PricedBid {
                auction: b.auction,
                bidder: b.bidder,
                price: b.price,
                date_time: b.date_time,
            };
            expected.push(queries::HighestBid {
                window_end: end,
                bid,
            });
        }
    }
    assert_same(
        "q7",
        run_query(queries::q7, &events, &QueryConfig::faithful(0)),
        expected,
    );
}

#[test]
fn when_q8_then_new_persons_who_sold_in_the_same_window() {
    let events = faithful_events();
    let start = |ts: i64| ts.div_euclid(10_000) * 10_000;
    let mut sellers = std::collections::HashSet::new();
    for e in &events {
        if let Event::Auction(a) = e {
            sellers.insert((a.seller, start(a.date_time)));
        }
    }
    let mut expected = Vec::new();
    for e in &events {
        if let Event::Person(p) = e {
            if sellers.contains(&(p.id, start(p.date_time))) {
                expected.push(queries::NewUser {
                    id: p.id,
                    name: p.name.clone(),
                    window_start: start(p.date_time),
                });
            }
        }
    }
    assert_same(
        "q8",
        run_query(queries::q8, &events, &QueryConfig::faithful(0)),
        expected,
    );
}

#[test]
fn when_q13_then_each_bid_gets_its_side_value() {
    let events = faithful_events();
    let expected = bids(&events)
        .into_iter()
        .map(|b| {
            (
                b.auction,
                b.bidder,
                b.date_time,
                format!("value-{}", b.auction % 10_000),
            )
        })
        .collect();
    let outputs = run_query(queries::q13, &events, &QueryConfig::faithful(0))
        .into_iter()
        .map(|out| {
            out.into_iter()
                .map(|e| (e.auction, e.bidder, e.date_time, e.value.to_string()))
                .collect()
        })
        .collect();
    assert_same("q13", outputs, expected);
}

#[test]
fn when_q13_reads_a_grid_map_then_it_equals_the_hash_join_form() {
    let events = faithful_events();
    let config = QueryConfig::faithful(0);
    let key = |e: &EnrichedBid| (e.auction, e.bidder, e.date_time, e.value.to_string());
    let joined: Vec<Vec<_>> = run_query(queries::q13, &events, &config)
        .into_iter()
        .map(|out| out.iter().map(key).collect())
        .collect();
    let looked_up: Vec<Vec<_>> = run_query(queries::q13_map, &events, &config)
        .into_iter()
        .map(|out| out.iter().map(key).collect())
        .collect();
    assert!(!joined[0].is_empty());
    assert_same("q13-map", looked_up, joined[0].clone());
}

#[test]
fn when_out_of_order_input_then_q5_still_matches_the_reference() {
    let config = GeneratorConfig {
        seed: 3,
        base_time_ms: 0,
        rate_per_sec: 1000.0,
        out_of_order_group: 37,
    };
    let events: Vec<Event> = (0..20_000).map(|n| config.event(n)).collect();
    let expected = q5_reference(&events, 10_000, 2_000);
    let out = run_query(
        queries::q5,
        &events,
        &QueryConfig::faithful(config.disorder_ms()),
    );
    assert_same("q5 out of order", out, expected);
}
