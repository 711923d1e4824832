// Package console serves the operator console of switchd: one HTML page,
// a script and a style sheet, embedded in the binary, with nothing loaded
// from elsewhere. The page asks for the admin token, keeps it in the
// browser tab's sessionStorage, and reads the admin API with it
// (docs/console.md).
package console

import (
	"embed"
	"io/fs"
	"net/http"
	"path"
)

//go:embed static
var static embed.FS

var files = func() fs.FS {
	f, err := fs.Sub(static, "static")
	if err != nil {
		panic(err)
	}
	return f
}()

var types = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// Handler serves GET /console (the page) and /console/NAME (its files).
func Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "index.html"
		if r.URL.Path != "/console" && r.URL.Path != "/console/" {
			name = path.Base(r.URL.Path)
		}
		b, err := fs.ReadFile(files, name)
		if err != nil {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", types[path.Ext(name)])
		// Nothing but this origin: no CDN, no inline script, no framing.
		h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		_, _ = w.Write(b)
	})
}
