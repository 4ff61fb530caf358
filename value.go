package converge

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/converge-sync/converge/crdt"
)

// Text, written with Txn.Set or Txn.Insert, creates a collaborative text
// holding the string. (A plain string is a scalar: replaced whole, never
// merged character by character.)
type Text string

// Counter, written with Txn.Set or Txn.Insert, creates a counter with that
// initial value; Txn.Increment adds to it and concurrent increments add up.
type Counter int64

// scalar converts a Go value to a document scalar; ok is false for values
// that become containers (maps, slices, Text).
func scalar(v any) (crdt.Value, bool, error) {
	switch x := v.(type) {
	case nil:
		return crdt.Null(), true, nil
	case crdt.Value:
		return x, true, nil
	case bool:
		return crdt.Bool(x), true, nil
	case string:
		return crdt.String(x), true, nil
	case []byte:
		return crdt.Bytes(x), true, nil
	case Counter:
		return crdt.Counter(int64(x)), true, nil
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return crdt.Int(n), true, nil
		}
		if !strings.ContainsAny(string(x), ".eE") {
			// A whole number past int64 would come back as the nearest
			// float, silently not the number given.
			return crdt.Value{}, false, fmt.Errorf("converge: %s does not fit an int64 (store it as a string, or as a float by writing it with a decimal point or an exponent): %w", x, ErrBadValue)
		}
		f, err := x.Float64()
		if err != nil {
			return crdt.Value{}, false, fmt.Errorf("converge: number %q: %w", x, ErrBadValue)
		}
		return crdt.Float(f), true, nil
	case Text:
		return crdt.Value{}, false, nil
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return crdt.Int(rv.Int()), true, nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return crdt.Value{}, false, fmt.Errorf("converge: %d does not fit an int64: %w", u, ErrBadValue)
		}
		return crdt.Int(int64(u)), true, nil
	case reflect.Float32, reflect.Float64:
		return crdt.Float(rv.Float()), true, nil
	case reflect.String:
		return crdt.String(rv.String()), true, nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return crdt.Value{}, false, fmt.Errorf("converge: map with %s keys: %w", rv.Type().Key(), ErrBadValue)
		}
		return crdt.Value{}, false, nil
	case reflect.Slice, reflect.Array:
		return crdt.Value{}, false, nil
	}
	return crdt.Value{}, false, fmt.Errorf("converge: cannot store a %T: %w", v, ErrBadValue)
}

// fill writes the contents of a Go map, slice or Text into the container obj
// just created for it.
func fill(tx *crdt.Txn, obj crdt.ObjID, v any) error {
	if t, ok := v.(Text); ok {
		if t == "" {
			return nil
		}
		return tx.Splice(obj, 0, 0, string(t))
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map:
		iter := rv.MapRange()
		for iter.Next() {
			if err := put(tx, obj, iter.Key().String(), iter.Value().Interface()); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		for i := 0; i < rv.Len(); i++ {
			if err := insert(tx, obj, i, rv.Index(i).Interface()); err != nil {
				return err
			}
		}
	}
	return nil
}

// containerKind is the kind of container a non-scalar Go value becomes.
func containerKind(v any) crdt.Value {
	if _, ok := v.(Text); ok {
		return crdt.NewText()
	}
	if reflect.ValueOf(v).Kind() == reflect.Map {
		return crdt.NewMap()
	}
	return crdt.NewList()
}

func put(tx *crdt.Txn, obj crdt.ObjID, key string, v any) error {
	s, ok, err := scalar(v)
	if err != nil {
		return err
	}
	if ok {
		_, err := tx.Put(obj, key, s)
		return err
	}
	child, err := tx.Put(obj, key, containerKind(v))
	if err != nil {
		return err
	}
	return fill(tx, child, v)
}

func insert(tx *crdt.Txn, list crdt.ObjID, i int, v any) error {
	s, ok, err := scalar(v)
	if err != nil {
		return err
	}
	if ok {
		_, err := tx.Insert(list, i, s)
		return err
	}
	child, err := tx.Insert(list, i, containerKind(v))
	if err != nil {
		return err
	}
	return fill(tx, child, v)
}

func set(tx *crdt.Txn, list crdt.ObjID, i int, v any) error {
	s, ok, err := scalar(v)
	if err != nil {
		return err
	}
	if ok {
		_, err := tx.Set(list, i, s)
		return err
	}
	child, err := tx.Set(list, i, containerKind(v))
	if err != nil {
		return err
	}
	return fill(tx, child, v)
}
