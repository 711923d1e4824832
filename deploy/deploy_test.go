// Package deploy holds no code: its tests check the files an operator
// installs (deploy/prometheus, deploy/grafana, deploy/systemd, the
// Dockerfile) against the daemon they are for.
package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	switching "github.com/cardswitch/cardswitch/switch"
	"go.uber.org/zap"
	"gopkg.in/yaml.v3"
)

// needTool returns the path of an external tool, skipping the test when it
// is missing on a developer's machine. In CI (.ci/run sets CI) a missing
// tool fails the test: .ci/run installs it.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s not found: .ci/run installs the Debian package %s", name, pkg)
	}
	t.Skipf("%s not found: install the Debian package %s to run this test (CI always runs it)", name, pkg)
	return ""
}

func TestAlertRules(t *testing.T) {
	promtool := needTool(t, "promtool", "prometheus")
	for _, args := range [][]string{
		{"check", "rules", "alerts.yml"},
		{"test", "rules", "alerts_test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// exportedMetrics starts a real daemon on ephemeral ports and returns the
// metric family names its /metrics page lists.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	dir := t.TempDir()
	demo, err := switching.IsolatedDemoConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := *demo
	sw, err := switching.New(&cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sw.Shutdown(ctx)
	}()
	_, _, httpAddr := sw.Addrs()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			names[f[2]] = true
		}
	}
	if !names["switch_journal_entries_total"] || !names["go_goroutines"] {
		t.Fatalf("the daemon's /metrics lacks its contracted series:\n%s", body)
	}
	return names
}

// documentedMetrics returns the names in the first column of the metrics
// table of docs/operations.md.
func documentedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n## Metrics\n")
	if !ok {
		t.Fatal("docs/operations.md has no Metrics section")
	}
	section, _, _ := strings.Cut(after, "\n## ")
	rows := map[string]bool{}
	for _, block := range tableBlocks(section) {
		if !block.table {
			continue
		}
		for _, line := range block.lines[2:] {
			rows[strings.Trim(strings.TrimSpace(strings.Split(line, "|")[1]), "`")] = true
		}
	}
	return rows
}

// tableBlock is a run of lines starting with "|"; table says it is a
// Markdown table (a header row, then the |--- row).
type tableBlock struct {
	lines []string
	table bool
}

func tableBlocks(text string) []tableBlock {
	var out []tableBlock
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			out = append(out, tableBlock{lines: cur, table: len(cur) >= 2 && strings.HasPrefix(cur[1], "|---")})
		}
		cur = nil
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "|") {
			cur = append(cur, line)
			continue
		}
		flush()
	}
	flush()
	return out
}

// knownMetrics are the series switchd exports: those on a fresh daemon's
// /metrics (a vector shows only once it has a child, so a transaction's
// series are not there yet) and those documented in docs/operations.md
// (TestMetricsDocumented keeps the two in step).
func knownMetrics(t *testing.T) map[string]bool {
	names := exportedMetrics(t)
	for n := range documentedMetrics(t) {
		names[n] = true
	}
	return names
}

// metricRef finds the metric names in a PromQL expression: identifiers
// followed by a selector, a range, or standing alone, that are not
// functions, keywords or label names.
var identRe = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)

