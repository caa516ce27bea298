// Package examples holds the README's examples, one file per task. The README includes each file
// verbatim and the live test suite (scenario_test.go) runs every one against a real server, so
// they cannot rot.
package examples
