package integration_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// The example server (examples/https-server) is built once per run of the
// tests and driven from outside: its flags, its log, real clients.

var exampleBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// buildExample returns the path of the example server's binary, built with
// -race when the tests run with it.
func buildExample(t *testing.T) string {
	t.Helper()
	exampleBuild.once.Do(func() {
		goBin, err := exec.LookPath("go")
		if err != nil {
			exampleBuild.err = err
			return
		}
		dir, err := os.MkdirTemp("", "tlscache-example")
		if err != nil {
			exampleBuild.err = err
			return
		}
		exampleBuild.dir = dir
		exampleBuild.path = filepath.Join(dir, "https-server")
		args := []string{"build", "-o", exampleBuild.path}
		if raceEnabled {
			args = append(args, "-race")
		}
		args = append(args, "github.com/tlscache/tlscache/examples/https-server")
		if out, err := exec.Command(goBin, args...).CombinedOutput(); err != nil {
			exampleBuild.err = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	})
	if exampleBuild.err != nil {
		t.Fatalf("building the example server: %v", exampleBuild.err)
	}
	return exampleBuild.path
}

func TestMain(m *testing.M) {
	code := m.Run()
	if exampleBuild.dir != "" {
		os.RemoveAll(exampleBuild.dir)
	}
	os.Exit(code)
}

// exampleServer is a running example server.
type exampleServer struct {
	addr   string // HTTPS, host:port
	admin  string // admin API, host:port; "" when off
	caFile string // trusts the server's certificate
	cmd    *exec.Cmd
	logs   *logLines
	done   chan struct{} // closed when the process has exited
	err    error         // of cmd.Wait, once done
}

// logLines collects the server's log, line by line.
type logLines struct {
	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on every new line or at EOF
	eof     bool
}

func (l *logLines) add(line string) {
	l.mu.Lock()
	l.lines = append(l.lines, line)
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *logLines) close() {
	l.mu.Lock()
	l.eof = true
	close(l.changed)
	l.changed = make(chan struct{})
	l.mu.Unlock()
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// wait returns the first n lines matching re, waiting for them until the
// deadline. It fails the test if they do not come or the log ends first.
func (l *logLines) wait(t *testing.T, re *regexp.Regexp, n int) []string {
	t.Helper()
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for {
		l.mu.Lock()
		var match []string
		for _, line := range l.lines {
			if re.MatchString(line) {
				match = append(match, line)
			}
		}
		changed, eof := l.changed, l.eof
		l.mu.Unlock()
		if len(match) >= n {
			return match[:n]
		}
		if eof {
			t.Fatalf("the server's log ended with %d lines matching %s, want %d:\n%s", len(match), re, n, l)
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("waited 15s for %d log lines matching %s, have %d:\n%s", n, re, len(match), l)
		}
	}
}

// count returns how many lines match re now.
func (l *logLines) count(re *regexp.Regexp) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if re.MatchString(line) {
			n++
		}
	}
	return n
}

var (
	servingLine = regexp.MustCompile(`msg=serving addr=(\S+)`)
	adminLine   = regexp.MustCompile(`msg=admin addr=(\S+)`)
	connLine    = regexp.MustCompile(`msg=connection `)
	stoppedLine = regexp.MustCompile(`msg=stopped$`)
)

// launchExample starts the example server with args and returns at once.
// The server's certificate, for localhost and 127.0.0.1, is issued by the
// test CA. Its cleanup stops the server with SIGTERM and checks that it
// exits cleanly.
func launchExample(t *testing.T, env []string, args ...string) *exampleServer {
	t.Helper()
	p := thePKI(t)
	certFile, keyFile := p.files(t, p.leaf(t, "localhost", "127.0.0.1"))
	args = append([]string{"-cert", certFile, "-key", keyFile}, args...)
	cmd := exec.Command(buildExample(t), args...)
	// The race detector's report, if any, goes to the log the tests read,
	// and a race fails the exit status; no second of sleep at exit.
	cmd.Env = append(os.Environ(), "GORACE=atexit_sleep_ms=0 exitcode=66")
	cmd.Env = append(cmd.Env, env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	s := &exampleServer{
		caFile: p.caFile(),
		cmd:    cmd,
		logs:   &logLines{changed: make(chan struct{})},
		done:   make(chan struct{}),
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.logs.add(sc.Text())
		}
		s.logs.close()
		s.err = cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
			return // stopped by the test
		default:
		}
		s.stop(t, syscall.SIGTERM)
	})
	return s
}