func metricRefs(expr string) []string {
	// Drop label matchers and strings: {…} and "…" hold label names and
	// values, not metrics.
	expr = regexp.MustCompile(`"[^"]*"`).ReplaceAllString(expr, `""`)
	expr = regexp.MustCompile(`\{[^}]*\}`).ReplaceAllString(expr, "")
	expr = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`).ReplaceAllString(expr, "")
	var out []string
	for _, loc := range identRe.FindAllStringIndex(expr, -1) {
		id := expr[loc[0]:loc[1]]
		rest := strings.TrimLeft(expr[loc[1]:], " ")
		if strings.HasPrefix(rest, "(") || strings.HasPrefix(id, "$") {
			continue // a function call
		}
		if loc[0] > 0 && expr[loc[0]-1] == '$' {
			continue // a Grafana variable
		}
		switch id {
		case "and", "or", "unless", "bool", "offset", "le", "s", "m", "h", "d", "e":
			continue
		}
		if strings.HasPrefix(id, "switch_") || strings.HasPrefix(id, "go_") || strings.HasPrefix(id, "process_") || id == "up" {
			out = append(out, id)
		}
	}
	return out
}

// known reports whether a referenced name is exported: a histogram's or
// summary's _bucket, _sum and _count series belong to its family.
func known(exported map[string]bool, name string) bool {
	if exported[name] || name == "up" {
		return true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok && exported[base] {
			return true
		}
	}
	return false
}

func TestMetricRefs(t *testing.T) {
	got := metricRefs(`histogram_quantile(0.99, sum by (instance, le) (rate(switch_transaction_duration_seconds_bucket{instance=~"$instance",rc!="00"}[$__rate_interval]))) > 0.5 and up{job="switchd"} == 0 or process_open_fds / process_max_fds`)
	want := []string{"switch_transaction_duration_seconds_bucket", "up", "process_open_fds", "process_max_fds"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("metricRefs = %v, want %v", got, want)
	}
	exported := map[string]bool{"switch_transaction_duration_seconds": true}
	if !known(exported, "switch_transaction_duration_seconds_bucket") || known(exported, "switch_transaction_duration") {
		t.Error("known: histogram suffixes wrong")
	}
}

type dashboard struct {
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Time          struct {
		From string `json:"from"`
		To   string `json:"to"`
	} `json:"time"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

// grafanaPanelTypes are the panel plugins built into Grafana 10 and 11
// that the dashboard may use.
var grafanaPanelTypes = map[string]bool{"row": true, "timeseries": true, "stat": true, "gauge": true,
	"heatmap": true, "state-timeline": true, "table": true, "bargauge": true, "text": true}

// TestDashboard checks deploy/grafana/switchd.json against the fields
// Grafana's dashboard schema requires, and every query against the
// metrics the daemon exports.
func TestDashboard(t *testing.T) {
	b, err := os.ReadFile("grafana/switchd.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(b)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	if d.UID == "" || len(d.UID) > 40 || d.Title == "" {
		t.Errorf("uid %q (1..40 characters) and title %q are required", d.UID, d.Title)
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: want a Grafana 9+ schema (>= 36)", d.SchemaVersion)
	}
	if d.Time.From == "" || d.Time.To == "" {
		t.Error("time.from and time.to are required")
	}
	vars := map[string]bool{}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	if !vars["datasource"] || !vars["instance"] {
		t.Errorf("templating must define datasource and instance, has %v", vars)
	}
	exported := knownMetrics(t)
	ids := map[int]bool{}
	used := map[string]bool{}
	var lastRowY = -1
	for _, p := range d.Panels {
		if ids[p.ID] || p.ID <= 0 {
			t.Errorf("panel %q: id %d missing or repeated", p.Title, p.ID)
		}
		ids[p.ID] = true
		if !grafanaPanelTypes[p.Type] {
			t.Errorf("panel %q: type %q is not a built-in panel", p.Title, p.Type)
		}
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		g := p.GridPos
		if g == nil || g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 || g.Y < 0 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
			continue
		}
		if p.Type == "row" {
			if g.Y <= lastRowY {
				t.Errorf("row %q at y=%d is not below the previous row", p.Title, g.Y)
			}
			lastRowY = g.Y
			if len(p.Targets) > 0 {
				t.Errorf("row %q has queries", p.Title)
			}
			continue
		}
		if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource must be the dashboard's Prometheus variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: refId %q missing or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			names := metricRefs(tg.Expr)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q names no metric", p.Title, tg.Expr)
			}
			for _, n := range names {
				used[n] = true
				if !known(exported, n) {
					t.Errorf("panel %q: %s is not a metric switchd exports", p.Title, n)
				}
			}
		}
	}
	// The list of what the dashboard shows, by the series each needs.
	for _, want := range []string{"switch_transactions_total", "switch_transaction_duration_seconds_bucket",
		"switch_connections", "switch_gateway_link_state", "switch_saf_depth", "switch_saf_dead_letters",
		"switch_pebble_disk_usage_bytes", "switch_pebble_read_amplification", "go_goroutines"} {
		if !used[want] {
			t.Errorf("the dashboard shows nothing from %s", want)
		}
	}
}

// TestAlertMetricsExist checks every alert's expression against the
// metrics the daemon exports, and that each alert has a runbook section in
// docs/operations.md.
func TestAlertMetricsExist(t *testing.T) {
	b, err := os.ReadFile("prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	ops, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	exported := knownMetrics(t)
	var alerts []string
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			for _, n := range metricRefs(r.Expr) {
				if !known(exported, n) {
					t.Errorf("alert %s: %s is not a metric switchd exports", r.Alert, n)
				}
			}
			anchor := "docs/operations.md#" + strings.ToLower(r.Alert)
			if r.Annotations["runbook"] != anchor {
				t.Errorf("alert %s: runbook annotation %q, want %q", r.Alert, r.Annotations["runbook"], anchor)
			}
			if !strings.Contains(string(ops), "\n### "+r.Alert+"\n") {
				t.Errorf("alert %s: docs/operations.md has no runbook section \"### %s\"", r.Alert, r.Alert)
			}
		}
	}
	sort.Strings(alerts)
	for _, want := range []string{"SwitchDataDiskFilling", "SwitchDeclineRateSpike", "SwitchLatencyP99High",
		"SwitchLinkDown", "SwitchSAFBacklogOld", "SwitchSAFDeadLetter", "SwitchdDown"} {
		if i := sort.SearchStrings(alerts, want); i == len(alerts) || alerts[i] != want {
			t.Errorf("alerts.yml has no %s", want)
		}
	}
}

