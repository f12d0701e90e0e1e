package main

// The process mode: real server processes against a load client in this
// process, over loopback TCP, each server's CPU read from /proc/PID/stat.
//
//	tlscache-bench -procs [-seconds 3] [-rounds 5] [-sizes 20480,1000000] [-tls 13,12]
//	               [-server name=path ...] [-example path|build]
//
// Each round runs every server once per configuration (TLS version, cache
// size), in an order that rotates with the round, so that the machine's
// noise falls on every server alike. The servers are this binary run with
// -serve stdlib (stateless tickets) or -serve adapter; -server adds a
// tlscache-bench binary built from another tree (say, the main branch), run
// with -serve adapter; -example adds examples/https-server, a real HTTPS
// server answering a GET / on each connection (example.go). An adapter
// cache of size n is filled with n sessions of a 57-byte state before the
// round, so every new session evicts one (the example server's is not). The
// table gives, per configuration, each server's median CPU per resumed
// handshake and handshakes/s, its GC share of CPU (GC CPU from
// runtime/metrics over all rounds, without idle mark workers, against its
// CPU from /proc), the heap
// bytes and objects the fill added per session, and the per-round ratios
// against the stdlib server as min/median/max.

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlscache/tlscache/adapter"
	"github.com/tlscache/tlscache/tlscache"
)

// serve is the server process: -serve kind -tls v -fill n. It prints
// "ready ADDR HEAP OBJECTS" once listening (HEAP and OBJECTS: what the
// fill added, after GC), answers each "stats" line on stdin with
// "stats GC" (GC CPU seconds, runtime/metrics, without idle marking), and
// exits when stdin closes.
func serve(kind string, version uint16, fill int) {
	if dir := os.Getenv("TLSCACHE_BENCH_PROFILES"); dir != "" {
		// A CPU profile of each server, for where the CPU goes.
		f, err := os.Create(fmt.Sprintf("%s/%s-%d.prof", dir, kind, os.Getpid()))
		if err != nil {
			fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	cert, _ := newCert()
	cfg := &tls.Config{
		Certificates:     []tls.Certificate{cert},
		MinVersion:       version,
		MaxVersion:       version,
		CurvePreferences: []tls.CurveID{tls.X25519},
	}
	var heap, objects int64
	if kind == "adapter" {
		cache := tlscache.New(noByteBudget(&tlscache.Options{MaxSessions: max(fill, 1)}))
		if err := adapter.NewServer(cache, nil).Install(cfg); err != nil {
			fatal(err)
		}
		before := memNow()
		ctx := make([]byte, 32)
		rand.Read(ctx)
		for range fill {
			s := &tlscache.Session{ID: make([]byte, adapter.IDLen), IDContext: ctx, State: make([]byte, 57)}
			rand.Read(s.ID)
			rand.Read(s.State)
			cache.NewSession(tlscache.Server, s)
		}
		after := memNow()
		heap, objects = int64(after.HeapAlloc-before.HeapAlloc), int64(after.HeapObjects)-int64(before.HeapObjects)
		defer runtime.KeepAlive(cache)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				tc := tls.Server(c, cfg)
				if tc.Handshake() == nil {
					tc.Write([]byte{'.'})
					io.Copy(io.Discard, tc) // until the client closes
				}
			}()
		}
	}()
	fmt.Printf("ready %s %d %d\n", ln.Addr(), heap, objects)
	in := bufio.NewScanner(os.Stdin)
	// GC work without the idle mark workers, which only use CPU that
	// nothing else wanted.
	samples := []metrics.Sample{{Name: "/cpu/classes/gc/total:cpu-seconds"}, {Name: "/cpu/classes/gc/mark/idle:cpu-seconds"}}
	for in.Scan() {
		if in.Text() == "stats" {
			metrics.Read(samples)
			fmt.Printf("stats %g\n", samples[0].Value.Float64()-samples[1].Value.Float64())
		}
	}
}

// noByteBudget turns off the byte budget, where the core has one (this
// tool also runs against cores from before it): the rows compare the cost
// of a given number of sessions.
func noByteBudget(opts *tlscache.Options) *tlscache.Options {
	if f := reflect.ValueOf(opts).Elem().FieldByName("MaxBytes"); f.IsValid() {
		f.SetInt(-1)
	}
	return opts
}

func memNow() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

// serverProc is a running server process.
type serverProc struct {
	name          string
	kind          string // "example" for the example server (example.go)
	cmd           *exec.Cmd
	drained       chan struct{} // the example server's log is read to its end
	in            io.WriteCloser
	out           *bufio.Scanner
	addr          string
	heap, objects int64
}

