//! Compiles `proto/flotilla/v1/*.proto` with the pure-Rust `protox` compiler (no system `protoc`)
//! and generates the tonic services. Also writes the descriptor set used by gRPC reflection.

use std::{env, fs, io, path::PathBuf};

/// Messages that carry secrets. Their `Debug` is written by hand (redacted) in `src/proto/redact.rs`.
const SECRET_MESSAGES: &[&str] = &[
    ".flotilla.v1.KubeconfigSource",
    ".flotilla.v1.TokenSource",
    ".flotilla.v1.AccessKeySecret",
    ".flotilla.v1.ApiKeySecret",
    ".flotilla.v1.UsernamePasswordSecret",
    ".flotilla.v1.RobotTokenSecret",
    ".flotilla.v1.CreateApiTokenResponse",
];

/// `google.rpc` files (vendored under proto/, see proto/README.md) added to the reflection
/// descriptor set: `google.rpc.Status` and the detail messages in it (ErrorInfo, BadRequest,
/// RetryInfo, ...).
const REFLECTED_GOOGLE_RPC: &[&str] =
    &["google/rpc/status.proto", "google/rpc/error_details.proto"];

fn main() -> io::Result<()> {
    let proto_dir = PathBuf::from("proto");
    let mut files: Vec<PathBuf> = fs::read_dir(proto_dir.join("flotilla/v1"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "proto"))
        .collect();
    files.sort();
    println!("cargo:rerun-if-changed=proto");

    let fds = protox::compile(&files, [&proto_dir]).map_err(io::Error::other)?;
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(io::Error::other)?);
    // Reflection also serves the google.rpc detail types our errors carry, so reflection clients
    // (grpcurl) decode them; no Rust code is generated for them (tonic-types has them).
    let reflected: Vec<PathBuf> = files
        .iter()
        .cloned()
        .chain(REFLECTED_GOOGLE_RPC.iter().map(|f| proto_dir.join(f)))
        .collect();
    let reflection_fds = protox::compile(&reflected, [&proto_dir]).map_err(io::Error::other)?;
    fs::write(
        out_dir.join("flotilla_descriptor.bin"),
        prost::Message::encode_to_vec(&reflection_fds),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .generate_default_stubs(true)
        .skip_debug(SECRET_MESSAGES.iter().copied())
        .codec_path("crate::proto::codec::ProstCodec")
        .compile_fds(fds)?;

    name_unimplemented_stubs(&out_dir.join("flotilla.v1.rs"))
}

/// The generated default stubs answer UNIMPLEMENTED with a bare "Not yet implemented". Rewrite
/// each message to name the RPC, so a caller knows exactly which call this server lacks.
fn name_unimplemented_stubs(path: &PathBuf) -> io::Result<()> {
    const STUB: &str = "tonic::Status::unimplemented(\"Not yet implemented\")";
    let code = fs::read_to_string(path)?;
    let mut out = String::with_capacity(code.len() + 8192);
    let mut service = String::new();
    let mut method = String::new();
    for line in code.lines() {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix("pub trait ") {
            service = rest
                .split([' ', ':'])
                .next()
                .unwrap_or_default()
                .to_string();
        }
        if let Some(rest) = trimmed.strip_prefix("async fn ") {
            method = camel_case(rest.split('(').next().unwrap_or_default());
        }
        if line.contains(STUB) {
            let named = format!(
                "tonic::Status::unimplemented(\"flotilla.v1.{service}/{method} is not implemented \
                 by this Flotilla server yet\")"
            );
            out.push_str(&line.replace(STUB, &named));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    fs::write(path, out)
}

fn camel_case(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}
