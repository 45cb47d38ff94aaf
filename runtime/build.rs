//! Builds the QuickJS guest (`guest-js/`) for `wasm32-wasip1` with a nested
//! cargo and hands its path and SHA-256 to the crate. The guest is never
//! committed as a binary: it is always built from source here.
//!
//! Needs what `scripts/setup.sh` installs (the wasm32-wasip1 target, Debian's
//! clang-19 and wasi-libc); the error message says so when they are missing.

use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let guest_dir = manifest_dir.join("../guest-js");
    let workspace_target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| manifest_dir.join("../target"));
    let guest_target = workspace_target.join("guest");

    for entry in ["src", "Cargo.toml", "Cargo.lock"] {
        println!("cargo:rerun-if-changed={}", guest_dir.join(entry).display());
    }

    let mut command = match std::env::var("RUSTUP_TOOLCHAIN") {
        // Under a nightly (cargo fuzz), build the guest with the stable
        // toolchain, which has the wasm32-wasip1 target installed.
        Ok(toolchain) if toolchain.contains("nightly") => {
            let mut command = Command::new("cargo");
            command
                .env("RUSTUP_TOOLCHAIN", "stable")
                .env_remove("RUSTC");
            command
        }
        _ => Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())),
    };
    command
        .current_dir(&guest_dir)
        .args([
            "build",
            "--release",
            "--locked",
            "--target",
            "wasm32-wasip1",
        ])
        .arg("--target-dir")
        .arg(&guest_target)
        // QuickJS is C: compile it with Debian's clang against Debian's wasi-libc
        // instead of a downloaded wasi-sdk (see ../shared/TOOLCHAIN.md).
        .env("RQUICKJS_SYS_NO_WASI_SDK", "1")
        .env("CC_wasm32_wasip1", "clang-19")
        .env("AR_wasm32_wasip1", "llvm-ar-19")
        .env("CFLAGS_wasm32_wasip1", "--target=wasm32-wasi")
        .env(
            "BINDGEN_EXTRA_CLANG_ARGS_wasm32_wasip1",
            "--target=wasm32-wasi",
        )
        .env("LIBCLANG_PATH", "/usr/lib/llvm-19/lib");
    // Flags meant for the host build must not leak into the wasm build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        command.env_remove(var);
    }
    let status = command.status().expect("running cargo for the guest");
    if !status.success() {
        panic!(
            "building the QuickJS guest (guest-js/) failed; run scripts/setup.sh first \
             (it installs the wasm32-wasip1 target, clang-19, lld-19 and wasi-libc)"
        );
    }

    let wasm = guest_target.join("wasm32-wasip1/release/valbox_guest.wasm");
    let bytes = std::fs::read(&wasm).expect("reading the built guest");
    let digest = Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env=VALBOX_GUEST_WASM={}", wasm.display());
    println!("cargo:rustc-env=VALBOX_GUEST_SHA256={hex}");
}
