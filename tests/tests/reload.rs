//! Config hot reload (file edits and SIGHUP) and the `check`, `hash-key` and `--version`
//! subcommands.

use std::time::Duration;

use anyhow::Result;
use datamind_e2e::fixture::{CHAT_MODEL, OneUpstream, one_upstream_config};
use datamind_e2e::gateway::run_gateway_command;
use datamind_e2e::{
    ApiError, DEV_KEY, Gateway, KEY_ALL, MockSpec, ModelGroup, Signal, chat_body, eventually,
    header, sha256_hex,
};
use serde_json::Value;

const NEW_MODEL: &str = "gpt-4o-reloaded";
const RELOADS: &str = "datamind_config_reloads_total";

async fn reloads(gw: &Gateway, result: &str) -> Result<f64> {
    Ok(gw.metrics().await?.sum(RELOADS, &[("result", result)]))
}

async fn lists_model(gw: &Gateway, model: &str) -> Result<bool> {
    let resp = gw
        .http()
        .get(gw.url("/v1/models"))
        .bearer_auth(KEY_ALL)
        .send()
        .await?;
    let body: Value = resp.json().await?;
    Ok(body["data"]
        .as_array()
        .is_some_and(|d| d.iter().any(|m| m["id"] == model)))
}

#[tokio::test]
async fn editing_the_config_file_adds_a_model() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1")).await?;
    let resp = s.gateway.chat(KEY_ALL, &chat_body(NEW_MODEL, "hi")).await?;
    assert_eq!(
        ApiError::read(resp).await?.status,
        404,
        "model exists before the edit"
    );

    let edited = one_upstream_config(&s.mock)
        .model(ModelGroup::new(NEW_MODEL).deployment("up1", "reloaded-upstream"));
    s.gateway.rewrite_config(&edited)?;
    eventually(
        "the new model to be listed",
        Duration::from_secs(3),
        || async { Ok(lists_model(&s.gateway, NEW_MODEL).await?.then_some(())) },
    )
    .await?;

    let resp = s.gateway.chat(KEY_ALL, &chat_body(NEW_MODEL, "hi")).await?;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        header(&resp, "x-datamind-deployment").as_deref(),
        Some("up1/reloaded-upstream")
    );
    assert!(
        reloads(&s.gateway, "success").await? >= 1.0,
        "success not counted"
    );
    Ok(())
}

#[tokio::test]
async fn invalid_edit_keeps_running_config_and_counts_failure() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1")).await?;
    // Semantically invalid: a deployment on an unknown provider.
    let bad =
        one_upstream_config(&s.mock).model(ModelGroup::new(NEW_MODEL).deployment("nope", "x"));
    s.gateway.rewrite_config(&bad)?;
    eventually(
        "a failed reload to be counted",
        Duration::from_secs(3),
        || async { Ok((reloads(&s.gateway, "failure").await? >= 1.0).then_some(())) },
    )
    .await?;
    assert!(
        !lists_model(&s.gateway, NEW_MODEL).await?,
        "invalid config was applied"
    );
    let resp = s
        .gateway
        .chat(KEY_ALL, &chat_body(CHAT_MODEL, "hi"))
        .await?;
    assert_eq!(resp.status(), 200, "running config lost after a bad edit");

    // Not even YAML.
    s.gateway.rewrite_config_text("server: [unclosed\n  - {")?;
    eventually("a second failed reload", Duration::from_secs(3), || async {
        Ok((reloads(&s.gateway, "failure").await? >= 2.0).then_some(()))
    })
    .await?;
    let resp = s
        .gateway
        .chat(KEY_ALL, &chat_body(CHAT_MODEL, "hi"))
        .await?;
    assert_eq!(resp.status(), 200, "running config lost after a YAML error");

    // The watcher still works after failures.
    let good = one_upstream_config(&s.mock)
        .model(ModelGroup::new(NEW_MODEL).deployment("up1", "reloaded-upstream"));
    s.gateway.rewrite_config(&good)?;
    eventually(
        "the fixed config to apply",
        Duration::from_secs(3),
        || async { Ok(lists_model(&s.gateway, NEW_MODEL).await?.then_some(())) },
    )
    .await?;
    Ok(())
}

