// Package peers runs Pillar side by side with the engines it is compared
// with (Prometheus TSDB and chunk encodings, Bleve) on the same workloads, in
// the same process, so ratios are measured in one run. It is a module of its
// own so that Pillar itself never depends on them.
package peers
