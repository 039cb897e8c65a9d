package export

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"strings"
)

// Formats are the formats Write knows.
var Formats = []string{"md", "html", "json"}

// Write renders the report in format: "md", "html" or "json".
func Write(w io.Writer, rep *Report, format string) error {
	switch format {
	case "md", "markdown":
		return WriteMarkdown(w, rep)
	case "html":
		return WriteHTML(w, rep)
	case "json":
		return WriteJSON(w, rep)
	}
	return fmt.Errorf("unknown format %q (%s)", format, strings.Join(Formats, ", "))
}

// WriteJSON writes the report as indented JSON.
func WriteJSON(w io.Writer, rep *Report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// Verdict is the integrity line that heads every format.
func (r *Report) Verdict() string {
	in := r.Integrity
	switch {
	case !in.Whole:
		return "NOT WHOLE: " + in.Problems[0]
	case in.Records == 0:
		return "empty log"
	case in.KeyChecked && in.Proven == 0:
		return "whole; no record is covered by a verified signature"
	case in.KeyChecked && in.Proven == in.Records:
		return "whole and signed: every record is covered by a verified checkpoint"
	case in.KeyChecked:
		return fmt.Sprintf("whole and signed through record %d; records after it are chained but not yet covered by a checkpoint", in.Proven)
	case in.Signed:
		return "whole (hash chain); signatures present but not checked: give the public key"
	default:
		return "whole (hash chain); the log is unsigned"
	}
}

// Signatures describes what was proven by signatures.
func (r *Report) Signatures() string {
	in := r.Integrity
	switch {
	case !in.Signed:
		return "none: the log is unsigned"
	case !in.KeyChecked:
		return "present (key " + strings.Join(in.KeyIDs, ", ") + "), not checked"
	case in.Proven == 0:
		return "checked against key " + strings.Join(in.KeyIDs, ", ") + "; none proves a record"
	}
	return fmt.Sprintf("checked against key %s; records 1–%d proven", strings.Join(in.KeyIDs, ", "), in.Proven)
}

// WriteMarkdown writes the report as GitHub-flavoured Markdown.
func WriteMarkdown(w io.Writer, rep *Report) error {
	var b bytes.Buffer
	in := rep.Integrity
	fmt.Fprintf(&b, "# Evidence report: production changes and resilience\n\n")
	fmt.Fprintf(&b, "Audit log `%s`, generated %s by cutover.\n\n", mdCode(rep.Location), stamp(rep.Generated))
	fmt.Fprintf(&b, "## Integrity\n\n**%s**\n\n", mdText(rep.Verdict()))
	fmt.Fprintf(&b, "| | |\n|---|---|\n")
	fmt.Fprintf(&b, "| Records | %d |\n", in.Records)
	if in.Records > 0 {
		fmt.Fprintf(&b, "| Period | %s to %s |\n", stamp(in.From), stamp(in.To))
	}
	if in.Head != "" {
		fmt.Fprintf(&b, "| Head | `%s` |\n", in.Head)
	}
	fmt.Fprintf(&b, "| Signatures | %s |\n\n", mdText(rep.Signatures()))
	if in.Head != "" {
		fmt.Fprintf(&b, "Keep the head: `cutover audit verify %s --expect %s` proves later that the log still holds every record up to it.\n\n", mdCode(rep.Location), in.Head)
	}
	for _, p := range in.Problems {
		fmt.Fprintf(&b, "- Problem: %s\n", mdText(p))
	}
	for _, wn := range in.Warnings {
		fmt.Fprintf(&b, "- Warning: %s\n", mdText(wn))
	}
	if len(in.Problems)+len(in.Warnings) > 0 {
		b.WriteString("\n")
	}
	for i, s := range rep.Sections {
		fmt.Fprintf(&b, "## %d. %s: %s\n\n", i+1, s.Title, s.Status)
		fmt.Fprintf(&b, "> %s\n\n%s\n\n", mdText(s.Requirement), mdText(s.Summary))
		if len(s.Rows) > 0 {
			exc := hasExceptions(s)
			cols := append(append([]string{}, s.Columns...), "Records")
			if exc {
				cols = append(cols, "Exception")
			}
			b.WriteString("|")
			for _, c := range cols {
				b.WriteString(" " + mdCell(c) + " |")
			}
			b.WriteString("\n|")
			for range cols {
				b.WriteString("---|")
			}
			b.WriteString("\n")
			for _, r := range s.Rows {
				b.WriteString("|")
				for _, c := range r.Cells {
					b.WriteString(" " + mdCell(c) + " |")
				}
				b.WriteString(" " + refs(r.Records) + " |")
				if exc {
					b.WriteString(" " + mdCell(r.Exception) + " |")
				}
				b.WriteString("\n")
			}
			b.WriteString("\n")
		}
		for _, n := range s.Notes {
			fmt.Fprintf(&b, "Note: %s\n\n", mdText(n))
		}
	}
	b.WriteString("Records are cited as #SEQ and the first 12 hex digits of their hash; `cutover audit show` lists them, `cutover audit export --format json` gives full hashes.\n")
	_, err := w.Write(b.Bytes())
	return err
}

func hasExceptions(s Section) bool {
	for _, r := range s.Rows {
		if r.Exception != "" {
			return true
		}
	}
	return false
}

func refs(rs []Ref) string {
	var p []string
	for _, r := range rs {
		p = append(p, "`"+r.String()+"`")
	}
	if len(p) == 0 {
		return "—"
	}
	return strings.Join(p, ", ")
}

// mdText escapes what Markdown would read as markup in running text.
func mdText(s string) string {
	r := strings.NewReplacer("\\", "\\\\", "*", "\\*", "_", "\\_", "`", "\\`", "<", "&lt;", ">", "&gt;", "[", "\\[", "]", "\\]", "\n", " ", "\r", " ", "|", "\\|")
	return r.Replace(s)
}

// mdCell is mdText for a table cell.
func mdCell(s string) string { return mdText(s) }

// mdCode keeps s inside one code span.
func mdCode(s string) string {
	return strings.NewReplacer("`", "'", "\n", " ", "\r", " ", "|", "\\|").Replace(s)
}

//go:embed report.html.tmpl
var htmlTemplate string

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"stamp":  stamp,
	"inc":    func(i int) int { return i + 1 },
	"hasExc": hasExceptions,
	"slug":   func(s Status) string { return strings.ReplaceAll(string(s), " ", "-") },
}).Parse(htmlTemplate))

// WriteHTML writes the report as one self-contained HTML page.
func WriteHTML(w io.Writer, rep *Report) error {
	var b bytes.Buffer
	if err := htmlTmpl.Execute(&b, rep); err != nil {
		return err
	}
	_, err := w.Write(b.Bytes())
	return err
}
