package journallog

import (
	"log/slog"
	"strings"
	"testing"
)

func TestFormatsAttributes(t *testing.T) {
	var b strings.Builder
	writeAttr(&b, "", slog.String("unit", "a b.service"))
	writeAttr(&b, "g.", slog.Int("n", 3))
	writeAttr(&b, "", slog.Group("m", slog.String("id", "x")))
	writeAttr(&b, "", slog.String("empty", ""))
	if got, want := b.String(), ` unit="a b.service" g.n=3 m.id=x empty=""`; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if priority(slog.LevelError) != 3 || priority(slog.LevelWarn) != 4 || priority(slog.LevelInfo) != 6 || priority(slog.LevelDebug) != 7 {
		t.Error("priorities do not map slog levels to syslog's")
	}
}
