package tsdb

// MaintenanceStats says what one maintenance pass over the store did. The
// background scheduler in package compaction adds these up per job, so a
// user can see what maintenance costs and what it reclaims.
type MaintenanceStats struct {
	// Items counts what the pass changed: series re-encoded, rollup
	// windows written, or chunks dropped, depending on the pass.
	Items int
	// BytesIn is the encoded size of what the pass read.
	BytesIn int64
	// BytesOut is the encoded size of what the pass wrote.
	BytesOut int64
}

// Add accumulates o into s.
func (s *MaintenanceStats) Add(o MaintenanceStats) {
	s.Items += o.Items
	s.BytesIn += o.BytesIn
	s.BytesOut += o.BytesOut
}
