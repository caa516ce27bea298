use clap::Parser;

use super::*;

#[test]
fn passwords_are_redacted() {
    assert_eq!(
        redact_url("postgres://flo:secret@127.0.0.1/db"),
        "postgres://flo:***@127.0.0.1/db"
    );
    assert_eq!(redact_url("sqlite:///x/y.db"), "sqlite:///x/y.db");
}

#[test]
fn flag_beats_file_beats_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:6000\"\ndata_dir = \"/tmp/x\"\ncors_allowed_origins = [\"https://a.example\"]\n",
    )
    .unwrap();
    let mut args = ServeArgs::default();
    args.common.config = Some(file.clone());
    let s = Settings::resolve_serve(&args).unwrap();
    assert_eq!(s.listen.port(), 6000);
    assert_eq!(s.data_dir, PathBuf::from("/tmp/x"));
    assert_eq!(s.database_url, "sqlite:///tmp/x/flotilla.db");
    assert_eq!(s.cors_allowed_origins, vec!["https://a.example"]);
    args.listen = Some("127.0.0.1:7000".parse().unwrap());
    assert_eq!(Settings::resolve_serve(&args).unwrap().listen.port(), 7000);

    std::fs::write(&file, "listne = \"127.0.0.1:1\"\n").unwrap();
    assert!(
        Settings::resolve_serve(&args).is_err(),
        "typo must be refused"
    );
    std::fs::write(
        &file,
        "peer_rate_limit_per_second = 2.0\npeer_rate_limit_burst = 7.0\naudit_retention_days = 3\n",
    )
    .unwrap();
    let mut plain = ServeArgs::default();
    plain.common.config = Some(file.clone());
    let s = Settings::resolve_serve(&plain).unwrap();
    assert_eq!(
        s.peer_rate_limit,
        Some(crate::auth::rate::RateLimit {
            per_second: 2.0,
            burst: 7.0
        })
    );
    assert_eq!(s.audit_retention, Some(Duration::from_secs(3 * 86_400)));
    plain.peer_rate_limit = Some(0.0);
    plain.audit_retention_days = Some(0);
    let s = Settings::resolve_serve(&plain).unwrap();
    assert_eq!((s.peer_rate_limit, s.audit_retention), (None, None));
    let defaults = Settings::for_data_dir(Path::new("/tmp/d"));
    assert!(defaults.peer_rate_limit.is_some());
    assert_eq!(
        defaults.audit_retention,
        Some(Duration::from_secs(90 * 86_400))
    );
    std::fs::write(&file, "cors_allowed_origins = [\"*\"]\n").unwrap();
    assert!(
        Settings::resolve_serve(&args).is_err(),
        "wildcard must be refused"
    );
}

#[test]
fn console_flag_beats_file_beats_default() {
    let serve = |argv: &[&str]| match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Command::Serve(args),
        }) => Settings::resolve_serve(&args),
        other => panic!("{argv:?} parsed as {other:?}"),
    };
    assert!(
        serve(&["flotilla", "serve"]).unwrap().console,
        "on by default"
    );
    assert!(
        !serve(&["flotilla", "serve", "--console=false"])
            .unwrap()
            .console
    );
    assert!(serve(&["flotilla", "serve", "--console"]).unwrap().console);
    assert!(
        Cli::try_parse_from(["flotilla", "serve", "--console=maybe"]).is_err(),
        "not a boolean"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.toml");
    std::fs::write(&file, "console = false\n").unwrap();
    let config = file.to_str().unwrap();
    assert!(
        !serve(&["flotilla", "serve", "--config", config])
            .unwrap()
            .console
    );
    assert!(
        serve(&["flotilla", "serve", "--config", config, "--console=true"])
            .unwrap()
            .console,
        "the flag beats the file"
    );
}

#[test]
fn outbound_lists_from_file_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f.toml");
    std::fs::write(
        &file,
        "outbound_deny = [\"127.0.0.9/32\", \"10.0.0.0/8\"]\noutbound_allow = [\"10.1.0.0/16\"]\n",
    )
    .unwrap();
    let mut args = ServeArgs::default();
    args.common.config = Some(file);
    let s = Settings::resolve_serve(&args).unwrap();
    assert_eq!(s.outbound.deny.len(), 2);
    assert_eq!(s.outbound.allow, vec!["10.1.0.0/16".parse().unwrap()]);
    args.outbound_deny = vec!["127.0.0.8".into()];
    let s = Settings::resolve_serve(&args).unwrap();
    assert_eq!(s.outbound.deny, vec!["127.0.0.8/32".parse().unwrap()]);
    args.outbound_deny = vec!["not-a-cidr".into()];
    assert!(Settings::resolve_serve(&args).is_err(), "bad CIDR refused");
}
