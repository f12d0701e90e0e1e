// Command tlscache-bench runs tlscache's benchmarks side by side with the
// standard library's, in one process, and prints one table with ratios and
// the targets of issue 6:
//
//	go run ./cmd/tlscache-bench
//
// Every row runs -rounds times, the rounds interleaved so that a noisy
// machine slows all rows alike; the table shows each row's median. Rows
// that run at GOMAXPROCS 1 and 2 set it themselves. Flags:
//
//	-benchtime d    time per row and round (default 500ms)
//	-rounds n       rounds (default 5)
//	-run regexp     only the rows whose "section/name" matches
//	-growth list    cache sizes of the growth rows (default 1000,100000,1000000)
//	-cpuprofile f, -memprofile f   profiles of the whole run
//
// Two more modes are built for noisy machines: -procs runs real server
// processes (stdlib tickets, the adapter, and other builds given with
// -server) against a load client in this process and reads their CPU from
// /proc (procs.go); -callgrind counts the instructions of the core's
// operations at 1k and 1M sessions under valgrind (callgrind.go).
//
// Handshakes run over an in-memory pipe, client and server in this process,
// four client/server pairs per GOMAXPROCS: a row's cost is both sides' CPU. The adapter rows use the adapter on both
// sides (Server and ClientCache); the stdlib rows use stateless tickets and
// tls.NewLRUClientSessionCache. The Redis rows run on the Redis named by
// TLSCACHE_REDIS (host:port), through fleet and redisstore; unset, they are
// omitted. Nothing here runs under go test.
package main

