//! Email delivery through a real SMTP server (Debian's `python3-aiosmtpd`,
//! started here on a free port): `console.email` is stored, then sent to
//! the recipient's address with its subject and body; a server that
//! refuses (451) and later accepts gets it once it accepts, every attempt
//! with the same `Message-ID`.

mod common;

use common::{free_port, fresh_dir, wait_for_port, Http, Process, ADMIN};
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// An SMTP server that answers `451` to the first `refusals` messages and
/// accepts the rest; every message it sees is a JSON line in `log`.
fn smtp_server(port: u16, refusals: u32, log: &Path) -> Process {
    let script = r#"
import json, sys, time
from aiosmtpd.controller import Controller
port, refusals, log = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
class Handler:
    refusals = refusals
    async def handle_DATA(self, server, session, envelope):
        text = envelope.content.decode("utf-8", "replace")
        accepted = Handler.refusals <= 0
        Handler.refusals -= 1
        with open(log, "a") as f:
            f.write(json.dumps({"to": envelope.rcpt_tos, "from": envelope.mail_from,
                                "data": text, "accepted": accepted}) + "\n")
        return "250 OK" if accepted else "451 try again later"
Controller(Handler(), hostname="127.0.0.1", port=port).start()
while True:
    time.sleep(1)
"#;
    let server = Process(
        Command::new("/usr/bin/python3")
            .args(["-c", script, &port.to_string(), &refusals.to_string()])
            .arg(log)
            .stdout(Stdio::null())
            .spawn()
            .expect("python3 with aiosmtpd (scripts/setup.sh installs python3-aiosmtpd)"),
    );
    wait_for_port(port, "the SMTP server");
    server
}

fn messages(log: &Path) -> Vec<Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn header<'a>(message: &'a Value, name: &str) -> Option<&'a str> {
    message["data"].as_str()?.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

#[test]
fn console_email_is_delivered_once_the_server_accepts_it() {
    let dir = fresh_dir("email-delivery");
    let log = dir.join("smtp.jsonl");
    let smtp_port = free_port();
    let _smtp = smtp_server(smtp_port, 2, &log);
    let port = free_port();
    let _server = Process(
        Command::new(env!("CARGO_BIN_EXE_valbox"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--smtp-url", &format!("smtp://127.0.0.1:{smtp_port}")])
            .args(["--email-from", "valbox@example.org"])
            .env("VALBOX_DATA_DIR", &dir)
            .env("VALBOX_ADMIN_KEY", ADMIN)
            .stderr(common::server_log(port))
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, "valbox serve");
    let http = Http { port };
    let key = http.user("al");
    let (status, body) = http.call(
        "POST",
        "/v1/eval",
        Some(&key),
        Some(json!({"code": "console.email('Price alert', 'BTC crossed 100k'); return 'sent'"})),
    );
    assert_eq!((status, &body), (200, &json!("sent")), "{body}");
    let (_, emails) = http.call("GET", "/v1/emails", Some(&key), None);
    let stored = &emails["emails"][0];
    let message_id = stored["message_id"].as_str().unwrap().to_string();
    assert!(message_id.ends_with("@example.org>"), "{stored}");

    // Refused twice (451), then accepted: retried with backoff (2 s, 4 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    let seen = loop {
        let seen = messages(&log);
        if seen.iter().any(|m| m["accepted"] == true) {
            break seen;
        }
        assert!(Instant::now() < deadline, "never accepted: {seen:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(seen.len(), 3, "two refusals, then one accepted: {seen:?}");
    for message in &seen {
        assert_eq!(
            message["to"],
            json!(["al@example.com"]),
            "the recipient's own address"
        );
        assert_eq!(message["from"], "valbox@example.org");
        assert_eq!(header(message, "Subject"), Some("Price alert"));
        assert_eq!(
            header(message, "Message-ID"),
            Some(message_id.as_str()),
            "every attempt has the same Message-ID"
        );
        assert!(message["data"]
            .as_str()
            .unwrap()
            .contains("BTC crossed 100k"));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, emails) = http.call("GET", "/v1/emails", Some(&key), None);
        if emails["emails"][0]["delivery"] == "sent" {
            break;
        }
        assert!(Instant::now() < deadline, "{emails}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Accepted once: nothing more arrives.
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(messages(&log).len(), 3);
    let (_, metrics) = http.raw("GET", "/metrics", None, None);
    assert!(
        metrics.contains("valbox_emails_total{outcome=\"sent\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("valbox_emails_total{outcome=\"retried\"} 2"),
        "{metrics}"
    );
}

#[test]
fn without_an_smtp_server_emails_are_only_stored() {
    let dir = fresh_dir("email-stored");
    let port = free_port();
    let _server = Process(
        Command::new(env!("CARGO_BIN_EXE_valbox"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("VALBOX_DATA_DIR", &dir)
            .env("VALBOX_ADMIN_KEY", ADMIN)
            .stderr(common::server_log(port))
            .spawn()
            .unwrap(),
    );
    wait_for_port(port, "valbox serve");
    let http = Http { port };
    let key = http.user("al");
    let (status, _) = http.call(
        "POST",
        "/v1/eval",
        Some(&key),
        Some(json!({"code": "console.email('s', 'b')"})),
    );
    assert_eq!(status, 200);
    let (_, emails) = http.call("GET", "/v1/emails", Some(&key), None);
    assert_eq!(emails["emails"][0]["delivery"], "stored", "{emails}");
}
