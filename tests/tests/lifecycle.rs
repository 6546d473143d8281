//! Process and connection lifecycle: SIGTERM drains an open stream and exits 0; a client
//! that goes away (while waiting for the first token, or mid-stream) cancels the upstream
//! request; the process runs without transparent huge pages (RSS that follows use).

use std::time::Duration;

use anyhow::{Context, Result, bail};
use datamind_e2e::fixture::{CHAT_MODEL, OneUpstream};
use datamind_e2e::sse::SseStream;
use datamind_e2e::{KEY_ALL, MockSpec, Signal, chat_body, eventually, stream_body};
use serde_json::Value;

#[tokio::test]
async fn sigterm_lets_an_open_stream_finish_then_exits_zero() -> Result<()> {
    let mut s = OneUpstream::start(MockSpec::named("up1").chunks(8).chunk_delay_ms(200)).await?;
    let resp = s
        .gateway
        .chat(KEY_ALL, &stream_body(CHAT_MODEL, "drain me"))
        .await?;
    assert_eq!(resp.status(), 200);
    let mut stream = SseStream::new(resp);
    let first = stream
        .next_event(Duration::from_secs(5))
        .await?
        .context("stream ended before its first event")?;
    let mut events = vec![first];

    s.gateway.signal(Signal::Term)?;
    // While draining the gateway is no longer ready (a load balancer stops sending to it).
    let readyz = s.gateway.admin_url("/readyz");
    let http = s.gateway.http().clone();
    eventually(
        "/readyz to stop answering 200",
        Duration::from_secs(1),
        || {
            let (http, readyz) = (http.clone(), readyz.clone());
            async move {
                let ready = match http.get(&readyz).send().await {
                    Ok(r) => r.status().is_success(),
                    Err(_) => false,
                };
                Ok((!ready).then_some(()))
            }
        },
    )
    .await?;
    let rest = stream.collect(Duration::from_secs(10)).await?;
    events.extend(rest);
    let data: Vec<&str> = events.iter().map(|e| e.data.as_str()).collect();
    assert!(
        events.last().is_some_and(|e| e.is_done()),
        "stream cut by shutdown: {data:?}"
    );
    assert!(
        events.iter().all(|e| !e.is_error()),
        "error during drain: {data:?}"
    );
    let content = events
        .iter()
        .filter(|e| e.delta_content().is_some())
        .count();
    assert!(
        content >= 8,
        "only {content} content chunks of 8 arrived: {data:?}"
    );

    let status = s.gateway.wait_exit(Duration::from_secs(8)).await?;
    assert!(
        status.success(),
        "exit status {status} after SIGTERM\nstderr: {}",
        s.gateway.stderr_tail()
    );
    Ok(())
}

/// `khugepaged` would refill the sparse regions mimalloc leaves after a burst into whole
/// 2 MiB pages (the soak's +20 MiB step); the gateway turns THP off for itself at start.
#[tokio::test]
async fn the_gateway_runs_without_transparent_huge_pages() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1")).await?;
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.gateway.pid()))?;
    let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) else {
        // Kernels before 5.0 do not show the flag; nothing to check there.
        return Ok(());
    };
    assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    Ok(())
}

async fn in_flight(s: &OneUpstream) -> Result<f64> {
    Ok(s.gateway
        .metrics()
        .await?
        .sum("datamind_deployment_in_flight", &[]))
}

#[tokio::test]
async fn client_disconnect_mid_stream_cancels_upstream() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1").chunks(50).chunk_delay_ms(100)).await?;
    let resp = s
        .gateway
        .chat(KEY_ALL, &stream_body(CHAT_MODEL, "long"))
        .await?;
    assert_eq!(resp.status(), 200);
    let mut stream = SseStream::new(resp);
    let mut content = 0;
    while content < 2 {
        let ev = stream
            .next_event(Duration::from_secs(5))
            .await?
            .context("stream ended early")?;
        if ev.delta_content().is_some() {
            content += 1;
        }
    }
    drop(stream);

    let stats = s
        .mock
        .wait_stats("upstream cancelled", Duration::from_secs(3), |st| {
            st.cancelled >= 1 && st.active == 0
        })
        .await?;
    assert_eq!(
        stats.completed, 0,
        "upstream stream ran to completion: {stats:?}"
    );
    eventually(
        "in-flight gauge back to 0",
        Duration::from_secs(3),
        || async { Ok((in_flight(&s).await? == 0.0).then_some(())) },
    )
    .await?;
    Ok(())
}

/// Starts a request on a task, waits until the mock holds it, then aborts the task (the
/// client connection closes) and checks the upstream request is cancelled.
async fn disconnect_while_waiting_for_first_token(body: Value) -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1").ttft_ms(10_000)).await?;
    let client = s.gateway.http().clone();
    let url = s.gateway.url("/v1/chat/completions");
    let task = tokio::spawn(async move {
        let resp = client
            .post(url)
            .bearer_auth(KEY_ALL)
            .json(&body)
            .send()
            .await;
        // Hold whatever came back (headers may arrive early) until aborted.
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(resp);
    });
    s.mock
        .wait_stats(
            "the request to reach upstream",
            Duration::from_secs(3),
            |st| st.active >= 1,
        )
        .await?;
    task.abort();
    if let Ok(Err(e)) = tokio::time::timeout(Duration::from_secs(2), task).await
        && !e.is_cancelled()
    {
        bail!("client task failed: {e}");
    }
    let stats = s
        .mock
        .wait_stats("upstream cancelled", Duration::from_secs(3), |st| {
            st.cancelled >= 1 && st.active == 0
        })
        .await?;
    assert_eq!(stats.completed, 0, "{stats:?}");
    Ok(())
}

#[tokio::test]
async fn client_disconnect_before_first_token_cancels_upstream_streaming() -> Result<()> {
    disconnect_while_waiting_for_first_token(stream_body(CHAT_MODEL, "slow")).await
}

#[tokio::test]
async fn client_disconnect_before_first_token_cancels_upstream_non_streaming() -> Result<()> {
    disconnect_while_waiting_for_first_token(chat_body(CHAT_MODEL, "slow")).await
}