// startExample starts the example server on free loopback ports, with the
// admin API, and waits until both listen.
func startExample(t *testing.T, args ...string) *exampleServer {
	t.Helper()
	return startExampleEnv(t, nil, args...)
}

func startExampleEnv(t *testing.T, env []string, args ...string) *exampleServer {
	t.Helper()
	s := launchExample(t, env, append([]string{"-addr", "127.0.0.1:0", "-admin", "127.0.0.1:0"}, args...)...)
	s.addr = servingLine.FindStringSubmatch(s.logs.wait(t, servingLine, 1)[0])[1]
	s.admin = adminLine.FindStringSubmatch(s.logs.wait(t, adminLine, 1)[0])[1]
	return s
}

// stop sends sig and checks that the server stops cleanly: exit status 0
// and the log's last word.
func (s *exampleServer) stop(t *testing.T, sig os.Signal) {
	t.Helper()
	if err := s.cmd.Process.Signal(sig); err != nil {
		t.Errorf("signal %v: %v", sig, err)
	}
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		t.Errorf("the server did not stop within 15s of %v:\n%s", sig, s.logs)
		return
	}
	if s.err != nil {
		t.Errorf("the server exited with %v after %v:\n%s", s.err, sig, s.logs)
	} else if s.logs.count(stoppedLine) != 1 {
		t.Errorf("the server exited without logging it stopped:\n%s", s.logs)
	}
}

// waitExit waits for a server that should stop by itself, killing it
// after a deadline.
func (s *exampleServer) waitExit(t *testing.T) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		t.Fatalf("the server still ran after 15s:\n%s", s.logs)
	}
}

// port returns the port of a host:port.
func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// run runs a client binary with stdin and a deadline, and returns its
// combined output; a non-zero exit fails the test.
func run(t *testing.T, stdin string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// sClientHTTP sends an HTTP/1.0 request with openssl s_client, saving the
// session to sessFile (sessFlag -sess_out) or offering it (-sess_in), and
// returns "New" or "Reused" and the whole output, the response included.
func (s *exampleServer) sClientHTTP(t *testing.T, protoFlag, sessFlag, sessFile, request string) (string, string) {
	t.Helper()
	return s.sClientHTTPAs(t, "localhost", protoFlag, sessFlag, sessFile, request)
}

// sClientHTTPAs is sClientHTTP with another server name (SNI).
func (s *exampleServer) sClientHTTPAs(t *testing.T, serverName, protoFlag, sessFlag, sessFile, request string) (string, string) {
	t.Helper()
	out := run(t, request, requirePeer(t, "openssl"), "s_client",
		"-connect", s.addr, "-servername", serverName,
		"-CAfile", s.caFile, "-verify_return_error",
		protoFlag, sessFlag, sessFile, "-ign_eof")
	m := sessionLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no New/Reused line in s_client's output:\n%s", out)
	}
	if !strings.Contains(out, "HTTP/1.0 200 OK") {
		t.Fatalf("s_client got no 200 response:\n%s", out)
	}
	want := map[string]string{"-tls1_2": "TLSv1.2", "-tls1_3": "TLSv1.3"}[protoFlag]
	if m[2] != want {
		t.Fatalf("s_client %s negotiated %s", protoFlag, m[2])
	}
	return m[1], out
}

// gnutlsResume runs gnutls-cli --resume (a full handshake, then a second
// connection offering its session) and reports whether the second resumed.
func (s *exampleServer) gnutlsResume(t *testing.T, version string) (bool, string) {
	t.Helper()
	out := run(t, "", requirePeer(t, "gnutls-cli"),
		"--x509cafile", s.caFile, "--resume",
		"--priority", "NORMAL:-VERS-ALL:+VERS-"+version,
		"-p", port(t, s.addr), "127.0.0.1")
	if !strings.Contains(out, "- Resume Handshake was completed") {
		t.Fatalf("gnutls-cli did not complete its second handshake:\n%s", out)
	}
	return strings.Contains(out, "*** This is a resumed session"), out
}

