//! E-commerce live pricing: a stream of orders joined with a product
//! catalogue held in a grid map, a rolling aggregate of demand per product,
//! and a price per product (base price × demand factor) kept up to date in
//! a result map, `prices`, that can be queried while the job runs.
//!
//! ```text
//! cargo run -p eddy --example live_pricing -- --events 200000
//! cargo run -p eddy --example live_pricing -- --bootstrap 127.0.0.1:9092
//! ```
//!
//! The orders come from a deterministic generator: two in five go to
//! twenty bestsellers, the rest spread over the catalogue, and one in fifty
//! names a product no longer in the catalogue, which the join drops. A
//! product's surcharge grows with the units sold, up to +50 %.
//!
//! The example queries `prices` with the grid's predicates when the job is
//! done. On an Eddy node (`eddy serve`) the grid's maps are also served
//! over HTTP: a job like this one running there makes its quotes available
//! at `GET /api/maps/prices`, `/api/maps/prices/query?predicate=...` and
//! `/api/maps/prices/aggregate?aggregation=...`.
//!
//! In-process, a generator feeds the job directly. With `--bootstrap`, a
//! producer job writes the orders to a fresh topic first, the job reads
//! them from there and also writes every price change to a second topic.
//! The final prices depend only on the orders, so both modes end with the
//! same `prices` map for the same `--events`.

pub mod support;

use eddy::grid::{Aggregation, IndexType, Predicate};
use eddy::prelude::*;
use eddy::Shared;
use serde::{Deserialize, Serialize};
use support::{ExampleRun, KafkaRun, Options, Topics};

/// Products in the catalogue: ids `0..PRODUCTS`.
pub const PRODUCTS: u32 = 1_000;
/// Units sold at which a product's surcharge reaches its cap.
pub const SURGE_UNITS: i64 = 20_000;
/// The largest surcharge, percent of the base price.
pub const SURCHARGE_PCT_MAX: i64 = 50;
/// A product whose surcharge is at least this is "surging" in the
/// summary's query.
pub const SURGING_PCT: i64 = 5;
/// Orders generated unless `--events` says otherwise.
const EVENTS_DEFAULT: u64 = 200_000;

/// A product in the `products` map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    /// Display name.
    pub name: String,
    /// The list price before any surcharge, cents.
    pub base_price_cents: i64,
}

/// An order of one product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Order number.
    pub id: u64,
    /// The product ordered.
    pub product: u32,
    /// Units ordered.
    pub quantity: i64,
}

/// An order of a product in the catalogue, with the product's base price.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sale {
    product: u32,
    quantity: i64,
    base_price_cents: i64,
}

/// The demand for one product so far: what the rolling aggregate keeps.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Demand {
    orders: i64,
    units: i64,
    /// The base price of the latest sale: the price to surcharge.
    base_price_cents: i64,
}

/// The current price of a product, as the `prices` map holds it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Quote {
    /// The product.
    pub product: u32,
    /// Orders counted so far.
    pub orders: i64,
    /// Units sold so far.
    pub units: i64,
    /// The list price, cents.
    pub base_price_cents: i64,
    /// The demand surcharge, percent of the list price.
    pub surcharge_pct: i64,
    /// What the product costs now, cents.
    pub price_cents: i64,
}

impl Quote {
    /// The price of `product` for its demand so far: the surcharge grows
    /// linearly with the units sold until `SURGE_UNITS`.
    fn new(product: u32, demand: &Demand) -> Quote {
        let surcharge_pct = SURCHARGE_PCT_MAX * demand.units.min(SURGE_UNITS) / SURGE_UNITS;
        Quote {
            product,
            orders: demand.orders,
            units: demand.units,
            base_price_cents: demand.base_price_cents,
            surcharge_pct,
            price_cents: demand.base_price_cents * (100 + surcharge_pct) / 100,
        }
    }
}

/// SplitMix64: a well-mixed hash of `n`, the generator's only randomness.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Product `id` of the catalogue.
pub fn product(id: u32) -> Product {
    Product {
        name: format!("product-{id:04}"),
        base_price_cents: 199 + (mix(u64::from(id) + (1 << 40)) % 20_000) as i64,
    }
}

/// Order `n` of the generator.
pub fn order(n: u64) -> Order {
    let r = mix(n);
    let product = if n % 50 == 49 {
        // Discontinued: past the end of the catalogue.
        PRODUCTS + (r % 100) as u32
    } else if r % 100 < 40 {
        // A bestseller: every fiftieth product.
        50 * ((r >> 8) % u64::from(PRODUCTS / 50)) as u32
    } else {
        ((r >> 8) % u64::from(PRODUCTS)) as u32
    };
    Order {
        id: n,
        product,
        quantity: 1 + ((r >> 32) % 5) as i64,
    }
}

/// The orders of a run: from the generator in-process, from the input
/// topic over Kafka.
fn orders(p: &Pipeline, events: u64, topics: Option<&Topics>) -> Shared<Order> {
    match topics {
        None => p
            .read_from(Sources::generator(order).limit(events))
            .named("orders")
            .share(),
        Some(topics) => p
            .read_from(
                KafkaSource::topic(topics.input.as_str())
                    .bootstrap(topics.bootstrap.as_str())
                    .json::<Order>()
                    .stop_at_end(),
            )
            .named("orders")
            .share(),
    }
}

