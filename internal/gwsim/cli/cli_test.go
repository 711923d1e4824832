package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestBadUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--drop", "101"},
		{"--delay", "-5"},
		{"--decline", "00"},
		{"--decline-reversals", "00"},
		{"--decline-reversals", "051"},
		{"--addr", "0.0.0.0:0"},
		{"--recon-alter", "nonsense"},
		{"--accounts", "/nonexistent/accounts.yaml"},
		{"--no-such-flag"},
		{"stray"},
	} {
		var out, errb bytes.Buffer
		if code := Run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
	var out, errb bytes.Buffer
	if code := Run(context.Background(), []string{"-h"}, &out, &errb); code != 0 || !strings.Contains(errb.String(), "--disconnect-after") && !strings.Contains(errb.String(), "-disconnect-after") {
		t.Errorf("help: exit %d\n%s", code, errb.String())
	}
}

func TestRunWritesReconAtExit(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb bytes.Buffer
	done := make(chan int)
	go func() {
		done <- Run(ctx, []string{"--addr", "127.0.0.1:0", "--http", "", "--recon-dir", dir, "--recon-at-exit",
			"--recon-date", "2026-12-04", "--recon-extra", "6222020000000000018=100", "--quiet"}, &out, &errb)
	}()
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("gwsim did not stop")
	}
	b, err := os.ReadFile(filepath.Join(dir, "gwsim-20261204.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "6222020000000000018") || !strings.HasSuffix(string(b), "TOTAL,1,100\n") {
		t.Fatalf("file:\n%s", b)
	}
	if !strings.Contains(out.String(), "gwsim link listener 127.0.0.1:") || !strings.Contains(out.String(), "10000.00") {
		t.Fatalf("stdout:\n%s", out.String())
	}
}
