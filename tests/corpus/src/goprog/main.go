// Command goprog is the corpus's Go program, built for windows/amd64: it
// runs goroutines joined by a sync.WaitGroup, passes work over channels,
// recovers a panic (a nil map write and an explicit one), and prints
// with fmt. Its output does not depend on scheduling.
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
)

func worker(id int, jobs <-chan int, results chan<- [2]int, wg *sync.WaitGroup) {
	defer wg.Done()
	for j := range jobs {
		results <- [2]int{j, j * j * id / id}
	}
}

func safeDiv(a, b int) (q int, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("recovered: %v", r)
		}
	}()
	return a / b, nil
}

func nilMap() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("recovered: %v", r)
		}
	}()
	var m map[string]int
	//lint:ignore SA5000 the program panics on purpose, to test recover under the debugger
	m["x"] = 1
	return nil
}

type custom struct{ code int }

func explicit() (got any) {
	defer func() { got = recover() }()
	panic(custom{code: 7})
}

var errBase = errors.New("base failure")

func main() {
	jobs := make(chan int)
	results := make(chan [2]int, 100)
	var wg sync.WaitGroup
	for w := 1; w <= 4; w++ {
		wg.Add(1)
		go worker(w, jobs, results, &wg)
	}
	for i := 1; i <= 50; i++ {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	close(results)
	var got [][2]int
	sum := 0
	for r := range results {
		got = append(got, r)
		sum += r[1]
	}
	sort.Slice(got, func(i, j int) bool { return got[i][0] < got[j][0] })
	fmt.Printf("results %d, sum of squares %d, first %v, last %v\n", len(got), sum, got[0], got[len(got)-1])

	var mu sync.Mutex
	counter := 0
	var wg2 sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			for i := 0; i < 1000; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
		}()
	}
	wg2.Wait()
	fmt.Println("counter", counter)

	done := make(chan string)
	go func() {
		//lint:ignore S1000 the program exercises select (a runtime path the debugger steps through)
		select {
		case done <- "selected":
		}
	}()
	fmt.Println(<-done)

	q, err := safeDiv(10, 0)
	fmt.Println("safeDiv:", q, err)
	fmt.Println("nilMap:", nilMap())
	fmt.Printf("explicit: %#v\n", explicit())

	wrapped := fmt.Errorf("context: %w", errBase)
	fmt.Println(wrapped, errors.Is(wrapped, errBase))
	fmt.Println(strings.Repeat("=", 10), strings.ToUpper("go on windows"), fmt.Sprintf("%08.3f|%x|%q", 3.14159, 255, "hi"))
	fmt.Println("args:", os.Args[1:])
	if v, ok := os.LookupEnv("CORPUS_GO_UNSET"); ok {
		fmt.Println("unexpected", v)
	}
	os.Setenv("CORPUS_GO", "set by the program")
	fmt.Println("env:", os.Getenv("CORPUS_GO"))
	os.Exit(3)
}
