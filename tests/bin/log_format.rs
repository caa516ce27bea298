//! The human log format is for people at a terminal: written to a file, it carries no colour
//! escape codes.

use std::process::{Command, Stdio};

#[test]
fn human_logs_written_to_a_file_have_no_escape_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("stderr.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let status = Command::new(env!("CARGO_BIN_EXE_flotilla"))
        .arg("migrate")
        .env("FLOTILLA_DATA_DIR", dir.path())
        .env("FLOTILLA_LOG", "info")
        .env("FLOTILLA_LOG_FORMAT", "human")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .status()
        .expect("run flotilla migrate");
    assert!(status.success(), "flotilla migrate failed: {status}");
    let bytes = std::fs::read(&log_path).expect("read the log");
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("migrations applied"),
        "the log has the line we look at: {text}"
    );
    assert!(
        !bytes.contains(&0x1b),
        "ESC byte in a log written to a file: {text:?}"
    );
}
