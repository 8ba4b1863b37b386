//! The state every handler shares.

use crate::config::ServerConfig;
use crate::node::Node;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use tokio::sync::watch;

/// What handlers get: the node, the configuration, and the shutdown signal
/// that ends change streams (which would otherwise keep a graceful
/// shutdown waiting forever).
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) node: Arc<Node>,
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// The sender of `shutdown`, held so that streams stay open for as long
    /// as the router lives when it is used without [`crate::serve`].
    pub(crate) _stop: Arc<watch::Sender<bool>>,
    /// Change streams open now, bounded by `ServerConfig::streams_max`.
    pub(crate) streams: Arc<AtomicUsize>,
}
