//! The connection loop: accepts TCP connections and serves HTTP/1.1 on each (over TLS
//! when configured) with bare hyper (no router or middleware stack: the API has one
//! endpoint, and the dev hooks a prefix), and on shutdown stops accepting and lets
//! requests in flight finish.

use crate::tls::TlsAcceptor;
use crate::ApiState;
use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

/// How long shutdown waits for requests in flight before it drops their connections.
const DRAIN: Duration = Duration::from_secs(10);

/// A client that opens a connection and never finishes the TLS handshake holds only its
/// own task, and only this long.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// Serves the API on `listener` (with TLS when `tls` is given) until `shutdown`
/// completes, then drains.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: Arc<ApiState>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => (stream, peer),
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Responses go out at once: Nagle's algorithm would hold a short answer back
        // waiting for an ACK (measured: it lengthened the latency tail under load).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let state = state.clone();
        let watcher = graceful.watcher();
        match &tls {
            None => {
                tokio::spawn(serve_connection(stream, peer, false, state, watcher));
            }
            Some(acceptor) => {
                // The handshake runs in the connection's task, so a slow client never
                // holds up the accept loop.
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            serve_connection(stream, peer, true, state, watcher).await
                        }
                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown drain; dropping them");
    }
    Ok(())
}

/// HTTP/1.1 on one connection, plain or TLS, until it closes or shutdown drains it.
async fn serve_connection<S>(
    stream: S,
    peer: std::net::SocketAddr,
    tls: bool,
    state: Arc<ApiState>,
    watcher: hyper_util::server::graceful::Watcher,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = Arc::new(crate::Connection::new(peer, tls));
    let svc = service_fn(move |req| {
        let state = state.clone();
        let conn = conn.clone();
        async move { Ok::<Response, Infallible>(crate::handle(&state, req, &conn).await) }
    });
    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

pub(crate) type Response = hyper::Response<Full<Bytes>>;