// curl makes a request with curl and returns the status, the content type
// and the body.
func curl(t *testing.T, method, url, body string, extra ...string) (int, string, string) {
	t.Helper()
	args := append([]string{"-sS", "-X", method, "-o", "-", "-w", "\n%{content_type}\n%{http_code}"}, extra...)
	if body != "" || method != "GET" && method != "HEAD" {
		// The admin API takes state-changing requests only as JSON.
		args = append(args, "-H", "Content-Type: application/json")
	}
	if body != "" {
		args = append(args, "--data-binary", body)
	}
	out := run(t, "", requirePeer(t, "curl"), append(args, url)...)
	lines := strings.Split(out, "\n")
	if len(lines) < 3 {
		t.Fatalf("curl %s %s: no status in %q", method, url, out)
	}
	n := len(lines)
	status, err := strconv.Atoi(lines[n-1])
	if err != nil {
		t.Fatalf("curl %s %s: no status in %q", method, url, out)
	}
	return status, lines[n-2], strings.Join(lines[:n-2], "\n")
}

// adminJSON calls the admin API and decodes its JSON answer into v (if not
// nil), failing the test unless the status is want.
func (s *exampleServer) adminJSON(t *testing.T, method, path, body string, want int, v any, extra ...string) string {
	t.Helper()
	status, _, got := curl(t, method, "http://"+s.admin+path, body, extra...)
	if status != want {
		t.Fatalf("%s %s %s: status %d, want %d: %s", method, path, body, status, want, got)
	}
	if v != nil {
		dec := json.NewDecoder(strings.NewReader(got))
		dec.DisallowUnknownFields()
		if err := dec.Decode(v); err != nil {
			t.Fatalf("%s %s: decoding %q: %v", method, path, got, err)
		}
	}
	return got
}

// adminSessions is GET /sessions.
type adminSessions struct {
	Count    int `json:"count"`
	Sessions []struct {
		ID         string    `json:"id"`
		Context    string    `json:"context"`
		ServerName string    `json:"server_name"`
		Created    time.Time `json:"created"`
		Expires    time.Time `json:"expires"`
		Expired    bool      `json:"expired"`
	} `json:"sessions"`
}

func (s *exampleServer) sessions(t *testing.T) adminSessions {
	t.Helper()
	var l adminSessions
	s.adminJSON(t, "GET", "/sessions", "", 200, &l)
	if l.Count != len(l.Sessions) {
		t.Fatalf("GET /sessions: count %d, %d sessions listed", l.Count, len(l.Sessions))
	}
	return l
}

// adminConfig is GET /config.
type adminConfig struct {
	Policy  string `json:"policy"`
	Mode    string `json:"mode"`
	Timeout string `json:"timeout"`
	Size    int    `json:"size"`
}

// adminError is the answer to bad input.
type adminError struct {
	Error string `json:"error"`
}

// metrics fetches GET /metrics and parses it strictly.
func (s *exampleServer) metrics(t *testing.T) map[string]metricSample {
	t.Helper()
	status, ctype, body := curl(t, "GET", "http://"+s.admin+"/metrics", "")
	if status != 200 || !strings.HasPrefix(ctype, "text/plain; version=0.0.4; charset=utf-8") {
		t.Fatalf("GET /metrics: status %d, content type %q: %s", status, ctype, body)
	}
	m, err := parseMetrics(body)
	if err != nil {
		t.Fatalf("GET /metrics does not parse: %v\n%s", err, body)
	}
	return m
}

type metricSample struct {
	typ   string
	value float64
}

// parseMetrics parses the Prometheus text exposition format with
// Prometheus's own parser, and returns the unlabelled counters and gauges.
// It refuses a tlscache counter that does not end in _total, a gauge that
// does, and a tlscache counter whose value is not a count.
func parseMetrics(text string) (map[string]metricSample, error) {
	p := expfmt.NewTextParser(model.LegacyValidation)
	families, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return nil, err
	}
	out := make(map[string]metricSample)
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) > 0 {
				continue
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				v := m.GetCounter().GetValue()
				if strings.HasPrefix(name, "tlscache_") && (v < 0 || v != float64(int64(v))) {
					return nil, fmt.Errorf("counter %s = %v is not a count", name, v)
				}
				out[name] = metricSample{"counter", v}
			case dto.MetricType_GAUGE:
				out[name] = metricSample{"gauge", m.GetGauge().GetValue()}
			}
		}
		if strings.HasPrefix(name, "tlscache_") && (mf.GetType() == dto.MetricType_COUNTER) != strings.HasSuffix(name, "_total") {
			return nil, fmt.Errorf("%s %s: counters and only counters end in _total", mf.GetType(), name)
		}
	}
	return out, nil
}

// sameJSON reports whether two JSON texts hold the same value.
func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}
