// Package dashboard serves whistle's web dashboard: one page of plain HTML,
// CSS and JavaScript, embedded in the binary so that nothing is fetched at
// run time. The page signs in with a principal's token (kept in the
// browser's session storage and sent as a bearer header, never in a URL) and
// talks to the same HTTP API as every other client.
//
// It serves GET / (the page, in Chinese or English from Accept-Language)
// and GET /ui/{asset} (its script, style sheet and icon); the HTTP API
// registers them, beside GET /v1/me (who the bearer token belongs to).
package dashboard

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed static
var static embed.FS

// contentTypes maps the extensions of the embedded assets to the type they
// are served with; an asset of another extension is not served. The system's
// MIME tables are not consulted: they differ between machines (some still
// say application/javascript, or nothing at all).
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// ContentSecurityPolicy is sent with every dashboard answer: the page may
// load and connect to its own origin only, with no inline script or style.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Languages the page speaks; the first is the default.
var Languages = []string{"zh", "en"}

// Dashboard serves the embedded page and assets.
type Dashboard struct {
	assets map[string][]byte // "/ui/app.js" → content
	pages  map[string][]byte // language → index.html
}

// New loads the embedded assets. It fails only if the embedded files are
// not what this package was built with (a broken build).
func New() (*Dashboard, error) {
	d := &Dashboard{assets: map[string][]byte{}, pages: map[string][]byte{}}
	err := fs.WalkDir(static, "static", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		if _, ok := contentTypes[path.Ext(p)]; !ok {
			return fmt.Errorf("dashboard: asset %s has no known content type", p)
		}
		b, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		d.assets["/ui/"+strings.TrimPrefix(p, "static/")] = b
		return nil
	})
	if err != nil {
		return nil, err
	}
	index, ok := d.assets["/ui/index.html"]
	if !ok {
		return nil, fmt.Errorf("dashboard: index.html is not embedded")
	}
	const marker = `lang="zh-CN" data-server-lang="zh"`
	if !bytes.Contains(index, []byte(marker)) {
		return nil, fmt.Errorf("dashboard: index.html lacks the language marker %s", marker)
	}
	d.pages["zh"] = index
	d.pages["en"] = bytes.Replace(index, []byte(marker), []byte(`lang="en" data-server-lang="en"`), 1)
	return d, nil
}

// Assets lists the paths of the embedded assets, sorted.
func (d *Dashboard) Assets() []string {
	out := make([]string, 0, len(d.assets))
	for p := range d.assets {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// ServePage answers GET /: the page, in the language Accept-Language asks
// for.
func (d *Dashboard) ServePage(w http.ResponseWriter, r *http.Request) {
	lang := PickLanguage(r.Header.Get("Accept-Language"))
	h := w.Header()
	securityHeaders(h)
	h.Set("Content-Type", contentTypes[".html"])
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept-Language")
	h.Set("Content-Language", lang)
	_, _ = w.Write(d.pages[lang])
}

// ServeAsset answers GET /ui/{asset}; it writes nothing and returns false
// when there is no such asset.
func (d *Dashboard) ServeAsset(w http.ResponseWriter, r *http.Request) bool {
	b, ok := d.assets[r.URL.Path]
	if !ok {
		return false
	}
	h := w.Header()
	securityHeaders(h)
	h.Set("Content-Type", contentTypes[path.Ext(r.URL.Path)])
	h.Set("Cache-Control", "no-cache")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
	return true
}

// PickLanguage chooses among Languages from an Accept-Language header: the
// supported language with the highest quality, the earliest on a tie, and
// the default when none is acceptable.
func PickLanguage(header string) string {
	best, bestQ := Languages[0], 0.0
	for _, part := range strings.Split(header, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), "q="); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					f = 0
				}
				q = f
			}
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		for _, l := range Languages {
			if primary == l && q > bestQ {
				best, bestQ = l, q
			}
		}
	}
	return best
}
