package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/pillar-db/pillar/tsdb"
)

type ours struct {
	db   *tsdb.DB
	lss  []tsdb.Labels
	refs []tsdb.SeriesRef
}

func (o *ours) name() string { return "pillar" }

func (o *ours) setLabels(lss [][]string) error {
	o.lss = make([]tsdb.Labels, len(lss))
	for i, ls := range lss {
		o.lss[i] = tsdb.FromStrings(ls...)
	}
	o.refs = make([]tsdb.SeriesRef, len(lss))
	return nil
}

func (o *ours) open(dir string) (err error) {
	o.db, err = tsdb.Open(dir, nil)
	return err
}

func (o *ours) appendScrape(ts []int64, vs []float64) error {
	app := o.db.Appender(context.Background())
	for i := range ts {
		ref, err := app.Append(o.refs[i], o.lss[i], ts[i], vs[i])
		if err != nil {
			return err
		}
		o.refs[i] = ref
	}
	return app.Commit()
}

func (o *ours) closeAndSize(dir string) (int64, string, error) {
	st := o.db.Stats()
	if err := o.db.Close(); err != nil {
		return 0, "", err
	}
	n, err := dirSize(dir, nil)
	if err != nil {
		return 0, "", err
	}
	sst, err := dirSize(dir, func(rel string) bool { return strings.HasSuffix(rel, ".sst") })
	return n, fmt.Sprintf("(%d sealed chunks; tables %d B, Pebble's logs and manifest %d B)", st.SealedChunks, sst, n-sst), err
}

func (o *ours) addSeries(lss [][]string, t int64) error {
	const batch = 10_000
	for lo := 0; lo < len(o.lss); lo += batch {
		app := o.db.Appender(context.Background())
		for i := lo; i < min(lo+batch, len(o.lss)); i++ {
			if _, err := app.Append(0, o.lss[i], t, float64(i)); err != nil {
				return err
			}
		}
		if err := app.Commit(); err != nil {
			return err
		}
	}
	return nil
}

func (o *ours) selectCount(ctx context.Context) (int, int, error) {
	q, err := o.db.Querier(0, 1<<62)
	if err != nil {
		return 0, 0, err
	}
	defer q.Close()
	m1, err := tsdb.NewMatcher(tsdb.MatchEqual, "job", "job-7")
	if err != nil {
		return 0, 0, err
	}
	m2, err := tsdb.NewMatcher(tsdb.MatchRegexp, "instance", "inst-1.*")
	if err != nil {
		return 0, 0, err
	}
	ss := q.Select(ctx, false, m1, m2)
	var it tsdb.Iterator
	series, samples := 0, 0
	for ss.Next() {
		s := ss.At()
		if !strings.HasPrefix(s.Labels().Get("instance"), "inst-1") {
			return 0, 0, fmt.Errorf("wrong series %s", s.Labels())
		}
		it = s.Iterator(it)
		for it.Next() != tsdb.ValNone {
			samples++
		}
		series++
	}
	return series, samples, ss.Err()
}
