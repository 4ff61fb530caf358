package crdt

import (
	"fmt"
	"math"
	"strconv"

	"github.com/converge-sync/converge/causal"
)

// ObjID identifies a container: the OpID of the operation that created it.
// The zero ObjID is the root map.
type ObjID = causal.OpID

// Root is the ObjID of every document's root map.
var Root ObjID

// Kind is the type of a value.
type Kind uint8

// The value kinds. Map, List and Text are containers; the others are scalars.
// The numbers are part of the binary format and never change.
const (
	KindNull    Kind = 0
	KindBool    Kind = 1
	KindInt     Kind = 2
	KindFloat   Kind = 3
	KindString  Kind = 4
	KindBytes   Kind = 5
	KindCounter Kind = 6
	KindMap     Kind = 7
	KindList    Kind = 8
	KindText    Kind = 9
)

var kindNames = [...]string{"null", "bool", "int", "float", "string", "bytes", "counter", "map", "list", "text"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k <= KindText }

// IsContainer reports whether k is map, list or text.
func (k Kind) IsContainer() bool { return k == KindMap || k == KindList || k == KindText }

// Value is a scalar, a counter, or a reference to a container. The zero Value
// is null. Values are immutable; Bytes returns a copy.
//
// In an operation, a container Value (NewMap, NewList, NewText) means "create
// an empty container here"; the new container's ObjID is the op's ID. Values
// read back from a document carry that ObjID (see Value.Obj).
type Value struct {
	kind Kind
	num  uint64 // bool, int, counter (as int64 bits) and float (IEEE bits)
	str  string // string, bytes
	obj  ObjID  // containers read from a document
}

// Null returns the null value.
func Null() Value { return Value{} }

// Bool returns a boolean value.
func Bool(b bool) Value {
	v := Value{kind: KindBool}
	if b {
		v.num = 1
	}
	return v
}

// Int returns a 64-bit integer value.
func Int(n int64) Value { return Value{kind: KindInt, num: uint64(n)} }

// Float returns a 64-bit float value. NaN is stored in one canonical form so
// that equal documents encode to equal bytes.
func Float(f float64) Value {
	if math.IsNaN(f) {
		f = math.NaN()
	}
	return Value{kind: KindFloat, num: math.Float64bits(f)}
}

// String returns a string value.
func String(s string) Value { return Value{kind: KindString, str: s} }

// Bytes returns a byte-string value; b is copied.
func Bytes(b []byte) Value { return Value{kind: KindBytes, str: string(b)} }

// Counter returns a counter with initial value n. Increments from any replica
// add up (see Txn.Increment).
func Counter(n int64) Value { return Value{kind: KindCounter, num: uint64(n)} }

// NewMap, NewList and NewText are the values that create an empty container.
func NewMap() Value  { return Value{kind: KindMap} }
func NewList() Value { return Value{kind: KindList} }
func NewText() Value { return Value{kind: KindText} }

// Kind returns the value's kind.
func (v Value) Kind() Kind { return v.kind }

// IsNull reports whether v is null.
func (v Value) IsNull() bool { return v.kind == KindNull }

// Bool returns the boolean (false if v is not a bool).
func (v Value) Bool() bool { return v.kind == KindBool && v.num != 0 }

// Int returns the integer, or the counter's current value.
func (v Value) Int() int64 {
	if v.kind == KindInt || v.kind == KindCounter {
		return int64(v.num)
	}
	return 0
}

// Float returns the float (0 if v is not a float).
func (v Value) Float() float64 {
	if v.kind == KindFloat {
		return math.Float64frombits(v.num)
	}
	return 0
}

// Str returns the string (or the bytes as a string).
func (v Value) Str() string { return v.str }

// BytesValue returns a copy of the bytes of a bytes value.
func (v Value) BytesValue() []byte { return []byte(v.str) }

// Obj returns the ObjID of a container value read from a document.
func (v Value) Obj() ObjID { return v.obj }

// withObj returns v with its container ID set.
func (v Value) withObj(id ObjID) Value { v.obj = id; return v }

// Equal reports whether two values are identical (same kind and content;
// containers are equal when they are the same container).
func (v Value) Equal(o Value) bool {
	return v.kind == o.kind && v.num == o.num && v.str == o.str && v.obj == o.obj
}

// Interface returns the value as a plain Go value: nil, bool, int64, float64,
// string or []byte. Containers return nil (read them through the Doc).
func (v Value) Interface() any {
	switch v.kind {
	case KindBool:
		return v.Bool()
	case KindInt, KindCounter:
		return v.Int()
	case KindFloat:
		return v.Float()
	case KindString:
		return v.str
	case KindBytes:
		return v.BytesValue()
	}
	return nil
}

// GoString formats v for debugging.
func (v Value) GoString() string {
	switch v.kind {
	case KindNull:
		return "null"
	case KindBool:
		return strconv.FormatBool(v.Bool())
	case KindInt:
		return strconv.FormatInt(v.Int(), 10)
	case KindCounter:
		return "counter(" + strconv.FormatInt(v.Int(), 10) + ")"
	case KindFloat:
		return strconv.FormatFloat(v.Float(), 'g', -1, 64)
	case KindString:
		return strconv.Quote(v.str)
	case KindBytes:
		return fmt.Sprintf("bytes(%x)", v.str)
	}
	return v.kind.String() + "(" + v.obj.String() + ")"
}
