//! Databases for tests: a fresh SQLite file, or a fresh database on the real PostgreSQL that
//! `scripts/postgres up` started (URL in FLOTILLA_TEST_POSTGRES_URL).

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use flotilla::store::Store;

/// A store on a database that exists only for one test.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    drop_pg: Option<(String, String)>,
}

pub fn postgres_admin_url() -> String {
    std::env::var("FLOTILLA_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "FLOTILLA_TEST_POSTGRES_URL is not set. Start PostgreSQL with `scripts/postgres up` \
             and export the URL it prints (./scripts/test does both)."
        )
    })
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        let store = Store::open(&url).await.expect("open sqlite store");
        TestDb {
            store,
            url,
            _dir: Some(dir),
            drop_pg: None,
        }
    }

    /// Runs `sql` as another program would, on a connection of its own: the `sqlite3` tool, or
    /// a PostgreSQL session outside the store.
    pub async fn execute_elsewhere(&self, sql: &str) {
        if let Some(path) = self.url.strip_prefix("sqlite://") {
            sqlite(std::path::Path::new(path), sql);
            return;
        }
        let mut conn = AsyncPgConnection::establish(&self.url)
            .await
            .expect("connect to the test database");
        conn.batch_execute(sql).await.expect("run SQL");
    }

    pub async fn postgres() -> TestDb {
        let admin = postgres_admin_url();
        let name = format!("flotilla_t_{}", uuid::Uuid::new_v4().simple());
        let mut conn = AsyncPgConnection::establish(&admin)
            .await
            .expect("connect to the test PostgreSQL");
        conn.batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        let base = admin.rsplit_once('/').expect("database in URL").0;
        let url = format!("{base}/{name}");
        let store = Store::open(&url).await.expect("open postgres store");
        TestDb {
            store,
            url,
            _dir: None,
            drop_pg: Some((admin, name)),
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.drop_pg.take() else {
            return;
        };
        // Dropping runs outside the test's runtime; a short-lived thread and runtime do it.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                let dropped = match AsyncPgConnection::establish(&admin).await {
                    Ok(mut conn) => conn
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                if let Err(err) = dropped {
                    eprintln!("could not drop test database {name}: {err}");
                }
            });
        })
        .join();
    }
}

/// Runs SQL on a SQLite file with the `sqlite3` tool: rows of `|`-separated columns.
pub fn sqlite(db: &std::path::Path, sql: &str) -> Vec<String> {
    // The server writes beside us: wait for its lock like the server does (the CLI's default
    // is to fail at once with "database is locked").
    let out = std::process::Command::new("sqlite3")
        .args(["-cmd", ".timeout 10000"])
        .arg(db)
        .arg(sql)
        .output()
        .expect("run sqlite3");
    assert!(
        out.status.success(),
        "sqlite3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}
