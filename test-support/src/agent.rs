//! `flotilla agent` as a child process for tests and benchmarks of import by agent: it reaches
//! the test control plane with `$KUBECONFIG` (the server under test has no access of its own to
//! that cluster) and reports what it forwarded in a counters file read from here.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

/// A running agent; killed when dropped.
pub struct AgentProcess {
    child: Option<Child>,
    binary: PathBuf,
    server_url: String,
    dir: PathBuf,
    kubeconfig: PathBuf,
}

/// What the agent's counters file says.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgentCounters {
    pub forwarded_requests: u64,
    pub response_bytes: u64,
    pub sessions: u64,
}

impl AgentProcess {
    /// Starts `binary agent` against `server_url`, registering with the token in `token`
    /// (written to a file in `dir`, where the credential and counters files go too).
    pub fn start(
        binary: &Path,
        server_url: &str,
        token: &str,
        dir: &Path,
        kubeconfig: &Path,
    ) -> AgentProcess {
        std::fs::write(dir.join("registration-token"), token).expect("write token file");
        let mut agent = AgentProcess {
            child: None,
            binary: binary.to_path_buf(),
            server_url: server_url.to_string(),
            dir: dir.to_path_buf(),
            kubeconfig: kubeconfig.to_path_buf(),
        };
        agent.spawn();
        agent
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("agent.log"))
            .expect("agent log");
        let child = Command::new(&self.binary)
            .arg("agent")
            .args(["--server", &self.server_url])
            .arg("--token-file")
            .arg(self.dir.join("registration-token"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--credential-file")
            .arg(self.dir.join("credential.json"))
            .arg("--counters-file")
            .arg(self.counters_path())
            .args(["--server-timeout", "10", "--log-filter", "info"])
            .env_remove("FLOTILLA_LOG")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the agent");
        self.child = Some(child);
    }

    fn counters_path(&self) -> PathBuf {
        self.dir.join("counters.json")
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The agent's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default()
    }

    pub fn counters(&self) -> AgentCounters {
        let Ok(text) = std::fs::read_to_string(self.counters_path()) else {
            return AgentCounters::default();
        };
        let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let n = |key: &str| json.get(key).and_then(|v| v.as_u64()).unwrap_or(0);
        AgentCounters {
            forwarded_requests: n("forwarded_requests"),
            response_bytes: n("response_bytes"),
            sessions: n("sessions"),
        }
    }

    /// The counters once the file has caught up (it is rewritten every 100 ms).
    pub async fn settled_counters(&self) -> AgentCounters {
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.counters()
    }

    /// Kills the agent (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the agent again with what it kept (the credential file).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts the agent again with what it kept, dialing `server_url` (another replica).
    pub fn restart_towards(&mut self, server_url: &str) {
        self.kill();
        self.server_url = server_url.to_string();
        self.spawn();
    }

    /// Freezes (SIGSTOP) or thaws (SIGCONT) the agent: a frozen agent keeps its connection
    /// open but answers nothing, as a hung one would.
    pub fn signal(&self, signal: &str) {
        if let Some(pid) = self.pid() {
            let status = Command::new("kill")
                .args([&format!("-{signal}"), &pid.to_string()])
                .status()
                .expect("kill");
            assert!(status.success(), "kill -{signal} {pid}");
        }
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.signal("CONT");
        self.kill();
    }
}
