//! Error positions point at the user's code as written (SPEC §7): syntax
//! errors at the offending token, as Node and Deno place them, and runtime
//! stacks unshifted by the `@` transform — on the same line as a
//! reference, in a template literal, after a multi-line comment.

mod common;

use common::{put, sandbox};
use std::sync::Arc;
use std::time::Instant;
use valbox_runtime::{Arguments, Frame, Invocation, MemoryWorld, SandboxError, World};

/// `(line, column)` of compiling `source`, which must fail.
fn syntax_error(source: &str) -> (u32, u32) {
    match sandbox().compile("se.js", source) {
        Err(SandboxError::Compile(error)) => (error.line.unwrap(), error.column.unwrap()),
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

#[test]
fn syntax_errors_point_at_the_offending_token() {
    let cases = [
        (
            "export function se(x) {\n  const y = 1;\n  return x +;\n}\n",
            (3, 13),
        ),
        ("export function f( {", (1, 21)),
        (
            "export const f = () => {\n  const a = @me.a; const b = @bob.f(1) + ;\n}",
            (2, 42),
        ),
        (
            "export const f = () => {\n  const a = @me.a; const b = @bob.f(1) ++;\n}",
            (2, 30),
        ),
        ("export const t = `a\n${@me.x}` + ;", (2, 13)),
        (
            "/* one\n two @me.x */ export const c = @me.y + ) ;",
            (2, 40),
        ),
        ("export const s = api(@bob.f, 1) +\n  ;", (2, 3)),
    ];
    for (source, expected) in cases {
        assert_eq!(syntax_error(source), expected, "{source}");
    }
}

/// The stack of running `export` of `source` as alice, where `@me.o` is `{}`.
fn stack_of(source: &str) -> String {
    let world = Arc::new(MemoryWorld::new());
    put(&world, "alice", "o", false, "export default {}");
    let bytecode = sandbox().compile("alice/f.js", source).unwrap();
    let outcome = sandbox().run(
        world as Arc<dyn World>,
        Invocation {
            frame: Frame::own(Some("alice"), Instant::now() + sandbox().config().deadline),
            target: "@alice.f@1".into(),
            bytecode: &bytecode,
            export: "f",
            args: Arguments::Json("[]"),
            payer: None,
        },
    );
    match outcome.result {
        Err(SandboxError::Thrown(error)) => error.stack,
        other => panic!("expected a throw, got {other:?}"),
    }
}

#[test]
fn runtime_stacks_are_not_shifted_by_references() {
    // Each pair differs only in a reference against a plain name of the
    // same length: the frames must read the same.
    let pairs = [
        (
            "export function f() { const v = @me.o; throw new Error('boom') }",
            "export function f() { const v = _me_o; throw new Error('boom') }",
        ),
        (
            "export function f() {\n  const t = `${@me.o}${@me.o}`; throw new TypeError(t);\n}",
            "export function f() {\n  const t = `${_me_o}${_me_o}`; throw new TypeError(t);\n}",
        ),
        (
            "/* a\n   @me.o */ export function f() {\n  return [@me.o, g()];\n}\nfunction g() { const u = @me.o.z; throw new RangeError(u) }",
            "/* a\n   @me.o */ export function f() {\n  return [_me_o, g()];\n}\nfunction g() { const u = _me_o.z; throw new RangeError(u) }",
        ),
    ];
    for (with_reference, plain) in pairs {
        let plain = format!("const _me_o = {{}};\n{plain}");
        let with_reference = format!("const _me_o = {{}};\n{with_reference}");
        assert_eq!(
            stack_of(&with_reference),
            stack_of(&plain),
            "{with_reference}"
        );
    }
}
