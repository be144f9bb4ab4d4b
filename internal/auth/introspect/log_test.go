package introspect

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The token appears in no log line and no error, whatever the server
// answers, even when it echoes the token back.
func TestTokenNeverLogged(t *testing.T) {
	echo := func(code int, format string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			r.ParseForm()
			w.WriteHeader(code)
			w.Write([]byte(strings.ReplaceAll(format, "TOKEN", r.PostForm.Get("token"))))
		}
	}
	handlers := []http.HandlerFunc{
		answer(active(t0.Add(time.Hour), "")),
		answer(`{"active":false}`),
		echo(200, `{"active":true,"aud":"TOKEN"}`), // audience mismatch
		echo(200, `{"active":true,"exp":"TOKEN"}`),
		echo(200, `{"active":true,"sub":["TOKEN"]}`),
		echo(200, `TOKEN`),
		echo(200, `{"active":TOKEN}`),
		echo(500, `{"error":"bad token TOKEN"}`),
		echo(401, `TOKEN`),
		redirect("/?token=" + testToken),
	}
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	for n, h := range handlers {
		p := newIdP(t, h)
		in, clk := newTest(t, p, Options{Logger: logger, Audiences: []string{"api"}})
		_, err := in.Introspect(context.Background(), testToken)
		if err != nil && strings.Contains(err.Error(), testToken) {
			t.Errorf("handler %d: error %q contains the token", n, err)
		}
		clk.Advance(time.Hour) // past the warning throttle
		in.Close()             // waits for the call's log line
	}
	out := buf.String()
	if strings.Contains(out, testToken) || strings.Contains(out, testToken[:20]) {
		t.Fatalf("token in log:\n%s", out)
	}
	for _, want := range []string{"level=DEBUG", "level=WARN", "outcome=active", "outcome=inactive", "outcome=audience", "status 500", "token_sha256="} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// When the server is down, one warning a second is logged, counting the
// ones suppressed.
func TestWarningsThrottled(t *testing.T) {
	var buf bytes.Buffer
	p := newIdP(t, answer(`garbage`))
	in, clk := newTest(t, p, Options{Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	for n := range 5 {
		in.Introspect(context.Background(), testToken)
		if n == 3 {
			clk.Advance(time.Second)
		}
	}
	in.Close()
	out := buf.String()
	if c := strings.Count(out, "level=WARN"); c != 2 || !strings.Contains(out, "suppressed=3") {
		t.Fatalf("%d warnings:\n%s", c, out)
	}
}
