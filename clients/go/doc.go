// Package flotilla is the Go client of the Flotilla control plane. The generated messages and
// gRPC stubs are in github.com/flotilla-dev/flotilla/clients/go/gen/flotilla/v1 (package
// flotillav1), regenerated from proto/ by scripts/gen-clients.
//
// Dial returns a Client holding a stub per service and adds what every caller needs: the API
// token (WithToken or $FLOTILLA_TOKEN), TLS, a user agent, and a retry policy for reads that
// honours the server's RetryInfo. Client.All* iterate the List RPCs page by page,
// Client.WaitOperation follows a long-running operation to its end, Stream turns a server stream
// into a range-over-func sequence, and Details decodes the google.rpc details of an error.
package flotilla
