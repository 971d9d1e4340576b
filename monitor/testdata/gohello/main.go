// Command gohello is a Go hello world for the unwinder's tests
// (monitor/gohello_test.go): a Go program enters Go's runtime through
// runtime.rt0_go, which has no .pdata entry and wrong CFI.
//
// Build: GOOS=windows GOARCH=amd64 CGO_ENABLED=0 go build -o gohello.exe ./monitor/testdata/gohello
package main

import "fmt"

func main() { fmt.Println("hello from Go") }
