package flotilla

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/flotilla-dev/flotilla/clients/go/gen/flotilla/v1"
)

// Version is this client's version; it leads the user agent it sends.
const Version = "0.1.0"

// TokenEnv is the environment variable Dial reads the API token from when WithToken is not given.
const TokenEnv = "FLOTILLA_TOKEN"

// Client holds one connection to a Flotilla server and a stub for each of its services.
// It is safe for concurrent use; Close it when done.
type Client struct {
	Admin       pb.AdminServiceClient
	Agents      pb.AgentServiceClient
	Clusters    pb.ClusterServiceClient
	Credentials pb.CredentialServiceClient
	Logs        pb.LogStreamClient
	Nodes       pb.NodeServiceClient
	Operations  pb.OperationServiceClient
	Registries  pb.RegistryServiceClient
	Workloads   pb.WorkloadServiceClient

	conn *grpc.ClientConn
}

type settings struct {
	token       string
	tokenSet    bool
	insecure    bool
	tlsConfig   *tls.Config
	caFile      string
	caPEM       []byte
	userAgent   string
	retry       *RetryPolicy
	dialOptions []grpc.DialOption
}

// Option configures Dial.
type Option func(*settings)

// WithToken sends this API token as "authorization: Bearer <token>" on every call, instead of
// the one in $FLOTILLA_TOKEN. An empty token sends none.
func WithToken(token string) Option {
	return func(s *settings) { s.token, s.tokenSet = token, true }
}

// WithInsecure dials without TLS. The server only accepts plaintext on loopback unless it was
// started with --insecure-listen; the token then crosses the network in clear text, so use this
// for local development and tests only.
func WithInsecure() Option {
	return func(s *settings) { s.insecure = true }
}

// WithCAFile trusts the CA certificates in this PEM file (in addition to none: the system roots
// are not used once a CA is given), for servers whose certificate a private CA signed.
func WithCAFile(path string) Option {
	return func(s *settings) { s.caFile = path }
}

// WithCAPEM trusts the CA certificates in these PEM bytes, like WithCAFile.
func WithCAPEM(pem []byte) Option {
	return func(s *settings) { s.caPEM = pem }
}

// WithTLSConfig uses this TLS configuration (client certificates for mutual TLS, a custom
// server name...). WithCAFile and WithCAPEM add their roots to a clone of it.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(s *settings) { s.tlsConfig = cfg }
}

// WithUserAgent prepends this product token (such as "deploy-pipeline/2.3") to the user agent,
// so the server's audit log tells callers apart.
func WithUserAgent(ua string) Option {
	return func(s *settings) { s.userAgent = ua }
}

// WithRetryPolicy replaces DefaultRetryPolicy.
func WithRetryPolicy(p RetryPolicy) Option {
	return func(s *settings) { s.retry = &p }
}

// WithoutRetries turns the retry policy off: every call is sent exactly once.
func WithoutRetries() Option {
	return func(s *settings) { s.retry = &RetryPolicy{MaxAttempts: 1} }
}

// WithDialOptions passes extra options to grpc.NewClient (they come after Flotilla's own).
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(s *settings) { s.dialOptions = append(s.dialOptions, opts...) }
}

// Dial returns a client of the Flotilla server at addr ("host:port", or any grpc-go target).
// By default it speaks TLS verified against the system roots, sends the token in $FLOTILLA_TOKEN
// and retries read calls that fail with UNAVAILABLE (see RetryPolicy). Like grpc.NewClient it
// does not connect until the first call.
func Dial(addr string, opts ...Option) (*Client, error) {
	s := settings{}
	for _, opt := range opts {
		opt(&s)
	}
	if !s.tokenSet {
		s.token = os.Getenv(TokenEnv)
	}

	var transport credentials.TransportCredentials
	if s.insecure {
		if s.tlsConfig != nil || s.caFile != "" || s.caPEM != nil {
			return nil, errors.New("flotilla: WithInsecure cannot be combined with TLS options")
		}
		transport = insecure.NewCredentials()
	} else {
		cfg, err := s.buildTLS()
		if err != nil {
			return nil, err
		}
		transport = credentials.NewTLS(cfg)
	}

	ua := "flotilla-go/" + Version
	if s.userAgent != "" {
		ua = s.userAgent + " " + ua
	}
	policy := DefaultRetryPolicy
	if s.retry != nil {
		policy = *s.retry
	}
	dial := []grpc.DialOption{
		grpc.WithTransportCredentials(transport),
		grpc.WithUserAgent(ua),
		grpc.WithChainUnaryInterceptor(policy.UnaryClientInterceptor()),
	}
	if s.token != "" {
		dial = append(dial, grpc.WithPerRPCCredentials(bearerToken{token: s.token, requireTLS: !s.insecure}))
	}
	dial = append(dial, s.dialOptions...)

	conn, err := grpc.NewClient(addr, dial...)
	if err != nil {
		return nil, fmt.Errorf("flotilla: dialing %s: %w", addr, err)
	}
	return NewClient(conn), nil
}

// NewClient wraps a connection you made yourself (with your own credentials and interceptors).
// Closing the returned client closes conn.
func NewClient(conn *grpc.ClientConn) *Client {
	return &Client{
		Admin:       pb.NewAdminServiceClient(conn),
		Agents:      pb.NewAgentServiceClient(conn),
		Clusters:    pb.NewClusterServiceClient(conn),
		Credentials: pb.NewCredentialServiceClient(conn),
		Logs:        pb.NewLogStreamClient(conn),
		Nodes:       pb.NewNodeServiceClient(conn),
		Operations:  pb.NewOperationServiceClient(conn),
		Registries:  pb.NewRegistryServiceClient(conn),
		Workloads:   pb.NewWorkloadServiceClient(conn),
		conn:        conn,
	}
}

// Conn is the underlying connection, for stubs of other services on the same server (health,
// reflection).
func (c *Client) Conn() *grpc.ClientConn { return c.conn }

// Close closes the connection; calls in flight fail with CANCELED.
func (c *Client) Close() error { return c.conn.Close() }

func (s *settings) buildTLS() (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.tlsConfig != nil {
		cfg = s.tlsConfig.Clone()
	}
	pem := s.caPEM
	if s.caFile != "" {
		b, err := os.ReadFile(s.caFile)
		if err != nil {
			return nil, fmt.Errorf("flotilla: reading CA file: %w", err)
		}
		pem = append(append([]byte{}, pem...), b...)
	}
	if pem != nil {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("flotilla: the CA PEM holds no certificate")
		}
		cfg.RootCAs = pool
	}
	// A nil RootCAs means the system roots.
	return cfg, nil
}

// bearerToken sends the API token on every call.
type bearerToken struct {
	token      string
	requireTLS bool
}

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearerToken) RequireTransportSecurity() bool { return b.requireTLS }

// String keeps the token out of logs and %v of the options.
func (b bearerToken) String() string { return "bearerToken{***}" }
