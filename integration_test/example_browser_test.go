package integration_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"fmt"
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

// reconnectTries is how many times a test clicks "Reconnect" to see a
// resumption: Chromium may hold a spare connection it opened before it had
// a ticket, and use it for the first reconnect.
const reconnectTries = 3

// reconnectUntilResumed clicks "Reconnect on a new connection" until the
// page says Resumed, at most reconnectTries times, and fails the test if
// it never does. Each click must be served on a connection the server has
// not logged before.
func reconnectUntilResumed(t *testing.T, ctx context.Context, s *exampleServer) (loggedIn string) {
	t.Helper()
	var seen []string
	for range reconnectTries {
		before := s.logs.count(connLine)
		status, loggedIn := heading(t, ctx, chromedp.Click(chromedp.ID("reconnect")))
		seen = append(seen, status)
		if s.logs.count(connLine) == before {
			t.Fatalf("reconnecting logged no new connection:\n%s", s.logs)
		}
		if strings.HasPrefix(status, "Resumed TLS 1.3") {
			return loggedIn
		}
	}
	t.Fatalf("%d reconnects showed %q, never Resumed TLS 1.3\n%s", reconnectTries, seen, s.logs)
	return ""
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
	reconnectUntilResumed(t, ctx, s)
}

// Under -policy login, a browser's new connection resumes only while the
// user is logged in.
func TestBrowserLoginPolicy(t *testing.T) {
	s := startExample(t, "-policy", "login")
	ctx := browser(t, s)
	url := "https://localhost:" + port(t, s.addr) + "/"

	check := func(step, status, loggedIn, wantStatus, wantLoggedIn string) {
		t.Helper()
		if !strings.HasPrefix(status, wantStatus) || !strings.HasPrefix(loggedIn, wantLoggedIn) {
			t.Fatalf("%s: heading %q, logged in %q; want %q and %q\n%s",
				step, status, loggedIn, wantStatus, wantLoggedIn, s.logs)
		}
	}
	reconnect := chromedp.Click(chromedp.ID("reconnect"))
	status, loggedIn := heading(t, ctx, chromedp.Navigate(url))
	check("first load", status, loggedIn, "New", "no")
	for i := range reconnectTries { // never resumes before login
		status, loggedIn = heading(t, ctx, reconnect)
		check(fmt.Sprintf("reconnect %d before login", i+1), status, loggedIn, "New", "no")
	}
	status, loggedIn = heading(t, ctx, chromedp.Click(chromedp.ID("login")))
	check("log in", status, loggedIn, "", "yes")
	if loggedIn := reconnectUntilResumed(t, ctx, s); !strings.HasPrefix(loggedIn, "yes") {
		t.Fatalf("resumed after login, but the page says logged in %q", loggedIn)
	}
	if loggedIn := reconnectUntilResumed(t, ctx, s); !strings.HasPrefix(loggedIn, "yes") { // from the ticket of a resumption
		t.Fatalf("resumed again, but the page says logged in %q", loggedIn)
	}
	status, loggedIn = heading(t, ctx, chromedp.Click(chromedp.ID("logout")))
	check("log out", status, loggedIn, "", "no")
	for i := range reconnectTries { // never resumes after logout
		status, loggedIn = heading(t, ctx, reconnect)
		check(fmt.Sprintf("reconnect %d after logout", i+1), status, loggedIn, "New", "no")
	}
}
