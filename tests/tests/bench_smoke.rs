//! The load-testing harness cannot rot: `benches/run.sh --smoke` runs against the binaries
//! under test (direct, nginx, the gateway, the gateway over a translating upstream, the
//! gateway with its cache, the gateway with limits and budgets in-process and in Redis) and must produce a complete report with no failed requests.
//! Nothing here looks at timings: performance is reported by the full run, never asserted.

use std::process::Command;

use anyhow::{Context, Result, ensure};
use datamind_e2e::paths;
use serde_json::Value;

#[test]
fn harness_smoke_run_reports_every_target_and_scenario() -> Result<()> {
    let bins = paths::gateway_bin()?
        .parent()
        .context("binary directory")?
        .to_path_buf();
    let out = tempfile::tempdir()?;
    let mut targets = vec![
        "direct",
        "datamind",
        "datamind_traced",
        "datamind_anthropic",
        "datamind_cache",
        "datamind_limits",
        "datamind_conductor",
    ];
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok()
    {
        targets.push("datamind_limits_redis");
    }
    if std::path::Path::new("/usr/sbin/nginx").exists() {
        targets.push("nginx");
    }
    let status = Command::new(paths::workspace_root().join("benches/run.sh"))
        .args(["--smoke", "--bin-dir"])
        .arg(&bins)
        .args(["--targets", &targets.join(","), "--out"])
        .arg(out.path())
        .status()
        .context("running benches/run.sh")?;
    ensure!(status.success(), "benches/run.sh --smoke failed: {status}");

    let mut json = None;
    let mut svg = false;
    for entry in std::fs::read_dir(out.path())? {
        let path = entry?.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("json") => json = Some(path),
            Some("svg") => svg = std::fs::read_to_string(&path)?.starts_with("<svg"),
            _ => {}
        }
    }
    ensure!(svg, "no SVG chart written");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(
        json.context("no JSON report written")?,
    )?)?;
    let runs = report["runs"].as_array().context("runs")?;
    for scenario in [
        "chat_c1",
        "chat_c32",
        "chat_c64",
        "stream_c32",
        "prompt_1mib",
        "stream_c200",
    ] {
        for target in &targets {
            let run = runs
                .iter()
                .find(|r| r["scenario"] == scenario && r["target"] == *target)
                .with_context(|| format!("no {scenario}/{target} run in the report"))?;
            let r = &run["report"];
            ensure!(
                r["ok"].as_u64().unwrap_or(0) > 0 && r["errors"] == 0,
                "{scenario}/{target}: {} ok, errors {}",
                r["ok"],
                r["errors_by_kind"]
            );
            if scenario.starts_with("stream") {
                ensure!(
                    r["first_chunk_ms"].is_object(),
                    "{scenario}/{target}: no time to first chunk"
                );
            }
        }
    }
    Ok(())
}
