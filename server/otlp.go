package server

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	logspb "go.opentelemetry.io/proto/otlp/logs/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/pillar-db/pillar/logindex"
	"github.com/pillar-db/pillar/tracestore"
	"github.com/pillar-db/pillar/tracestore/otlpconv"
)

// OTLP/HTTP: the Export*ServiceRequest messages are wire-identical to
// TracesData, LogsData and MetricsData (one repeated field 1), so bodies
// are decoded as those and the responses are encoded by hand; this keeps
// the gRPC service packages out of the build.

// otlpFormat is the body format of an OTLP request: protobuf or JSON.
type otlpFormat uint8

const (
	otlpProto otlpFormat = iota
	otlpJSON
)

func otlpFormatOf(r *http.Request) (otlpFormat, error) {
	switch mediaType(r) {
	case "application/x-protobuf", "application/protobuf", "":
		return otlpProto, nil
	case "application/json":
		return otlpJSON, nil
	}
	return 0, fmt.Errorf("%w: %q (want application/x-protobuf or application/json)", ErrUnsupportedMediaType, r.Header.Get("Content-Type"))
}

// writeOTLPError answers with a google.rpc.Status in the request's format.
func writeOTLPError(w http.ResponseWriter, f otlpFormat, status int, msg string) {
	if f == otlpJSON {
		b := []byte(`{"code":3,"message":`)
		b = appendJSONString(b, msg)
		writeJSON(w, status, append(b, '}'))
		return
	}
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 3) // INVALID_ARGUMENT
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, msg)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeOTLPSuccess answers with an Export*ServiceResponse whose partial
// success names how many items were rejected and why. jsonField is the
// count's JSON name (rejectedSpans, rejectedLogRecords, rejectedDataPoints).
func writeOTLPSuccess(w http.ResponseWriter, f otlpFormat, jsonField string, rejected int, msg string) {
	if f == otlpJSON {
		b := []byte("{}")
		if rejected > 0 || msg != "" {
			b = []byte(`{"partialSuccess":{"` + jsonField + `":"` + strconv.Itoa(rejected) + `","errorMessage":`)
			b = appendJSONString(b, msg)
			b = append(b, "}}"...)
		}
		writeJSON(w, http.StatusOK, b)
		return
	}
	var b []byte
	if rejected > 0 || msg != "" {
		var ps []byte
		if rejected > 0 {
			ps = protowire.AppendTag(ps, 1, protowire.VarintType)
			ps = protowire.AppendVarint(ps, uint64(rejected))
		}
		if msg != "" {
			ps = protowire.AppendTag(ps, 2, protowire.BytesType)
			ps = protowire.AppendString(ps, msg)
		}
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, ps)
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// readOTLP reads and decompresses an OTLP body and says its format.
func (s *Server) readOTLP(w http.ResponseWriter, r *http.Request) ([]byte, otlpFormat, bool) {
	return s.readOTLPInto(w, r, &bodyBuffers{})
}

// readOTLPInto is readOTLP reusing bufs' memory.
func (s *Server) readOTLPInto(w http.ResponseWriter, r *http.Request, bufs *bodyBuffers) ([]byte, otlpFormat, bool) {
	f, err := otlpFormatOf(r)
	if err != nil {
		writeOTLPError(w, otlpProto, statusOf(err), err.Error())
		return nil, f, false
	}
	body, err := s.readBodyInto(r, false, bufs)
	if err != nil {
		writeOTLPError(w, f, statusOf(err), err.Error())
		return nil, f, false
	}
	return body, f, true
}

// DecodeOTLPTraces decodes an OTLP trace export body (protobuf or
// OTLP/JSON with hex IDs) into spans. Errors wrap ErrBadPayload.
func DecodeOTLPTraces(body []byte, jsonBody bool) ([]tracestore.Span, error) {
	var d otlpconv.TraceDecoder
	return decodeOTLPTraces(&d, nil, body, jsonBody)
}

// decodeOTLPTraces appends the spans of body to dst; protobuf bodies are
// read by d straight from the wire format, so the spans are valid until
// d's next use.
func decodeOTLPTraces(d *otlpconv.TraceDecoder, dst []tracestore.Span, body []byte, jsonBody bool) ([]tracestore.Span, error) {
	var spans []tracestore.Span
	var err error
	if jsonBody {
		spans, err = otlpconv.UnmarshalJSON(dst, body)
	} else {
		spans, err = d.Decode(dst, body)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPayload, err)
	}
	return spans, nil
}

// traceScratch is what one OTLP trace request reuses from the last: the
// body's buffers (both decoders copy what they keep out of the body), the
// wire decoder's arenas and the span slice.
type traceScratch struct {
	body  bodyBuffers
	dec   otlpconv.TraceDecoder
	spans []tracestore.Span
}

