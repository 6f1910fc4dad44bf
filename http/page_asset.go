package http

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// pageAsset is an embedded file served with a strong ETag, so that a
// browser revalidates it cheaply.
type pageAsset struct {
	name, contentType string
	body              []byte
	etag              string
}

var pageAssets = func() map[string]*pageAsset {
	m := map[string]*pageAsset{}
	for name, ct := range map[string]string{"page.css": "text/css; charset=utf-8", "page.js": "text/javascript; charset=utf-8", "insights.js": "text/javascript; charset=utf-8"} {
		body, err := fs.ReadFile(webFiles, "web/"+name)
		if err != nil {
			panic(err)
		}
		sum := sha256.Sum256(body)
		m[name] = &pageAsset{name: name, contentType: ct, body: body, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return m
}()

// assetURL names an asset with its hash, so that a new build is never
// served a stale copy.
func assetURL(name string) string {
	a := pageAssets[name]
	return "/assets/" + name + "?v=" + strings.Trim(a.etag, `"`)
}

func (a *pageAsset) serve(c echo.Context) error {
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, a.contentType)
	h.Set("ETag", a.etag)
	h.Set(echo.HeaderCacheControl, "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	if match := c.Request().Header.Get("If-None-Match"); match == a.etag {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, a.contentType, a.body)
}