import (
	"bufio"
	"cmp"
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

type row struct {
	section string
	name    string
	procs   int // GOMAXPROCS; 0 leaves it alone
	fn      func(*testing.B)

	// What the ratio column compares the row with: throughput ratio
	// base/row for speed rows, cost ratio row/base for growth rows.
	base     *row
	costBase bool

	res  []testing.BenchmarkResult
	skip string // why the row did not run
	ops  int    // operations per benchmark iteration; 0 means 1
}

// perOp divides a per-iteration figure by the row's operations per iteration.
func (r *row) perOp(x float64) float64 { return x / float64(max(r.ops, 1)) }

// atExit runs when the table is printed: backends clean up there.
var atExit []func()

func (r *row) key() string { return fmt.Sprintf("%s/%s/P%d", r.section, r.name, r.procs) }

// ns is the median ns/op over the rounds, 0 if the row has no result.
func (r *row) ns() float64 {
	var v []float64
	for _, res := range r.res {
		if res.N > 0 {
			v = append(v, r.perOp(float64(res.T.Nanoseconds())/float64(res.N)))
		}
	}
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func (r *row) last() testing.BenchmarkResult {
	for i := len(r.res) - 1; i >= 0; i-- {
		if r.res[i].N > 0 {
			return r.res[i]
		}
	}
	return testing.BenchmarkResult{}
}

// ratio is base/row for speed rows (above 1: faster than base) and row/base
// for growth rows (above 1: costlier than base); 0 when not available.
func (r *row) ratio() float64 {
	if r.base == nil || r.ns() == 0 || r.base.ns() == 0 {
		return 0
	}
	if r.costBase {
		return r.ns() / r.base.ns()
	}
	return r.base.ns() / r.ns()
}

func main() {
	fs := flag.NewFlagSet("tlscache-bench", flag.ExitOnError)
	benchtime := fs.String("benchtime", "500ms", "time per row and round")
	rounds := fs.Int("rounds", 5, "rounds; the table shows each row's median")
	runPat := fs.String("run", "", "only the rows whose section/name matches this regexp")
	growthList := fs.String("growth", "1000,100000,1000000", "cache sizes of the growth rows")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	memprofile := fs.String("memprofile", "", "write an allocation profile of the run to this file")
	procsMode := fs.Bool("procs", false, "the process mode: real server processes, CPU per handshake from /proc (see procs.go)")
	callgrindMode := fs.Bool("callgrind", false, "the instruction-count mode, under valgrind (see callgrind.go)")
	sizesFlag := fs.String("sizes", "", "cache sizes of -procs (default 20480,1000000) and -callgrind (default 1000,1000000)")
	tlsFlag := fs.String("tls", "13,12", "TLS versions of -procs, as 13 and 12 (or 0x0304; -serve takes one)")
	seconds := fs.Duration("seconds", 3*time.Second, "time per server and round of -procs")
	conns := fs.Int("conns", 4, "client connections at a time in -procs")
	var servers multiFlag
	fs.Var(&servers, "server", "name=path: another tlscache-bench binary whose adapter -procs runs too (repeatable)")
	example := fs.String("example", "", "path of an examples/https-server binary -procs runs too, or \"build\" to build one")
	ops := fs.Int("ops", 20000, "operations per -callgrind run")
	serveKind := fs.String("serve", "", "internal: be a -procs server of this kind (stdlib or adapter)")
	fill := fs.Int("fill", 0, "internal: sessions a -serve adapter or -opchild cache is filled with")
	opChild := fs.String("opchild", "", "internal: run one -callgrind operation")
	fs.Parse(os.Args[1:])

	versions := parseVersions(*tlsFlag)
	switch {
	case *serveKind != "":
		serve(*serveKind, versions[0], *fill)
		return
	case *opChild != "":
		opsChild(*opChild, *fill, *ops)
		return
	case *procsMode || *callgrindMode:
		out := bufio.NewWriter(os.Stdout)
		defer out.Flush()
		fmt.Fprintf(out, "tlscache-bench: %s, %s %s/%s, %d CPUs (%s)\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"),
			runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpuModel())
		if *procsMode {
			sizes := parseSizes(cmp.Or(*sizesFlag, "20480,1000000"))
			runProcs(out, servers, *example, sizes, versions, *rounds, *seconds, *conns)
		} else {
			runCallgrind(out, parseSizes(cmp.Or(*sizesFlag, "1000,1000000")), *ops)
		}
		return
	}

	testing.Init()
	if err := flag.Set("test.benchtime", *benchtime); err != nil {
		fatal(err)
	}
	match := regexp.MustCompile(*runPat)
	var sizes []int
	for _, f := range strings.Split(*growthList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			fatal(fmt.Errorf("bad -growth size %q", f))
		}
		sizes = append(sizes, n)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if *memprofile != "" {
		runtime.MemProfileRate = 4096
		defer func() {
			f, err := os.Create(*memprofile)
			if err != nil {
				fatal(err)
			}
			pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}()
	}

	start := time.Now()
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	maxProcs := runtime.GOMAXPROCS(0)
	fmt.Fprintf(out, "tlscache-bench: %s, %s %s/%s, %d CPUs (%s), GOMAXPROCS %d, -benchtime %s -rounds %d\n\n",
		start.UTC().Format("2006-01-02 15:04 MST"), runtime.Version(), runtime.GOOS, runtime.GOARCH,
		runtime.NumCPU(), cpuModel(), maxProcs, *benchtime, *rounds)
	out.Flush()

	benchCert, benchPool = newCert()
	caps := capture()
	rows := buildRows(caps)
	var selected []*row
	for _, r := range rows {
		if match.MatchString(r.section + "/" + r.name) {
			selected = append(selected, r)
		}
	}
	rows = selected // printed, with the reason for those that cannot run
	selected = nil
	for _, r := range rows {
		if r.skip == "" {
			selected = append(selected, r)
		}
	}
	progress := func(r *row, res testing.BenchmarkResult) {
		fmt.Fprintf(os.Stderr, "  %-60s %12.0f ns/op\n", r.key(), r.perOp(float64(res.T.Nanoseconds())/float64(max(res.N, 1))))
	}
	for round := range *rounds {
		fmt.Fprintf(os.Stderr, "round %d of %d\n", round+1, *rounds)
		for _, r := range selected {
			runtime.GOMAXPROCS(r.procs)
			res := testing.Benchmark(r.fn)
			r.res = append(r.res, res)
			progress(r, res)
		}
	}
	runtime.GOMAXPROCS(maxProcs)

	// Growth: one cache per size, alive only while its rows run.
	var growth []*row
	growthOps := []string{"Add (evicts)", "Lookup zipf", "Lookup uniform"}
	var base [3]*row
	for _, n := range sizes {
		var ops []*row
		for i, op := range growthOps {
			r := &row{section: "growth", name: fmt.Sprintf("%s n=%d", op, n), procs: 1, costBase: true}
			if base[i] == nil {
				base[i] = r
			}
			r.base = base[i]
			if match.MatchString(r.section + "/" + r.name) {
				ops = append(ops, r)
			}
		}
		if len(ops) == 0 {
			continue
		}
		g := newGrowthCache(n)
		for _, r := range ops {
			switch {
			case strings.HasPrefix(r.name, "Add"):
				r.fn = g.benchAdd
			case strings.HasPrefix(r.name, "Lookup zipf"):
				r.fn = g.benchLookup(true)
			default:
				r.fn = g.benchLookup(false)
			}
		}
		runtime.GOMAXPROCS(1)
		for round := range *rounds {
			fmt.Fprintf(os.Stderr, "growth n=%d round %d of %d\n", n, round+1, *rounds)
			for _, r := range ops {
				res := testing.Benchmark(r.fn)
				r.res = append(r.res, res)
				progress(r, res)
			}
		}
		runtime.GOMAXPROCS(maxProcs)
		growth = append(growth, ops...)
		g = nil
		runtime.GC()
	}

	var mem *memResult
	if match.MatchString("memory/") {
		m := measureMemory(caps.server, 100_000)
		mem = &m
	}

	for _, f := range atExit {
		f()
	}
	printTable(out, append(rows, growth...), mem, *rounds)
	printTargets(out, rows, growth, mem)
	fmt.Fprintf(out, "\n(ran %s)\n", time.Since(start).Round(time.Second))
}

// buildRows lists every row but growth, in table order.
func buildRows(caps captured) []*row {
	var rows []*row
	add := func(r *row) *row { rows = append(rows, r); return r }
	for _, v := range []struct {
		name string
		v    uint16
	}{{"TLS1.2", 0x0303}, {"TLS1.3", 0x0304}} {
		for _, procs := range []int{1, 2} {
			var full, stdlib *row
			for _, k := range handshakeKinds() {
				r := &row{section: "handshakes", name: v.name + " " + k.name, procs: procs}
				if srv, cli, skip := k.setup(v.v); skip != "" {
					r.skip = skip
				} else {
					r.fn = benchHandshakes(srv, cli, k.resume)
				}
				switch {
				case full == nil:
					full = r
				case stdlib == nil:
					stdlib, r.base = r, full
				default:
					r.base = stdlib
				}
				add(r)
			}
		}
	}
	for _, op := range []struct {
		name     string
		putEvery int
	}{{"Get", 0}, {"Put", 1}, {"90% Get 10% Put", 10}} {
		for _, procs := range []int{1, 2} {
			lru := add(&row{section: "client cache", name: op.name + " stdlib LRU", procs: procs, ops: opsPerIteration,
				fn: clientOps(newLRU, caps.client, op.putEvery)})
			add(&row{section: "client cache", name: op.name + " adapter", procs: procs, base: lru, ops: opsPerIteration,
				fn: clientOps(newClientAdapter, caps.client, op.putEvery)})
		}
	}
	for _, procs := range []int{1, 2} {
		std := add(&row{section: "server lookup", name: "stdlib DecryptTicket", procs: procs, ops: opsPerIteration,
			fn: serverLookup(caps.server, false)})
		add(&row{section: "server lookup", name: "adapter UnwrapSession", procs: procs, base: std, ops: opsPerIteration,
			fn: serverLookup(caps.server, true)})
	}
	return rows
}

func printTable(out *bufio.Writer, rows []*row, mem *memResult, rounds int) {
	fmt.Fprintf(out, "| section | benchmark | GOMAXPROCS | ns/op | ops/s | allocs/op | B/op | ratio |\n")
	fmt.Fprintf(out, "|---|---|---:|---:|---:|---:|---:|---|\n")
	for _, r := range rows {
		if r.skip != "" {
			fmt.Fprintf(out, "| %s | %s | %d | - | - | - | - | omitted: %s |\n", r.section, r.name, r.procs, r.skip)
			continue
		}
		ns := r.ns()
		if ns == 0 {
			continue
		}
		last := r.last()
		ratio := ""
		if x := r.ratio(); x > 0 {
			if r.costBase {
				ratio = fmt.Sprintf("cost %.2fx %s", x, r.base.name)
			} else {
				ratio = fmt.Sprintf("%.2fx %s", x, r.base.name)
			}
		}
		fmt.Fprintf(out, "| %s | %s | %d | %.0f | %.0f | %.0f | %.0f | %s |\n", r.section, r.name, r.procs,
			ns, 1e9/ns, r.perOp(float64(last.AllocsPerOp())), r.perOp(float64(last.AllocedBytesPerOp())), ratio)
	}
	if mem != nil {
		fmt.Fprintf(out, "| memory | server session, %d cached | - | - | - | - | %.0f | state %d B, overhead %.0f B/session |\n",
			mem.sessions, mem.perSession, mem.state, mem.perSession-float64(mem.state))
	}
	fmt.Fprintf(out, "\nns/op: median of %d rounds; ratio: ops/s of the row over ops/s of the named row (above 1: faster),\n", rounds)
	fmt.Fprintf(out, "growth rows: ns/op of the row over ns/op of the named row (cost; below 1.5 is flat enough).\n")
}

func printTargets(out *bufio.Writer, rows, growth []*row, mem *memResult) {
	byKey := map[string]*row{}
	for _, r := range append(rows, growth...) {
		byKey[r.key()] = r
	}
	fmt.Fprintf(out, "\n| target | measured | met |\n|---|---|---|\n")
	check := func(what string, x float64, ok bool) {
		if x == 0 {
			return
		}
		fmt.Fprintf(out, "| %s | %.2fx | %s |\n", what, x, yesNo(ok))
	}
	for _, p := range []int{1, 2} {
		if r := byKey[fmt.Sprintf("handshakes/TLS1.3 adapter memory/P%d", p)]; r != nil {
			check(fmt.Sprintf("TLS1.3 adapter resumed >= 1.0x stdlib tickets, GOMAXPROCS %d", p), r.ratio(), r.ratio() >= 1.0)
		}
		if r := byKey[fmt.Sprintf("handshakes/TLS1.2 adapter memory/P%d", p)]; r != nil {
			check(fmt.Sprintf("TLS1.2 adapter resumed >= 1.2x stdlib tickets, GOMAXPROCS %d", p), r.ratio(), r.ratio() >= 1.2)
		}
		memr := byKey[fmt.Sprintf("handshakes/TLS1.3 adapter memory/P%d", p)]
		for _, tier := range []string{"store-only", "two-tier"} {
			redis := byKey[fmt.Sprintf("handshakes/TLS1.3 adapter redis %s/P%d", tier, p)]
			if redis != nil && memr != nil && redis.ns() > 0 && memr.ns() > 0 {
				x := memr.ns() / redis.ns()
				check(fmt.Sprintf("TLS1.3 adapter on Redis (%s) >= 0.8x in memory, GOMAXPROCS %d", tier, p), x, x >= 0.8)
			}
		}
	}
	if r := byKey["client cache/Get adapter/P2"]; r != nil {
		check("client adapter Get >= 2x stdlib LRU, GOMAXPROCS 2", r.ratio(), r.ratio() >= 2)
	}
	if r := byKey["client cache/Get adapter/P1"]; r != nil {
		check("client adapter Get >= 1.0x stdlib LRU, GOMAXPROCS 1", r.ratio(), r.ratio() >= 1)
	}
	if mem != nil {
		over := mem.perSession - float64(mem.state)
		fmt.Fprintf(out, "| memory overhead <= 256 B/session beyond the %d B state | %.0f B | %s |\n", mem.state, over, yesNo(over <= 256))
	}
	for _, r := range growth {
		if r.base != r && strings.HasSuffix(r.name, "n=1000000") {
			op, _, _ := strings.Cut(r.name, " n=")
			check(op+": cost at 1M sessions <= 1.5x cost at 1k", r.ratio(), r.ratio() <= 1.5)
		}
	}
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "tlscache-bench:", err)
	os.Exit(1)
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(s string) error { *m = append(*m, s); return nil }

// parseVersions parses "13,12" (or hex code points) into TLS versions.
func parseVersions(s string) []uint16 {
	var out []uint16
	for _, f := range strings.Split(s, ",") {
		switch f = strings.TrimSpace(f); f {
		case "13", "1.3":
			out = append(out, tls.VersionTLS13)
		case "12", "1.2":
			out = append(out, tls.VersionTLS12)
		default:
			n, err := strconv.ParseUint(f, 0, 16)
			if err != nil {
				fatal(fmt.Errorf("tlscache-bench: bad TLS version %q", f))
			}
			out = append(out, uint16(n))
		}
	}
	return out
}