func (s *Server) handleOTLPTraces(w http.ResponseWriter, r *http.Request) {
	sc, _ := s.traceScratch.Get().(*traceScratch)
	if sc == nil {
		sc = new(traceScratch)
	}
	used := 0
	defer func() {
		// Pooled memory must not keep the request's strings alive.
		clear(sc.spans[:used])
		sc.dec.Reset()
		sc.body.keep()
		s.traceScratch.Put(sc)
	}()
	body, f, ok := s.readOTLPInto(w, r, &sc.body)
	if !ok {
		return
	}
	spans, err := decodeOTLPTraces(&sc.dec, sc.spans[:0], body, f == otlpJSON)
	if err != nil {
		writeOTLPError(w, f, http.StatusBadRequest, err.Error())
		return
	}
	sc.spans, used = spans[:0], len(spans)
	// Drop the spans the store would refuse, so the rest is stored and the
	// sender learns what was rejected (OTLP partial success).
	var rejected int
	var msg string
	for {
		err = s.db.Traces().Write(r.Context(), spans)
		var se *tracestore.SpanError
		if err == nil || !errors.As(err, &se) || se.Index < 0 || se.Index >= len(spans) {
			break
		}
		if msg == "" {
			msg = se.Error()
		}
		bad := spans[se.Index]
		kept := spans[:0]
		for i := range spans {
			sp := &spans[i]
			if i == se.Index || errors.Is(se.Err, tracestore.ErrTraceTooLarge) && sp.TraceID == bad.TraceID {
				rejected++
				continue
			}
			kept = append(kept, *sp)
		}
		spans = kept
	}
	if err != nil {
		s.metrics.rejectedSpans.Add(uint64(len(spans) + rejected))
		writeOTLPError(w, f, http.StatusInternalServerError, err.Error())
		return
	}
	s.metrics.spans.Add(uint64(len(spans)))
	s.metrics.rejectedSpans.Add(uint64(rejected))
	writeOTLPSuccess(w, f, "rejectedSpans", rejected, msg)
}

// unmarshalOTLPJSON reads an OTLP/JSON document into m, first rewriting
// the hex trace and span IDs (OTLP/JSON) into the base64 protojson expects.
func unmarshalOTLPJSON(body []byte, m proto.Message) error {
	var doc any
	if err := json.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("%w: %v", ErrBadPayload, err)
	}
	if err := hexIDsToBase64(doc, 0); err != nil {
		return err
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadPayload, err)
	}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, m); err != nil {
		return fmt.Errorf("%w: %v", ErrBadPayload, err)
	}
	return nil
}

var idKeys = map[string]bool{"traceId": true, "spanId": true, "parentSpanId": true, "trace_id": true, "span_id": true, "parent_span_id": true}

