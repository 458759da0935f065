package httpapi_test

import (
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"github.com/whistle-gov/whistle/adapters/coretest"
	"github.com/whistle-gov/whistle/adapters/httpapi/openapi"
)

// registeredRoutes reads the routes httpapi registers from its source: the
// pattern of every a.mux.Handle/HandleFunc call, and for the commands'
// pattern (POST /v1/cases/{id}/{action}) each action caseCommand handles.
// Reading the source finds a route added by anyone, whatever its
// configuration needs to be served.
func registeredRoutes(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var patterns, actions []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				sel, ok := n.Fun.(*ast.SelectorExpr)
				if !ok || (sel.Sel.Name != "HandleFunc" && sel.Sel.Name != "Handle") || len(n.Args) != 2 {
					return true
				}
				if recv, ok := sel.X.(*ast.SelectorExpr); !ok || recv.Sel.Name != "mux" {
					return true
				}
				lit, ok := n.Args[0].(*ast.BasicLit)
				if !ok {
					t.Errorf("%s: a route's pattern is not a string literal: write it as one so this test sees it", fset.Position(n.Pos()))
					return true
				}
				p, _ := strconv.Unquote(lit.Value)
				patterns = append(patterns, p)
			case *ast.FuncDecl:
				if n.Name.Name != "caseCommand" {
					return true
				}
				ast.Inspect(n.Body, func(m ast.Node) bool {
					sw, ok := m.(*ast.SwitchStmt)
					if !ok {
						return true
					}
					if id, isIdent := sw.Tag.(*ast.Ident); !isIdent || id.Name != "action" {
						return true
					}
					for _, stmt := range sw.Body.List {
						for _, e := range stmt.(*ast.CaseClause).List {
							if lit, ok := e.(*ast.BasicLit); ok {
								a, _ := strconv.Unquote(lit.Value)
								actions = append(actions, a)
							}
						}
					}
					return false
				})
			}
			return true
		})
	}
	if len(actions) == 0 {
		t.Fatal("found no action in caseCommand's switch on action")
	}
	var routes []string
	brace := regexp.MustCompile(`\{(\w+)(\.\.\.)?\}`)
	for _, p := range patterns {
		if p == "/" {
			continue // noRoute: the 404 and 405 of everything else
		}
		method, path, ok := strings.Cut(p, " ")
		if !ok {
			t.Errorf("route %q has no method", p)
			continue
		}
		path = strings.TrimSuffix(path, "{$}")
		path = brace.ReplaceAllString(path, "{$1}")
		if strings.HasSuffix(path, "/{action}") {
			for _, a := range actions {
				routes = append(routes, method+" "+strings.TrimSuffix(path, "{action}")+a)
			}
			continue
		}
		routes = append(routes, method+" "+path)
	}
	return routes
}

// describedRoutes lists "METHOD path" of every operation of the document.
func describedRoutes(t *testing.T) []string {
	t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openapi.Document, &doc); err != nil {
		t.Fatal(err)
	}
	var routes []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method != "parameters" {
				routes = append(routes, strings.ToUpper(method)+" "+path)
			}
		}
	}
	return routes
}

func TestEveryRouteIsDescribed(t *testing.T) {
	registered, described := registeredRoutes(t), describedRoutes(t)
	if len(registered) < 20 {
		t.Fatalf("found only %d routes: %v", len(registered), registered)
	}
	for _, r := range registered {
		if !slices.Contains(described, r) {
			t.Errorf("%s is served but not described in openapi/openapi.json", r)
		}
	}
	for _, r := range described {
		if !slices.Contains(registered, r) {
			t.Errorf("openapi/openapi.json describes %s, which is not served", r)
		}
	}
}

func TestOpenAPIDocumentIsValidAndServed(t *testing.T) {
	doc, err := libopenapi.NewDocument(openapi.Document)
	if err != nil {
		t.Fatal(err)
	}
	if v := doc.GetSpecInfo().VersionNumeric; v != 3.1 {
		t.Fatalf("OpenAPI version %v, want 3.1", v)
	}
	if _, err := doc.BuildV3Model(); err != nil {
		t.Fatalf("build the model: %v", err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("document: %s: %s", e.Message, e.Reason)
		}
	}
	env := coretest.Start(t, coretest.Options{})
	srv, _ := commandAPI(t, env)
	resp, err := http.Get(srv.URL + "/v1/openapi.json") // no token
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != 200 || got["openapi"] != "3.1.0" {
		t.Fatalf("GET /v1/openapi.json: %d %v %v", resp.StatusCode, err, got["openapi"])
	}
	if raw, _ := os.ReadFile("openapi/openapi.json"); string(raw) != string(openapi.Document) {
		t.Fatal("the embedded document is not the file")
	}
}
