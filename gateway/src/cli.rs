//! The command line: `run` (default), `check`, `hash-key`, `--version`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::{Parser, Subcommand};
use pingora_core::listeners::tls::TlsSettings;
use pingora_core::listeners::{L4BufferSettings, ListenerConfig};
use pingora_core::server::Server;
use pingora_core::server::configuration::{Opt, ServerConf};
use pingora_core::services::background::background_service;
use pingora_core::services::listening::Service;

use crate::auth::runtime::KeySync;
use crate::config::{self, Config};
use crate::reload::Reloader;
use crate::server::{AdminApp, ApiApp, ApiListener};
use crate::state::Gateway;
use crate::telemetry::{AccessLog, Traces};

/// DataMind core gateway: an OpenAI-compatible LLM gateway on Pingora.
#[derive(Debug, Parser)]
#[command(name = "datamind-gateway", version, about)]
pub struct Cli {
    /// Configuration file (YAML).
    #[arg(
        long,
        short,
        global = true,
        default_value = "config/gateway.yaml",
        env = "DATAMIND_CONFIG"
    )]
    pub config: PathBuf,
    /// Take over the listening sockets of a running instance (zero-downtime upgrade; send
    /// the old process SIGQUIT afterwards).
    #[arg(long)]
    pub upgrade: bool,
    /// What to do (default: run the gateway).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Run,
    /// Validate the config and exit: 0 when valid, 1 listing every problem otherwise.
    Check,
    /// Print the SHA-256 of an API key, for `auth.keys[].sha256`.
    HashKey {
        /// The key. Read from standard input when omitted (keeps it out of shell history).
        key: Option<String>,
    },
}

/// Runs the CLI; returns the process exit code.
pub fn main(cli: Cli) -> i32 {
    match cli.command.unwrap_or(Command::Run) {
        Command::HashKey { key } => {
            let key = match key {
                Some(k) => k,
                None => {
                    let mut line = String::new();
                    if std::io::stdin().read_line(&mut line).is_err() {
                        return 2;
                    }
                    line.trim_end_matches(['\r', '\n']).to_owned()
                }
            };
            say(&crate::auth::hash_key(&key));
            0
        }
        Command::Check => match config::load_file(&cli.config) {
            Ok(c) => {
                say(&format!(
                    "{}: ok ({} providers, {} models, {} keys)",
                    cli.config.display(),
                    c.providers.len(),
                    c.models.len(),
                    c.auth.keys.len()
                ));
                0
            }
            Err(e) => {
                eprintln!("{}: {e}", cli.config.display());
                1
            }
        },
        Command::Run => match config::load_file(&cli.config) {
            Ok(c) => run(c, &cli.config, cli.upgrade),
            Err(e) => {
                eprintln!("{}: {e}", cli.config.display());
                1
            }
        },
    }
}

fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn run(config: Config, path: &Path, upgrade: bool) -> i32 {
    crate::telemetry::logging::init(config.telemetry.log_level.as_deref());
    // The access-log thread also encodes spans: it runs when either is on.
    let spans =
        crate::telemetry::otlp::enabled(&config.telemetry.traces, |k| std::env::var(k).ok());
    let access_log = if config.access_log.enabled || spans {
        let path = config
            .access_log
            .enabled
            .then_some(config.access_log.path.as_str());
        match AccessLog::start(path) {
            Ok(l) => l,
            Err(e) => {
                eprintln!(
                    "access_log.path: cannot open `{}`: {e}",
                    config.access_log.path
                );
                return 1;
            }
        }
    } else {
        AccessLog::disabled()
    };
    let server_cfg = config.server.clone();
    let work_stealing = crate::server::work_stealing(&server_cfg);
    let telemetry_cfg = config.telemetry.clone();
    let gw = Gateway::new(config, access_log);
    match Traces::start(&telemetry_cfg, &gw.metrics) {
        Ok(Some(t)) => {
            gw.access_log.attach_spans(t.sink());
            let _ = gw.traces.set(t);
        }
        Ok(None) => {}
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    }

    // Draining is ours (see reload.rs): Pingora's grace period is only a backstop.
    let conf = ServerConf {
        threads: server_cfg.threads,
        work_stealing,
        grace_period_seconds: Some(server_cfg.shutdown_grace_seconds + 1),
        graceful_shutdown_timeout_seconds: Some(1),
        upstream_keepalive_pool_size: 1024,
        ..ServerConf::default()
    };
    let opt = Opt {
        upgrade,
        ..Opt::default()
    };
    let mut server = Server::new_with_opt_and_conf(opt, conf);
    server.bootstrap();

    let mut api = Service::new(
        "api".to_owned(),
        ApiListener::new(
            ApiApp::new(gw.clone()),
            !work_stealing,
            crate::server::pinned_cpus(&server_cfg, work_stealing),
        ),
    );
    match &server_cfg.tls {
        Some(tls) => match TlsSettings::intermediate(&tls.cert_file, &tls.key_file) {
            Ok(mut settings) => {
                settings.enable_h2();
                api.add_listener(api_listener(&server_cfg.listen).tls(settings));
            }
            Err(e) => {
                eprintln!("server.tls: {e}");
                return 1;
            }
        },
        None => api.add_listener(api_listener(&server_cfg.listen)),
    }
    let mut admin = Service::new("admin".to_owned(), AdminApp::new(gw.clone()));
    admin.add_tcp(&server_cfg.admin_listen);
    let key_sync = background_service("key-sync", KeySync::new(gw.runtime_keys.clone()));
    let sweeper = background_service(
        "upstream-pool-sweep",
        crate::engine::PoolSweeper(gw.h1_pool.clone()),
    );
    let reloader = background_service("config-reload", Reloader::new(gw, path.to_path_buf()));
    server.add_service(api);
    server.add_service(admin);
    server.add_service(reloader);
    server.add_service(key_sync);
    server.add_service(sweeper);
    tracing::info!(listen = %server_cfg.listen, admin = %server_cfg.admin_listen, tls = server_cfg.tls.is_some(), "datamind-gateway starting");
    server.run_forever()
}

/// For `Arc` users of the CLI in tests.
pub fn build_gateway(config: Config) -> Arc<Gateway> {
    Gateway::new(config, AccessLog::disabled())
}

/// The API listener, without Pingora's L4 buffers. By default Pingora puts a 64 KiB read
/// buffer and a 1,460-byte write buffer in front of every client socket. Our HTTP/1 codec
/// (`server/h1/conn.rs`) keeps its own read buffer and writes each head and body piece
/// whole, so those buffers only added a copy of every request and every small answer, and
/// LLM clients holding connections open for whole streams would pin 64 MiB per 1,000
/// streams. HTTP/2 (the `h2` crate) and TLS (rustls) buffer for themselves as well.
fn api_listener(addr: &str) -> ListenerConfig {
    ListenerConfig::tcp(addr).l4_buffer(L4BufferSettings::unbuffered())
}