func hexIDsToBase64(doc any, depth int) error {
	if depth > 64 {
		return fmt.Errorf("%w: JSON nested too deeply", ErrBadPayload)
	}
	switch d := doc.(type) {
	case map[string]any:
		for k, v := range d {
			if str, ok := v.(string); ok && idKeys[k] {
				raw, err := hex.DecodeString(str)
				if err != nil {
					return fmt.Errorf("%w: %s %q is not hex", ErrBadPayload, k, str)
				}
				d[k] = base64.StdEncoding.EncodeToString(raw)
				continue
			}
			if err := hexIDsToBase64(v, depth+1); err != nil {
				return err
			}
		}
	case []any:
		for _, v := range d {
			if err := hexIDsToBase64(v, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// DecodeOTLPLogs decodes an OTLP log export body into records. Records
// that cannot be stored are counted in rejected with the first reason.
// Errors wrap ErrBadPayload.
func DecodeOTLPLogs(body []byte, jsonBody bool) (recs []logindex.Record, rejected int, msg string, err error) {
	var ld logspb.LogsData
	if jsonBody {
		err = unmarshalOTLPJSON(body, &ld)
	} else if e := proto.Unmarshal(body, &ld); e != nil {
		err = fmt.Errorf("%w: %v", ErrBadPayload, e)
	}
	if err != nil {
		return nil, 0, "", err
	}
	for _, rl := range ld.GetResourceLogs() {
		res := attrsFromOTLP(rl.GetResource().GetAttributes())
		for _, sl := range rl.GetScopeLogs() {
			for _, lr := range sl.GetLogRecords() {
				rec := logindex.Record{
					Timestamp:         int64(lr.GetTimeUnixNano()),
					ObservedTimestamp: int64(lr.GetObservedTimeUnixNano()),
					SeverityNumber:    int32(lr.GetSeverityNumber()),
					SeverityText:      lr.GetSeverityText(),
					Body:              valueFromOTLP(lr.GetBody()),
					Attributes:        attrsFromOTLP(lr.GetAttributes()),
					Resource:          res,
					Flags:             lr.GetFlags(),
				}
				if rec.Timestamp == 0 {
					rec.Timestamp = rec.ObservedTimestamp
				}
				tid, sid := lr.GetTraceId(), lr.GetSpanId()
				if len(tid) != 0 && len(tid) != 16 || len(sid) != 0 && len(sid) != 8 {
					rejected++
					if msg == "" {
						msg = fmt.Sprintf("log record with a %d-byte trace ID or %d-byte span ID", len(tid), len(sid))
					}
					continue
				}
				copy(rec.TraceID[:], tid)
				copy(rec.SpanID[:], sid)
				recs = append(recs, rec)
			}
		}
	}
	return recs, rejected, msg, nil
}

func attrsFromOTLP(kvs []*commonpb.KeyValue) []logindex.Attribute {
	if len(kvs) == 0 {
		return nil
	}
	out := make([]logindex.Attribute, 0, len(kvs))
	for _, kv := range kvs {
		out = append(out, logindex.Attribute{Key: kv.GetKey(), Value: valueFromOTLP(kv.GetValue())})
	}
	return out
}

// valueFromOTLP converts an AnyValue; arrays and maps, which the log model
// does not hold, become their OTLP/JSON text.
func valueFromOTLP(v *commonpb.AnyValue) logindex.Value {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return logindex.StringValue(x.StringValue)
	case *commonpb.AnyValue_BoolValue:
		return logindex.BoolValue(x.BoolValue)
	case *commonpb.AnyValue_IntValue:
		return logindex.IntValue(x.IntValue)
	case *commonpb.AnyValue_DoubleValue:
		return logindex.DoubleValue(x.DoubleValue)
	case *commonpb.AnyValue_BytesValue:
		return logindex.BytesValue(x.BytesValue)
	case *commonpb.AnyValue_ArrayValue, *commonpb.AnyValue_KvlistValue:
		b, err := protojson.Marshal(v)
		if err != nil {
			return logindex.Value{}
		}
		return logindex.StringValue(string(b))
	}
	return logindex.Value{}
}

func (s *Server) handleOTLPLogs(w http.ResponseWriter, r *http.Request) {
	body, f, ok := s.readOTLP(w, r)
	if !ok {
		return
	}
	recs, rejected, msg, err := DecodeOTLPLogs(body, f == otlpJSON)
	if err != nil {
		writeOTLPError(w, f, http.StatusBadRequest, err.Error())
		return
	}
	if len(recs) > 0 {
		if err := s.db.Logs().Write(r.Context(), recs); err != nil {
			s.metrics.rejectedLogRecords.Add(uint64(len(recs) + rejected))
			writeOTLPError(w, f, http.StatusInternalServerError, err.Error())
			return
		}
	}
	s.metrics.logRecords.Add(uint64(len(recs)))
	s.metrics.rejectedLogRecords.Add(uint64(rejected))
	writeOTLPSuccess(w, f, "rejectedLogRecords", rejected, msg)
}

// DecodeOTLPMetrics decodes an OTLP metric export body. Errors wrap
// ErrBadPayload.
func DecodeOTLPMetrics(body []byte, jsonBody bool) (*metricspb.MetricsData, error) {
	var md metricspb.MetricsData
	if jsonBody {
		if err := unmarshalOTLPJSON(body, &md); err != nil {
			return nil, err
		}
		return &md, nil
	}
	if err := proto.Unmarshal(body, &md); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadPayload, err)
	}
	return &md, nil
}

func (s *Server) handleOTLPMetrics(w http.ResponseWriter, r *http.Request) {
	body, f, ok := s.readOTLP(w, r)
	if !ok {
		return
	}
	md, err := DecodeOTLPMetrics(body, f == otlpJSON)
	if err != nil {
		writeOTLPError(w, f, http.StatusBadRequest, err.Error())
		return
	}
	res, err := s.appendOTLPMetrics(r.Context(), md)
	if err != nil {
		s.metrics.rejectedSamples.Add(uint64(res.accepted + res.rejected))
		writeOTLPError(w, f, http.StatusInternalServerError, err.Error())
		return
	}
	s.metrics.samples.Add(uint64(res.samples))
	s.metrics.histograms.Add(uint64(res.histograms))
	s.metrics.rejectedSamples.Add(uint64(res.rejected))
	writeOTLPSuccess(w, f, "rejectedDataPoints", res.rejected, res.msg)
}
