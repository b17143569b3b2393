// Command pillar runs Pillar's demo and its tools over an embedded store:
//
//	pillar demo                     the incident walk-through on a fresh store
//	pillar query  --dir D 'promql'  a PromQL query (instant, or range with --start/--end/--step)
//	pillar traces --dir D           find traces by service, operation, attributes, duration
//	pillar trace  --dir D <id>      one trace as a tree
//	pillar logs   --dir D 'query'   search logs
//	pillar inspect --dir D          what the store holds and how big it is
//	pillar bench                    the storage benchmarks
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "pillar:", err)
		}
		os.Exit(1)
	}
}

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"demo", "walk an incident from a latency alert to the guilty query", demoCmd},
		{"query", "run a PromQL query over a store's metrics", queryCmd},
		{"traces", "find traces by service, operation, attributes and duration", tracesCmd},
		{"trace", "show one trace as a tree with its critical path", traceCmd},
		{"logs", "search a store's logs", logsCmd},
		{"inspect", "show what a store holds and its size on disk", inspectCmd},
		{"bench", "run the storage benchmarks and print what they measured", benchCmd},
		{"serve", "serve the Prometheus, OTLP, Tempo and Loki HTTP APIs over a store", serveCmd},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			err := c.run(ctx, args[1:], stdout, stderr)
			if errors.Is(err, flag.ErrHelp) {
				return nil
			}
			return err
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprint(w, "Usage: pillar <command> [flags]   (pillar <command> --help for its flags)\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
}
