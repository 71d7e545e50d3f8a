//! The API server: a tokio current-thread runtime on its own thread (a housekeeping core,
//! never a worker core), bound before the thread starts so a bad address fails at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::appliance::Appliance;
use crate::auth::Token;
use crate::routes::{router, AppState, BuildInfo};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The listen address cannot be bound.
    #[error("api.listen: cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The thread or the runtime could not be set up.
    #[error("api: {0}")]
    Setup(#[from] std::io::Error),
}

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Management address to listen on.
    pub listen: SocketAddr,
    /// The bearer token.
    pub token: Token,
    /// Pin the server thread (and the blocking pool it starts) to this core; `None` leaves
    /// it to the scheduler. Never one of the workers' cores.
    pub core: Option<usize>,
    /// `pshim6_build_info` labels.
    pub build: BuildInfo,
}

/// A running server; [`ApiServer::stop`] ends it (dropping it does too).
#[derive(Debug)]
pub struct ApiServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), std::io::Error>>>,
}

impl ApiServer {
    /// Binds `cfg.listen` and serves `appliance` on a new thread.
    pub fn start(cfg: ServerConfig, appliance: Arc<dyn Appliance>) -> Result<Self, ServerError> {
        let listener =
            std::net::TcpListener::bind(cfg.listen).map_err(|source| ServerError::Bind {
                addr: cfg.listen,
                source,
            })?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = AppState {
            appliance,
            token: Arc::new(cfg.token),
            build: Arc::new(cfg.build),
        };
        let (tx, rx) = oneshot::channel::<()>();
        let core = cfg.core;
        let thread = std::thread::Builder::new()
            .name("pshim6-api".into())
            .spawn(move || {
                if let Some(id) = core {
                    // Threads inherit the affinity: the blocking pool stays here too.
                    core_affinity::set_for_current(core_affinity::CoreId { id });
                }
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .enable_time()
                    .max_blocking_threads(4)
                    .build()?;
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    axum::serve(listener, router(state))
                        .with_graceful_shutdown(async {
                            let _ = rx.await;
                        })
                        .await
                })
            })?;
        Ok(Self {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The address bound (the port is known even when `listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving and waits for the thread.
    pub fn stop(mut self) -> Result<(), std::io::Error> {
        self.shutdown_now()
    }

    fn shutdown_now(&mut self) -> Result<(), std::io::Error> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(std::io::Error::other("the API thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.shutdown_now();
    }
}
