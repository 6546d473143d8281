//! Load-balancing strategies across the deployments of one model group, observed through
//! the `x-datamind-deployment` header.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use datamind_e2e::fixture::CHAT_MODEL;
use datamind_e2e::sse::SseStream;
use datamind_e2e::{
    Gateway, GatewayConfig, KEY_ALL, MockLlm, MockSpec, ModelGroup, chat_body, header, stream_body,
};

async fn two_mocks(spec: MockSpec) -> Result<(MockLlm, MockLlm)> {
    let a = MockLlm::start(MockSpec {
        name: "up1".into(),
        ..spec.clone()
    })
    .await?;
    let b = MockLlm::start(MockSpec {
        name: "up2".into(),
        ..spec
    })
    .await?;
    Ok((a, b))
}

#[tokio::test]
async fn weighted_round_robin_follows_weights() -> Result<()> {
    let (a, b) = two_mocks(MockSpec::default()).await?;
    let config = GatewayConfig::new()
        .openai_provider("up1", &a.base_url())
        .openai_provider("up2", &b.base_url())
        .model(
            ModelGroup::new(CHAT_MODEL)
                .strategy("weighted_round_robin")
                .weighted_deployment("up1", "heavy", 3)
                .weighted_deployment("up2", "light", 1),
        );
    let gw = Gateway::start(&config).await?;
    let mut served: HashMap<String, u32> = HashMap::new();
    for _ in 0..40 {
        let resp = gw.chat(KEY_ALL, &chat_body(CHAT_MODEL, "hi")).await?;
        assert_eq!(resp.status(), 200);
        let dep = header(&resp, "x-datamind-deployment").unwrap_or_default();
        *served.entry(dep).or_default() += 1;
    }
    let heavy = served.get("up1/heavy").copied().unwrap_or(0);
    let light = served.get("up2/light").copied().unwrap_or(0);
    assert_eq!(heavy + light, 40, "unexpected deployments: {served:?}");
    assert!(light >= 1, "weight-1 deployment never used: {served:?}");
    assert!(heavy > light, "weights 3:1 not followed: {served:?}");
    Ok(())
}

#[tokio::test]
async fn least_in_flight_avoids_the_busy_deployment() -> Result<()> {
    let (a, b) = two_mocks(MockSpec::default().chunks(30).chunk_delay_ms(100)).await?;
    let config = GatewayConfig::new()
        .openai_provider("up1", &a.base_url())
        .openai_provider("up2", &b.base_url())
        .model(
            ModelGroup::new(CHAT_MODEL)
                .strategy("least_in_flight")
                .deployment("up1", "m1")
                .deployment("up2", "m2"),
        );
    let gw = Gateway::start(&config).await?;
    // Hold one stream open on whichever deployment takes it.
    let resp = gw.chat(KEY_ALL, &stream_body(CHAT_MODEL, "long")).await?;
    let busy = header(&resp, "x-datamind-deployment").context("no deployment header")?;
    let mut stream = SseStream::new(resp);
    stream.next_event(Duration::from_secs(5)).await?;
    for i in 0..3 {
        let resp = gw.chat(KEY_ALL, &stream_body(CHAT_MODEL, "short")).await?;
        let dep = header(&resp, "x-datamind-deployment").unwrap_or_default();
        assert_ne!(dep, busy, "request {i} went to the busy deployment");
        drop(resp);
        // Let the dropped request's in-flight count settle before the next pick.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(stream);
    Ok(())
}
