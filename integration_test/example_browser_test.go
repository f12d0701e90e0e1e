package integration_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// browser starts headless Chromium (Debian's chromium) for one test. It
// trusts the example server's certificate by its public key, as a real
// browser trusts a CA: a certificate error would keep it from caching
// sessions.
func browser(t *testing.T, s *exampleServer) context.Context {
	t.Helper()
	path := requirePeer(t, "chromium")
	c, err := tls.Dial("tcp", s.addr, &tls.Config{RootCAs: thePKI(t).pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	spki := sha256.Sum256(c.ConnectionState().PeerCertificates[0].RawSubjectPublicKeyInfo)
	c.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.NoSandbox, // as root
	)
	if os.Getenv("TLSCACHE_BROWSER_LOG") != "" {
		opts = append(opts, chromedp.CombinedOutput(os.Stderr))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v", path, err)
	}
	return ctx
}

// heading runs action, which loads a page, and returns the page's status
// heading and the line that says whether the user is logged in.
func heading(t *testing.T, ctx context.Context, action chromedp.Action[chromedp.Void]) (status, loggedIn string) {
	t.Helper()
	resp, err := chromedp.RunResponse(ctx, action)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if resp.Status != 200 {
		t.Fatalf("browser: %s answered %d %s", resp.URL, resp.Status, resp.StatusText)
	}
	status, err = chromedp.Run(ctx, chromedp.Text(chromedp.ID("status")))
	if err == nil {
		loggedIn, err = chromedp.Run(ctx, chromedp.Evaluate[string](`(document.getElementById("logged-in")||{}).textContent||""`))
	}
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	return status, loggedIn
}

// A person with a browser sees the page's first connection New and, after
// "Reconnect on a new connection", Resumed.
func TestBrowserSeesResumption(t *testing.T) {
	s := startExample(t)
	ctx := browser(t, s)
	url := "https://localhost:" + port(t, s.addr) + "/"

	status, _ := heading(t, ctx, chromedp.Navigate(url))
	if !strings.HasPrefix(status, "New TLS 1.3") {
		t.Fatalf("first load: %q, want New TLS 1.3", status)
	}
	status, _ = heading(t, ctx, chromedp.Click(chromedp.ID("reconnect")))
	if !strings.HasPrefix(status, "Resumed TLS 1.3") {
		t.Fatalf("after reconnecting: %q, want Resumed TLS 1.3\n%s", status, s.logs)
	}
	if n := s.logs.count(connLine); n < 2 {
		t.Errorf("the server logged %d connections, want at least 2 (reconnect makes a new one)", n)
	}
}

// Under -policy login, a browser's new connection resumes only while the
// user is logged in.
func TestBrowserLoginPolicy(t *testing.T) {
	s := startExample(t, "-policy", "login")
	ctx := browser(t, s)
	url := "https://localhost:" + port(t, s.addr) + "/"

	for _, step := range []struct {
		name     string
		action   chromedp.Action[chromedp.Void]
		status   string // prefix of the heading
		loggedIn string // prefix of the logged-in line
	}{
		{"first load", chromedp.Navigate(url), "New", "no"},
		{"reconnect before login", chromedp.Click(chromedp.ID("reconnect")), "New", "no"},
		{"log in", chromedp.Click(chromedp.ID("login")), "", "yes"},
		{"reconnect after login", chromedp.Click(chromedp.ID("reconnect")), "Resumed", "yes"},
		{"reconnect again", chromedp.Click(chromedp.ID("reconnect")), "Resumed", "yes"},
		{"log out", chromedp.Click(chromedp.ID("logout")), "", "no"},
		{"reconnect after logout", chromedp.Click(chromedp.ID("reconnect")), "New", "no"},
	} {
		status, loggedIn := heading(t, ctx, step.action)
		if !strings.HasPrefix(status, step.status) || !strings.HasPrefix(loggedIn, step.loggedIn) {
			t.Fatalf("%s: heading %q, logged in %q; want %q and %q\n%s",
				step.name, status, loggedIn, step.status, step.loggedIn, s.logs)
		}
	}
}
