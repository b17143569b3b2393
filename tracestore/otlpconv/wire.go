package otlpconv

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pillar-db/pillar/tracestore"
)

// The wire decoder reads an ExportTraceServiceRequest (wire-identical to
// TracesData) straight from its protobuf bytes into tracestore spans,
// without building the generated message tree that UnmarshalProto builds
// and then converts. It accepts exactly the inputs UnmarshalProto accepts
// and produces equal spans; the rules that makes it follow are those of
// the protobuf runtime:
//
//   - fields may come in any order, and a repeated field's occurrences may
//     be interleaved with other fields;
//   - a singular scalar or string field seen twice keeps the last value;
//     a singular message field seen twice (resource, scope, status, a
//     key-value's value, an AnyValue's array or map) is merged;
//   - a known field with the wrong wire type is an unknown field, skipped;
//   - every string must be valid UTF-8 (proto3), field numbers must lie in
//     [1, 2^29-1], and messages may nest at most 10000 deep.
//
// Repeated fields that the span model stores in slices (attributes, events,
// links) are gathered contiguously in arenas the decoder reuses, which is
// why a message whose parts land in different slices is read in more than
// one pass: a span's scalar fields and attributes first, then its events,
// then its links. Each pass is a walk over tags; each byte is decoded once.

// maxDepth is the protobuf runtime's default recursion limit
// (protowire.DefaultRecursionLimit); TracesData is at depth 1.
const maxDepth = 10000

// Interning bounds for the strings a store keeps (span and service names):
// up to maxInternLen bytes they are kept in the decoder's table until it
// holds maxInternEntries, so they cost no allocation after the first
// request, while unique names cannot make the table grow without bound.
const (
	maxInternLen     = 64
	maxInternEntries = 8192
)

var (
	errDecode      = errors.New("otlpconv: cannot parse invalid wire-format data")
	errInvalidUTF8 = errors.New("otlpconv: string field contains invalid UTF-8")
	errDepth       = errors.New("otlpconv: exceeded maximum recursion depth")
)

// TraceDecoder decodes binary OTLP trace export requests (or TracesData
// messages) into spans. It reuses its memory from one call to the next:
// the spans of one Decode, and the attribute, event and link slices in
// them, are valid until the next Decode on the same decoder. Strings are
// slices of one copy of the request, so a string kept past the call keeps
// that copy alive; the span name and the resource's service.name, which a
// store is likely to keep, are never slices of it (they are interned). The zero TraceDecoder is ready to use; it is not safe for
// concurrent use.
type TraceDecoder struct {
	kvs    []tracestore.KeyValue
	events []tracestore.Event
	links  []tracestore.Link
	intern map[string]string
	src    []byte // the request being decoded
	body   string // a copy of src, made when first needed
}

// Reset drops the decoder's references to the last request's spans and
// strings, keeping its memory for reuse. Call it before pooling a decoder,
// so an idle one keeps no request alive.
func (d *TraceDecoder) Reset() {
	clear(d.kvs[:cap(d.kvs)])
	clear(d.events[:cap(d.events)])
	clear(d.links[:cap(d.links)])
	d.kvs, d.events, d.links = d.kvs[:0], d.events[:0], d.links[:0]
}

// Decode appends the spans of the binary TracesData message b to dst. It
// accepts exactly what UnmarshalProto accepts and appends the same spans.
// Errors wrap tracestore.ErrBadID for IDs of the wrong length and
// ErrUnsupported for values the span model cannot hold.
func (d *TraceDecoder) Decode(dst []tracestore.Span, b []byte) ([]tracestore.Span, error) {
	d.kvs, d.events, d.links = d.kvs[:0], d.events[:0], d.links[:0]
	d.src, d.body = b, ""
	if d.intern == nil {
		d.intern = make(map[string]string, 256)
	}
	defer func() { d.src, d.body = nil, "" }()
	start := len(dst)
	var f field
	ri := 0
	for rest := b; len(rest) > 0; {
		var err error
		if rest, err = f.next(rest); err != nil {
			return dst[:start], err
		}
		if f.num == 1 && f.typ == protowire.BytesType {
			if dst, err = d.resourceSpans(dst, f.b, 2); err != nil {
				return dst[:start], fmt.Errorf("otlpconv: resource %d: %w", ri, err)
			}
			ri++
		}
	}
	return dst, nil
}

