//! The accept loop: hyper connections with a header read timeout and a cap
//! on connections per client address.
//!
//! `axum::serve` sets no timer, so a client that sends half a request line
//! holds its connection (and, behind a global limit, everyone's turn)
//! forever. Here every connection gets hyper's header read timeout, and one
//! client address may hold at most `per_client` connections at once: 520
//! slow connections from one host cannot starve the others. What a request
//! may do once its headers are in (body read time, limits per route class)
//! is `limits.rs`'s.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Connection-level limits.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Time allowed for a request's headers to arrive.
    pub header_timeout: Duration,
    /// Connections one client address may hold at once.
    pub per_client: usize,
}

/// Counts open connections per client address; a slot gives its count back
/// when the connection ends.
#[derive(Clone, Default)]
struct Clients(Arc<Mutex<HashMap<IpAddr, usize>>>);

struct Slot {
    clients: Clients,
    ip: IpAddr,
}

impl Clients {
    fn take(&self, ip: IpAddr, cap: usize) -> Option<Slot> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_default();
        if *n >= cap {
            return None;
        }
        *n += 1;
        Some(Slot {
            clients: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.clients.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// The answer to a connection over the per-client cap (then it is closed).
fn too_many() -> Vec<u8> {
    let body = r#"{"error_code":429,"message":"too many connections from your address; close some first"}"#;
    format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves `app` until `shutdown` resolves, then lets open connections end
/// (bounded by `grace`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl std::future::Future<Output = ()>,
    grace: Duration,
) {
    let clients = Clients::default();
    let (close_tx, close_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (mut stream, addr): (tokio::net::TcpStream, SocketAddr) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!("http accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = clients.take(addr.ip(), limits.per_client.max(1)) else {
            tasks.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(1), stream.write_all(&too_many())).await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let mut close = close_rx.clone();
        tasks.spawn(async move {
            let _slot = slot;
            let service = TowerToHyperService::new(app.map_request(move |mut r: axum::http::Request<Incoming>| {
                r.extensions_mut().insert(ConnectInfo(addr));
                r.map(Body::new)
            }));
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                // Let oversized heads reach the router, which answers 414 /
                // 431 in JSON (hyper's own refusals have no body).
                .max_buf_size(1 << 20)
                .max_headers(1000);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            tokio::pin!(conn);
            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    changed = close.changed() => {
                        conn.as_mut().graceful_shutdown();
                        if changed.is_err() { break; }
                    }
                }
            }
        });
        // Reap finished connections so the set stays small.
        while tasks.try_join_next().is_some() {}
    }
    let _ = close_tx.send(true);
    let _ = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_at_most_its_cap_and_slots_come_back() {
        let c = Clients::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = c.take(ip, 2).unwrap();
        let _b = c.take(ip, 2).unwrap();
        assert!(c.take(ip, 2).is_none());
        assert!(c.take("10.0.0.1".parse().unwrap(), 2).is_some());
        drop(a);
        assert!(c.take(ip, 2).is_some());
    }
}
