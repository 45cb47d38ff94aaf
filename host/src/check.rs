//! `valbox check`: the broken-call-site finder from the command line,
//! against a running server with the caller's key. It prints each broken
//! call site with its paths and suggested rewrites; the exit status says
//! whether any was found (0 none, 1 some, 2 the check failed).

use anyhow::{bail, Context};
use serde_json::Value;

/// Asks `server` for the call sites of the key's user and prints them
/// (`json`: the server's answer as it is). Returns the exit status.
pub fn check(server: &str, key: &str, all: bool, json: bool) -> anyhow::Result<i32> {
    let url = format!(
        "{}/v1/me/call-sites{}",
        server.trim_end_matches('/'),
        if all { "" } else { "?status=broken" }
    );
    let answer: Value = match ureq::get(&url)
        .set("authorization", &format!("Bearer {key}"))
        .call()
    {
        Ok(response) => response.into_json().context("reading the answer")?,
        Err(ureq::Error::Status(status, response)) => {
            let body: Value = response.into_json().unwrap_or_default();
            let message = body["error"]["message"].as_str().unwrap_or("no message");
            bail!("{url} answered {status}: {message}");
        }
        Err(error) => bail!("could not reach {url}: {error}"),
    };
    let sites = answer["call_sites"].as_array().cloned().unwrap_or_default();
    if json {
        println!("{}", serde_json::to_string_pretty(&answer)?);
    } else {
        print!("{}", describe(&sites));
    }
    Ok(i32::from(
        sites.iter().any(|site| site["status"] == "broken"),
    ))
}

/// The call sites as text, one block each.
fn describe(sites: &[Value]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let broken = sites.iter().filter(|s| s["status"] == "broken").count();
    for site in sites {
        let _ = writeln!(
            out,
            "{}@{}:{}:{}  {}  {}",
            site["val"].as_str().unwrap_or_default(),
            site["version"],
            site["line"],
            site["column"],
            site["callee"].as_str().unwrap_or_default(),
            site["status"].as_str().unwrap_or_default(),
        );
        for finding in site["findings"].as_array().into_iter().flatten() {
            let text = |field: &str| finding[field].as_str().unwrap_or_default().to_string();
            let _ = writeln!(out, "  {}", text("path"));
            let _ = writeln!(out, "    at {} ({})", text("at"), text("rule"));
            let _ = writeln!(out, "    {}", text("rule_text"));
            let _ = writeln!(out, "    fix: {}", text("suggestion"));
        }
        for note in site["cannot_tell"].as_array().into_iter().flatten() {
            let _ = writeln!(out, "  ? {}", note.as_str().unwrap_or_default());
        }
        for run in site["evidence"].as_array().into_iter().flatten() {
            let _ = writeln!(
                out,
                "  seen in evaluation {}: {} {}",
                run["evaluation"],
                if run["ok"] == true { "✓" } else { "❌" },
                run["error"].as_str().unwrap_or_default()
            );
        }
    }
    let _ = writeln!(
        out,
        "{broken} broken call site{} of {} listed",
        if broken == 1 { "" } else { "s" },
        sites.len()
    );
    out
}
