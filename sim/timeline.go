package sim

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"time"
)

// The HTML page draws at most this many machine lanes, unit bars, fault marks
// and failover arrows; it says so when it leaves some out.
const (
	htmlLanes     = 200
	htmlBars      = 5000
	htmlFaults    = 2000
	htmlFailovers = 2000
)

// Geometry of the timeline, in SVG pixels.
const (
	laneHeight = 18
	laneLabel  = 90
	plotWidth  = 1100
	axisHeight = 24
)

type htmlPage struct {
	Title, Text string
	Left        []string // what the picture leaves out
	Width       int
	Height      int
	PlotRight   int
	Ticks       []htmlTick
	Lanes       []htmlLane
	Bars        []htmlBar
	Faults      []htmlFault
	Failovers   []htmlArrow
}

type htmlTick struct {
	X     float64
	Label string
}

type htmlLane struct {
	Machine  string
	Y, TextY float64
}

type htmlBar struct {
	Unit, Machine, Title string
	X, Y, W, H           float64
}

type htmlFault struct {
	Machine, Title string // Machine empty: the whole cluster
	X, Y1, Y2      float64
}

type htmlArrow struct {
	Unit, From, To, Title string
	X1, Y1, X2, Y2        float64
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8"/>
<title>{{.Title}}</title>
<style>
body { font-family: sans-serif; margin: 1em; }
pre { background: #f4f4f4; padding: 0.5em; }
.lane { fill: #fafafa; stroke: #ddd; }
.bar { fill: #4a90d9; }
.fault { stroke: #d0021b; stroke-width: 2; }
.cluster-fault { stroke: #f5a623; stroke-width: 2; stroke-dasharray: 4 2; }
.failover { stroke: #417505; stroke-width: 1.5; fill: none; }
text { font-size: 11px; font-family: monospace; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
<p>One lane per machine; blue bars are units running, over virtual time. Red marks are faults on a machine, dashed orange ones faults of the whole cluster (the registry), green arrows failovers: from the machine's presence expiring to the unit active elsewhere. Hover for details.</p>
{{range .Left}}<p class="left">{{.}}</p>
{{end}}<svg xmlns="http://www.w3.org/2000/svg" width="{{.Width}}" height="{{.Height}}" viewBox="0 0 {{.Width}} {{.Height}}">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M 0 0 L 10 5 L 0 10 z" fill="#417505"/></marker></defs>
{{range .Ticks}}<text x="{{.X}}" y="14">{{.Label}}</text>
{{end}}{{range .Lanes}}<g class="machine" data-machine="{{.Machine}}"><rect class="lane" x="0" y="{{.Y}}" width="{{$.PlotRight}}" height="18"/><text x="4" y="{{.TextY}}">{{.Machine}}</text></g>
{{end}}{{range .Bars}}<rect class="bar" data-unit="{{.Unit}}" data-machine="{{.Machine}}" x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="{{.H}}"><title>{{.Title}}</title></rect>
{{end}}{{range .Faults}}<line class="{{if .Machine}}fault{{else}}cluster-fault{{end}}" data-machine="{{.Machine}}" x1="{{.X}}" y1="{{.Y1}}" x2="{{.X}}" y2="{{.Y2}}"><title>{{.Title}}</title></line>
{{end}}{{range .Failovers}}<line class="failover" data-unit="{{.Unit}}" data-from="{{.From}}" data-to="{{.To}}" x1="{{.X1}}" y1="{{.Y1}}" x2="{{.X2}}" y2="{{.Y2}}" marker-end="url(#arrow)"><title>{{.Title}}</title></line>
{{end}}</svg>
<h2>Report</h2>
<pre>{{.Text}}</pre>
</body>
</html>
`))

// WriteHTML writes the report as a self-contained HTML page (no external
// resources) with an SVG timeline of the run: a lane per machine, the units as
// bars over virtual time, the faults marked and the failovers as arrows.
// Large runs are cut to the first 200 machines and 5,000 bars, which the page
// says.
func (r Report) WriteHTML(w io.Writer) error {
	tl := r.Timeline
	p := htmlPage{Title: fmt.Sprintf("fleetsim %s, seed %d", r.Source, r.Seed), Text: r.String()}
	end := max(tl.End, time.Second)
	x := func(t time.Duration) float64 {
		return round1(laneLabel + float64(plotWidth)*float64(t)/float64(end))
	}
	lanes := map[string]int{}
	for i, m := range tl.Machines {
		if i == htmlLanes {
			p.Left = append(p.Left, fmt.Sprintf("Only the first %d of %d machines are drawn.", htmlLanes, len(tl.Machines)))
			break
		}
		lanes[m] = i
		y := float64(axisHeight + i*laneHeight)
		p.Lanes = append(p.Lanes, htmlLane{Machine: m, Y: y, TextY: y + 13})
	}
	laneY := func(m string) (float64, bool) {
		i, ok := lanes[m]
		return float64(axisHeight + i*laneHeight), ok
	}
	p.PlotRight = laneLabel + plotWidth
	p.Width = p.PlotRight + 50
	p.Height = axisHeight + len(p.Lanes)*laneHeight + 10
	for i := 0; i <= 10; i++ {
		t := end * time.Duration(i) / 10
		p.Ticks = append(p.Ticks, htmlTick{X: x(t), Label: t.Round(time.Millisecond).String()})
	}
	skipped := 0
	for _, b := range tl.Bars {
		y, ok := laneY(b.Machine)
		if !ok || len(p.Bars) == htmlBars {
			skipped++
			continue
		}
		p.Bars = append(p.Bars, htmlBar{
			Unit: b.Unit, Machine: b.Machine, X: x(b.Start), Y: y + 3, W: max(round1(x(b.End)-x(b.Start)), 1), H: laneHeight - 6,
			Title: fmt.Sprintf("%s on %s from %s to %s", b.Unit, b.Machine, b.Start, b.End),
		})
	}
	if skipped+tl.Dropped > 0 {
		p.Left = append(p.Left, fmt.Sprintf("%d unit bars or fault marks are not drawn (at most %d bars are).", skipped+tl.Dropped, htmlBars))
	}
	for _, f := range tl.Faults {
		if len(p.Faults) == htmlFaults {
			p.Left = append(p.Left, fmt.Sprintf("Only the first %d of %d faults are drawn.", htmlFaults, len(tl.Faults)))
			break
		}
		title := fmt.Sprintf("%s at %s", f.What, f.At)
		if f.Machine == "" {
			p.Faults = append(p.Faults, htmlFault{Title: title, X: x(f.At), Y1: axisHeight, Y2: float64(p.Height - 10)})
			continue
		}
		if y, ok := laneY(f.Machine); ok {
			p.Faults = append(p.Faults, htmlFault{Machine: f.Machine, Title: f.Machine + ": " + title, X: x(f.At), Y1: y, Y2: y + laneHeight})
		}
	}
	for _, f := range tl.Failovers {
		if len(p.Failovers) == htmlFailovers {
			p.Left = append(p.Left, fmt.Sprintf("Only the first %d of %d failovers are drawn.", htmlFailovers, len(tl.Failovers)))
			break
		}
		y1, ok1 := laneY(f.From)
		y2, ok2 := laneY(f.To)
		if !ok1 || !ok2 {
			continue
		}
		to, active := f.Decided, "never active there"
		if f.Activated {
			to, active = f.Active, fmt.Sprintf("active at %s", f.Active)
		}
		p.Failovers = append(p.Failovers, htmlArrow{
			Unit: f.Unit, From: f.From, To: f.To, X1: x(f.Expired), Y1: y1 + laneHeight/2, X2: x(to), Y2: y2 + laneHeight/2,
			Title: fmt.Sprintf("%s from %s to %s: gone at %s, expired at %s, moved at %s, %s", f.Unit, f.From, f.To, f.Gone, f.Expired, f.Decided, active),
		})
	}
	return pageTemplate.Execute(w, p)
}

// round1 rounds a coordinate to a tenth of a pixel, to keep pages small.
func round1(v float64) float64 { return math.Round(v*10) / 10 }
