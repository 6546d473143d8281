//! Against a real `redis-server` (Debian package `redis-server`, installed by
//! `scripts/setup.sh`) started on a free loopback port and stopped by its PID.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::*;

pub(crate) struct Server {
    child: Child,
    pub(crate) port: u16,
}

impl Server {
    pub(crate) fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (scripts/setup.sh)");
        Self { child, port }
    }

    /// On a free port; waits until it accepts connections (retrying on a new port when
    /// another process took the one picked).
    pub(crate) fn start() -> Self {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .unwrap();
            let mut s = Self::start_on(port);
            if s.wait_listening() {
                return s;
            }
            s.kill();
        }
        panic!("could not start redis-server");
    }

    fn wait_listening(&mut self) -> bool {
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

pub(crate) fn config(port: u16) -> RedisConfig {
    crate::config::parse_str(
        &format!(
            r#"
server: {{ listen: "127.0.0.1:1", admin_listen: "127.0.0.1:2" }}
auth: {{ enabled: false }}
redis: {{ url: "redis://127.0.0.1:{port}", command_timeout_ms: 500, reconnect_max_ms: 200 }}
"#
        ),
        &|_| None,
    )
    .unwrap()
    .redis
    .unwrap()
}

#[tokio::test]
async fn serves_commands_fails_fast_when_down_and_reconnects() {
    let mut server = Server::start();
    let redis = Redis::start(&config(server.port)).unwrap();
    assert!(
        redis.wait_up(Duration::from_secs(5)).await,
        "never connected"
    );

    let key = redis.key("test", "t1", ":n");
    assert_eq!(key, "datamind:test:{t1}:n");
    let n: i64 = redis.query(redis::cmd("INCR").arg(&key)).await.unwrap();
    assert_eq!(n, 1);
    let script = redis::Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    let n: i64 = redis
        .call(|mut c| {
            let script = script.clone();
            let key = key.clone();
            async move { script.key(key).arg(5).invoke_async(&mut c).await }
        })
        .await
        .unwrap();
    assert_eq!(n, 6);
    // A command error is not a connection error.
    let wrong: Result<i64, _> = redis.query(redis::cmd("LPUSH").arg(&key).arg(1)).await;
    assert!(wrong.is_err());
    assert!(redis.is_up());

    server.kill();
    let mut down = redis.watch();
    let e = redis.query::<i64>(redis::cmd("INCR").arg(&key)).await;
    assert!(matches!(e, Err(GatewayError::RedisUnavailable(_))), "{e:?}");
    assert!(!redis.is_up());
    assert!(!*down.borrow_and_update());
    // Down: fails fast without touching the network.
    let started = std::time::Instant::now();
    assert!(
        redis
            .query::<i64>(redis::cmd("INCR").arg(&key))
            .await
            .is_err()
    );
    assert!(started.elapsed() < Duration::from_millis(100));

    let _server = Server::start_on(server.port);
    assert!(
        redis.wait_up(Duration::from_secs(10)).await,
        "never reconnected"
    );
    let n: i64 = redis.query(redis::cmd("INCR").arg(&key)).await.unwrap();
    assert_eq!(n, 1, "a fresh server starts empty");
}

#[test]
fn exactly_one_topology_and_urls_are_checked_without_echoing_them() {
    let yaml = r#"
server: { listen: "127.0.0.1:1", admin_listen: "127.0.0.1:2" }
auth: { enabled: false }
redis:
  url: "http://:hunter2@x"
  cluster: { nodes: [] }
  command_timeout_ms: 0
  key_prefix: "a{b}"
"#;
    let err = crate::config::parse_str(yaml, &|_| None)
        .unwrap_err()
        .to_string();
    for needle in [
        "redis: set exactly one of",
        "redis.url: must start with redis://",
        "redis.cluster.nodes: at least one seed node",
        "redis.command_timeout_ms: must be greater than 0",
        "redis.key_prefix: must not contain",
    ] {
        assert!(err.contains(needle), "missing {needle} in:\n{err}");
    }
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn targets_for_each_topology() {
    let base = |r: &str| {
        crate::config::parse_str(
            &format!(
                "server: {{ listen: \"127.0.0.1:1\", admin_listen: \"127.0.0.1:2\" }}\nauth: {{ enabled: false }}\nredis: {r}\n"
            ),
            &|_| None,
        )
        .unwrap()
        .redis
        .unwrap()
    };
    let s = base(r#"{ url: "redis://127.0.0.1:1/2", password: "pw" }"#);
    let t = Target::from_config(&s).unwrap();
    assert_eq!(t.kind(), "standalone");
    let Target::Standalone(info) = t else {
        unreachable!()
    };
    assert_eq!(info.redis_settings().password(), Some("pw"));
    assert_eq!(info.redis_settings().db(), 2);
    let s = base(r#"{ sentinel: { master_name: m, nodes: ["redis://127.0.0.1:26379"] } }"#);
    assert_eq!(Target::from_config(&s).unwrap().kind(), "sentinel");
    let s = base(r#"{ cluster: { nodes: ["redis://127.0.0.1:7000"] } }"#);
    assert_eq!(Target::from_config(&s).unwrap().kind(), "cluster");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// A three-master Redis Cluster on loopback (cluster config files in a temp dir).
pub(crate) struct Cluster {
    nodes: Vec<Child>,
    pub(crate) ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl Cluster {
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let nodes = ports
            .iter()
            .map(|p| {
                Command::new("redis-server")
                    .args(["--port", &p.to_string(), "--bind", "127.0.0.1"])
                    .args([
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--cluster-enabled",
                        "yes",
                    ])
                    .args(["--cluster-config-file", &format!("nodes-{p}.conf")])
                    .arg("--dir")
                    .arg(dir.path())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for p in &ports {
            wait_port(*p);
        }
        let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let c = Self {
            nodes,
            ports,
            _dir: dir,
        };
        for _ in 0..200 {
            let ok = c.ports.iter().all(|p| {
                Command::new("redis-cli")
                    .args(["-p", &p.to_string(), "cluster", "info"])
                    .output()
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
            });
            if ok {
                return c;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("cluster never became ok");
    }

    pub(crate) fn config(&self) -> RedisConfig {
        let nodes: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("\"redis://127.0.0.1:{p}\""))
            .collect();
        parse_redis(&format!(
            "{{ cluster: {{ nodes: [{}] }} }}",
            nodes.join(", ")
        ))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            let _ = n.kill();
            let _ = n.wait();
        }
    }
}

fn wait_port(port: u16) {
    for _ in 0..300 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("nothing listens on {port}");
}

fn parse_redis(block: &str) -> RedisConfig {
    crate::config::parse_str(
        &format!(
            "server: {{ listen: \"127.0.0.1:1\", admin_listen: \"127.0.0.1:2\" }}\nauth: {{ enabled: false }}\nredis: {block}\n"
        ),
        &|_| None,
    )
    .unwrap()
    .redis
    .unwrap()
}

#[tokio::test]
async fn sentinel_names_the_master() {
    let master = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let sport = free_port();
    let conf = dir.path().join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {sport}\nbind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {} 1\n",
            dir.path().display(),
            master.port
        ),
    )
    .unwrap();
    let mut sentinel = Command::new("redis-server")
        .arg(&conf)
        .arg("--sentinel")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(sport);
    let cfg = parse_redis(&format!(
        "{{ sentinel: {{ master_name: mymaster, nodes: [\"redis://127.0.0.1:{sport}\"] }} }}"
    ));
    let redis = Redis::start(&cfg).unwrap();
    let up = redis.wait_up(Duration::from_secs(10)).await;
    let port: Option<String> = if up {
        redis
            .query::<Vec<String>>(redis::cmd("CONFIG").arg("GET").arg("port"))
            .await
            .ok()
            .and_then(|v| v.get(1).cloned())
    } else {
        None
    };
    let _ = sentinel.kill();
    let _ = sentinel.wait();
    assert!(up, "never connected through the Sentinel");
    assert_eq!(
        port,
        Some(master.port.to_string()),
        "connected to the master"
    );
}