/// Counts orders and units per product and keeps the latest base price.
fn demand() -> impl AggregateOperation<Sale, Result = Demand> {
    agg::custom(
        Demand::default,
        |d: &mut Demand, s: &Sale| {
            d.orders += 1;
            d.units += s.quantity;
            d.base_price_cents = s.base_price_cents;
        },
        |d: &mut Demand, later: &Demand| {
            d.orders += later.orders;
            d.units += later.units;
            if later.orders > 0 {
                d.base_price_cents = later.base_price_cents;
            }
        },
        Demand::clone,
    )
}

/// The pricing, the same in both modes: each order joined with its product
/// in the grid, the demand per product, and a new quote for the product
/// with each order.
fn quotes(orders: &Shared<Order>, products: Map<u32, Product>) -> Shared<Quote> {
    orders
        .stream()
        // Stream ⋈ grid map: the lookup reads the live map in place.
        .map_using_map(
            products,
            |o| o.product,
            |o, product| {
                product.map(|p| Sale {
                    product: o.product,
                    quantity: o.quantity,
                    base_price_cents: p.base_price_cents,
                })
            },
        )
        .grouping_key(|s| s.product)
        .rolling_aggregate(demand())
        .map(|(product, demand)| Quote::new(product, &demand))
        .share()
}

/// What a run found.
#[derive(Debug)]
pub struct Summary {
    /// Orders processed.
    pub orders: u64,
    /// The `prices` map at the end, sorted by product.
    pub prices: Vec<Quote>,
    /// Products matching `surcharge_pct >= SURGING_PCT`, sorted.
    pub surging: Vec<u32>,
    /// Mean surcharge over all priced products, percent.
    pub surcharge_pct_mean: f64,
    /// With `--bootstrap`: the topics and what the output topic holds.
    pub kafka: Option<KafkaRun>,
}

impl Summary {
    /// Prints the counts, the query results and where to query more.
    pub fn print(&self) {
        let priced: i64 = self.prices.iter().map(|q| q.orders).sum();
        println!(
            "{} orders, {priced} of products in the catalogue; {} products priced, mean surcharge {:.1} %",
            self.orders,
            self.prices.len(),
            self.surcharge_pct_mean
        );
        println!(
            "{} products surging (surcharge_pct >= {SURGING_PCT}): {:?}",
            self.surging.len(),
            self.surging
        );
        let mut top: Vec<&Quote> = self.prices.iter().collect();
        top.sort_by_key(|q| (std::cmp::Reverse(q.surcharge_pct), q.product));
        for q in top.iter().take(5) {
            println!(
                "  product {:>4}: {} units in {} orders, {:.2} -> {:.2} (+{} %)",
                q.product,
                q.units,
                q.orders,
                q.base_price_cents as f64 / 100.0,
                q.price_cents as f64 / 100.0,
                q.surcharge_pct
            );
        }
        println!(
            "on an Eddy node the map is served at GET /api/maps/prices/query?predicate=surcharge_pct%20%3E%3D%20{SURGING_PCT}"
        );
        if let Some(kafka) = &self.kafka {
            kafka.print();
        }
    }
}

/// Runs the example to the end of its input.
pub fn run(options: &Options) -> anyhow::Result<Summary> {
    let grid = Grid::new();
    let products = grid.map::<u32, Product>("products")?;
    products.put_all((0..PRODUCTS).map(|id| (id, product(id))));
    let prices = grid.map::<u32, Quote>("prices")?;
    // The summary's query filters on the surcharge: index it.
    prices.add_index("surcharge_pct", IndexType::Sorted)?;

    let run = ExampleRun::start(options, "live-pricing", order, |o| o.product.to_string())?;
    let p = Pipeline::new();
    let quotes = quotes(&orders(&p, options.events, run.topics.as_ref()), products);
    quotes.stream().write_to(Sinks::map_update(
        prices.clone(),
        |q: &Quote| q.product,
        |entry, q: Quote| {
            // Quotes of one product may reach the map through different
            // sink instances, so an older one can arrive last: keep the
            // one that counts more orders.
            if entry.value().is_none_or(|held| held.orders < q.orders) {
                entry.set_value(q);
            }
        },
    ));
    run.run_job(p, "live-pricing", &quotes, |q: &Quote| {
        q.product.to_string()
    })?;

    let surging = Predicate::parse(&format!("surcharge_pct >= {SURGING_PCT}"))?;
    let mut surging = prices.keys_where(&surging);
    surging.sort();
    let surcharge_pct_mean = prices
        .aggregate(&Aggregation::parse("avg(surcharge_pct)")?, None)
        .as_f64()
        .unwrap_or(0.0);
    let mut quotes = prices.values();
    quotes.sort();
    Ok(Summary {
        orders: options.events,
        prices: quotes,
        surging,
        surcharge_pct_mean,
        kafka: run.finish()?,
    })
}

fn main() -> anyhow::Result<()> {
    let options = Options::from_command_line("live_pricing", EVENTS_DEFAULT);
    run(&options)?.print();
    Ok(())
}
