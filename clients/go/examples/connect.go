package examples

import (
	flotilla "github.com/flotilla-dev/flotilla/clients/go"
)

// Connect dials a Flotilla server. The API token comes from $FLOTILLA_TOKEN (or
// flotilla.WithToken); TLS is verified against the system roots (or flotilla.WithCAFile).
// Plaintext is for a development server on loopback only.
func Connect(addr string, plaintext bool) (*flotilla.Client, error) {
	opts := []flotilla.Option{flotilla.WithUserAgent("flotilla-examples/1.0")}
	if plaintext {
		opts = append(opts, flotilla.WithInsecure())
	}
	return flotilla.Dial(addr, opts...)
}
