//! Compiles `proto/flotilla/v1/*.proto` with the pure-Rust `protox` compiler (no system `protoc`)
//! and generates the tonic services. Also writes the descriptor set used by gRPC reflection, and
//! the table of the browser console's files (console/dist) that `flotilla serve` embeds.

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
    ".flotilla.v1.RegisterAgentResponse",
    ".flotilla.v1.CreateAgentRegistrationResponse",
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
        // Tunnel data is passed on, never parsed: `Bytes` hands it on without copying.
        .bytes(".flotilla.v1.TunnelFrame.data")
        // Written by hand (src/proto/list_responses.rs): they can carry entries encoded before.
        .extern_path(
            ".flotilla.v1.ListClustersResponse",
            "crate::proto::ListClustersResponse",
        )
        .extern_path(
            ".flotilla.v1.ListPodsResponse",
            "crate::proto::ListPodsResponse",
        )
        .compile_fds(fds)?;

    name_unimplemented_stubs(&out_dir.join("flotilla.v1.rs"))?;
    embed_console(&out_dir)
}

/// The console's built files (console/dist, committed; see scripts/console-check), one
/// `ConsoleFile` each in `$OUT_DIR/console_files.rs`, sorted by path, with a gzip copy when that
/// is smaller. The gzip copies are made here by the system's `gzip` (an essential package on
/// Debian; no compression crate is in the build): without it the console is served
/// uncompressed, with a warning.
fn embed_console(out_dir: &std::path::Path) -> io::Result<()> {
    let dist = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(io::Error::other)?)
        .join("console/dist");
    println!("cargo:rerun-if-changed=console/dist");
    let mut files = Vec::new();
    if dist.is_dir() {
        list_files(&dist, &mut files)?;
    } else {
        println!(
            "cargo:warning=console/dist is missing: the console is not served (build it with \
             `cd console && npm ci && npx vite build`)"
        );
    }
    files.sort();
    let gzip_dir = out_dir.join("console-gzip");
    let mut table = String::from("&[\n");
    for file in &files {
        let relative = file
            .strip_prefix(&dist)
            .map_err(io::Error::other)?
            .to_str()
            .ok_or_else(|| io::Error::other(format!("{} is not UTF-8", file.display())))?;
        let body = fs::read(file)?;
        let gzip = match gzipped(file, &body) {
            Some(packed) => {
                let target = gzip_dir.join(format!("{relative}.gz"));
                if let Some(parent) = target.parent() {
                    fs::create_dir_all(parent)?;
                }
                fs::write(&target, packed)?;
                format!("Some(include_bytes!({:?}))", target.display().to_string())
            }
            None => "None".to_string(),
        };
        table.push_str(&format!(
            "    ConsoleFile {{ path: {:?}, body: include_bytes!({:?}), gzip: {gzip} }},\n",
            format!("/{relative}"),
            file.display().to_string()
        ));
    }
    table.push_str("]\n");
    fs::write(out_dir.join("console_files.rs"), table)
}

fn list_files(dir: &std::path::Path, files: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            list_files(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

/// `gzip -9 -n` of a file worth compressing (not already-compressed images and fonts), when the
/// result is smaller.
fn gzipped(file: &std::path::Path, body: &[u8]) -> Option<Vec<u8>> {
    const PACKED: &[&str] = &[
        "png", "jpg", "jpeg", "gif", "webp", "avif", "woff", "woff2", "gz",
    ];
    let extension = file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    if PACKED.contains(&extension) {
        return None;
    }
    let output = match std::process::Command::new("gzip")
        .args(["-9", "-n", "-c"])
        .arg(file)
        .output()
    {
        Ok(output) if output.status.success() => output.stdout,
        Ok(output) => {
            println!(
                "cargo:warning=gzip {} failed ({}): served uncompressed",
                file.display(),
                output.status
            );
            return None;
        }
        Err(err) => {
            println!("cargo:warning=no gzip ({err}): the console is served uncompressed");
            return None;
        }
    };
    (output.len() < body.len()).then_some(output)
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
