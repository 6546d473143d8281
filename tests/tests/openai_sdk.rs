//! The official `openai` and `anthropic` Python SDKs, unmodified, against a real gateway: runs
//! `tests/python` with pytest from the venv (`$DATAMIND_VENV`, default `<workspace>/.venv`,
//! created by `scripts/test.sh`).

use std::time::Duration;

use anyhow::{Context, Result};
use datamind_e2e::fixture::{CHAT_MODEL, EMBED_MODEL, OneUpstream};
use datamind_e2e::paths::{venv_python, workspace_root};
use datamind_e2e::{KEY_ALL, MockSpec};

#[tokio::test]
async fn openai_python_sdk_works_against_the_gateway() -> Result<()> {
    let python = venv_python()?;
    let s = OneUpstream::start(MockSpec::named("up1").chunks(5)).await?;
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
