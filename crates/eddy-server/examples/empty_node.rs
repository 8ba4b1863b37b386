//! Measures start-to-ready time and idle memory of a server on an empty
//! node: `cargo run --release -p eddy-server --example empty_node`.

use eddy_grid::Grid;
use eddy_runtime::{Eddy, EddyConfig};
use eddy_server::{start, Node, ServerConfig};
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let began = Instant::now();
    let node = Node::new(Arc::new(Eddy::new(EddyConfig::default())), Grid::new());
    let server =
        start(node, ServerConfig::bind("127.0.0.1:0".parse().unwrap())).expect("the server starts");
    let mut tcp = std::net::TcpStream::connect(server.addr()).expect("the server accepts");
    tcp.write_all(b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("the request is sent");
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).expect("the server answers");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let ready = began.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    println!(
        "start to ready: {:.2} ms; idle RSS after 2 s: {} KiB",
        ready.as_secs_f64() * 1000.0,
        rss_kib().map_or("unknown".to_owned(), |k| k.to_string())
    );
    server.shutdown().expect("the server stops");
}
