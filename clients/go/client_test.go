package flotilla

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	pb "github.com/flotilla-dev/flotilla/clients/go/gen/flotilla/v1"
)

// headerEcho answers GetCluster with the caller's authorization and user-agent headers in the
// cluster's display name and labels.
type headerEcho struct {
	pb.UnimplementedClusterServiceServer
}

func (headerEcho) GetCluster(ctx context.Context, _ *pb.GetClusterRequest) (*pb.GetClusterResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	return &pb.GetClusterResponse{Cluster: &pb.Cluster{
		DisplayName: strings.Join(md.Get("authorization"), ","),
		Labels:      map[string]string{"user-agent": strings.Join(md.Get("user-agent"), ",")},
	}}, nil
}

func echoHeaders(t *testing.T, opts ...Option) (auth, ua string) {
	t.Helper()
	c := startFake(t, func(s *grpc.Server) { pb.RegisterClusterServiceServer(s, headerEcho{}) }, opts...)
	resp, err := c.Clusters.GetCluster(context.Background(), &pb.GetClusterRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetCluster().GetDisplayName(), resp.GetCluster().GetLabels()["user-agent"]
}

func TestTokenFromOptionOrEnvironment(t *testing.T) {
	t.Setenv(TokenEnv, "from-env")
	// startFake passes WithToken("") first; a later option wins.
	if auth, _ := echoHeaders(t, WithToken("from-option")); auth != "Bearer from-option" {
		t.Fatalf("authorization %q, want the option's token", auth)
	}
	if auth, _ := echoHeaders(t); auth != "" {
		t.Fatalf("WithToken(\"\") sends no token, got %q", auth)
	}
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	pb.RegisterClusterServiceServer(srv, headerEcho{})
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	c, err := Dial("passthrough:///fake", WithInsecure(),
		WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) })))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	resp, err := c.Clusters.GetCluster(context.Background(), &pb.GetClusterRequest{})
	if err != nil || resp.GetCluster().GetDisplayName() != "Bearer from-env" {
		t.Fatalf("without WithToken: %q %v, want $FLOTILLA_TOKEN", resp.GetCluster().GetDisplayName(), err)
	}
}

func TestUserAgentNamesTheCaller(t *testing.T) {
	_, ua := echoHeaders(t, WithUserAgent("deploy-pipeline/2.3"))
	if !strings.HasPrefix(ua, "deploy-pipeline/2.3 flotilla-go/"+Version) {
		t.Fatalf("user agent %q", ua)
	}
}

// selfSigned makes a CA-less server certificate for "localhost" and returns it with its PEM.
func selfSigned(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestTLSIsTheDefaultAndACAOptionTrustsAPrivateCA(t *testing.T) {
	cert, caPEM := selfSigned(t)
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})))
	pb.RegisterClusterServiceServer(srv, headerEcho{})
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	dialer := WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))

	call := func(opts ...Option) (*pb.GetClusterResponse, error) {
		c, err := Dial("passthrough:///localhost", append(opts, dialer, WithoutRetries())...)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return c.Clusters.GetCluster(ctx, &pb.GetClusterRequest{})
	}
	// The system roots do not know this certificate: the handshake fails.
	if _, err := call(WithToken("secret")); status.Code(err) != codes.Unavailable {
		t.Fatalf("an unknown certificate: %v, want UNAVAILABLE", err)
	}
	resp, err := call(WithToken("secret"), WithCAPEM(caPEM))
	if err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	if resp.GetCluster().GetDisplayName() != "Bearer secret" {
		t.Fatalf("the token over TLS: %q", resp.GetCluster().GetDisplayName())
	}
	if _, err := Dial("localhost:1", WithInsecure(), WithCAPEM(caPEM)); err == nil {
		t.Fatal("WithInsecure with a CA is a contradiction Dial refuses")
	}
}
