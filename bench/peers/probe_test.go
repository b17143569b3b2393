package peers

import (
	"testing"

	"github.com/blevesearch/bleve/v2"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

func TestProbe(t *testing.T) {
	_ = bleve.NewIndexMapping
	_ = promql.NewEngine
	_ = tsdb.Open
	_ = chunkenc.NewXORChunk
}
