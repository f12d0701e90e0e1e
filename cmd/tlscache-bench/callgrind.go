package main

// The instruction-count mode: wall time per operation at a million
// sessions is bound by DRAM latency and by whatever else the machine runs,
// instruction counts are not. For each core operation and cache size, a
// child process fills a cache and runs the operation -ops times inside
// measuredOps, under valgrind's callgrind with collection on only there; the
// instructions per operation, and their growth from the smallest size to
// each larger one, are the flatness figure.
//
//	tlscache-bench -callgrind [-sizes 1000,1000000] [-ops 20000]

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/tlscache/tlscache/tlscache"
)

// callgrindOps are the measured operations: Add of a new handshake session
// into a full cache (so each one evicts), and Lookup of a cached one (in a
// cache with room, whose sessions were each looked up once before, so that
// the measured lookups only find).
var callgrindOps = []string{"add", "lookup"}

// opsChild is the child process: -opchild op -fill n -ops k.
func opsChild(op string, fill, ops int) {
	size := fill
	if op == "lookup" {
		size = fill + fill/7 + 8 // room: the first lookup of each session may promote it
	}
	cache := tlscache.New(noByteBudget(&tlscache.Options{MaxSessions: size}))
	ctx := make([]byte, 32)
	rand.Read(ctx)
	ids := make([]byte, 16*(fill+ops))
	rand.Read(ids)
	id := func(i int) []byte { return ids[16*i : 16*i+16 : 16*i+16] }
	state := make([]byte, 57)
	for i := range fill {
		cache.NewSession(tlscache.Server, &tlscache.Session{ID: id(i), IDContext: ctx, State: state})
	}
	if op == "lookup" {
		for i := range fill {
			cache.Lookup(id(i), ctx)
		}
	}
	// The operations' inputs are made before collection starts.
	sessions := make([]*tlscache.Session, ops)
	lookups := make([][]byte, ops)
	var seed [8]byte
	rand.Read(seed[:])
	r := binary.LittleEndian.Uint64(seed[:])
	for i := range ops {
		sessions[i] = &tlscache.Session{ID: id(fill + i), IDContext: ctx, State: state}
		r = r*6364136223846793005 + 1442695040888963407
		lookups[i] = id(int(r>>33) % fill)
	}
	n := measuredOps(cache, op, sessions, lookups, ctx)
	if n != ops {
		fatal(fmt.Errorf("tlscache-bench: %d of %d %s operations succeeded", n, ops, op))
	}
}

// measuredOps is where callgrind collects.
//
//go:noinline
func measuredOps(cache *tlscache.Cache, op string, sessions []*tlscache.Session, lookups [][]byte, ctx []byte) int {
	n := 0
	switch op {
	case "add":
		for _, s := range sessions {
			if cache.NewSession(tlscache.Server, s) {
				n++
			}
		}
	case "lookup":
		for _, id := range lookups {
			if cache.Lookup(id, ctx) != nil {
				n++
			}
		}
	}
	return n
}

var irRe = regexp.MustCompile(`(?m)^summary:\s+(\d+)`)

// runCallgrind is the instruction-count mode.
func runCallgrind(out *bufio.Writer, sizes []int, ops int) {
	self, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	if _, err := exec.LookPath("valgrind"); err != nil {
		fatal(fmt.Errorf("tlscache-bench: -callgrind needs valgrind: %w", err))
	}
	dir, err := os.MkdirTemp("", "tlscache-callgrind")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(out, "Instruction counts (valgrind --tool=callgrind, collected in measuredOps only), %d operations per run:\n\n", ops)
	fmt.Fprintf(out, "| operation | sessions | instructions/op | growth over %d |\n|---|---|---|---|\n", sizes[0])
	for _, op := range callgrindOps {
		var base float64
		for _, n := range sizes {
			file := filepath.Join(dir, fmt.Sprintf("%s-%d.out", op, n))
			cmd := exec.Command("valgrind", "--tool=callgrind", "--collect-atstart=no",
				"--toggle-collect=main.measuredOps", "--callgrind-out-file="+file,
				self, "-opchild", op, "-fill", strconv.Itoa(n), "-ops", strconv.Itoa(ops))
			// No GC cycles inside the window, and no preemption signals, which
			// valgrind handles badly.
			cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "GOGC=off", "GODEBUG=asyncpreemptoff=1")
			if b, err := cmd.CombinedOutput(); err != nil {
				fatal(fmt.Errorf("tlscache-bench: callgrind %s n=%d: %v\n%s", op, n, err, b))
			}
			b, err := os.ReadFile(file)
			if err != nil {
				fatal(err)
			}
			m := irRe.FindSubmatch(b)
			if m == nil {
				fatal(fmt.Errorf("tlscache-bench: no summary in %s", file))
			}
			ir, _ := strconv.ParseFloat(string(m[1]), 64)
			per := ir / float64(ops)
			if base == 0 {
				base = per
			}
			fmt.Fprintf(out, "| %s | %d | %.0f | %.2fx |\n", op, n, per, per/base)
			out.Flush()
		}
	}
}

// parseSizes parses a comma-separated list of counts.
func parseSizes(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			fatal(fmt.Errorf("tlscache-bench: bad size %q", f))
		}
		out = append(out, n)
	}
	return out
}
