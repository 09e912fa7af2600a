package timelinesvg_test

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

	"github.com/dunningworks/billing/devtools/timelinesvg"
	"github.com/dunningworks/billing/dunning"
)

const timelinePicture = "../../docs/dunning-timeline.svg"

func TestRenderFollowsThePolicy(t *testing.T) {
	t.Parallel()
	p := dunning.DefaultPolicy()
	p.DunningWindow, p.FinalAction = dunning.Duration(20*24*time.Hour), dunning.FinalUnpaid
	require.Contains(t, timelinesvg.Render(p), ">unpaid<")
}

func TestTimelineSVGIsWellFormedAndDrawsEveryStep(t *testing.T) {
	t.Parallel()
	svg := timelinesvg.Render(dunning.DefaultPolicy())
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
	svg := timelinesvg.Render(dunning.DefaultPolicy())
	if os.Getenv("UPDATE_TIMELINE") == "1" {
		require.NoError(t, os.MkdirAll(filepath.Dir(timelinePicture), 0o755))
		require.NoError(t, os.WriteFile(timelinePicture, []byte(svg), 0o644))
		return
	}
	onDisk, err := os.ReadFile(timelinePicture)
	require.NoError(t, err, "run: UPDATE_TIMELINE=1 go test ./devtools/timelinesvg -run TestTimelinePictureIsCurrent")
	require.Equal(t, svg, string(onDisk), "%s is stale; run: UPDATE_TIMELINE=1 go test ./devtools/timelinesvg -run TestTimelinePictureIsCurrent", timelinePicture)
}
