// Package web is the shift dashboard: one page, served beside the shift's
// admin API, that shows where a shift stands (phase, step, weights, what
// it waits for), charts both sides over time, lists every decision, and
// sends the operator's commands (approve, reject, pause, resume, promote,
// abort).
//
// The page is plain HTML, CSS and JavaScript modules embedded in the
// binary: no build step, no framework and nothing fetched from a CDN, so
// it works in air-gapped clusters and in offline CI. It holds no data of
// its own: everything comes from /v1/shift, authenticated by the admin
// token the page keeps in the cutover_token cookie.
//
// Serve it on the admin port beside the admin API:
//
//	mux.Handle("/v1/", runner.AdminHandler(tokens, hist))
//	mux.Handle("/", web.Handler())
//
// The page reaches the API by relative URLs, so both may also be mounted
// together under a path prefix (http.StripPrefix). The page itself writes
// the cookie (SameSite=Strict, for this browser session), which therefore
// cannot be HttpOnly; the Content-Security-Policy forbids any script but
// the page's own.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"
)

//go:embed assets
var assets embed.FS

// csp allows nothing but this origin's own files and API: a message or
// actor name that reaches the page can never run as script, and the page
// cannot be framed (clickjacking an Approve button).
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// file is one embedded asset, ready to serve.
type file struct {
	name  string
	body  []byte
	ctype string
	etag  string
}

// Handler serves the dashboard: the page at "/" and its assets under
// "/assets/". It answers GET and HEAD only, and 404 for any other path, so
// it can be mounted at "/" beside the admin API's "/v1/".
func Handler() http.Handler {
	files := map[string]*file{}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = http.DetectContentType(b)
		}
		files["/"+p] = &file{name: p, body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		// The assets are compiled in: failing to read them is a build bug.
		panic("web: cannot read embedded assets: " + err.Error())
	}
	files["/"] = files["/assets/index.html"]
	delete(files, "/assets/index.html")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := files[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", f.ctype)
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		// Revalidate every load: after an upgrade of cutover the page
		// and its scripts must never mix versions; the ETag keeps a
		// reload to a 304.
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", f.etag)
		http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.body))
	})
}
