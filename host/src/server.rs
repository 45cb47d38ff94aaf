//! The HTTP front end (axum on hyper). Routes of SPEC §3 are added here;
//! for now the probes.

use axum::{routing::get, Json, Router};
use serde_json::json;
use std::sync::Arc;
use valbox_runtime::Sandbox;

/// Everything a request handler may use.
pub struct AppState {
    /// The sandbox every call runs in.
    pub sandbox: Sandbox,
}

/// The router of every route valbox serves.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Ready once the sandbox is built, which `serve` does before binding.
async fn readyz() -> Json<serde_json::Value> {
    Json(json!({"status": "ready"}))
}

/// Serves `router` on `listener` until the process is stopped.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
}