func startServerProc(name, bin, kind string, version uint16, fill int) (*serverProc, error) {
	cmd := exec.Command(bin, "-serve", kind, "-tls", strconv.Itoa(int(version)), "-fill", strconv.Itoa(fill))
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &serverProc{name: name, kind: kind, cmd: cmd, in: in, out: bufio.NewScanner(out)}
	if !p.out.Scan() {
		p.stop()
		return nil, fmt.Errorf("tlscache-bench: server %s exited before it was ready", name)
	}
	if _, err := fmt.Sscanf(p.out.Text(), "ready %s %d %d", &p.addr, &p.heap, &p.objects); err != nil {
		p.stop()
		return nil, fmt.Errorf("tlscache-bench: server %s said %q: %w", name, p.out.Text(), err)
	}
	return p, nil
}

func (p *serverProc) stop() {
	if p.kind == "example" {
		p.stopExample()
		return
	}
	p.in.Close()
	p.cmd.Wait()
}

// cpu returns the process's user+system CPU time from /proc/PID/stat.
func (p *serverProc) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		fatal(err)
	}
	// The command name, in parentheses, may hold spaces: split after it.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(f[11], 10, 64) // field 14 of the line
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is USER_HZ, 100 on Linux for every architecture Go supports.
const clockTicks = 100

// gcStats returns the server's GC CPU seconds so far. The runtime updates
// the figure as GC cycles end, so the table sums it over all rounds.
func (p *serverProc) gcStats() (gc float64) {
	if p.kind == "example" {
		return 0 // it has no stats to give
	}
	fmt.Fprintln(p.in, "stats")
	if !p.out.Scan() {
		fatal(fmt.Errorf("tlscache-bench: server %s gave no stats", p.name))
	}
	fmt.Sscanf(p.out.Text(), "stats %g", &gc)
	return gc
}

// procResult is one server's figures in one round.
type procResult struct {
	cpuPerHS time.Duration
	hsPerSec float64
	cpu      time.Duration // the server's CPU time in the round
	gc       float64       // of which GC, in seconds (runtime/metrics)
	resumed  float64       // share of handshakes that resumed
}

