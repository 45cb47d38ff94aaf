//! The `@` transform on arbitrary text: it never panics, code without `@`
//! comes out unchanged, and rewriting never changes the number of lines.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The transform is pure Rust with no dependencies: built straight from its
// source so fuzzing does not build wasmtime under the sanitizer.
#[path = "../../runtime/src/transform.rs"]
#[allow(dead_code)]
mod transform;
use transform::transform;

fuzz_target!(|data: &[u8]| {
    let Ok(source) = std::str::from_utf8(data) else { return };
    if let Ok(output) = transform(source) {
        if !source.contains('@') {
            assert_eq!(output, source);
        }
        assert_eq!(output.matches('\n').count(), source.matches('\n').count());
    }
});
