//! Where the binaries under test and the Python venv live.
//!
//! An explicit environment variable always wins; otherwise we look next to the running
//! test executable (`<target>/<profile>/deps/<test>` → `<target>/<profile>/`), then in
//! `$CARGO_TARGET_DIR/debug` (or `<workspace>/target/debug`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    // Cargo sets it when it runs a test, too: read at run time first. A test binary built in
    // another checkout that shares the `CARGO_TARGET_DIR` (CI clones afresh) may be reused
    // without a rebuild, and must read this checkout's files, not the vanished one's.
    let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .filter(|p| p.join("Cargo.toml").is_file())
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    manifest
        .parent()
        .map_or_else(|| manifest.clone(), Path::to_path_buf)
}

/// `$CARGO_TARGET_DIR` (relative paths are taken from the workspace root) or
/// `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// The `datamind-gateway` binary (`DATAMIND_GATEWAY_BIN` overrides).
pub fn gateway_bin() -> Result<PathBuf> {
    find_binary("datamind-gateway", "DATAMIND_GATEWAY_BIN")
}

/// The `mock-llm` binary (`DATAMIND_MOCK_BIN` overrides).
pub fn mock_bin() -> Result<PathBuf> {
    find_binary("mock-llm", "DATAMIND_MOCK_BIN")
}

/// The venv's python (`$DATAMIND_VENV/bin/python`, default `<workspace>/.venv`).
pub fn venv_python() -> Result<PathBuf> {
    let venv = std::env::var_os("DATAMIND_VENV")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv"));
    let python = venv.join("bin").join("python");
    if !python.is_file() {
        bail!(
            "no Python venv at {} (set DATAMIND_VENV to override): run `scripts/test.sh`, \
             which creates it with tests/python/requirements.txt",
            venv.display()
        );
    }
    Ok(python)
}

fn find_binary(name: &str, env_var: &str) -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(env_var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!(
            "{env_var}={} does not name a file: build it with `cargo build --workspace` first",
            path.display()
        );
    }
    let mut tried = Vec::new();
    if let Some(dir) = exe_profile_dir() {
        tried.push(dir.join(name));
    }
    tried.push(target_dir().join("debug").join(name));
    for path in &tried {
        if path.is_file() {
            return Ok(path.clone());
        }
    }
    let tried: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    bail!(
        "binary `{name}` not found (looked in {}): run `cargo build --workspace` first, \
         or set {env_var}",
        tried.join(", ")
    )
}

/// `<target>/<profile>/` of the running test executable, if it sits in `deps/`.
fn exe_profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    if deps.file_name()? != "deps" {
        return None;
    }
    deps.parent().map(Path::to_path_buf)
}

/// Reads a whole text file, naming it in the error.
pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}