// field is one decoded field: its number, wire type and value (v for
// varint and fixed types, b for length-delimited ones).
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64
	b   []byte
}

// next reads the field at the head of b into f and returns the rest. It
// validates what the protobuf runtime validates when it meets the field
// as unknown, so skipping a field is as strict as reading it.
func (f *field) next(b []byte) ([]byte, error) {
	var tag uint64
	var n int
	if len(b) > 0 && b[0] < 0x80 {
		tag, b = uint64(b[0]), b[1:] // the one-byte tag of fields 1–15
	} else {
		if tag, n = protowire.ConsumeVarint(b); n < 0 {
			return nil, errDecode
		}
		b = b[n:]
	}
	num := tag >> 3
	if num < uint64(protowire.MinValidNumber) || num > uint64(protowire.MaxValidNumber) {
		return nil, errDecode
	}
	f.num, f.typ = protowire.Number(num), protowire.Type(tag&7)
	switch f.typ {
	case protowire.VarintType:
		f.v, n = protowire.ConsumeVarint(b)
	case protowire.Fixed64Type:
		f.v, n = protowire.ConsumeFixed64(b)
	case protowire.Fixed32Type:
		var v uint32
		v, n = protowire.ConsumeFixed32(b)
		f.v = uint64(v)
	case protowire.BytesType:
		if len(b) > 0 && b[0] < 0x80 && int(b[0]) < len(b) {
			// A length under 128, the common case.
			l := int(b[0])
			f.b = b[1 : 1+l]
			return b[1+l:], nil
		}
		f.b, n = protowire.ConsumeBytes(b)
	case protowire.EndGroupType:
		// A message outside a group may not end one.
		return nil, errDecode
	default:
		// Groups (never a known field here) and reserved wire types.
		n = protowire.ConsumeFieldValue(f.num, f.typ, b)
	}
	if n < 0 {
		return nil, errDecode
	}
	return b[n:], nil
}

// str returns b as a string after checking it is UTF-8: a slice of the
// request's one copy, so strings cost no allocation of their own.
func (d *TraceDecoder) str(b []byte) (string, error) {
	if !utf8.Valid(b) {
		return "", errInvalidUTF8
	}
	if len(b) == 0 {
		return "", nil
	}
	if d.body == "" {
		d.body = string(d.src)
	}
	// b is a subslice of src, so its offset follows from the capacities.
	i := cap(d.src) - cap(b)
	return d.body[i : i+len(b)], nil
}

// ownedStr is str for strings a store may keep (span names, service
// names): never a slice of the request copy, so keeping one does not keep
// a whole request alive.
func (d *TraceDecoder) ownedStr(b []byte) (string, error) {
	if !utf8.Valid(b) {
		return "", errInvalidUTF8
	}
	return d.own(b), nil
}

// own returns b as an interned string when it is short and the table has
// room, else as a string of its own.
func (d *TraceDecoder) own(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > maxInternLen {
		return string(b)
	}
	if s, ok := d.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(d.intern) < maxInternEntries {
		d.intern[s] = s
	}
	return s
}

// kvList returns the arena's entries from start on as an attribute list,
// nil when empty, with its capacity capped so appends cannot reach the
// entries after it.
func (d *TraceDecoder) kvList(start int) []tracestore.KeyValue {
	if len(d.kvs) == start {
		return nil
	}
	return d.kvs[start:len(d.kvs):len(d.kvs)]
}

// resourceSpans decodes one ResourceSpans: the resource and schema URL
// first (they may follow the spans on the wire), then its scopes.
func (d *TraceDecoder) resourceSpans(dst []tracestore.Span, b []byte, depth int) ([]tracestore.Span, error) {
	if depth > maxDepth {
		return dst, errDepth
	}
	var res tracestore.Resource
	kvStart := len(d.kvs)
	scopes, err := d.container(b, &res.SchemaURL, func(h []byte) error { return d.resource(&res, h, depth+1) })
	if err != nil || scopes == 0 {
		return dst, err
	}
	res.Attributes = d.kvList(kvStart)
	err = eachChild(b, func(i int, c []byte) error {
		var err error
		if dst, err = d.scopeSpans(dst, &res, c, depth+1); err != nil {
			return fmt.Errorf("scope %d: %w", i, err)
		}
		return nil
	})
	return dst, err
}

