//! Runs the grid benchmark: `cargo run --release -p eddy-grid --example grid_bench [-- --json]`.

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let report = eddy_grid::bench::run(&eddy_grid::bench::BenchConfig::default());
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("the report serialises")
        );
    } else {
        print!("{}", report.table());
    }
}
