package sim

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// failoverScenario loses m3 with c.service on it, and leaves one unit that
// fits nowhere.
const failoverScenario = `cluster seed=7
----

add-machine m1 engine
----

add-machine m2 engine
----

add-machine m3
----

run 1s
----

submit a.service b.service c.service
----

submit nowhere.service
[Service]
ExecStart=/bin/sleep infinity
[X-Fleet]
MachineMetadata=region=mars
----

start a.service b.service c.service nowhere.service
----

converge
----

crash m3
----

run 40s
----
`

func scenarioReport(t *testing.T, text string) Report {
	t.Helper()
	steps, err := ParseScenario("failover.txt", text)
	if err != nil {
		t.Fatal(err)
	}
	res, err := RunScenario(steps, RunOptions{}, func(StepResult) {})
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	rep.Source = "failover.txt"
	return rep
}

func TestScenarioReportText(t *testing.T) {
	s := scenarioReport(t, failoverScenario).String()
	for _, want := range []string{
		"seed 7\n", "scenario: failover.txt, backend memory\n",
		"(fleet does not rebalance", "  m1=2 m2=1\n",
		"unplaceable: 1\n  nowhere.service: ",
		"failovers: 1, 1 of them active on their new machine\n",
		"  presence expired -> active elsewhere: median 120ms",
		"  machine gone     -> active elsewhere: median 28.12s",
		"  failover          held\n", "result: ok\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
	if !strings.HasPrefix(s, "seed 7\n") {
		t.Errorf("report does not start with the seed:\n%s", s)
	}
}

func TestReportJSONDecodes(t *testing.T) {
	data, err := json.Marshal(scenarioReport(t, failoverScenario).JSON())
	if err != nil {
		t.Fatal(err)
	}
	var got JSONReport
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.Seed != 7 || got.Source != "failover.txt" || got.Result != "ok" || got.Rebalances || got.Config != nil {
		t.Errorf("header fields: %+v", got)
	}
	if len(got.Machines) != 2 || got.Machines[0] != (JSONMachine{ID: "m1", Units: 2}) {
		t.Errorf("machines %+v", got.Machines)
	}
	if len(got.Unplaceable) != 1 || got.Unplaceable[0].Unit != "nowhere.service" || got.Unplaceable[0].Reason == "" {
		t.Errorf("unplaceable %+v", got.Unplaceable)
	}
	f := got.Failovers
	if f.Count != 1 || len(f.Units) != 1 || f.Units[0].From != "m3" || f.Units[0].ActiveAt == nil {
		t.Fatalf("failovers %+v", f)
	}
	u := f.Units[0]
	if !(u.GoneAt < u.ExpiredAt && u.ExpiredAt <= u.DecidedAt && u.DecidedAt < *u.ActiveAt) {
		t.Errorf("failover moments out of order: %+v", u)
	}
	if f.GoneToActive.MaxSeconds < 28 || f.ExpiredToActive.MaxSeconds > 1 {
		t.Errorf("failover latencies %+v", f)
	}
	if len(got.Invariants) != 7 || !got.Invariants[0].Held || got.TraceSHA256 == "" {
		t.Errorf("invariants %+v, trace %q", got.Invariants, got.TraceSHA256)
	}
}

// svgElement is what the test reads of the page's elements.
type svgElement struct {
	name  string
	attrs map[string]string
}

func TestReportHTMLTimeline(t *testing.T) {
	var b bytes.Buffer
	if err := scenarioReport(t, failoverScenario).WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	for _, bad := range []string{"http://", "https://", "<script", "src="} {
		if strings.Contains(strings.ReplaceAll(page, `xmlns="http://www.w3.org/2000/svg"`, ""), bad) {
			t.Errorf("the page is not self-contained: it has %q", bad)
		}
	}
	d := xml.NewDecoder(strings.NewReader(page))
	var els []svgElement
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("the page is not well-formed: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			e := svgElement{name: se.Name.Local, attrs: map[string]string{}}
			for _, a := range se.Attr {
				e.attrs[a.Name.Local] = a.Value
			}
			els = append(els, e)
		}
	}
	has := func(name string, attrs map[string]string) bool {
		for _, e := range els {
			if e.name != name {
				continue
			}
			ok := true
			for k, v := range attrs {
				ok = ok && e.attrs[k] == v
			}
			if ok {
				return true
			}
		}
		return false
	}
	for _, m := range []string{"m1", "m2", "m3"} {
		if !has("g", map[string]string{"class": "machine", "data-machine": m}) {
			t.Errorf("no lane for %s", m)
		}
	}
	if !has("rect", map[string]string{"class": "bar", "data-unit": "c.service", "data-machine": "m3"}) {
		t.Error("no bar for c.service on m3")
	}
	if !has("line", map[string]string{"class": "fault", "data-machine": "m3"}) {
		t.Error("no fault mark on m3")
	}
	if !has("line", map[string]string{"class": "failover", "data-unit": "c.service", "data-from": "m3"}) {
		t.Error("no failover arrow for c.service")
	}
}

func TestReportHTMLEscapes(t *testing.T) {
	rep := Report{Source: `<script>alert("x")</script>`, Timeline: Timeline{Machines: []string{`m"1`}}}
	var b bytes.Buffer
	if err := rep.WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "<script>") || strings.Contains(b.String(), `data-machine="m"1"`) {
		t.Errorf("not escaped:\n%s", b.String())
	}
}

func TestReportHTMLCapsLargeRuns(t *testing.T) {
	var tl Timeline
	tl.End = time.Hour
	for i := range 300 {
		tl.Machines = append(tl.Machines, fmt.Sprintf("m%03d", i))
	}
	for i := range 9000 {
		tl.Bars = append(tl.Bars, Bar{Unit: fmt.Sprintf("u%d.service", i), Machine: tl.Machines[i%300], Start: time.Minute, End: time.Hour})
	}
	var b bytes.Buffer
	if err := (Report{Source: "gen", Timeline: tl}).WriteHTML(&b); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if n := strings.Count(page, `<g class="machine"`); n != htmlLanes {
		t.Errorf("%d lanes drawn, want %d", n, htmlLanes)
	}
	if n := strings.Count(page, `<rect class="bar"`); n != htmlBars {
		t.Errorf("%d bars drawn, want %d", n, htmlBars)
	}
	for _, want := range []string{"Only the first 200 of 300 machines are drawn.", "4000 unit bars or fault marks are not drawn"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page does not say %q", want)
		}
	}
}
