package spec

import (
	"fmt"
	"reflect"
	"testing"
)

// TestInitResponseClearsAReusedMessage fills every field of a request,
// and of a message used before, with distinct non-zero values, and checks
// InitResponse on the used message gives exactly NewPOSResponse's new
// one: nothing of an earlier answer (field 54, 62, 63 ...) survives into
// the next one the switch builds in the same message.
func TestInitResponseClearsAReusedMessage(t *testing.T) {
	fill := func(m *POSMessage, seed int) {
		v := reflect.ValueOf(m).Elem()
		var walk func(v reflect.Value, path string)
		walk = func(v reflect.Value, path string) {
			switch v.Kind() {
			case reflect.Struct:
				for i := 0; i < v.NumField(); i++ {
					if v.Type().Field(i).IsExported() {
						walk(v.Field(i), path+"."+v.Type().Field(i).Name)
					}
				}
			case reflect.String:
				v.SetString(fmt.Sprintf("%d%s", seed, path))
			case reflect.Bool:
				v.SetBool(true)
			case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint32, reflect.Uint64, reflect.Uint8, reflect.Uint16:
				if v.CanInt() {
					v.SetInt(int64(seed*1000 + len(path)))
				} else {
					v.SetUint(uint64(seed*1000 + len(path)))
				}
			case reflect.Slice:
				v.Set(reflect.ValueOf([]byte(fmt.Sprintf("%d%s", seed, path))))
			case reflect.Array:
				for i := 0; i < v.Len(); i++ {
					walk(v.Index(i), fmt.Sprintf("%s[%d]", path, i))
				}
			default:
				t.Fatalf("field %s of kind %s not filled", path, v.Kind())
			}
		}
		walk(v, "")
	}
	for _, mti := range []string{"0200", "0400", "0100", "0220", "0320", "0500"} {
		req := &POSMessage{}
		fill(req, 1)
		req.MTI = mti
		want := NewPOSResponse(req, "05")
		got := &POSMessage{}
		fill(got, 2) // whatever was in the message before
		got.InitResponse(req, "05")
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: InitResponse\n%+v\nwant\n%+v", mti, got, want)
		}
	}
}
