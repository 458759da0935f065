package main

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/whistle-gov/whistle/"

// serverPackages are whistled's: the CLI talks to them over HTTP, through
// adapters/httpclient, and imports none of them.
var serverPackages = []string{"adapters/httpapi", "adapters/casehandler", "adapters/dispatch", "adapters/eventstore",
	"adapters/slawatch", "adapters/dashboard", "adapters/natsbus", "adapters/natsauth", "adapters/logfold",
	"adapters/metrics", "adapters/coretest", "cmd/whistled"}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.Fields(string(out))
}

// The CLI depends on the HTTP client, not on the server's packages (it
// imported projections and readmodel for the answers' types, and linked
// httpapi and casehandler through them). Only replay imports readmodel, for
// the auditor's own fold of the log, and config, to validate the directory
// it folds under (config reads files and links nothing but the domain).
func TestImportsTheClientNotTheServer(t *testing.T) {
	imports := map[string]bool{}
	for _, p := range goList(t, "-f", `{{join .Imports "\n"}}`, ".") {
		imports[p] = true
	}
	if !imports[module+"adapters/httpclient"] {
		t.Errorf("cmd/whistle does not import adapters/httpclient")
	}
	for _, p := range append(serverPackages, "projections") {
		if imports[module+p] {
			t.Errorf("cmd/whistle imports the server's %s", p)
		}
	}
}