/// A ConfigMap volume as the kubelet lays it out and updates it: the file is a symlink
/// through `..data` to a timestamped directory, and an update writes a new directory and
/// renames a new `..data` symlink over the old one. No event names the file itself.
#[tokio::test]
async fn a_configmap_style_update_reloads() -> Result<()> {
    use std::os::unix::fs::symlink;
    let s = OneUpstream::start(MockSpec::named("up1")).await?;
    let dir = s.gateway.dir();
    let (api, admin) = (s.gateway.api_addr(), s.gateway.admin_addr());
    let same = one_upstream_config(&s.mock).render(api, admin);
    // Lay the volume out under the running gateway: `gateway.yaml -> ..data/gateway.yaml`.
    std::fs::create_dir(dir.join("..2026_11_27_first"))?;
    std::fs::write(dir.join("..2026_11_27_first/gateway.yaml"), &same)?;
    symlink("..2026_11_27_first", dir.join("..data"))?;
    symlink("..data/gateway.yaml", dir.join("gateway.yaml.tmp"))?;
    std::fs::rename(dir.join("gateway.yaml.tmp"), s.gateway.config_path())?;
    eventually(
        "the relinked file to reload",
        Duration::from_secs(3),
        || async { Ok((reloads(&s.gateway, "success").await? >= 1.0).then_some(())) },
    )
    .await?;
    assert!(!lists_model(&s.gateway, NEW_MODEL).await?);

    // The update, as the kubelet makes it.
    let edited = one_upstream_config(&s.mock)
        .model(ModelGroup::new(NEW_MODEL).deployment("up1", "reloaded-upstream"))
        .render(api, admin);
    std::fs::create_dir(dir.join("..2026_11_27_second"))?;
    std::fs::write(dir.join("..2026_11_27_second/gateway.yaml"), edited)?;
    symlink("..2026_11_27_second", dir.join("..data_tmp"))?;
    std::fs::rename(dir.join("..data_tmp"), dir.join("..data"))?;
    std::fs::remove_dir_all(dir.join("..2026_11_27_first"))?;
    eventually(
        "the model the update added to be listed",
        Duration::from_secs(3),
        || async { Ok(lists_model(&s.gateway, NEW_MODEL).await?.then_some(())) },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn sighup_reloads_the_config() -> Result<()> {
    let s = OneUpstream::start(MockSpec::named("up1")).await?;
    let before = reloads(&s.gateway, "success").await?;
    s.gateway.signal(Signal::Hup)?;
    eventually(
        "SIGHUP to count a successful reload",
        Duration::from_secs(3),
        || async { Ok((reloads(&s.gateway, "success").await? > before).then_some(())) },
    )
    .await?;
    let resp = s
        .gateway
        .chat(KEY_ALL, &chat_body(CHAT_MODEL, "hi"))
        .await?;
    assert_eq!(resp.status(), 200, "not serving after SIGHUP");
    Ok(())
}

#[tokio::test]
async fn check_accepts_a_valid_config() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("ok.yaml");
    let cfg =
        datamind_e2e::fixture::failover_config("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1");
    std::fs::write(
        &path,
        cfg.render("127.0.0.1:18080".parse()?, "127.0.0.1:19090".parse()?),
    )?;
    let out = run_gateway_command(&["check", "--config", &path.to_string_lossy()]).await?;
    assert!(
        out.status.success(),
        "check failed on a valid config: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[tokio::test]
async fn check_reports_every_problem_with_its_path() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bad.yaml");
    let cfg = datamind_e2e::GatewayConfig::new()
        .openai_provider("up1", "http://127.0.0.1:9/v1")
        .model(ModelGroup::new("a").deployment("nope", "m"))
        .model(ModelGroup::new("b").deployment("also-nope", "m"));
    std::fs::write(
        &path,
        cfg.render("127.0.0.1:18080".parse()?, "127.0.0.1:19090".parse()?),
    )?;
    let out = run_gateway_command(&["check", "--config", &path.to_string_lossy()]).await?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "check accepted a bad config: {text}");
    for needle in [
        "models[0].deployments[0].provider",
        "unknown provider \"nope\"",
        "models[1].deployments[0].provider",
        "\"also-nope\"",
    ] {
        assert!(
            text.contains(needle),
            "`{needle}` missing from check output:\n{text}"
        );
    }

    let missing = dir.path().join("missing.yaml");
    let out = run_gateway_command(&["check", "--config", &missing.to_string_lossy()]).await?;
    assert!(!out.status.success(), "check accepted a missing file");
    Ok(())
}

#[tokio::test]
async fn hash_key_prints_sha256_and_version_runs() -> Result<()> {
    let out = run_gateway_command(&["hash-key", DEV_KEY]).await?;
    assert!(out.status.success(), "hash-key failed: {}", out.status);
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(printed, sha256_hex(DEV_KEY));
    assert_eq!(
        printed,
        "9c2d5b58f329a00e80bee8b3814350321e9a4397744c042ab590298a524eec1d"
    );

    let out = run_gateway_command(&["--version"]).await?;
    assert!(out.status.success(), "--version failed: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(env!("CARGO_PKG_VERSION")),
        "--version printed {text:?}"
    );
    Ok(())
}
