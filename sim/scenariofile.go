package sim

import (
	"fmt"
	"strings"
)

// Step is one command of a scenario file: the command's words, its input and
// the output it is expected to print.
type Step struct {
	Pos   string   // file:line of the command
	Words []string // the command and its arguments
	Input string   // the lines between the command and "----", without the last newline
	Want  string   // the expected output, each line ending in a newline
}

// Command is the step's command line as written.
func (s Step) Command() string { return strings.Join(s.Words, " ") }

// ParseScenario reads a scenario file in the datadriven format:
//
//	# a comment
//	command arg key=value
//	optional input lines
//	----
//	expected output, ending at a blank line
//
// A command line ending in a backslash continues on the next line. An expected
// output that contains blank lines is written between two separators and ends
// with two: "----", "----", output, "----", "----".
func ParseScenario(file, text string) ([]Step, error) {
	p := &scenarioParser{file: file, lines: strings.Split(text, "\n")}
	var steps []Step
	for p.i < len(p.lines) {
		line := strings.TrimSpace(p.lines[p.i])
		if line == "" || strings.HasPrefix(line, "#") {
			p.i++
			continue
		}
		s, err := p.step()
		if err != nil {
			return nil, err
		}
		steps = append(steps, s)
	}
	if len(steps) == 0 {
		return nil, fmt.Errorf("%s: no command", file)
	}
	return steps, nil
}

// scenarioParser walks the lines of one scenario file.
type scenarioParser struct {
	file  string
	lines []string
	i     int
}

func (p *scenarioParser) pos(i int) string { return fmt.Sprintf("%s:%d", p.file, i+1) }

// step reads one command, its input and its expected output.
func (p *scenarioParser) step() (Step, error) {
	s := Step{Pos: p.pos(p.i)}
	cmd := ""
	for ; p.i < len(p.lines); p.i++ {
		l := strings.TrimSpace(p.lines[p.i])
		if c, ok := strings.CutSuffix(l, `\`); ok {
			cmd += c + " "
			continue
		}
		cmd += l
		p.i++
		break
	}
	s.Words = strings.Fields(cmd)
	if len(s.Words) == 0 {
		return s, fmt.Errorf("%s: empty command", s.Pos)
	}
	var input []string
	for ; p.i < len(p.lines) && p.lines[p.i] != "----"; p.i++ {
		if err := p.nearSeparator(); err != nil {
			return s, err
		}
		input = append(input, p.lines[p.i])
	}
	if p.i == len(p.lines) {
		return s, fmt.Errorf("%s: %s: no \"----\" after the command", s.Pos, s.Command())
	}
	s.Input = strings.Join(input, "\n")
	p.i++
	if p.i < len(p.lines) && p.lines[p.i] == "----" {
		return s, p.blockOutput(&s)
	}
	var b strings.Builder
	for ; p.i < len(p.lines) && p.lines[p.i] != ""; p.i++ {
		if err := p.nearSeparator(); err != nil {
			return s, err
		}
		if strings.TrimSpace(p.lines[p.i]) == "" {
			return s, fmt.Errorf("%s: a line of only spaces: an output ends at an empty line; remove the spaces", p.pos(p.i))
		}
		b.WriteString(p.lines[p.i] + "\n")
	}
	s.Want = b.String()
	return s, nil
}

// nearSeparator refuses a line that is "----" but for spaces around it: it
// would silently be taken as input or output, swallowing the commands after it.
func (p *scenarioParser) nearSeparator() error {
	if l := p.lines[p.i]; l != "----" && strings.TrimSpace(l) == "----" {
		return fmt.Errorf("%s: %q: a separator is exactly \"----\", without spaces", p.pos(p.i), l)
	}
	return nil
}

// blockOutput reads an output written between double separators.
func (p *scenarioParser) blockOutput(s *Step) error {
	p.i++
	var b strings.Builder
	for ; p.i+1 < len(p.lines); p.i++ {
		if err := p.nearSeparator(); err != nil {
			return err
		}
		if p.lines[p.i] == "----" && p.lines[p.i+1] == "----" {
			p.i += 2
			s.Want = b.String()
			return nil
		}
		b.WriteString(p.lines[p.i] + "\n")
	}
	return fmt.Errorf("%s: %s: output not closed by \"----\" \"----\"", s.Pos, s.Command())
}