// loadRound drives p with resuming clients for d and measures it.
func loadRound(p *serverProc, version uint16, conns int, d time.Duration) procResult {
	cfgs := make([]*tls.Config, conns)
	for i := range cfgs {
		cfgs[i] = &tls.Config{
			ServerName:         serverName,
			InsecureSkipVerify: true, // the clients are not what is measured
			MinVersion:         version,
			MaxVersion:         version,
			CurvePreferences:   []tls.CurveID{tls.X25519},
			ClientSessionCache: tls.NewLRUClientSessionCache(1),
		}
		loadConn(p.addr, cfgs[i], p.kind == "example") // a full handshake: the session to resume
	}
	gc0 := p.gcStats()
	cpu0 := p.cpu()
	var total, resumed atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for _, cfg := range cfgs {
		wg.Go(func() {
			for ctx.Err() == nil {
				if r, ok := loadConn(p.addr, cfg, p.kind == "example"); ok {
					total.Add(1)
					if r {
						resumed.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := p.cpu() - cpu0
	gc1 := p.gcStats()
	n := max(total.Load(), 1)
	return procResult{
		cpuPerHS: cpu / time.Duration(n),
		hsPerSec: float64(n) / elapsed.Seconds(),
		cpu:      cpu,
		gc:       gc1 - gc0,
		resumed:  float64(resumed.Load()) / float64(n),
	}
}

// loadConn runs one connection: handshake, read the server's byte (and with
// it a TLS 1.3 ticket), close. With get (the example server), it sends a
// GET / instead and reads the answer to the end.
func loadConn(addr string, cfg *tls.Config, get bool) (resumed, ok bool) {
	raw, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false, false
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(5 * time.Second))
	c := tls.Client(raw, cfg)
	if get {
		if _, err := io.WriteString(c, exampleRequest); err != nil {
			return false, false
		}
		b, err := io.ReadAll(c)
		if err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 200 ") {
			return false, false
		}
		return c.ConnectionState().DidResume, true
	}
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return false, false
	}
	return c.ConnectionState().DidResume, true
}

// runProcs is the process mode.
// example, if not empty, is the example server's binary (example.go), or
// "build" to build it.
func runProcs(out *bufio.Writer, extra []string, example string, sizes []int, versions []uint16, rounds int, d time.Duration, conns int) {
	self, err := os.Executable()
	if err != nil {
		fatal(err)
	}
	type server struct{ name, bin, kind string }
	servers := []server{{"stdlib tickets", self, "stdlib"}, {"adapter", self, "adapter"}}
	for _, e := range extra {
		name, bin, ok := strings.Cut(e, "=")
		if !ok {
			fatal(fmt.Errorf("tlscache-bench: -server %q: want name=path", e))
		}
		servers = append(servers, server{name, bin, "adapter"})
	}
	var certFile, keyFile string
	if example != "" {
		dir, err := os.MkdirTemp("", "tlscache-bench-example")
		if err != nil {
			fatal(err)
		}
		defer os.RemoveAll(dir)
		if example == "build" {
			if example, err = buildExample(dir); err != nil {
				fatal(err)
			}
		}
		if certFile, keyFile, err = writeCertFiles(dir); err != nil {
			fatal(err)
		}
		servers = append(servers, server{"example https-server", example, "example"})
	}
	fmt.Fprintf(out, "Process mode: %d rounds of %v per server and configuration, %d client connections at a time, GOMAXPROCS %d, %s.\n\n",
		rounds, d, conns, runtime.GOMAXPROCS(0), cpuModel())
	fmt.Fprintf(out, "| TLS | cache size | server | CPU µs per handshake (median) | handshakes/s (median) | resumed | GC share of CPU (all rounds, no idle marking) | heap B/session | heap objects/session | CPU ratio stdlib/server min/median/max | handshakes/s ratio server/stdlib min/median/max |\n")
	fmt.Fprintf(out, "|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, v := range versions {
		for _, size := range sizes {
			procs := make([]*serverProc, len(servers))
			for i, s := range servers {
				fill := size
				if s.kind == "stdlib" {
					fill = 0
				}
				var p *serverProc
				var err error
				if s.kind == "example" {
					p, err = startExampleProc(s.name, s.bin, v, size, certFile, keyFile)
				} else {
					p, err = startServerProc(s.name, s.bin, s.kind, v, fill)
				}
				if err != nil {
					fatal(err)
				}
				procs[i] = p
			}
			res := make([][]procResult, len(servers))
			for r := range rounds {
				for k := range servers {
					i := (k + r) % len(servers)
					res[i] = append(res[i], loadRound(procs[i], v, conns, d))
				}
			}
			for _, p := range procs {
				p.stop()
			}
			for i, s := range servers {
				var cpu, hs, resumed, cpuRatio, hsRatio []float64
				var gc, total float64
				for r, x := range res[i] {
					cpu = append(cpu, float64(x.cpuPerHS.Nanoseconds())/1e3)
					hs = append(hs, x.hsPerSec)
					gc += x.gc
					total += x.cpu.Seconds()
					resumed = append(resumed, x.resumed)
					base := res[0][r]
					cpuRatio = append(cpuRatio, float64(base.cpuPerHS)/float64(x.cpuPerHS))
					hsRatio = append(hsRatio, x.hsPerSec/base.hsPerSec)
				}
				heap, objs := "-", "-"
				if s.kind == "adapter" && size > 0 {
					heap = fmt.Sprintf("%.0f", float64(procs[i].heap)/float64(size))
					objs = fmt.Sprintf("%.3f", float64(procs[i].objects)/float64(size))
				}
				ratios := func(x []float64) string {
					if i == 0 {
						return "-"
					}
					lo, mid, hi := spread(x)
					return fmt.Sprintf("%.2fx (%.2f–%.2f)", mid, lo, hi)
				}
				sizeCol := strconv.Itoa(size)
				if s.kind == "stdlib" {
					sizeCol = "(stateless)"
				}
				gcCol := fmt.Sprintf("%.1f %%", 100*gc/max(total, 1e-9))
				if s.kind == "example" {
					gcCol = "-"
				}
				fmt.Fprintf(out, "| 1.%d | %s | %s | %.1f | %.0f | %.0f %% | %s | %s | %s | %s | %s |\n",
					v-tls.VersionTLS10, sizeCol, s.name, median(cpu), median(hs), 100*median(resumed), gcCol,
					heap, objs, ratios(cpuRatio), ratios(hsRatio))
			}
			out.Flush()
		}
	}
}

func median(x []float64) float64 { _, m, _ := spread(x); return m }

// spread returns the min, median and max of x.
func spread(x []float64) (lo, mid, hi float64) {
	if len(x) == 0 {
		return 0, 0, 0
	}
	s := slices.Sorted(slices.Values(x))
	mid = s[len(s)/2]
	if len(s)%2 == 0 {
		mid = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[0], mid, s[len(s)-1]
}
