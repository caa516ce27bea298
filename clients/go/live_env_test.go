package flotilla_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// liveEnv is the harness `scripts/client-env up` wrote: a flotilla server, the vendor
// simulators and the test control plane.
type liveEnv map[string]string

// loadLiveEnv reads the env file from $FLOTILLA_CLIENT_ENV, else <repo>/target/client-env/env.
// Without it the live tests fail (go test -short skips them): a suite that silently skips its
// scenario proves nothing.
func loadLiveEnv(t *testing.T) liveEnv {
	t.Helper()
	if testing.Short() {
		t.Skip("live scenario skipped in -short mode")
	}
	path := os.Getenv("FLOTILLA_CLIENT_ENV")
	if path == "" {
		path = filepath.Join("..", "..", "target", "client-env", "env")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("the live harness is not up (run scripts/client-env up, or set FLOTILLA_CLIENT_ENV): %v", err)
	}
	defer f.Close()
	env := liveEnv{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && !strings.HasPrefix(k, "#") {
			env[strings.TrimSpace(k)] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return env
}

func (e liveEnv) get(t *testing.T, key string) string {
	t.Helper()
	v, ok := e[key]
	if !ok || v == "" {
		t.Fatalf("the harness env file has no %s", key)
	}
	return v
}

// kubectl runs the test control plane's kubectl: the expected answers come from the API server,
// not from the client under test.
func (e liveEnv) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.tryKubectl(args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (e liveEnv) tryKubectl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e["KUBECTL"], append([]string{"--kubeconfig", e["KUBECONFIG"]}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// simClusters is the simulator's own list of clusters (GET <control url>/clusters).
func (e liveEnv) simClusters(t *testing.T, vendor string) []simCluster {
	t.Helper()
	url := e.get(t, "FLOTILLA_SIM_"+vendor+"_CONTROL_URL") + "/clusters"
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	var body struct {
		Clusters []simCluster `json:"clusters"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return body.Clusters
}

type simCluster struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Version string `json:"version"`
}

// criLine is one line of a CRI container log file, as KWOK serves pod logs from.
func criLine(stream, content string) string {
	return fmt.Sprintf("%s %s F %s\n", time.Now().UTC().Format(time.RFC3339Nano), stream, content)
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
}

// pollUntil calls cond every 200 ms until it returns true or the timeout passes.
func pollUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
