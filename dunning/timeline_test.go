package dunning_test

import (
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/dunningworks/billing/dunning"
)

const timelinePicture = "../docs/dunning-timeline.svg"

func TestDefaultTimelineIsTheDocumentedSchedule(t *testing.T) {
	t.Parallel()
	type step struct {
		label string
		day   float64
	}
	var got []step
	for _, s := range dunning.DefaultPolicy().Timeline() {
		got = append(got, step{s.Label, s.At.Hours() / 24})
	}
	require.Equal(t, []step{
		{"renewal declined", 0},
		{"retry 1 (+1d)", 1},
		{"retry 2 (+2d)", 3},
		{"retry 3 (+4d)", 7},
		{"retry 4 (+8d)", 15},
		{"grace ends: suspended", 7},
		{"final action: cancel", 15},
	}, got)
}

func TestTimelineFollowsThePolicy(t *testing.T) {
	t.Parallel()
	p := dunning.DefaultPolicy()
	p.MaxRetries, p.RetryBase, p.RetryFactor = 2, dunning.Duration(12*time.Hour), 3
	p.DunningWindow, p.FinalAction = dunning.Duration(20*24*time.Hour), dunning.FinalUnpaid
	steps := p.Timeline()
	require.Len(t, steps, 5)
	require.Equal(t, 12*time.Hour, steps[1].At)
	require.Equal(t, "retry 2 (+36h)", steps[2].Label)
	require.Equal(t, 48*time.Hour, steps[2].At)
	last := steps[len(steps)-1]
	require.Equal(t, dunning.StepFinal, last.Kind)
	require.Equal(t, 20*24*time.Hour, last.At, "the final action waits for the dunning window")
	require.Equal(t, "final action: unpaid", last.Label)
	require.Contains(t, p.TimelineSVG(), ">unpaid<")
}

func TestTimelineSVGIsWellFormedAndDrawsEveryStep(t *testing.T) {
	t.Parallel()
	svg := dunning.DefaultPolicy().TimelineSVG()
	dec := xml.NewDecoder(strings.NewReader(svg))
	circles := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "circle" {
			circles++
		}
	}
	require.Equal(t, 5, circles, "the failed renewal and four retries")
	for _, s := range []string{"retry 4 (+8d)", "grace ends: suspended", "final action: cancel", "past_due: service on",
		"±10 %", "5m, doubling to 1h"} {
		require.Contains(t, svg, s)
	}
}

// TestTimelinePictureIsCurrent keeps docs/dunning-timeline.svg in step with DefaultPolicy. Run with
// UPDATE_TIMELINE=1 (make generate does) to rewrite it instead.
func TestTimelinePictureIsCurrent(t *testing.T) {
	svg := dunning.DefaultPolicy().TimelineSVG()
	if os.Getenv("UPDATE_TIMELINE") == "1" {
		require.NoError(t, os.MkdirAll(filepath.Dir(timelinePicture), 0o755))
		require.NoError(t, os.WriteFile(timelinePicture, []byte(svg), 0o644))
		return
	}
	onDisk, err := os.ReadFile(timelinePicture)
	require.NoError(t, err, "run: UPDATE_TIMELINE=1 go test ./dunning -run TestTimelinePictureIsCurrent")
	require.Equal(t, svg, string(onDisk), "%s is stale; run: UPDATE_TIMELINE=1 go test ./dunning -run TestTimelinePictureIsCurrent", timelinePicture)
}
