//! Running the server: [`serve`] on the caller's tokio runtime, or
//! [`start`] on a runtime of its own for callers that are not async (the
//! engine runs on its own threads, so the CLI is not).

use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::node::Node;
use crate::router::routes;
use crate::state::AppState;
use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{oneshot, watch};

/// How long a stopping server waits for requests in flight before it
/// closes their connections: long enough for any API call, short enough
/// that Ctrl-C feels immediate.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// The router of the API, the metrics and the dashboard, for embedding in
/// another axum server or for tests without a socket. Change streams of
/// this router end only when it is dropped; [`serve`] ends them at shutdown.
pub fn app(node: Arc<Node>, config: ServerConfig) -> Result<Router, ServerError> {
    app_with_stop(node, config).map(|(router, _)| router)
}

fn app_with_stop(
    node: Arc<Node>,
    config: ServerConfig,
) -> Result<(Router, Arc<watch::Sender<bool>>), ServerError> {
    config.validate()?;
    let (stop, shutdown) = watch::channel(false);
    let stop = Arc::new(stop);
    let state = AppState {
        _stop: Arc::clone(&stop),
        node,
        config: Arc::new(config),
        shutdown,
        streams: Arc::new(AtomicUsize::new(0)),
    };
    Ok((routes(state), stop))
}

/// Logs, at every start, that the operator let a node reachable from other
/// machines run without a token.
fn warn_if_open(config: &ServerConfig) {
    if config.is_open_to_the_network() {
        tracing::warn!(bind = %config.bind, "started with --allow-unauthenticated: this node takes SQL, job actions and map changes from anyone who reaches {} without a token; set a token unless a network boundary protects it", config.bind);
    }
}

/// Serves on `listener` until `shutdown` completes, then stops accepting,
/// ends change streams and waits up to [`SHUTDOWN_GRACE`] for requests in
/// flight. `config.bind` is ignored: the listener is already bound.
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    node: Arc<Node>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let (router, stop) = app_with_stop(node, config)?;
    let mut stopped = stop.subscribe();
    let signal = async move {
        shutdown.await;
        let _ = stop.send(true);
    };
    let server = axum::serve(listener, router).with_graceful_shutdown(signal);
    tokio::select! {
        result = server => result.map_err(ServerError::Serve),
        _ = async {
            let _ = stopped.wait_for(|s| *s).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => Ok(()),
    }
}

/// Binds `config.bind` and serves until `shutdown` completes; see [`serve_on`].
pub async fn serve(
    node: Arc<Node>,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    config.validate()?;
    warn_if_open(&config);
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.bind,
            source,
        })?;
    serve_on(listener, node, config, shutdown).await
}

/// A server running on its own thread and runtime; dropping the handle
/// stops it.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), ServerError>>>,
}

impl ServerHandle {
    /// The address the server listens on (with the real port when port 0
    /// was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for its thread.
    pub fn shutdown(mut self) -> Result<(), ServerError> {
        self.stop_and_join()
    }

    /// Blocks until the server stops by itself (it does only on an error).
    pub fn wait(mut self) -> Result<(), ServerError> {
        // Dropping the stop sender would read as a shutdown request: keep
        // it until the thread ends.
        let _keep_running = self.stop.take();
        self.join()
    }

    fn stop_and_join(&mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join()
    }

    fn join(&mut self) -> Result<(), ServerError> {
        match self.thread.take().map(JoinHandle::join) {
            None => Ok(()),
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(ServerError::Serve(std::io::Error::other(
                "the server thread panicked",
            ))),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// Starts the server on a thread with its own tokio runtime and returns
/// once it listens: requests to [`ServerHandle::addr`] succeed from then on.
///
/// ```
/// use eddy_grid::Grid;
/// use eddy_runtime::{Eddy, EddyConfig};
/// use eddy_server::{start, Node, ServerConfig};
/// use std::sync::Arc;
///
/// let node = Node::new(Arc::new(Eddy::new(EddyConfig::with_threads(1))), Grid::new());
/// let server = start(node, ServerConfig::bind("127.0.0.1:0".parse().unwrap())).unwrap();
/// assert_ne!(server.addr().port(), 0);
/// server.shutdown().unwrap();
/// ```
pub fn start(node: Arc<Node>, config: ServerConfig) -> Result<ServerHandle, ServerError> {
    config.validate()?;
    warn_if_open(&config);
    // Bind on the caller's thread so that a taken port is reported here,
    // and the address is known before the thread starts.
    let listener =
        std::net::TcpListener::bind(config.bind).map_err(|source| ServerError::Bind {
            addr: config.bind,
            source,
        })?;
    let addr = listener.local_addr().map_err(ServerError::Runtime)?;
    tracing::info!(%addr, auth = config.token.is_some(), "HTTP API and dashboard listening");
    listener
        .set_nonblocking(true)
        .map_err(ServerError::Runtime)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.worker_threads)
        .thread_name("eddy-http")
        .enable_io()
        .enable_time()
        .build()
        .map_err(ServerError::Runtime)?;
    let (stop, stopped) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("eddy-http-main".into())
        .spawn(move || {
            let result = runtime.block_on(async move {
                let listener =
                    tokio::net::TcpListener::from_std(listener).map_err(ServerError::Runtime)?;
                serve_on(listener, node, config, async move {
                    let _ = stopped.await;
                })
                .await
            });
            // Blocking work (a long query) must not hold the process open.
            runtime.shutdown_timeout(SHUTDOWN_GRACE);
            match &result {
                Ok(()) => tracing::info!(%addr, "HTTP API stopped"),
                Err(e) => tracing::error!(%addr, error = %e, "HTTP API failed"),
            }
            result
        })
        .map_err(ServerError::Runtime)?;
    Ok(ServerHandle {
        addr,
        stop: Some(stop),
        thread: Some(thread),
    })
}