// container reads a ResourceSpans or ScopeSpans message, whose field 1
// is its header (a Resource or a scope), field 2 its repeated children
// and field 3 its schema URL: it decodes the header with header, sets
// *schemaURL and counts the children, which the caller decodes once the
// header is known (eachChild), since the wire may put it after them.
func (d *TraceDecoder) container(b []byte, schemaURL *string, header func([]byte) error) (children int, err error) {
	var f field
	for rest := b; len(rest) > 0; {
		if rest, err = f.next(rest); err != nil {
			return 0, err
		}
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case 1:
			if err := header(f.b); err != nil {
				return 0, err
			}
		case 2:
			children++
		case 3:
			if *schemaURL, err = d.str(f.b); err != nil {
				return 0, err
			}
		}
	}
	return children, nil
}

// eachChild calls each with the index and bytes of every field-2
// submessage of b, a message container has validated.
func eachChild(b []byte, each func(i int, c []byte) error) error {
	var f field
	i := 0
	for rest := b; len(rest) > 0; {
		rest, _ = f.next(rest) // validated by container
		if f.num == 2 && f.typ == protowire.BytesType {
			if err := each(i, f.b); err != nil {
				return err
			}
			i++
		}
	}
	return nil
}

// resource merges one Resource message into res; its attributes go to
// the arena.
func (d *TraceDecoder) resource(res *tracestore.Resource, b []byte, depth int) error {
	if depth > maxDepth {
		return errDepth
	}
	var f field
	var err error
	for rest := b; len(rest) > 0; {
		if rest, err = f.next(rest); err != nil {
			return err
		}
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			if err := d.appendKeyValue(f.b, depth+1, true); err != nil {
				return err
			}
		case f.num == 2 && f.typ == protowire.VarintType:
			res.DroppedAttributesCount = uint32(f.v)
		case f.num == 3 && f.typ == protowire.BytesType:
			// Entity references are not kept, but the runtime parses
			// them, so they must be well formed.
			if err := validateEntityRef(f.b, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}

// validateEntityRef checks an EntityRef message: four string fields.
func validateEntityRef(b []byte, depth int) error {
	if depth > maxDepth {
		return errDepth
	}
	var f field
	var err error
	for rest := b; len(rest) > 0; {
		if rest, err = f.next(rest); err != nil {
			return err
		}
		if f.num >= 1 && f.num <= 4 && f.typ == protowire.BytesType && !utf8.Valid(f.b) {
			return errInvalidUTF8
		}
	}
	return nil
}

// scopeSpans decodes one ScopeSpans: scope and schema URL first, then
// the spans.
func (d *TraceDecoder) scopeSpans(dst []tracestore.Span, res *tracestore.Resource, b []byte, depth int) ([]tracestore.Span, error) {
	if depth > maxDepth {
		return dst, errDepth
	}
	var sc tracestore.Scope
	kvStart := len(d.kvs)
	spans, err := d.container(b, &sc.SchemaURL, func(h []byte) error { return d.scope(&sc, h, depth+1) })
	if err != nil || spans == 0 {
		return dst, err
	}
	sc.Attributes = d.kvList(kvStart)
	err = eachChild(b, func(i int, c []byte) error {
		dst = append(dst, tracestore.Span{})
		sp := &dst[len(dst)-1]
		if err := d.span(sp, c, depth+1); err != nil {
			return fmt.Errorf("span %d: %w", i, err)
		}
		sp.Resource, sp.Scope = *res, sc
		return nil
	})
	return dst, err
}

// scope merges one InstrumentationScope message into sc.
func (d *TraceDecoder) scope(sc *tracestore.Scope, b []byte, depth int) error {
	if depth > maxDepth {
		return errDepth
	}
	var f field
	var err error
	for rest := b; len(rest) > 0; {
		if rest, err = f.next(rest); err != nil {
			return err
		}
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			if sc.Name, err = d.str(f.b); err != nil {
				return err
			}
		case f.num == 2 && f.typ == protowire.BytesType:
			if sc.Version, err = d.str(f.b); err != nil {
				return err
			}
		case f.num == 3 && f.typ == protowire.BytesType:
			if err := d.appendKeyValue(f.b, depth+1, false); err != nil {
				return err
			}
		case f.num == 4 && f.typ == protowire.VarintType:
			sc.DroppedAttributesCount = uint32(f.v)
		}
	}
	return nil
}

// span decodes one Span into sp (which is zero): scalars, attributes and
// status first, then events, then links.
func (d *TraceDecoder) span(sp *tracestore.Span, b []byte, depth int) error {
	if depth > maxDepth {
		return errDepth
	}
	var f field
	var err error
	var traceID, spanID, parentID []byte
	kvStart := len(d.kvs)
	events, links := 0, 0
	for rest := b; len(rest) > 0; {
		if rest, err = f.next(rest); err != nil {
			return err
		}
		switch f.typ {
		case protowire.BytesType:
			switch f.num {
			case 1:
				traceID = f.b
			case 2:
				spanID = f.b
			case 3:
				if sp.TraceState, err = d.str(f.b); err != nil {
					return err
				}
			case 4:
				parentID = f.b
			case 5:
				if sp.Name, err = d.ownedStr(f.b); err != nil {
					return err
				}
			case 9:
				if err := d.appendKeyValue(f.b, depth+1, false); err != nil {
					return err
				}
			case 11:
				events++
			case 13:
				links++
			case 15:
				if err := d.status(&sp.Status, f.b, depth+1); err != nil {
					return err
				}
			}
		case protowire.VarintType:
			switch f.num {
			case 6:
				sp.Kind = tracestore.SpanKind(f.v)
			case 10:
				sp.DroppedAttributesCount = uint32(f.v)
			case 12:
				sp.DroppedEventsCount = uint32(f.v)
			case 14:
				sp.DroppedLinksCount = uint32(f.v)
			}
		case protowire.Fixed64Type:
			switch f.num {
			case 7:
				sp.StartTime = int64(f.v)
			case 8:
				sp.EndTime = int64(f.v)
			}
		case protowire.Fixed32Type:
			if f.num == 16 {
				sp.Flags = uint32(f.v)
			}
		}
	}
	sp.Attributes = d.kvList(kvStart)
	if events > 0 {
		evStart := len(d.events)
		for rest := b; len(rest) > 0; {
			rest, _ = f.next(rest)
			if f.num == 11 && f.typ == protowire.BytesType {
				if err := d.event(f.b, depth+1); err != nil {
					return err
				}
			}
		}
		sp.Events = d.events[evStart:len(d.events):len(d.events)]
	}
	if links > 0 {
		lkStart := len(d.links)
		for rest := b; len(rest) > 0; {
			rest, _ = f.next(rest)
			if f.num == 13 && f.typ == protowire.BytesType {
				if err := d.link(f.b, depth+1); err != nil {
					return err
				}
			}
		}
		sp.Links = d.links[lkStart:len(d.links):len(d.links)]
	}
	// The IDs are checked last, as the converter checks them after the
	// whole message has been parsed.
	if err := copyID(sp.TraceID[:], traceID, "trace ID", false); err != nil {
		return err
	}
	if err := copyID(sp.SpanID[:], spanID, "span ID", false); err != nil {
		return err
	}
	return copyID(sp.ParentSpanID[:], parentID, "parent span ID", true)
}

// status merges one Status message into st.
func (d *TraceDecoder) status(st *tracestore.Status, b []byte, depth int) error {
	if depth > maxDepth {
		return errDepth
	}
	var f field
	var err error
	for rest := b; len(rest) > 0; {
		if rest, err = f.next(rest); err != nil {
			return err
		}
		switch {
		case f.num == 2 && f.typ == protowire.BytesType:
			if st.Message, err = d.str(f.b); err != nil {
				return err
			}
		case f.num == 3 && f.typ == protowire.VarintType:
			st.Code = tracestore.StatusCode(f.v)
		}
	}
	return nil
}

// event decodes one Span.Event and appends it to the events arena.
func (d *TraceDecoder) event(b []byte, depth int) error {
	if depth > maxDepth {
		return errDepth
	}
	var ev tracestore.Event
	var f field
	var err error
	kvStart := len(d.kvs)
	for rest := b; len(rest) > 0; {
		if rest, err = f.next(rest); err != nil {
			return err
		}
		switch {
		case f.num == 1 && f.typ == protowire.Fixed64Type:
			ev.Time = int64(f.v)
		case f.num == 2 && f.typ == protowire.BytesType:
			if ev.Name, err = d.str(f.b); err != nil {
				return err
			}
		case f.num == 3 && f.typ == protowire.BytesType:
			if err := d.appendKeyValue(f.b, depth+1, false); err != nil {
				return err
			}
		case f.num == 4 && f.typ == protowire.VarintType:
			ev.DroppedAttributesCount = uint32(f.v)
		}
	}
	ev.Attributes = d.kvList(kvStart)
	d.events = append(d.events, ev)
	return nil
}

// link decodes one Span.Link and appends it to the links arena.
func (d *TraceDecoder) link(b []byte, depth int) error {
	if depth > maxDepth {
		return errDepth
	}
	var l tracestore.Link
	var f field
	var err error
	var traceID, spanID []byte
	kvStart := len(d.kvs)
	for rest := b; len(rest) > 0; {
		if rest, err = f.next(rest); err != nil {
			return err
		}
		switch f.typ {
		case protowire.BytesType:
			switch f.num {
			case 1:
				traceID = f.b
			case 2:
				spanID = f.b
			case 3:
				if l.TraceState, err = d.str(f.b); err != nil {
					return err
				}
			case 4:
				if err := d.appendKeyValue(f.b, depth+1, false); err != nil {
					return err
				}
			}
		case protowire.VarintType:
			if f.num == 5 {
				l.DroppedAttributesCount = uint32(f.v)
			}
		case protowire.Fixed32Type:
			if f.num == 6 {
				l.Flags = uint32(f.v)
			}
		}
	}
	l.Attributes = d.kvList(kvStart)
	if err := copyID(l.TraceID[:], traceID, "link trace ID", true); err != nil {
		return err
	}
	if err := copyID(l.SpanID[:], spanID, "link span ID", true); err != nil {
		return err
	}
	d.links = append(d.links, l)
	return nil
}

// appendKeyValue decodes one KeyValue onto the attribute arena. With
// resource set, a service.name string value is never a slice of the
// request copy (see ownedStr).
func (d *TraceDecoder) appendKeyValue(b []byte, depth int, resource bool) error {
	kv, convErr, err := d.keyValue(b, depth, resource)
	if err != nil {
		return err
	}
	if convErr != nil {
		return convErr
	}
	d.kvs = append(d.kvs, kv)
	return nil
}

// keyValue decodes one KeyValue message. A value seen twice is merged,
// as the runtime merges a singular message field. err is a wire-format
// error; convErr says the value cannot be held by the span model, which
// matters only if nothing later replaces the value that holds it.
func (d *TraceDecoder) keyValue(b []byte, depth int, resource bool) (kv tracestore.KeyValue, convErr, err error) {
	if depth > maxDepth {
		return kv, nil, errDepth
	}
	var av anyValue
	var f field
	for rest := b; len(rest) > 0; {
		if rest, err = f.next(rest); err != nil {
			return kv, nil, err
		}
		if f.typ != protowire.BytesType {
			continue // key_strindex (3) is a varint the span model ignores
		}
		switch f.num {
		case 1:
			if kv.Key, err = d.str(f.b); err != nil {
				return kv, nil, err
			}
		case 2:
			if err := d.anyValue(&av, f.b, depth+1); err != nil {
				return kv, nil, err
			}
		}
	}
	if resource && kv.Key == tracestore.ServiceNameKey && av.kind == tracestore.ValueString {
		av.val = tracestore.StringValue(d.own(av.raw))
	}
	if kv.Value, convErr = av.value(); convErr != nil {
		return kv, fmt.Errorf("attribute %q: %w", kv.Key, convErr), nil
	}
	return kv, nil, nil
}

// strindexKind marks an AnyValue whose last oneof field was a string
// table reference, which the span model cannot hold.
const strindexKind tracestore.ValueKind = 255

// anyValue is an AnyValue being decoded: the kind its oneof holds now,
// the scalar value, or the elements of an array or entries of a map (kept
// apart so a second occurrence of the same field merges into them).
type anyValue struct {
	kind tracestore.ValueKind
	val  tracestore.Value
	arr  []tracestore.Value
	kvs  []tracestore.KeyValue
	err  error  // the first element or entry the span model cannot hold
	raw  []byte // a string value's bytes on the wire
}

// value returns the decoded Value.
func (av *anyValue) value() (tracestore.Value, error) {
	if av.err != nil {
		return tracestore.Value{}, av.err
	}
	switch av.kind {
	case tracestore.ValueArray:
		return tracestore.ArrayValue(av.arr...), nil
	case tracestore.ValueMap:
		return tracestore.MapValue(av.kvs...), nil
	case strindexKind:
		return tracestore.Value{}, fmt.Errorf("%w: *v1.AnyValue_StringValueStrindex", ErrUnsupported)
	}
	return av.val, nil
}

// set makes a scalar the oneof's value.
func (av *anyValue) set(v tracestore.Value) {
	av.kind, av.val, av.arr, av.kvs, av.err = v.Kind(), v, nil, nil, nil
}

// anyValue merges one AnyValue message into av.
func (d *TraceDecoder) anyValue(av *anyValue, b []byte, depth int) error {
	if depth > maxDepth {
		return errDepth
	}
	var f field
	var err error
	for rest := b; len(rest) > 0; {
		if rest, err = f.next(rest); err != nil {
			return err
		}
		switch f.typ {
		case protowire.BytesType:
			switch f.num {
			case 1:
				s, err := d.str(f.b)
				if err != nil {
					return err
				}
				av.set(tracestore.StringValue(s))
				av.raw = f.b
			case 5:
				if av.kind != tracestore.ValueArray {
					av.set(tracestore.Value{})
					av.kind = tracestore.ValueArray
				}
				if err := d.arrayValue(av, f.b, depth+1); err != nil {
					return err
				}
			case 6:
				if av.kind != tracestore.ValueMap {
					av.set(tracestore.Value{})
					av.kind = tracestore.ValueMap
				}
				if err := d.kvlistValue(av, f.b, depth+1); err != nil {
					return err
				}
			case 7:
				av.set(tracestore.BytesValue(f.b))
			}
		case protowire.VarintType:
			switch f.num {
			case 2:
				av.set(tracestore.BoolValue(f.v != 0))
			case 3:
				av.set(tracestore.Int64Value(int64(f.v)))
			case 8:
				av.set(tracestore.Value{})
				av.kind = strindexKind
			}
		case protowire.Fixed64Type:
			if f.num == 4 {
				av.set(tracestore.Float64Value(math.Float64frombits(f.v)))
			}
		}
	}
	return nil
}

// arrayValue appends the elements of one ArrayValue message to av.arr.
// Nested values are rare, so they are allocated rather than arena-kept.
func (d *TraceDecoder) arrayValue(av *anyValue, b []byte, depth int) error {
	if depth > maxDepth {
		return errDepth
	}
	var f field
	var err error
	for rest := b; len(rest) > 0; {
		if rest, err = f.next(rest); err != nil {
			return err
		}
		if f.num != 1 || f.typ != protowire.BytesType {
			continue
		}
		var elem anyValue
		if err := d.anyValue(&elem, f.b, depth+1); err != nil {
			return err
		}
		v, convErr := elem.value()
		if convErr != nil && av.err == nil {
			av.err = convErr
		}
		av.arr = append(av.arr, v)
	}
	return nil
}

// kvlistValue appends the entries of one KeyValueList message to av.kvs.
func (d *TraceDecoder) kvlistValue(av *anyValue, b []byte, depth int) error {
	if depth > maxDepth {
		return errDepth
	}
	var f field
	var err error
	for rest := b; len(rest) > 0; {
		if rest, err = f.next(rest); err != nil {
			return err
		}
		if f.num != 1 || f.typ != protowire.BytesType {
			continue
		}
		kv, convErr, err := d.keyValue(f.b, depth+1, false)
		if err != nil {
			return err
		}
		if convErr != nil && av.err == nil {
			av.err = convErr
		}
		av.kvs = append(av.kvs, kv)
	}
	return nil
}
