//! web-platform-tests inside the guest. Every `*.any.js` file vendored under
//! `tests/wpt/` (with its META scripts and data, and WPT's own
//! `resources/testharness.js`) runs in a fresh sandbox instance as one
//! classic script, behind `valbox-adapter.js` and `valbox-collect.js`.
//!
//! `tests/wpt/expectations.json` records each subtest's status. The test
//! fails when a subtest recorded as PASS does not pass (a regression), when
//! a file is missing from the expectations, or when the expectations name a
//! file that is not there. Run with `VALBOX_WPT_UPDATE=1` to rewrite the
//! expectations and `docs/wpt-failures.md` (every subtest that does not
//! pass, with its message) from this run. `VALBOX_WPT_FILTER=url/` runs the
//! files whose path contains that text.

use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;
use valbox_runtime::{CallBudgets, Sandbox, SandboxConfig};

/// Time a file's harness gets before it is timed out (inside the call).
const HARNESS_TIMEOUT_MS: u64 = 15_000;
/// The same for files marked `// META: timeout=long`.
const LONG_HARNESS_TIMEOUT_MS: u64 = 300_000;

fn wpt_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/wpt")
}

/// The wrapper module: evaluates the sources as one classic script and
/// answers with the collected results.
const RUNNER: &str = r#"
export default async function (source, wpt) {
  globalThis.__wpt = wpt;
  let error = null;
  try {
    (0, eval)(source);
  } catch (e) {
    error = ("the test file threw: " + (e && e.stack ? e.name + ": " + e.message : String(e))).toWellFormed();
  }
  if (error !== null && typeof globalThis.__wpt_done === "undefined") {
    return { harness: { status: 1, message: error }, tests: [] };
  }
  const results = await globalThis.__wpt_done;
  if (error !== null) results.harness = { status: 1, message: error };
  return results;
}
"#;

const STATUS: [&str; 5] = ["PASS", "FAIL", "TIMEOUT", "NOTRUN", "PRECONDITION_FAILED"];

