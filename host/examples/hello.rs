//! The floor for `bench/http.sh`: a bare hyper (axum) hello-world on the same
//! runtime settings as `valbox serve`.

use axum::{routing::get, Router};

#[tokio::main]
async fn main() {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18181".into());
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .expect("binding");
    let router = Router::new().route("/", get(|| async { "3" }));
    axum::serve(listener, router).await.expect("serving");
}
