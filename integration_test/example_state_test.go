package integration_test

import (
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
)

var (
	stateLoaded = regexp.MustCompile(`msg=state file=\S+ sessions_loaded=(\d+)`)
	stateSaved  = regexp.MustCompile(`msg="state saved" file=\S+ sessions=(\d+)`)
)

// The example server restarted with -state resumes the sessions it issued
// before the restart, for openssl s_client's saved session; without the
// state file, the same session makes a full handshake.
func TestExampleStateSurvivesRestart(t *testing.T) {
	for _, v := range exampleVersions {
		t.Run(v.name, func(t *testing.T) {
			dir := t.TempDir()
			state, sess := filepath.Join(dir, "sessions"), filepath.Join(dir, "sess.pem")
			// One certificate for every run: sessions are bound to it. (The
			// last -cert and -key given win.)
			p := thePKI(t)
			certFile, keyFile := p.files(t, p.leaf(t, "localhost", "127.0.0.1"))
			start := func(t *testing.T, args ...string) *exampleServer {
				return startExample(t, append([]string{"-cert", certFile, "-key", keyFile}, args...)...)
			}

			first := start(t, "-state", state)
			if m := stateLoaded.FindStringSubmatch(first.logs.wait(t, stateLoaded, 1)[0]); m[1] != "0" {
				t.Fatalf("a first start loaded %s sessions", m[1])
			}
			if got, _ := first.sClientHTTP(t, v.sClient, "-sess_out", sess, getRoot); got != "New" {
				t.Fatalf("first connection: %s", got)
			}
			first.stop(t, syscall.SIGTERM)
			if m := stateSaved.FindStringSubmatch(first.logs.wait(t, stateSaved, 1)[0]); m[1] == "0" {
				t.Fatalf("the shutdown saved no sessions:\n%s", first.logs)
			}
			if fi, err := os.Stat(state); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("state file: %v %v", fi, err)
			}

			fresh := start(t) // the same restart without -state
			if got, _ := fresh.sClientHTTP(t, v.sClient, "-sess_in", sess, getRoot); got != "New" {
				t.Fatalf("a server without the state resumed: %s", got)
			}

			second := start(t, "-state", state)
			if m := stateLoaded.FindStringSubmatch(second.logs.wait(t, stateLoaded, 1)[0]); m[1] == "0" {
				t.Fatalf("the restart loaded no sessions:\n%s", second.logs)
			}
			if got, _ := second.sClientHTTP(t, v.sClient, "-sess_in", sess, getRoot); got != "Reused" {
				t.Fatalf("after the restart: %s, want Reused\n%s", got, second.logs)
			}
			if _, err := os.Stat(state); !os.IsNotExist(err) {
				t.Fatalf("the state file is still there once loaded: %v", err)
			}

			// A session removed after the restart stays removed through a
			// crash: no shutdown saved over the loaded file.
			for l := second.sessions(t).Sessions; len(l) > 0; l = second.sessions(t).Sessions {
				second.adminJSON(t, "DELETE", "/sessions/"+l[0].ID, "", 200, nil)
			}
			second.cmd.Process.Kill() // a crash
			<-second.done
			third := start(t, "-state", state)
			if got, _ := third.sClientHTTP(t, v.sClient, "-sess_in", sess, getRoot); got != "New" {
				t.Fatalf("after a removal and a crash: %s, want New\n%s", got, third.logs)
			}
		})
	}
}

// A state file that is not one refuses the start, and is left as it is.
func TestExampleStateInvalid(t *testing.T) {
	state := filepath.Join(t.TempDir(), "sessions")
	if err := os.WriteFile(state, []byte("not sessions"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := launchExample(t, nil, "-addr", "127.0.0.1:0", "-admin", "", "-state", state)
	s.waitExit(t)
	if s.err == nil {
		t.Fatalf("the server started on a state file that is not one:\n%s", s.logs)
	}
	s.logs.wait(t, regexp.MustCompile(`-state: tlscache/fleet: not a session file`), 1)
	if b, _ := os.ReadFile(state); string(b) != "not sessions" {
		t.Errorf("the state file changed to %q", b)
	}
}
