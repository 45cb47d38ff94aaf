//! The tagged value codec of library calls, inside real sandbox instances:
//! arbitrary text is decoded by `__vt.decode` (what a value val's module
//! runs) and whatever decodes is sent through a library call and back. Any
//! JavaScript error is fine; a trap, a host panic or a wrong round trip is not.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use valbox_runtime::{Arguments, Frame, Invocation, MemoryWorld, Sandbox, SandboxConfig, SandboxError, World};

struct Setup {
    sandbox: Sandbox,
    world: Arc<dyn World>,
    driver: Vec<u8>,
}

fn setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let sandbox = Sandbox::new(SandboxConfig {
            cache_dir: Some(std::env::temp_dir().join("valbox-fuzz-cache")),
            deadline: Duration::from_secs(2),
            ..SandboxConfig::default()
        })
        .unwrap();
        let world = MemoryWorld::new();
        let echo = "export function echo(value) { return value }";
        world.put_val("bob", "echo", true, sandbox.compile("echo.js", echo).unwrap());
        let driver = sandbox
            .compile(
                "driver.js",
                "export default function (text) {
                    let value;
                    try { value = __vt.decode(JSON.parse(text)) } catch (e) { return 'rejected' }
                    const back = @bob.echo(value);
                    const show = (v) => { try { return JSON.stringify(v) } catch (e) { return e.name } };
                    if (typeof value !== 'object' && !Object.is(back, value) && !(Number.isNaN(back) && Number.isNaN(value))) {
                        throw new Error('round trip changed a primitive');
                    }
                    return show(back) === show(value) ? 'same' : 'different';
                }",
            )
            .unwrap();
        Setup { sandbox, world: Arc::new(world), driver }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let setup = setup();
    let args = serde_json::json!([text]).to_string();
    let outcome = setup.sandbox.run(
        setup.world.clone(),
        Invocation {
            frame: Frame::own(Some("alice"), Instant::now() + Duration::from_secs(2)),
            target: "fuzz".into(),
            bytecode: &setup.driver,
            export: "default",
            args: Arguments::Json(&args),
        },
    );
    match outcome.result {
        Ok(result) => assert_ne!(result, "\"different\"", "round trip changed {text}"),
        Err(SandboxError::Thrown(error)) => assert_ne!(error.message, "round trip changed a primitive", "{text}"),
        Err(SandboxError::Limit(_)) | Err(SandboxError::Timeout(_)) => {}
        Err(other) => panic!("{text}: {other}"),
    }
});
