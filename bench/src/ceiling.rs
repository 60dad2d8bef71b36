//! The ceiling: a bare hyper HTTP/1.1 server that reads each request body and answers with a
//! canned ~1 KB GetSecretValue response. It does no parsing, no signature check, no crypto
//! and no storage, so its rate is what this machine can serve at all with the load generator
//! on the same cores. It runs as its own process (`arca-bench ceiling`) on a tokio runtime
//! shaped like Arca's, so the two get the same share of the CPU.

use std::convert::Infallible;
use std::net::SocketAddr;

use anyhow::Result;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// A GetSecretValue answer shaped like AWS's, with a 1,024-character SecretString.
pub fn canned_body() -> Bytes {
    let value = crate::workloads::secret_value(0);
    let body = serde_json::json!({
        "ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:bench/hot/0000-AbCdEf",
        "Name": "bench/hot/0000",
        "VersionId": "7d1f1f1e-8c66-4c4e-9a43-0d2a1c2b3e4f",
        "SecretString": value,
        "VersionStages": ["AWSCURRENT"],
        "CreatedDate": 1_760_000_000.123,
    });
    Bytes::from(body.to_string())
}

async fn answer(req: Request<Incoming>, body: Bytes) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the request body in full, as any real server must.
    let _ = req.into_body().collect().await;
    let resp = Response::builder()
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amzn-requestid", "00000000-0000-4000-8000-000000000000")
        .body(Full::new(body))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
    Ok(resp)
}

/// Serves until killed; prints `ceiling: listening on ADDR` once bound.
pub async fn serve(listen: SocketAddr) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("ceiling: listening on {}", listener.local_addr()?);
    let body = canned_body();
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let body = body.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| answer(req, body.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
