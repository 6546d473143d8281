//! The official `openai` and `anthropic` Python SDKs, unmodified, against a real gateway: runs
//! `tests/python` with pytest from the venv (`$DATAMIND_VENV`, default `<workspace>/.venv`,
//! created by `scripts/test.sh`).

use std::time::Duration;

use anyhow::{Context, Result};
use datamind_e2e::fixture::{CHAT_MODEL, EMBED_MODEL, OneUpstream};
use datamind_e2e::identity::AdminApi;
use datamind_e2e::paths::{venv_python, workspace_root};
use datamind_e2e::{KEY_ALL, MockSpec, sha256_hex};
use serde_json::json;

const ADMIN_KEY: &str = "adm-e2e-sdk-8d2e";

#[tokio::test]
async fn openai_python_sdk_works_against_the_gateway() -> Result<()> {
    let python = venv_python()?;
    let s = OneUpstream::start_with(MockSpec::named("up1").chunks(5), |c| {
        c.set("/admin/api_key_sha256", json!(sha256_hex(ADMIN_KEY)))
    })
    .await?;
    // A runtime key, revoked: the SDK must raise a typed AuthenticationError for it.
    let admin = AdminApi {
        gateway: &s.gateway,
        admin_key: ADMIN_KEY,
    };
    let (id, revoked) = admin.create(&json!({"name": "sdk"})).await?;
    let (status, _) = admin
        .call("POST", &format!("/admin/keys/{id}/revoke"), None)
        .await?;
    anyhow::ensure!(status == 200, "revoke answered {status}");
    let root = workspace_root();
    let mut cmd = tokio::process::Command::new(&python);
    cmd.args([
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/python",
    ])
    .current_dir(&root)
    .env("DATAMIND_GATEWAY_URL", s.gateway.url(""))
    .env("DATAMIND_API_KEY", KEY_ALL)
    .env("DATAMIND_REVOKED_KEY", &revoked)
    .env("DATAMIND_CHAT_MODEL", CHAT_MODEL)
    .env("DATAMIND_EMBED_MODEL", EMBED_MODEL)
    .env("PYTHONDONTWRITEBYTECODE", "1")
    .env("NO_PROXY", "127.0.0.1,localhost")
    .env_remove("OPENAI_API_KEY")
    .env_remove("OPENAI_BASE_URL")
    .stdin(std::process::Stdio::null())
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .context("pytest did not finish within 120 s")?
        .with_context(|| format!("running {} -m pytest", python.display()))?;
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "pytest failed ({}):\n{report}",
        out.status
    );
    assert!(report.contains("passed"), "pytest ran no test:\n{report}");
    Ok(())
}
