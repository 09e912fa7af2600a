package console

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Charts are drawn on the server as SVG: the geometry is computed here, the elements written by the
// analytics template (html/template escapes every label), and the colours come from console.css. No
// script, no chart library, nothing to build.

// chartSeries is one named series of a chart: a value per category.
type chartSeries struct {
	Name   string
	Class  string // the CSS class that colours it (s1, s2, line)
	Values []float64
}

// chart is a bar chart (grouped when it has several series) or a line chart over categories.
type chart struct {
	ID, Title, Caption string
	Line               bool
	Percent            bool // values are fractions, shown as percentages
	Categories         []string
	Series             []chartSeries

	// Geometry, filled by layout.
	Width, Height int
	Bars          []chartBar
	Paths         []chartPath
	Dots          []chartBar
	Ticks         []chartTick
	XLabels       []chartTick
	Legend        []chartSeries
	Empty         bool
}

type chartBar struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type chartPath struct {
	D, Class string
}

type chartTick struct {
	X, Y float64
	Text string
}

const (
	chartW, chartH                       = 560, 220
	padLeft, padRight, padTop, padBottom = 56, 12, 12, 40
)

func (c *chart) format(v float64) string {
	if c.Percent {
		return strconv.FormatFloat(100*v, 'f', 0, 64) + "%"
	}
	if v >= 1e6 {
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
	}
	if v >= 1e4 {
		return strconv.FormatFloat(v/1e3, 'f', 0, 64) + "k"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// niceMax rounds the largest value up to 1, 2 or 5 times a power of ten, so the ticks read well.
func niceMax(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

// layout computes the chart's geometry.
func (c chart) layout() chart {
	c.Width, c.Height = chartW, chartH
	c.Legend = c.Series
	max := 0.0
	for _, s := range c.Series {
		for _, v := range s.Values {
			max = math.Max(max, v)
		}
	}
	c.Empty = len(c.Categories) == 0 || max == 0
	top := niceMax(max)
	if c.Percent {
		top = 1
	}
	plotW, plotH := float64(chartW-padLeft-padRight), float64(chartH-padTop-padBottom)
	y := func(v float64) float64 { return padTop + plotH - plotH*v/top }
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		c.Ticks = append(c.Ticks, chartTick{X: padLeft - 6, Y: y(v), Text: c.format(v)})
	}
	n := len(c.Categories)
	if n == 0 {
		return c
	}
	slot := plotW / float64(n)
	every := int(math.Ceil(float64(n) / 10)) // at most ten labels on the axis
	for i, cat := range c.Categories {
		if i%every == 0 {
			c.XLabels = append(c.XLabels, chartTick{X: padLeft + slot*(float64(i)+0.5), Y: chartH - padBottom + 16, Text: cat})
		}
	}
	if c.Line {
		for _, s := range c.Series {
			var d strings.Builder
			for i, v := range s.Values {
				x := padLeft + slot*(float64(i)+0.5)
				fmt.Fprintf(&d, "%s %.1f %.1f ", map[bool]string{true: "M", false: "L"}[i == 0], x, y(v))
				c.Dots = append(c.Dots, chartBar{X: x, Y: y(v), Class: s.Class, Title: c.Categories[i] + ": " + c.format(v)})
			}
			c.Paths = append(c.Paths, chartPath{D: strings.TrimSpace(d.String()), Class: s.Class})
		}
		return c
	}
	groupW := slot * 0.8
	barW := groupW / float64(len(c.Series))
	for si, s := range c.Series {
		for i, v := range s.Values {
			x := padLeft + slot*float64(i) + slot*0.1 + barW*float64(si)
			h := plotH * v / top
			c.Bars = append(c.Bars, chartBar{X: x, Y: y(v), W: math.Max(barW-1, 1), H: h, Class: s.Class,
				Title: c.Categories[i] + " · " + s.Name + ": " + c.format(v)})
		}
	}
	return c
}

func itoa(n int) string { return strconv.Itoa(n) }

func sortStrings(s []string) { sort.Strings(s) }
