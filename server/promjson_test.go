package server

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/pillar-db/pillar/query"
)

func TestAppendPointList(t *testing.T) {
	floats := []query.FPoint{{T: 1000, F: 1.5}, {T: 2500, F: -2}}
	point := func(b []byte, p query.FPoint) []byte {
		return appendPromFloat(append(appendPromTime(b, p.T), ','), p.F)
	}
	got := appendPointList([]byte("x"), `,"values":[`, floats, point)
	require.Equal(t, `x,"values":[[1,"1.5"],[2.5,"-2"]]`, string(got))
	require.Equal(t, "x", string(appendPointList([]byte("x"), `,"values":[`, nil, point)))
}
