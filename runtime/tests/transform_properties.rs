//! Properties of the `@` transform: code without references is untouched,
//! arbitrary input never panics, and valid programs stay valid.

mod common;

use common::sandbox;
use proptest::prelude::*;
use valbox_runtime::transform::transform;

/// Statements that are valid JavaScript on their own, some with references.
const SNIPPETS: &[&str] = &[
    "let a = 1 / 2;",
    "const s = 'a @b.c';",
    "const d = \"@me.secrets.x\";",
    "// @me.secrets.x",
    "/* @bob.f() */",
    "const t = `x ${1 + 2} @y ${`${'z'}`}`;",
    "const r = /@[a-z]+\\/x/gi;",
    "const v = @bob.config;",
    "const w = @bob.config@2;",
    "const k = @me.secrets.apiKey;",
    "@me.counter = 1;",
    "const called = @bob.add(1, 2);",
    "const viaApi = api(@bob.add, 1);",
    "const inTemplate = `${@bob.name}`;",
    "if (a) { const o = { x: 1 }; }",
    "const half = (a) / 2;",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn code_without_at_signs_comes_out_unchanged(source in "[a-z0-9 +*/\"'`${}()\\[\\];=\\n\\\\.-]{0,80}") {
        if let Ok(output) = transform(&source) {
            prop_assert_eq!(output, source);
        }
    }

    #[test]
    fn arbitrary_input_never_panics(source in "\\PC{0,120}") {
        let _ = transform(&source);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn valid_programs_stay_valid(picks in proptest::collection::vec(0..SNIPPETS.len(), 1..8)) {
        // Each statement in its own block, so declarations never clash.
        let body: Vec<String> = picks.iter().map(|i| format!("{{\n{}\n}}", SNIPPETS[*i])).collect();
        let source = format!(
            "let a = 0; export function f() {{\n{}\n}}",
            body.join("\n")
        );
        prop_assert!(sandbox().compile("p.js", &source).is_ok(), "did not compile:\n{}", source);
    }
}
