package tracestore

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseTraceParent(t *testing.T) {
	const h = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tp, err := ParseTraceParent(h)
	require.NoError(t, err)
	require.Equal(t, byte(0), tp.Version)
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", tp.TraceID.String())
	require.Equal(t, "00f067aa0ba902b7", tp.SpanID.String())
	require.True(t, tp.Sampled())
	require.Equal(t, h, tp.String())

	// A future version may append fields; they are ignored.
	tp, err = ParseTraceParent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what-ever")
	require.NoError(t, err)
	require.Equal(t, byte(0xcc), tp.Version)
	require.False(t, tp.Sampled())

	bad := map[string]string{
		"version ff":       "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"zero trace":       "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
		"zero span":        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
		"upper hex":        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
		"bad hex":          "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
		"short trace":      "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
		"long trace":       "00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01",
		"v00 trailing":     h + "-01",
		"bad separator":    "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"bad flags":        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
		"empty":            "",
		"future no dash":   "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
		"bad version char": "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	}
	for name, s := range bad {
		_, err := ParseTraceParent(s)
		require.ErrorIs(t, err, ErrBadTraceParent, name)
	}
}

func FuzzParseTraceParent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := ParseTraceParent(s)
		if err != nil {
			return
		}
		// Whatever parses formats back to the header it came from (for
		// version 00, or the first 55 characters of a longer one).
		require.Equal(t, s[:55], tp.String())
		again, err := ParseTraceParent(tp.String())
		if tp.Version == 0 || err == nil {
			require.NoError(t, err)
			require.Equal(t, tp, again)
		}
	})
}

func TestTraceAndSpanIDs(t *testing.T) {
	id, err := ParseTraceID("4BF92F3577B34DA6A3CE929D0E0E4736")
	require.NoError(t, err)
	require.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", id.String())
	_, err = ParseTraceID("4bf9")
	require.ErrorIs(t, err, ErrBadID)
	_, err = ParseTraceID("zzf92f3577b34da6a3ce929d0e0e4736")
	require.ErrorIs(t, err, ErrBadID)
	sp, err := ParseSpanID("00f067aa0ba902b7")
	require.NoError(t, err)
	require.Equal(t, "00f067aa0ba902b7", sp.String())
	_, err = ParseSpanID("00f067aa0ba902b")
	require.ErrorIs(t, err, ErrBadID)
}
