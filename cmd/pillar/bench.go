package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/pillar-db/pillar/bench"
)

func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	workloads := fs.String("workload", strings.Join(bench.Workloads, ","), "comma-separated workloads to run")
	scale := fs.Float64("scale", 1, "multiplies every workload's size")
	dir := fs.String("dir", "", "directory for the stores (default: a temporary directory, removed afterwards)")
	seconds := fs.Float64("seconds", 1, "seconds each query is repeated for its latency percentiles")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	quiet := fs.Bool("quiet", false, "no progress bar on stderr")
	fs.Usage = func() {
		fmt.Fprint(stderr, "Usage: pillar bench [flags]\n\nRuns Pillar's storage benchmarks on fixed-seed workloads and prints what it measured.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg := bench.Config{Scale: *scale, Dir: *dir, QuerySeconds: *seconds, Progress: stderr}
	if *quiet {
		cfg.Progress = nil
	}
	for _, w := range strings.Split(*workloads, ",") {
		if w = strings.TrimSpace(w); w != "" {
			cfg.Workloads = append(cfg.Workloads, w)
		}
	}
	rep, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return rep.WriteJSON(stdout)
	}
	return rep.WriteTable(stdout)
}
