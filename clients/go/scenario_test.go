package flotilla_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	flotilla "github.com/flotilla-dev/flotilla/clients/go"
	"github.com/flotilla-dev/flotilla/clients/go/examples"
	pb "github.com/flotilla-dev/flotilla/clients/go/gen/flotilla/v1"
)

const deploymentYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: example.com/web:1}
`

// TestLiveScenario runs the scenario against the live server and the test control
// plane, through the README's examples: import the test cluster, page through clusters and
// nodes, apply a Deployment, follow its pod's logs, scale it and watch for the scale event,
// decode a bad request's details, and create an ACK cluster at the simulator and wait for it.
func TestLiveScenario(t *testing.T) {
	top := t
	env := loadLiveEnv(t)
	t.Setenv("FLOTILLA_TOKEN", env.get(t, "FLOTILLA_TOKEN"))
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	c, err := examples.Connect(env.get(t, "FLOTILLA_ADDR"), true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() }) // registered first, so it runs after the other cleanups

	suffix := fmt.Sprintf("%x", time.Now().UnixNano())
	ns := "go-client-" + suffix
	env.kubectl(t, "create", "namespace", ns)
	logsDir := filepath.Join(env.get(t, "FLOTILLA_KUBE_POD_LOGS"), ns)
	t.Cleanup(func() {
		_, _ = env.tryKubectl("delete", "namespace", ns, "--wait=false")
		_ = os.RemoveAll(logsDir)
	})

	clusterID := "go-" + suffix
	otherID := "go-" + suffix + "-b"
	t.Run("import", func(t *testing.T) {
		// The second control plane (its kubeconfig made self-contained) gives a second cluster
		// to page through; a kubeconfig of the same cluster twice is refused (same kube-system UID).
		second := filepath.Join(t.TempDir(), "kubeconfig-second")
		flat := env.kubectl(t, "--kubeconfig", env.get(t, "FLOTILLA_KUBE_KUBECONFIG_SECOND"), "config", "view", "--raw", "--flatten", "--minify")
		if err := os.WriteFile(second, []byte(flat), 0o600); err != nil {
			t.Fatal(err)
		}
		for id, kubeconfig := range map[string]string{clusterID: env.get(t, "FLOTILLA_TEST_KUBECONFIG"), otherID: second} {
			var cluster *pb.Cluster
			// Another language's suite on the same server may hold the import for a moment.
			pollUntil(t, "the test cluster to be free to import", 90*time.Second, func() bool {
				cluster, err = examples.ImportCluster(ctx, c, id, kubeconfig)
				return flotilla.Code(err) != codes.AlreadyExists
			})
			if err != nil {
				t.Fatalf("import %s: %v", id, err)
			}
			top.Cleanup(func() { deleteCluster(top, c, id) }) // after every subtest
			if cluster.GetId() != id {
				t.Fatalf("imported %q, want %q", cluster.GetId(), id)
			}
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("page through clusters", func(t *testing.T) {
		first, err := c.Clusters.ListClusters(ctx, &pb.ListClustersRequest{PageSize: 1})
		if err != nil || first.GetNextPageToken() == "" {
			t.Fatalf("a one-cluster page of at least two: token %q, err %v", first.GetNextPageToken(), err)
		}
		var ids []string
		for cluster, err := range c.AllClusters(ctx, &pb.ListClustersRequest{PageSize: 1}) {
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, cluster.GetId())
		}
		if !slices.Contains(ids, clusterID) || !slices.Contains(ids, otherID) {
			t.Fatalf("paged through %v, missing our clusters", ids)
		}
		if len(slices.Compact(slices.Sorted(slices.Values(ids)))) != len(ids) {
			t.Fatalf("paged through %v: each cluster exactly once", ids)
		}
	})

	t.Run("page through nodes", func(t *testing.T) {
		nodes, err := examples.ListNodes(ctx, c, clusterID)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, n := range nodes {
			got = append(got, n.GetName())
		}
		want := strings.Fields(env.kubectl(t, "get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"))
		slices.Sort(got)
		slices.Sort(want)
		if len(want) < 3 || !slices.Equal(got, want) {
			t.Fatalf("nodes %v, the API server has %v (page size 2: more than one page)", got, want)
		}
	})

	t.Run("apply a Deployment", func(t *testing.T) {
		if err := examples.ApplyManifest(ctx, c, clusterID, ns, deploymentYAML); err != nil {
			t.Fatal(err)
		}
		image := env.kubectl(t, "-n", ns, "get", "deployment", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
		if image != "example.com/web:1" {
			t.Fatalf("the API server has the Deployment with image %q", image)
		}
	})
	if t.Failed() {
		t.FailNow()
	}

	t.Run("follow a pod's logs", func(t *testing.T) {
		pod := scheduledPod(t, env, ns)
		logFile := wirePodLogs(t, env, ns, pod, logsDir)
		marker := "written-during-the-test-" + suffix
		found := make(chan string, 1)
		errs := make(chan error, 1)
		go func() {
			line, err := examples.FollowPodLogs(ctx, c, clusterID, ns, pod, marker)
			if err != nil {
				errs <- err
				return
			}
			found <- line
		}()
		// The line is written after the stream opened; written again until it arrives, since
		// the stream may still be connecting when the first copy lands.
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(60 * time.Second)
		for {
			appendFile(t, logFile, criLine("stdout", marker))
			select {
			case line := <-found:
				if line != marker {
					t.Fatalf("line %q, want %q", line, marker)
				}
				return
			case err := <-errs:
				t.Fatalf("FollowPodLogs: %v", err)
			case <-deadline:
				t.Fatal("the line written during the test never arrived")
			case <-tick.C:
			}
		}
	})

	t.Run("scale and watch the scale event", func(t *testing.T) {
		type result struct {
			ev  *pb.Event
			err error
		}
		done := make(chan result, 1)
		go func() {
			ev, err := examples.WaitForEvent(ctx, c, clusterID, ns, func(ev *pb.Event) bool {
				return ev.GetReason() == "ScalingReplicaSet" && ev.GetInvolvedObject().GetName() == "web" &&
					strings.Contains(ev.GetMessage(), "to 2")
			})
			done <- result{ev, err}
		}()
		_, err := c.Workloads.ScaleWorkload(ctx, &pb.ScaleWorkloadRequest{
			ClusterId: clusterID, Namespace: ns, Kind: pb.WorkloadKind_WORKLOAD_KIND_DEPLOYMENT, Name: "web", Replicas: 2,
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := env.kubectl(t, "-n", ns, "get", "deployment", "web", "-o", "jsonpath={.spec.replicas}"); got != "2" {
			t.Fatalf("the API server has %s replicas", got)
		}
		var r result
		select {
		case r = <-done:
		case <-time.After(60 * time.Second):
			t.Fatal("no scale event within 60 s")
		}
		if r.err != nil {
			t.Fatal(r.err)
		}
		uids := env.kubectl(t, "-n", ns, "get", "events", "--field-selector", "reason=ScalingReplicaSet",
			"-o", "jsonpath={.items[*].metadata.uid}")
		if r.ev.GetUid() == "" || !strings.Contains(uids, r.ev.GetUid()) {
			t.Fatalf("event %s (%q) is not among the API server's scale events %q", r.ev.GetUid(), r.ev.GetMessage(), uids)
		}
	})

	t.Run("error details of a bad request", func(t *testing.T) {
		_, err := c.Workloads.ScaleWorkload(ctx, &pb.ScaleWorkloadRequest{
			ClusterId: clusterID, Namespace: ns, Kind: pb.WorkloadKind_WORKLOAD_KIND_DEPLOYMENT, Name: "web", Replicas: -1,
		})
		if flotilla.Code(err) != codes.InvalidArgument {
			t.Fatalf("replicas -1: %v, want INVALID_ARGUMENT", err)
		}
		violations := flotilla.FieldViolations(err)
		if len(violations) == 0 || violations[0].Field != "replicas" || violations[0].Description == "" {
			t.Fatalf("violations %+v, want the field replicas with a description", violations)
		}
		if msg := examples.DescribeError(err); !strings.Contains(msg, "field replicas") {
			t.Fatalf("DescribeError: %q", msg)
		}

		_, err = c.Clusters.GetCluster(ctx, &pb.GetClusterRequest{ClusterId: "no-such-" + suffix})
		d, ok := flotilla.Details(fmt.Errorf("looking up: %w", err))
		if !ok || d.Code != codes.NotFound || d.Reason != "NOT_FOUND" || d.Domain != flotilla.ErrorDomain ||
			d.Metadata["id"] != "no-such-"+suffix {
			t.Fatalf("details %+v of %v", d, err)
		}
	})

	// The simulated ACK cluster hands out the test control plane's kubeconfig, and Flotilla keeps
	// one cluster per kube-system UID: release the imports first.
	deleteCluster(t, c, clusterID)
	deleteCluster(t, c, otherID)
	t.Run("create an ACK cluster and wait", func(t *testing.T) {
		credID := "go-ack-" + suffix
		_, err := c.Credentials.CreateCredential(ctx, &pb.CreateCredentialRequest{
			CredentialId: credID, Provider: "ack",
			Secret: &pb.CredentialSecret{Secret: &pb.CredentialSecret_AccessKey{AccessKey: &pb.AccessKeySecret{
				AccessKeyId:     env.get(t, "FLOTILLA_SIM_ACK_ACCESS_KEY_ID"),
				AccessKeySecret: env.get(t, "FLOTILLA_SIM_ACK_ACCESS_KEY_SECRET"),
			}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = c.Credentials.DeleteCredential(context.Background(), &pb.DeleteCredentialRequest{CredentialId: credID})
		})
		before := env.simClusters(t, "ACK")
		id := "go-ack-" + suffix
		cluster, err := examples.CreateACKCluster(ctx, c, id, &pb.ClusterSpec{
			Region:            env.get(t, "FLOTILLA_SIM_ACK_REGION"),
			CredentialId:      credID,
			KubernetesVersion: env.get(t, "FLOTILLA_SIM_ACK_KUBERNETES_VERSION"),
			ProviderConfig: &pb.ClusterSpec_Ack{Ack: &pb.AckClusterConfig{
				ClusterType: env.get(t, "FLOTILLA_SIM_ACK_CLUSTER_TYPE"),
				ClusterSpec: env.get(t, "FLOTILLA_SIM_ACK_CLUSTER_SPEC"),
			}},
		})
		t.Cleanup(func() { destroyCluster(t, c, id) })
		if err != nil {
			t.Fatal(examples.DescribeError(err))
		}
		// The simulator's own state, not Flotilla's answer, says the cluster was made and runs.
		vendorID := cluster.GetVendorClusterId()
		if vendorID == "" || slices.ContainsFunc(before, func(s simCluster) bool { return s.ID == vendorID }) {
			t.Fatalf("vendor cluster id %q: not a new cluster of the simulator", vendorID)
		}
		i := slices.IndexFunc(env.simClusters(t, "ACK"), func(s simCluster) bool { return s.ID == vendorID })
		if i < 0 {
			t.Fatalf("the simulator has no cluster %s", vendorID)
		}
		if state := env.simClusters(t, "ACK")[i].State; state != "running" {
			t.Fatalf("the simulator's cluster %s is %q", vendorID, state)
		}
		if cluster.GetId() != id || cluster.GetState() != pb.ClusterState_CLUSTER_STATE_RUNNING {
			t.Fatalf("cluster %s is %v", cluster.GetId(), cluster.GetState())
		}
	})
}

// scheduledPod waits for the Deployment's pod to be bound to a node and returns its name.
func scheduledPod(t *testing.T, env liveEnv, ns string) string {
	var pod string
	pollUntil(t, "the Deployment's pod to be scheduled", 60*time.Second, func() bool {
		out, err := env.tryKubectl("-n", ns, "get", "pods", "-l", "app=web",
			"-o", "jsonpath={range .items[*]}{.metadata.name} {.spec.nodeName}{\"\\n\"}{end}")
		if err != nil {
			return false
		}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(line); len(f) == 2 {
				pod = f[0]
				return true
			}
		}
		return false
	})
	return pod
}

// wirePodLogs points KWOK's logs of the pod at a fresh CRI file (a kwok Logs object) and waits
// until the API server serves it (its previous log holds a marker line).
func wirePodLogs(t *testing.T, env liveEnv, ns, pod, dir string) string {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	logFile, previous := filepath.Join(dir, pod+".log"), filepath.Join(dir, pod+".previous.log")
	marker := "previous log of " + ns + "/" + pod
	if err := os.WriteFile(logFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(previous, []byte(criLine("stdout", marker)), 0o644); err != nil {
		t.Fatal(err)
	}
	manifest := fmt.Sprintf(`{"apiVersion":"kwok.x-k8s.io/v1alpha1","kind":"Logs","metadata":{"name":%q,"namespace":%q},
"spec":{"logs":[{"logsFile":%q,"previousLogsFile":%q,"follow":true}]}}`, pod, ns, logFile, previous)
	manifestFile := filepath.Join(t.TempDir(), "logs.json")
	if err := os.WriteFile(manifestFile, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	env.kubectl(t, "apply", "-f", manifestFile)
	pollUntil(t, "KWOK to serve the pod's logs", 60*time.Second, func() bool {
		out, err := env.tryKubectl("-n", ns, "logs", pod, "--previous")
		return err == nil && strings.Contains(out, marker)
	})
	return logFile
}

func deleteCluster(t *testing.T, c *flotilla.Client, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Clusters.DeleteCluster(ctx, &pb.DeleteClusterRequest{ClusterId: id}); err != nil && !flotilla.IsNotFound(err) {
		t.Errorf("deleting cluster %s: %v", id, err)
	}
}

// destroyCluster deletes a created cluster at the vendor too and waits for that operation; a
// cluster whose create is still running (the test failed early) is destroyed once it finished.
func destroyCluster(t *testing.T, c *flotilla.Client, id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := c.Clusters.DeleteCluster(ctx, &pb.DeleteClusterRequest{ClusterId: id, Destroy: true})
	if flotilla.Code(err) == codes.FailedPrecondition {
		got, getErr := c.Clusters.GetCluster(ctx, &pb.GetClusterRequest{ClusterId: id})
		if getErr == nil && got.GetCluster().GetLastOperationId() != "" {
			_, _ = c.WaitOperation(ctx, got.GetCluster().GetLastOperationId())
		}
		resp, err = c.Clusters.DeleteCluster(ctx, &pb.DeleteClusterRequest{ClusterId: id, Destroy: true})
	}
	if err != nil {
		if !flotilla.IsNotFound(err) {
			t.Errorf("destroying cluster %s: %v", id, err)
		}
		return
	}
	if opID := resp.GetOperation().GetId(); opID != "" {
		var opErr *flotilla.OperationError
		if _, err := c.WaitOperation(ctx, opID); err != nil && !errors.As(err, &opErr) {
			t.Errorf("waiting for the deletion of %s: %v", id, err)
		}
	}
}
