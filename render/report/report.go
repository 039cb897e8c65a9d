// Package report writes MIGRATION.md: what was converted, every input
// field and what became of it (mapped, mapped with a warning, dropped and
// why, or a value to fill), and what the user must do next.
package report

import (
	"fmt"
	"strings"

	"github.com/cutoverhq/cutover/render"
	"github.com/cutoverhq/cutover/service"
)

// Render adds MIGRATION.md to t.
func Render(svcs []*service.Service, opts render.Options, t render.Tree) error {
	t.Add("MIGRATION.md", []byte(Markdown(svcs, opts)))
	return nil
}

// Markdown returns the mapping report.
func Markdown(svcs []*service.Service, opts render.Options) string {
	opts = opts.Defaults()
	var b strings.Builder
	b.WriteString("# Migration report\n\n")
	b.WriteString("Written by `cutover convert`. Every field of every input appears below with what became of it:\n")
	b.WriteString("**mapped** (an exact Kubernetes counterpart), **warning** (mapped, but read the note),\n")
	b.WriteString("**dropped** (Kubernetes has no place for it; the note says why and what to do instead) or\n")
	b.WriteString("**fill** (the input left a placeholder or nothing: a value you fill in `values/services/<service>.yaml`).\n\n")

	b.WriteString("## Services\n\n")
	b.WriteString("| service | from | kind | containers | mapped | warnings | dropped | to fill |\n")
	b.WriteString("|---|---|---|---:|---:|---:|---:|---:|\n")
	for _, s := range svcs {
		r := &s.Report
		fmt.Fprintf(&b, "| [%s](#%s) | %s | %s | %d | %d | %d | %d | %d |\n",
			s.Name, s.Name, s.Origin.Format, s.EffectiveKind(),
			len(s.Containers)+len(s.InitContainers)+len(s.Sidecars),
			r.Count(service.Mapped), r.Count(service.Warning), r.Count(service.Dropped), len(s.Values))
	}
	b.WriteString("\n")

	b.WriteString("## Render and check\n\n")
	b.WriteString("```sh\n")
	if len(svcs) > 0 && len(opts.Envs) > 0 {
		fmt.Fprintf(&b, "helm template %s chart -f values/base.yaml -f values/env/%s.yaml -f values/services/%s.yaml\n", svcs[0].Name, opts.Envs[0], svcs[0].Name)
	}
	b.WriteString("cutover lint .\n```\n\n")
	fmt.Fprintf(&b, "Environments: %s. Argo CD applies `argocd/` (one Application per service and environment;\n", strings.Join(opts.Envs, ", "))
	b.WriteString("production environments sync by hand). IAM trust policies for IRSA are in `iam/`.\n\n")

	for _, s := range svcs {
		fmt.Fprintf(&b, "## %s\n\n", s.Name)
		fmt.Fprintf(&b, "From %s: %s.\n\n", s.Origin.Format, strings.Join(quoted(s.Origin.Files), ", "))
		if len(s.Values) > 0 {
			b.WriteString("### Values to fill\n\n")
			fmt.Fprintf(&b, "In `values/services/%s.yaml` under `fill:`; rendering fails until each is set.\n\n", s.Name)
			b.WriteString("| value | now | why |\n|---|---|---|\n")
			for _, v := range s.Values {
				fmt.Fprintf(&b, "| `%s` | %s | %s |\n", v.Name, cell(orDash(v.Default)), cell(v.Reason))
			}
			b.WriteString("\n")
		}
		b.WriteString("### Fields\n\n")
		b.WriteString("| file:line | field | status | became | note |\n|---|---|---|---|---|\n")
		for _, f := range s.Report.Sorted() {
			loc := f.File
			if f.Line > 0 {
				loc = fmt.Sprintf("%s:%d", f.File, f.Line)
			}
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s |\n", cell(loc), cell(f.Field), f.Status, cell(orDash(f.Target)), cell(f.Message))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func quoted(files []string) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = "`" + f + "`"
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cell makes s safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\r", "")
	return strings.ReplaceAll(s, "\n", "<br>")
}