/// Every `*.any.js` file under `tests/wpt`, as paths relative to it.
fn test_files() -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("reading tests/wpt") {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.to_string_lossy().ends_with(".any.js") {
                let relative = path.strip_prefix(root).unwrap();
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let root = wpt_dir();
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    files.sort();
    files
}

fn read(path: &str) -> String {
    std::fs::read_to_string(wpt_dir().join(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// What the META lines of a test say.
struct Meta {
    /// Scripts to run first, resolved against the test's folder or the WPT root.
    scripts: Vec<String>,
    /// `title=`.
    title: Option<String>,
    /// `timeout=long`.
    long: bool,
}

fn meta(file: &str, text: &str) -> Meta {
    let folder = Path::new(file).parent().unwrap_or(Path::new(""));
    let mut scripts = Vec::new();
    let mut title = None;
    let mut long = false;
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("//") else {
            continue;
        };
        let Some(meta) = rest.trim().strip_prefix("META:") else {
            continue;
        };
        let meta = meta.trim();
        if let Some(script) = meta.strip_prefix("script=") {
            let path = match script.strip_prefix('/') {
                Some(absolute) => PathBuf::from(absolute),
                None => normalize(&folder.join(script)),
            };
            scripts.push(path.to_string_lossy().into_owned());
        } else if let Some(t) = meta.strip_prefix("title=") {
            title = Some(t.to_string());
        } else if meta == "timeout=long" {
            long = true;
        }
    }
    Meta {
        scripts,
        title,
        long,
    }
}

fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The data files a test may fetch: every vendored JSON file whose name
/// its source (with its META scripts) mentions, keyed by its path.
fn resources(source: &str) -> Map<String, Value> {
    fn walk(dir: &Path, root: &Path, source: &str, map: &mut Map<String, Value>) {
        for entry in std::fs::read_dir(dir).expect("reading tests/wpt") {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, source, map);
            } else if path.extension().is_some_and(|e| e == "json")
                && source.contains(&*path.file_name().unwrap().to_string_lossy())
            {
                let key = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                let text = std::fs::read_to_string(&path).unwrap();
                map.insert(key, Value::String(text));
            }
        }
    }
    let root = wpt_dir();
    let mut map = Map::new();
    walk(&root, &root, source, &mut map);
    map.remove("expectations.json");
    map
}

/// Runs one file: subtest name → (status, message).
fn run_file(sandboxes: &Sandboxes, file: &str) -> BTreeMap<String, (String, String)> {
    let text = read(file);
    let Meta {
        scripts,
        title,
        long,
    } = meta(file, &text);
    let (sandbox, timeout_ms) = if long {
        (&sandboxes.long, LONG_HARNESS_TIMEOUT_MS)
    } else {
        (&sandboxes.normal, HARNESS_TIMEOUT_MS)
    };
    let mut source = String::new();
    for part in [
        "valbox-adapter.js",
        "resources/testharness.js",
        "valbox-collect.js",
    ] {
        source.push_str(&read(part));
        source.push_str("\n;\n");
    }
    for script in &scripts {
        source.push_str(&read(script));
        source.push_str("\n;\n");
    }
    source.push_str(&text);
    let wpt = json!({
        "path": file,
        "title": title,
        "resources": resources(&source),
        "timeout_ms": timeout_ms,
    });
    let args = json!([source, wpt]).to_string();
    let output = sandbox.call(&sandboxes.runner, "default", &args);
    let mut results = BTreeMap::new();
    let answer: Value = match output.result {
        Ok(text) => serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{file}: the runner's answer is not JSON ({e})")),
        Err(e) => {
            results.insert("(file)".to_string(), ("ERROR".to_string(), e.to_string()));
            return results;
        }
    };
    if answer["harness"]["status"].as_u64() != Some(0) {
        let message = answer["harness"]["message"].as_str().unwrap_or_default();
        let status = if answer["harness"]["status"].as_u64() == Some(2) {
            "TIMEOUT"
        } else {
            "ERROR"
        };
        results.insert(
            "(harness)".to_string(),
            (status.to_string(), message.to_string()),
        );
    }
    for test in answer["tests"].as_array().into_iter().flatten() {
        let mut name = test["name"].as_str().unwrap_or_default().to_string();
        let status = STATUS[test["status"].as_u64().unwrap_or(1).min(4) as usize].to_string();
        let message = test["message"].as_str().unwrap_or_default().to_string();
        if results.contains_key(&name) {
            let mut n = 2;
            while results.contains_key(&format!("{name} [{n}]")) {
                n += 1;
            }
            name = format!("{name} [{n}]");
        }
        results.insert(name, (status, message));
    }
    results
}

type Results = BTreeMap<String, BTreeMap<String, (String, String)>>;

/// A sandbox for ordinary files, one with a longer deadline for
/// `timeout=long` files, and the runner module's bytecode.
struct Sandboxes {
    normal: Sandbox,
    long: Sandbox,
    runner: Vec<u8>,
}

fn sandbox(harness_timeout_ms: u64) -> Sandbox {
    Sandbox::new(SandboxConfig {
        deadline: Duration::from_millis(harness_timeout_ms + 15_000),
        memory_limit: 512 << 20,
        max_args_bytes: 16 << 20,
        max_result_bytes: 16 << 20,
        max_log_bytes: 16 << 20,
        // A WPT file is one call tree that may make hundreds of (refused)
        // requests, as `request-bad-port.any.js` does; vals keep the
        // operator's budget.
        budgets: CallBudgets {
            fetches: 100_000,
            ..CallBudgets::default()
        },
        cache_dir: Some(env!("CARGO_TARGET_TMPDIR").into()),
        ..SandboxConfig::default()
    })
    .expect("the sandbox starts")
}

fn run_all(files: &[String]) -> Results {
    let normal = sandbox(HARNESS_TIMEOUT_MS);
    let runner = normal
        .compile("wpt-runner.js", RUNNER)
        .expect("the runner compiles");
    let sandboxes = Sandboxes {
        normal,
        long: sandbox(LONG_HARNESS_TIMEOUT_MS),
        runner,
    };
    let next = Mutex::new(0usize);
    let results = Mutex::new(Results::new());
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(4);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let index = {
                    let mut next = next.lock().unwrap();
                    let index = *next;
                    *next += 1;
                    index
                };
                let Some(file) = files.get(index) else { break };
                let outcome = run_file(&sandboxes, file);
                results.lock().unwrap().insert(file.clone(), outcome);
            });
        }
    });
    results.into_inner().unwrap()
}

