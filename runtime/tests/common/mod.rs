//! Helpers shared by the integration tests: one sandbox per test binary
//! (its compiled image cached in the target folder), vals put into a
//! `MemoryWorld`, and code run as a user's own.
// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};
use std::time::Instant;
use valbox_runtime::{
    Arguments, Frame, Invocation, MemoryWorld, Outcome, Sandbox, SandboxConfig, World,
};

/// The sandbox of this test binary, with default settings.
pub fn sandbox() -> &'static Sandbox {
    static SANDBOX: OnceLock<Sandbox> = OnceLock::new();
    SANDBOX.get_or_init(|| Sandbox::new(config()).expect("the sandbox starts"))
}

/// Default settings with the compiled image cached in the target folder.
pub fn config() -> SandboxConfig {
    SandboxConfig {
        cache_dir: Some(env!("CARGO_TARGET_TMPDIR").into()),
        ..SandboxConfig::default()
    }
}

/// Compiles `source` and saves it as a new version of `owner.name`.
pub fn put(world: &MemoryWorld, owner: &str, name: &str, public: bool, source: &str) {
    let bytecode = sandbox()
        .compile(&format!("{owner}/{name}.js"), source)
        .unwrap_or_else(|e| panic!("{owner}.{name} compiles: {e}"));
    world.put_val(owner, name, public, bytecode);
}

/// Runs `body` (an async function body) as `user`'s own code in `sandbox`.
pub fn run_with(
    sandbox: &Sandbox,
    world: &Arc<MemoryWorld>,
    user: Option<&str>,
    body: &str,
) -> Outcome {
    let source = format!("export default async function () {{ {body} }}");
    let bytecode = sandbox
        .compile("eval.js", &source)
        .expect("the driver compiles");
    sandbox.run(
        world.clone() as Arc<dyn World>,
        Invocation {
            frame: Frame::own(user, Instant::now() + sandbox.config().deadline),
            target: "eval".into(),
            bytecode: &bytecode,
            export: "default",
            args: Arguments::Json("[]"),
            payer: None,
        },
    )
}

/// Runs `body` as `user`'s own code in this binary's sandbox.
pub fn run(world: &Arc<MemoryWorld>, user: Option<&str>, body: &str) -> Outcome {
    run_with(sandbox(), world, user, body)
}
