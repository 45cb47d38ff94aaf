//! Helpers shared by the host's integration tests: free ports, waiting for a
//! process to listen, and child processes that are killed when dropped.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::net::TcpStream;
use std::process::Child;
use std::time::{Duration, Instant};

/// A child process, killed (and reaped) when dropped.
pub struct Process(pub Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An empty folder under the target dir for one test's data, with the
/// compiled guest image the CLI tests cached copied in (so the server
/// starts in milliseconds).
pub fn fresh_dir(name: &str) -> std::path::PathBuf {
    use std::path::Path;
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("cache")).unwrap();
    let shared_cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-data/cache");
    if let Ok(entries) = std::fs::read_dir(shared_cache) {
        for entry in entries.flatten() {
            let _ = std::fs::copy(entry.path(), dir.join("cache").join(entry.file_name()));
        }
    }
    dir
}

/// A TCP port nothing listens on right now, never handed out before in this
/// test process, and below the kernel's ephemeral range.
///
/// A port from `bind(0)` is not enough for a server started afterwards: two
/// tests running at once can be given the same port before either server
/// binds it (the one that loses then "starts" by answering on the other's
/// server, which later goes away mid-test), and a port in the ephemeral range
/// can become an outgoing connection's source port meanwhile. Ports below
/// that range, counted out one by one from a start that differs per process,
/// avoid both.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(32768);
    const LOWEST: u32 = 10_000;
    if ephemeral_start <= LOWEST + 1_000 {
        return std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
    }
    let span = ephemeral_start - LOWEST;
    let start = (u64::from(std::process::id()) * 7919 % u64::from(span)) as u32;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(n < span, "no free port left below the ephemeral range");
        let port = (LOWEST + (start + n) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// Where the server a test starts on `port` logs (see [`server_log`]).
fn server_log_path(port: u16) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("server-logs")
        .join(format!("{port}.log"))
}

/// A file for the stderr (the log) of the server a test starts on `port`,
/// under the target dir: when the test loses its server, [`connect`] says
/// what the server last logged.
pub fn server_log(port: u16) -> std::fs::File {
    let path = server_log_path(port);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::File::create(path).unwrap()
}

/// A connection to the server on `port`; when there is none, the panic
/// says what that server last logged.
pub fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| {
        let tail = match std::fs::read_to_string(server_log_path(port)) {
            Ok(log) => {
                let lines: Vec<&str> = log.lines().collect();
                lines[lines.len().saturating_sub(20)..].join("\n")
            }
            Err(_) => "(no log kept for this port)".into(),
        };
        panic!("connecting to the server on port {port}: {e}; its log ends with:\n{tail}")
    })
}

/// Waits (up to a minute) until something accepts connections on `port`.
pub fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A Redis for one test: its URL, and the server when this test started it.
pub fn redis(database: u8) -> (String, Option<Process>) {
    if let Ok(url) = std::env::var("VALBOX_TEST_REDIS_URL") {
        let url = format!("{}/{database}", url.trim_end_matches('/'));
        let mut connection = redis::Client::open(url.as_str())
            .unwrap()
            .get_connection()
            .unwrap();
        redis::cmd("FLUSHDB").query::<()>(&mut connection).unwrap();
        return (url, None);
    }
    let port = free_port();
    let server = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server is installed (scripts/setup.sh installs it)");
    let server = Process(server);
    wait_for_port(port, "redis-server");
    (format!("redis://127.0.0.1:{port}/{database}"), Some(server))
}

/// The admin key the tests start servers with.
pub const ADMIN: &str = "test-admin-key";

/// A JSON client of one running `valbox serve` (one connection per request).
pub struct Http {
    /// Where it listens on 127.0.0.1.
    pub port: u16,
}

impl Http {
    /// A request with a JSON body; the answer's status and JSON (`null` when
    /// the body is not JSON).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let (status, text) = self.raw(method, path, key, body);
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    /// Like [`Http::call`], with the answer's body as text.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> (u16, String) {
        use std::io::{Read, Write};
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = connect(self.port);
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        );
        if let Some(key) = key {
            head.push_str(&format!("Authorization: Bearer {key}\r\n"));
        }
        stream
            .write_all(format!("{head}\r\n{body}").as_bytes())
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, body.to_string())
    }

    /// Creates a user with the admin key and returns their API key.
    pub fn user(&self, handle: &str) -> String {
        let (status, body) = self.call(
            "POST",
            "/v1/users",
            Some(ADMIN),
            Some(serde_json::json!({"handle": handle, "email": format!("{handle}@example.com")})),
        );
        assert_eq!(status, 201, "{body}");
        body["api_key"].as_str().unwrap().to_string()
    }
}

/// Reads the key's user's secrets `s0..s{count}` through `/v1/eval`, as one array.
pub fn read_secrets(http: &Http, key: &str, count: usize) -> serde_json::Value {
    let reads: Vec<String> = (0..count).map(|n| format!("@me.secrets.s{n}")).collect();
    let code = format!("[{}]", reads.join(","));
    let (status, answer) = http.call(
        "POST",
        "/v1/eval",
        Some(key),
        Some(serde_json::json!({ "code": code })),
    );
    assert_eq!(status, 200, "{answer}");
    answer
}

/// Starts `valbox serve` on a free port with `dir` as its data dir and
/// `extra` arguments, and waits until it accepts connections.
pub fn serve_with(dir: &std::path::Path, extra: &[&str]) -> (Process, Http) {
    let port = free_port();
    let process = Process(
        std::process::Command::new(env!("CARGO_BIN_EXE_valbox"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .env("VALBOX_DATA_DIR", dir)
            .env("VALBOX_ADMIN_KEY", ADMIN)
            .stderr(server_log(port))
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, "valbox serve");
    (process, Http { port })
}

/// Saves `code` as the key's val `name` with `privacy`, which must succeed.
pub fn save_val(http: &Http, key: &str, name: &str, privacy: &str, code: &str) {
    let (status, body) = http.call(
        "PUT",
        &format!("/v1/vals/{name}"),
        Some(key),
        Some(serde_json::json!({"code": code, "privacy": privacy})),
    );
    assert_eq!(status, 200, "{body}");
}
