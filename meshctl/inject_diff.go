package main

import (
	"fmt"
	"strings"
)

// A unified diff for --dry-run. inject changes whole documents and leaves
// the others byte for byte, so the lines are matched document by document:
// small tables, whatever the size of the stream.

type lineOp struct {
	kind byte // ' ', '-' or '+'
	text string
}

// maxDiffCells bounds one document's table (old lines × new lines); past
// it, a document is shown as replaced whole.
const maxDiffCells = 4 << 20

// contextLines is diff -u's.
const contextLines = 3

// unifiedDiff is the diff of the pieces' old and new texts, "" when they
// are the same.
func unifiedDiff(oldName, newName string, pieces []piece) string {
	var ops []lineOp
	changed := false
	for _, p := range pieces {
		a, b := splitLines(string(p.old)), splitLines(string(p.new))
		if string(p.old) == string(p.new) {
			for _, l := range a {
				ops = append(ops, lineOp{' ', l})
			}
			continue
		}
		changed = true
		ops = append(ops, diffLines(a, b)...)
	}
	if !changed {
		return ""
	}
	var out strings.Builder
	fmt.Fprintf(&out, "--- %s\n+++ %s\n", oldName, newName)
	writeHunks(&out, ops)
	return out.String()
}

// splitLines keeps each line's "\n"; a last line without one is marked as
// diff marks it.
func splitLines(s string) []string {
	var lines []string
	for s != "" {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			lines = append(lines, s+"\n\\ No newline at end of file\n")
			break
		}
		lines = append(lines, s[:i+1])
		s = s[i+1:]
	}
	return lines
}

// diffLines matches a and b by a longest common subsequence.
func diffLines(a, b []string) []lineOp {
	var ops []lineOp
	// The common head and tail need no table.
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	for _, l := range a[:pre] {
		ops = append(ops, lineOp{' ', l})
	}
	ma, mb := a[pre:len(a)-suf], b[pre:len(b)-suf]
	if (len(ma)+1)*(len(mb)+1) > maxDiffCells {
		for _, l := range ma {
			ops = append(ops, lineOp{'-', l})
		}
		for _, l := range mb {
			ops = append(ops, lineOp{'+', l})
		}
	} else {
		ops = append(ops, lcsOps(ma, mb)...)
	}
	for _, l := range a[len(a)-suf:] {
		ops = append(ops, lineOp{' ', l})
	}
	return ops
}

func lcsOps(a, b []string) []lineOp {
	w := len(b) + 1
	// t[i*w+j]: the LCS length of a[i:] and b[j:].
	t := make([]int32, (len(a)+1)*w)
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				t[i*w+j] = t[(i+1)*w+j+1] + 1
			} else {
				t[i*w+j] = max(t[(i+1)*w+j], t[i*w+j+1])
			}
		}
	}
	var ops []lineOp
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case i < len(a) && j < len(b) && a[i] == b[j]:
			ops = append(ops, lineOp{' ', a[i]})
			i, j = i+1, j+1
		case j < len(b) && (i == len(a) || t[i*w+j+1] >= t[(i+1)*w+j]):
			ops = append(ops, lineOp{'+', b[j]})
			j++
		default:
			ops = append(ops, lineOp{'-', a[i]})
			i++
		}
	}
	return ops
}

// writeHunks writes ops as @@ hunks with contextLines of context.
func writeHunks(out *strings.Builder, ops []lineOp) {
	for start := 0; start < len(ops); {
		// The next change, and the hunk around it and the changes that
		// follow within 2×context lines.
		first := start
		for first < len(ops) && ops[first].kind == ' ' {
			first++
		}
		if first == len(ops) {
			return
		}
		from := max(first-contextLines, start)
		end := first
		for k := first; k < len(ops); k++ {
			if ops[k].kind != ' ' {
				end = k + 1
			} else if k-end >= 2*contextLines {
				break
			}
		}
		to := min(end+contextLines, len(ops))
		// Line numbers: count what comes before the hunk.
		aLine, bLine := 1, 1
		for _, op := range ops[:from] {
			if op.kind != '+' {
				aLine++
			}
			if op.kind != '-' {
				bLine++
			}
		}
		aN, bN := 0, 0
		for _, op := range ops[from:to] {
			if op.kind != '+' {
				aN++
			}
			if op.kind != '-' {
				bN++
			}
		}
		fmt.Fprintf(out, "@@ -%s +%s @@\n", hunkRange(aLine, aN), hunkRange(bLine, bN))
		for _, op := range ops[from:to] {
			out.WriteByte(op.kind)
			out.WriteString(op.text)
		}
		start = to
	}
}

// hunkRange is diff -u's "start,count" ("start" for one line; an empty
// range names the line before it).
func hunkRange(start, n int) string {
	switch n {
	case 0:
		return fmt.Sprintf("%d,0", start-1)
	case 1:
		return fmt.Sprintf("%d", start)
	}
	return fmt.Sprintf("%d,%d", start, n)
}