#[test]
fn web_platform_tests_do_not_regress() {
    let filter = std::env::var("VALBOX_WPT_FILTER").unwrap_or_default();
    let update = std::env::var("VALBOX_WPT_UPDATE").is_ok_and(|v| v == "1");
    let files: Vec<String> = test_files()
        .into_iter()
        .filter(|f| f.contains(&filter))
        .collect();
    assert!(!files.is_empty(), "no WPT files match {filter:?}");
    let results = run_all(&files);

    let (mut passed, mut total) = (0, 0);
    for (file, subtests) in &results {
        let file_passed = subtests.values().filter(|(s, _)| s == "PASS").count();
        println!("{file}: {file_passed}/{}", subtests.len());
        passed += file_passed;
        total += subtests.len();
    }
    println!(
        "WPT: {passed} of {total} subtests pass ({:.1} %)",
        100.0 * passed as f64 / total.max(1) as f64
    );

    let expectations_path = wpt_dir().join("expectations.json");
    if update {
        write_expectations(&expectations_path, &results, filter.is_empty());
        return;
    }
    let expectations: BTreeMap<String, BTreeMap<String, String>> = serde_json::from_str(
        &std::fs::read_to_string(&expectations_path).expect("tests/wpt/expectations.json"),
    )
    .expect("expectations.json parses");
    let mut problems = Vec::new();
    if filter.is_empty() {
        for file in expectations.keys() {
            if !results.contains_key(file) {
                problems.push(format!("{file}: in expectations.json but not in tests/wpt"));
            }
        }
    }
    for (file, subtests) in &results {
        let Some(expected) = expectations.get(file) else {
            problems.push(format!(
                "{file}: not in expectations.json (run with VALBOX_WPT_UPDATE=1)"
            ));
            continue;
        };
        for (name, status) in expected {
            if status != "PASS" {
                continue;
            }
            match subtests.get(name) {
                Some((now, _)) if now == "PASS" => {}
                Some((now, message)) => {
                    problems.push(format!("{file}: {name:?} regressed to {now}: {message}"))
                }
                None => problems.push(format!("{file}: {name:?} passed before and did not run")),
            }
        }
        for (name, (now, _)) in subtests {
            if now == "PASS" && expected.get(name).is_some_and(|s| s != "PASS") {
                println!("newly passing (update the expectations): {file}: {name}");
            }
        }
    }
    assert!(
        problems.is_empty(),
        "WPT regressions:\n{}",
        problems.join("\n")
    );
}

/// Writes the expectations and the list of failures with their messages.
fn write_expectations(path: &Path, results: &Results, complete: bool) {
    let mut expectations: BTreeMap<String, BTreeMap<String, String>> = if complete {
        BTreeMap::new()
    } else {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|_| "{}".into()))
            .unwrap()
    };
    for (file, subtests) in results {
        expectations.insert(
            file.clone(),
            subtests
                .iter()
                .map(|(name, (status, _))| (name.clone(), status.clone()))
                .collect(),
        );
    }
    let mut text = serde_json::to_string_pretty(&expectations).unwrap();
    text.push('\n');
    std::fs::write(path, text).unwrap();
    if !complete {
        return;
    }
    let mut doc = String::from(
        "# web-platform-tests that do not pass\n\n\
         Written by `VALBOX_WPT_UPDATE=1 cargo test --release -p valbox-runtime --test wpt`\n\
         from the run that wrote `tests/wpt/expectations.json`; `docs/web-apis.md` explains\n\
         them by group. Each line: subtest, status, the harness's message.\n",
    );
    for (file, subtests) in results {
        let failing: Vec<_> = subtests.iter().filter(|(_, (s, _))| s != "PASS").collect();
        if failing.is_empty() {
            continue;
        }
        doc.push_str(&format!(
            "\n## {file} ({} of {})\n\n",
            failing.len(),
            subtests.len()
        ));
        for (name, (status, message)) in failing {
            let message: String = message
                .chars()
                .take(300)
                .collect::<String>()
                .replace('\n', " ");
            doc.push_str(&format!(
                "- `{}` — {status}: {}\n",
                name.replace('`', "'"),
                message.replace('`', "'")
            ));
        }
    }
    std::fs::write(wpt_dir().join("../../docs/wpt-failures.md"), doc).unwrap();
}
