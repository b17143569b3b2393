package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

type prom struct {
	db   *tsdb.DB
	lss  []labels.Labels
	refs []storage.SeriesRef
}

func (p *prom) name() string { return "prometheus" }

func (p *prom) setLabels(lss [][]string) error {
	p.lss = make([]labels.Labels, len(lss))
	for i, ls := range lss {
		p.lss[i] = labels.FromStrings(ls...)
	}
	p.refs = make([]storage.SeriesRef, len(lss))
	return nil
}

func (p *prom) open(dir string) (err error) {
	opts := tsdb.DefaultOptions()
	p.db, err = tsdb.Open(dir, nil, nil, opts, nil)
	return err
}

func (p *prom) appendScrape(ts []int64, vs []float64) error {
	app := p.db.Appender(context.Background())
	for i := range ts {
		ref, err := app.Append(p.refs[i], p.lss[i], ts[i], vs[i])
		if err != nil {
			return err
		}
		p.refs[i] = ref
	}
	return app.Commit()
}

func (p *prom) closeAndSize(dir string) (int64, string, error) {
	// Compact what the head allows into blocks, as a running Prometheus
	// does in the background, then close.
	if err := p.db.Compact(context.Background()); err != nil {
		return 0, "", err
	}
	if err := p.db.Close(); err != nil {
		return 0, "", err
	}
	total, err := dirSize(dir, nil)
	if err != nil {
		return 0, "", err
	}
	blocks, err := dirSize(dir, func(rel string) bool {
		return !strings.HasPrefix(rel, "wal") && !strings.HasPrefix(rel, "chunks_head")
	})
	return total, fmt.Sprintf("(of which compacted blocks %d B; wal + head chunks %d B)", blocks, total-blocks), err
}

func (p *prom) addSeries(lss [][]string, t int64) error {
	const batch = 10_000
	for lo := 0; lo < len(p.lss); lo += batch {
		app := p.db.Appender(context.Background())
		for i := lo; i < min(lo+batch, len(p.lss)); i++ {
			if _, err := app.Append(0, p.lss[i], t, float64(i)); err != nil {
				return err
			}
		}
		if err := app.Commit(); err != nil {
			return err
		}
	}
	return nil
}

func (p *prom) selectCount(ctx context.Context) (int, int, error) {
	q, err := p.db.Querier(0, 1<<62)
	if err != nil {
		return 0, 0, err
	}
	defer q.Close()
	ss := q.Select(ctx, false, nil,
		labels.MustNewMatcher(labels.MatchEqual, "job", "job-7"),
		labels.MustNewMatcher(labels.MatchRegexp, "instance", "inst-1.*"))
	var it chunkenc.Iterator
	series, samples := 0, 0
	for ss.Next() {
		s := ss.At()
		it = s.Iterator(it)
		for it.Next() != chunkenc.ValNone {
			samples++
		}
		series++
	}
	return series, samples, ss.Err()
}
