// Package flotilla is the Go client of the Flotilla control plane. The generated messages and
// gRPC stubs are in github.com/flotilla-dev/flotilla/clients/go/gen/flotilla/v1 (package
// flotillav1), regenerated from proto/ by scripts/gen-clients.
package flotilla