// TestMetricsDocumented checks that every series switchd exports (but the
// Go and process collectors') is documented: a row of the metrics table in
// docs/operations.md, or named on the docs page of its feature. And that
// its rows are in tables: no row stranded after a table's end.
func TestMetricsDocumented(t *testing.T) {
	rows := documentedMetrics(t)
	var docs strings.Builder
	pages, _ := filepath.Glob("../docs/*.md")
	for _, p := range pages {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs.Write(b)
	}
	for name := range exportedMetrics(t) {
		if strings.HasPrefix(name, "switch_") && !rows[name] && !strings.Contains(docs.String(), "`"+name) {
			t.Errorf("%s is exported but documented nowhere (the metrics table of docs/operations.md lists every series)", name)
		}
	}
	b, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(b), "\n## Metrics\n")
	section, _, _ = strings.Cut(section, "\n## ")
	for _, block := range tableBlocks(section) {
		if !block.table {
			t.Errorf("docs/operations.md: metric rows outside a table (no header row before them):\n%s", strings.Join(block.lines, "\n"))
		}
	}
}

var unitKey = regexp.MustCompile(`^([A-Za-z]+)=(.*)$`)

// TestSystemdUnit checks the unit's hardening and, where systemd-analyze
// is installed, that systemd accepts it.
func TestSystemdUnit(t *testing.T) {
	b, err := os.ReadFile("systemd/switchd.service")
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if m := unitKey.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			keys[m[1]] = append(keys[m[1]], m[2])
		}
	}
	for k, want := range map[string]string{
		"DynamicUser": "yes", "ProtectSystem": "strict", "ReadWritePaths": "/var/lib/switchd",
		"NoNewPrivileges": "yes", "ProtectHome": "yes", "PrivateTmp": "yes", "LimitNOFILE": "65536",
		"ExecReload": "/bin/kill -HUP $MAINPID", "KillSignal": "SIGTERM", "CapabilityBoundingSet": "",
		// Pebble's memtables on huge pages (docs/operations.md).
		"Environment": "GLIBC_TUNABLES=glibc.malloc.hugetlb=1",
	} {
		if got := keys[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if !strings.Contains(strings.Join(keys["ExecStartPre"], ""), "--check-config") {
		t.Error("ExecStartPre should validate the configuration with --check-config")
	}
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed: the unit's syntax is not verified")
	}
	// systemd-analyze verify wants the executables to exist: point them at
	// a built switchd.
	dir := t.TempDir()
	bin := filepath.Join(dir, "switchd")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/switchd").CombinedOutput(); err != nil {
		t.Fatalf("build switchd: %v\n%s", err, out)
	}
	unit := strings.ReplaceAll(string(b), "/usr/local/bin/switchd", bin)
	path := filepath.Join(dir, "switchd.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	// It exits 0 on unknown keys and bad values ("ignoring"), naming the
	// file and line: any line about the unit is a defect.
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), path) {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestDockerfile checks the Dockerfile's shape: a build stage and a
// runtime stage, a static binary, a non-root user. (Building the image
// needs the network; this test does not.)
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	if n := regexp.MustCompile(`(?m)^FROM `).FindAllStringIndex(s, -1); len(n) < 2 {
		t.Errorf("want a multi-stage build, have %d FROM lines", len(n))
	}
	if !strings.Contains(s, "CGO_ENABLED=0") {
		t.Error("the binary must be static (CGO_ENABLED=0)")
	}
	users := regexp.MustCompile(`(?m)^USER (\S+)`).FindAllStringSubmatch(s, -1)
	if len(users) == 0 {
		t.Fatal("no USER: the daemon would run as root")
	}
	if u := users[len(users)-1][1]; u == "root" || u == "0" || strings.HasPrefix(u, "0:") {
		t.Errorf("runs as %s, want a non-root user", u)
	}
	// The build image follows go.mod's go line.
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goLine := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if goLine == nil || !strings.Contains(s, "golang:"+string(goLine[1])) {
		t.Errorf("the build stage's golang image should match go.mod's go line")
	}
}
