//! Keeping the ruleset fresh: `GET /sdk/v1/ruleset` with ETags, the
//! `GET /sdk/v1/stream` Server-Sent Events push, and polling as a fallback.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use serde::Deserialize;
use tokio::sync::watch;

use super::sse::SseParser;
use super::{ClientError, Inner};
use crate::{CompiledRuleset, Ruleset};

/// Fetches the ruleset; swaps it in when it changed. Fetches are serialized
/// so the stream and the poller never race each other.
pub(crate) async fn fetch(inner: &Inner) -> Result<(), ClientError> {
    let _guard = inner.fetch_lock.lock().await;
    inner.stats.ruleset_fetches.fetch_add(1, Ordering::Relaxed);
    let result = fetch_locked(inner).await;
    if result.is_err() {
        inner.stats.fetch_errors.fetch_add(1, Ordering::Relaxed);
    }
    result
}

async fn fetch_locked(inner: &Inner) -> Result<(), ClientError> {
    let etag = inner.etag.lock().map(|e| e.clone()).unwrap_or_default();
    let mut request = inner
        .http
        .get(format!("{}/sdk/v1/ruleset", inner.base_url))
        .bearer_auth(&inner.sdk_key)
        .timeout(inner.config.request_timeout);
    if let Some(tag) = &etag {
        request = request.header(reqwest::header::IF_NONE_MATCH, tag);
    }
    let response = request.send().await.map_err(ClientError::Http)?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_MODIFIED {
        inner
            .stats
            .ruleset_not_modified
            .fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
    if !status.is_success() {
        return Err(ClientError::Status(status.as_u16()));
    }
    let new_etag = response
        .headers()
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.bytes().await.map_err(ClientError::Http)?;
    let ruleset: Ruleset = serde_json::from_slice(&body).map_err(ClientError::Decode)?;
    let current = inner.rules.load().version();
    // Only a newer version replaces ours (0 is the empty ruleset before the first
    // fetch): behind a load balancer, a poll answered by a server that has not yet
    // seen a rollback must not bring the rolled-back variant back.
    if ruleset.version < current || (ruleset.version == current && current != 0) {
        if ruleset.version < current {
            inner.stats.ruleset_stale.fetch_add(1, Ordering::Relaxed);
        }
        return Ok(());
    }
    let (compiled, warnings) = CompiledRuleset::compile(ruleset);
    inner
        .stats
        .compile_warnings
        .store(warnings.len() as u64, Ordering::Relaxed);
    inner.rules.store(Arc::new(compiled));
    inner.stats.ruleset_updates.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut w) = inner.warnings.lock() {
        *w = warnings;
    }
    if let Ok(mut e) = inner.etag.lock() {
        *e = new_etag;
    }
    Ok(())
}

/// Polls every `poll_interval` until stopped.
pub(crate) async fn run_poller(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(inner.config.poll_interval) => {}
            _ = stop.changed() => return,
        }
        // Errors are counted in the stats; the next poll tries again.
        let _ = fetch(&inner).await;
    }
}

#[derive(Deserialize)]
struct VersionEvent {
    version: u64,
}

/// Follows the event stream, reconnecting with exponential backoff, until
/// stopped. Each `ruleset` event naming a version we do not have triggers a
/// fetch; so does every (re)connection, to catch changes missed while away.
pub(crate) async fn run_stream(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let mut delay = inner.config.retry_initial;
    loop {
        let connected = tokio::select! {
            c = follow_stream(&inner) => c,
            _ = stop.changed() => return,
        };
        if connected {
            delay = inner.config.retry_initial;
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.changed() => return,
        }
        delay = (delay * 2).min(inner.config.retry_max);
    }
}

/// One connection; returns whether it got as far as an open stream.
async fn follow_stream(inner: &Inner) -> bool {
    let response = inner
        .http
        .get(format!("{}/sdk/v1/stream", inner.base_url))
        .bearer_auth(&inner.sdk_key)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await;
    let response = match response {
        Ok(r) if r.status().is_success() => r,
        _ => return false,
    };
    inner.stats.stream_connects.fetch_add(1, Ordering::Relaxed);
    let _ = fetch(inner).await;
    let mut parser = SseParser::default();
    let mut body = response.bytes_stream();
    // A silent stream is re-opened after a while: proxies drop idle
    // connections without telling anyone.
    let idle = inner.config.stream_idle_timeout;
    loop {
        let chunk = match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(Ok(chunk))) => chunk,
            _ => return true,
        };
        for event in parser.feed(&chunk) {
            if event.name != "ruleset" {
                continue;
            }
            let newer = serde_json::from_str::<VersionEvent>(&event.data)
                .map_or(true, |v| v.version > inner.rules.load().version());
            if newer {
                let _ = fetch(inner).await;
            }
        }
    }
}

/// Backoff bounds, for the builder's defaults.
pub(crate) const RETRY_INITIAL: Duration = Duration::from_millis(200);
pub(crate) const RETRY_MAX: Duration = Duration::from_secs(30);
