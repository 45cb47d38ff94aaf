//! The WIT world in `wit/valbox.wit` is the one contract between host and
//! guest. The guest is a core module, so this checks the mapping by hand:
//! every `host` function is a `valbox.*` import of the guest (and nothing
//! else is), and every `guest` function is an export.

use std::collections::BTreeSet;
use wasmparser::{Parser, Payload, TypeRef};

fn wit_functions(interface: &str) -> BTreeSet<String> {
    let wit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../wit/valbox.wit"))
        .expect("reading wit/valbox.wit");
    let start = wit
        .find(&format!("interface {interface} {{"))
        .unwrap_or_else(|| panic!("no interface {interface} in the WIT"));
    let body = &wit[start..];
    let body = &body[..body.find("\n}").expect("interface ends")];
    body.lines()
        .filter_map(|line| line.trim().split_once(": func("))
        .map(|(name, _)| name.to_string())
        .collect()
}

fn guest_imports_and_exports() -> (BTreeSet<String>, BTreeSet<String>) {
    let mut imports = BTreeSet::new();
    let mut exports = BTreeSet::new();
    for payload in Parser::new(0).parse_all(valbox_runtime::GUEST_WASM) {
        match payload.expect("the guest parses") {
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.unwrap();
                    if import.module == "valbox" {
                        assert!(matches!(import.ty, TypeRef::Func(_)));
                        imports.insert(import.name.to_string());
                    }
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    exports.insert(export.unwrap().name.to_string());
                }
            }
            _ => {}
        }
    }
    (imports, exports)
}

#[test]
fn every_host_function_in_the_wit_is_a_valbox_import_and_nothing_more() {
    let (imports, _) = guest_imports_and_exports();
    assert_eq!(imports, wit_functions("host"));
}

#[test]
fn every_guest_function_in_the_wit_is_exported() {
    let (_, exports) = guest_imports_and_exports();
    for function in wit_functions("guest") {
        assert!(
            exports.contains(&function),
            "guest does not export {function}"
        );
    }
}
