// Command geniter writes iterators_gen.go: one iter.Seq2 method on flotilla.Client per List RPC
// of the flotilla.v1 services, read from the descriptors compiled into the generated package, so
// a List RPC added to proto/ gets its iterator at the next `go generate` (a test fails until then).
package main

import (
	"flag"
	"log"
	"os"

	"github.com/flotilla-dev/flotilla/clients/go/internal/services"
)

func main() {
	out := flag.String("out", "", "file to write (stdout when empty)")
	flag.Parse()
	src, err := services.Generate()
	if err != nil {
		log.Fatal(err)
	}
	if *out == "" {
		_, err = os.Stdout.Write(src)
	} else {
		err = os.WriteFile(*out, src, 0o644)
	}
	if err != nil {
		log.Fatal(err)
	}
}
